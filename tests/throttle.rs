//! Bandwidth policy, on paused time: exact durations, fairness, shared limits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_range_serve::{
    Bandwidth, BoxError, ClientKey, FileResponse, Policy, RangeServeLayer, ResponseBody,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

type Served = ResponseBody<tower_range_serve::RangeBody>;

/// A service whose responses are `len` bytes, `len` taken from the path (`/1048576`);
/// `?unlimited` makes the handler lift its own rate.
fn files(
    layer: &RangeServeLayer,
) -> impl Service<Request<Empty<Bytes>>, Response = Response<Served>, Error = Infallible> + Clone {
    layer.layer(service_fn(|req: Request<Empty<Bytes>>| async move {
        let len: usize = req.uri().path()[1..].parse().unwrap();
        let mut file = FileResponse::from_bytes(Bytes::from(vec![b'x'; len]));
        if req.uri().query() == Some("unlimited") {
            file = file.rate(Bandwidth::UNLIMITED);
        }
        Ok::<_, Infallible>(file.into_response())
    }))
}

/// Starts a `GET` from `peer` and returns the response.
async fn get(layer: &RangeServeLayer, uri: &str, peer: &str) -> Response<Served> {
    let mut request = Request::get(uri).body(Empty::new()).unwrap();
    let peer: SocketAddr = format!("{peer}:1234").parse().unwrap();
    request.extensions_mut().insert(peer);
    files(layer).oneshot(request).await.unwrap()
}

/// Reads a body to the end, recording when each frame arrived.
async fn frames(mut body: Served) -> Vec<(Duration, usize)> {
    let start = Instant::now();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        let len = frame.unwrap().into_data().unwrap().len();
        frames.push((start.elapsed(), len));
    }
    frames
}

/// Reads a body in the background, counting bytes.
fn count(mut body: Served) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let counter = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn({
        let counter = counter.clone();
        async move {
            while let Some(frame) = body.frame().await {
                let len = frame.unwrap().into_data().unwrap().len();
                counter.fetch_add(len as u64, Ordering::SeqCst);
            }
        }
    });
    (counter, task)
}

fn total(frames: &[(Duration, usize)]) -> u64 {
    frames.iter().map(|(_, len)| *len as u64).sum()
}

/// Asserts that by each frame, no more than `rate × t + burst` bytes arrived.
fn assert_never_ahead(frames: &[(Duration, usize)], rate: u64, burst: u64) {
    let mut received = 0;
    for (at, len) in frames {
        received += *len as u64;
        let allowed = (rate as f64 * at.as_secs_f64()) as u64 + burst;
        assert!(
            received <= allowed,
            "{received} bytes by {at:?}, allowed {allowed}"
        );
    }
}

fn jain(values: &[u64]) -> f64 {
    let sum: f64 = values.iter().map(|&v| v as f64).sum();
    let squares: f64 = values.iter().map(|&v| (v as f64).powi(2)).sum();
    sum * sum / (values.len() as f64 * squares)
}

#[tokio::test(start_paused = true)]
async fn a_response_goes_exactly_at_its_rate() {
    let layer = RangeServeLayer::new().rate(Bandwidth::mib(1));
    let response = get(&layer, &format!("/{}", 8 * MIB), "10.0.0.1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let frames = frames(response.into_body()).await;
    assert_eq!(total(&frames), 8 * MIB);
    // 64 KiB chunks; the last one may go at (8 MiB − 64 KiB) / (1 MiB/s).
    assert!(frames.iter().all(|(_, len)| *len == 64 * KIB as usize));
    // Timers fire on whole milliseconds.
    let expected = Duration::from_millis(7937) + Duration::from_micros(500);
    assert!(frames.last().unwrap().0.abs_diff(expected) <= Duration::from_millis(1));
    assert_never_ahead(&frames, MIB, 64 * KIB);
}

#[tokio::test(start_paused = true)]
async fn slow_rates_send_small_chunks_when_asked_for_smoothness() {
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(16))
        .min_throttled_chunk(0);
    let response = get(&layer, &format!("/{}", 64 * KIB), "10.0.0.1").await;
    let frames = frames(response.into_body()).await;
    assert_eq!(total(&frames), 64 * KIB);
    // A tenth of a second of budget at most.
    assert!(frames.iter().all(|(_, len)| *len <= 1639), "{frames:?}");
    let last = frames.last().unwrap();
    let expected = Duration::from_secs_f64((64 * KIB - last.1 as u64) as f64 / (16 * KIB) as f64);
    assert!(
        last.0.abs_diff(expected) < Duration::from_millis(1),
        "{:?}",
        last.0
    );
    assert_never_ahead(&frames, 16 * KIB, 1639);
}

