//! `examples/hyper.rs` keeps working: its service, over a real socket.

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/hyper.rs"]
mod hyper_example;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{content, get, request, send, serve};
use tokio::net::TcpStream;

#[tokio::test]
async fn the_hyper_example_serves_ranges_and_conditions_over_http1_and_http2() {
    let root = tempfile::tempdir().unwrap();
    let data = content(10_000);
    std::fs::write(root.path().join("data.bin"), &data).unwrap();
    let addr = serve(hyper_example::app(root.path())).await;

    let whole = send(addr, get("/data.bin", &[])).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.bytes().as_ref(), &data[..]);

    let part = send(addr, get("/data.bin", &[("range", "bytes=9000-")])).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 9000-9999/10000");
    assert_eq!(part.bytes().as_ref(), &data[9000..]);

    let etag = whole.header("etag");
    let cached = send(addr, get("/data.bin", &[("if-none-match", etag)])).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);

    let head = send(
        addr,
        request("HEAD", "/data.bin", &[("range", "bytes=0-9")]),
    )
    .await;
    assert_eq!(head.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(head.header("content-length"), "10");

    assert_eq!(
        send(addr, get("/missing", &[])).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(addr, request("POST", "/data.bin", &[])).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // HTTP/2 with prior knowledge, on the same port.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://{addr}/data.bin"))
        .header("range", "bytes=100-199")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), &data[100..200]);
}
