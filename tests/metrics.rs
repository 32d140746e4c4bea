//! `Metrics`: exact figures after a scripted sequence of requests, recorded
//! with the `metrics` crate's local recorder (so tests running at once do not
//! share figures).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::{Layer, ServiceExt};
use tower_range_serve::lifecycle::Metrics;
use tower_range_serve::{ClientKey, RangeServeLayer, ServeDir};

const LEN: usize = 100_000;

/// The figures of a snapshot: `name{label=value,...}` (labels sorted) to value.
fn figures(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

fn counter(figures: &HashMap<String, DebugValue>, key: &str) -> u64 {
    match figures.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?} in {:#?}", figures.keys()),
    }
}

fn gauge(figures: &HashMap<String, DebugValue>, key: &str) -> f64 {
    match figures.get(key) {
        Some(DebugValue::Gauge(n)) => n.into_inner(),
        other => panic!("{key}: {other:?}"),
    }
}

fn samples(figures: &HashMap<String, DebugValue>, key: &str) -> Vec<f64> {
    match figures.get(key) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{key}: {other:?} in {:#?}", figures.keys()),
    }
}

fn request(method: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut request = Request::builder().method(method).uri("/data.bin");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Empty::new()).unwrap()
}

/// The status and the body length of `response`.
async fn body<B>(response: http::Response<B>) -> (StatusCode, usize)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

#[test]
fn figures_after_a_scripted_sequence_of_requests_are_exact() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("data.bin"), vec![7u8; LEN]).unwrap();
    let layer = RangeServeLayer::new()
        .chunk_size(10_000)
        .client_key(|_| Some(ClientKey::from("one")))
        .max_streams_per_client(1)
        .metrics(Metrics::new().label("route", "files"));
    let shutdown = layer.shutdown_handle();
    let service = layer.layer(ServeDir::new(root.path()));

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let send = |request| service.clone().oneshot(request);
            let mut sent = 0;
            // Full, a range, a resume with If-Range.
            let full = send(request("GET", &[])).await.unwrap();
            let etag = full.headers()["etag"].to_str().unwrap().to_owned();
            assert_eq!(body(full).await, (StatusCode::OK, LEN));
            sent += LEN;
            let range = send(request("GET", &[("range", "bytes=0-999")]))
                .await
                .unwrap();
            assert_eq!(body(range).await, (StatusCode::PARTIAL_CONTENT, 1000));
            sent += 1000;
            let resume = [("range", "bytes=60000-"), ("if-range", etag.as_str())];
            let resume = send(request("GET", &resume)).await.unwrap();
            assert_eq!(body(resume).await, (StatusCode::PARTIAL_CONTENT, 40_000));
            sent += 40_000;
            // 304, 412, 416, HEAD.
            let cached = send(request("GET", &[("if-none-match", etag.as_str())]));
            assert_eq!(cached.await.unwrap().status(), StatusCode::NOT_MODIFIED);
            let changed = send(request("GET", &[("if-match", "\"other\"")]));
            assert_eq!(
                changed.await.unwrap().status(),
                StatusCode::PRECONDITION_FAILED
            );
            let beyond = send(request("GET", &[("range", "bytes=200000-")]));
            assert_eq!(
                beyond.await.unwrap().status(),
                StatusCode::RANGE_NOT_SATISFIABLE
            );
            let head = send(request("HEAD", &[])).await.unwrap();
            assert_eq!(head.status(), StatusCode::OK);
            // A download cut after its first frame; while it runs, the
            // client's second stream is refused.
            let mut cut = send(request("GET", &[])).await.unwrap().into_body();
            let first = cut.frame().await.unwrap().unwrap().into_data().unwrap();
            sent += first.len();
            let refused = send(request("GET", &[])).await.unwrap();
            assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
            drop(cut);
            // Shutting down: refused with 503.
            shutdown.begin(Duration::ZERO);
            let late = send(request("GET", &[])).await.unwrap();
            assert_eq!(late.status(), StatusCode::SERVICE_UNAVAILABLE);
            sent
        })
    });

    let figures = figures(&snapshotter);
    let answers = |method: &str, status: u16| {
        let key = format!(
            "range_serve_responses_total{{http_request_method={method},http_response_status_code={status},route=files}}"
        );
        counter(&figures, &key)
    };
    assert_eq!(answers("GET", 200), 2, "the full one and the cut one");
    assert_eq!(answers("GET", 206), 2);
    assert_eq!(answers("GET", 304), 1);
    assert_eq!(answers("GET", 412), 1);
    assert_eq!(answers("GET", 416), 1);
    assert_eq!(answers("GET", 429), 1);
    assert_eq!(answers("GET", 503), 1);
    assert_eq!(answers("HEAD", 200), 1);
    let refusals = |cause: &str| {
        counter(
            &figures,
            &format!("range_serve_refusals_total{{cause={cause},route=files}}"),
        )
    };
    assert_eq!(refusals("stream_cap"), 1);
    assert_eq!(refusals("shutting_down"), 1);

    assert_eq!(
        counter(&figures, "range_serve_sent_bytes_total{route=files}"),
        sent as u64
    );
    assert_eq!(sent, LEN + 1000 + 40_000 + 10_000);
    assert_eq!(
        gauge(&figures, "range_serve_active_downloads{route=files}"),
        0.0
    );
    let ended = |outcome: &str| {
        counter(
            &figures,
            &format!("range_serve_downloads_total{{outcome={outcome},route=files}}"),
        )
    };
    assert_eq!(ended("complete"), 3);
    assert_eq!(ended("client_gone"), 1);
    let durations = |status: u16, outcome: &str| {
        samples(
            &figures,
            &format!(
                "http_server_request_duration_seconds{{http_request_method=GET,http_response_status_code={status},outcome={outcome},route=files}}"
            ),
        )
    };
    assert_eq!(durations(200, "complete").len(), 1);
    assert_eq!(durations(206, "complete").len(), 2);
    assert_eq!(durations(200, "client_gone").len(), 1);
    let waits = samples(&figures, "range_serve_throttle_wait_seconds{route=files}");
    assert_eq!(waits, [0.0; 4], "no throttle, no wait");
    // Only these families, and no label with the path or the client.
    for key in figures.keys() {
        assert!(!key.contains("data.bin") && !key.contains("=one"), "{key}");
    }
}

