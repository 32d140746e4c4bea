//! `ServeObjects`: a bucket served like a folder, with the guarantees of files.
//! Against object_store's in-memory store, and against a real S3 API server on
//! loopback (moto's server mode; skipped when it is not installed, outside CI).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};
use support::moto::MotoServer;
use support::{content, get, parse_content_range, parse_multipart, request, send, serve};
use tower::Layer;
use tower_range_serve::objects::ServeObjects;
use tower_range_serve::{Bandwidth, RangeServeLayer};

async fn put(store: &dyn ObjectStore, key: &str, data: Vec<u8>) {
    store
        .put(&Path::from(key), PutPayload::from(data))
        .await
        .unwrap();
}

/// Ranges, multipart, `If-Range`, 304, 412, 416, 404, 405 over `store`, whose
/// `files/a.bin` holds `data`.
async fn the_bucket_is_served_like_a_folder(store: Arc<dyn ObjectStore>, data: &[u8]) {
    let service = RangeServeLayer::new().layer(ServeObjects::new(store).prefix("files"));
    let addr = serve(service).await;

    let whole = send(addr, get("/a.bin", &[])).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(&whole.bytes()[..], data);
    assert_eq!(whole.header("content-length"), data.len().to_string());
    assert_eq!(whole.header("accept-ranges"), "bytes");
    let etag = whole.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let modified = whole.header("last-modified").to_owned();

    let range = send(addr, get("/a.bin", &[("range", "bytes=1000-1999")])).await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        parse_content_range(range.header("content-range")),
        (1000, 1999, data.len() as u64)
    );
    assert_eq!(&range.bytes()[..], &data[1000..2000]);

    let suffix = send(addr, get("/a.bin", &[("range", "bytes=-10")])).await;
    assert_eq!(&suffix.bytes()[..], &data[data.len() - 10..]);

    let multi = send(addr, get("/a.bin", &[("range", "bytes=0-9,200000-200099")])).await;
    assert_eq!(multi.status, StatusCode::PARTIAL_CONTENT);
    let parts = parse_multipart(multi.header("content-type"), multi.bytes());
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].body, &data[0..10]);
    assert_eq!(parts[1].body, &data[200_000..200_100]);

    let if_range = [("range", "bytes=0-9"), ("if-range", etag.as_str())];
    assert_eq!(
        send(addr, get("/a.bin", &if_range)).await.status,
        StatusCode::PARTIAL_CONTENT
    );
    let stale = [("range", "bytes=0-9"), ("if-range", "\"another\"")];
    let f = send(addr, get("/a.bin", &stale)).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.bytes().len(), data.len());

    let f = send(addr, get("/a.bin", &[("if-none-match", etag.as_str())])).await;
    assert_eq!(f.status, StatusCode::NOT_MODIFIED);
    assert_eq!(f.header("etag"), etag);
    let f = send(
        addr,
        get("/a.bin", &[("if-modified-since", modified.as_str())]),
    )
    .await;
    assert_eq!(f.status, StatusCode::NOT_MODIFIED);
    let f = send(addr, get("/a.bin", &[("if-match", "\"another\"")])).await;
    assert_eq!(f.status, StatusCode::PRECONDITION_FAILED);
    let f = send(addr, get("/a.bin", &[("range", "bytes=999999999-")])).await;
    assert_eq!(f.status, StatusCode::RANGE_NOT_SATISFIABLE);

    let f = send(addr, request("HEAD", "/a.bin", &[("range", "bytes=0-9")])).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert!(f.bytes().is_empty());

    assert_eq!(
        send(addr, get("/missing.bin", &[])).await.status,
        StatusCode::NOT_FOUND
    );
    for traversal in ["/../a.bin", "/%2e%2e/files/a.bin", "/x/..%2fa.bin", "/"] {
        assert_eq!(
            send(addr, get(traversal, &[])).await.status,
            StatusCode::NOT_FOUND,
            "{traversal}"
        );
    }
    let f = send(addr, request("DELETE", "/a.bin", &[])).await;
    assert_eq!(f.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(f.header("allow"), "GET, HEAD");
}

/// A throttled download during which the object is overwritten: the bytes sent
/// are all of the version first seen, and a GET after the overwrite (a part of
/// a multipart answer) fails instead of splicing in the new version.
async fn an_overwrite_mid_download_never_splices_versions(store: Arc<dyn ObjectStore>) {
    let old = content(600_000);
    put(&*store, "v.bin", old.clone()).await;
    let service = RangeServeLayer::new()
        .rate(Bandwidth::kib(512))
        .layer(ServeObjects::new(store.clone()));
    let addr = serve(service).await;

    // Two ranges: one GET each, the second after the overwrite.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(get("/v.bin", &[("range", "bytes=0-199999,500000-500099")]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = response.into_body();
    let mut received = Vec::new();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    received.extend_from_slice(&first);
    put(
        &*store,
        "v.bin",
        content(700_000).into_iter().rev().collect(),
    )
    .await;
    let end = loop {
        match body.frame().await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(error)) => break Err(error),
            None => break Ok(()),
        }
    };
    assert!(end.is_err(), "the body must end with an error");
    let head_len = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let sent = &received[head_len..];
    let first_part = &sent[..sent.len().min(200_000)];
    assert!(
        first_part == &old[..first_part.len()],
        "only bytes of the old version"
    );
    // After the first part, at most the next part's header: none of its bytes.
    let rest = &sent[first_part.len()..];
    assert!(
        rest.is_empty() || rest.ends_with(b"\r\n\r\n"),
        "{} bytes after the first part",
        rest.len()
    );
    assert!(
        rest.len() < 200,
        "{} bytes after the first part",
        rest.len()
    );
    assert!(content_type.starts_with("multipart/byteranges"));

    // A single range already streaming goes on with the version it started
    // with; the next request gets the new version whole, even with the old
    // validator in `If-Range`.
    let f = send(addr, get("/v.bin", &[])).await;
    assert_eq!(f.bytes().len(), 700_000);
    let etag = f.header("etag").to_owned();
    put(&*store, "v.bin", old.clone()).await;
    let f = send(
        addr,
        get("/v.bin", &[("range", "bytes=0-9"), ("if-range", &etag)]),
    )
    .await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(&f.bytes()[..], &old[..]);
}

