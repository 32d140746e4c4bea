//! The layer beside tower-http's middleware: compression, tracing, timeouts. Which
//! order works, and what goes wrong in the other.

mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get as axum_get;
use bytes::Bytes;
use http::header::ACCEPT_RANGES;
use http::{Extensions, HeaderMap, StatusCode, Version};
use http_body_util::BodyExt;
use support::{Fetched, get, parse_multipart, send, serve};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_range_serve::{Bandwidth, FileResponse, RangeServeLayer, ServeDir};

/// A compressible text file of 20 000 bytes.
fn text() -> Vec<u8> {
    let mut text = String::new();
    for i in 0.. {
        let line = format!("line {i:05}: the quick brown fox jumps over the lazy dog\n");
        if text.len() + line.len() > 20_000 {
            text.push_str(&"x".repeat(20_000 - text.len()));
            break;
        }
        text.push_str(&line);
    }
    text.into_bytes()
}

fn root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("text.txt"), text()).unwrap();
    root
}

/// Files under `root` and a JSON route beside them.
fn app(root: &Path) -> Router {
    let json = "[".to_owned() + &r#"{"ok":true},"#.repeat(100) + "null]";
    Router::new()
        .route(
            "/api",
            axum_get(move || async move { ([("content-type", "application/json")], json) }),
        )
        .fallback_service(ServeDir::new(root))
}

fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut decoded)?;
    Ok(decoded)
}

async fn fetch_gzip(addr: SocketAddr, path: &str, range: Option<&str>) -> Fetched {
    let mut headers = vec![("accept-encoding", "gzip")];
    headers.extend(range.map(|range| ("range", range)));
    send(addr, get(path, &headers)).await
}

