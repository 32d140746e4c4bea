//! A quota counter shared by replicas through a [`Store`] (the `redis`
//! feature): each replica leases bytes of the client's counter (1% of the
//! quota, at least 64 KiB) in a task of its own, and spends them locally, so the
//! store sees one request per lease, never one per chunk.
//!
//! While the store fails, each replica goes on with its share of what was left
//! at its last answer (divided by the replicas it last saw, or as
//! [`Fallback`](crate::throttle::Fallback) says), never unlimited; what it
//! delivers meanwhile is added to the counter when the store answers again.

use std::num::NonZeroU32;
use std::sync::Arc;

use tokio::time::Instant;

use super::Quota;
use super::account::{Account, Check, State};
use crate::throttle::redis::Store;
use crate::throttle::redis::health::Standing;
use crate::throttle::redis::store::{FallbackMode, QuotaAsk};

/// The store and the key of one account's counter.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Arc<dyn Store>,
    key: Arc<str>,
    /// Bumped after every lease, for the checks waiting for one.
    refilled: tokio::sync::watch::Sender<u64>,
}

/// What an account knows of its shared counter.
#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    /// Leased bytes not delivered yet.
    balance: u64,
    /// Bytes delivered without a lease, to be added to the counter.
    debt: u64,
    /// The counter at the last answer.
    used: Option<u64>,
    /// The last lease was short: the quota is spent once `balance` is.
    exhausted: bool,
    /// A lease is on its way.
    refilling: bool,
    /// Bytes this replica may still deliver while the store fails.
    fallback: Option<u64>,
}

impl LeaseState {
    /// A new window: nothing leased, nothing known.
    pub(super) fn next_window(&mut self) {
        *self = Self {
            refilling: self.refilling,
            ..Self::default()
        };
    }

    pub(super) fn charge(&mut self, len: u64) {
        let leased = len.min(self.balance);
        self.balance -= leased;
        let over = len - leased;
        self.debt = self.debt.saturating_add(over);
        if let Some(left) = &mut self.fallback {
            *left = left.saturating_sub(over);
        }
    }

    /// What is left of the counter for this client, if the store answered in
    /// this window: the unleased rest plus this replica's unspent lease.
    pub(super) fn remaining(&self, quota: Quota) -> Option<u64> {
        let used = self.used?;
        let left = quota.bytes().saturating_sub(used) + self.balance;
        Some(match self.fallback {
            Some(fallback) => fallback.min(left),
            None => left.saturating_sub(self.debt),
        })
    }
}

impl Shared {
    pub(crate) fn new(store: Arc<dyn Store>, key: String) -> Self {
        Self {
            store,
            key: key.into(),
            refilled: tokio::sync::watch::Sender::new(0),
        }
    }

    pub(super) fn check(&self, account: &Arc<Account>, state: &mut State, len: u64) -> Check {
        let remaining = state.lease.remaining(account.quota());
        let remaining =
            remaining.unwrap_or_else(|| account.quota().bytes().saturating_sub(state.spent));
        let lease = &mut state.lease;
        if lease.balance >= len || (lease.exhausted && lease.balance > 0) {
            return Check::Allowed(remaining);
        }
        if lease.exhausted {
            return Check::Spent;
        }
        let policy = self.store.policy();
        let mut probing = false;
        let until = match self.store.health().standing(policy.timeout) {
            Standing::Healthy => {
                if !lease.refilling {
                    lease.refilling = true;
                    tokio::spawn(refill(account.clone(), false));
                }
                let mut refilled = self.refilled.subscribe();
                return Check::Wait(Box::pin(async move {
                    let _ = refilled.changed().await;
                }));
            }
            Standing::Failing(until) => until,
            Standing::Probe(until) => {
                // This lease is the probe: the account waits for nobody.
                lease.refilling = true;
                probing = true;
                tokio::spawn(refill(account.clone(), true));
                until
            }
        };
        let replicas = match policy.fallback {
            FallbackMode::Local { replicas } => replicas
                .or_else(|| self.store.fleet().replicas().map(NonZeroU32::get))
                .unwrap_or(1),
            FallbackMode::Wait => {
                return Check::Wait(Box::pin(tokio::time::sleep_until(until)));
            }
        };
        let quota = account.quota();
        let left = *lease.fallback.get_or_insert_with(|| {
            let unleased = quota.bytes().saturating_sub(lease.used.unwrap_or(0));
            unleased / u64::from(replicas.max(1))
        });
        match left > 0 {
            true => Check::Allowed(left.min(remaining)),
            // The store may answer again at once: its answer decides.
            false if probing => {
                let mut refilled = self.refilled.subscribe();
                Check::Wait(Box::pin(async move {
                    let _ = refilled.changed().await;
                }))
            }
            false => Check::Spent,
        }
    }
}

/// Leases bytes of `account`'s counter, reporting what it delivered without
/// a lease; `probe`: the store was failing, and this asks whether it answers
/// again.
async fn refill(account: Arc<Account>, probe: bool) {
    let shared = account.shared.as_ref().expect("a shared account");
    let (store, policy) = (&shared.store, shared.store.policy());
    // An idle replica still counts in the fleet (see `Fallback`).
    crate::throttle::redis::tasks::keep_beating(store);
    let quota = account.quota();
    let ask = {
        let mut state = account.state();
        QuotaAsk {
            limit: quota.bytes(),
            period: quota.period(),
            want: quota.lease(),
            debt: std::mem::take(&mut state.lease.debt),
            beat: store.fleet().beat_due(),
        }
    };
    let answer = tokio::time::timeout(policy.timeout * 2, store.quota(&shared.key, ask)).await;
    {
        let mut state = account.state();
        let state = &mut *state;
        match answer {
            Ok(Ok(answer)) => {
                store.fleet().seen(answer.replicas);
                store.health().set(None);
                // The store's clock says when the window ends.
                state.window.ends_at = Instant::now() + answer.until_end;
                let lease = &mut state.lease;
                lease.balance += answer.granted;
                lease.used = Some(answer.used);
                lease.exhausted = answer.granted < ask.want;
                lease.fallback = None;
            }
            Ok(Err(())) | Err(_) => {
                state.lease.debt += ask.debt;
                store.health().set(Some(Instant::now() + policy.retry));
            }
        }
        state.lease.refilling = false;
    }
    if probe {
        store.health().probe_ended();
    }
    shared.refilled.send_modify(|n| *n += 1);
}

#[cfg(test)]
mod tests;
