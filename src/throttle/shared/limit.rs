//! [`SharedLimit`]: one bandwidth shared by many responses, on a `leaky-bucket`
//! rate limiter whose rate can be changed while streams run.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use leaky_bucket::RateLimiter;

use super::turns::Queue;
use crate::throttle::Bandwidth;
use crate::throttle::limiter::limiter_for;
#[cfg(feature = "redis")]
use crate::throttle::redis::SharedBy;

/// A bandwidth shared by every response that uses it (one client, or a whole layer).
///
/// Tokens are bytes. The limiter refills every 100 ms (see [`limiter_for`]) and
/// holds at most 100 ms of budget, which bounds the burst after an idle period.
/// Only the limit's turn keeper acquires from it (see [`super::turns`]); streams
/// queue at the keeper, first come, first served.
#[derive(Debug)]
pub(crate) struct SharedLimit {
    limiter: RwLock<Option<Arc<RateLimiter>>>,
    rate: AtomicU64,
    /// Streams currently drawing from this limit.
    active: AtomicUsize,
    /// The keeper's queue, started on first use.
    queue: Mutex<Option<Queue>>,
    /// Where the budget lives when several servers share it, and under which key.
    #[cfg(feature = "redis")]
    store: Option<SharedBy>,
}

impl SharedLimit {
    /// A limit of `rate` in this process alone.
    pub(crate) fn new(rate: Bandwidth) -> Self {
        Self {
            limiter: RwLock::new(rate.limit().map(|rate| Arc::new(limiter_for(rate)))),
            rate: AtomicU64::new(rate.bytes_per_second()),
            active: AtomicUsize::new(0),
            queue: Mutex::new(None),
            #[cfg(feature = "redis")]
            store: None,
        }
    }

    /// A limit of `rate` whose budget lives in `store` (if any), under its key.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_by(rate: Bandwidth, store: Option<SharedBy>) -> Self {
        Self {
            store,
            ..Self::new(rate)
        }
    }

    /// The store sharing this limit's budget, if any, and the key in it.
    #[cfg(feature = "redis")]
    pub(crate) fn store(&self) -> Option<&SharedBy> {
        self.store.as_ref()
    }

    /// The keeper's queue (see [`super::turns`]).
    pub(crate) fn queue(&self) -> std::sync::MutexGuard<'_, Option<Queue>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn rate(&self) -> Bandwidth {
        Bandwidth::new(self.rate.load(Ordering::Relaxed))
    }

    /// Changes the rate. Acquisitions already waiting finish on the old limiter
    /// (at most about one chunk each, ~100 ms of the old budget); every later one
    /// uses the new rate.
    pub(crate) fn set_rate(&self, rate: Bandwidth) {
        let mut limiter = self.limiter.write().unwrap_or_else(|e| e.into_inner());
        if self.rate.swap(rate.bytes_per_second(), Ordering::Relaxed) != rate.bytes_per_second() {
            *limiter = rate.limit().map(|rate| Arc::new(limiter_for(rate)));
        }
    }

    /// The limiter to acquire from now, if the limit is not unlimited.
    pub(crate) fn limiter(&self) -> Option<Arc<RateLimiter>> {
        self.limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many streams draw from this limit now.
    pub(crate) fn streams(&self) -> u64 {
        self.active.load(Ordering::Relaxed) as u64
    }

    /// The fair chunk size for one of its streams: a tenth of a second of this
    /// stream's share of the rate. `None` when unlimited.
    pub(crate) fn chunk_hint(&self) -> Option<u64> {
        let rate = self.rate().limit()?;
        Some(rate / 10 / self.streams().max(1))
    }

    /// Counts a stream as drawing from this limit until the returned guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Ordering::Relaxed);
        Active(self.clone())
    }
}

/// A stream drawing from a [`SharedLimit`].
#[derive(Debug)]
pub(crate) struct Active(Arc<SharedLimit>);

impl Active {
    pub(crate) fn limit(&self) -> &Arc<SharedLimit> {
        &self.0
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_hint_divides_a_tenth_of_a_second_among_streams() {
        let limit = Arc::new(SharedLimit::new(Bandwidth::kib(160)));
        assert_eq!(limit.chunk_hint(), Some(16384));
        let a = limit.enter();
        let b = limit.enter();
        assert_eq!(limit.chunk_hint(), Some(8192));
        drop((a, b));
        assert_eq!(limit.chunk_hint(), Some(16384));
        assert_eq!(SharedLimit::new(Bandwidth::UNLIMITED).chunk_hint(), None);
    }

    #[test]
    fn set_rate_replaces_the_limiter_only_on_change() {
        let limit = SharedLimit::new(Bandwidth::kib(1));
        let before = limit.limiter().unwrap();
        limit.set_rate(Bandwidth::kib(1));
        assert!(Arc::ptr_eq(&before, &limit.limiter().unwrap()));
        limit.set_rate(Bandwidth::kib(2));
        assert!(!Arc::ptr_eq(&before, &limit.limiter().unwrap()));
        limit.set_rate(Bandwidth::UNLIMITED);
        assert!(limit.limiter().is_none());
    }
}
