//! [`SharedLimit`]: one bandwidth shared by many responses, on a `leaky-bucket`
//! rate limiter whose rate can be changed while streams run.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use leaky_bucket::RateLimiter;

use super::Bandwidth;
use super::store::Store;
use super::turns::{self, Queue, Request};

/// The store sharing a limit's budget, and the limit's key in it.
pub(crate) type SharedBy = (Arc<dyn Store>, Arc<str>);

/// A bandwidth shared by every response that uses it (one client, or a whole layer).
///
/// Tokens are bytes. The limiter refills every 100 ms (see [`limiter_for`]) and
/// holds at most 100 ms of budget, which bounds the burst after an idle period.
/// Only the limit's turn keeper acquires from it (see [`turns`]); streams queue
/// at the keeper, first come, first served.
#[derive(Debug)]
pub(crate) struct SharedLimit {
    limiter: RwLock<Option<Arc<RateLimiter>>>,
    rate: AtomicU64,
    /// Streams currently drawing from this limit.
    active: AtomicUsize,
    /// The keeper's queue, started on first use.
    queue: Mutex<Option<Queue>>,
    /// Where the budget lives when several servers share it, and under which key.
    store: RwLock<Option<SharedBy>>,
}

impl SharedLimit {
    pub(crate) fn new(rate: Bandwidth) -> Self {
        Self {
            limiter: RwLock::new(rate.limit().map(|rate| Arc::new(limiter_for(rate)))),
            rate: AtomicU64::new(rate.bytes_per_second()),
            active: AtomicUsize::new(0),
            queue: Mutex::new(None),
            store: RwLock::new(None),
        }
    }

    /// Shares this limit's budget through `store`, under `key`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn share(&self, store: Arc<dyn Store>, key: Arc<str>) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Some((store, key));
    }

    /// The store sharing this limit's budget, if any, and the key in it.
    pub(crate) fn store(&self) -> Option<SharedBy> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Queues `request` at this limit's keeper, starting the keeper if there is
    /// none (or its runtime is gone). Gives the request back when this limit lets
    /// everything through: unlimited, or no runtime to keep turns on.
    pub(crate) fn enqueue(self: &Arc<Self>, request: Request) -> Result<(), Request> {
        if self.rate().limit().is_none() {
            return Err(request);
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let request = match queue.as_ref() {
            Some(keeper) => match keeper.send(request) {
                Ok(()) => return Ok(()),
                Err(closed) => closed.0,
            },
            None => request,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(request);
        };
        let keeper = queue.insert(turns::spawn_keeper(self, &runtime));
        keeper.send(request).map_err(|returned| returned.0)
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

/// The limiter of a shared limit: `rate` bytes per second. Only its keeper
/// acquires from it, so waiting order is the keeper's; `fair(true)` is kept
/// because it also keeps leaky-bucket off its lock-free fast path.
///
/// leaky-bucket refills `refill` tokens every whole number of milliseconds, and
/// starts each period anew from the moment its core wakes up. A core woken late
/// (tokio's timers have millisecond resolution) loses that lateness every
/// period: with 10 ms periods that cost 9% of the rate on a busy machine. So the
/// interval is the shortest from 100 ms up whose whole-byte refill is within
/// 0.1% of the rate (rounded down, so the limit is never exceeded), which bounds
/// the loss to about 1%; a rate too small for that gets a one-second interval
/// and is then exact. 100 ms is also the bucket's capacity, so a refill never
/// overflows it.
pub(crate) fn limiter_for(rate: u64) -> RateLimiter {
    let (interval_ms, refill) = (100..=1000u64)
        .map(|ms| (ms, rate.saturating_mul(ms) / 1000))
        .find(|&(ms, refill)| {
            refill > 0
                && (rate.saturating_mul(ms) - refill * 1000) * 1000 <= rate.saturating_mul(ms)
        })
        .unwrap_or((1000, rate));
    let refill = usize::try_from(refill).unwrap_or(usize::MAX);
    let burst = usize::try_from(rate / 10).unwrap_or(usize::MAX).max(refill);
    // Starts full, as an idle bucket would be: a first chunk goes at once.
    RateLimiter::builder()
        .initial(burst)
        .refill(refill)
        .interval(Duration::from_millis(interval_ms))
        .max(burst)
        .fair(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actual_rate(limiter: &RateLimiter) -> f64 {
        limiter.refill() as f64 / limiter.interval().as_secs_f64()
    }

    #[test]
    fn refill_steps_are_small_and_within_a_tenth_of_a_percent() {
        for rate in [
            1_000u64,
            16 * 1024,
            256 * 1024,
            1 << 20,
            10_000_000,
            1 << 30,
        ] {
            let limiter = limiter_for(rate);
            let actual = actual_rate(&limiter);
            assert!(actual <= rate as f64, "{rate}");
            assert!(actual >= rate as f64 * 0.999, "{rate}: {actual}");
            assert!(limiter.interval() <= Duration::from_millis(100), "{rate}");
            assert!(limiter.max() as u64 >= rate / 10);
        }
    }

    #[test]
    fn tiny_rates_get_longer_intervals_and_stay_precise() {
        for rate in [1u64, 3, 7, 99] {
            let limiter = limiter_for(rate);
            assert!(limiter.refill() > 0);
            let actual = actual_rate(&limiter);
            assert!(
                actual <= rate as f64 && actual >= rate as f64 * 0.999,
                "{rate}: {actual}"
            );
        }
    }

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
