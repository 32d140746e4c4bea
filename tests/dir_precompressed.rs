//! `ServeDir::precompressed` under `RangeServeLayer`: variants chosen by
//! `Accept-Encoding`, sent byte for byte, with ranges, validators and `Vary` of
//! their own.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;

use http::StatusCode;
use support::{Fetched, get, request, send, serve};
use tower::Layer;
use tower_range_serve::dir::Encoding;
use tower_range_serve::{RangeServeLayer, ServeDir};

const TEXT: &str = "All work and no play makes Jack a dull boy.\n";

struct Tree {
    root: tempfile::TempDir,
    _outside: tempfile::TempDir,
    text: Vec<u8>,
    gz: Vec<u8>,
    br: Vec<u8>,
    zst: Vec<u8>,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `app.txt` with `.gz`, `.br` and `.zst` sidecars (the last two stand-ins:
/// their bytes are compared, not decoded), `plain.txt` without, an orphan
/// sidecar, and a sidecar linking out of the root.
fn tree() -> Tree {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let text = TEXT.repeat(50).into_bytes();
    let gz = gzip(&text);
    let br = b"brotli stand-in: not the identity bytes, a length of its own".to_vec();
    let zst = b"zstd stand-in".to_vec();
    let path = |name: &str| root.path().join(name);
    std::fs::write(path("app.txt"), &text).unwrap();
    std::fs::write(path("app.txt.gz"), &gz).unwrap();
    std::fs::write(path("app.txt.br"), &br).unwrap();
    std::fs::write(path("app.txt.zst"), &zst).unwrap();
    std::fs::write(path("plain.txt"), &text).unwrap();
    std::fs::write(path("orphan.txt.gz"), &gz).unwrap();
    std::fs::write(path("linked.txt"), &text).unwrap();
    std::fs::write(outside.path().join("linked.txt.gz"), b"outside the root").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path().join("linked.txt.gz"), path("linked.txt.gz"))
        .unwrap();
    Tree {
        root,
        _outside: outside,
        text,
        gz,
        br,
        zst,
    }
}

async fn server(tree: &Tree) -> SocketAddr {
    let dir = ServeDir::new(tree.root.path()).precompressed(Encoding::ALL);
    serve(RangeServeLayer::new().layer(dir)).await
}

async fn fetch(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Fetched {
    send(addr, get(path, headers)).await
}

#[tokio::test]
async fn the_accepted_variant_is_sent_byte_for_byte() {
    let tree = tree();
    let addr = server(&tree).await;
    for (accept, encoding, bytes) in [
        ("gzip", "gzip", &tree.gz),
        ("br, gzip", "br", &tree.br),
        ("gzip, zstd, br", "br", &tree.br), // a tie: the server's order
        ("gzip, zstd", "zstd", &tree.zst),
        ("*", "br", &tree.br),
        ("br;q=0, gzip", "gzip", &tree.gz),
        ("br;q=0.5, gzip;q=0.8", "gzip", &tree.gz),
        ("x-gzip", "gzip", &tree.gz),
    ] {
        let f = fetch(addr, "/app.txt", &[("accept-encoding", accept)]).await;
        assert_eq!(f.status, StatusCode::OK, "{accept}");
        assert_eq!(f.header("content-encoding"), encoding, "{accept}");
        assert_eq!(f.header("content-type"), "text/plain", "{accept}");
        assert_eq!(f.header("vary"), "accept-encoding", "{accept}");
        assert_eq!(f.header("accept-ranges"), "bytes", "{accept}");
        assert_eq!(f.header("content-length"), bytes.len().to_string());
        assert_eq!(f.bytes().as_ref(), bytes.as_slice(), "{accept}");
    }
    let f = fetch(addr, "/app.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gunzip(f.bytes()), tree.text);
}

#[tokio::test]
async fn the_identity_response_of_a_file_with_variants_varies_too() {
    let tree = tree();
    let addr = server(&tree).await;
    for headers in [
        &[][..],
        &[("accept-encoding", "")],
        &[("accept-encoding", "deflate")],
        &[("accept-encoding", "gzip;q=0.5, identity")],
        &[("accept-encoding", "*;q=0")],
    ] {
        let f = fetch(addr, "/app.txt", headers).await;
        assert_eq!(f.status, StatusCode::OK, "{headers:?}");
        assert!(!f.headers.contains_key("content-encoding"), "{headers:?}");
        assert_eq!(f.header("vary"), "accept-encoding", "{headers:?}");
        assert_eq!(f.bytes().as_ref(), tree.text.as_slice(), "{headers:?}");
    }
    // A file without sidecars does not vary.
    let f = fetch(addr, "/plain.txt", &[("accept-encoding", "gzip")]).await;
    assert!(!f.headers.contains_key("content-encoding"));
    assert!(!f.headers.contains_key("vary"));
}

#[tokio::test]
async fn refused_identity_takes_a_variant_or_gets_identity_rather_than_406() {
    let tree = tree();
    let addr = server(&tree).await;
    let f = fetch(
        addr,
        "/app.txt",
        &[("accept-encoding", "identity;q=0, gzip")],
    )
    .await;
    assert_eq!(f.header("content-encoding"), "gzip");
    assert_eq!(f.bytes().as_ref(), tree.gz.as_slice());
    // Nothing acceptable: the identity file, as RFC 9110 §12.5.3 recommends.
    for path in ["/app.txt", "/plain.txt"] {
        let f = fetch(addr, path, &[("accept-encoding", "identity;q=0")]).await;
        assert_eq!(f.status, StatusCode::OK, "{path}");
        assert!(!f.headers.contains_key("content-encoding"), "{path}");
        assert_eq!(f.bytes().as_ref(), tree.text.as_slice(), "{path}");
    }
}

#[tokio::test]
async fn ranges_count_the_bytes_of_the_variant() {
    let tree = tree();
    let addr = server(&tree).await;
    let gz = &[("accept-encoding", "gzip"), ("range", "bytes=2-9")];
    let f = fetch(addr, "/app.txt", gz).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        f.header("content-range"),
        format!("bytes 2-9/{}", tree.gz.len())
    );
    assert_eq!(f.header("content-encoding"), "gzip");
    assert_eq!(f.bytes().as_ref(), &tree.gz[2..10]);
    // The last bytes of the brotli variant, by suffix.
    let br = &[("accept-encoding", "br"), ("range", "bytes=-5")];
    let f = fetch(addr, "/app.txt", br).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(f.bytes().as_ref(), &tree.br[tree.br.len() - 5..]);
    // Past the variant's end (but inside the identity file): 416 with its length.
    let past = format!("bytes={}-", tree.gz.len());
    let f = fetch(
        addr,
        "/app.txt",
        &[("accept-encoding", "gzip"), ("range", &past)],
    )
    .await;
    assert_eq!(f.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        f.header("content-range"),
        format!("bytes */{}", tree.gz.len())
    );
    assert!(!f.headers.contains_key("content-encoding"));
}

#[tokio::test]
async fn each_variant_has_its_own_etag_for_304_and_if_range() {
    let tree = tree();
    let addr = server(&tree).await;
    let etag = |accept: &'static str| async move {
        fetch(addr, "/app.txt", &[("accept-encoding", accept)])
            .await
            .header("etag")
            .to_owned()
    };
    let (identity, gz, br) = (etag("").await, etag("gzip").await, etag("br").await);
    assert!(identity.starts_with('"') && gz.starts_with('"') && br.starts_with('"'));
    assert_ne!(identity, gz);
    assert_ne!(identity, br);
    assert_ne!(gz, br);

    // 304 per variant: the gzip tag validates the gzip response only.
    let f = fetch(
        addr,
        "/app.txt",
        &[("accept-encoding", "gzip"), ("if-none-match", &gz)],
    )
    .await;
    assert_eq!(f.status, StatusCode::NOT_MODIFIED);
    assert_eq!(f.header("etag"), gz);
    assert_eq!(f.header("vary"), "accept-encoding");
    assert!(f.bytes().is_empty());
    for (accept, tag) in [("br", &gz), ("", &gz), ("gzip", &identity)] {
        let f = fetch(
            addr,
            "/app.txt",
            &[("accept-encoding", accept), ("if-none-match", tag)],
        )
        .await;
        assert_eq!(f.status, StatusCode::OK, "{accept} {tag}");
    }

    // A client resuming the identity download never gets gzip bytes spliced in.
    fn resume(tag: &str) -> [(&str, &str); 3] {
        [
            ("accept-encoding", "gzip"),
            ("range", "bytes=10-"),
            ("if-range", tag),
        ]
    }
    let f = fetch(addr, "/app.txt", &resume(&identity)).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.bytes().as_ref(), tree.gz.as_slice());
    let f = fetch(addr, "/app.txt", &resume(&gz)).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(f.bytes().as_ref(), &tree.gz[10..]);
}

