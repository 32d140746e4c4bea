//! The accept loop of the demo server, and `--workers N` (by default one per
//! core): N single-threaded tokio runtimes, one per thread, each accepting on
//! its own `SO_REUSEPORT` listener of the same address (the kernel spreads
//! connections over them), as nginx's worker processes do. A connection then
//! lives on one thread from accept to close: no work stealing, and no wake-up
//! of another worker thread when its task becomes ready (the multi-threaded
//! runtime's cost on a request/response ping-pong). The workers even out
//! what the kernel's choice of listener leaves uneven (`balance.rs`). With
//! `--workers 0`, one multi-threaded runtime serves one listener.
//!
//! `SO_REUSEPORT` would also let a second server of the same user join the
//! port silently and take half its connections: the address is first bound
//! once without it, so that a port in use fails as it does for any server.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower_range_serve::lifecycle::{Connection, Connections, Shutdown};

use crate::balance::{Balance, Live, Worker};
use crate::tls::Tls;

/// A boxed error, as hyper takes them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What every accept loop shares: the service, hyper's builder, TLS, and the
/// settings of each accepted connection.
#[derive(Clone)]
pub(crate) struct Serve<S> {
    pub(crate) service: S,
    pub(crate) builder: auto::Builder<TokioExecutor>,
    pub(crate) tls: Option<Tls>,
    /// SO_SNDBUF of each connection (0: the kernel's autotuning).
    pub(crate) send_buffer: u64,
    /// TCP_NOTSENT_LOWAT of each connection (0: the system's).
    pub(crate) max_unsent: u32,
    pub(crate) idle_timeout: Duration,
    pub(crate) shutdown: Shutdown,
}

