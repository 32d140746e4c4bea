//! A response whose source fails is aborted, never completed with wrong bytes.

mod support;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use support::{get, send, serve};
use tower::{service_fn, Layer, ServiceExt};
use tower_range_serve::source::{RangeSource, ReadFuture};
use tower_range_serve::{FileResponse, RangeServeLayer};

/// Serves `len` bytes of `b'x'`, failing every read at or past `fail_at`.
#[derive(Debug)]
struct FailingAt {
    len: u64,
    fail_at: u64,
}

impl RangeSource for FailingAt {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        let result = if offset >= self.fail_at {
            Err(io::Error::other("disk failure"))
        } else {
            Ok(Bytes::from(vec![b'x'; len]))
        };
        Box::pin(std::future::ready(result))
    }
}

#[tokio::test]
async fn an_io_error_mid_stream_aborts_the_response() {
    // Far enough in for hyper to have flushed the head and some body bytes.
    let service = RangeServeLayer::new().layer(service_fn(|_req| async {
        let source = FailingAt {
            len: 4_000_000,
            fail_at: 3_000_000,
        };
        Ok::<_, Infallible>(FileResponse::from_source(source).into_response())
    }));
    let addr = serve(service).await;
    let f = send(addr, get("/", &[])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-length"), "4000000");
    assert!(f.body.is_err(), "the client must see an aborted body");

    let f = send(addr, get("/", &[("range", "bytes=10-20")])).await;
    assert_eq!(
        f.bytes(),
        &vec![b'x'; 11][..],
        "ranges before the failure still work"
    );
}

#[tokio::test]
async fn a_file_truncated_while_streaming_ends_the_body_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinking.bin");
    std::fs::write(&path, vec![7u8; 100_000]).unwrap();

    let file_path = path.clone();
    let service =
        RangeServeLayer::new()
            .chunk_size(1000)
            .layer(service_fn(move |_req| {
                let path = file_path.clone();
                async move {
                    Ok::<_, Infallible>(FileResponse::open(&path).await.unwrap().into_response())
                }
            }));
    let request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
    let mut body = service.oneshot(request).await.unwrap().into_body();

    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), 1000);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10_000)
        .unwrap();

    let mut received = first.len();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => received += frame.into_data().unwrap().len(),
            Some(Err(error)) => break error,
            None => panic!("the body ended cleanly after {received} bytes"),
        }
    };
    assert!(received <= 11_000, "{received}");
    let io = error.downcast_ref::<io::Error>().expect("an I/O error");
    assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
    assert!(body.frame().await.is_none(), "fused after the error");
}
