//! [`Observer`]: what a download tells about its life.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;

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
    /// [`IdleTimeout`](crate::lifecycle::IdleTimeout).
    IdleTimeout,
    /// Reading failed, or the file changed while it was being sent.
    Failed(io::ErrorKind),
    /// Cut at the end of a graceful shutdown's grace period.
    Shutdown,
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
}

/// Told when downloads start, progress and end.
///
/// Calls come from the task sending the body: keep them short (update counters,
/// send to a channel). [`progress`](Observer::progress) comes at most once per
/// [`progress_interval`](crate::RangeServeLayer::progress_interval) per download,
/// never per chunk.
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
