//! [`Fleet`]: what a replica knows of the replicas sharing its store, so that a
//! fail-open share follows the fleet without anybody counting it.
//!
//! Every replica tells the store it is alive (a *heartbeat*): folded into a
//! lease at most once per [`BEAT_EVERY`], or, while no lease carried one for
//! [`IDLE_BEAT`], by a background task of its own (one small request; see
//! `tasks::keep_beating`). The
//! store counts the replicas heard from within [`ALIVE_FOR`] and reports the
//! count with every lease; the last count seen is the number of replicas a
//! fail-open share divides a rate by. A replica that joins is counted from its first lease or beat; one that
//! leaves (or is cut off) is no longer counted [`ALIVE_FOR`] after its last beat.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How often a replica tells the store it is alive.
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(1);

/// How long after the last heartbeat an idle replica (no lease carrying one)
/// sends one of its own: later than a busy replica's next lease would.
pub(crate) const IDLE_BEAT: Duration = Duration::from_millis(1500);

/// How long after its last heartbeat a replica still counts as alive: three
/// beats of a busy replica, two of an idle one, so one late or lost beat does
/// not shrink the count.
pub(crate) const ALIVE_FOR: Duration = Duration::from_secs(3);

/// A replica's view of its fleet, shared by every limit that uses one store.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    /// The last count of live replicas the store reported; 0 before any.
    replicas: AtomicU32,
    /// When a heartbeat last went out (or was claimed by a lease).
    beat_at: Mutex<Option<Instant>>,
    /// Whether the background heartbeat task was started.
    beating: AtomicBool,
}

impl Fleet {
    /// The last count of live replicas (this one included) the store reported,
    /// if it ever answered.
    pub(crate) fn replicas(&self) -> Option<NonZeroU32> {
        NonZeroU32::new(self.replicas.load(Ordering::Relaxed))
    }

    /// Records the count of live replicas a store reported (0: none, kept as
    /// unknown; a store that answers counts at least the replica that asked).
    pub(crate) fn seen(&self, replicas: u32) {
        if replicas > 0 {
            self.replicas.store(replicas, Ordering::Relaxed);
        }
    }

    /// Whether the next request to the store should carry a heartbeat (none
    /// went out within [`BEAT_EVERY`]); if so, it is counted as sent.
    pub(crate) fn beat_due(&self) -> bool {
        let mut beat_at = self.beat_at.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if beat_at.is_some_and(|at| now.duration_since(at) < BEAT_EVERY) {
            return false;
        }
        *beat_at = Some(now);
        true
    }

    /// When the background task should beat: [`IDLE_BEAT`] after the last beat
    /// (or `now`, if that is past).
    pub(super) fn idle_beat_at(&self, now: Instant) -> Instant {
        let beat_at = *self.beat_at.lock().unwrap_or_else(|e| e.into_inner());
        beat_at.map_or(now, |at| (at + IDLE_BEAT).max(now))
    }

    /// Marks the background heartbeat task as running; `false` if it already
    /// was (see `tasks::keep_beating`).
    pub(super) fn start_beating(&self) -> bool {
        !self.beating.swap(true, Ordering::AcqRel)
    }

    /// The background heartbeat task has ended, however it ended.
    pub(super) fn stopped_beating(&self) {
        self.beating.store(false, Ordering::Release);
    }
}
