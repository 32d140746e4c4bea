//! The tests of [`Leases`], against a [`Bucket`] in memory on tokio's paused
//! clock.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Leases;
use crate::throttle::redis::store::{FallbackMode, Store};
use crate::throttle::redis::testing::{all, bucket, settle, wants};

#[tokio::test(start_paused = true)]
async fn leases_slices_and_hands_them_out_locally() {
    let (bucket, store) = bucket(FallbackMode::Wait);
    let mut leases = Leases::default();
    let start = Instant::now();
    // 10,000 B/s: a lease is 1,000 bytes; 100-byte chunks take one round
    // trip per ten chunks.
    for _ in 0..50 {
        leases.take(&store, "k", 10_000, 1, 100).await;
    }
    assert_eq!(bucket.asks.lock().unwrap().len(), 5);
    // The first 1,000 bytes were in the new key's bucket (a slice); the
    // rest came at the rate.
    assert_eq!(start.elapsed(), Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn leased_bytes_left_over_are_dropped_after_a_second_idle() {
    let (bucket, store) = bucket(FallbackMode::Wait);
    let mut leases = Leases::default();
    // Leases a slice of 1,000 bytes, keeps 900.
    leases.take(&store, "k", 10_000, 1, 100).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    leases.take(&store, "k", 10_000, 1, 100).await;
    assert_eq!(bucket.asks.lock().unwrap().len(), 1, "kept for a second");
    tokio::time::sleep(Duration::from_millis(1001)).await;
    leases.take(&store, "k", 10_000, 1, 100).await;
    assert_eq!(bucket.asks.lock().unwrap().len(), 2, "dropped after");
    assert_eq!(leases.balance, 900);
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_falls_back_to_a_local_share_then_rejoins() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(2) });
    let mut leases = Leases::default();
    bucket.fail(true);
    let start = Instant::now();
    // 10,000 B/s shared by two replicas: 5,000 B/s here, whose bucket
    // starts with 500 bytes.
    for _ in 0..10 {
        leases.take(&store, "k", 10_000, 1, 100).await;
    }
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(bucket.asks.lock().unwrap().len(), 1);
    bucket.fail(false);
    tokio::time::sleep_until(start + Duration::from_secs(1)).await;
    // The retry period is over: a probe (a lease of nothing) asks in the
    // background while this chunk goes by the fallback, without waiting.
    leases.take(&store, "k", 10_000, 1, 100).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    settle().await;
    leases.take(&store, "k", 10_000, 1, 100).await;
    assert_eq!(wants(&bucket), [1000, 0, 1000]);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn one_failed_lease_sends_every_limit_to_its_fallback_and_one_probes() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(1) });
    let mut limits: Vec<Leases> = (0..3).map(|_| Leases::default()).collect();
    bucket.fail(true);
    let start = Instant::now();
    for (i, leases) in limits.iter_mut().enumerate() {
        leases.take(&store, &format!("k{i}"), 10_000, 1, 100).await;
    }
    // Only the first limit asked; the others went to the fallback at once.
    assert_eq!(wants(&bucket), [1000]);
    // After the retry period, one probe for all of them, still failing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, leases) in limits.iter_mut().enumerate() {
        leases.take(&store, &format!("k{i}"), 10_000, 1, 100).await;
    }
    settle().await;
    assert_eq!(wants(&bucket), [1000, 0]);
    // The store answers again: the next probe succeeds and all rejoin.
    bucket.fail(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    limits[1].take(&store, "k1", 10_000, 1, 100).await;
    settle().await;
    limits[2].take(&store, "k2", 10_000, 1, 100).await;
    assert_eq!(wants(&bucket), [1000, 0, 0, 1000]);
    // Nobody ever waited for the store.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_limit_waiting_to_ask_again_sees_that_the_store_failed_meanwhile() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(1) });
    let (mut a, mut b) = (Leases::default(), Leases::default());
    // A leases the new key's 1,000 bytes: a whole slice is there again in 100 ms.
    a.take(&store, "a", 10_000, 1, 100).await;
    // A needs more than it holds and waits those 100 ms to ask; meanwhile B
    // finds the store failing. A then goes by its fallback without asking.
    let b_fails = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        bucket.fail(true);
        b.take(&store, "b", 10_000, 1, 100).await;
    };
    tokio::join!(a.take(&store, "a", 10_000, 1, 1000), b_fails);
    assert_eq!(wants(&bucket), [1000, 1000]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_makes_streams_wait_when_asked_to() {
    let (bucket, store) = bucket(FallbackMode::Wait);
    let mut leases = Leases::default();
    bucket.fail(true);
    let start = Instant::now();
    let take = leases.take(&store, "k", 10_000, 1, 100);
    let failing = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        bucket.fail(false);
    };
    tokio::join!(take, failing);
    // Asked at 0 s (failing), probed at 1 and 2 s (failing) and 3 s (it
    // answers); the stream's next look, at 3.25 s, leases.
    assert_eq!(wants(&bucket), [1000, 0, 0, 0, 1000]);
    assert_eq!(start.elapsed(), Duration::from_millis(3250));
}

