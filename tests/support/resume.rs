//! A resuming download client for rough-network tests: after every cut it asks
//! for what is missing with `Range` and `If-Range`, until the file is whole; and
//! a server that counts its open connections and tells the layer each peer.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

use super::BoxError;

/// Serves `service` over HTTP/1.1 on a fresh loopback port, with each peer's
/// address as a request extension (the layer's default client key). The count
/// is of connections still being served.
pub async fn serve_counted<S, B>(service: S) -> (SocketAddr, Arc<AtomicUsize>)
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counted = open.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = service.clone().map_request(move |mut request: Request<_>| {
                request.extensions_mut().insert(peer);
                request
            });
            counted.fetch_add(1, Ordering::SeqCst);
            let counted = counted.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
                counted.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

/// How a resumed download went.
#[derive(Debug, Default, Clone, Copy)]
pub struct Resumed {
    /// Requests sent.
    pub attempts: u32,
    /// Attempts that ended early: no response, an error status the client
    /// retries (502, 503, 504), or a body cut short.
    pub cuts: u32,
    /// Answers of 200 to a resume (a request with `If-Range`): the version
    /// changed, the download restarted.
    pub restarts: u32,
}

const MAX_ATTEMPTS: u32 = 2000;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads `path` from `addr` whole, resuming after every cut with
/// `Range: bytes=N-` and `If-Range: <etag>`. `before` runs before each attempt
/// with the bytes held so far (a test changes the file there). Every 206 must
/// continue exactly where the bytes held end, with the ETag and length of the
/// first answer; a 200 starts over.
pub async fn download(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    mut before: impl FnMut(&[u8]),
) -> (Vec<u8>, Resumed) {
    let mut have = Vec::new();
    let mut version: Option<(String, u64)> = None;
    let mut stats = Resumed::default();
    loop {
        assert!(stats.attempts < MAX_ATTEMPTS, "no end after {stats:?}");
        before(&have);
        stats.attempts += 1;
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        // A resume: what is held, and the version it is of.
        let resuming = version
            .as_ref()
            .filter(|_| !have.is_empty())
            .map(|(etag, _)| etag.clone());
        if let Some(etag) = &resuming {
            request = request
                .header("range", format!("bytes={}-", have.len()))
                .header("if-range", etag);
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        let attempt = async {
            let Some(response) = connect_and_send(addr, request).await else {
                return false;
            };
            let status = response.status();
            if is_retried(status) {
                return false;
            }
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            match status {
                StatusCode::OK => {
                    let len = content_length(&response);
                    if let Some(held) = &resuming {
                        // RFC 9110 §13.1.5: the whole file only for another version.
                        assert_ne!(held, &etag, "a 200 to a resume whose If-Range matches");
                        stats.restarts += 1;
                    }
                    version = Some((etag, len));
                    have.clear();
                }
                StatusCode::PARTIAL_CONTENT => {
                    let (known, len) = version.clone().expect("a 206 to a first request");
                    assert_eq!(etag, known, "a 206 of another version");
                    let range = response.headers()["content-range"].to_str().unwrap();
                    let (first, last, complete) = super::parse_content_range(range);
                    assert_eq!(first, have.len() as u64, "a 206 that does not resume");
                    assert_eq!((last + 1, complete), (len, len), "{range}");
                }
                other => panic!("unexpected {other} for {path}"),
            }
            let mut body = response.into_body();
            loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            have.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) => return false,
                    None => break,
                }
            }
            let (_, len) = version.as_ref().unwrap();
            assert_eq!(
                have.len() as u64,
                *len,
                "a body that ended cleanly short of its length"
            );
            true
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(true) => return (have, stats),
            Ok(false) => stats.cuts += 1,
            Err(_) => panic!("an attempt took over {ATTEMPT_TIMEOUT:?}: {stats:?}"),
        }
    }
}

