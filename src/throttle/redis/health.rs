//! [`Health`]: whether a store is failing, shared by every limit that uses it.
//! The probe that asks a failing store again is a task of its own (see
//! `tasks`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Whether a store is failing, shared by every keeper that uses it: one failed
/// lease sends them all to their fallback for the retry period; after it, a
/// probe (a lease of nothing, in a task of its own) asks the store whether it
/// answers again, while every keeper goes on with its fallback. Streams never
/// wait for a failing store, and it gets one request per retry period.
#[derive(Debug)]
pub(crate) struct Health {
    /// Until when the store counts as failing; `None` while it answers.
    failing_until: Mutex<Option<Instant>>,
    probing: AtomicBool,
}

/// What a keeper may do with its store now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    Healthy,
    /// Use the fallback until then.
    Failing(Instant),
    /// Start the probe, and use the fallback until then (by when it knows).
    Probe(Instant),
}

// Not derived: with the `metrics` feature, a new store reports itself healthy.
#[allow(clippy::derivable_impls)]
impl Default for Health {
    fn default() -> Self {
        #[cfg(feature = "metrics")]
        crate::lifecycle::metrics::redis_health(true, true);
        Self {
            failing_until: Mutex::default(),
            probing: AtomicBool::default(),
        }
    }
}

impl Health {
    /// Until when the store counts as failing (`None` while it answers).
    pub(crate) fn failing_until(&self) -> Option<Instant> {
        *self.failing_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a keeper may do now; a probe answers within `timeout` (the
    /// store's) of starting.
    pub(crate) fn standing(&self, timeout: Duration) -> Standing {
        let now = Instant::now();
        match *self.failing_until.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Standing::Healthy,
            Some(until) if now < until => Standing::Failing(until),
            // A probe is running: it knows within twice its timeout.
            Some(_) if self.probing.swap(true, Ordering::AcqRel) => {
                Standing::Failing(now + timeout)
            }
            Some(_) => Standing::Probe(now + timeout),
        }
    }

    /// The probe that [`Standing::Probe`] started has ended, however it ended.
    pub(crate) fn probe_ended(&self) {
        self.probing.store(false, Ordering::Release);
    }

    pub(crate) fn set(&self, failing_until: Option<Instant>) {
        let before = std::mem::replace(
            &mut *self.failing_until.lock().unwrap_or_else(|e| e.into_inner()),
            failing_until,
        );
        #[cfg(feature = "metrics")]
        crate::lifecycle::metrics::redis_health(before.is_none(), failing_until.is_none());
        let _ = before;
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn health_changes_set_the_redis_gauge_and_count_failures() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        // A snapshot takes the values and zeroes them: (healthy, failures since).
        let figures = || {
            let snapshot = snapshotter.snapshot().into_hashmap();
            let value = |name: &str| {
                let found = snapshot.iter().find(|(key, _)| key.key().name() == name);
                found.map_or(0.0, |(_, (_, _, value))| match value {
                    DebugValue::Gauge(value) => value.into_inner(),
                    DebugValue::Counter(value) => *value as f64,
                    DebugValue::Histogram(_) => f64::NAN,
                })
            };
            (
                value("range_serve_redis_healthy"),
                value("range_serve_redis_failures_total"),
            )
        };
        metrics::with_local_recorder(&recorder, || {
            let health = Health::default();
            assert_eq!(figures(), (1.0, 0.0));
            health.set(Some(Instant::now()));
            health.set(Some(Instant::now() + Duration::from_secs(1)));
            assert_eq!(figures(), (0.0, 1.0), "one failure, however long");
            health.set(None);
            assert_eq!(figures(), (1.0, 0.0));
            health.set(Some(Instant::now()));
            assert_eq!(figures(), (0.0, 1.0));
        });
    }
}
