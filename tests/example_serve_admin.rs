//! The demo server's admin API (`examples/serve/admin.rs`, fed by
//! `downloads.rs`): list, cancel, a limit change measured on a running
//! stream, 400s for bad bodies, and the token rule.

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/serve/admin.rs"]
mod admin;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/serve/downloads.rs"]
mod downloads;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::Layer;
use tower_range_serve::{Bandwidth, ClientKey, RangeServeLayer, ServeDir};

const MIB: usize = 1 << 20;

/// Sends one request on a new connection: the status and the JSON body.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

/// A download server with the admin's observer, and the admin on another port.
async fn servers(
    client_rate: Bandwidth,
    token: Option<&str>,
) -> (SocketAddr, SocketAddr, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), vec![3u8; 64 * MIB]).unwrap();
    let downloads = downloads::Downloads::default();
    let layer = RangeServeLayer::new()
        .client_rate(client_rate)
        .client_key(|_| Some(ClientKey::from("alice")))
        .progress_interval(Duration::from_millis(50))
        .observer(downloads.clone());
    let files = support::serve(layer.layer(ServeDir::new(root.path()))).await;
    let admin = admin::Admin::new(
        downloads,
        layer.bandwidth_control(),
        token.map(str::to_owned),
    );
    let admin = admin::serve("127.0.0.1:0".parse().unwrap(), admin)
        .await
        .unwrap();
    (files, admin, root)
}

/// Starts downloading `/big.bin`; the body, once the headers came.
async fn start_download(files: SocketAddr) -> hyper::body::Incoming {
    let stream = TcpStream::connect(files).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/big.bin")
        .header("host", "files")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

/// Bytes of `body` received within `window`.
async fn received_within(body: &mut hyper::body::Incoming, window: Duration) -> usize {
    let until = Instant::now() + window;
    let mut received = 0;
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, body.frame()).await {
        received += frame.unwrap().into_data().map_or(0, |data| data.len());
    }
    received
}

#[tokio::test]
async fn downloads_are_listed_slowed_down_at_once_and_cancelled() {
    let (files, admin, _root) = servers(Bandwidth::kib(1024), None).await;
    let (status, list) = call(admin, "GET", "/api/downloads", "", None).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));

    let mut body = start_download(files).await;
    // At 1 MiB/s, well over 256 KiB in half a second.
    let before = received_within(&mut body, Duration::from_millis(500)).await;
    assert!(before > 256 * 1024, "{before} bytes in 0.5 s at 1 MiB/s");
    let (status, list) = call(admin, "GET", "/api/downloads", "", None).await;
    assert_eq!(status, StatusCode::OK);
    let entry = &list[0];
    assert_eq!(entry["client"], "alice");
    assert_eq!(entry["path"], "/big.bin");
    assert_eq!(entry["length"], 64 * MIB);
    let sent = entry["sent"].as_u64().unwrap();
    assert!(
        sent >= before as u64 / 2 && sent < 64 * MIB as u64,
        "{entry}"
    );
    let rate = entry["rate"].as_u64().expect("a rate after 0.5 s");
    assert!((256 * 1024..4 * MIB as u64).contains(&rate), "{entry}");
    let id = entry["id"].as_u64().unwrap();

    // 64 KiB/s from now on: running streams follow at once.
    let (status, limits) = call(
        admin,
        "PUT",
        "/api/limits",
        r#"{"client_rate": 65536}"#,
        None,
    )
    .await;
    assert_eq!(
        (status, limits),
        (
            StatusCode::OK,
            json!({"client_rate": 65536, "total_rate": null})
        )
    );
    received_within(&mut body, Duration::from_millis(300)).await;
    let after = received_within(&mut body, Duration::from_secs(1)).await;
    assert!(after < 192 * 1024, "{after} bytes in 1 s at 64 KiB/s");

    let (status, answer) = call(
        admin,
        "POST",
        &format!("/api/downloads/{id}/cancel"),
        "",
        None,
    )
    .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"cancelled": id})));
    // The client's download ends with an error (the connection is aborted)
    // at once, though it was waiting for its throttle.
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match body.frame().await {
                Some(Ok(_)) => continue,
                Some(Err(_)) => break true,
                None => break false,
            }
        }
    });
    assert!(
        ended.await.unwrap(),
        "the body ends with an error, not complete"
    );
    let (_, stats) = call(admin, "GET", "/api/stats", "", None).await;
    assert_eq!(stats["outcomes"], json!({"cancelled": 1}), "{stats}");
    assert_eq!(stats["active"], 0);
    let (status, answer) = call(
        admin,
        "POST",
        &format!("/api/downloads/{id}/cancel"),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["status"], 404);
}