#[tokio::test]
async fn compression_outside_the_range_layer_leaves_ranges_intact() {
    let root = root();
    let text = text();
    // Compression is the outer layer: it sees the layer's final answer.
    let addr = serve(
        app(root.path())
            .layer(RangeServeLayer::new())
            .layer(CompressionLayer::new()),
    )
    .await;

    // A single range carries Content-Range, which tower-http never compresses.
    let part = fetch_gzip(addr, "/text.txt", Some("bytes=1000-1999")).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert!(part.headers.get("content-encoding").is_none());
    assert_eq!(part.header("content-range"), "bytes 1000-1999/20000");
    assert_eq!(part.header("content-length"), "1000");
    assert_eq!(part.bytes().as_ref(), &text[1000..2000]);

    // The whole file is compressed; Accept-Ranges goes, the strong ETag stays.
    let whole = fetch_gzip(addr, "/text.txt", None).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-encoding"), "gzip");
    assert!(whole.headers.get("accept-ranges").is_none());
    assert!(whole.bytes().len() < text.len() / 4);
    assert_eq!(gunzip(whole.bytes()).unwrap(), text);

    // Several ranges have no top-level Content-Range: the default predicate
    // compresses the multipart body. It decodes to the right parts, but a
    // Content-Encoding on a 206 is better avoided (see the next test).
    let parts = fetch_gzip(addr, "/text.txt", Some("bytes=0-9,100-109")).await;
    assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(parts.header("content-encoding"), "gzip");
    let decoded = gunzip(parts.bytes()).unwrap();
    let parsed = parse_multipart(parts.header("content-type"), &decoded);
    assert_eq!(parsed[1].body, &text[100..110]);

    // Conditional requests are answered before compression has anything to do.
    let etag = whole.header("etag");
    let cached = send(
        addr,
        get(
            "/text.txt",
            &[("accept-encoding", "gzip"), ("if-none-match", etag)],
        ),
    )
    .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn compression_can_leave_file_backed_responses_alone() {
    let root = root();
    let text = text();
    // Every answer the layer builds from a file carries `Accept-Ranges: bytes`:
    // skip those, compress the rest.
    let not_ranged = |_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions| {
        !headers.contains_key(ACCEPT_RANGES)
    };
    let compression =
        CompressionLayer::new().compress_when(DefaultPredicate::new().and(not_ranged));
    let addr = serve(
        app(root.path())
            .layer(RangeServeLayer::new())
            .layer(compression),
    )
    .await;

    let whole = fetch_gzip(addr, "/text.txt", None).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert!(whole.headers.get("content-encoding").is_none());
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-length"), "20000");
    assert_eq!(whole.bytes().as_ref(), &text[..]);

    let parts = fetch_gzip(addr, "/text.txt", Some("bytes=0-9,100-109")).await;
    assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT);
    assert!(parts.headers.get("content-encoding").is_none());
    let parsed = parse_multipart(parts.header("content-type"), parts.bytes());
    assert_eq!(parsed[0].body, &text[..10]);

    let json = fetch_gzip(addr, "/api", None).await;
    assert_eq!(json.header("content-encoding"), "gzip");
    assert!(
        gunzip(json.bytes())
            .unwrap()
            .starts_with(br#"[{"ok":true}"#)
    );
}

/// The wrong order, kept as a test so that the documented order has a reason:
/// compression inside the range layer compresses the handler's 200 and marks it
/// `Content-Encoding: gzip`; the range layer then replaces the body with the raw
/// bytes of the range and keeps that header. Clients get garbage.
#[tokio::test]
async fn compression_inside_the_range_layer_is_passed_through_untouched() {
    let root = root();
    let text = text();
    let addr = serve(
        app(root.path())
            .layer(CompressionLayer::new())
            .layer(RangeServeLayer::new()),
    )
    .await;

    // The compressed body is not the file's bytes any more: the layer leaves it
    // alone rather than serving raw ranges under `Content-Encoding: gzip`.
    let whole = fetch_gzip(addr, "/text.txt", Some("bytes=1000-1999")).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-encoding"), "gzip");
    assert!(whole.headers.get("content-range").is_none());
    assert_eq!(gunzip(whole.bytes()).unwrap(), text);
}

/// What a `TraceLayer` saw: statuses from `on_response`, bytes from
/// `on_body_chunk`.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<(Vec<StatusCode>, usize)>>);

impl Seen {
    fn status(&self, status: StatusCode) {
        self.0.lock().unwrap().0.push(status);
    }

    fn chunk(&self, len: usize) {
        self.0.lock().unwrap().1 += len;
    }

    fn get(&self) -> (Vec<StatusCode>, usize) {
        self.0.lock().unwrap().clone()
    }
}

/// A `TraceLayer` that records into `seen`.
macro_rules! recording_trace {
    ($seen:expr) => {{
        let (on_response, on_chunk) = ($seen.clone(), $seen.clone());
        TraceLayer::new_for_http()
            .on_response(move |response: &http::Response<_>, _: Duration, _: &_| {
                on_response.status(response.status())
            })
            .on_body_chunk(move |chunk: &Bytes, _: Duration, _: &_| on_chunk.chunk(chunk.len()))
    }};
}

#[tokio::test]
async fn trace_outside_the_range_layer_sees_what_the_client_gets() {
    let root = root();
    let text = text();

    // Outside: the 206 and the 500 bytes of the range.
    let outside = Seen::default();
    let service = ServiceBuilder::new()
        .layer(recording_trace!(outside))
        .layer(RangeServeLayer::new())
        .service(ServeDir::new(root.path()));
    let response = service
        .oneshot(get("/text.txt", &[("range", "bytes=-500")]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), &text[19_500..]);
    assert_eq!(outside.get(), (vec![StatusCode::PARTIAL_CONTENT], 500));

    // Inside: the handler's 200, and no byte, since the layer replaces that body.
    // The client's answer is right either way; only the log is wrong.
    let inside = Seen::default();
    let service = ServiceBuilder::new()
        .layer(RangeServeLayer::new())
        .layer(recording_trace!(inside))
        .service(ServeDir::new(root.path()));
    let response = service
        .oneshot(get("/text.txt", &[("range", "bytes=-500")]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), &text[19_500..]);
    assert_eq!(inside.get(), (vec![StatusCode::OK], 0));
}

/// A handler serving 640 KiB from memory (no blocking pool, so paused time can
/// run ahead), after `delay`.
async fn slow_file(delay: Duration) -> FileResponse {
    tokio::time::sleep(delay).await;
    FileResponse::from_bytes(Bytes::from(vec![7u8; 640 * 1024]))
}

#[tokio::test(start_paused = true)]
async fn a_timeout_bounds_the_wait_for_headers_not_a_throttled_download() {
    // 640 KiB at 64 KiB/s: about ten seconds of body after a prompt response.
    let app = Router::new()
        .route("/file", axum_get(|| slow_file(Duration::ZERO)))
        .layer(RangeServeLayer::new().rate(Bandwidth::kib(64)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(1),
        ));
    let start = tokio::time::Instant::now();
    let response = app.oneshot(get("/file", &[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 640 * 1024);
    assert!(
        start.elapsed() >= Duration::from_secs(9),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_handler_is_answered_in_either_order() {
    for timeout_outside in [true, false] {
        let files = Router::new().route("/file", axum_get(|| slow_file(Duration::from_secs(5))));
        let timeout =
            TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(1));
        let app = if timeout_outside {
            files.layer(RangeServeLayer::new()).layer(timeout)
        } else {
            files.layer(timeout).layer(RangeServeLayer::new())
        };
        let start = tokio::time::Instant::now();
        let response = app
            .oneshot(get("/file", &[("range", "bytes=0-9")]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(response.headers().get("content-range").is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}

/// A `Content-Length` an inner layer spelled otherwise than `1*DIGIT` (here
/// `+5`, which parses as the file's length) is answered with the canonical one.
#[tokio::test]
async fn a_content_length_spelled_otherwise_is_sent_canonical() {
    let service = tower::Layer::layer(
        &RangeServeLayer::new(),
        tower::service_fn(|_request| async {
            let mut response =
                FileResponse::from_bytes(Bytes::from_static(b"hello")).into_response();
            response.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_static("+5"),
            );
            Ok::<_, std::convert::Infallible>(response)
        }),
    );
    let request = http::Request::get("/")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[http::header::CONTENT_LENGTH], "5");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
}
