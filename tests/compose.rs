//! The layer inside frameworks and beside responses it must not touch.

mod support;

use std::convert::Infallible;

use axum::Router;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::get as axum_get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, StreamBody};
use support::{content, get, send, serve};
use tower::{ServiceExt, service_fn};
use tower_range_serve::{FileResponse, RangeServe, RangeServeLayer};

fn data() -> Bytes {
    Bytes::from(content(1000))
}

async fn download(Path(name): Path<String>) -> impl IntoResponse {
    FileResponse::from_bytes(data()).attachment(Some(&name))
}

async fn json() -> impl IntoResponse {
    ([("content-type", "application/json")], r#"{"ok":true}"#)
}

#[tokio::test]
async fn axum_router_layer_serves_ranges_and_passes_other_routes_through() {
    let app = Router::new()
        .route("/files/{name}", axum_get(download))
        .route("/api", axum_get(json))
        .layer(RangeServeLayer::new());
    let addr = serve(app).await;

    let f = send(addr, get("/files/report.bin", &[("range", "bytes=10-19")])).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(f.header("content-range"), "bytes 10-19/1000");
    assert_eq!(
        f.header("content-disposition"),
        "attachment; filename=\"report.bin\""
    );
    assert_eq!(f.bytes(), &data()[10..20]);

    let f = send(addr, get("/api", &[("range", "bytes=0-1")])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-type"), "application/json");
    assert!(f.headers.get("accept-ranges").is_none());
    assert!(f.headers.get("content-range").is_none());
    assert_eq!(f.bytes(), r#"{"ok":true}"#);
}

#[tokio::test]
async fn axum_route_layer_applies_to_its_routes_only() {
    let app = Router::new()
        .route("/ranged/{name}", axum_get(download))
        .route_layer(RangeServeLayer::new())
        .route("/plain/{name}", axum_get(download));
    let addr = serve(app).await;

    let f = send(addr, get("/ranged/a", &[("range", "bytes=0-9")])).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    let f = send(addr, get("/plain/a", &[("range", "bytes=0-9")])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.bytes(), &data());
}

#[tokio::test]
async fn axum_head_requests_mirror_get() {
    let app = Router::new()
        .route("/files/{name}", axum_get(download))
        .layer(RangeServeLayer::new());
    let addr = serve(app).await;
    let f = send(
        addr,
        support::request("HEAD", "/files/x", &[("range", "bytes=0-9")]),
    )
    .await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(f.header("content-length"), "10");
    assert!(f.bytes().is_empty());
}

#[tokio::test]
async fn non_file_bodies_keep_their_frames_and_trailers() {
    let inner = service_fn(|_req: Request<Empty<Bytes>>| async {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let frames = vec![
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"ab"))),
            Ok(Frame::data(Bytes::from_static(b"cd"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = StreamBody::new(stream_iter(frames));
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
            .headers_mut()
            .insert("x-custom", HeaderValue::from_static("1"));
        Ok::<_, Infallible>(response)
    });
    let request = Request::get("/")
        .header("range", "bytes=0-0")
        .body(Empty::new())
        .unwrap();
    let response = RangeServe::new(inner).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(response.headers()["x-custom"], "1");
    assert!(response.headers().get("accept-ranges").is_none());
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(collected.to_bytes(), "abcd");
}

#[tokio::test]
async fn file_responses_under_another_status_are_not_range_processed() {
    let inner = service_fn(|_req: Request<Empty<Bytes>>| async {
        let mut response =
            FileResponse::from_bytes(Bytes::from_static(b"not found page")).into_response();
        *response.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(response)
    });
    let request = Request::get("/")
        .header("range", "bytes=0-2")
        .body(Empty::new())
        .unwrap();
    let response = RangeServe::new(inner).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().get("content-range").is_none());
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "not found page"
    );
}

/// A stream over a vector, without pulling in a stream crate.
fn stream_iter<T: Unpin>(items: Vec<T>) -> Iter<T> {
    Iter(items.into_iter())
}

struct Iter<T>(std::vec::IntoIter<T>);

impl<T: Unpin> futures_core::Stream for Iter<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::task::Poll::Ready(self.0.next())
    }
}
