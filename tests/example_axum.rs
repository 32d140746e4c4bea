//! `examples/axum.rs` keeps working: its router, served the way its `main` serves
//! it (with `ConnectInfo`), over a real socket.

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/axum.rs"]
mod axum_example;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use support::{content, get, send};
use tokio::net::TcpListener;
use tower_range_serve::RangeServeLayer;

struct Site {
    addr: SocketAddr,
    data: Vec<u8>,
    _root: tempfile::TempDir,
}

/// The example's app on a loopback port, over a root with a 96 KiB file, a 2 MiB
/// file and the report.
async fn site() -> Site {
    let root = tempfile::tempdir().unwrap();
    let data = content(2 << 20);
    std::fs::write(root.path().join("small.bin"), &data[..96 * 1024]).unwrap();
    std::fs::write(root.path().join("large.bin"), &data).unwrap();
    std::fs::write(root.path().join("report.csv"), "month,downloads\n").unwrap();
    let layer = RangeServeLayer::new();
    let app = axum_example::app(root.path(), &layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = axum_example::serve(
        listener,
        app,
        layer.shutdown_handle(),
        Duration::from_secs(1),
        Duration::from_secs(60),
        std::future::pending(),
    );
    tokio::spawn(async move { serve.await.unwrap() });
    Site {
        addr,
        data,
        _root: root,
    }
}

fn bearer(user: usize) -> String {
    format!("Bearer {}", axum_example::TOKENS[user].0)
}

#[tokio::test]
async fn the_free_tier_serves_ranges_at_256_kib_per_second_per_ip() {
    let site = site().await;

    let part = send(
        site.addr,
        get("/free/small.bin", &[("range", "bytes=-1000")]),
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 97304-98303/98304");
    assert_eq!(part.bytes().as_ref(), &site.data[97304..98304]);

    // 96 KiB at 256 KiB/s: 375 ms, less at most 100 ms of burst and one chunk (a
    // tenth of a second). Unthrottled (no client key found) it would take
    // milliseconds.
    let start = Instant::now();
    let whole = send(site.addr, get("/free/small.bin", &[])).await;
    let elapsed = start.elapsed();
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.bytes().as_ref(), &site.data[..96 * 1024]);
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
}

#[tokio::test]
async fn the_premium_tier_needs_a_token_and_is_limited_per_user() {
    let site = site().await;

    let anonymous = send(site.addr, get("/premium/small.bin", &[])).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), "Bearer");
    let wrong = send(
        site.addr,
        get("/premium/small.bin", &[("authorization", "Bearer nope")]),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let auth = bearer(0);
    let part = send(
        site.addr,
        get(
            "/premium/large.bin",
            &[("authorization", &auth), ("range", "bytes=10-19")],
        ),
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().as_ref(), &site.data[10..20]);

    // 2 MiB at 8 MiB/s: 250 ms, less at most 100 ms of burst and one 64 KiB
    // chunk. Without the user's key it would be unthrottled.
    let start = Instant::now();
    let whole = send(
        site.addr,
        get("/premium/large.bin", &[("authorization", &auth)]),
    )
    .await;
    let elapsed = start.elapsed();
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.bytes().as_ref(), &site.data[..]);
    assert!(elapsed >= Duration::from_millis(120), "{elapsed:?}");
}

#[tokio::test]
async fn the_report_is_an_attachment_and_takes_ranges() {
    let site = site().await;
    let report = send(site.addr, get("/report", &[("range", "bytes=0-4")])).await;
    assert_eq!(report.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        report.header("content-disposition"),
        "attachment; filename=\"report-2024.csv\""
    );
    assert_eq!(report.header("content-type"), "text/csv");
    assert_eq!(report.bytes(), "month");
}

#[tokio::test]
async fn the_json_route_passes_through_the_layer() {
    let site = site().await;
    let json = send(site.addr, get("/api/tiers", &[("range", "bytes=0-4")])).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.header("content-type"), "application/json");
    assert!(json.headers.get("accept-ranges").is_none());
    assert!(json.headers.get("content-range").is_none());
    assert_eq!(
        json.bytes(),
        r#"{"free":{"bytes_per_second":262144},"premium":{"bytes_per_second":8388608}}"#
    );
}