#[tokio::test]
async fn bad_bodies_are_400s_that_name_the_field() {
    let (_files, admin, _root) = servers(Bandwidth::UNLIMITED, None).await;
    let bad = [
        (r#"{"client_rate": -1}"#, Some("client_rate")),
        (r#"{"total_rate": "fast"}"#, Some("total_rate")),
        (r#"{"total_rate": 0}"#, Some("total_rate")),
        (r#"{"total_rate": 1.5}"#, Some("total_rate")),
        (r#"{"rate": 5}"#, None),
        (r#"{}"#, None),
        (r#"[1, 2]"#, None),
        (r#"{"total_rate": "#, None),
        ("", None),
    ];
    for (body, field) in bad {
        let (status, error) = call(admin, "PUT", "/api/limits", body, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["status"], 400, "{body}: {error}");
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{error}"
        );
        assert_eq!(
            error.get("field").and_then(Value::as_str),
            field,
            "{body}: {error}"
        );
    }
    let (_, limits) = call(admin, "GET", "/api/limits", "", None).await;
    assert_eq!(
        limits,
        json!({"client_rate": null, "total_rate": null}),
        "nothing changed"
    );
    let (status, error) = call(admin, "POST", "/api/downloads/abc/cancel", "", None).await;
    assert_eq!(
        (status, &error["field"]),
        (StatusCode::BAD_REQUEST, &json!("id"))
    );
    let (status, error) = call(admin, "DELETE", "/api/limits", "", None).await;
    assert_eq!(
        (status, &error["status"]),
        (StatusCode::METHOD_NOT_ALLOWED, &json!(405))
    );
    let (status, error) = call(admin, "GET", "/api/nothing", "", None).await;
    assert_eq!(
        (status, &error["status"]),
        (StatusCode::NOT_FOUND, &json!(404))
    );
    // null lifts a limit; a field left out stays.
    call(
        admin,
        "PUT",
        "/api/limits",
        r#"{"total_rate": 1000000, "client_rate": 5000}"#,
        None,
    )
    .await;
    let (status, limits) = call(admin, "PUT", "/api/limits", r#"{"total_rate": null}"#, None).await;
    assert_eq!(
        (status, limits),
        (
            StatusCode::OK,
            json!({"client_rate": 5000, "total_rate": null})
        )
    );
}

#[tokio::test]
async fn with_a_token_every_api_request_needs_it() {
    let (_files, admin, _root) = servers(Bandwidth::UNLIMITED, Some("s3cret")).await;
    for token in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
        let (status, error) = call(admin, "GET", "/api/downloads", "", token).await;
        assert_eq!(
            (status, &error["status"]),
            (StatusCode::UNAUTHORIZED, &json!(401)),
            "{token:?}"
        );
        let (status, _) = call(admin, "PUT", "/api/limits", r#"{"total_rate": 5}"#, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (_, limits) = call(admin, "GET", "/api/limits", "", Some("s3cret")).await;
    assert_eq!(
        limits["total_rate"],
        Value::Null,
        "the refused PUTs changed nothing"
    );
    let (status, list) = call(admin, "GET", "/api/downloads", "", Some("s3cret")).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    // The page holds no data: it asks for the token itself.
    let (status, page) = call(admin, "GET", "/", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("<title>Downloads"));
}

#[test]
fn an_admin_off_loopback_needs_a_token() {
    let loopback: SocketAddr = "127.0.0.1:3001".parse().unwrap();
    let anywhere: SocketAddr = "0.0.0.0:3001".parse().unwrap();
    let v6: SocketAddr = "[::1]:3001".parse().unwrap();
    assert!(admin::check(loopback, None).is_ok());
    assert!(admin::check(v6, None).is_ok());
    let error = admin::check(anywhere, None).unwrap_err();
    assert!(error.contains("--admin-token"), "{error}");
    assert!(admin::check(anywhere, Some("t")).is_ok());
    assert!(admin::check(loopback, Some("")).is_err());
}
