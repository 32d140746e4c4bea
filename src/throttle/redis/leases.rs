//! [`Leases`]: how a limit's turn keeper takes its budget from a [`Store`]: in
//! slices leased ahead and handed out locally, by a fallback while the store
//! fails.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use leaky_bucket::RateLimiter;
use tokio::time::Instant;

use super::health::Standing;
use super::store::{Ask, FallbackMode, Store};
use super::tasks;
use crate::throttle::limiter::limiter_for;

/// How long a keeper keeps leased bytes no request draws from.
const IDLE: Duration = Duration::from_secs(1);

/// A keeper's state towards its store: the leased bytes not handed out yet.
///
/// Leased bytes left over when the keeper goes idle (its streams ended) are
/// dropped after [`IDLE`] (or a lease period, if longer) without a request: a
/// replica then does not add an old slice to the full bucket that new streams
/// find in the store, which keeps a key's burst after a pause at the bucket's
/// size. (Sooner would waste the leases of slow streams: a throttled stream
/// asks about ten times a second, down to one 512-byte chunk at a time.)
#[derive(Debug, Default)]
pub(crate) struct Leases {
    balance: u64,
    /// When the balance was last drawn from.
    used_at: Option<Instant>,
    /// When the store should have a whole slice for us again.
    next_ask: Option<Instant>,
    /// The limiter used while the store fails (`Local` fallback), and its rate.
    local: Option<(u64, Arc<RateLimiter>)>,
}

impl Leases {
    /// Waits until `len` bytes of `key`'s budget (`rate` bytes per second) are
    /// this process's, leasing from `store` as needed. `weight` is the number of
    /// this process's streams under the limit.
    pub(crate) async fn take(
        &mut self,
        store: &Arc<dyn Store>,
        key: &str,
        rate: u64,
        weight: u64,
        len: u64,
    ) {
        let policy = store.policy();
        tasks::keep_beating(store);
        // Beyond 2^53 bytes per second a rate is unlimited in practice, and the
        // store's arithmetic (Lua's doubles) stays exact below it.
        let rate = rate.min(1 << 53);
        let slice = ((rate as f64 * policy.lease.as_secs_f64()) as u64).clamp(1, 1 << 53);
        // A slice and a quarter: a replica a little late to ask again (timer,
        // round trip) loses nothing, and a key's burst stays near one slice. At
        // least a tenth of a second, the largest chunk a limit hands out.
        let capacity = slice.saturating_add(slice / 4).max(rate / 10);
        if self
            .used_at
            .is_some_and(|at| at.elapsed() > policy.lease.max(IDLE))
        {
            self.balance = 0;
        }
        loop {
            if self.balance >= len {
                self.balance -= len;
                self.used_at = Some(Instant::now());
                return;
            }
            // Before the store's health: it may have failed meanwhile.
            if let Some(at) = self.next_ask.take() {
                tokio::time::sleep_until(at).await;
            }
            let need = len - self.balance;
            let ask = Ask {
                rate,
                capacity,
                want: need.max(slice).min(capacity),
                weight: weight.max(1),
                period: policy.lease,
                beat: false,
            };
            let health = store.health();
            let fallback_until = match health.standing(policy.timeout) {
                Standing::Healthy => None,
                Standing::Failing(until) => Some(until),
                Standing::Probe(until) => {
                    let beat = store.fleet().beat_due();
                    tasks::probe(
                        store,
                        key,
                        Ask {
                            want: 0,
                            beat,
                            ..ask
                        },
                    );
                    Some(until)
                }
            };
            if let Some(until) = fallback_until {
                match policy.fallback {
                    FallbackMode::Local { replicas } => {
                        let replicas = replicas
                            .or_else(|| store.fleet().replicas().map(NonZeroU32::get))
                            .unwrap_or(1);
                        let share = (rate / u64::from(replicas.max(1))).max(1);
                        self.local(share).acquire(clamp(need)).await;
                        self.balance = 0;
                        return;
                    }
                    FallbackMode::Wait => tokio::time::sleep_until(until).await,
                }
                continue;
            }
            // The store gives up after `timeout` itself (and can then drop a
            // stuck connection); this is the guard against one that does not.
            let ask = Ask {
                beat: store.fleet().beat_due(),
                ..ask
            };
            match tokio::time::timeout(policy.timeout * 2, store.take(key, ask)).await {
                Ok(Ok(lease)) => {
                    store.fleet().seen(lease.replicas);
                    self.balance += lease.granted;
                    // Not worth asking again before a whole slice is there.
                    if lease.wait > Duration::ZERO {
                        self.next_ask = Some(Instant::now() + lease.wait);
                    }
                }
                Ok(Err(())) | Err(_) => health.set(Some(Instant::now() + policy.retry)),
            }
        }
    }

    fn local(&mut self, rate: u64) -> Arc<RateLimiter> {
        match &self.local {
            Some((current, limiter)) if *current == rate => limiter.clone(),
            _ => {
                let limiter = Arc::new(limiter_for(rate));
                self.local = Some((rate, limiter.clone()));
                limiter
            }
        }
    }
}

fn clamp(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
