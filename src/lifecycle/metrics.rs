//! [`Metrics`]: downloads measured through the `metrics` facade (the `metrics`
//! feature), for any exporter (Prometheus, OpenTelemetry, StatsD …).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};

use metrics::{
    Label, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use super::observer::{Answer, Download, End, Observer};

/// Download metrics, recorded through the [`metrics`](https://docs.rs/metrics)
/// facade: whatever recorder the application installs (Prometheus,
/// OpenTelemetry, StatsD …) gets them. Give it to
/// [`RangeServeLayer::metrics`](crate::RangeServeLayer::metrics); it is told
/// of downloads beside the layer's [`observer`](crate::RangeServeLayer::observer)
/// (and the `tracing` one), never instead of them.
///
/// Downloads are measured to their last byte, not to their headers: a
/// duration ends when the body ends, and the byte counter grows while a
/// download runs (at each [`progress_interval`](crate::RangeServeLayer::progress_interval))
/// and takes the rest at its end, so at rest it equals exactly the bytes the
/// bodies handed to the server.
///
/// # Metrics
///
/// Names follow OpenTelemetry's semantic conventions where one means the
/// same thing (`http.server.request.duration`), rendered the Prometheus way
/// (underscores, unit suffix, `_total` for counters), and are prefixed
/// `range_serve_` otherwise. Label names are OpenTelemetry's attributes,
/// rendered the same way.
///
/// | Name | Type | Labels | What |
/// |---|---|---|---|
/// | `range_serve_responses_total` | counter | `http_request_method`, `http_response_status_code` | every answer to a file-backed `GET` or `HEAD`: 200, 206, 304, 412, 416, 429, 503 … |
/// | `range_serve_refusals_total` | counter | `cause`: `stream_cap`, `quota`, `shutting_down`, `signed_link` | requests refused by the layer itself (429, 503); see [`Refusal::as_str`](super::Refusal::as_str) |
/// | `range_serve_active_downloads` | gauge | | downloads running now (a body being sent) |
/// | `range_serve_sent_bytes_total` | counter | | body bytes handed to the server, live |
/// | `range_serve_downloads_total` | counter | `outcome`: `complete`, `client_gone`, `idle_timeout`, `failed`, `shutdown`, `cancelled` | ended downloads; see [`Outcome::as_str`](super::Outcome::as_str) |
/// | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_response_status_code`, `outcome` | each download's time from its answer to its last byte (or its end) |
/// | `range_serve_throttle_wait_seconds` | histogram | | each download's time waiting for its throttle ([`End::throttled`]); its sum over its count is the average wait |
/// | `range_serve_redis_healthy` | gauge | | 1 while the Redis of shared limits answers, 0 while streams use their fallback (the `redis` feature) |
/// | `range_serve_redis_failures_total` | counter | | times Redis stopped answering |
///
/// Every metric but the Redis ones also carries the labels given with
/// [`label`](Self::label). Labels are bounded: never the path or the client
/// (a label per path or per client would make a series per file or per
/// visitor); a layer per route with its own `route` label tells routes apart.
///
/// The `http_server_request_duration_seconds` of a generic HTTP middleware
/// ends when the headers are sent; a server that has both exports two
/// families under one name: give this one a label of its own
/// (`.label("layer", "range_serve")`) to tell them apart.
///
/// Histograms are recorded in seconds; Prometheus exporters render them as
/// summaries unless given buckets (`metrics-exporter-prometheus`'s
/// `set_buckets_for_metric`; the demo server's `--metrics` does).
///
/// # Example
///
/// ```
/// use tower_range_serve::RangeServeLayer;
/// use tower_range_serve::lifecycle::Metrics;
///
/// let layer = RangeServeLayer::new().metrics(Metrics::new().label("route", "downloads"));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Metrics {
    labels: Vec<Label>,
}

/// The names of the metrics (see the table above).
impl Metrics {
    /// Answers to file-backed `GET` and `HEAD` requests.
    pub const RESPONSES: &str = "range_serve_responses_total";
    /// Requests the layer refused (429, 503), by cause.
    pub const REFUSALS: &str = "range_serve_refusals_total";
    /// Downloads running now.
    pub const ACTIVE: &str = "range_serve_active_downloads";
    /// Body bytes handed to the server.
    pub const SENT: &str = "range_serve_sent_bytes_total";
    /// Downloads ended, by outcome.
    pub const DOWNLOADS: &str = "range_serve_downloads_total";
    /// Download durations, from the answer to the last byte.
    pub const DURATION: &str = "http_server_request_duration_seconds";
    /// Per download, the time its body held a chunk waiting for the throttle.
    pub const THROTTLED: &str = "range_serve_throttle_wait_seconds";
    /// Whether the Redis of shared limits answers (1) or not (0).
    pub const REDIS_HEALTHY: &str = "range_serve_redis_healthy";
    /// Times the Redis of shared limits stopped answering (streams went to their
    /// fallback).
    pub const REDIS_FAILURES: &str = "range_serve_redis_failures_total";
}

