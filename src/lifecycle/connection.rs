//! [`Connection`]: a connection that idle timeouts and the end of a graceful
//! shutdown can close, whether or not its response bodies are polled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::peers::Registration;
use super::shutdown::{Shutdown, State};

pin_project! {
    /// Wraps a connection so that the server can close it when its client stops
    /// accepting bytes ([`idle_timeout`](Connection::idle_timeout)) and when a
    /// graceful shutdown's grace period ends ([`shutdown`](Connection::shutdown)).
    ///
    /// The connection is the only place a stalled client can be seen. When a
    /// client stops reading, its socket fills up and the server stops polling the
    /// response body, so no body or middleware can notice, and the server's
    /// graceful shutdown waits for that connection forever. This wrapper times
    /// writes that make no progress, and after the grace period fails every read
    /// and write of the connection: the server then closes it and drops its
    /// response bodies, and observers report [`Outcome::IdleTimeout`] or
    /// [`Outcome::Shutdown`].
    ///
    /// [`Connections`](crate::lifecycle::Connections) wraps every connection it
    /// accepts, for `axum::serve` and hyper-util servers alike; this type is for
    /// accept loops of one's own. Reads are not timed: use the server's header
    /// read timeout for those. With HTTP/2, a stream stalled by its flow-control
    /// window while the connection is otherwise busy is not caught by the idle
    /// timeout (the shutdown closes it all the same).
    ///
    /// So that observers can tell an idle timeout from a client that went away,
    /// a request needs its connection's [`signal`](Connection::signal) in its
    /// extensions; [`Connections`](crate::lifecycle::Connections) does that by
    /// itself.
    ///
    /// [`Outcome::IdleTimeout`]: crate::lifecycle::Outcome::IdleTimeout
    /// [`Outcome::Shutdown`]: crate::lifecycle::Outcome::Shutdown
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::RangeServeLayer;
    /// use tower_range_serve::lifecycle::Connection;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let layer = RangeServeLayer::new();
    /// let shutdown = layer.shutdown_handle();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let addr = listener.local_addr().unwrap();
    /// # tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
    /// let (stream, _peer) = listener.accept().await.unwrap();
    /// let stream = Connection::new(stream)
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .shutdown(&shutdown);
    /// let signal = stream.signal(); // insert into every request of this connection
    /// # let _ = signal;
    /// // serve `hyper_util::rt::TokioIo::new(stream)` as usual
    /// # });
    /// ```
    #[derive(Debug)]
    pub struct Connection<T> {
        #[pin]
        io: T,
        idle: Option<Idle>,
        cut: Cut,
        signal: IdleSignal,
        // Removes the connection from its layer's table when it closes.
        registration: Option<Registration>,
    }
}

/// Set when a [`Connection`] closed for being idle; a request extension.
///
/// ```
/// use tower_range_serve::lifecycle::IdleSignal;
///
/// assert!(!IdleSignal::default().timed_out());
/// ```
#[derive(Debug, Clone, Default)]
pub struct IdleSignal(Arc<AtomicBool>);

impl IdleSignal {
    /// Whether the connection was closed for being idle.
    pub fn timed_out(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The write-stall timer.
#[derive(Debug)]
struct Idle {
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

/// The end of the grace period, once a shutdown has begun.
enum Cut {
    /// Not watched.
    Never,
    /// Resolves when the grace period is over. Before a shutdown begins, it
    /// is polled again only for another waker: the shutdown's start wakes the
    /// one it holds, and until then a poll would only find it pending (at the
    /// price of a lock in `tokio::sync::watch`, on every read and write).
    Pending {
        deadline: Pin<Box<dyn Future<Output = ()> + Send>>,
        state: Arc<State>,
        waker: Option<Waker>,
    },
    /// The grace period is over: every read and write fails.
    Over,
}

impl std::fmt::Debug for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cut::Never => "Never",
            Cut::Pending { .. } => "Pending",
            Cut::Over => "Over",
        })
    }
}

impl Cut {
    /// Whether the connection must close now; registers `cx` for the deadline.
    fn poll_over(&mut self, cx: &mut Context<'_>) -> bool {
        match self {
            Cut::Never => false,
            Cut::Over => true,
            Cut::Pending {
                deadline,
                state,
                waker,
            } => {
                let registered = waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
                if registered && !state.is_shutting_down() {
                    return false;
                }
                if deadline.as_mut().poll(cx).is_pending() {
                    *waker = Some(cx.waker().clone());
                    return false;
                }
                *self = Cut::Over;
                true
            }
        }
    }
}