#[tokio::test]
async fn in_memory_store_served_like_a_folder() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let data = content(300_000);
    put(&*store, "files/a.bin", data.clone()).await;
    the_bucket_is_served_like_a_folder(store, &data).await;
}

#[tokio::test]
async fn in_memory_store_overwrite_mid_download() {
    an_overwrite_mid_download_never_splices_versions(Arc::new(InMemory::new())).await;
}

#[tokio::test]
async fn stored_content_types_win_over_the_extension() {
    let store = Arc::new(InMemory::new());
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, "application/x-custom".into());
    let options = PutOptions {
        attributes,
        ..PutOptions::default()
    };
    store
        .put_opts(&Path::from("a.txt"), PutPayload::from_static(b"x"), options)
        .await
        .unwrap();
    put(&*store, "b.txt", b"y".to_vec()).await;
    put(&*store, "c.zzz-unknown", b"z".to_vec()).await;
    let addr = serve(RangeServeLayer::new().layer(ServeObjects::new(store))).await;
    let types = [
        ("/a.txt", "application/x-custom"),
        ("/b.txt", "text/plain"),
        ("/c.zzz-unknown", "application/octet-stream"),
    ];
    for (path, content_type) in types {
        assert_eq!(
            send(addr, get(path, &[])).await.header("content-type"),
            content_type
        );
    }
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_is_503_and_one_that_does_not_answer_504() {
    use object_store::aws::AmazonS3Builder;
    let store = |endpoint: String| -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(endpoint)
                .with_bucket_name("b")
                .with_region("us-east-1")
                .with_access_key_id("k")
                .with_secret_access_key("s")
                .with_allow_http(true)
                .with_retry(object_store::RetryConfig {
                    max_retries: 0,
                    ..Default::default()
                })
                .build()
                .unwrap(),
        )
    };
    // Nothing listens on a port just freed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let service = ServeObjects::new(store(refused));
    let addr = serve(RangeServeLayer::new().layer(service)).await;
    assert_eq!(
        send(addr, get("/a", &[])).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_endpoint = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let service =
        ServeObjects::new(store(silent_endpoint)).open_timeout(Duration::from_millis(300));
    let addr = serve(RangeServeLayer::new().layer(service)).await;
    let started = Instant::now();
    assert_eq!(
        send(addr, get("/a", &[])).await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_bucket_served_like_a_folder() {
    let Some(moto) = MotoServer::start_or_skip("moto_bucket_served_like_a_folder") else {
        return;
    };
    moto.create_bucket("downloads");
    let store = moto.store("downloads");
    let data = content(300_000);
    put(&*store, "files/a.bin", data.clone()).await;
    the_bucket_is_served_like_a_folder(store, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_overwrite_mid_download() {
    let Some(moto) = MotoServer::start_or_skip("moto_overwrite_mid_download") else {
        return;
    };
    moto.create_bucket("downloads");
    an_overwrite_mid_download_never_splices_versions(moto.store("downloads")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_large_object_streams_with_one_get_per_range() {
    let Some(moto) = MotoServer::start_or_skip("moto_large_object_streams_with_one_get_per_range")
    else {
        return;
    };
    moto.create_bucket("big");
    let store = moto.store("big");
    let data = content(8 << 20);
    put(&*store, "big.bin", data.clone()).await;
    let addr = serve(RangeServeLayer::new().layer(ServeObjects::new(store))).await;
    let started = Instant::now();
    let f = send(addr, get("/big.bin", &[])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(f.bytes()[..] == data[..], "the whole object, byte for byte");
    // One HEAD to open it, one GET for the one range: not one per chunk.
    assert_eq!(moto.requests("GET /big/big.bin", 1).len(), 1);
    assert_eq!(moto.requests("HEAD /big/big.bin", 1).len(), 1);
    let f = send(
        addr,
        get("/big.bin", &[("range", "bytes=0-9,4000000-4999999,-5")]),
    )
    .await;
    let parts = parse_multipart(f.header("content-type"), f.bytes());
    assert!(parts[1].body[..] == data[4_000_000..5_000_000]);
    assert_eq!(
        moto.requests("GET /big/big.bin", 4).len(),
        4,
        "one GET per part"
    );
    // Generous: moto is Python; one request per 64 KiB chunk (128 requests)
    // would still pass, this only catches something far off.
    assert!(started.elapsed() < Duration::from_secs(60));
    let tail = send(addr, get("/big.bin", &[("range", "bytes=-1048576")])).await;
    assert!(tail.bytes()[..] == data[data.len() - (1 << 20)..]);
}