#[test]
fn the_active_gauge_and_the_byte_counter_move_while_a_download_runs() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("data.bin"), vec![7u8; LEN]).unwrap();
    let layer = RangeServeLayer::new()
        .chunk_size(10_000)
        .progress_interval(Duration::ZERO)
        .metrics(Metrics::new());
    let service = layer.layer(ServeDir::new(root.path()));
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let response = service.oneshot(request("GET", &[])).await.unwrap();
            let mut body = response.into_body();
            for _ in 0..3 {
                body.frame().await.unwrap().unwrap();
            }
            // A snapshot takes the counters' values and zeroes them.
            let figures = figures(&snapshotter);
            assert_eq!(gauge(&figures, "range_serve_active_downloads{}"), 1.0);
            assert_eq!(counter(&figures, "range_serve_sent_bytes_total{}"), 30_000);
            let rest = body.collect().await.unwrap().to_bytes().len();
            assert_eq!(rest, 70_000);
            let figures = self::figures(&snapshotter);
            assert_eq!(counter(&figures, "range_serve_sent_bytes_total{}"), 70_000);
        })
    });
}

/// Counts the downloads that ended.
#[derive(Default)]
struct Ends(std::sync::atomic::AtomicUsize);

impl tower_range_serve::lifecycle::Observer for Ends {
    fn end(
        &self,
        _: &tower_range_serve::lifecycle::Download,
        _: &tower_range_serve::lifecycle::End,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn metrics_are_recorded_beside_the_users_observers() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("data.bin"), vec![7u8; LEN]).unwrap();
    let (first, second) = (Arc::new(Ends::default()), Arc::new(Ends::default()));
    // Metrics before or after the observer: both are told.
    for metrics_first in [true, false] {
        let mut layer = RangeServeLayer::new();
        if metrics_first {
            layer = layer.metrics(Metrics::new());
        }
        layer = layer.observer((first.clone(), second.clone()));
        if !metrics_first {
            layer = layer.metrics(Metrics::new());
        }
        let service = layer.layer(ServeDir::new(root.path()));
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let response = service.oneshot(request("GET", &[])).await.unwrap();
                assert_eq!(body(response).await, (StatusCode::OK, LEN));
            })
        });
        let figures = figures(&snapshotter);
        assert_eq!(
            counter(&figures, "range_serve_sent_bytes_total{}"),
            LEN as u64
        );
    }
    assert_eq!(first.0.load(Ordering::SeqCst), 2);
    assert_eq!(second.0.load(Ordering::SeqCst), 2);
}

/// A link the signed-links layer refuses counts as a refusal with the cause
/// `signed_link` (the layer runs before the range layer, so without its labels).
#[test]
fn refused_signed_links_are_counted() {
    use tower_range_serve::signed::{KeySet, SignedLinksLayer, SigningKey};
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("data.bin"), vec![1u8; LEN]).unwrap();
    let key = SigningKey::new("k1", [7u8; 32]).unwrap();
    let service = SignedLinksLayer::new(KeySet::new(key)).layer(
        RangeServeLayer::new()
            .metrics(Metrics::new())
            .layer(ServeDir::new(root.path())),
    );
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            for _ in 0..3 {
                let response = service.clone().oneshot(request("GET", &[])).await.unwrap();
                assert_eq!(response.status(), StatusCode::FORBIDDEN);
            }
        })
    });
    let figures = figures(&snapshotter);
    assert_eq!(
        counter(&figures, "range_serve_refusals_total{cause=signed_link}"),
        3
    );
}
