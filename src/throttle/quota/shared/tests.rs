use std::time::Duration;

use super::*;
use crate::throttle::quota::window::Clock;
use crate::throttle::redis::testing::{Bucket, bucket};

const DAY: Duration = Duration::from_secs(86_400);

fn account(store: &Arc<dyn Store>, quota: Quota) -> Arc<Account> {
    let shared = Shared::new(store.clone(), "quota:client".to_owned());
    Arc::new(Account::new(quota, Clock::at(Duration::ZERO), Some(shared)))
}

/// Sends `len` bytes if the quota allows, waiting for leases as a body would.
async fn send(account: &Arc<Account>, len: u64) -> bool {
    loop {
        match account.check(len) {
            Check::Allowed(_) => {
                account.charge(len);
                return true;
            }
            Check::Spent => return false,
            Check::Wait(wait) => wait.await,
        }
    }
}

/// Sends chunks of `chunk` bytes until the quota says no; the bytes sent.
async fn send_all(account: &Arc<Account>, chunk: u64) -> u64 {
    let mut sent = 0;
    while send(account, chunk).await {
        sent += chunk;
    }
    sent
}

fn counter(bucket: &Bucket) -> u64 {
    bucket.quotas.lock().unwrap().values().sum()
}

#[tokio::test(start_paused = true)]
async fn bytes_are_leased_a_hundredth_at_a_time_not_per_chunk() {
    let (bucket, store) = bucket(FallbackMode::Wait);
    let quota = Quota::new(10 << 20, DAY);
    let account = account(&store, quota);
    for _ in 0..1024 {
        assert!(send(&account, 1024).await);
    }
    // 1 MiB in 1024 chunks: ten leases of 1% (104,857 bytes) and a bit.
    let asks = bucket.quota_asks.lock().unwrap().len();
    assert_eq!(asks, 11);
    assert_eq!(account.remaining(), (10 << 20) - (1 << 20));
}

#[tokio::test(start_paused = true)]
async fn replicas_sharing_a_counter_deliver_the_quota_and_no_more_than_a_chunk_each_beyond() {
    let (bucket, store) = bucket(FallbackMode::Wait);
    let quota = Quota::new(1 << 20, DAY);
    let (one, two) = (account(&store, quota), account(&store, quota));
    let mut sent = [0, 0];
    // The client alternates between the replicas, 16 KiB at a time.
    loop {
        let a = send(&one, 16_384).await;
        let b = send(&two, 16_384).await;
        sent[0] += u64::from(a) * 16_384;
        sent[1] += u64::from(b) * 16_384;
        if !a && !b {
            break;
        }
    }
    let total = sent[0] + sent[1];
    assert!(total >= 1 << 20, "{total}");
    assert!(total <= (1 << 20) + 2 * 16_384, "{total}");
    assert!(sent[0] > 0 && sent[1] > 0, "{sent:?}");
    // Both replicas know it is spent, until the window ends.
    assert_eq!((one.remaining(), two.remaining()), (0, 0));
    tokio::time::advance(DAY).await;
    assert!(send(&one, 16_384).await);
    assert!(counter(&bucket) > 1 << 20);
}

#[tokio::test(start_paused = true)]
async fn while_the_store_fails_each_replica_delivers_its_share_of_what_was_left() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
    bucket.answer_replicas(2);
    let quota = Quota::new(1 << 20, DAY);
    let account = account(&store, quota);
    // A quarter of the quota, with the store answering.
    for _ in 0..16 {
        assert!(send(&account, 16_384).await);
    }
    let leased = counter(&bucket);
    bucket.fail(true);
    let during = send_all(&account, 16_384).await;
    // Its unspent lease, then half (two replicas) of what nobody had leased;
    // never the whole quota.
    let unspent = leased - (1 << 18);
    let share = ((1 << 20) - leased) / 2;
    assert!(during >= unspent + share, "{during}");
    assert!(during <= unspent + share + 16_384, "{during}");
    // Back: what went meanwhile is added to the counter.
    bucket.fail(false);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(send(&account, 16_384).await);
    let delivered = (1 << 18) + during + 16_384;
    assert!(
        counter(&bucket) >= delivered,
        "{} {delivered}",
        counter(&bucket)
    );
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_never_reached_the_store_is_not_unlimited() {
    let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
    bucket.fail(true);
    let account = account(&store, Quota::new(1 << 20, DAY));
    let sent = send_all(&account, 16_384).await;
    // Alone as far as it knows: the quota, and at most a chunk more.
    assert!(sent >= 1 << 20, "{sent}");
    assert!(sent <= (1 << 20) + 16_384, "{sent}");
}
