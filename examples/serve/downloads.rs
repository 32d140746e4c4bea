//! The running downloads and the totals the admin page shows: an observer of
//! the layer, with each download's bytes sent, its current rate and its
//! cancel handle, and the server's throughput second by second.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tower_range_serve::lifecycle::{Download, End, Observer};

/// How far back a download's rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// A download that sent nothing for this long has a rate of 0.
const STALLED: Duration = Duration::from_secs(2);

/// Seconds of throughput history kept: five minutes.
const HISTORY: usize = 300;

/// The running downloads and the totals; clones share them.
#[derive(Clone, Default)]
pub(crate) struct Downloads {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    running: BTreeMap<u64, Running>,
    /// Downloads ended, by outcome.
    outcomes: BTreeMap<&'static str, u64>,
    /// Bytes of the downloads that ended.
    ended_bytes: u64,
    /// Bytes per second, one entry a second, the newest last.
    history: VecDeque<u64>,
    /// All bytes sent at the last sample.
    sampled: u64,
}

struct Running {
    download: Download,
    sent: u64,
    /// (when, bytes sent then), the newest last, over the last [`RATE_WINDOW`].
    samples: VecDeque<(Instant, u64)>,
}

impl Running {
    /// Bytes per second over the last few seconds; `None` until two progress
    /// reports came.
    fn rate(&self, now: Instant) -> Option<u64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        if now.duration_since(last.0) > STALLED {
            return Some(0);
        }
        let span = last.0.duration_since(first.0).as_secs_f64();
        (span > 0.1).then(|| ((last.1 - first.1) as f64 / span) as u64)
    }
}

impl Downloads {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running downloads, as `GET /api/downloads` sends them.
    pub(crate) fn list(&self) -> Value {
        let now = Instant::now();
        let state = self.lock();
        let list: Vec<Value> = state
            .running
            .values()
            .map(|running| {
                let download = &running.download;
                json!({
                    "id": download.id,
                    "client": download.client.as_ref().map(ToString::to_string),
                    "path": download.path,
                    "status": download.status.as_u16(),
                    "sent": running.sent,
                    "length": download.total,
                    "rate": running.rate(now),
                    "elapsed": download.started.elapsed().as_secs_f64(),
                })
            })
            .collect();
        Value::Array(list)
    }

    /// Cancels download `id`; false if no such download runs.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let state = self.lock();
        let Some(running) = state.running.get(&id) else {
            return false;
        };
        running.download.cancel_handle().cancel();
        true
    }

    /// The totals and the throughput history, as `GET /api/stats` sends them.
    pub(crate) fn stats(&self) -> Value {
        let state = self.lock();
        json!({
            "active": state.running.len(),
            "ended": state.outcomes.values().sum::<u64>(),
            "outcomes": state.outcomes,
            "sent": state.total_sent(),
            "history": state.history,
        })
    }

    /// Records the throughput once a second, forever.
    pub(crate) async fn sample(self) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let mut state = self.lock();
            let total = state.total_sent();
            let delta = total - state.sampled;
            state.sampled = total;
            if state.history.len() == HISTORY {
                state.history.pop_front();
            }
            state.history.push_back(delta);
        }
    }
}

impl State {
    fn total_sent(&self) -> u64 {
        self.ended_bytes + self.running.values().map(|r| r.sent).sum::<u64>()
    }
}

impl Observer for Downloads {
    fn start(&self, download: &Download) {
        let running = Running {
            download: download.clone(),
            sent: 0,
            samples: VecDeque::from([(Instant::now(), 0)]),
        };
        self.lock().running.insert(download.id, running);
    }

    fn progress(&self, download: &Download, sent: u64) {
        let now = Instant::now();
        if let Some(running) = self.lock().running.get_mut(&download.id) {
            running.sent = sent;
            running.samples.push_back((now, sent));
            // Keep one sample older than the window, so the window is full.
            while running.samples.len() > 2
                && now.duration_since(running.samples[1].0) > RATE_WINDOW
            {
                running.samples.pop_front();
            }
        }
    }

    fn end(&self, download: &Download, end: &End) {
        let mut state = self.lock();
        state.running.remove(&download.id);
        state.ended_bytes += end.sent;
        *state.outcomes.entry(end.outcome.as_str()).or_default() += 1;
    }
}
