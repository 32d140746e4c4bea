//! Lifecycle: disconnects, graceful shutdown, progress, idle connections, answers.
//!
//! # Client disconnect
//!
//! When a client goes away, the server drops the response body. Reading stops at
//! once: no read starts after the drop (one read already running on the blocking
//! pool finishes and is discarded), the file is closed when that read returns, the
//! response's place in every bandwidth limit is given up, and a pending limiter
//! acquisition is aborted. Observers see [`Outcome::ClientGone`].
//!
//! # Graceful shutdown
//!
//! [`Shutdown`] (from [`RangeServeLayer::shutdown_handle`]): once begun, new
//! file-backed responses get `503 Service Unavailable` with `Retry-After`; running
//! downloads go on until the grace period ends, then end with an error at their
//! next chunk (observers see [`Outcome::Shutdown`]), so the connection closes and
//! the client resumes later with `Range` and `If-Range`.
//!
//! A download whose client stopped reading is not polled, so it cannot end
//! itself, and the server's own graceful shutdown (`axum::serve`'s
//! `with_graceful_shutdown`, hyper's `graceful_shutdown`) waits for its
//! connection. Accept connections with [`Connections`] (or wrap them in a
//! [`Connection`]): every connection still open when the grace period ends is
//! closed, whether or not its client reads, so the server stops within the
//! grace period plus the moment it takes to close.
//!
//! # Progress
//!
//! An [`Observer`] is told when a download starts, how far it got at most once per
//! [`progress_interval`](crate::RangeServeLayer::progress_interval), and how it
//! ended ([`Outcome`]), with bytes sent and duration.
//!
//! # Integrity
//!
//! A file that shrinks, grows or is modified while it is sent is noticed at the
//! next chunk (its length and modification time are checked against those at
//! opening); the body then ends with an error instead of sending bytes of two
//! versions (observers see [`Outcome::Failed`]). A file replaced by renaming
//! another over it is not a change of the open file: the old version is sent to
//! the end, consistently. Either way, a client resuming with `If-Range` and the
//! old `ETag` then gets the new version whole, with 200.
//!
//! # Tracing
//!
//! With the `tracing` feature, every download emits `tracing` events (target
//! `tower_range_serve`): `debug` at its start and on progress, `info` at its end,
//! with its id, path, client, status, bytes and outcome, in a `download` span.
//! They come in addition to a user's observer.
//!
//! # Idle connections
//!
//! [`Connections::idle_timeout`] (or [`Connection::idle_timeout`]) disconnects a
//! client that accepts no byte for too long (a stalled client's body is no
//! longer polled, so only the connection can notice); observers see
//! [`Outcome::IdleTimeout`].
//!
//! # Answers
//!
//! [`Observer::answer`] hears every answer the layer gives to a file-backed
//! `GET` or `HEAD`, not only those with a body: `HEAD`, 304, 412, 416, 429 and
//! 503 too, with the status, the client key and, for a refusal, its
//! [`Refusal`] cause, so logs and metrics can count them.
//!
//! # Cancel
//!
//! Every [`Download`] an observer hears of carries a [`CancelHandle`]: an
//! admin can end one running download at once (observers see
//! [`Outcome::Cancelled`]).
//!
//! # Metrics
//!
//! With the `metrics` feature, [`Metrics`] (given to
//! [`RangeServeLayer::metrics`](crate::RangeServeLayer::metrics)) records
//! answers, bytes, running downloads, their durations to the last byte, how they
//! ended, throttle waits, refusals and the Redis state through the `metrics`
//! facade, for any exporter. See [`Metrics`] for the table of names.
//!
//! [`RangeServeLayer::shutdown_handle`]: crate::RangeServeLayer::shutdown_handle

mod cancel;
mod connection;
mod listener;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod observer;
mod peers;
mod shutdown;
mod tracker;

pub use self::cancel::CancelHandle;
pub use self::connection::{Connection, IdleSignal};
#[cfg(feature = "axum")]
pub use self::listener::AxumListener;
pub use self::listener::Connections;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use self::metrics::Metrics;
pub use self::observer::{Answer, Download, End, Observer, Outcome, Refusal};
pub use self::shutdown::Shutdown;

pub(crate) use self::tracker::Tracker;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use crate::throttle::ClientKey;

/// The lifecycle settings of a layer; clones share the shutdown state.
#[derive(Clone)]
pub(crate) struct Settings {
    /// Everything told of downloads: the user's observer, the metrics and the
    /// `tracing` one, combined (see [`Settings::combine`]).
    pub(crate) observer: Option<Arc<dyn Observer>>,
    user: Option<Arc<dyn Observer>>,
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<dyn Observer>>,
    pub(crate) progress_interval: Duration,
    pub(crate) shutdown: Arc<shutdown::State>,
    ids: Arc<AtomicU64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            observer: combine([]),
            user: None,
            #[cfg(feature = "metrics")]
            metrics: None,
            progress_interval: Duration::from_secs(1),
            shutdown: Arc::default(),
            ids: Arc::default(),
        }
    }
}

