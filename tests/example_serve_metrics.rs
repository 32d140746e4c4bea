//! The demo server's `--metrics` (`examples/serve/metrics.rs`): after known
//! downloads, the scraped counters say how many and the byte counter equals
//! the bytes that left. One test: the Prometheus recorder is global.

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/serve/metrics.rs"]
mod metrics;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Layer;
use tower_range_serve::lifecycle::Metrics;
use tower_range_serve::{RangeServeLayer, ServeDir};

const LEN: usize = 300_000;

/// The value of the sample `series` (a name with its labels, as rendered).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn scraped_figures_are_exact_after_known_downloads() {
    let handle = metrics::install().unwrap();
    let scrape = metrics::serve("127.0.0.1:0".parse().unwrap(), handle)
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("data.bin"), vec![9u8; LEN]).unwrap();
    let layer = RangeServeLayer::new().metrics(Metrics::new());
    let files = support::serve(layer.layer(ServeDir::new(root.path()))).await;

    // Every request on one connection: hyper ends a response's body before it
    // reads the next request, so when the last answer is in, every download
    // has ended.
    let stream = TcpStream::connect(files).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut get = async |headers: &[(&str, &str)]| {
        let mut request = Request::get("/data.bin").header("host", "files");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body.len(), etag)
    };
    const N: usize = 5;
    let mut received = 0;
    let mut etag = String::new();
    for _ in 0..N {
        let (status, len, tag) = get(&[]).await;
        assert_eq!((status, len), (StatusCode::OK, LEN));
        received += len;
        etag = tag.unwrap();
    }
    let (status, len, _) = get(&[("range", "bytes=1000-1999")]).await;
    assert_eq!((status, len), (StatusCode::PARTIAL_CONTENT, 1000));
    received += len;
    let (status, len, _) = get(&[("range", "bytes=-7")]).await;
    assert_eq!((status, len), (StatusCode::PARTIAL_CONTENT, 7));
    received += len;
    assert_eq!(
        get(&[("if-none-match", &etag)]).await.0,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        get(&[("range", "bytes=999999-")]).await.0,
        StatusCode::RANGE_NOT_SATISFIABLE
    );

    let (status, text) = scraped(scrape).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sample(&text, "range_serve_sent_bytes_total"),
        received as f64
    );
    assert_eq!(received, N * LEN + 1007);
    assert_eq!(
        sample(&text, r#"range_serve_downloads_total{outcome="complete"}"#),
        (N + 2) as f64
    );
    assert_eq!(sample(&text, "range_serve_active_downloads"), 0.0);
    let answers = |status: u16| {
        sample(
            &text,
            &format!(
                r#"range_serve_responses_total{{http_request_method="GET",http_response_status_code="{status}"}}"#
            ),
        )
    };
    assert_eq!(answers(200), N as f64);
    assert_eq!(answers(206), 2.0);
    assert_eq!(answers(304), 1.0);
    assert_eq!(answers(416), 1.0);
    let durations = r#"http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",outcome="complete"}"#;
    assert_eq!(sample(&text, durations), N as f64);
    // Buckets, not a summary.
    assert!(
        text.contains("http_server_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE range_serve_sent_bytes_total counter"),
        "{text}"
    );
}

async fn scraped(addr: SocketAddr) -> (StatusCode, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/metrics")
        .header("host", "metrics")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}
