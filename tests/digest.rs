//! Digest fields (RFC 9530 `Repr-Digest`, RFC 3230 `Digest`): exact values on
//! every 200 and 206, preferences, checksum files, versions, and hashing off the
//! request path.
//!
//! Time is paused: the background hash waits for a file to settle with tokio's
//! clock, and a paused clock does not move on while a blocking task (the hash)
//! runs, so `settle()` returns once the scheduled hash is done.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use sha2::Digest as _;
use support::{content, parse_multipart, request};
use tower::{Layer, ServiceExt};
use tower_range_serve::digest::{DigestAlgorithm, Digests};
use tower_range_serve::{FileResponse, RangeServeLayer, ServeDir};

const LEN: usize = 100_000;

fn sha256(bytes: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(bytes).to_vec()
}

fn sha512(bytes: &[u8]) -> Vec<u8> {
    sha2::Sha512::digest(bytes).to_vec()
}

fn repr(key: &str, digest: &[u8]) -> String {
    format!("{key}=:{}:", STANDARD.encode(digest))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A root with `file.bin`, last changed a minute ago (so hashing need not wait
/// for it to settle, in real time as in paused time).
fn root_with(bytes: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write_old(&root.path().join("file.bin"), bytes, 60);
    root
}

/// Writes `bytes` in place and dates the file `ago` seconds back.
fn write_old(path: &Path, bytes: &[u8], ago: u64) {
    std::fs::write(path, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(ago))
        .unwrap();
}

async fn fetch(
    layer: &RangeServeLayer,
    root: &Path,
    method: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let service = layer.clone().layer(ServeDir::new(root));
    let response = service
        .oneshot(request(method, "/file.bin", headers))
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// Lets background hashes finish (paused time: see the module docs).
async fn settle() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test(start_paused = true)]
async fn exact_digests_on_200_206_multipart_and_head() {
    let bytes = content(LEN);
    let root = root_with(&bytes);
    let layer = RangeServeLayer::new().digests(Digests::new());
    let want = ("want-repr-digest", "sha-256=10");
    let expected = repr("sha-256", &sha256(&bytes));

    // The first response goes without: the hash is not known yet.
    let (status, headers, _) = fetch(&layer, root.path(), "GET", &[want]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "repr-digest"), None);
    settle().await;

    let (status, headers, body) = fetch(&layer, root.path(), "GET", &[want]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert_eq!(header(&headers, "repr-digest"), Some(&*expected));

    let range = ("range", "bytes=100-199");
    let (status, headers, body) = fetch(&layer, root.path(), "GET", &[want, range]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, bytes[100..200]);
    assert_eq!(header(&headers, "repr-digest"), Some(&*expected));

    let ranges = ("range", "bytes=0-9,5000-5999");
    let (status, headers, body) = fetch(&layer, root.path(), "GET", &[want, ranges]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let parts = parse_multipart(header(&headers, "content-type").unwrap(), &body);
    assert_eq!(parts.len(), 2);
    assert_eq!(header(&headers, "repr-digest"), Some(&*expected));

    for headers in [&[want][..], &[want, range][..]] {
        let (status, headers, body) = fetch(&layer, root.path(), "HEAD", headers).await;
        assert!(status.is_success());
        assert!(body.is_empty());
        assert_eq!(header(&headers, "repr-digest"), Some(&*expected));
    }
}

#[tokio::test(start_paused = true)]
async fn content_digest_only_on_a_200_to_get_and_digest_for_want_digest() {
    let bytes = content(LEN);
    let root = root_with(&bytes);
    let layer = RangeServeLayer::new().digests(Digests::new());
    fetch(&layer, root.path(), "GET", &[("want-digest", "SHA-256")]).await;
    settle().await;
    let digest = sha256(&bytes);

    let want = ("want-content-digest", "sha-256=1");
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &[want]).await;
    assert_eq!(
        header(&headers, "content-digest"),
        Some(&*repr("sha-256", &digest))
    );
    assert_eq!(header(&headers, "repr-digest"), None, "not asked for");
    for (method, extra) in [("GET", ("range", "bytes=0-9")), ("HEAD", ("x", "y"))] {
        let (_, headers, _) = fetch(&layer, root.path(), method, &[want, extra]).await;
        assert_eq!(
            header(&headers, "content-digest"),
            None,
            "{method} {extra:?}"
        );
    }

    // aria2's field; the whole file's digest on a 206 too.
    let aria2 = ("want-digest", "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1");
    let legacy = format!("SHA-256={}", STANDARD.encode(&digest));
    for range in ["bytes=0-", "bytes=10-20"] {
        let (_, headers, _) = fetch(&layer, root.path(), "GET", &[aria2, ("range", range)]).await;
        assert_eq!(header(&headers, "digest"), Some(&*legacy));
    }
}

#[tokio::test(start_paused = true)]
async fn no_digest_on_304_412_416() {
    let bytes = content(LEN);
    let root = root_with(&bytes);
    let layer = RangeServeLayer::new().digests(Digests::new().always(true));
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &[]).await;
    settle().await;
    let etag = header(&headers, "etag").unwrap().to_owned();
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &[]).await;
    assert!(headers.contains_key("repr-digest"), "always: {headers:?}");
    assert!(headers.contains_key("content-digest"), "always, a 200");
    for (asked, status) in [
        (("if-none-match", etag.as_str()), StatusCode::NOT_MODIFIED),
        (("if-match", "\"other\""), StatusCode::PRECONDITION_FAILED),
        (
            ("range", "bytes=999999-"),
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
    ] {
        let want = ("want-digest", "sha-256");
        let (got, headers, _) = fetch(&layer, root.path(), "GET", &[asked, want]).await;
        assert_eq!(got, status);
        for name in ["repr-digest", "content-digest", "digest"] {
            assert!(!headers.contains_key(name), "{status} has {name}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn preferences_choose_among_the_known_digests() {
    let bytes = content(LEN);
    let root = root_with(&bytes);
    let path = root.path().join("file.bin");
    std::fs::write(path.with_extension("bin.sha256"), hex(&sha256(&bytes))).unwrap();
    let sums = format!("{}  file.bin\n", hex(&sha512(&bytes)));
    std::fs::write(path.with_extension("bin.sha512"), sums).unwrap();
    // Known digests only: nothing is hashed.
    let layer = RangeServeLayer::new();
    let sha256 = repr("sha-256", &sha256(&bytes));
    let sha512 = repr("sha-512", &sha512(&bytes));
    for (want, expected) in [
        ("sha-256=10, sha-512=3", Some(&sha256)),
        ("sha-256=1, sha-512=3", Some(&sha512)),
        ("sha-512=1", Some(&sha512)),
        ("sha-256=0, sha-512=1", Some(&sha512)),
        ("sha-256=0", None),
        ("sha-256=0, sha-512=0", None),
        ("md5=10", None),
        ("sha-256=10, SHA-512=1", None), // not a Structured Field: ignored
    ] {
        let (_, headers, _) =
            fetch(&layer, root.path(), "GET", &[("want-repr-digest", want)]).await;
        assert_eq!(
            header(&headers, "repr-digest"),
            expected.map(String::as_str),
            "{want}"
        );
    }
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &[]).await;
    assert_eq!(header(&headers, "repr-digest"), None, "not asked for");

    // Sent always, but not against a refusal.
    let always = RangeServeLayer::new().digests(Digests::known_only().always(true));
    let (_, headers, _) = fetch(&always, root.path(), "GET", &[]).await;
    assert_eq!(header(&headers, "repr-digest"), Some(&*sha512));
    let refuse = ("want-repr-digest", "sha-512=0, sha-256=0");
    let (_, headers, _) = fetch(&always, root.path(), "GET", &[refuse]).await;
    assert_eq!(header(&headers, "repr-digest"), None);

    let off = RangeServeLayer::new().digests(Digests::off());
    let (_, headers, _) = fetch(
        &off,
        root.path(),
        "GET",
        &[("want-repr-digest", "sha-256=1")],
    )
    .await;
    assert_eq!(header(&headers, "repr-digest"), None);
}

#[tokio::test(start_paused = true)]
async fn a_checksum_file_wins_and_is_used_on_the_first_request() {
    let bytes = content(LEN);
    let root = root_with(&bytes);
    // A published value that differs from what hashing finds: proof of which
    // one is sent.
    let published = [7u8; 32];
    let line = format!("{}  file.bin\n", hex(&published));
    std::fs::write(root.path().join("file.bin.sha256"), &line).unwrap();
    let layer = RangeServeLayer::new().digests(Digests::new());
    let want = [
        ("want-repr-digest", "sha-256=10"),
        ("want-digest", "sha-256"),
    ];
    for _ in 0..2 {
        let (_, headers, _) = fetch(&layer, root.path(), "GET", &want).await;
        assert_eq!(
            header(&headers, "repr-digest"),
            Some(&*repr("sha-256", &published))
        );
        let legacy = format!("SHA-256={}", STANDARD.encode(published));
        assert_eq!(header(&headers, "digest"), Some(&*legacy));
        settle().await;
    }

    // A checksum file older than the file describes an older version: ignored,
    // and the computed digest is sent once known.
    write_old(&root.path().join("file.bin"), &bytes, 10);
    write_old(&root.path().join("file.bin.sha256"), line.as_bytes(), 20);
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &want).await;
    assert_eq!(header(&headers, "repr-digest"), None);
    settle().await;
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &want).await;
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &sha256(&bytes)))
    );
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn a_file_changed_in_place_gets_the_new_digest_never_the_old() {
    use std::os::unix::fs::MetadataExt;
    let one = content(LEN);
    let mut two = one.clone();
    two[LEN / 2] ^= 0xff; // same length
    let root = root_with(&one);
    let layer = RangeServeLayer::new().digests(Digests::new());
    let want = [("want-repr-digest", "sha-256=10")];
    fetch(&layer, root.path(), "GET", &want).await;
    settle().await;
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &want).await;
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &sha256(&one)))
    );

    // Rewritten in place, even with its old modification time put back: only
    // the change time tells. (Written again until the file system's clock has
    // ticked, which a real writer's later write always finds: files are hashed
    // 2 s after their last change.)
    let path = root.path().join("file.bin");
    let before = std::fs::metadata(&path).unwrap();
    for _ in 0..100_000 {
        std::fs::write(&path, &two).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(before.modified().unwrap()).unwrap();
        let now = std::fs::metadata(&path).unwrap();
        if (now.ctime(), now.ctime_nsec()) != (before.ctime(), before.ctime_nsec()) {
            break;
        }
    }
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    assert_ne!(
        (after.ctime(), after.ctime_nsec()),
        (before.ctime(), before.ctime_nsec())
    );
    let (_, headers, body) = fetch(&layer, root.path(), "GET", &want).await;
    assert_eq!(body, two);
    assert_eq!(
        header(&headers, "repr-digest"),
        None,
        "the old digest is never sent"
    );
    settle().await;
    let (_, headers, _) = fetch(&layer, root.path(), "GET", &want).await;
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &sha256(&two)))
    );
}

