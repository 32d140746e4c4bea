//! Hostile requests against a real server of `RangeServeLayer` + `ServeDir`: range
//! amplification, oversized and malformed headers, traversal, method confusion.
//!
//! Every answer is checked for three things: it never carries a byte of the secret
//! beside the root, its body is never more than the file plus multipart overhead,
//! and the server still answers a normal request correctly afterwards. (The plainer
//! cases live in `protocol.rs` and `dir.rs`.)

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use support::{Fetched, content, get, parse_multipart, raw, request, send, serve};
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::source::{RangeSource, ReadFuture};
use tower_range_serve::{DEFAULT_MAX_RANGES, FileResponse, RangeServeLayer, ServeDir};

const LEN: usize = 10_000;
const SECRET: &[u8] = b"TOP-SECRET outside the root \x00\xff";
/// Most bytes one multipart part adds besides its data: the delimiter with a
/// 32-digit boundary, `Content-Type` and `Content-Range` lines (about 130 bytes).
const PART_OVERHEAD: usize = 160;
/// The closing delimiter.
const CLOSE_OVERHEAD: usize = 64;

struct Fixture {
    outside: tempfile::TempDir,
    root: tempfile::TempDir,
    outside_name: String,
    data: Vec<u8>,
    addr: SocketAddr,
}

