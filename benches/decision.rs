//! The per-request decision path through the public API: `RangeServe` around a
//! handler that returns an in-memory `FileResponse`, one `oneshot` per request.
//!
//! The body is not read: what is measured is parsing the request's headers,
//! deciding 200 / 206 / 304, and building the response head and body plan.
//!
//! ```text
//! cargo bench --bench decision
//! ```

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use tower::{ServiceExt, service_fn};
use tower_range_serve::{FileResponse, RangeBody, RangeServe};

const ETAG: &str = "\"100000-17f0e5a1b2c3d4e5\"";

/// A benchmark case: its name, the request header it sends, the status it expects.
type Case = (
    &'static str,
    Option<(header::HeaderName, String)>,
    StatusCode,
);

fn bench_decision(c: &mut Criterion) {
    let data = Bytes::from(vec![0x5a; 1 << 20]);
    let handler = service_fn(move |_: Request<()>| {
        let data = data.clone();
        async move {
            let mut response = FileResponse::from_bytes(data).into_response();
            response
                .headers_mut()
                .insert(header::ETAG, HeaderValue::from_static(ETAG));
            Ok::<Response<RangeBody>, Infallible>(response)
        }
    });
    let service = RangeServe::new(handler);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");

    let ten_ranges = (0..10)
        .map(|i| format!("{}-{}", i * 4096, i * 4096 + 1023))
        .collect::<Vec<_>>()
        .join(",");
    let cases: [Case; 4] = [
        ("no_range", None, StatusCode::OK),
        (
            "one_range",
            Some((header::RANGE, "bytes=0-1023".to_owned())),
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            "ten_ranges",
            Some((header::RANGE, format!("bytes={ten_ranges}"))),
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            "if_none_match_304",
            Some((header::IF_NONE_MATCH, ETAG.to_owned())),
            StatusCode::NOT_MODIFIED,
        ),
    ];

    let mut group = c.benchmark_group("decision");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, header, expected) in cases {
        let request = move || {
            let mut request = Request::get("/file.bin");
            if let Some((name, value)) = &header {
                request = request.header(name, value);
            }
            request.body(()).expect("a valid request")
        };
        // Check once that the case answers what it claims to measure.
        let response = runtime
            .block_on(service.clone().oneshot(request()))
            .expect("infallible");
        assert_eq!(response.status(), expected, "{name}");

        group.bench_function(name, |b| {
            b.iter(|| {
                let response = runtime.block_on(service.clone().oneshot(request()));
                black_box(response)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decision);
criterion_main!(benches);
