//! [`limiter_for`]: the `leaky-bucket` limiter of a shared rate, sized so that
//! its refills stay precise on a busy machine.

use std::time::Duration;

use leaky_bucket::RateLimiter;

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
}
