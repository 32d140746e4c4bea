//! `examples/tonic.rs` keeps working: gRPC and ranged downloads on one port,
//! through one `RangeServeLayer`, over a real socket.

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/tonic.rs"]
mod tonic_example;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{content, get, send, serve};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test]
async fn grpc_health_checks_pass_through_the_layer() {
    let root = tempfile::tempdir().unwrap();
    let (reporter, app) = tonic_example::app(root.path());
    let addr = serve(app).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);

    // A unary call: the message, then `grpc-status: 0` in the trailers, which
    // tonic's client insists on.
    let response = client.check(check("")).await.unwrap();
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);

    // An error status comes through as the server sent it.
    let error = client.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::NotFound);

    // A server stream: messages arrive as they are sent, not buffered.
    let mut updates = client.watch(check("")).await.unwrap().into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let second = updates.message().await.unwrap().unwrap();
    assert_eq!(second.status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn grpc_and_ranged_downloads_share_one_port_and_one_connection() {
    let root = tempfile::tempdir().unwrap();
    let data = content(5000);
    std::fs::write(root.path().join("data.bin"), &data).unwrap();
    let (_reporter, app) = tonic_example::app(root.path());
    let addr = serve(app).await;

    // HTTP/1.1: a file with a range.
    let part = send(addr, get("/data.bin", &[("range", "bytes=4000-")])).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 4000-4999/5000");
    assert_eq!(part.bytes().as_ref(), &data[4000..]);

    // HTTP/2: a raw gRPC call and a ranged download on one connection.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);

    // An empty HealthCheckRequest in one gRPC frame: uncompressed, length 0. A
    // Range header is not for gRPC: the response must not change.
    let grpc = Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("range", "bytes=0-0")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let response = sender.send_request(grpc).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert!(response.headers().get("content-length").is_none());
    assert!(response.headers().get("accept-ranges").is_none());
    assert!(response.headers().get("content-range").is_none());
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    // HealthCheckResponse { status: SERVING } is the protobuf field 1 = 1.
    assert_eq!(collected.to_bytes().as_ref(), &[0, 0, 0, 0, 2, 0x08, 0x01]);

    let download = Request::get(format!("http://{addr}/data.bin"))
        .header("range", "bytes=10-19,100-109")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(download).await.unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let parts = support::parse_multipart(&content_type, &body);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].body, &data[10..20]);
    assert_eq!(parts[1].content_range, "bytes 100-109/5000");
    assert_eq!(parts[1].body, &data[100..110]);

    // Paths no gRPC service claims are files; a missing file is a plain 404.
    let missing = send(addr, get("/grpc.nothing.v1.Nope/Call", &[])).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