#[tokio::test(start_paused = true)]
async fn slow_rates_send_one_chunk_a_second_by_default() {
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(16));
    let response = get(&layer, &format!("/{}", 64 * KIB), "10.0.0.1").await;
    let frames = frames(response.into_body()).await;
    // 16 KiB chunks (the default smallest throttled chunk) at 0, 1, 2 and 3 s:
    // four sends where a tenth of a second of the rate made forty.
    let expected: Vec<_> = (0..4)
        .map(|s| (Duration::from_secs(s), 16 * KIB as usize))
        .collect();
    assert_eq!(frames, expected);
    // A faster rate keeps a tenth of a second per chunk: 256 KiB/s, 25.6 KiB.
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(256));
    let frames = frames_of(get(&layer, &format!("/{}", 256 * KIB), "10.0.0.1").await).await;
    assert_eq!(total(&frames), 256 * KIB);
    assert_eq!(frames[0].1, 26214);
    assert_never_ahead(&frames, 256 * KIB, 26214);
}

#[tokio::test(start_paused = true)]
async fn the_first_bytes_go_at_full_speed_then_the_rate_applies() {
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(100))
        .rate_after(256 * KIB);
    let response = get(&layer, &format!("/{}", 456 * KIB), "10.0.0.1").await;
    let frames = frames(response.into_body()).await;
    let instant: u64 = frames
        .iter()
        .filter(|(at, _)| at.is_zero())
        .map(|(_, len)| *len as u64)
        .sum();
    // The unthrottled start, then at most one paced chunk (16 KiB, the default
    // smallest throttled chunk, as a tenth of a second of 100 KiB/s is less).
    assert!(instant >= 256 * KIB, "{instant}");
    assert!(instant <= 256 * KIB + 16 * KIB, "{instant}");
    // The other 200 KiB take two seconds, less the last chunk.
    let last = frames.last().unwrap();
    let expected =
        Duration::from_secs(2) - Duration::from_secs_f64(last.1 as f64 / (100 * KIB) as f64);
    assert!(
        last.0.abs_diff(expected) < Duration::from_millis(1),
        "{:?}",
        last.0
    );
}

