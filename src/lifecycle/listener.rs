//! [`Connections`]: a listener whose connections idle timeouts and the end of a
//! graceful shutdown close, for `axum::serve` and hyper-util servers.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::connection::Connection;
use super::shutdown::Shutdown;

/// A TCP listener that wraps each connection it accepts in a [`Connection`]
/// tied to a layer's [`Shutdown`]: a client that accepts no byte for the
/// [`idle_timeout`](Connections::idle_timeout) is disconnected, and every
/// connection still open when the shutdown's grace period ends is closed,
/// whether or not its client reads. So `axum::serve(..).with_graceful_shutdown(..)`
/// returns within the grace period (plus the moment it takes to close), instead
/// of waiting for the last stalled client to go away.
///
/// The layer finds each request's connection by its peer address, so observers
/// report [`Outcome::IdleTimeout`](super::Outcome::IdleTimeout) and
/// [`Outcome::Shutdown`](super::Outcome::Shutdown) without any extension of
/// one's own. Accepted sockets get `TCP_NODELAY` (frames go out as they come,
/// as with nginx's `tcp_nodelay`) and, on Linux, at most 64 KiB waiting unsent
/// in the kernel (see [`max_unsent`](Connections::max_unsent)).
///
/// # With axum
///
/// With the `axum` feature, [`axum`](Connections::axum) gives the listener to
/// `axum::serve`, with `ConnectInfo<SocketAddr>` (and so the default
/// [`ClientKey::peer_ip`](crate::ClientKey::peer_ip)) working as with a plain
/// `TcpListener`:
///
/// ```
/// # #[cfg(feature = "axum")]
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use tower_range_serve::{lifecycle::Connections, RangeServeLayer};
///
/// let layer = RangeServeLayer::new();
/// let shutdown = layer.shutdown_handle();
/// let app = Router::new().route("/", get(|| async { "hi" })).layer(layer);
///
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let listener = Connections::new(tcp, &shutdown).idle_timeout(Duration::from_secs(60));
/// let stop = {
///     let shutdown = shutdown.clone();
///     async move {
///         // tokio::signal::ctrl_c().await.unwrap(); in a real server
///         shutdown.begin(Duration::from_secs(10)); // new downloads get 503
///     }
/// };
/// axum::serve(listener.axum(), app.into_make_service_with_connect_info::<SocketAddr>())
///     .with_graceful_shutdown(stop)
///     .await
///     .unwrap();
/// # });
/// ```
///
/// # With hyper-util
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tower_range_serve::{lifecycle::Connections, RangeServeLayer};
///
/// let layer = RangeServeLayer::new();
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let listener = Connections::new(tcp, &layer.shutdown_handle());
/// # let addr = listener.local_addr().unwrap();
/// # tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
/// let (connection, peer) = listener.accept().await.unwrap();
/// // Insert `peer` into each request's extensions (the default client key) and
/// // serve `hyper_util::rt::TokioIo::new(connection)` as usual.
/// # let _ = (connection, peer);
/// # });
/// ```
#[derive(Debug)]
pub struct Connections {
    listener: TcpListener,
    shutdown: Shutdown,
    idle_timeout: Duration,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    max_unsent: Option<u32>,
}

/// [`Connections::max_unsent`]'s default: 64 KiB, the layer's default chunk.
const DEFAULT_MAX_UNSENT: u32 = 64 * 1024;

impl Connections {
    /// Accepts from `listener`; connections close when `shutdown`'s grace period
    /// ends. No idle timeout.
    pub fn new(listener: TcpListener, shutdown: &Shutdown) -> Self {
        Self {
            listener,
            shutdown: shutdown.clone(),
            idle_timeout: Duration::ZERO,
            max_unsent: Some(DEFAULT_MAX_UNSENT),
        }
    }

