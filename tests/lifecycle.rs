//! Disconnects, graceful shutdown, observers and idle connections.

mod support;

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_range_serve::lifecycle::{Connection, Download, End, Observer, Outcome};
use tower_range_serve::source::{RangeSource, ReadFuture};
use tower_range_serve::{Bandwidth, FileResponse, RangeBody, RangeServeLayer, ResponseBody};

const KIB: usize = 1024;

/// Records everything it is told.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    ends: Mutex<Vec<(Download, End)>>,
    progress: AtomicUsize,
}

impl Observer for Recorder {
    fn start(&self, download: &Download) {
        let event = format!(
            "start {} {} {}",
            download.path, download.status, download.total
        );
        self.events.lock().unwrap().push(event);
    }

    fn progress(&self, _download: &Download, _sent: u64) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self, download: &Download, end: &End) {
        self.ends.lock().unwrap().push((download.clone(), *end));
    }
}

impl Recorder {
    fn outcomes(&self) -> Vec<Outcome> {
        self.ends
            .lock()
            .unwrap()
            .iter()
            .map(|(_, end)| end.outcome)
            .collect()
    }
}

/// A source of `len` bytes that counts its reads, failing from `fail_at` on.
#[derive(Debug)]
struct Counting {
    len: u64,
    reads: AtomicUsize,
    fail_at: u64,
}

impl Counting {
    fn new(len: usize) -> Arc<Self> {
        Arc::new(Self {
            len: len as u64,
            reads: AtomicUsize::new(0),
            fail_at: u64::MAX,
        })
    }
}

impl RangeSource for Counting {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let result = if offset >= self.fail_at {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "gone"))
        } else {
            Ok(Bytes::from(vec![b'x'; len]))
        };
        Box::pin(std::future::ready(result))
    }
}

/// Shares a counting source behind `FileResponse::from_source`.
#[derive(Debug)]
struct Shared(Arc<Counting>);

impl RangeSource for Shared {
    fn len(&self) -> u64 {
        self.0.len
    }

    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        self.0.clone().read_at(offset, len)
    }
}

type Served = ResponseBody<RangeBody>;

