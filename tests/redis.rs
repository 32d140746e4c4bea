//! Shared limits across replicas through a real `redis-server` (the `redis`
//! feature). Each replica is a layer on its own runtime and thread, as separate
//! servers would be; they share nothing but Redis.
//!
//! These run on real time (Redis is real I/O). What they assert cannot be made
//! true by a slow machine: a key never gets more than its rate in total (the
//! lower bound on elapsed time), and streams finish (a bound several times the
//! expected time). The precision achieved is measured in BENCHMARKS.md.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use support::redis::RedisServer;
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::throttle::{Fallback, RedisLimits};
use tower_range_serve::{Bandwidth, FileResponse, RangeBody, RangeServeLayer};

const KIB: u64 = 1024;

/// One replica's downloads: `streams` of `len` bytes each, from client `peer`.
#[derive(Clone, Copy)]
struct Downloads {
    peer: &'static str,
    streams: usize,
    len: usize,
}

/// Runs each replica's downloads on its own runtime, all starting together, and
/// returns how long the slowest took and how many bytes arrived in all.
fn run_replicas(replicas: Vec<(RangeServeLayer, Vec<Downloads>)>) -> (Duration, u64) {
    let start = Arc::new(Barrier::new(replicas.len()));
    let threads: Vec<_> = replicas
        .into_iter()
        .map(|(layer, downloads)| {
            let start = start.clone();
            std::thread::spawn(move || {
                let runtime = replica_runtime();
                start.wait();
                let began = Instant::now();
                let bytes = runtime.block_on(download_all(layer, downloads));
                (began.elapsed(), bytes)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .fold((Duration::ZERO, 0), |(slowest, sum), (took, bytes)| {
            (slowest.max(took), sum + bytes)
        })
}

/// Answers `/{len}` with `len` bytes.
async fn handler(request: Request<Empty<Bytes>>) -> Result<Response<RangeBody>, Infallible> {
    let len: usize = request.uri().path()[1..].parse().unwrap();
    Ok(FileResponse::from_bytes(Bytes::from(vec![1; len])).into_response())
}

/// A request for `len` bytes from client `peer` (an IP).
fn request(len: usize, peer: &str) -> Request<Empty<Bytes>> {
    let mut request = Request::get(format!("/{len}")).body(Empty::new()).unwrap();
    let peer: SocketAddr = format!("{peer}:1000").parse().unwrap();
    request.extensions_mut().insert(peer);
    request
}

/// One download of `len` bytes by client 10.0.0.1, telling `sent` of each frame.
async fn one_download(layer: RangeServeLayer, len: usize, sent: impl Fn(usize)) {
    let service = layer.layer(service_fn(handler));
    let request = request(len, "10.0.0.1");
    let mut body = service.oneshot(request).await.unwrap().into_body();
    while let Some(frame) = body.frame().await {
        sent(frame.unwrap().into_data().unwrap().len());
    }
}

/// A replica's own runtime, on the thread that calls it.
fn replica_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn download_all(layer: RangeServeLayer, downloads: Vec<Downloads>) -> u64 {
    let service = layer.layer(service_fn(handler));
    let mut tasks = Vec::new();
    for download in downloads {
        for _ in 0..download.streams {
            let request = request(download.len, download.peer);
            let service = service.clone();
            tasks.push(tokio::spawn(async move {
                let mut body = service.oneshot(request).await.unwrap().into_body();
                let mut bytes = 0;
                while let Some(frame) = body.frame().await {
                    // A stream never fails because of Redis.
                    bytes += frame.expect("no stream errors").into_data().unwrap().len();
                }
                assert_eq!(bytes, download.len);
                bytes as u64
            }));
        }
    }
    let mut bytes = 0;
    for task in tasks {
        bytes += task.await.unwrap();
    }
    bytes
}

fn limits(redis: &RedisServer, prefix: &str) -> RedisLimits {
    RedisLimits::new(redis.url()).unwrap().prefix(prefix)
}

/// A replica whose client rate is shared through `redis` under `prefix`.
fn client_rate_replica(redis: &RedisServer, prefix: &str, rate: u64) -> RangeServeLayer {
    RangeServeLayer::new()
        .client_rate(Bandwidth::new(rate))
        .redis(limits(redis, prefix))
}

/// The least time `bytes` can take at `rate` with the documented burst: the
/// bucket (125 ms of the rate) plus a 100 ms lease per replica.
fn at_least(bytes: u64, rate: u64, replicas: u32) -> Duration {
    let burst = rate / 8 + u64::from(replicas) * rate / 10;
    Duration::from_secs_f64(bytes.saturating_sub(burst) as f64 / rate as f64)
}

#[test]
fn one_client_through_two_replicas_gets_its_rate_in_total() {
    let Some(redis) = RedisServer::start_or_skip("one_client_through_two_replicas") else {
        return;
    };
    let rate = 512 * KIB;
    let replica = || client_rate_replica(&redis, "one-client", rate);
    let downloads = vec![Downloads {
        peer: "10.0.0.1",
        streams: 4,
        len: 128 * KIB as usize,
    }];
    let (took, bytes) = run_replicas(vec![(replica(), downloads.clone()), (replica(), downloads)]);
    assert_eq!(bytes, 1024 * KIB);
    // Two seconds at the client's rate; a replica each at the full rate would
    // take one.
    assert!(took >= at_least(bytes, rate, 2), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(redis.command(&["EXISTS", "one-client:client:10.0.0.1"]) == ":1");
}

#[test]
fn replicas_split_a_client_rate_evenly_whoever_asks_first() {
    let Some(redis) = RedisServer::start_or_skip("replicas_split_a_client_rate_evenly") else {
        return;
    };
    let rate = 256 * KIB;
    let len = 384 * KIB;
    // One stream of the client on each replica. Each replica counts its bytes,
    // and notes the other's count when its own stream is done.
    let sent: Arc<[AtomicU64; 2]> = Arc::default();
    let start = Arc::new(Barrier::new(2));
    let replicas: Vec<_> = (0..2)
        .map(|me| {
            let layer = client_rate_replica(&redis, "even", rate);
            let (sent, start) = (sent.clone(), start.clone());
            std::thread::spawn(move || {
                let runtime = replica_runtime();
                start.wait();
                runtime.block_on(one_download(layer, len as usize, |bytes| {
                    sent[me].fetch_add(bytes as u64, Ordering::SeqCst);
                }));
                sent[1 - me].load(Ordering::SeqCst)
            })
        })
        .collect();
    let other_at_end: Vec<u64> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
    // Whichever finished first, the other had nearly as much by then. (A
    // bucket served first come, first served gave the replica asking first
    // after each refill most of every period: 27% where 75% is asked here.)
    let behind = other_at_end.into_iter().min().unwrap();
    assert!(behind >= len * 3 / 4, "{behind} of {len}");
}

#[test]
fn two_clients_through_two_replicas_do_not_share_a_rate() {
    let Some(redis) = RedisServer::start_or_skip("two_clients_through_two_replicas") else {
        return;
    };
    let rate = 512 * KIB;
    let replica = || client_rate_replica(&redis, "two-clients", rate);
    let both = vec![
        Downloads {
            peer: "10.0.0.1",
            streams: 2,
            len: 256 * KIB as usize,
        },
        Downloads {
            peer: "10.0.0.2",
            streams: 2,
            len: 256 * KIB as usize,
        },
    ];
    let (took, bytes) = run_replicas(vec![(replica(), both.clone()), (replica(), both)]);
    assert_eq!(bytes, 2048 * KIB);
    // Each client: 1 MiB at 512 KiB/s, both at once: two seconds, not four.
    assert!(took >= at_least(bytes / 2, rate, 2), "{took:?}");
    assert!(took < at_least(bytes, rate, 2), "{took:?}");
}

#[test]
fn the_total_rate_holds_across_replicas() {
    let Some(redis) = RedisServer::start_or_skip("the_total_rate_holds_across_replicas") else {
        return;
    };
    let rate = 512 * KIB;
    let replica = || {
        RangeServeLayer::new()
            .total_rate(Bandwidth::new(rate))
            .redis(limits(&redis, "total"))
    };
    let client = |peer| {
        vec![Downloads {
            peer,
            streams: 2,
            len: 256 * KIB as usize,
        }]
    };
    let (took, bytes) = run_replicas(vec![
        (replica(), client("10.0.0.1")),
        (replica(), client("10.0.0.2")),
    ]);
    assert_eq!(bytes, 1024 * KIB);
    assert!(took >= at_least(bytes, rate, 2), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn streams_go_on_while_redis_is_down_and_rejoin_when_it_is_back() {
    let Some(mut redis) = RedisServer::start_or_skip("streams_go_on_while_redis_is_down") else {
        return;
    };
    let rate = 256 * KIB;
    let layer = RangeServeLayer::new()
        .client_rate(Bandwidth::new(rate))
        .redis(
            limits(&redis, "outage")
                .fallback(Fallback::local_share(2))
                .retry_after(Duration::from_millis(200)),
        );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let downloads = vec![Downloads {
        peer: "10.0.0.1",
        streams: 2,
        len: 64 * KIB as usize,
    }];
    let running = runtime.spawn(download_all(layer.clone(), downloads.clone()));
    // Redis goes away mid-stream (the first lease was taken), then comes back.
    while redis.command(&["EXISTS", "outage:client:10.0.0.1"]) != ":1" {
        std::thread::yield_now();
    }
    redis.kill();
    let during = runtime.block_on(download_all(layer.clone(), downloads.clone()));
    assert_eq!(during, 128 * KIB, "streams went on under the fallback");
    redis.start();
    let after = runtime.block_on(download_all(layer, downloads));
    assert_eq!(after, 128 * KIB);
    assert_eq!(runtime.block_on(running).unwrap(), 128 * KIB);
    // Back on the shared budget: the restarted Redis holds the client's bucket.
    assert_eq!(redis.command(&["EXISTS", "outage:client:10.0.0.1"]), ":1");
}

#[test]
fn a_redis_that_never_answers_is_given_up_on_and_streams_go_on() {
    // Accepts connections and never answers: a hung server, or a path that
    // still completes the connect.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hole.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let rate = 256 * KIB;
    let layer = RangeServeLayer::new()
        .client_rate(Bandwidth::new(rate))
        .total_rate(Bandwidth::new(4 * rate))
        .redis(
            RedisLimits::new(format!("redis+unix://{}", path.display()))
                .unwrap()
                .timeout(Duration::from_millis(50))
                .fallback(Fallback::local_share(1)),
        );
    let downloads = vec![Downloads {
        peer: "10.0.0.1",
        streams: 2,
        len: 64 * KIB as usize,
    }];
    let began = Instant::now();
    let bytes = replica_runtime().block_on(download_all(layer, downloads));
    let took = began.elapsed();
    assert_eq!(bytes, 128 * KIB, "every stream completed, none failed");
    // Under the fallback, still at most the client's rate.
    assert!(took >= at_least(bytes, rate, 1), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
