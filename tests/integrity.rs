//! A response whose source fails is aborted, never completed with wrong bytes.

mod support;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use support::{get, send, serve};
use tower::{Layer, ServiceExt, service_fn};
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
    let (body, _) = started(&path).await;
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10_000)
        .unwrap();
    let (bytes, error) = rest(body).await;
    // A changed length, or a read past the new end.
    assert!(
        matches!(
            error,
            Some(io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof)
        ),
        "{error:?}"
    );
    assert!(bytes.len() <= 10_000, "{}", bytes.len());
}

/// Starts a download of `path` (1000-byte chunks) and returns its body after the
/// first chunk, with the response's ETag.
async fn started(
    path: &std::path::Path,
) -> (
    tower_range_serve::ResponseBody<tower_range_serve::RangeBody>,
    String,
) {
    let file_path = path.to_owned();
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
    let response = service.oneshot(request).await.unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), 1000);
    (body, etag)
}

/// Reads the rest of a body: the bytes, and the error that ended it, if any.
async fn rest(
    mut body: tower_range_serve::ResponseBody<tower_range_serve::RangeBody>,
) -> (Vec<u8>, Option<io::ErrorKind>) {
    let mut bytes = Vec::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => bytes.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(error)) => {
                let kind = error.downcast_ref::<io::Error>().map(io::Error::kind);
                return (bytes, kind);
            }
            None => return (bytes, None),
        }
    }
}

#[tokio::test]
async fn a_file_appended_to_while_streaming_ends_the_body_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.log");
    std::fs::write(&path, vec![1u8; 100_000]).unwrap();
    let (body, _) = started(&path).await;
    let mut file = std::fs::File::options().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"appended").unwrap();
    let (bytes, error) = rest(body).await;
    assert_eq!(error, Some(io::ErrorKind::InvalidData));
    assert!(bytes.len() <= 2000, "{}", bytes.len());
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_modified_in_place_while_streaming_ends_the_body_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.bin");
    std::fs::write(&path, vec![1u8; 100_000]).unwrap();
    let (body, _) = started(&path).await;
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[2u8; 10], 50_000).unwrap();
    // Make the change visible even on file systems with coarse timestamps.
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let (bytes, error) = rest(body).await;
    assert_eq!(error, Some(io::ErrorKind::InvalidData));
    assert!(!bytes.contains(&2), "no byte of the new version was sent");
}

#[tokio::test]
async fn a_file_replaced_by_rename_is_sent_whole_in_its_old_version_and_resumes_new() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.tar");
    std::fs::write(&path, vec![1u8; 100_000]).unwrap();
    let (body, old_etag) = started(&path).await;
    let replacement = dir.path().join("release.tar.new");
    std::fs::write(&replacement, vec![2u8; 50_000]).unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    let (bytes, error) = rest(body).await;
    assert_eq!(error, None);
    assert_eq!(bytes, vec![1u8; 99_000], "the open file is the old version");

    // A client resuming with the old validator gets the new version whole.
    let file_path = path.clone();
    let service = RangeServeLayer::new().layer(service_fn(move |_req| {
        let path = file_path.clone();
        async move { Ok::<_, Infallible>(FileResponse::open(&path).await.unwrap().into_response()) }
    }));
    let request = Request::get("/")
        .header("range", "bytes=50000-")
        .header("if-range", old_etag)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, vec![2u8; 50_000]);
}