#[tokio::test(start_paused = true)]
async fn streams_of_one_client_share_its_rate_fairly() {
    let rate = 256 * KIB;
    let layer = RangeServeLayer::new().client_rate(Bandwidth::new(rate));
    let mut counters = Vec::new();
    for _ in 0..16 {
        let response = get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1").await;
        counters.push(count(response.into_body()).0);
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let received: Vec<u64> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let sum: u64 = received.iter().sum();
    assert!(sum <= rate * 8 + rate / 10, "{sum}");
    assert!(sum as f64 >= rate as f64 * 8.0 * 0.99, "{sum}");
    let share = sum as f64 / 16.0;
    for bytes in &received {
        assert!(
            (*bytes as f64 - share).abs() <= share * 0.05,
            "{received:?}"
        );
    }
    assert!(jain(&received) >= 0.99, "{received:?}");
}

#[tokio::test(start_paused = true)]
async fn clients_do_not_share_each_others_rate() {
    let rate = 64 * KIB;
    let layer = RangeServeLayer::new().client_rate(Bandwidth::new(rate));
    let (a, _) = count(
        get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    let (b, _) = count(
        get(&layer, &format!("/{}", 100 * MIB), "10.0.0.2")
            .await
            .into_body(),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Each gets its own rate, within one chunk (a tenth of a second of it).
    for counter in [a, b] {
        let bytes = counter.load(Ordering::SeqCst) as f64;
        assert!(
            (bytes - rate as f64 * 8.0).abs() <= rate as f64 / 10.0,
            "{bytes}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_total_rate_caps_all_clients_together() {
    let rate = 200 * KIB;
    let layer = RangeServeLayer::new()
        .total_rate(Bandwidth::new(rate))
        .client_rate(Bandwidth::mib(10));
    let mut counters = Vec::new();
    for peer in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        counters.push(
            count(
                get(&layer, &format!("/{}", 100 * MIB), peer)
                    .await
                    .into_body(),
            )
            .0,
        );
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let received: Vec<u64> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let sum: u64 = received.iter().sum();
    assert!(sum <= rate * 8 + rate / 10, "{sum}");
    assert!(sum as f64 >= rate as f64 * 8.0 * 0.99, "{sum}");
    assert!(jain(&received) >= 0.99, "{received:?}");
}

#[tokio::test(start_paused = true)]
async fn the_tightest_of_several_limits_wins() {
    // Own rate tighter than the client's.
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(10))
        .client_rate(Bandwidth::kib(100));
    let (own, _) = count(
        get(&layer, &format!("/{}", 10 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    // Client rate tighter than the own rate.
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(100))
        .client_rate(Bandwidth::kib(10));
    let (client, _) = count(
        get(&layer, &format!("/{}", 10 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    for counter in [own, client] {
        let bytes = counter.load(Ordering::SeqCst) as f64;
        let expected = (10 * KIB * 8) as f64;
        assert!((bytes - expected).abs() <= expected * 0.02, "{bytes}");
    }
}

#[tokio::test(start_paused = true)]
async fn running_streams_follow_a_live_rate_change_within_a_second() {
    let layer = RangeServeLayer::new().total_rate(Bandwidth::kib(100));
    let control = layer.bandwidth_control();
    let (counter, _) = count(
        get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = counter.load(Ordering::SeqCst);
    control.set_total_rate(Bandwidth::kib(400));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = counter.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = counter.load(Ordering::SeqCst);
    // Within one chunk (100 ms of budget) of the rate.
    assert!(
        (before as f64 - 400.0 * KIB as f64).abs() <= 10.0 * KIB as f64,
        "{before}"
    );
    // Within the first second, most of it at the new rate already.
    assert!(settled - before >= 300 * KIB, "{}", settled - before);
    let rate = (after - settled) as f64 / 3.0;
    assert!(
        (rate - 400.0 * KIB as f64).abs() < 4.0 * KIB as f64,
        "{rate}"
    );
    // Lifting the limit lets the stream finish at once.
    control.set_total_rate(Bandwidth::UNLIMITED);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(counter.load(Ordering::SeqCst), 100 * MIB);
}

#[tokio::test(start_paused = true)]
async fn streams_beyond_the_client_maximum_get_429_before_any_byte() {
    let layer = RangeServeLayer::new()
        .max_streams_per_client(2)
        .retry_after(Duration::from_secs(7));
    let control = layer.bandwidth_control();
    let first = get(&layer, "/1000", "10.0.0.1").await;
    let second = get(&layer, "/1000", "10.0.0.1").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let third = get(&layer, "/1000", "10.0.0.1").await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["retry-after"], "7");
    assert_eq!(third.headers()["content-length"], "0");
    assert!(third.headers().get("content-range").is_none());
    assert_eq!(
        third.into_body().collect().await.unwrap().to_bytes().len(),
        0
    );
    // Another client is not affected. A HEAD gets the 429 its GET would get.
    assert_eq!(
        get(&layer, "/1000", "10.0.0.2").await.status(),
        StatusCode::OK
    );
    let mut head = Request::head("/1000").body(Empty::new()).unwrap();
    head.extensions_mut()
        .insert("10.0.0.1:1".parse::<SocketAddr>().unwrap());
    assert_eq!(
        files(&layer).oneshot(head).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A finished stream frees its place.
    first.into_body().collect().await.unwrap();
    assert_eq!(
        get(&layer, "/1000", "10.0.0.1").await.status(),
        StatusCode::OK
    );
    drop(second);
    assert_eq!(control.active_clients(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_reader_does_not_slow_its_sharers() {
    let rate = 100 * KIB;
    let layer = RangeServeLayer::new()
        .client_rate(Bandwidth::new(rate))
        .total_rate(Bandwidth::new(rate * 10));
    // The stalled reader takes a first chunk, then waits for the limiter, and is
    // never polled again while holding its place in the queue.
    let mut stalled = get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1")
        .await
        .into_body();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    while std::pin::Pin::new(&mut stalled)
        .poll_frame(&mut cx)
        .is_ready()
    {}
    let (active, _) = count(
        get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let bytes = active.load(Ordering::SeqCst) as f64;
    // The stalled stream holds at most a chunk; the active one gets the rest.
    assert!(bytes >= rate as f64 * 8.0 * 0.95, "{bytes}");
    assert!(stalled.size_hint().exact().unwrap() > 99 * MIB);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_gives_its_share_back_at_once() {
    let rate = 100 * KIB;
    let layer = RangeServeLayer::new().client_rate(Bandwidth::new(rate));
    let (kept, _) = count(
        get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    let (_, dropped) = count(
        get(&layer, &format!("/{}", 100 * MIB), "10.0.0.1")
            .await
            .into_body(),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let halfway = kept.load(Ordering::SeqCst) as f64;
    assert!(
        (halfway - rate as f64 * 2.0).abs() < rate as f64 * 0.1,
        "{halfway}"
    );
    dropped.abort();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let gained = kept.load(Ordering::SeqCst) as f64 - halfway;
    assert!(gained >= rate as f64 * 4.0 * 0.97, "{gained}");
}

/// Streams that go away while waiting for their turn must not stall the streams
/// still sharing their limit, nor cost them more than the documented bound. (The
/// leaky-bucket hand-off race described in `src/throttle/turns.rs` is timing
/// dependent and does not show on this single-threaded paused runtime; the
/// network test `tests/disconnect.rs` is the one that caught it. The exact cost
/// of a dropped turn is proved in `turns::tests`.)
#[tokio::test(start_paused = true)]
async fn dropped_streams_never_stall_their_sharers() {
    let rate = 64 * KIB;
    let layer = RangeServeLayer::new().client_rate(Bandwidth::new(rate));
    let start = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..48u64 {
        let mut body = get(&layer, &format!("/{}", 32 * KIB), "10.0.0.1")
            .await
            .into_body();
        let received = received.clone();
        // Two in three streams leave after their first few frames, at staggered
        // moments; the others read to the end.
        let frames = (i % 3 != 0).then_some(1 + i % 5);
        let task = tokio::spawn(async move {
            let mut seen = 0;
            while frames.is_none_or(|frames| seen < frames) {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let len = frame.unwrap().into_data().unwrap().len() as u64;
                received.fetch_add(len, Ordering::SeqCst);
                seen += 1;
            }
            seen
        });
        match frames {
            Some(_) => dropped.push(task),
            None => kept.push(task),
        }
    }
    for task in dropped {
        task.await.unwrap();
    }
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        for task in kept {
            task.await.unwrap();
        }
    })
    .await;
    assert!(finished.is_ok(), "the kept streams stalled");
    // Every byte went at the client's rate: nothing was lost to the streams that
    // left beyond the 100 ms burst and a chunk for each of them.
    let bytes = received.load(Ordering::SeqCst);
    assert!(bytes >= 16 * 32 * KIB);
    let needed = Duration::from_secs_f64(bytes as f64 / rate as f64);
    assert!(
        start.elapsed() <= needed + Duration::from_secs(1),
        "{:?} for {bytes} bytes",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn client_state_is_evicted_when_its_streams_end() {
    let layer = RangeServeLayer::new().client_rate(Bandwidth::mib(1));
    let control = layer.bandwidth_control();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let body = get(&layer, "/10000", &format!("10.0.1.{i}"))
            .await
            .into_body();
        tasks.push(count(body).1);
    }
    assert_eq!(control.active_clients(), 100);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(control.active_clients(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_policy_function_picks_rates_and_keys_per_request() {
    #[derive(Clone)]
    struct User(&'static str);
    let layer = RangeServeLayer::new()
        .client_rate(Bandwidth::kib(10))
        .policy(|parts, policy: &mut Policy| {
            if let Some(User(name)) = parts.extensions.get::<User>() {
                policy.client = Some(ClientKey::from(*name));
                policy.client_rate = Bandwidth::kib(100);
            }
        });
    let mut request = Request::get(format!("/{}", 10 * MIB))
        .body(Empty::new())
        .unwrap();
    request.extensions_mut().insert(User("alice"));
    let paid = files(&layer).oneshot(request).await.unwrap();
    let (paid, _) = count(paid.into_body());
    let (free, _) = count(
        get(&layer, &format!("/{}", 10 * MIB), "10.0.0.9")
            .await
            .into_body(),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (paid, free) = (
        paid.load(Ordering::SeqCst) as f64,
        free.load(Ordering::SeqCst) as f64,
    );
    assert!(
        (paid - 400.0 * KIB as f64).abs() < 12.0 * KIB as f64,
        "{paid}"
    );
    assert!(
        (free - 40.0 * KIB as f64).abs() < 2.0 * KIB as f64,
        "{free}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_can_lift_its_own_rate_but_not_the_client_limit() {
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(1));
    let response = get(&layer, &format!("/{}?unlimited", MIB), "10.0.0.1").await;
    let lifted = frames(response.into_body()).await;
    assert!(lifted.iter().all(|(at, _)| at.is_zero()));

    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(1))
        .client_rate(Bandwidth::kib(64));
    let response = get(&layer, &format!("/{}?unlimited", 128 * KIB), "10.0.0.1").await;
    let capped = frames(response.into_body()).await;
    assert!(capped.last().unwrap().0 >= Duration::from_millis(1900));
}

#[test]
fn the_body_error_type_boxes() {
    fn assert_error<E: Into<BoxError>>() {}
    assert_error::<<Served as Body>::Error>();
}

/// Starts a `GET` (or another method) with no peer address: no client key.
async fn get_anonymous(layer: &RangeServeLayer, method: &str, uri: &str) -> Response<Served> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Empty::new())
        .unwrap();
    files(layer).oneshot(request).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_clone_configured_after_cloning_leaves_the_original_alone() {
    let base = RangeServeLayer::new()
        .total_rate(Bandwidth::kib(100))
        .client_rate(Bandwidth::kib(100));
    let premium = base
        .clone()
        .total_rate(Bandwidth::kib(1600))
        .client_rate(Bandwidth::kib(1600));
    assert_eq!(base.bandwidth_control().total_rate(), Bandwidth::kib(100));
    assert_eq!(base.bandwidth_control().client_rate(), Bandwidth::kib(100));

    // 100 KiB at 100 KiB/s, the first 10 KiB (100 ms of budget) at once: 900 ms,
    // give or take one chunk's wait. At 16 times the rate it would take 56 ms.
    let start = Instant::now();
    let body = get(&base, &format!("/{}", 100 * KIB), "10.0.0.1").await;
    let frames = frames(body.into_body()).await;
    assert_eq!(total(&frames), 100 * KIB);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(850), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(1000), "{elapsed:?}");

    let start = Instant::now();
    let body = get(&premium, &format!("/{}", 100 * KIB), "10.0.0.1").await;
    assert_eq!(total(&frames_of(body).await), 100 * KIB);
    assert!(
        start.elapsed() <= Duration::from_millis(70),
        "{:?}",
        start.elapsed()
    );
}

async fn frames_of(response: Response<Served>) -> Vec<(Duration, usize)> {
    frames(response.into_body()).await
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_client_key_share_the_limits_of_one_client() {
    let layer = RangeServeLayer::new().client_rate(Bandwidth::kib(100));
    let control = layer.bandwidth_control();
    // Two downloads of 50 KiB with no peer address: under one client they share
    // 100 KiB/s, so together they take the 900 ms of 100 KiB (less the first
    // 100 ms of budget). Let through unlimited, they would take no time; as two
    // clients, 400 ms.
    let start = Instant::now();
    let a = get_anonymous(&layer, "GET", &format!("/{}", 50 * KIB)).await;
    let b = get_anonymous(&layer, "GET", &format!("/{}", 50 * KIB)).await;
    assert_eq!(control.active_clients(), 1);
    let (a, b) = tokio::join!(frames_of(a), frames_of(b));
    assert_eq!(total(&a) + total(&b), 100 * KIB);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(850), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(1000), "{elapsed:?}");
    assert_eq!(control.active_clients(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_cap_counts_requests_without_a_client_key_as_one_client() {
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(10))
        .max_streams_per_client(1);
    let first = get_anonymous(&layer, "GET", &format!("/{}", 100 * KIB)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = get_anonymous(&layer, "GET", &format!("/{}", 100 * KIB)).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(first);
    let third = get_anonymous(&layer, "GET", &format!("/{}", 100 * KIB)).await;
    assert_eq!(third.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn head_gets_the_status_its_get_would_get() {
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(10))
        .max_streams_per_client(1);
    let uri = format!("/{}", 100 * KIB);
    let running = get(&layer, &uri, "10.0.0.1").await;
    assert_eq!(running.status(), StatusCode::OK);
    for method in ["GET", "HEAD"] {
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Empty::new())
            .unwrap();
        let peer: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        request.extensions_mut().insert(peer);
        let response = files(&layer).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{method}");
        assert_eq!(response.headers()["retry-after"], "1", "{method}");
    }
    // A HEAD is not counted as a stream: another client's HEAD and GET pass.
    let mut head = Request::head(&uri).body(Empty::new()).unwrap();
    let peer: SocketAddr = "10.0.0.2:1234".parse().unwrap();
    head.extensions_mut().insert(peer);
    let head = files(&layer).oneshot(head).await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], (100 * KIB).to_string());
    assert_eq!(get(&layer, &uri, "10.0.0.2").await.status(), StatusCode::OK);
    drop(running);
}

#[tokio::test(start_paused = true)]
async fn unlimited_settings_turn_nothing_on() {
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::UNLIMITED)
        .client_rate(Bandwidth::UNLIMITED)
        .total_rate(Bandwidth::UNLIMITED);
    let control = layer.bandwidth_control();
    let start = Instant::now();
    let response = get_anonymous(&layer, "GET", &format!("/{}", 16 * MIB)).await;
    // No client is counted (no key needed), and the frames are an unthrottled
    // body's, which start small for a large download (8 KiB: the ramp); a
    // throttled body with no finite limit would send the layer's 64 KiB chunks
    // from the start.
    assert_eq!(control.active_clients(), 0);
    let frames = frames_of(response).await;
    assert_eq!(total(&frames), 16 * MIB);
    assert_eq!(frames[0].1, 8 * KIB as usize);
    assert_eq!(frames.last().unwrap().1, 64 * KIB as usize);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// Starts a `GET` from `peer` carrying `restriction` (as a signed link's
/// layer inserts it).
async fn get_restricted(
    layer: &RangeServeLayer,
    uri: &str,
    restriction: tower_range_serve::throttle::Restriction,
) -> Response<Served> {
    let mut request = Request::get(uri).body(Empty::new()).unwrap();
    let peer: SocketAddr = "10.0.0.1:1234".parse().unwrap();
    request.extensions_mut().insert(peer);
    request.extensions_mut().insert(restriction);
    files(layer).oneshot(request).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_restriction_lowers_the_rate_and_caps_the_handlers_own() {
    use tower_range_serve::throttle::Restriction;
    let one_chunk_a_second: Vec<_> = (0..4)
        .map(|s| (Duration::from_secs(s), 16 * KIB as usize))
        .collect();
    // An unlimited route, a handler lifting its own rate: the restriction holds.
    let layer = RangeServeLayer::new();
    let restriction = Restriction::new().rate(Bandwidth::kib(16));
    let uri = format!("/{}?unlimited", 64 * KIB);
    let response = get_restricted(&layer, &uri, restriction).await;
    assert_eq!(frames(response.into_body()).await, one_chunk_a_second);
    // A restriction above the route's rate does not raise it.
    let layer = RangeServeLayer::new().rate(Bandwidth::kib(16));
    let restriction = Restriction::new().rate(Bandwidth::mib(1));
    let response = get_restricted(&layer, &format!("/{}", 64 * KIB), restriction).await;
    assert_eq!(frames(response.into_body()).await, one_chunk_a_second);
}