/// Downloads the byte ranges `wanted` (inclusive, disjoint, not adjacent) of
/// `path` in one request, resuming after every cut with a request for only the
/// parts still missing (`If-Range` set), until every range is held. The answer
/// to a request for several ranges is `multipart/byteranges`; for one, a plain
/// 206. Returns the ranges' bytes as a map of offset to byte (of a file of
/// `len` bytes; `None` where not wanted).
pub async fn download_ranges(
    addr: SocketAddr,
    path: &str,
    len: u64,
    wanted: &[(u64, u64)],
) -> (Vec<Option<u8>>, Resumed) {
    let mut held: Vec<Option<u8>> = vec![None; len as usize];
    let mut etag: Option<String> = None;
    let mut stats = Resumed::default();
    let mut multipart = 0;
    loop {
        let missing = missing(&held, wanted);
        if missing.is_empty() {
            assert!(multipart > 0, "no multipart answer");
            return (held, stats);
        }
        assert!(stats.attempts < MAX_ATTEMPTS, "no end after {stats:?}");
        stats.attempts += 1;
        let ranges: Vec<String> = missing.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        let mut request = Request::get(path).header("range", format!("bytes={}", ranges.join(",")));
        if let Some(etag) = &etag {
            request = request.header("if-range", etag);
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        let attempt = async {
            let Some(response) = connect_and_send(addr, request).await else {
                return false;
            };
            if is_retried(response.status()) {
                return false;
            }
            assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
            let this = response.headers()["etag"].to_str().unwrap().to_owned();
            assert_eq!(etag.get_or_insert_with(|| this.clone()), &this);
            let headers = response.headers().clone();
            let mut body = response.into_body();
            let mut received = Vec::new();
            let complete = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            received.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) => break false,
                    None => break true,
                }
            };
            let content_type = headers["content-type"].to_str().unwrap();
            let pieces = if let Some(boundary) =
                content_type.strip_prefix("multipart/byteranges; boundary=")
            {
                multipart += 1;
                if complete {
                    // Whole: it must parse strictly, closing delimiter included.
                    super::parse_multipart(content_type, &received);
                }
                multipart_prefix(boundary, &received)
            } else {
                let range = headers["content-range"].to_str().unwrap();
                let (first, last, _) = super::parse_content_range(range);
                assert!(received.len() as u64 <= last - first + 1);
                vec![(first, &received[..])]
            };
            for (first, bytes) in pieces {
                for (i, byte) in bytes.iter().enumerate() {
                    let at = first as usize + i;
                    assert!(
                        held[at].is_none_or(|b| b == *byte),
                        "byte {at} changed between answers"
                    );
                    held[at] = Some(*byte);
                }
            }
            complete
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(true) => {}
            Ok(false) => stats.cuts += 1,
            Err(_) => panic!("an attempt took over {ATTEMPT_TIMEOUT:?}: {stats:?}"),
        }
    }
}

/// The runs of `wanted` not yet held.
fn missing(held: &[Option<u8>], wanted: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut runs = Vec::new();
    for &(first, last) in wanted {
        let mut start = None;
        for at in first..=last {
            match (held[at as usize].is_none(), start) {
                (true, None) => start = Some(at),
                (false, Some(s)) => {
                    runs.push((s, at - 1));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            runs.push((s, last));
        }
    }
    runs
}

/// The parts of a `multipart/byteranges` body that arrived before a cut: each
/// part whose headers came whole, with as much of its body as came.
fn multipart_prefix<'a>(boundary: &str, mut rest: &'a [u8]) -> Vec<(u64, &'a [u8])> {
    let mut parts = Vec::new();
    let mut delimiter = format!("--{boundary}\r\n");
    while let Some(after) = rest.strip_prefix(delimiter.as_bytes()) {
        let Some(end) = after.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head = std::str::from_utf8(&after[..end]).unwrap();
        let range = head
            .split("\r\n")
            .find_map(|line| line.strip_prefix("Content-Range: "))
            .expect("a Content-Range in every part");
        let (first, last, _) = super::parse_content_range(range);
        let body = &after[end + 4..];
        let n = body.len().min((last - first + 1) as usize);
        parts.push((first, &body[..n]));
        if n < (last - first + 1) as usize {
            break;
        }
        rest = &body[n..];
        delimiter = format!("\r\n--{boundary}\r\n");
    }
    parts
}

/// Whether a status is one a client retries (the source was unreachable).
fn is_retried(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

fn content_length<B>(response: &Response<B>) -> u64 {
    response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends `request` over a new HTTP/1.1 connection; `None` when the connection
/// fails before a response head.
async fn connect_and_send(
    addr: SocketAddr,
    request: Request<Empty<Bytes>>,
) -> Option<Response<hyper::body::Incoming>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    sender.send_request(request).await.ok()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Tasks alive on the current runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits until `done` holds, giving the blocking pool and the runtime time to
/// finish; gives up after a bounded number of rounds and lets the asserts report.
pub async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