fn serving(
    layer: &RangeServeLayer,
    source: Arc<Counting>,
) -> impl Service<Request<Empty<Bytes>>, Response = Response<Served>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    layer.layer(service_fn(move |_req: Request<Empty<Bytes>>| {
        let source = source.clone();
        async move { Ok::<_, Infallible>(FileResponse::from_source(Shared(source)).into_response()) }
    }))
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn no_read_starts_after_the_body_is_dropped() {
    let source = Counting::new(1024 * KIB);
    let layer = RangeServeLayer::new().chunk_size(KIB);
    let response = serving(&layer, source.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    let mut body = response.into_body();
    for _ in 0..3 {
        body.frame().await.unwrap().unwrap();
    }
    // Three chunks sent; reads that complete at once are not made ahead.
    assert_eq!(source.reads.load(Ordering::SeqCst), 3);
    drop(body);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(source.reads.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn observers_hear_start_bounded_progress_and_end() {
    let recorder = Arc::new(Recorder::default());
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(100))
        .observer(recorder.clone());
    let source = Counting::new(1000 * KIB);
    let response = serving(&layer, source)
        .oneshot(get("/movie.mp4"))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes.len(), 1000 * KIB);
    assert_eq!(
        *recorder.events.lock().unwrap(),
        [format!("start /movie.mp4 200 OK {}", 1000 * KIB)]
    );
    // A hundred chunks over ten seconds; progress once a second at most.
    let progress = recorder.progress.load(Ordering::SeqCst);
    assert!((8..=10).contains(&progress), "{progress}");
    let ends = recorder.ends.lock().unwrap();
    let (download, end) = &ends[0];
    assert_eq!(end.outcome, Outcome::Complete);
    assert_eq!(end.sent, 1000 * KIB as u64);
    assert_eq!(download.ranges, [(0, 1000 * KIB as u64 - 1)]);
    assert!(
        end.elapsed >= Duration::from_millis(9900),
        "{:?}",
        end.elapsed
    );
}

#[tokio::test]
async fn observers_hear_ranges_client_gone_and_failures() {
    let recorder = Arc::new(Recorder::default());
    let layer = RangeServeLayer::new()
        .chunk_size(KIB)
        .observer(recorder.clone());

    let source = Counting::new(100 * KIB);
    let request = Request::get("/a")
        .header("range", "bytes=0-99,5000-5099")
        .body(Empty::new())
        .unwrap();
    let response = serving(&layer, source.clone())
        .oneshot(request)
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();

    let mut body = serving(&layer, source)
        .oneshot(get("/b"))
        .await
        .unwrap()
        .into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);

    let failing = Arc::new(Counting {
        len: 100 * KIB as u64,
        reads: AtomicUsize::new(0),
        fail_at: 10 * KIB as u64,
    });
    let body = serving(&layer, failing)
        .oneshot(get("/c"))
        .await
        .unwrap()
        .into_body();
    assert!(body.collect().await.is_err());

    assert_eq!(
        recorder.outcomes(),
        [
            Outcome::Complete,
            Outcome::ClientGone,
            Outcome::Failed(io::ErrorKind::PermissionDenied)
        ]
    );
    let ends = recorder.ends.lock().unwrap();
    assert_eq!(ends[0].0.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(ends[0].0.ranges, [(0, 99), (5000, 5099)]);
    assert_eq!(ends[1].1.sent, KIB as u64);
    assert_eq!(ends[2].1.sent, 10 * KIB as u64);
}

#[tokio::test(start_paused = true)]
async fn shutdown_refuses_new_downloads_and_cuts_running_ones_after_the_grace() {
    let recorder = Arc::new(Recorder::default());
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(10))
        .retry_after(Duration::from_secs(3))
        .observer(recorder.clone());
    let shutdown = layer.shutdown_handle();
    let service = serving(&layer, Counting::new(1000 * KIB));

    let long = service
        .clone()
        .oneshot(get("/long"))
        .await
        .unwrap()
        .into_body();
    let long = tokio::spawn(async move {
        let mut body = long;
        let mut received = 0;
        loop {
            match body.frame().await {
                Some(Ok(frame)) => received += frame.into_data().unwrap().len(),
                Some(Err(error)) => return (received, Some(error.to_string())),
                None => return (received, None),
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shutdown.active(), 1);

    let start = tokio::time::Instant::now();
    shutdown.begin(Duration::from_secs(2));
    let refused = service.clone().oneshot(get("/new")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "3");
    assert_eq!(refused.headers()["content-length"], "0");

    let (received, error) = long.await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(error.unwrap().contains("shutting down"));
    // Three seconds at 10 KiB/s, within a chunk.
    assert!(
        (received as i64 - 30 * KIB as i64).abs() <= KIB as i64,
        "{received}"
    );
    shutdown.drained().await;
    assert_eq!(shutdown.active(), 0);
    assert_eq!(shutdown.cut(), 1);
    assert_eq!(recorder.outcomes(), [Outcome::Shutdown]);
}

#[tokio::test(start_paused = true)]
async fn downloads_that_finish_within_the_grace_are_not_cut() {
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(10));
    let shutdown = layer.shutdown_handle();
    let service = serving(&layer, Counting::new(20 * KIB));
    let body = service.oneshot(get("/")).await.unwrap().into_body();
    shutdown.begin(Duration::from_secs(5));
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(bytes.len(), 20 * KIB);
    shutdown.drained().await;
    assert_eq!(shutdown.cut(), 0);
}

/// A server whose connections are wrapped in `Connection` with an idle timeout
/// (the accept loop of one's own, inserting the signal); reports each closed
/// connection on the returned channel.
async fn idle_server(
    layer: RangeServeLayer,
    file: Arc<Counting>,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, receiver) = tokio::sync::mpsc::unbounded_channel();
    let service = serving(&layer, file);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let stream = Connection::new(stream).idle_timeout(Duration::from_secs(30));
            let signal = stream.signal();
            let service =
                service
                    .clone()
                    .map_request(move |request: Request<hyper::body::Incoming>| {
                        let (mut parts, _) = request.into_parts();
                        parts.extensions.insert(signal.clone());
                        Request::from_parts(parts, Empty::new())
                    });
            let closed = closed.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper_util::service::TowerToHyperService::new(service);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
                let _ = closed.send(());
            });
        }
    });
    (addr, receiver)
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_disconnected_after_the_idle_timeout() {
    let recorder = Arc::new(Recorder::default());
    let layer = RangeServeLayer::new().observer(recorder.clone());
    let (addr, mut closed) = idle_server(layer, Counting::new(256 * 1024 * KIB)).await;

    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stalled.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // Never read again: the server fills the socket, waits 30 s (of paused time)
    // for the client to accept a byte, then closes the connection.
    let start = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(120), closed.recv())
        .await
        .expect("the stalled connection was closed");
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(recorder.outcomes(), [Outcome::IdleTimeout]);
}

#[tokio::test(start_paused = true)]
async fn a_reading_client_is_never_idle() {
    let recorder = Arc::new(Recorder::default());
    let layer = RangeServeLayer::new().observer(recorder.clone());
    let (addr, mut closed) = idle_server(layer, Counting::new(8 * 1024 * KIB)).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert!(response.len() > 8 * 1024 * KIB);
    closed.recv().await.unwrap();
    assert_eq!(recorder.outcomes(), [Outcome::Complete]);
}