#[tokio::test(start_paused = true)]
async fn a_1_gib_first_response_is_not_delayed_by_hashing() {
    const GIB: u64 = 1 << 30;
    const ZEROS_SHA256: &str = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14";
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("file.bin");
    // Sparse, and just written: its hash would also wait 2 s for it to settle.
    std::fs::File::create(&path).unwrap().set_len(GIB).unwrap();
    let layer = RangeServeLayer::new().digests(Digests::new());
    let want = [("want-repr-digest", "sha-256=10")];
    let service = layer.clone().layer(ServeDir::new(root.path()));
    let response = service
        .oneshot(request("GET", "/file.bin", &want))
        .await
        .unwrap();
    // The head came before the hash: had hashing been on the request path, it
    // would carry the digest.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], GIB.to_string());
    assert!(!response.headers().contains_key("repr-digest"));
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(!first.is_empty() && first.iter().all(|&b| b == 0));
    drop(body);

    settle().await;
    let (status, headers, _) = fetch(&layer, root.path(), "HEAD", &want).await;
    assert_eq!(status, StatusCode::OK);
    let digest: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&ZEROS_SHA256[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &digest))
    );
}

#[tokio::test]
async fn a_handler_attaches_a_known_digest() {
    let layer = RangeServeLayer::new();
    let digest = sha512(b"0123456789");
    let handler = tower::service_fn(move |_: Request<Empty<Bytes>>| {
        let digest = digest.clone();
        async move {
            let file = FileResponse::from_bytes(Bytes::from_static(b"0123456789"))
                .repr_digest(DigestAlgorithm::Sha512, digest);
            Ok::<Response<_>, std::convert::Infallible>(file.into_response())
        }
    });
    let want = [("want-repr-digest", "sha-512=1"), ("range", "bytes=2-3")];
    let response = layer
        .layer(handler)
        .oneshot(request("GET", "/", &want))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.headers()["repr-digest"],
        repr("sha-512", &sha512(b"0123456789"))
    );
}

