//! [`Shutdown`]: refuse new downloads, let running ones finish within a grace
//! period, then cut them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::peers::Peers;

/// A handle to the graceful shutdown of a [`RangeServeLayer`](crate::RangeServeLayer)
/// and the services made from it and its clones.
///
/// After [`begin`](Shutdown::begin), new file-backed responses are answered `503
/// Service Unavailable` with `Retry-After`, and running downloads go on until the
/// grace period ends; then each ends with an error at its next chunk, so the
/// server closes its connection and the client can resume later. Without this, a
/// server's graceful shutdown waits for every throttled download to finish.
///
/// A download whose client has stopped reading is not polled by the server and so
/// cannot end itself, and a server's own graceful shutdown waits for its
/// connection: accept connections with
/// [`Connections`](crate::lifecycle::Connections) (or wrap them in a
/// [`Connection`](crate::lifecycle::Connection)), which closes every connection
/// still open when the grace period ends.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_range_serve::RangeServeLayer;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let layer = RangeServeLayer::new();
/// let shutdown = layer.shutdown_handle();
/// // On SIGTERM:
/// shutdown.begin(Duration::from_secs(5));
/// assert!(shutdown.is_shutting_down());
/// shutdown.drained().await; // no download is running
/// assert_eq!(shutdown.cut(), 0);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    pub(crate) state: Arc<State>,
}

#[derive(Debug)]
pub(crate) struct State {
    deadline: watch::Sender<Option<Instant>>,
    /// Whether `deadline` is set: what every chunk checks, cheaply.
    begun: AtomicBool,
    active: AtomicUsize,
    cut: AtomicUsize,
    drained: Notify,
    /// The open connections of the layer's [`Connections`](super::Connections).
    pub(crate) peers: Arc<Peers>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            deadline: watch::Sender::new(None),
            begun: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
            drained: Notify::new(),
            peers: Arc::default(),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown: running downloads may go on for `grace`. Later calls
    /// do not move the deadline.
    pub fn begin(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        // Before the deadline is sent: a connection woken by it must find
        // the shutdown begun (see `lifecycle::Connection`).
        self.state.begun.store(true, Ordering::SeqCst);
        self.state
            .deadline
            .send_if_modified(|current| match current {
                Some(_) => false,
                None => {
                    *current = Some(deadline);
                    true
                }
            });
    }

    /// Whether [`begin`](Self::begin) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.state.deadline.borrow().is_some()
    }

    /// How many downloads are running.
    pub fn active(&self) -> usize {
        self.state.active.load(Ordering::SeqCst)
    }

    /// How many downloads were cut at the end of the grace period.
    pub fn cut(&self) -> usize {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Resolves once no download is running.
    pub async fn drained(&self) {
        loop {
            let notified = self.state.drained.notified();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl State {
    /// Counts a download as running until the returned ticket drops.
    pub(crate) fn enter(self: &Arc<Self>) -> Ticket {
        self.active.fetch_add(1, Ordering::SeqCst);
        Ticket {
            state: self.clone(),
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.begun.load(Ordering::SeqCst)
    }

    /// Whether a shutdown's grace period is over.
    pub(crate) fn grace_over(&self) -> bool {
        self.is_shutting_down()
            && (*self.deadline.borrow()).is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Resolves when running downloads must end.
    pub(crate) fn cut_off(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut deadline = self.deadline.subscribe();
        async move {
            let at = loop {
                if let Some(at) = *deadline.borrow_and_update() {
                    break at;
                }
                if deadline.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::time::sleep_until(at).await;
        }
    }
}

/// A running download, counted by its layer's [`Shutdown`].
#[derive(Debug)]
pub(crate) struct Ticket {
    state: Arc<State>,
}

impl Ticket {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.is_shutting_down()
    }

    /// Resolves when running downloads must end.
    pub(crate) fn cut_off(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.state.cut_off()
    }

    /// Whether a shutdown's grace period is over.
    pub(crate) fn grace_over(&self) -> bool {
        self.state.grace_over()
    }

    pub(crate) fn mark_cut(&self) {
        self.state.cut.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.state.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.state.drained.notify_waiters();
        }
    }
}