    /// Disconnects a client that accepts no byte for `timeout`;
    /// [`Duration::ZERO`] (the default) never does.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use tower_range_serve::{lifecycle::Connections, RangeServeLayer};
    ///
    /// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let shutdown = RangeServeLayer::new().shutdown_handle();
    /// let listener = Connections::new(tcp, &shutdown).idle_timeout(Duration::from_secs(60));
    /// # let _ = listener;
    /// # });
    /// ```
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Most bytes of each connection left waiting unsent in the kernel
    /// (`TCP_NOTSENT_LOWAT`, Linux only; elsewhere this does nothing); `None`
    /// leaves the system's setting (`net.ipv4.tcp_notsent_lowat`, unbounded by
    /// default). Default: 64 KiB.
    ///
    /// The socket reports itself writable only when fewer bytes than this wait
    /// to be sent, so a connection queues a chunk or two instead of the
    /// megabytes its send buffer holds. Bytes in flight are not counted: a
    /// long, fast path still fills its congestion window (which a small
    /// `SO_SNDBUF` would cap). Measured on loopback against no bound, 64
    /// connections × 1 MiB move 1.23-1.28× the bytes per second with a p99
    /// 0.73-0.81× as long, over plain HTTP and TLS alike, at less server CPU
    /// per byte (BENCHMARKS.md, "Fewer bytes waiting in the kernel").
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use tower_range_serve::{lifecycle::Connections, RangeServeLayer};
    ///
    /// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let shutdown = RangeServeLayer::new().shutdown_handle();
    /// let listener = Connections::new(tcp, &shutdown).max_unsent(Some(16 * 1024));
    /// # let _ = listener;
    /// # });
    /// ```
    #[must_use]
    pub fn max_unsent(mut self, bytes: Option<u32>) -> Self {
        self.max_unsent = bytes;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts the next connection, with its peer address.
    pub async fn accept(&self) -> io::Result<(Connection<TcpStream>, SocketAddr)> {
        let (stream, peer) = self.listener.accept().await?;
        Ok((self.adopt(stream, peer), peer))
    }

    /// Wraps a connection accepted elsewhere as [`accept`](Self::accept)
    /// wraps its own (`TCP_NODELAY` and [`max_unsent`](Self::max_unsent), the
    /// idle timeout, the shutdown's grace period, and what the layer needs to
    /// find the connection by its peer):
    /// one handed over by another runtime's listener, say, or passed in by a
    /// service manager.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use tower_range_serve::{lifecycle::Connections, RangeServeLayer};
    ///
    /// let shutdown = RangeServeLayer::new().shutdown_handle();
    /// let listener = Connections::new(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), &shutdown);
    /// let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// # let addr = elsewhere.local_addr().unwrap();
    /// # tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
    /// let (stream, peer) = elsewhere.accept().await.unwrap();
    /// let connection = listener.adopt(stream, peer);
    /// assert_eq!(connection.get_ref().peer_addr().unwrap(), peer);
    /// # });
    /// ```
    pub fn adopt(&self, stream: TcpStream, peer: SocketAddr) -> Connection<TcpStream> {
        // Best effort: a socket that refuses them still serves.
        let _ = stream.set_nodelay(true);
        #[cfg(target_os = "linux")]
        if let Some(bytes) = self.max_unsent {
            let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(bytes);
        }
        let connection = Connection::new(stream)
            .idle_timeout(self.idle_timeout)
            .shutdown(&self.shutdown);
        let registration = self
            .shutdown
            .state
            .peers
            .register(peer, connection.signal());
        connection.registered(registration)
    }

    /// The listener for `axum::serve`, with `ConnectInfo<SocketAddr>`.
    ///
    /// axum implements its `Connected` trait (what
    /// `into_make_service_with_connect_info::<SocketAddr>()` needs) for
    /// `TcpListener` and for listeners wrapped by `ListenerExt::tap_io`; this is
    /// the latter, with a tap that does nothing.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use tower_range_serve::{lifecycle::Connections, RangeServeLayer};
    ///
    /// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let shutdown = RangeServeLayer::new().shutdown_handle();
    /// let listener = Connections::new(tcp, &shutdown).axum();
    /// # let _ = listener;
    /// # });
    /// ```
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn axum(self) -> AxumListener {
        use axum::serve::ListenerExt;
        fn untouched(_: &mut Connection<TcpStream>) {}
        self.tap_io(untouched as fn(&mut Connection<TcpStream>))
    }
}

/// [`Connections`] as `axum::serve` takes it with `ConnectInfo<SocketAddr>`;
/// see [`Connections::axum`].
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub type AxumListener = axum::serve::TapIo<Connections, fn(&mut Connection<TcpStream>)>;

#[cfg(feature = "axum")]
impl axum::serve::Listener for Connections {
    type Io = Connection<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => return (self.adopt(stream, peer), peer),
                Err(e) => accept_failed(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// After a failed accept: a connection that went away before it was accepted
/// costs nothing; anything else (out of file descriptors, say) is retried after
/// a second, as axum's own `TcpListener` does.
#[cfg(feature = "axum")]
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    #[cfg(feature = "tracing")]
    tracing::error!(target: "tower_range_serve", error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::RangeServeLayer;

    /// The `TCP_NOTSENT_LOWAT` of a connection `listener` accepts.
    async fn accepted_lowat(listener: Connections) -> u32 {
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr);
        let (accepted, client) = tokio::join!(listener.accept(), client);
        let (connection, peer) = accepted.unwrap();
        assert_eq!(peer, client.unwrap().local_addr().unwrap());
        socket2::SockRef::from(connection.get_ref())
            .tcp_notsent_lowat()
            .unwrap()
    }

    async fn connections() -> Connections {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Connections::new(tcp, &RangeServeLayer::new().shutdown_handle())
    }

    #[tokio::test]
    async fn accepted_connections_bound_what_waits_unsent() {
        assert_eq!(accepted_lowat(connections().await).await, 64 * 1024);
        let listener = connections().await.max_unsent(Some(16 * 1024));
        assert_eq!(accepted_lowat(listener).await, 16 * 1024);
        // None leaves the socket's own setting: 0, the system's default.
        assert_eq!(
            accepted_lowat(connections().await.max_unsent(None)).await,
            0
        );
    }
}