impl Metrics {
    /// Metrics with no labels of their own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a label to every download metric (say, the route). Keep the values
    /// few: each one makes its own series.
    ///
    /// ```
    /// use tower_range_serve::lifecycle::Metrics;
    ///
    /// let metrics = Metrics::new().label("route", "downloads").label("tier", "free");
    /// # let _ = metrics;
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(Label::new(key.into(), value.into()));
        self
    }

    /// The observer that records them.
    pub(crate) fn observer(self) -> Arc<dyn Observer> {
        Arc::new(Recording {
            labels: self.labels,
            reported: Mutex::default(),
            described: Once::new(),
        })
    }
}

/// The observer of [`Metrics`].
struct Recording {
    labels: Vec<Label>,
    /// The bytes already counted of each running download.
    reported: Mutex<HashMap<u64, u64>>,
    described: Once,
}

impl Recording {
    /// The user's labels and `more`.
    fn labels<const N: usize>(&self, more: [(&'static str, String); N]) -> Vec<Label> {
        let mut labels = self.labels.clone();
        labels.extend(more.map(|(key, value)| Label::new(key, value)));
        labels
    }

    /// Counts the bytes of `download` not counted yet, up to `sent`.
    fn count_sent(&self, download: &Download, sent: u64, ended: bool) {
        let delta = {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            let before = match ended {
                true => reported.remove(&download.id),
                false => reported.insert(download.id, sent),
            };
            sent.saturating_sub(before.unwrap_or(0))
        };
        if delta > 0 {
            counter!(Metrics::SENT, self.labels.clone()).increment(delta);
        }
    }
}

/// Describes the metrics to the recorder (their help text and units).
fn describe() {
    use metrics::Unit;
    describe_counter!(
        Metrics::RESPONSES,
        "Answers to file-backed GET and HEAD requests."
    );
    describe_counter!(
        Metrics::REFUSALS,
        "Requests refused by the layer (429, 503), by cause."
    );
    describe_gauge!(Metrics::ACTIVE, "Downloads running now.");
    describe_counter!(
        Metrics::SENT,
        Unit::Bytes,
        "Body bytes handed to the server."
    );
    describe_counter!(Metrics::DOWNLOADS, "Downloads ended, by outcome.");
    describe_histogram!(
        Metrics::DURATION,
        Unit::Seconds,
        "Download durations, from the answer to the last byte."
    );
    describe_histogram!(
        Metrics::THROTTLED,
        Unit::Seconds,
        "Time each download waited for its throttle."
    );
}

impl Observer for Recording {
    fn answer(&self, answer: &Answer) {
        self.described.call_once(describe);
        let labels = self.labels([
            ("http_request_method", answer.method.to_string()),
            (
                "http_response_status_code",
                answer.status.as_str().to_owned(),
            ),
        ]);
        counter!(Metrics::RESPONSES, labels).increment(1);
        if let Some(refusal) = answer.refusal {
            let labels = self.labels([("cause", refusal.as_str().to_owned())]);
            counter!(Metrics::REFUSALS, labels).increment(1);
        }
    }

    fn start(&self, download: &Download) {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(download.id, 0);
        gauge!(Metrics::ACTIVE, self.labels.clone()).increment(1.0);
    }

    fn progress(&self, download: &Download, sent: u64) {
        self.count_sent(download, sent, false);
    }

    fn end(&self, download: &Download, end: &End) {
        self.count_sent(download, end.sent, true);
        gauge!(Metrics::ACTIVE, self.labels.clone()).decrement(1.0);
        let outcome = end.outcome.as_str().to_owned();
        counter!(
            Metrics::DOWNLOADS,
            self.labels([("outcome", outcome.clone())])
        )
        .increment(1);
        let labels = self.labels([
            ("http_request_method", "GET".to_owned()),
            (
                "http_response_status_code",
                download.status.as_str().to_owned(),
            ),
            ("outcome", outcome),
        ]);
        histogram!(Metrics::DURATION, labels).record(end.elapsed.as_secs_f64());
        histogram!(Metrics::THROTTLED, self.labels.clone()).record(end.throttled.as_secs_f64());
    }
}

/// The Redis of shared limits answers again, or stopped answering.
#[cfg(feature = "redis")]
pub(crate) fn redis_health(was_healthy: bool, healthy: bool) {
    gauge!(Metrics::REDIS_HEALTHY).set(if healthy { 1.0 } else { 0.0 });
    if was_healthy && !healthy {
        counter!(Metrics::REDIS_FAILURES).increment(1);
    }
}
