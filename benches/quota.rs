//! The cost of quota accounting: per request (the client's account looked up,
//! checked, the `RateLimit` fields written) and per GiB delivered (a check and a
//! charge per frame), with and without a quota, in one process.
//!
//! ```text
//! cargo bench --bench quota
//! ```
//!
//! The Redis side (leases, calls per second) is measured by the ignored test
//! `tests/redis_quota.rs::redis_load_of_throttled_streams_under_a_quota`.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::{FileResponse, Quota, RangeBody, RangeServeLayer};

const LEN: usize = 64 << 20;

fn bench_quota(c: &mut Criterion) {
    let data = Bytes::from(vec![0x5a; LEN]);
    let handler = service_fn(move |_: Request<()>| {
        let data = data.clone();
        async move {
            Ok::<Response<RangeBody>, Infallible>(FileResponse::from_bytes(data).into_response())
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let day = Duration::from_secs(86_400);
    let layers = [
        ("none", RangeServeLayer::new()),
        (
            "quota",
            RangeServeLayer::new().quota(Quota::new(u64::MAX / 2, day)),
        ),
    ];
    let request = |client: u32| {
        let mut request = Request::get("/file.bin").body(()).unwrap();
        let peer = SocketAddr::from(([10, 0, (client >> 8) as u8, client as u8], 1000));
        request.extensions_mut().insert(peer);
        request
    };

    let mut group = c.benchmark_group("quota_request");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, layer) in &layers {
        let service = layer.clone().layer(handler.clone());
        let mut client = 0u32;
        group.bench_function(*name, |b| {
            b.iter(|| {
                // 1,000 clients in turn: the table holds them all.
                client = (client + 1) % 1000;
                let response = runtime
                    .block_on(service.clone().oneshot(request(client)))
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                black_box(response)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("quota_body_64MiB");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(LEN as u64))
        .measurement_time(Duration::from_secs(4));
    for (name, layer) in &layers {
        let service = layer.clone().layer(handler.clone());
        group.bench_function(*name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = service.clone().oneshot(request(1)).await.unwrap();
                    let mut body = response.into_body();
                    let mut bytes = 0;
                    while let Some(frame) = body.frame().await {
                        bytes += frame.unwrap().into_data().unwrap().len();
                    }
                    assert_eq!(bytes, LEN);
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_quota);
criterion_main!(benches);