/// A root with `data.bin` and links out of it; `secret.bin` beside the root.
async fn fixture() -> Fixture {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.bin"), SECRET).unwrap();
    let root = tempfile::tempdir().unwrap();
    let data = content(LEN);
    std::fs::write(root.path().join("data.bin"), &data).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(
            outside.path().join("secret.bin"),
            root.path().join("escape.bin"),
        )
        .unwrap();
        symlink(outside.path(), root.path().join("escape-dir")).unwrap();
    }
    let addr = serve(RangeServeLayer::new().layer(ServeDir::new(root.path()))).await;
    Fixture {
        outside_name: outside
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned(),
        outside,
        root,
        data,
        addr,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Fixture {
    /// Asserts the invariants of every answer, then that the server still works.
    async fn check(&self, what: &str, f: &Fetched) {
        let body = f.bytes();
        assert!(!contains(body, SECRET), "{what}: the secret leaked");
        // Exact, except for HEAD, which announces what GET would send.
        if let Some(length) = f.headers.get("content-length") {
            let length: usize = length.to_str().unwrap().parse().unwrap();
            assert!(length == body.len() || body.is_empty(), "{what}");
        }
        self.check_size(what, f.headers.get("content-type"), body);
        self.still_answers(what).await;
    }

    /// The body is at most the file plus the overhead of its parts.
    fn check_size(&self, what: &str, content_type: Option<&http::HeaderValue>, body: &[u8]) {
        let content_type = content_type.map_or("", |v| v.to_str().unwrap());
        if content_type.starts_with("multipart/byteranges") {
            let parts = parse_multipart(content_type, body);
            assert!(parts.len() <= DEFAULT_MAX_RANGES, "{what}: {}", parts.len());
            let data: usize = parts.iter().map(|part| part.body.len()).sum();
            assert!(data <= LEN, "{what}: {data} bytes of data");
            let bound = data + parts.len() * PART_OVERHEAD + CLOSE_OVERHEAD;
            assert!(body.len() <= bound, "{what}: {} > {bound}", body.len());
        } else {
            assert!(body.len() <= LEN, "{what}: {} bytes", body.len());
        }
    }

    /// A plain range request is still answered correctly.
    async fn still_answers(&self, what: &str) {
        let f = send(self.addr, get("/data.bin", &[("range", "bytes=10-19")])).await;
        assert_eq!(f.status, StatusCode::PARTIAL_CONTENT, "after {what}");
        assert_eq!(&f.bytes()[..], &self.data[10..20], "after {what}");
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Fetched {
        send(self.addr, get(path, headers)).await
    }

    /// Sends a raw request (with `Connection: close`) and checks the answer the same
    /// way; returns the status code and the body.
    async fn raw(&self, what: &str, head: &[u8]) -> (u16, Vec<u8>) {
        let response = raw(self.addr, head).await;
        assert!(!contains(&response, SECRET), "{what}: the secret leaked");
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{what}: no response head"))
            + 4;
        let head = std::str::from_utf8(&response[..end]).unwrap();
        let status = head[9..12].parse().unwrap();
        let body = response[end..].to_vec();
        let content_type = head
            .lines()
            .find_map(|line| line.strip_prefix("content-type: "))
            .map(|v| http::HeaderValue::from_str(v).unwrap());
        self.check_size(what, content_type.as_ref(), &body);
        self.still_answers(what).await;
        (status, body)
    }
}

/// Sends a request the server refuses before reading all of it: the answer, or
/// the error if the connection was reset before it could be read.
async fn refused(addr: SocketAddr, request: Vec<u8>) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    // The write fails once the server has closed; the answer may be there anyway.
    let writer = tokio::spawn(async move { write.write_all(&request).await });
    let mut response = Vec::new();
    let result = read.read_to_end(&mut response).await;
    let _ = writer.await;
    match result {
        Err(_) if !response.is_empty() => Ok(response),
        Err(e) => Err(e),
        Ok(_) => Ok(response),
    }
}

/// `GET /data.bin` with `lines` (each ending in CRLF) added to the head.
fn raw_get(lines: &[u8]) -> Vec<u8> {
    let mut request = b"GET /data.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
    request.extend_from_slice(lines);
    request.extend_from_slice(b"\r\n");
    request
}

fn ranges(specs: impl IntoIterator<Item = String>) -> String {
    format!("bytes={}", specs.into_iter().collect::<Vec<_>>().join(","))
}

#[tokio::test]
async fn range_amplification_never_sends_more_than_the_file() {
    let fx = fixture().await;
    let last = LEN - 1;
    let cases: Vec<(&str, String, StatusCode)> = vec![
        // More than `max_ranges` (100): ignored, whole file once.
        (
            "10,000 disjoint ranges",
            ranges((0..10_000).map(|i| format!("{i}-{i}"))),
            StatusCode::OK,
        ),
        (
            "101 disjoint ranges",
            ranges((0..101).map(|i| format!("{}-{}", 2 * i, 2 * i))),
            StatusCode::OK,
        ),
        (
            "1,000 overlapping suffixes",
            ranges((0..1000).map(|_| "-5000".to_owned())),
            StatusCode::OK,
        ),
        // Within the cap but adding up to more than the file: ignored.
        (
            "100 whole-file ranges",
            ranges((0..100).map(|_| "0-".to_owned())),
            StatusCode::OK,
        ),
        (
            "two halves and a bit",
            format!("bytes=0-5000,4999-{last}"),
            StatusCode::OK,
        ),
        // Within the cap and the file: merged, each byte sent once.
        (
            "100 identical small ranges",
            ranges((0..100).map(|_| "0-99".to_owned())),
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            "100 disjoint ranges",
            ranges((0..100).map(|i| format!("{}-{}", 2 * i, 2 * i))),
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            "50 nested ranges",
            ranges((0..50).map(|i| format!("{i}-{}", 99 - i))),
            StatusCode::PARTIAL_CONTENT,
        ),
    ];
    for (what, value, status) in cases {
        let f = fx.get("/data.bin", &[("range", &value)]).await;
        assert_eq!(f.status, status, "{what}");
        if status == StatusCode::OK {
            assert_eq!(&f.bytes()[..], &fx.data[..], "{what}");
        }
        fx.check(what, &f).await;
    }
    // Merged: a single part.
    let f = fx
        .get(
            "/data.bin",
            &[("range", &ranges((0..100).map(|_| "0-99".to_owned())))],
        )
        .await;
    assert_eq!(f.header("content-range"), format!("bytes 0-99/{LEN}"));
}

#[tokio::test]
async fn numbers_too_long_or_too_large_neither_panic_nor_wrap() {
    let fx = fixture().await;
    let forty = "9".repeat(40);
    let thirty = "9".repeat(30);
    let cases = [
        // More than 30 digits: the header is refused and ignored.
        (format!("bytes=0-{forty}"), StatusCode::OK),
        (format!("bytes={forty}-"), StatusCode::OK),
        (format!("bytes=-{forty}"), StatusCode::OK),
        (format!("bytes=0-{}", "0".repeat(39) + "1"), StatusCode::OK),
        // Up to 30 digits, beyond u64: saturated, then clamped or unsatisfiable.
        (format!("bytes=0-{thirty}"), StatusCode::PARTIAL_CONTENT),
        (format!("bytes=-{thirty}"), StatusCode::PARTIAL_CONTENT),
        (
            format!("bytes={thirty}-"),
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        (
            format!("bytes={}-{}", u64::MAX, u64::MAX),
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        // Signs, non-ASCII digits, empty members beyond the parser's tolerance.
        ("bytes=-5-10".to_owned(), StatusCode::OK),
        ("bytes=+1-2".to_owned(), StatusCode::OK),
        ("bytes=\u{ff11}-2".to_owned(), StatusCode::OK),
        (format!("bytes={}0-1", ",".repeat(20)), StatusCode::OK),
        ("bytes=".to_owned(), StatusCode::OK),
        ("bytes=,,,".to_owned(), StatusCode::OK),
    ];
    for (value, status) in cases {
        let f = fx.get("/data.bin", &[("range", &value)]).await;
        assert_eq!(f.status, status, "{value}");
        match status {
            StatusCode::OK => assert_eq!(&f.bytes()[..], &fx.data[..], "{value}"),
            StatusCode::PARTIAL_CONTENT => {
                assert_eq!(f.header("content-range"), format!("bytes 0-9999/{LEN}"));
            }
            _ => assert_eq!(f.header("content-range"), format!("bytes */{LEN}")),
        }
        fx.check(&value, &f).await;
    }
}

#[tokio::test]
async fn oversized_heads_are_refused_or_ignored_and_the_server_keeps_answering() {
    let fx = fixture().await;
    // 64 KiB of small ranges in one value: within hyper's head limit, over
    // `max_ranges`, so ignored.
    let mut value = "bytes=".to_owned();
    let mut i = 0;
    while value.len() < 64 * 1024 {
        value.push_str(&format!("{},", 2 * i));
        i += 1;
    }
    value.truncate(64 * 1024);
    let value = value.trim_end_matches(',');
    let line = format!("Range: {value}\r\n");
    let (status, body) = fx.raw("64 KiB Range", &raw_get(line.as_bytes())).await;
    assert_eq!(status, 200);
    assert_eq!(body, fx.data);

    // 1 MiB: beyond hyper's head buffer (about 400 KiB), refused with 431. The
    // server closes without reading the rest, so the client may see a reset
    // instead of the answer.
    let line = format!("Range: bytes=0-{}\r\n", "0".repeat(1024 * 1024));
    match refused(fx.addr, raw_get(line.as_bytes())).await {
        Ok(response) => assert!(
            response.starts_with(b"HTTP/1.1 431 ") && response.ends_with(b"\r\n\r\n"),
            "{}",
            response.escape_ascii()
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    fx.still_answers("1 MiB Range").await;

    // 98 Range lines (100 header lines with Host and Connection): several
    // values make the field invalid, so it is ignored.
    let lines = "Range: bytes=0-0\r\n".repeat(98);
    let (status, body) = fx.raw("98 Range lines", &raw_get(lines.as_bytes())).await;
    assert_eq!(status, 200);
    assert_eq!(body, fx.data);

    // 100 Range lines: more header lines than hyper's default 100, refused.
    let lines = "Range: bytes=0-0\r\n".repeat(100);
    let (status, body) = fx.raw("100 Range lines", &raw_get(lines.as_bytes())).await;
    assert_eq!(status, 431);
    assert!(body.is_empty());
}

#[tokio::test]
async fn non_utf8_and_control_bytes_in_range_are_ignored_or_refused() {
    let fx = fixture().await;
    for value in [
        &b"bytes=\x80-1"[..],
        b"bytes=0-1,\xc0\xae",
        b"bytes=\xef\xbc\x91-2",
        b"\xff\xfe",
    ] {
        let mut line = b"Range: ".to_vec();
        line.extend_from_slice(value);
        line.extend_from_slice(b"\r\n");
        let what = format!("Range: {}", value.escape_ascii());
        let (status, body) = fx.raw(&what, &raw_get(&line)).await;
        assert_eq!(status, 200, "{what}");
        assert_eq!(body, fx.data, "{what}");
    }
    // Control characters are not field content: hyper refuses the request.
    for value in [&b"bytes=0-1\x01"[..], b"bytes=0\x00-1", b"bytes=0-1\x7f"] {
        let mut line = b"Range: ".to_vec();
        line.extend_from_slice(value);
        line.extend_from_slice(b"\r\n");
        let what = format!("Range: {}", value.escape_ascii());
        let (status, body) = fx.raw(&what, &raw_get(&line)).await;
        assert_eq!(status, 400, "{what}");
        assert!(body.is_empty(), "{what}");
    }
}

#[tokio::test]
async fn traversal_never_reaches_the_secret_even_with_ranges_or_head() {
    let fx = fixture().await;
    let out = &fx.outside_name;
    let secret = fx.outside.path().join("secret.bin");
    let paths = [
        format!("/%2e%2e/{out}/secret.bin"),
        format!("/%2E%2e%2f{out}%2fsecret.bin"),
        format!("/..%2f{out}/secret.bin"),
        format!("/..%5c{out}%5csecret.bin"),
        format!("/%c0%ae%c0%ae/{out}/secret.bin"),
        format!("/%c0%ae%c0%ae%c0%af{out}%c0%afsecret.bin"),
        format!("/%252e%252e/{out}/secret.bin"),
        format!("/data.bin%00/../../{out}/secret.bin"),
        format!("/escape-dir/%2e%2e/{out}/secret.bin"),
        format!("/{}", secret.display()),
        format!("//{}", secret.display()),
        "/escape.bin".to_owned(),
        "/escape-dir/secret.bin".to_owned(),
        "/./escape.bin".to_owned(),
        "/data.bin/../escape.bin".to_owned(),
    ];
    for path in &paths {
        for (method, headers) in [
            ("GET", &[][..]),
            ("GET", &[("range", "bytes=0-5")][..]),
            ("HEAD", &[("range", "bytes=-1")][..]),
        ] {
            let f = send(fx.addr, request(method, path, headers)).await;
            let what = format!("{method} {path} {headers:?}");
            assert_eq!(f.status, StatusCode::NOT_FOUND, "{what}");
            assert!(f.headers.get("content-range").is_none(), "{what}");
            fx.check(&what, &f).await;
        }
    }
    // Request targets a client library would normalise or refuse to send.
    for target in [
        format!("/../{out}/secret.bin"),
        format!("/data.bin/../../{out}/secret.bin"),
        format!("/..\\{out}\\secret.bin"),
        format!("http://x/../{out}/secret.bin"),
        format!("http://x/%2e%2e/{out}/secret.bin"),
    ] {
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-5\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = fx.raw(&target, head.as_bytes()).await;
        assert!(status == 404 || status == 400, "{target}: {status}");
        assert!(body.is_empty(), "{target}");
    }
}

#[tokio::test]
async fn range_on_other_methods_never_gets_206() {
    let fx = fixture().await;
    // A handler that answers every method with the file: the layer sends it whole.
    let path = fx.root.path().join("data.bin");
    let handler =
        serve(
            RangeServeLayer::new().layer(service_fn(move |_req| {
                let path = path.clone();
                async move {
                    Ok::<_, Infallible>(FileResponse::open(&path).await.unwrap().into_response())
                }
            })),
        )
        .await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"] {
        let headers = [("range", "bytes=0-9,20-29"), ("if-range", "\"x\"")];
        let f = send(fx.addr, request(method, "/data.bin", &headers)).await;
        assert_eq!(f.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        fx.check(method, &f).await;

        let f = send(handler, request(method, "/data.bin", &[headers[0]])).await;
        assert_eq!(f.status, StatusCode::OK, "{method}");
        assert!(f.headers.get("content-range").is_none(), "{method}");
        assert_eq!(&f.bytes()[..], &fx.data[..], "{method}");
        fx.check(method, &f).await;
    }
}

/// Counts the bytes asked of it; serves zeros.
#[derive(Debug)]
struct Counting {
    len: u64,
    read: Arc<AtomicU64>,
    /// Reads wait once before completing, as reads from disk do.
    slow: bool,
}

impl RangeSource for Counting {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(self: Arc<Self>, _offset: u64, len: usize) -> ReadFuture {
        self.read.fetch_add(len as u64, Ordering::SeqCst);
        let chunk = Bytes::from(vec![0; len]);
        match self.slow {
            true => Box::pin(async move {
                tokio::task::yield_now().await;
                Ok(chunk)
            }),
            false => Box::pin(std::future::ready(Ok(chunk))),
        }
    }
}

#[tokio::test]
async fn a_stalled_body_holds_at_most_one_chunk_read_ahead() {
    const CHUNK: u64 = 64 * 1024;
    for slow in [false, true] {
        let read = Arc::new(AtomicU64::new(0));
        let counter = read.clone();
        let service = RangeServeLayer::new()
            .chunk_size(CHUNK as usize)
            .layer(service_fn(move |_req| {
                let source = Counting {
                    len: 1 << 30,
                    read: counter.clone(),
                    slow,
                };
                async move { Ok::<_, Infallible>(FileResponse::from_source(source).into_response()) }
            }));
        let mut body = service.oneshot(get("/", &[])).await.unwrap().into_body();
        // The client takes three frames, then stops reading: the body is not
        // polled again, and reads happen only when it is.
        let mut taken = 0;
        for _ in 0..3 {
            let frame = body.frame().await.unwrap().unwrap();
            let len = frame.into_data().unwrap().len() as u64;
            // A download's first frames are small (8 KiB: the ramp), so a
            // client that never reads leaves little held for it.
            assert_eq!(len, 8 * 1024);
            taken += len;
        }
        let read = read.load(Ordering::SeqCst);
        // Reads that complete at once (cached pages) are made when asked for;
        // reads that wait (disk) one frame ahead.
        let ahead = u64::from(slow) * 8 * 1024;
        assert_eq!(read, taken + ahead, "slow reads: {slow}");
    }
}
