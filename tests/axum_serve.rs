//! `axum::serve` over `lifecycle::Connections`: bounded shutdown whether or not
//! clients read, idle timeouts that keep `ConnectInfo<SocketAddr>` (and so the
//! default client key), and the observer's outcomes right.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tower_range_serve::lifecycle::{Connections, Download, End, Observer, Outcome};
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

const MIB: usize = 1024 * 1024;

/// Sends each download's end on a channel.
struct Ends(mpsc::UnboundedSender<(String, Outcome)>);

impl Observer for Ends {
    fn end(&self, download: &Download, end: &End) {
        let _ = self.0.send((download.path.clone(), end.outcome));
    }
}

struct Server {
    addr: SocketAddr,
    ends: mpsc::UnboundedReceiver<(String, Outcome)>,
    /// Resolves with the time `axum::serve` returned.
    served: tokio::task::JoinHandle<Instant>,
    /// Starts the graceful shutdown.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _root: tempfile::TempDir,
}

/// `axum::serve` of a folder with a 64 MiB file (more than loopback's socket
/// buffers hold), through `layer` (plus an observer), the way the crate docs
/// show it.
async fn server(layer: RangeServeLayer, grace: Duration, idle_timeout: Duration) -> Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), vec![7u8; 64 * MIB]).unwrap();
    std::fs::write(root.path().join("small.bin"), vec![7u8; 256 * 1024]).unwrap();
    let (sender, ends) = mpsc::unbounded_channel();
    let layer = layer.observer(Ends(sender));
    let shutdown = layer.shutdown_handle();
    let app = Router::new()
        .fallback_service(ServeDir::new(root.path()))
        .layer(layer);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = Connections::new(tcp, &shutdown).idle_timeout(idle_timeout);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(
            listener.axum(),
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
            shutdown.begin(grace);
        })
        .await
        .unwrap();
        Instant::now()
    });
    Server {
        addr,
        ends,
        served,
        stop: Some(stop),
        _root: root,
    }
}

/// A connection from `source` that asks for `path` and reads the response head.
/// Its receive buffer is small, so that a client that stops reading stalls the
/// server at once (loopback's autotuned buffers take tens of MiB).
async fn request(server: SocketAddr, source: &str, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(128 * 1024).unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    stream
}

/// Reads until the server closes; the bytes read.
async fn read_all(mut stream: TcpStream) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

async fn next_end(ends: &mut mpsc::UnboundedReceiver<(String, Outcome)>) -> (String, Outcome) {
    tokio::time::timeout(Duration::from_secs(20), ends.recv())
        .await
        .expect("a download ended")
        .expect("the observer is alive")
}

/// A client that never reads after the head and a throttled reader: after
/// `begin(1 s)`, `axum::serve` returns within the grace period plus a second,
/// and both downloads are reported cut by the shutdown. Without `Connections`
/// the serve future waited for the stalled client to go away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serve_returns_within_the_grace_period_with_a_stalled_client() {
    let grace = Duration::from_secs(1);
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(256));
    let mut server = server(layer, grace, Duration::ZERO).await;

    let stalled = request(server.addr, "127.0.0.1", "/big.bin").await;
    let reader = tokio::spawn(read_all(
        request(server.addr, "127.0.0.1", "/big.bin").await,
    ));
    let begun = Instant::now();
    server.stop.take().unwrap().send(()).unwrap();
    let returned = tokio::time::timeout(Duration::from_secs(20), &mut server.served)
        .await
        .expect("axum::serve returned")
        .unwrap();
    let took = returned - begun;
    assert!(took >= grace, "{took:?}");
    assert!(took < grace + Duration::from_secs(1), "{took:?}");

    // The reader got its first part at 256 KiB/s, then the connection closed.
    let read = reader.await.unwrap();
    assert!(read > 128 * 1024 && read < 4 * MIB, "{read} bytes");
    for _ in 0..2 {
        assert_eq!(
            next_end(&mut server.ends).await,
            ("/big.bin".to_owned(), Outcome::Shutdown)
        );
    }
    drop(stalled);
}

/// Under `axum::serve` with an idle timeout, a stalled client is disconnected
/// and reported as `IdleTimeout`, while the default client key (the peer IP,
/// from `ConnectInfo<SocketAddr>`) still gives two clients a rate each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeouts_under_axum_serve_keep_the_default_client_key() {
    let rate = 256 * 1024;
    // The big file goes at full speed, so that a stalled client fills its
    // socket at once.
    let layer = RangeServeLayer::new()
        .client_rate(Bandwidth::new(rate))
        .policy(|parts, policy| {
            if parts.uri.path() == "/big.bin" {
                policy.client_rate = Bandwidth::UNLIMITED;
            }
        });
    let mut server = server(layer, Duration::from_secs(1), Duration::from_secs(1)).await;

    // 256 KiB at 256 KiB/s takes about a second for each client at once (less
    // the first 100 ms of budget); one shared bucket would take two.
    let start = Instant::now();
    let clients = ["127.0.0.1", "127.0.0.2"].map(|source| {
        let addr = server.addr;
        tokio::spawn(async move {
            let bytes = read_all(request(addr, source, "/small.bin").await).await;
            (bytes, start.elapsed())
        })
    });
    for client in clients {
        let (bytes, took) = client.await.unwrap();
        assert!(bytes >= 256 * 1024, "{bytes} bytes");
        assert!(took > Duration::from_millis(700), "{took:?}");
        assert!(took < Duration::from_millis(1700), "{took:?}");
    }
    for _ in 0..2 {
        let (path, outcome) = next_end(&mut server.ends).await;
        assert_eq!((path.as_str(), outcome), ("/small.bin", Outcome::Complete));
    }

    // A client that stops reading: its socket fills, nothing moves for a
    // second, and the connection is closed.
    let mut stalled = request(server.addr, "127.0.0.3", "/big.bin").await;
    let (path, outcome) = next_end(&mut server.ends).await;
    assert_eq!((path.as_str(), outcome), ("/big.bin", Outcome::IdleTimeout));
    // The server closed it: what was buffered drains, then the end.
    let mut sink = Vec::new();
    let _ = stalled.read_to_end(&mut sink).await;
    assert!(sink.len() < 64 * MIB);
}

/// The shared state of the crate's own wrapper: a download that a server keeps
/// polling is cut by its body at the deadline, and `Shutdown::cut` counts it
/// once, whichever part noticed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_cut_at_the_deadline_are_counted_once() {
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(128));
    let shutdown = layer.shutdown_handle();
    let mut server = server(layer, Duration::from_millis(500), Duration::ZERO).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        // Every download has started (its head came) before the shutdown begins.
        let stream = request(server.addr, "127.0.0.1", "/big.bin").await;
        readers.push(tokio::spawn(read_all(stream)));
    }
    assert_eq!(shutdown.active(), 3);
    server.stop.take().unwrap().send(()).unwrap();
    (&mut server.served).await.unwrap();
    for reader in readers {
        assert!(reader.await.unwrap() < 64 * MIB);
    }
    for _ in 0..3 {
        assert_eq!(next_end(&mut server.ends).await.1, Outcome::Shutdown);
    }
    assert_eq!(shutdown.cut(), 3);
    assert_eq!(shutdown.active(), 0);
}
