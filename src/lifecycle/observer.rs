//! [`Observer`]: what a download tells about its life.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use super::cancel::CancelHandle;
use crate::throttle::ClientKey;

/// A download (one file-backed response body) as observers see it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Download {
    /// Unique among the downloads of one layer and its clones.
    pub id: u64,
    /// The client, when the bandwidth policy knows one.
    pub client: Option<ClientKey>,
    /// The request path.
    pub path: String,
    /// 200 or 206.
    pub status: StatusCode,
    /// The byte ranges sent, inclusive; the whole file for a 200.
    pub ranges: Vec<(u64, u64)>,
    /// The length of the file.
    pub file_len: u64,
    /// The bytes of this response body (parts headers included for multipart).
    pub total: u64,
    /// When the response started.
    pub started: Instant,
    /// Ends this download (see [`cancel_handle`](Self::cancel_handle)).
    pub(crate) cancel: CancelHandle,
}

impl Download {
    /// The handle that ends this download at once, from anywhere (an admin
    /// endpoint); observers see [`Outcome::Cancelled`]. See [`CancelHandle`].
    ///
    /// ```
    /// use tower_range_serve::lifecycle::{Download, Observer};
    ///
    /// /// Cancels every download of `/secret.bin` as it starts.
    /// struct NoSecrets;
    ///
    /// impl Observer for NoSecrets {
    ///     fn start(&self, download: &Download) {
    ///         if download.path == "/secret.bin" {
    ///             download.cancel_handle().cancel();
    ///         }
    ///     }
    /// }
    /// # let _ = tower_range_serve::RangeServeLayer::new().observer(NoSecrets);
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }
}

/// How a download ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every byte was handed to the server.
    Complete,
    /// The body was dropped before the end: the client went away, or the server
    /// closed the connection.
    ClientGone,
    /// The client accepted no byte for longer than the connection's
    /// idle timeout ([`Connections::idle_timeout`](crate::lifecycle::Connections::idle_timeout)).
    IdleTimeout,
    /// Reading failed, or the file changed while it was being sent.
    Failed(io::ErrorKind),
    /// Cut at the end of a graceful shutdown's grace period.
    Shutdown,
    /// Ended through its [`CancelHandle`].
    Cancelled,
    /// Ended because the client spent its [`Quota`](crate::Quota) (under
    /// [`QuotaExhausted::End`](crate::QuotaExhausted::End)); it may resume
    /// when the window ends.
    QuotaExhausted,
}

impl Outcome {
    /// A short lowercase name: `complete`, `client_gone`, `idle_timeout`,
    /// `failed`, `shutdown`, `cancelled`, `quota_exhausted` (the `outcome` label of
    /// [`Metrics`](super::Metrics)).
    ///
    /// ```
    /// use tower_range_serve::lifecycle::Outcome;
    ///
    /// assert_eq!(Outcome::ClientGone.as_str(), "client_gone");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::ClientGone => "client_gone",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::Failed(_) => "failed",
            Outcome::Shutdown => "shutdown",
            Outcome::Cancelled => "cancelled",
            Outcome::QuotaExhausted => "quota_exhausted",
        }
    }
}

/// The end of a download.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct End {
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes handed to the server.
    pub sent: u64,
    /// Time since the start.
    pub elapsed: Duration,
    /// How long the body held a chunk it had read, waiting for its throttle
    /// (its rate, its client's, the total) to let it go: zero for a download
    /// that no limit applied to.
    pub throttled: Duration,
}

/// An answer the layer gave to a `GET` or `HEAD` of a file-backed response:
/// every one of them, whether it starts a download (200, 206) or not (`HEAD`,
/// 304, 412, 416, 429, 503, an empty file's 200).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Answer {
    /// `GET` or `HEAD`.
    pub method: Method,
    /// The status sent.
    pub status: StatusCode,
    /// The client, when the bandwidth policy knows one.
    pub client: Option<ClientKey>,
    /// The request path.
    pub path: String,
    /// The bytes of the body this answer sends (0 for `HEAD` and refusals).
    pub body: u64,
    /// Why the request was refused, for a 429 or 503 of the layer's own.
    pub refusal: Option<Refusal>,
    /// The [`Download::id`] of the download this answer starts, if it starts
    /// one (a `GET` answered 200 or 206 with a body).
    pub download: Option<u64>,
}

