//! Transfer quotas: bytes per client per window, counted on delivered bytes.
//! Paused time, except the last test (a real socket and two peers).

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::{
    Bandwidth, ClientKey, FileResponse, Quota, QuotaExhausted, RangeBody, RangeServeLayer,
};

const MINUTE: Duration = Duration::from_secs(60);

/// Answers `/{len}` with `len` bytes.
async fn handler(request: Request<Empty<Bytes>>) -> Result<Response<RangeBody>, Infallible> {
    let len: usize = request.uri().path()[1..].parse().unwrap();
    Ok(FileResponse::from_bytes(Bytes::from(vec![7; len])).into_response())
}

/// `method /{len}` from `peer` (an IP; none: no client key), with `headers`.
fn request(
    method: &str,
    len: usize,
    peer: Option<&str>,
    headers: &[(&str, &str)],
) -> Request<Empty<Bytes>> {
    let mut request = support::request(method, &format!("/{len}"), headers);
    if let Some(peer) = peer {
        let peer: SocketAddr = format!("{peer}:1000").parse().unwrap();
        request.extensions_mut().insert(peer);
    }
    request
}

struct Got {
    status: StatusCode,
    headers: http::HeaderMap,
    /// Bytes received, and whether the body ended with an error.
    bytes: usize,
    cut: bool,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

/// Sends `request` and reads the whole body (`frames`: at most that many).
async fn fetch(layer: &RangeServeLayer, request: Request<Empty<Bytes>>, frames: usize) -> Got {
    let service = layer.clone().layer(service_fn(handler));
    let response = service.oneshot(request).await.unwrap();
    let (parts, mut body) = response.into_parts();
    let (mut bytes, mut cut) = (0, false);
    for _ in 0..frames {
        match body.frame().await {
            Some(Ok(frame)) => bytes += frame.into_data().unwrap().len(),
            Some(Err(_)) => {
                cut = true;
                break;
            }
            None => break,
        }
    }
    Got {
        status: parts.status,
        headers: parts.headers,
        bytes,
        cut,
    }
}

async fn get(layer: &RangeServeLayer, len: usize, peer: &str) -> Got {
    fetch(layer, request("GET", len, Some(peer), &[]), usize::MAX).await
}

/// Moves paused time to 10 ms into the next window of `period` (windows are
/// aligned to the epoch on the wall clock the layer read when it was made), so
/// that no window ends during a test by chance.
async fn at_window_start(period: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let period = period.as_millis();
    let next = (period - now % period) as u64 + 10;
    tokio::time::advance(Duration::from_millis(next)).await;
}

/// `t` of the `RateLimit` field.
fn reset(got: &Got) -> u64 {
    let value = got.header("ratelimit");
    value.rsplit("t=").next().unwrap().parse().unwrap()
}

/// `r` of the `RateLimit` field.
fn remaining(got: &Got) -> u64 {
    let value = got.header("ratelimit");
    let r = value.split(";r=").nth(1).unwrap();
    r.split(';').next().unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_spent_quota_answers_429_until_the_window_ends_and_other_clients_go_on() {
    let layer = RangeServeLayer::new().quota(Quota::new(1000, MINUTE));
    at_window_start(MINUTE).await;
    let first = get(&layer, 600, "10.0.0.1").await;
    assert_eq!(
        (first.status, first.bytes, first.cut),
        (StatusCode::OK, 600, false)
    );
    assert_eq!(
        first.header("ratelimit-policy"),
        "\"quota\";q=1000;qu=\"content-bytes\";w=60"
    );
    assert_eq!(remaining(&first), 1000);
    // The second download is cut where the quota ends: 400 bytes, not a byte more.
    let second = get(&layer, 600, "10.0.0.1").await;
    assert_eq!(
        (second.status, second.bytes, second.cut),
        (StatusCode::OK, 400, true)
    );
    assert_eq!(remaining(&second), 400);

    let refused = get(&layer, 600, "10.0.0.1").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.bytes, 0);
    assert_eq!(refused.header("content-length"), "0");
    assert_eq!(remaining(&refused), 0);
    let wait = reset(&refused);
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(refused.header("retry-after"), wait.to_string());
    // HEAD gets the status its GET would get; another client is unaffected.
    let head = fetch(&layer, request("HEAD", 600, Some("10.0.0.1"), &[]), 1).await;
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
    let other = get(&layer, 600, "10.0.0.2").await;
    assert_eq!((other.status, other.bytes), (StatusCode::OK, 600));

    // Retry-After is rounded up: a second early is still too early.
    tokio::time::advance(Duration::from_secs(wait - 1)).await;
    let early = get(&layer, 600, "10.0.0.1").await;
    assert_eq!(early.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reset(&early), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    let again = get(&layer, 600, "10.0.0.1").await;
    assert_eq!((again.status, again.bytes), (StatusCode::OK, 600));
    assert_eq!(remaining(&again), 1000);
    assert_eq!(reset(&again), 60);
}

#[tokio::test(start_paused = true)]
async fn a_cut_download_and_a_resume_spend_only_what_they_delivered() {
    let layer = RangeServeLayer::new()
        .chunk_size(1000)
        .quota(Quota::new(100_000, MINUTE));
    at_window_start(MINUTE).await;
    let peer = Some("10.0.0.1");
    // Three frames, then the client goes away.
    let cut = fetch(&layer, request("GET", 64_000, peer, &[]), 3).await;
    assert_eq!(cut.status, StatusCode::OK);
    let delivered = cut.bytes as u64;
    assert!(delivered < 64_000);
    let next = fetch(&layer, request("HEAD", 64_000, peer, &[]), 1).await;
    assert_eq!(remaining(&next), 100_000 - delivered);
    // The resume sends the rest, and spends only that.
    let range = format!("bytes={delivered}-");
    let resume = fetch(
        &layer,
        request("GET", 64_000, peer, &[("range", &range)]),
        usize::MAX,
    )
    .await;
    assert_eq!(resume.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(resume.bytes as u64, 64_000 - delivered);
    let after = fetch(&layer, request("HEAD", 64_000, peer, &[]), 1).await;
    assert_eq!(remaining(&after), 100_000 - 64_000);
}

#[tokio::test(start_paused = true)]
async fn head_304_412_and_416_spend_nothing_and_multipart_counts_its_body() {
    let layer = RangeServeLayer::new().quota(Quota::new(10_000, MINUTE));
    at_window_start(MINUTE).await;
    let peer = Some("10.0.0.1");
    let whole = fetch(&layer, request("GET", 1000, peer, &[]), usize::MAX).await;
    assert_eq!(whole.bytes, 1000);
    for (method, headers, status) in [
        ("HEAD", vec![], StatusCode::OK),
        (
            "GET",
            vec![("if-none-match", "*")],
            StatusCode::NOT_MODIFIED,
        ),
        (
            "GET",
            vec![("if-match", "\"other\"")],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            "GET",
            vec![("range", "bytes=5000-")],
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
    ] {
        let got = fetch(&layer, request(method, 1000, peer, &headers), usize::MAX).await;
        assert_eq!(got.status, status);
    }
    let multipart = fetch(
        &layer,
        request("GET", 1000, peer, &[("range", "0-9,20-29")]),
        usize::MAX,
    )
    .await;
    let multipart = match multipart.status {
        // (`0-9,…` without the unit is not a range: the whole file again.)
        StatusCode::OK => {
            fetch(
                &layer,
                request("GET", 1000, peer, &[("range", "bytes=0-9,20-29")]),
                usize::MAX,
            )
            .await
        }
        _ => multipart,
    };
    assert_eq!(multipart.status, StatusCode::PARTIAL_CONTENT);
    let body: u64 = multipart.header("content-length").parse().unwrap();
    assert!(body > 20);
    let after = fetch(&layer, request("HEAD", 1000, peer, &[]), 1).await;
    assert_eq!(remaining(&after), 10_000 - 2000 - body);
}

/// Downloads of one client polled in turn, frame by frame, until each ends.
async fn round_robin(layer: &RangeServeLayer, downloads: usize, len: usize) -> (usize, usize) {
    let service = layer.clone().layer(service_fn(handler));
    let mut bodies = Vec::new();
    for _ in 0..downloads {
        let response = service
            .clone()
            .oneshot(request("GET", len, Some("10.0.0.1"), &[]))
            .await;
        bodies.push(Some(response.unwrap().into_body()));
    }
    let (mut bytes, mut cut) = (0, 0);
    while bodies.iter().any(Option::is_some) {
        for slot in &mut bodies {
            let Some(body) = slot else { continue };
            match body.frame().await {
                Some(Ok(frame)) => bytes += frame.into_data().unwrap().len(),
                Some(Err(_)) => {
                    cut += 1;
                    *slot = None;
                }
                None => *slot = None,
            }
        }
    }
    (bytes, cut)
}

#[tokio::test(start_paused = true)]
async fn running_downloads_overshoot_by_at_most_one_chunk_each() {
    const CHUNK: usize = 4096;
    let layer = RangeServeLayer::new()
        .chunk_size(CHUNK)
        .quota(Quota::new(10_000, MINUTE));
    at_window_start(MINUTE).await;
    let (bytes, cut) = round_robin(&layer, 4, 100_000).await;
    assert_eq!(cut, 4);
    assert!(bytes >= 10_000, "{bytes}");
    assert!(bytes <= 10_000 + 4 * CHUNK, "{bytes}");
}

#[tokio::test(start_paused = true)]
async fn reduce_goes_on_at_the_reduced_rate_after_the_quota() {
    const RATE: u64 = 10 * 1024;
    let layer = RangeServeLayer::new()
        .quota(Quota::new(20 * 1024, MINUTE))
        .quota_exhausted(QuotaExhausted::Reduce(Bandwidth::new(RATE)));
    at_window_start(MINUTE).await;
    let start = Instant::now();
    let got = get(&layer, 70 * 1024, "10.0.0.1").await;
    assert_eq!((got.bytes, got.cut), (70 * 1024, false));
    // 20 KiB at once, then 50 KiB at 10 KiB/s: a second's chunk at 0 s, …, 4 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(4010), "{elapsed:?}");
    // A new request is served at the reduced rate too (not refused).
    let start = Instant::now();
    let next = get(&layer, 30 * 1024, "10.0.0.1").await;
    assert_eq!((next.status, next.bytes), (StatusCode::OK, 30 * 1024));
    assert_eq!(remaining(&next), 0);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2010), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn keyless_requests_share_one_quota_and_a_policy_sets_a_tier() {
    let layer = RangeServeLayer::new()
        .client_key(|_| None)
        .quota(Quota::new(1000, MINUTE))
        .policy(|parts, policy| {
            if parts.headers.contains_key("x-paid") {
                policy.client = Some(ClientKey::from("paid"));
                policy.quota = Some(Quota::new(5000, MINUTE));
            }
        });
    at_window_start(MINUTE).await;
    let one = fetch(&layer, request("GET", 800, None, &[]), usize::MAX).await;
    assert_eq!(one.bytes, 800);
    let two = fetch(&layer, request("GET", 800, None, &[]), usize::MAX).await;
    assert_eq!((two.bytes, two.cut), (200, true));
    let paid = fetch(
        &layer,
        request("GET", 800, None, &[("x-paid", "1")]),
        usize::MAX,
    )
    .await;
    assert_eq!((paid.bytes, remaining(&paid)), (800, 5000));
    assert!(paid.header("ratelimit-policy").contains("q=5000"));
}

/// A real server with axum's `ConnectInfo`: one peer spends its quota, the
/// next request gets 429, another peer (127.0.0.2) is unaffected, and after
/// the window the first downloads again. Real time: a window of two seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_socket_a_client_is_refused_until_its_window_ends() {
    use axum::Router;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("f"), vec![1u8; 3000]).unwrap();
    let layer = RangeServeLayer::new().quota(Quota::new(6000, Duration::from_secs(2)));
    let app = Router::new()
        .fallback_service(tower_range_serve::ServeDir::new(root.path()))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    // Aligned to a window's start, so the three requests fall in one window.
    let until_next = {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        Duration::from_millis(2000 - (now.as_millis() % 2000) as u64)
    };
    tokio::time::sleep(until_next).await;
    let first = download(server, "127.0.0.1").await;
    let second = download(server, "127.0.0.1").await;
    let third = download(server, "127.0.0.1").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");
    let retry: u64 = header(&third, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let other = download(server, "127.0.0.2").await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let again = download(server, "127.0.0.1").await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert!(again.ends_with(&"\u{1}".repeat(3000)), "the whole file");
}

/// A raw HTTP/1.1 GET of `/f` from `source`, read until the server closes.
async fn download(server: SocketAddr, source: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(b"GET /f HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    // A download cut by its quota ends with a reset, not a close.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> &'a str {
    response
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {response}"))
}
