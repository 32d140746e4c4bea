//! [`Quota`] and [`QuotaExhausted`]: how many bytes a client may receive per
//! period, and what happens when it has.

use std::fmt;
use std::time::Duration;

use crate::Bandwidth;

/// How many bytes a client may receive per period: "10 GiB per day per user".
///
/// Set it on the layer ([`RangeServeLayer::quota`](crate::RangeServeLayer::quota))
/// or per request in the [policy function](crate::RangeServeLayer::policy)
/// ([`Policy::quota`](crate::Policy::quota), a tier). It counts the bytes
/// actually delivered to each [`ClientKey`](crate::ClientKey) (see the
/// [`throttle`](crate::throttle#quotas) module for the accounting, windows and
/// headers).
///
/// # Windows
///
/// Windows are fixed and aligned to the Unix epoch: a quota of a day starts
/// afresh at 00:00 UTC, one of an hour on the hour, one of 90 s every 90 s
/// since 1970. Fixed windows need one counter per client and window, which
/// replicas share in Redis with one key that expires at the window's end, and
/// tell a refused client exactly when it may come back. The price is the edge:
/// a client may receive its quota just before a window ends and again just
/// after, twice the quota within a short time (a sliding window would prevent
/// that, at the cost of remembering when each byte went and of a `Retry-After`
/// that is only an estimate).
///
/// # Panics
///
/// [`Quota::new`] panics if `period` is shorter than a millisecond.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_range_serve::Quota;
///
/// let daily = Quota::new(10 << 30, Duration::from_secs(86_400));
/// assert_eq!(daily.bytes(), 10_737_418_240);
/// assert_eq!(daily.period(), Duration::from_secs(86_400));
/// assert_eq!(daily.to_string(), "10737418240 bytes per 86400s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    bytes: u64,
    /// In milliseconds, at least one.
    period_ms: u64,
}

impl Quota {
    /// `bytes` per `period` (whole milliseconds; shorter periods panic, longer
    /// ones are rounded down to the millisecond).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::Quota;
    ///
    /// let quota = Quota::new(4 << 20, Duration::from_secs(60));
    /// assert_eq!(quota.bytes(), 4 * 1024 * 1024);
    /// ```
    pub const fn new(bytes: u64, period: Duration) -> Self {
        let millis = period.as_millis();
        assert!(millis > 0, "a quota's period is at least a millisecond");
        let period_ms = if millis > u64::MAX as u128 {
            u64::MAX
        } else {
            millis as u64
        };
        Self { bytes, period_ms }
    }

    /// The bytes a client may receive per period.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_range_serve::Quota;
    /// assert_eq!(Quota::new(100, Duration::from_secs(1)).bytes(), 100);
    /// ```
    pub const fn bytes(self) -> u64 {
        self.bytes
    }

    /// The period, the length of one window.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_range_serve::Quota;
    /// let quota = Quota::new(100, Duration::from_secs(60));
    /// assert_eq!(quota.period(), Duration::from_secs(60));
    /// ```
    pub const fn period(self) -> Duration {
        Duration::from_millis(self.period_ms)
    }

    pub(crate) fn period_ms(self) -> u64 {
        self.period_ms
    }

    /// The bytes leased from Redis at once: 1% of the quota, at least 64 KiB,
    /// at most the quota.
    #[cfg(feature = "redis")]
    pub(crate) fn lease(self) -> u64 {
        (self.bytes / 100).max(64 * 1024).min(self.bytes).max(1)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = self.period();
        match period.subsec_millis() {
            0 => write!(f, "{} bytes per {}s", self.bytes, period.as_secs()),
            _ => write!(f, "{} bytes per {}ms", self.bytes, self.period_ms),
        }
    }
}

/// What a client that has spent its [`Quota`] gets: the default is
/// [`End`](Self::End).
///
/// ```
/// use tower_range_serve::{Bandwidth, QuotaExhausted};
///
/// assert_eq!(QuotaExhausted::default(), QuotaExhausted::End);
/// let slow = QuotaExhausted::Reduce(Bandwidth::kib(64));
/// # let _ = slow;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaExhausted {
    /// Running downloads end (with an error, so the connection is aborted and
    /// the client can resume later with `Range` and `If-Range`) before the chunk
    /// after the one that spent the last byte; new requests get `429 Too Many
    /// Requests` with `Retry-After` until the window ends. The default.
    #[default]
    End,
    /// Running downloads go on at this rate each (on top of any other limit),
    /// and new requests are served at it, until the window ends; the bytes
    /// still count. An unlimited rate here means [`End`](Self::End).
    Reduce(Bandwidth),
}

impl QuotaExhausted {
    /// The reduced rate, if downloads go on.
    pub(crate) fn reduced(self) -> Option<u64> {
        match self {
            Self::End => None,
            Self::Reduce(rate) => rate.limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "at least a millisecond")]
    fn a_period_under_a_millisecond_panics() {
        let _ = Quota::new(1, Duration::from_micros(999));
    }

    #[test]
    #[cfg(feature = "redis")]
    fn leases_are_a_hundredth_within_64_kib_and_the_quota() {
        let day = Duration::from_secs(86_400);
        assert_eq!(Quota::new(1 << 30, day).lease(), (1 << 30) / 100);
        assert_eq!(Quota::new(1 << 20, day).lease(), 64 * 1024);
        assert_eq!(Quota::new(1000, day).lease(), 1000);
        assert_eq!(Quota::new(0, day).lease(), 1);
    }

    #[test]
    fn an_unlimited_reduced_rate_ends() {
        assert_eq!(QuotaExhausted::Reduce(Bandwidth::UNLIMITED).reduced(), None);
        assert_eq!(
            QuotaExhausted::Reduce(Bandwidth::kib(1)).reduced(),
            Some(1024)
        );
    }
}
