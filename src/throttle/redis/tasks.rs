//! The requests a store gets in tasks of their own, outside any stream's path:
//! the probe that asks a failing store whether it answers again (see
//! [`Health`](super::health::Health)), and the heartbeat of a replica whose
//! leases carry none (see [`Fleet`](super::fleet::Fleet)).

use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::fleet::IDLE_BEAT;
use super::store::{Ask, Store};

/// Asks `store`, in a task of its own, whether it answers again (a lease of
/// nothing on `key`), and records the answer. Started by the keeper that was
/// told to probe (`Standing::Probe`); marks the probe ended when it ends.
pub(super) fn probe(store: &Arc<dyn Store>, key: &str, ask: Ask) {
    let probing = Probing(store.clone());
    let key = key.to_owned();
    tokio::spawn(async move {
        let store = &probing.0;
        let policy = store.policy();
        let answer = tokio::time::timeout(policy.timeout * 2, store.take(&key, ask)).await;
        let failing_until = match answer {
            Ok(Ok(lease)) => {
                store.fleet().seen(lease.replicas);
                None
            }
            Ok(Err(())) | Err(_) => Some(Instant::now() + policy.retry),
        };
        store.health().set(failing_until);
    });
}

/// Clears the probing mark when the probe ends, however it ends.
struct Probing(Arc<dyn Store>);

impl Drop for Probing {
    fn drop(&mut self) {
        self.0.health().probe_ended();
    }
}

/// Starts, once per store, the task that sends heartbeats while no lease
/// carries them, so an idle replica still counts: one [`IDLE_BEAT`] after
/// the last beat, later than a busy replica's leases carry the next. While
/// the store fails it waits; [`IDLE_BEAT`] after the retry period ends, if
/// no limit's probe found the store answering meanwhile (an idle replica
/// has no limit probing), the beat is the probe. Ends when the store is
/// dropped, or with its runtime (a later lease starts it again).
pub(crate) fn keep_beating(store: &Arc<dyn Store>) {
    if !store.fleet().start_beating() {
        return;
    }
    let beating = Beating(Arc::downgrade(store));
    let mut wake = store.fleet().idle_beat_at(Instant::now());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep_until(wake).await;
            let Some(store) = beating.0.upgrade() else {
                return;
            };
            let (fleet, health) = (store.fleet(), store.health());
            let now = Instant::now();
            wake = match health.failing_until() {
                Some(until) => until + IDLE_BEAT,
                None => fleet.idle_beat_at(now),
            };
            if wake > now {
                continue; // A lease beat, or the store is failing.
            }
            wake = now + IDLE_BEAT;
            if !fleet.beat_due() {
                continue;
            }
            let policy = store.policy();
            match tokio::time::timeout(policy.timeout * 2, store.beat()).await {
                Ok(Ok(replicas)) => {
                    fleet.seen(replicas);
                    health.set(None);
                }
                Ok(Err(())) | Err(_) => health.set(Some(Instant::now() + policy.retry)),
            }
        }
    });
}

/// Clears the mark of a running heartbeat task when the task ends, however it
/// ends (its runtime may shut down while the store lives on).
struct Beating(Weak<dyn Store>);

impl Drop for Beating {
    fn drop(&mut self) {
        if let Some(store) = self.0.upgrade() {
            store.fleet().stopped_beating();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use tokio::time::Instant;

    use crate::throttle::redis::leases::Leases;
    use crate::throttle::redis::store::FallbackMode;
    use crate::throttle::redis::testing::bucket;

    #[tokio::test(start_paused = true)]
    async fn busy_replicas_beat_with_their_leases_and_idle_ones_on_their_own() {
        let (bucket, store) = bucket(FallbackMode::Wait);
        bucket.answer_replicas(3);
        let mut leases = Leases::default();
        let start = Instant::now();
        // A lease every 150 ms for two seconds (each wants more than it holds).
        for _ in 0..14 {
            leases.take(&store, "k", 10_000, 1, 1000).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let beat_at: Vec<_> = bucket
            .asks
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, ask)| ask.beat)
            .map(|(i, _)| i)
            .collect();
        // The first ask beats, then the first one at least a second later.
        assert_eq!(beat_at, [0, 7]);
        assert!(bucket.beats.lock().unwrap().is_empty(), "no extra request");
        // Idle from 2.1 s on (the last beat at 1.05 s): a beat of its own
        // 1.5 s after the last, and every 1.5 s.
        tokio::time::sleep_until(start + Duration::from_secs(6)).await;
        let since: Vec<_> = bucket
            .beats
            .lock()
            .unwrap()
            .iter()
            .map(|at| (*at - start).as_millis())
            .collect();
        assert_eq!(since, [2550, 4050, 5550]);
        assert_eq!(store.fleet().replicas(), NonZeroU32::new(3));
        // It learns from its own beats too.
        bucket.answer_replicas(2);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(store.fleet().replicas(), NonZeroU32::new(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_replica_asks_a_failing_store_again_with_its_beats() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
        Leases::default().take(&store, "k", 10_000, 1, 100).await;
        bucket.fail(true);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        bucket.fail(false);
        tokio::time::sleep(Duration::from_secs(2)).await;
        // A beat 1.5 s after the lease finds the store failing (the limits fall
        // back for the retry period, 1 s); with no limit probing, the next beat
        // asks 1.5 s after that period: failing at 4 s, answering at 6.5 s.
        let since: Vec<_> = bucket
            .beats
            .lock()
            .unwrap()
            .iter()
            .map(|at| (*at - start).as_millis())
            .collect();
        assert_eq!(since, [1500, 4000, 6500]);
        assert_eq!(store.health().failing_until(), None);
        // The beating task is the one left; it ends with its store.
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        assert_eq!(tasks(), 1);
        drop((bucket, store));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(tasks(), 0);
    }
}
