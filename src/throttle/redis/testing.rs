//! [`Bucket`]: a store in memory for the tests of leases and of the store's
//! background tasks.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::fleet::Fleet;
use super::health::Health;
use super::store::{
    Ask, BeatFuture, FallbackMode, Lease, QuotaAsk, QuotaFuture, QuotaLease, Store, StorePolicy,
    TakeFuture,
};

/// A store in memory: a token bucket on the (paused) tokio clock that starts
/// with a lease period of the rate (as the Redis script does), or failing,
/// that reports `replicas` live replicas and counts the heartbeats sent
/// without a lease.
#[derive(Debug)]
pub(crate) struct Bucket {
    pub(crate) state: Mutex<(f64, Instant)>,
    pub(crate) failing: AtomicBool,
    pub(crate) asks: Mutex<Vec<Ask>>,
    pub(crate) replicas: AtomicU32,
    pub(crate) beats: Mutex<Vec<Instant>>,
    /// Quota counters by key and window (windows from the bucket's creation),
    /// and the quota requests made.
    pub(crate) quotas: Mutex<std::collections::HashMap<(String, u64), u64>>,
    pub(crate) quota_asks: Mutex<Vec<QuotaAsk>>,
    created: Instant,
    pub(crate) policy: StorePolicy,
    pub(crate) health: Health,
    pub(crate) fleet: Fleet,
}

impl Bucket {
    fn new(fallback: FallbackMode) -> Self {
        Self {
            state: Mutex::new((f64::NAN, Instant::now())),
            failing: Default::default(),
            asks: Mutex::default(),
            replicas: AtomicU32::new(0),
            beats: Mutex::default(),
            quotas: Mutex::default(),
            quota_asks: Mutex::default(),
            created: Instant::now(),
            policy: StorePolicy {
                lease: Duration::from_millis(100),
                timeout: Duration::from_millis(250),
                retry: Duration::from_secs(1),
                fallback,
            },
            health: Health::default(),
            fleet: Fleet::default(),
        }
    }

    pub(crate) fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub(crate) fn answer_replicas(&self, replicas: u32) {
        self.replicas.store(replicas, Ordering::SeqCst);
    }
}

impl Store for Bucket {
    fn take<'a>(&'a self, _key: &'a str, ask: Ask) -> TakeFuture<'a> {
        Box::pin(async move {
            self.asks.lock().unwrap().push(ask);
            if self.failing.load(Ordering::SeqCst) {
                return Err(());
            }
            let mut state = self.state.lock().unwrap();
            let now = Instant::now();
            let (tokens, at) = *state;
            // A new key starts with one period of the rate, as in Redis.
            let tokens = match tokens.is_nan() {
                true => (ask.rate as f64 * ask.period.as_secs_f64()).min(ask.capacity as f64),
                false => {
                    (tokens + (now - at).as_secs_f64() * ask.rate as f64).min(ask.capacity as f64)
                }
            };
            let granted = ask.want.min(tokens as u64);
            let left = tokens - granted as f64;
            *state = (left, now);
            let short = (ask.want as f64 - left).max(0.0);
            Ok(Lease {
                granted,
                wait: Duration::from_secs_f64(short / ask.rate as f64),
                replicas: self.replicas.load(Ordering::SeqCst),
            })
        })
    }

    fn quota<'a>(&'a self, key: &'a str, ask: QuotaAsk) -> QuotaFuture<'a> {
        Box::pin(async move {
            self.quota_asks.lock().unwrap().push(ask);
            if self.failing.load(Ordering::SeqCst) {
                return Err(());
            }
            let since = Instant::now() - self.created;
            let period = ask.period.as_micros().max(1);
            let window = (since.as_micros() / period) as u64;
            let until_end = Duration::from_micros(
                ((u128::from(window) + 1) * period - since.as_micros()) as u64,
            );
            let mut quotas = self.quotas.lock().unwrap();
            let used = quotas.entry((key.to_owned(), window)).or_default();
            *used += ask.debt;
            let granted = ask.want.min(ask.limit.saturating_sub(*used));
            *used += granted;
            Ok(QuotaLease {
                granted,
                used: *used,
                until_end,
                replicas: self.replicas.load(Ordering::SeqCst),
            })
        })
    }

    fn beat(&self) -> BeatFuture<'_> {
        Box::pin(async move {
            self.beats.lock().unwrap().push(Instant::now());
            match self.failing.load(Ordering::SeqCst) {
                true => Err(()),
                false => Ok(self.replicas.load(Ordering::SeqCst)),
            }
        })
    }

    fn policy(&self) -> &StorePolicy {
        &self.policy
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn fleet(&self) -> &Fleet {
        &self.fleet
    }
}

/// A bucket, and the same as the keepers see it.
pub(crate) fn bucket(fallback: FallbackMode) -> (Arc<Bucket>, Arc<dyn Store>) {
    let bucket = Arc::new(Bucket::new(fallback));
    (bucket.clone(), bucket)
}

/// Runs `futures` together, on this task.
pub(crate) async fn all<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        for slot in &mut futures {
            if slot
                .as_mut()
                .is_some_and(|f| f.as_mut().poll(cx).is_ready())
            {
                *slot = None;
            }
        }
        match futures.iter().all(Option::is_none) {
            true => std::task::Poll::Ready(()),
            false => std::task::Poll::Pending,
        }
    })
    .await;
}

/// Lets spawned probes run.
pub(crate) async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

pub(crate) fn wants(bucket: &Bucket) -> Vec<u64> {
    bucket
        .asks
        .lock()
        .unwrap()
        .iter()
        .map(|ask| ask.want)
        .collect()
}