/// How long 1,000 bytes take through a fresh limit, in chunks of 100.
async fn thousand_bytes(store: &Arc<dyn Store>, key: &str) -> Duration {
    let mut leases = Leases::default();
    let start = Instant::now();
    for _ in 0..10 {
        leases.take(store, key, 10_000, 1, 100).await;
    }
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn the_learned_fallback_share_follows_the_last_count_of_live_replicas() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
    // Four replicas are alive: a lease says so.
    bucket.answer_replicas(4);
    Leases::default().take(&store, "a", 10_000, 1, 100).await;
    assert_eq!(store.fleet().replicas(), NonZeroU32::new(4));
    // Redis fails: a quarter of 10,000 B/s here, whose bucket starts with
    // 250 bytes: 1,000 bytes take 300 ms (with the whole rate, none).
    bucket.fail(true);
    assert_eq!(
        thousand_bytes(&store, "b").await,
        Duration::from_millis(300)
    );
    // Back, with two replicas left: the probe after the retry period says so.
    bucket.fail(false);
    bucket.answer_replicas(2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Leases::default().take(&store, "c", 10_000, 1, 100).await;
    settle().await;
    assert_eq!(store.fleet().replicas(), NonZeroU32::new(2));
    // Failing again: half the rate each, 500 bytes at once, 500 in 100 ms.
    bucket.fail(true);
    assert_eq!(
        thousand_bytes(&store, "d").await,
        Duration::from_millis(100)
    );
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_never_reached_the_store_goes_on_at_the_whole_rate() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
    bucket.fail(true);
    assert_eq!(store.fleet().replicas(), None);
    // 10,000 B/s alone: its bucket holds the 1,000 bytes.
    assert_eq!(thousand_bytes(&store, "k").await, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_count_given_by_hand_ignores_the_learned_one() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(2) });
    bucket.answer_replicas(4);
    Leases::default().take(&store, "a", 10_000, 1, 100).await;
    bucket.fail(true);
    assert_eq!(
        thousand_bytes(&store, "b").await,
        Duration::from_millis(100)
    );
}

#[tokio::test(start_paused = true)]
async fn replicas_starting_at_once_on_a_new_key_get_one_slice_however_many() {
    for replicas in [2, 3, 5] {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
        bucket.answer_replicas(replicas);
        let start = Instant::now();
        // Each replica's streams take 100-byte chunks as fast as granted;
        // note when each chunk went.
        let sent = Mutex::new(Vec::new());
        let replica = || async {
            let mut leases = Leases::default();
            while start.elapsed() < Duration::from_millis(500) {
                leases.take(&store, "k", 10_000, 1, 100).await;
                sent.lock().unwrap().push(start.elapsed());
            }
        };
        all((0..replicas).map(|_| replica()).collect()).await;
        let sent = sent.into_inner().unwrap();
        // One slice (1,000 bytes) at once, then the rate, whatever the count.
        let at_once = sent.iter().filter(|at| at.is_zero()).count();
        assert_eq!(at_once, 10, "{replicas} replicas");
        for at in &sent {
            let by_then = sent.iter().filter(|other| *other <= at).count() as u64 * 100;
            assert!(
                by_then <= 1000 + 10_000 * at.as_millis() as u64 / 1000,
                "{replicas}"
            );
        }
    }
}