impl<S, B> Serve<S>
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Accepts on `listener` (and takes what other workers hand over, as one
    /// of balanced workers) until `stop` resolves; returns the connections
    /// still running.
    pub(crate) async fn accept_loop(
        &self,
        listener: TcpListener,
        mut worker: Option<Worker>,
        stop: impl Future<Output = ()>,
    ) -> JoinSet<()> {
        // Every connection is closed when the grace period ends, and a client
        // that accepts no byte for --idle-timeout is disconnected.
        let listener = Connections::new(listener, &self.shutdown)
            .idle_timeout(self.idle_timeout)
            .max_unsent(Some(self.max_unsent).filter(|&bytes| bytes > 0));
        let mut connections = JoinSet::new();
        tokio::pin!(stop);
        loop {
            let handed = async {
                match worker.as_mut() {
                    Some(worker) => worker.handed().await,
                    None => std::future::pending().await,
                }
            };
            let (stream, peer, live) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match &worker {
                        Some(worker) => match worker.place(stream, peer) {
                            Some((stream, live)) => (stream, peer, Some(live)),
                            None => continue,
                        },
                        None => (stream, peer, None),
                    },
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving the others.
                        eprintln!("accept failed: {e}");
                        continue;
                    }
                },
                Some(handed) = handed => match TcpStream::from_std(handed.stream) {
                    Ok(stream) => (listener.adopt(stream, handed.peer), handed.peer, Some(handed.live)),
                    Err(e) => {
                        eprintln!("{}: cannot take a handed connection: {e}", handed.peer);
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            connections.spawn(self.clone().connection(stream, peer, live));
            // Reap finished connections so the set does not grow.
            while connections.try_join_next().is_some() {}
        }
        connections
    }

    /// Serves one connection: TLS first if asked, then HTTP/1.1 or HTTP/2.
    /// `_live` counts it on its worker until it ends.
    async fn connection(
        self,
        stream: Connection<TcpStream>,
        peer: SocketAddr,
        _live: Option<Live>,
    ) {
        // `Connections` sets TCP_NODELAY: frames go out as they come (as nginx's
        // `tcp_nodelay` and Go do).
        if self.send_buffer > 0 {
            let size = usize::try_from(self.send_buffer).unwrap_or(usize::MAX);
            if let Err(e) = socket2::SockRef::from(stream.get_ref()).set_send_buffer_size(size) {
                eprintln!("cannot set the send buffer: {e}");
            }
        }
        // Each request learns its peer: the client key of per-client limits (and
        // how the layer finds the connection's idle signal).
        let service = TowerToHyperService::new(self.service.map_request(
            move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(peer);
                request
            },
        ));
        // Errors here are clients going away mid-download: normal for a
        // download server.
        let Some(tls) = self.tls else {
            let _ = self
                .builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            return;
        };
        // The handshake runs here, in the connection's task: a slow or silent
        // client never holds up the accept loop.
        if let Some(accepted) = tls.handshake(stream, peer).await {
            let builder = match accepted.h2 {
                true => self.builder.http2_only(),
                false => self.builder,
            };
            let _ = builder
                .serve_connection(TokioIo::new(accepted.stream), service)
                .await;
        }
    }

    /// Starts one thread per socket, each a single-threaded runtime running
    /// an accept loop on that socket until `stop` says the grace period (then
    /// its connections get that long, plus a second, and the rest are cut).
    /// With `balance`, a new connection goes to the worker serving the fewest
    /// (see `balance.rs`).
    pub(crate) fn workers(
        &self,
        sockets: Vec<TcpSocket>,
        balance: bool,
        stop: &watch::Receiver<Option<Duration>>,
    ) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        let mut balanced = match balance && sockets.len() > 1 {
            true => Balance::workers(sockets.len())
                .into_iter()
                .map(Some)
                .collect(),
            false => Vec::new(),
        };
        balanced.resize_with(sockets.len(), || None);
        let mut threads = Vec::new();
        for ((n, socket), worker) in sockets.into_iter().enumerate().zip(balanced) {
            let serve = self.clone();
            let mut stop = stop.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let thread = std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let listener = match socket.listen(BACKLOG) {
                            Ok(listener) => listener,
                            Err(e) => {
                                eprintln!("worker {n}: cannot listen: {e}");
                                return;
                            }
                        };
                        let stopped = async {
                            let _ = stop.wait_for(Option::is_some).await;
                        };
                        let mut connections = serve.accept_loop(listener, worker, stopped).await;
                        let grace = stop.borrow().unwrap_or_default();
                        let _ = tokio::time::timeout(grace + Duration::from_secs(1), async {
                            while connections.join_next().await.is_some() {}
                        })
                        .await;
                        connections.shutdown().await;
                    });
                })?;
            threads.push(thread);
        }
        Ok(threads)
    }
}

/// The accept queue of each listener (tokio's default for `TcpListener::bind`).
pub(crate) const BACKLOG: u32 = 1024;

/// The default of `--workers`: one per core the process may use where
/// listeners can share a port (`SO_REUSEPORT`, Unix); elsewhere 0, one
/// multi-threaded runtime.
pub(crate) fn default_workers() -> usize {
    if cfg!(unix) {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        0
    }
}

/// `n` sockets bound to `addr`, not yet listening (so that each can listen in
/// its own runtime): with n > 1, `SO_REUSEPORT` sockets of one port (the
/// port the first got, when `addr` asks for any).
pub(crate) fn bind(addr: SocketAddr, n: usize) -> std::io::Result<Vec<TcpSocket>> {
    let mut addr = addr;
    if n > 1 && !cfg!(unix) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "more than one worker needs SO_REUSEPORT (Unix)",
        ));
    }
    if n > 1 {
        // Without SO_REUSEPORT: fails if anything listens there (another
        // server, with SO_REUSEPORT or not); learns the port for port 0.
        let probe = new_socket(addr)?;
        probe.bind(addr)?;
        addr = probe.local_addr()?;
    }
    let mut sockets = Vec::new();
    for _ in 0..n.max(1) {
        let socket = new_socket(addr)?;
        if n > 1 {
            #[cfg(unix)]
            socket.set_reuseport(true)?;
        }
        socket.bind(addr)?;
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// A socket for `addr`'s family, with `SO_REUSEADDR` as `TcpListener::bind`
/// sets it on Unix.
fn new_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    Ok(socket)
}
