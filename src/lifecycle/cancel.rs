//! [`CancelHandle`]: ends one running download from outside (an admin's
//! "cancel" button).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;

use atomic_waker::AtomicWaker;

/// Ends one running download: its body ends with an error at once, so the
/// server aborts the response (the connection closes, a client can resume with
/// `Range` and `If-Range`), and observers see
/// [`Outcome::Cancelled`](super::Outcome::Cancelled).
///
/// Get it from the [`Download`](super::Download) an
/// [`Observer`](super::Observer) is told of
/// ([`Download::cancel_handle`](super::Download::cancel_handle)); downloads
/// have one only when the layer has an observer (or metrics), so a layer
/// without pays nothing for it.
///
/// A body waiting for its throttle, or for a read, is woken and ends at once.
/// A body whose client stopped reading is not polled by its server, so it
/// ends only when the client reads again or its connection is closed (see
/// [`Connections::idle_timeout`](super::Connections::idle_timeout)).
/// Cancelling a download that already ended does nothing.
///
/// # Example
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use tower_range_serve::lifecycle::{CancelHandle, Download, End, Observer};
///
/// /// The running downloads, by id, for an admin endpoint to cancel.
/// #[derive(Default)]
/// struct Running(Mutex<HashMap<u64, CancelHandle>>);
///
/// impl Observer for Running {
///     fn start(&self, download: &Download) {
///         let handle = download.cancel_handle();
///         self.0.lock().unwrap().insert(download.id, handle);
///     }
///     fn end(&self, download: &Download, _end: &End) {
///         self.0.lock().unwrap().remove(&download.id);
///     }
/// }
///
/// impl Running {
///     fn cancel(&self, id: u64) -> bool {
///         self.0.lock().unwrap().get(&id).map(CancelHandle::cancel).is_some()
///     }
/// }
/// # let running = Running::default();
/// # assert!(!running.cancel(7));
/// ```
#[derive(Clone, Default)]
pub struct CancelHandle {
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    cancelled: AtomicBool,
    /// The body's task, woken by a cancel.
    waker: AtomicWaker,
}

impl CancelHandle {
    /// Ends the download at once (see above).
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::Release);
        self.state.waker.wake();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.state.cancelled.load(Ordering::Acquire)
    }

    /// Whether the download is cancelled; if not, a cancel wakes `cx`'s task.
    pub(crate) fn poll_cancelled(&self, cx: &mut Context<'_>) -> bool {
        if self.is_cancelled() {
            return true;
        }
        self.state.waker.register(cx.waker());
        self.is_cancelled()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
