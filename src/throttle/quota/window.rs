//! [`Clock`]: the wall clock quotas' windows are aligned to, read through
//! tokio's clock so that paused-time tests move it.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Quota;

/// The wall clock as of its creation, advanced by tokio's monotonic clock: a
/// window's end is an [`Instant`] to sleep until, and tests with paused time
/// move windows along exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Time since the Unix epoch at `origin`.
    wall: Duration,
    origin: Instant,
}

/// One window of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Windows since the epoch.
    pub(crate) index: u64,
    /// When it ends.
    pub(crate) ends_at: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Self::at(wall)
    }
}

impl Clock {
    /// A clock that reads `wall` (since the epoch) now.
    pub(crate) fn at(wall: Duration) -> Self {
        Self {
            wall,
            origin: Instant::now(),
        }
    }

    /// The window of `quota` at `now`.
    pub(crate) fn window(&self, quota: Quota, now: Instant) -> Window {
        let wall = self.wall + now.saturating_duration_since(self.origin);
        let wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
        let period = quota.period_ms();
        let index = wall_ms / period;
        let end_ms = index.saturating_add(1).saturating_mul(period);
        let ends_at = now + Duration::from_millis(end_ms.saturating_sub(wall_ms));
        // Sub-millisecond parts of `wall` are below the accuracy windows need.
        Window { index, ends_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn windows_are_aligned_to_the_epoch() {
        let clock = Clock::at(Duration::from_secs(3600 * 24 * 365 + 30));
        let minute = Quota::new(1, Duration::from_secs(60));
        let start = Instant::now();
        let window = clock.window(minute, start);
        assert_eq!(window.index, 24 * 365 * 60);
        assert_eq!(window.ends_at - start, Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        let next = clock.window(minute, Instant::now());
        assert_eq!(next.index, window.index + 1);
        assert_eq!(next.ends_at - Instant::now(), Duration::from_secs(60));
    }
}
