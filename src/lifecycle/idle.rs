//! [`IdleTimeout`]: close connections whose client stopped accepting bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pin_project! {
    /// Wraps a connection so that a write that makes no progress for `timeout`
    /// fails with [`io::ErrorKind::TimedOut`]: the server then closes the
    /// connection and drops its response bodies.
    ///
    /// This is the only place such a stall can be seen. When a client stops
    /// reading, its socket fills up and hyper stops polling the response body, so
    /// no body or middleware can notice; the connection can. It guards against
    /// clients that hold throttled downloads open without reading
    /// (slowloris-style). Reads are not timed: use the server's header read
    /// timeout for those. With HTTP/2, a stream stalled by its flow-control window
    /// while the connection is otherwise busy is not caught.
    ///
    /// Put the [`signal`](IdleTimeout::signal) into each request's extensions and
    /// observers report such downloads as [`Outcome::IdleTimeout`] rather than
    /// [`Outcome::ClientGone`].
    ///
    /// [`Outcome::IdleTimeout`]: crate::lifecycle::Outcome::IdleTimeout
    /// [`Outcome::ClientGone`]: crate::lifecycle::Outcome::ClientGone
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::lifecycle::IdleTimeout;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let addr = listener.local_addr().unwrap();
    /// # tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
    /// let (stream, _peer) = listener.accept().await.unwrap();
    /// let stream = IdleTimeout::new(stream, Duration::from_secs(60));
    /// let signal = stream.signal(); // insert into every request of this connection
    /// # let _ = signal;
    /// // serve `hyper_util::rt::TokioIo::new(stream)` as usual
    /// # });
    /// ```
    #[derive(Debug)]
    pub struct IdleTimeout<T> {
        #[pin]
        io: T,
        timeout: Duration,
        sleep: Pin<Box<Sleep>>,
        armed: bool,
        signal: IdleSignal,
    }
}

/// Set when an [`IdleTimeout`] closed its connection; a request extension.
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

impl<T> IdleTimeout<T> {
    /// Wraps `io`; a write stalled for `timeout` fails.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            signal: IdleSignal::default(),
        }
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
    timeout: Duration,
    sleep: &mut Pin<Box<Sleep>>,
    armed: &mut bool,
    signal: &IdleSignal,
) -> Poll<io::Result<R>> {
    match poll {
        Poll::Ready(result) => {
            *armed = false;
            Poll::Ready(result)
        }
        Poll::Pending => {
            if !*armed {
                sleep.as_mut().reset(Instant::now() + timeout);
                *armed = true;
            }
            match sleep.as_mut().poll(cx) {
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

use std::future::Future as _;

impl<T: AsyncRead> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write(cx, buf);
        timed(poll, cx, *this.timeout, this.sleep, this.armed, this.signal)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write_vectored(cx, bufs);
        timed(poll, cx, *this.timeout, this.sleep, this.armed, this.signal)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.io.poll_flush(cx);
        timed(poll, cx, *this.timeout, this.sleep, this.armed, this.signal)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