fn shut_down() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the server is shutting down",
    )
}

impl<T> Connection<T> {
    /// Wraps `io`, with no idle timeout and no shutdown yet.
    pub fn new(io: T) -> Self {
        Self {
            io,
            idle: None,
            cut: Cut::Never,
            signal: IdleSignal::default(),
            registration: None,
        }
    }

    /// A write stalled for `timeout` fails with [`io::ErrorKind::TimedOut`].
    /// [`Duration::ZERO`] (the default) never times out.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = (!timeout.is_zero()).then(|| Idle {
            timeout,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        });
        self
    }

    /// Once `shutdown`'s grace period is over, every read and write fails with
    /// [`io::ErrorKind::ConnectionAborted`].
    #[must_use]
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.cut = Cut::Pending {
            deadline: Box::pin(shutdown.state.cut_off()),
            state: shutdown.state.clone(),
            waker: None,
        };
        self
    }

    /// Removes the connection from its layer's table when it closes.
    pub(crate) fn registered(mut self, registration: Registration) -> Self {
        self.registration = Some(registration);
        self
    }

    /// The signal of this connection, for its requests' extensions.
    pub fn signal(&self) -> IdleSignal {
        self.signal.clone()
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Unwraps the connection.
    pub fn into_inner(self) -> T {
        self.io
    }
}

/// Times a pending write: arms the timer on the first `Pending`, disarms on
/// progress, fails once it fires.
fn timed<R>(
    poll: Poll<io::Result<R>>,
    cx: &mut Context<'_>,
    idle: &mut Option<Idle>,
    signal: &IdleSignal,
) -> Poll<io::Result<R>> {
    let Some(idle) = idle else {
        return poll;
    };
    match poll {
        Poll::Ready(result) => {
            idle.armed = false;
            Poll::Ready(result)
        }
        Poll::Pending => {
            if !idle.armed {
                idle.sleep.as_mut().reset(Instant::now() + idle.timeout);
                idle.armed = true;
            }
            match idle.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    signal.0.store(true, Ordering::Relaxed);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client accepted no data for too long",
                    )))
                }
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

impl<T: AsyncRead> AsyncRead for Connection<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.cut.poll_over(cx) {
            return Poll::Ready(Err(shut_down()));
        }
        this.io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for Connection<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        if this.cut.poll_over(cx) {
            return Poll::Ready(Err(shut_down()));
        }
        let poll = this.io.poll_write(cx, buf);
        timed(poll, cx, this.idle, this.signal)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        if this.cut.poll_over(cx) {
            return Poll::Ready(Err(shut_down()));
        }
        let poll = this.io.poll_write_vectored(cx, bufs);
        timed(poll, cx, this.idle, this.signal)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.cut.poll_over(cx) {
            return Poll::Ready(Err(shut_down()));
        }
        let poll = this.io.poll_flush(cx);
        timed(poll, cx, this.idle, this.signal)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;
    use crate::RangeServeLayer;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_after_the_idle_timeout_and_sets_the_signal() {
        let (client, server) = duplex(16);
        let mut server = Connection::new(server).idle_timeout(Duration::from_secs(30));
        let signal = server.signal();
        let start = Instant::now();
        let err = server.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert!(signal.timed_out());
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_idle_timeout_a_stalled_write_waits() {
        let (_client, server) = duplex(16);
        let mut server = Connection::new(server);
        let write = server.write_all(&[0u8; 64]);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), write)
                .await
                .is_err()
        );
        assert!(!server.signal().timed_out());
    }

    #[tokio::test(start_paused = true)]
    async fn reads_and_writes_fail_once_the_grace_period_is_over() {
        let shutdown = RangeServeLayer::new().shutdown_handle();
        let (mut client, server) = duplex(16);
        let mut server = Connection::new(server).shutdown(&shutdown);
        // Before the shutdown, and during the grace period, the connection works.
        client.write_all(b"ping").await.unwrap();
        let mut ping = [0u8; 4];
        server.read_exact(&mut ping).await.unwrap();
        shutdown.begin(Duration::from_secs(10));
        server.write_all(b"pong").await.unwrap();
        // A stalled write (the client never reads) is cut at the deadline.
        let start = Instant::now();
        let err = server.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        let err = server.read(&mut ping).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(!server.signal().timed_out());
    }
}