#[tokio::test]
async fn head_gets_the_variants_headers() {
    let tree = tree();
    let addr = server(&tree).await;
    let f = send(
        addr,
        request("HEAD", "/app.txt", &[("accept-encoding", "gzip")]),
    )
    .await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-encoding"), "gzip");
    assert_eq!(f.header("content-length"), tree.gz.len().to_string());
    assert_eq!(f.header("vary"), "accept-encoding");
    assert!(f.bytes().is_empty());
    let f = send(
        addr,
        request(
            "HEAD",
            "/app.txt",
            &[("accept-encoding", "br"), ("range", "bytes=0-3")],
        ),
    )
    .await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        f.header("content-range"),
        format!("bytes 0-3/{}", tree.br.len())
    );
}

#[tokio::test]
async fn a_sidecar_is_never_sent_for_a_missing_original() {
    let tree = tree();
    let addr = server(&tree).await;
    let f = fetch(addr, "/orphan.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
    assert!(f.bytes().is_empty());
    // The sidecar itself is a plain file.
    let f = fetch(addr, "/orphan.txt.gz", &[("accept-encoding", "gzip")]).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-type"), "application/gzip");
    assert!(!f.headers.contains_key("content-encoding"));
    assert_eq!(f.bytes().as_ref(), tree.gz.as_slice());
}

#[cfg(unix)]
#[tokio::test]
async fn a_sidecar_linking_out_of_the_root_is_ignored() {
    let tree = tree();
    let addr = server(&tree).await;
    let f = fetch(addr, "/linked.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(!f.headers.contains_key("content-encoding"));
    assert!(!f.headers.contains_key("vary"));
    assert_eq!(f.bytes().as_ref(), tree.text.as_slice());
}

#[tokio::test]
async fn without_the_option_nothing_changes() {
    let tree = tree();
    let addr = serve(RangeServeLayer::new().layer(ServeDir::new(tree.root.path()))).await;
    let f = fetch(addr, "/app.txt", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(!f.headers.contains_key("content-encoding"));
    assert!(!f.headers.contains_key("vary"));
    assert_eq!(f.bytes().as_ref(), tree.text.as_slice());
}

#[tokio::test]
async fn only_the_chosen_codings_are_looked_for() {
    let tree = tree();
    let dir = ServeDir::new(tree.root.path()).precompressed([Encoding::Gzip]);
    let addr = serve(RangeServeLayer::new().layer(dir)).await;
    let f = fetch(addr, "/app.txt", &[("accept-encoding", "br, gzip;q=0.1")]).await;
    assert_eq!(f.header("content-encoding"), "gzip");
    assert_eq!(f.bytes().as_ref(), tree.gz.as_slice());
}