/// Why the layer refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// 429: the client already runs its
    /// [`max_streams_per_client`](crate::RangeServeLayer::max_streams_per_client).
    /// `HEAD` gets it too, as its `GET` would.
    TooManyStreams,
    /// 503: the layer is shutting down.
    ShuttingDown,
    /// 429: the client has spent its [`Quota`](crate::Quota) for the current
    /// window (under [`QuotaExhausted::End`](crate::QuotaExhausted::End)).
    /// `HEAD` gets it too, as its `GET` would.
    Quota,
}

impl Refusal {
    /// A short lowercase name: `stream_cap`, `shutting_down`, `quota` (the `cause`
    /// label of [`Metrics`](super::Metrics)).
    ///
    /// ```
    /// use tower_range_serve::lifecycle::Refusal;
    ///
    /// assert_eq!(Refusal::TooManyStreams.as_str(), "stream_cap");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::TooManyStreams => "stream_cap",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Quota => "quota",
        }
    }
}

/// Told of every answer the layer gives, and when downloads start, progress and
/// end.
///
/// Calls come from the task serving the request or sending the body: keep them
/// short (update counters, send to a channel). [`answer`](Observer::answer)
/// comes once per file-backed `GET` or `HEAD` (for a download, just before
/// [`start`](Observer::start)); [`progress`](Observer::progress) at most once
/// per [`progress_interval`](crate::RangeServeLayer::progress_interval) per
/// download, never per chunk.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tower_range_serve::lifecycle::{Download, End, Observer, Outcome};
///
/// #[derive(Default)]
/// struct Completed(AtomicU64);
///
/// impl Observer for Completed {
///     fn end(&self, _download: &Download, end: &End) {
///         if end.outcome == Outcome::Complete {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
///
/// let layer = tower_range_serve::RangeServeLayer::new().observer(Completed::default());
/// # let _ = layer;
/// ```
pub trait Observer: Send + Sync + 'static {
    /// The layer answers a file-backed `GET` or `HEAD`.
    fn answer(&self, answer: &Answer) {
        let _ = answer;
    }

    /// A download starts (its headers are about to be sent).
    fn start(&self, download: &Download) {
        let _ = download;
    }

    /// A download has sent `sent` bytes so far.
    fn progress(&self, download: &Download, sent: u64) {
        let _ = (download, sent);
    }

    /// A download ended.
    fn end(&self, download: &Download, end: &End) {
        let _ = (download, end);
    }
}

impl<T: Observer + ?Sized> Observer for Arc<T> {
    fn answer(&self, answer: &Answer) {
        (**self).answer(answer);
    }

    fn start(&self, download: &Download) {
        (**self).start(download);
    }

    fn progress(&self, download: &Download, sent: u64) {
        (**self).progress(download, sent);
    }

    fn end(&self, download: &Download, end: &End) {
        (**self).end(download, end);
    }
}

/// Two observers, told in turn: give a layer several with
/// `.observer((first, second))` (nest pairs for more).
///
/// ```
/// use tower_range_serve::RangeServeLayer;
/// use tower_range_serve::lifecycle::{Download, Observer};
///
/// struct Log;
/// impl Observer for Log {}
///
/// struct Admin;
/// impl Observer for Admin {
///     fn start(&self, download: &Download) {
///         let _ = download.cancel_handle();
///     }
/// }
///
/// let layer = RangeServeLayer::new().observer((Log, Admin));
/// # let _ = layer;
/// ```
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn answer(&self, answer: &Answer) {
        self.0.answer(answer);
        self.1.answer(answer);
    }

    fn start(&self, download: &Download) {
        self.0.start(download);
        self.1.start(download);
    }

    fn progress(&self, download: &Download, sent: u64) {
        self.0.progress(download, sent);
        self.1.progress(download, sent);
    }

    fn end(&self, download: &Download, end: &End) {
        self.0.end(download, end);
        self.1.end(download, end);
    }
}