#[tokio::test]
async fn a_refusal_carries_no_digest() {
    let bytes = content(LEN);
    let root = root_with(&bytes);
    std::fs::write(root.path().join("file.bin.sha256"), hex(&sha256(&bytes))).unwrap();
    let want = [
        ("want-repr-digest", "sha-256=1"),
        ("want-digest", "sha-256"),
    ];
    let open = RangeServeLayer::new();
    let (status, headers, _) = fetch(&open, root.path(), "GET", &want).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("repr-digest") && headers.contains_key("digest"));
    let full = RangeServeLayer::new().max_streams_per_client(0);
    for method in ["GET", "HEAD"] {
        let (status, headers, _) = fetch(&full, root.path(), method, &want).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{method}");
        assert!(!headers.contains_key("repr-digest"), "{method}");
        assert!(!headers.contains_key("digest"), "{method}");
    }
}

/// A precompressed variant is its own representation: its digest is that of
/// its own bytes, from its own checksum file (`NAME.gz.sha256`) or hashed,
/// never the original's `NAME.sha256`.
#[tokio::test(start_paused = true)]
async fn a_precompressed_variant_gets_its_own_digest() {
    use tower_range_serve::dir::Encoding;

    let bytes = content(LEN);
    let root = root_with(&bytes);
    let gzipped = b"not really gzip, but the bytes sent".to_vec();
    write_old(&root.path().join("file.bin.gz"), &gzipped, 60);
    // The original's published digest (of the identity bytes) must not be sent
    // for the variant.
    let line = format!("{}  file.bin\n", hex(&sha256(&bytes)));
    std::fs::write(root.path().join("file.bin.sha256"), &line).unwrap();
    let layer = RangeServeLayer::new().digests(Digests::new());
    let service = layer.layer(ServeDir::new(root.path()).precompressed([Encoding::Gzip]));
    let get = |accept: &'static str| {
        let service = service.clone();
        async move {
            let headers = [
                ("accept-encoding", accept),
                ("want-repr-digest", "sha-256=10"),
            ];
            let response = service
                .oneshot(request("GET", "/file.bin", &headers))
                .await
                .unwrap();
            let (parts, body) = response.into_parts();
            (parts.headers, body.collect().await.unwrap().to_bytes())
        }
    };
    let (headers, body) = get("identity").await;
    assert_eq!(body, bytes);
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &sha256(&bytes)))
    );
    // The variant: no checksum file of its own yet, so no digest before its hash.
    let (headers, body) = get("gzip").await;
    assert_eq!(body, gzipped);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(header(&headers, "repr-digest"), None);
    settle().await;
    let (headers, _) = get("gzip").await;
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &sha256(&gzipped)))
    );
    // Its own checksum file is used as soon as it is there.
    let published = [9u8; 32];
    let line = format!("{}  file.bin.gz\n", hex(&published));
    std::fs::write(root.path().join("file.bin.gz.sha256"), &line).unwrap();
    let (headers, _) = get("gzip").await;
    assert_eq!(
        header(&headers, "repr-digest"),
        Some(&*repr("sha-256", &published))
    );
}