/// What the request told, for the observer and the tracker.
#[derive(Debug, Default)]
pub(crate) struct RequestInfo {
    pub(crate) method: Method,
    /// The path, kept only when there is an observer.
    pub(crate) path: Option<String>,
    pub(crate) idle: Option<IdleSignal>,
}

/// What the response is, for the tracker.
pub(crate) struct ResponseInfo {
    pub(crate) client: Option<ClientKey>,
    pub(crate) status: StatusCode,
    pub(crate) ranges: Vec<(u64, u64)>,
    pub(crate) file_len: u64,
    pub(crate) total: u64,
}

impl Settings {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_shutting_down()
    }

    /// What the observer and the tracker need of a request; nothing is kept
    /// (and nothing looked up) without an observer.
    pub(crate) fn request_info(&self, parts: &http::request::Parts) -> RequestInfo {
        if self.observer.is_none() {
            return RequestInfo {
                method: parts.method.clone(),
                ..RequestInfo::default()
            };
        }
        // A server that inserts its connection's signal, or one whose
        // connections come from `Connections` (found by the peer address).
        let idle = parts.extensions.get::<IdleSignal>().cloned().or_else(|| {
            let peer = crate::throttle::client_key::peer_addr(parts)?;
            self.shutdown.peers.signal(peer)
        });
        RequestInfo {
            method: parts.method.clone(),
            path: Some(parts.uri.path().to_owned()),
            idle,
        }
    }

    /// Tells the observer of an answer that starts no download.
    pub(crate) fn answered(
        &self,
        request: &RequestInfo,
        status: StatusCode,
        client: Option<ClientKey>,
        refusal: Option<Refusal>,
        body: u64,
    ) {
        if let Some(observer) = &self.observer {
            observer.answer(&Answer {
                method: request.method.clone(),
                status,
                client,
                path: request.path.clone().unwrap_or_default(),
                body,
                refusal,
                download: None,
            });
        }
    }

    /// Starts tracking a download, after telling the observer of its answer.
    pub(crate) fn track(&self, request: RequestInfo, response: ResponseInfo) -> Tracker {
        let total = response.total;
        let observer = self.observer.clone().map(|observer| {
            let download = Download {
                id: self.ids.fetch_add(1, Ordering::Relaxed),
                client: response.client,
                path: request.path.unwrap_or_default(),
                status: response.status,
                ranges: response.ranges,
                file_len: response.file_len,
                total: response.total,
                started: Instant::now(),
                cancel: CancelHandle::default(),
            };
            observer.answer(&Answer {
                method: request.method,
                status: download.status,
                client: download.client.clone(),
                path: download.path.clone(),
                body: download.total,
                refusal: None,
                download: Some(download.id),
            });
            (observer, download, self.progress_interval)
        });
        Tracker::new(self.shutdown.enter(), observer, request.idle, total)
    }
}

impl Settings {
    /// Sets the user's observer (beside the metrics and the `tracing` one).
    pub(crate) fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.user = Some(observer);
        self.observer = self.combined();
    }

    /// Sets the metrics observer (beside the user's and the `tracing` one).
    #[cfg(feature = "metrics")]
    pub(crate) fn set_metrics(&mut self, metrics: Arc<dyn Observer>) {
        self.metrics = Some(metrics);
        self.observer = self.combined();
    }

    fn combined(&self) -> Option<Arc<dyn Observer>> {
        #[cfg(feature = "metrics")]
        let metrics = self.metrics.clone();
        #[cfg(not(feature = "metrics"))]
        let metrics = None;
        combine([self.user.clone(), metrics])
    }
}

/// One observer for all of `observers` that are there, and (with the `tracing`
/// feature) the `tracing` one; `None` if there are none.
fn combine<const N: usize>(observers: [Option<Arc<dyn Observer>>; N]) -> Option<Arc<dyn Observer>> {
    #[cfg(feature = "tracing")]
    let tracing: Option<Arc<dyn Observer>> = Some(Arc::new(observer::Tracing));
    #[cfg(not(feature = "tracing"))]
    let tracing = None;
    let mut all: Vec<_> = observers.into_iter().chain([tracing]).flatten().collect();
    match all.len() {
        0 => None,
        1 => all.pop(),
        _ => Some(Arc::new(observer::Observers(all.into()))),
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("observer", &self.observer.is_some())
            .field("progress_interval", &self.progress_interval)
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}
