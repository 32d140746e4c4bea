//! [`Account`]: one client's spending under one quota in one window, in this
//! process; with a store, its leases of the counter every replica shares (see
//! `shared`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::Quota;
use super::window::{Clock, Window};

/// What an account answers before a chunk (or a download) goes.
pub(crate) enum Check {
    /// Send it; then [`Account::charge`] what was sent. With what is left
    /// of the quota, as far as this process knows.
    Allowed(u64),
    /// The quota is spent until the window ends.
    Spent,
    /// Ask again when this is ready (a lease from the store is on its way).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Wait(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Allowed(_) => "Allowed",
            Self::Spent => "Spent",
            Self::Wait(_) => "Wait",
        })
    }
}

/// One client's account under one quota: the bytes delivered to it by this
/// process in the current window, checked before each chunk and charged with
/// what went. Every download of the client under that quota holds it; the
/// table keeps it until its window has ended and no download holds it.
#[derive(Debug)]
pub(crate) struct Account {
    quota: Quota,
    clock: Clock,
    state: Mutex<State>,
    /// The counter shared through a store, if any.
    #[cfg(feature = "redis")]
    pub(super) shared: Option<super::shared::Shared>,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) window: Window,
    /// Bytes delivered by this process in the window.
    pub(super) spent: u64,
    #[cfg(feature = "redis")]
    pub(super) lease: super::shared::LeaseState,
}

impl Account {
    pub(crate) fn new(
        quota: Quota,
        clock: Clock,
        #[cfg(feature = "redis")] shared: Option<super::shared::Shared>,
    ) -> Self {
        Self {
            quota,
            clock,
            state: Mutex::new(State {
                window: clock.window(quota, Instant::now()),
                spent: 0,
                #[cfg(feature = "redis")]
                lease: Default::default(),
            }),
            #[cfg(feature = "redis")]
            shared,
        }
    }

    pub(crate) fn quota(&self) -> Quota {
        self.quota
    }

    /// The state, in the current window (a new window starts with nothing
    /// spent).
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now >= state.window.ends_at {
            state.window = self.clock.window(self.quota, now);
            state.spent = 0;
            #[cfg(feature = "redis")]
            {
                state.lease.next_window();
            }
        }
        state
    }

    /// Whether `len` more bytes may go now. Locally: while anything of the
    /// quota is left (the chunk that spends the last byte goes whole; see
    /// [`max_chunk`](Self::max_chunk)).
    pub(crate) fn check(self: &std::sync::Arc<Self>, len: u64) -> Check {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.check(self, &mut self.state(), len);
        }
        let _ = len;
        let state = self.state();
        match self.quota.bytes().checked_sub(state.spent) {
            Some(left) if left > 0 => Check::Allowed(left),
            _ => Check::Spent,
        }
    }

    /// Records `len` bytes as delivered.
    pub(crate) fn charge(&self, len: u64) {
        let mut state = self.state();
        state.spent = state.spent.saturating_add(len);
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            state.lease.charge(len);
        }
    }

    /// Bytes left in this window, as far as this process knows.
    pub(crate) fn remaining(&self) -> u64 {
        let state = self.state();
        self.remaining_in(&state)
    }

    pub(super) fn remaining_in(&self, state: &State) -> u64 {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            if let Some(remaining) = state.lease.remaining(self.quota) {
                return remaining;
            }
        }
        self.quota.bytes().saturating_sub(state.spent)
    }

    /// How long until the window ends.
    pub(crate) fn reset(&self) -> Duration {
        self.state()
            .window
            .ends_at
            .saturating_duration_since(Instant::now())
    }

    /// Whether the window has ended (the table may forget the account).
    pub(crate) fn ended(&self, now: Instant) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        now >= state.window.ends_at
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn account(bytes: u64, secs: u64) -> Arc<Account> {
        let quota = Quota::new(bytes, Duration::from_secs(secs));
        Arc::new(Account::new(
            quota,
            Clock::at(Duration::ZERO),
            #[cfg(feature = "redis")]
            None,
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn the_quota_is_spent_within_a_window_and_renewed_by_the_next() {
        let account = account(1000, 60);
        assert!(matches!(account.check(600), Check::Allowed(1000)));
        account.charge(600);
        assert_eq!(account.remaining(), 400);
        assert!(matches!(account.check(600), Check::Allowed(400)));
        account.charge(400);
        assert!(matches!(account.check(1), Check::Spent));
        assert_eq!(account.remaining(), 0);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(matches!(account.check(1), Check::Spent));
        assert_eq!(account.reset(), Duration::from_secs(1));
        assert!(!account.ended(Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(account.ended(Instant::now()));
        assert!(matches!(account.check(1), Check::Allowed(1000)));
        assert_eq!(account.remaining(), 1000);
        assert_eq!(account.reset(), Duration::from_secs(60));
    }
}
