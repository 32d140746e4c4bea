//! Quotas shared by replicas through a real `redis-server` (the `redis`
//! feature): each replica is a layer with its own `RedisLimits` (its own
//! replica id, fleet view and accounts), sharing nothing but Redis. Real time:
//! windows of a day (a window edge inside a test is a one-in-thousands chance,
//! and would only let more through, which the assertions would catch).

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use support::redis::RedisServer;
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::throttle::RedisLimits;
use tower_range_serve::{FileResponse, Quota, RangeBody, RangeServeLayer};

const KIB: u64 = 1024;
const QUOTA: u64 = 1024 * KIB;
const FILE: usize = 100 * 1024;
const CHUNK: u64 = 64 * KIB;

async fn handler(_: Request<Empty<Bytes>>) -> Result<Response<RangeBody>, Infallible> {
    Ok(FileResponse::from_bytes(Bytes::from(vec![1; FILE])).into_response())
}

fn replica(redis: &RedisServer, prefix: &str) -> RangeServeLayer {
    let limits = RedisLimits::new(redis.url()).unwrap().prefix(prefix);
    RangeServeLayer::new()
        .chunk_size(CHUNK as usize)
        .quota(Quota::new(QUOTA, Duration::from_secs(86_400)))
        .redis(limits)
}

/// One download by client 10.0.0.1: its status and the bytes received.
async fn download(layer: &RangeServeLayer) -> (StatusCode, u64) {
    let service = layer.clone().layer(service_fn(handler));
    let mut request = Request::get("/").body(Empty::new()).unwrap();
    let peer: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    request.extensions_mut().insert(peer);
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let mut body = response.into_body();
    let mut bytes = 0;
    while let Some(Ok(frame)) = body.frame().await {
        bytes += frame.into_data().unwrap().len() as u64;
    }
    (status, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_alternating_between_replicas_gets_its_quota_in_total() {
    let Some(redis) = RedisServer::start_or_skip("quota_across_replicas") else {
        return;
    };
    let replicas = [replica(&redis, "q1"), replica(&redis, "q1")];
    let mut total = 0;
    let mut refused = [false, false];
    for turn in 0..40 {
        let (status, bytes) = download(&replicas[turn % 2]).await;
        total += bytes;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(bytes, 0);
            refused[turn % 2] = true;
        }
        if refused == [true, true] {
            break;
        }
    }
    assert_eq!(
        refused,
        [true, true],
        "both replicas refuse once it is spent"
    );
    // The quota, and at most one chunk more per replica.
    eprintln!("two replicas: {total} bytes delivered for a quota of {QUOTA}");
    assert!(total >= QUOTA - CHUNK, "{total}");
    assert!(total <= QUOTA + 2 * CHUNK, "{total}");
    // Redis counted it under one key, with the window's expiry.
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let key = format!("q1:quota:10.0.0.1@1048576/86400000:{day}");
    let used: u64 = redis.command(&["GET", &key]).parse().unwrap();
    assert!(used >= QUOTA && used <= total, "{used} {total}");
    let ttl: i64 = redis.command(&["PTTL", &key])[1..].parse().unwrap();
    assert!(ttl > 0 && ttl <= 86_401_000, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_a_replica_serves_its_share_of_what_was_left_never_more() {
    let Some(mut redis) = RedisServer::start_or_skip("quota_fallback") else {
        return;
    };
    let (one, two) = (replica(&redis, "q2"), replica(&redis, "q2"));
    // Both replicas lease (and beat): each learns there are two.
    let mut before = 0;
    for layer in [&one, &two, &one] {
        let (status, bytes) = download(layer).await;
        assert_eq!(status, StatusCode::OK);
        before += bytes;
    }
    redis.kill();
    let mut during = 0;
    let mut refused = false;
    for _ in 0..20 {
        let (status, bytes) = download(&one).await;
        during += bytes;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = true;
            break;
        }
    }
    assert!(refused, "a replica without Redis is not unlimited");
    // Half of what was left (two replicas), plus what it had leased and a
    // chunk: well under what was left.
    let left = QUOTA - before;
    eprintln!("Redis away: {during} bytes delivered of {left} left");
    assert!(during > 0, "it goes on without Redis");
    assert!(during <= left / 2 + 2 * CHUNK, "{during} of {left}");
}

/// The scripts Redis ran so far (`INFO commandstats`, `evalsha` and `eval`).
fn scripts(redis: &RedisServer) -> u64 {
    let info = redis.command(&["INFO", "commandstats"]);
    info.lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            let calls = line.split("calls=").nth(1)?;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Measures, for BENCHMARKS.md: Redis scripts per second for 1,000 streams at
/// 16 KiB/s each (1,000 clients) under a quota, with leases of 10 MiB (a 1 GiB
/// quota) and of 160 KiB (16 MiB), and the time to admit a request of a client
/// this replica has not seen (one round trip) and of one it has.
///
/// ```text
/// cargo test --release --features redis --test redis_quota -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, minutes of CPU"]
async fn redis_load_of_throttled_streams_under_a_quota() {
    use tower_range_serve::Bandwidth;
    let Some(redis) = RedisServer::start_or_skip("quota_load") else {
        return;
    };
    for (name, quota) in [("1GiB/1d", 1u64 << 30), ("16MiB/1d", 16 << 20)] {
        let limits = RedisLimits::new(redis.url()).unwrap().prefix(name);
        let layer = RangeServeLayer::new()
            .rate(Bandwidth::kib(16))
            .quota(Quota::new(quota, Duration::from_secs(86_400)))
            .redis(limits);
        let service = layer.layer(service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(
                FileResponse::from_bytes(Bytes::from(vec![1; 1 << 20])).into_response(),
            )
        }));
        let mut tasks = Vec::new();
        for client in 0..1000u32 {
            let service = service.clone();
            tasks.push(tokio::spawn(async move {
                let mut request = Request::get("/").body(Empty::new()).unwrap();
                let peer = SocketAddr::from(([10, 1, (client >> 8) as u8, client as u8], 1000));
                request.extensions_mut().insert(peer);
                let mut body = service.oneshot(request).await.unwrap().into_body();
                while let Some(Ok(_)) = body.frame().await {}
            }));
        }
        // The first leases (1,000 at once) are over by then.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (before, start) = (scripts(&redis), std::time::Instant::now());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let per_second = (scripts(&redis) - before) as f64 / start.elapsed().as_secs_f64();
        for task in &tasks {
            task.abort();
        }
        let cpu = redis.command(&["INFO", "cpu"]);
        eprintln!("quota {name}: 1,000 streams at 16 KiB/s: {per_second:.1} Redis scripts/s");
        eprintln!(
            "{}",
            cpu.lines()
                .filter(|l| l.starts_with("used_cpu"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(per_second < 1000.0, "{per_second}");
    }

    // Admission: a client new to this replica waits for one lease.
    let limits = RedisLimits::new(redis.url()).unwrap().prefix("admit");
    let layer = RangeServeLayer::new()
        .quota(Quota::new(1 << 30, Duration::from_secs(86_400)))
        .redis(limits);
    let service = layer.layer(service_fn(handler));
    for (name, clients) in [("new client", 1000u32), ("known client", 1)] {
        let start = std::time::Instant::now();
        for n in 0..1000u32 {
            let client = n % clients;
            let mut request = Request::get("/").body(Empty::new()).unwrap();
            let peer = SocketAddr::from(([10, 2, (client >> 8) as u8, client as u8], 1000));
            request.extensions_mut().insert(peer);
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        eprintln!(
            "admission, {name}: {:?} per request",
            start.elapsed() / 1000
        );
    }
}