/// Emits `tracing` events for downloads (the `tracing` feature).
#[cfg(feature = "tracing")]
#[derive(Debug)]
pub(crate) struct Tracing;

#[cfg(feature = "tracing")]
impl Tracing {
    fn span(download: &Download) -> tracing::Span {
        tracing::debug_span!(
            target: "tower_range_serve",
            "download",
            id = download.id,
            path = %download.path,
            client = download.client.as_ref().map(tracing::field::display),
        )
    }
}

#[cfg(feature = "tracing")]
impl Observer for Tracing {
    fn answer(&self, answer: &Answer) {
        tracing::debug!(
            target: "tower_range_serve",
            method = %answer.method,
            status = answer.status.as_u16(),
            path = %answer.path,
            client = answer.client.as_ref().map(tracing::field::display),
            refusal = answer.refusal.map(tracing::field::debug),
            body = answer.body,
            "answered"
        );
    }

    fn start(&self, download: &Download) {
        let status = download.status.as_u16();
        Self::span(download).in_scope(|| {
            tracing::debug!(target: "tower_range_serve", status, total = download.total, "download started");
        });
    }

    fn progress(&self, download: &Download, sent: u64) {
        Self::span(download).in_scope(|| {
            tracing::debug!(target: "tower_range_serve", sent, total = download.total, "download progress");
        });
    }

    fn end(&self, download: &Download, end: &End) {
        let outcome = tracing::field::debug(end.outcome);
        let elapsed_ms = end.elapsed.as_millis() as u64;
        let throttled_ms = end.throttled.as_millis() as u64;
        Self::span(download).in_scope(|| {
            tracing::info!(target: "tower_range_serve", ?outcome, sent = end.sent, elapsed_ms, throttled_ms, "download ended");
        });
    }
}

/// Several observers (the user's, the metrics, the `tracing` one), told in
/// turn.
pub(crate) struct Observers(pub(crate) Box<[Arc<dyn Observer>]>);

impl Observer for Observers {
    fn answer(&self, answer: &Answer) {
        self.0.iter().for_each(|o| o.answer(answer));
    }

    fn start(&self, download: &Download) {
        self.0.iter().for_each(|o| o.start(download));
    }

    fn progress(&self, download: &Download, sent: u64) {
        self.0.iter().for_each(|o| o.progress(download, sent));
    }

    fn end(&self, download: &Download, end: &End) {
        self.0.iter().for_each(|o| o.end(download, end));
    }
}

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::*;

    /// Collects the messages of events.
    #[derive(Default)]
    struct Messages {
        seen: Mutex<Vec<String>>,
        spans: AtomicUsize,
    }

    struct Message<'a>(&'a mut String);

    impl tracing::field::Visit for Message<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            use std::fmt::Write;
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    impl Subscriber for &'static Messages {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(self.spans.fetch_add(1, Ordering::SeqCst) as u64 + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.seen.lock().unwrap().push(text);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn downloads_are_traced_from_start_to_end() {
        let messages: &'static Messages = Box::leak(Box::default());
        let download = Download {
            id: 7,
            client: None,
            path: "/big.bin".to_owned(),
            status: StatusCode::OK,
            ranges: vec![(0, 9)],
            file_len: 10,
            total: 10,
            started: Instant::now(),
            cancel: CancelHandle::default(),
        };
        tracing::subscriber::with_default(messages, || {
            Tracing.start(&download);
            Tracing.end(
                &download,
                &End {
                    outcome: Outcome::Complete,
                    sent: 10,
                    elapsed: Duration::from_millis(3),
                    throttled: Duration::ZERO,
                },
            );
        });
        let seen = messages.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[0].contains("download started"), "{seen:?}");
        assert!(
            seen[1].contains("outcome=Complete") && seen[1].contains("sent=10"),
            "{seen:?}"
        );
        assert_eq!(messages.spans.load(Ordering::SeqCst), 2);
    }
}
