//! RFC 9110 behaviour over a real hyper server, through both the directory service
//! and a handler returning `FileResponse`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use http::{Request, Response, StatusCode};
use support::{Fetched, content, parse_content_range, parse_multipart, request, send, serve};
use tower::{Layer, service_fn};
use tower_range_serve::{FileResponse, RangeBody, RangeServeLayer, ServeDir};

const LEN: usize = 10_000;

struct Fixture {
    _dir: tempfile::TempDir,
    data: Vec<u8>,
    /// The same files served by `ServeDir` and by a handler.
    servers: [SocketAddr; 2],
}

impl Fixture {
    async fn new() -> Self {
        Self::with_layer(RangeServeLayer::new()).await
    }

    async fn with_layer(layer: RangeServeLayer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = content(LEN);
        let path = dir.path().join("data.bin");
        std::fs::write(&path, &data).unwrap();
        // Old enough for Last-Modified to be a strong validator.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        std::fs::write(dir.path().join("empty.txt"), b"").unwrap();
        std::fs::write(dir.path().join("hello.txt"), b"hello world").unwrap();

        let root = dir.path().to_owned();
        let dir_server = serve(layer.layer(ServeDir::new(&root))).await;
        let handler_server = serve(layer.layer(service_fn(move |req: Request<_>| {
            let path: PathBuf = root.join(req.uri().path().trim_start_matches('/'));
            handler(path)
        })))
        .await;
        Self {
            _dir: dir,
            data,
            servers: [dir_server, handler_server],
        }
    }

    /// Sends the same request to both servers, checks they agree, and returns one answer.
    async fn fetch(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Fetched {
        let a = send(self.servers[0], request(method, path, headers)).await;
        let b = send(self.servers[1], request(method, path, headers)).await;
        assert_eq!(a.status, b.status, "{method} {path} {headers:?}");
        assert_eq!(a.body.is_ok(), b.body.is_ok());
        let strip = |f: &Fetched| {
            let mut h = f.headers.clone();
            h.remove("date");
            h.remove("content-type"); // multipart boundaries differ
            h
        };
        assert_eq!(strip(&a), strip(&b), "{method} {path} {headers:?}");
        if a.headers
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap().starts_with("multipart"))
        {
            return a;
        }
        assert_eq!(a.body, b.body);
        a
    }

    async fn get(&self, headers: &[(&str, &str)]) -> Fetched {
        self.fetch("GET", "/data.bin", headers).await
    }

    async fn etag(&self) -> String {
        self.get(&[]).await.header("etag").to_owned()
    }

    async fn last_modified(&self) -> String {
        self.get(&[]).await.header("last-modified").to_owned()
    }
}

async fn handler(path: PathBuf) -> Result<Response<RangeBody>, Infallible> {
    Ok(match FileResponse::open(&path).await {
        Ok(file) => file.into_response(),
        Err(_) => {
            let mut response = Response::new(RangeBody::default());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    })
}

fn assert_partial(f: &Fetched, data: &[u8], first: u64, last: u64) {
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        f.header("content-range"),
        format!("bytes {first}-{last}/{}", data.len())
    );
    assert_eq!(f.header("content-length"), (last - first + 1).to_string());
    assert_eq!(f.header("accept-ranges"), "bytes");
    assert_eq!(&f.bytes()[..], &data[first as usize..=last as usize]);
}

fn assert_full(f: &Fetched, data: &[u8]) {
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-length"), data.len().to_string());
    assert_eq!(f.header("accept-ranges"), "bytes");
    assert!(f.headers.get("content-range").is_none());
    assert_eq!(&f.bytes()[..], data);
}

#[tokio::test]
async fn plain_get_is_the_whole_file_with_validators() {
    let fx = Fixture::new().await;
    let f = fx.get(&[]).await;
    assert_full(&f, &fx.data);
    assert_eq!(f.header("content-type"), "application/octet-stream");
    assert!(f.header("etag").starts_with('"'));
    assert!(f.header("last-modified").ends_with("GMT"));
}

#[tokio::test]
async fn single_ranges_of_every_form() {
    let fx = Fixture::new().await;
    let last = LEN as u64 - 1;
    assert_partial(&fx.get(&[("range", "bytes=0-0")]).await, &fx.data, 0, 0);
    assert_partial(
        &fx.get(&[("range", "bytes=100-199")]).await,
        &fx.data,
        100,
        199,
    );
    assert_partial(
        &fx.get(&[("range", "bytes=9000-")]).await,
        &fx.data,
        9000,
        last,
    );
    assert_partial(
        &fx.get(&[("range", "bytes=-500")]).await,
        &fx.data,
        9500,
        last,
    );
    assert_partial(&fx.get(&[("range", "BYTES=5-9")]).await, &fx.data, 5, 9);
}

#[tokio::test]
async fn end_past_eof_is_clamped_and_long_suffix_is_the_whole_file() {
    let fx = Fixture::new().await;
    let last = LEN as u64 - 1;
    assert_partial(
        &fx.get(&[("range", "bytes=9990-20000")]).await,
        &fx.data,
        9990,
        last,
    );
    assert_partial(
        &fx.get(&[("range", "bytes=-20000")]).await,
        &fx.data,
        0,
        last,
    );
    let huge = "bytes=0-99999999999999999999999999";
    assert_partial(&fx.get(&[("range", huge)]).await, &fx.data, 0, last);
}

#[tokio::test]
async fn unsatisfiable_range_is_416_with_the_length() {
    let fx = Fixture::new().await;
    for value in ["bytes=10000-", "bytes=20000-30000", "bytes=-0"] {
        let f = fx.get(&[("range", value)]).await;
        assert_eq!(f.status, StatusCode::RANGE_NOT_SATISFIABLE, "{value}");
        assert_eq!(f.header("content-range"), "bytes */10000");
        assert_eq!(f.header("accept-ranges"), "bytes");
        assert_eq!(f.header("content-length"), "0");
        assert!(f.bytes().is_empty());
    }
}

#[tokio::test]
async fn invalid_or_foreign_ranges_are_ignored() {
    let fx = Fixture::new().await;
    for value in [
        "bytes=",
        "bytes=,,,",
        "bytes=5-1",
        "bytes=abc",
        "items=0-5",
        "bytes 0-5",
        "bytes=0-1;2-3",
    ] {
        assert_full(&fx.get(&[("range", value)]).await, &fx.data);
    }
}

#[tokio::test]
async fn empty_file_is_200_whatever_the_range() {
    let fx = Fixture::new().await;
    for value in ["bytes=0-0", "bytes=-1", "bytes=0-", "bytes=5-10"] {
        let f = fx.fetch("GET", "/empty.txt", &[("range", value)]).await;
        assert_full(&f, b"");
    }
}

#[tokio::test]
async fn several_ranges_are_multipart_with_exact_length() {
    let fx = Fixture::new().await;
    let f = fx.get(&[("range", "bytes=0-9, 100-149, -5")]).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert!(f.headers.get("content-range").is_none());
    assert_eq!(f.header("content-length"), f.bytes().len().to_string());
    let parts = parse_multipart(f.header("content-type"), f.bytes());
    let expected = [(0, 9), (100, 149), (9995, 9999)];
    assert_eq!(parts.len(), expected.len());
    for (part, (first, last)) in parts.iter().zip(expected) {
        assert_eq!(
            part.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(
            parse_content_range(&part.content_range),
            (first, last, LEN as u64)
        );
        assert_eq!(part.body, &fx.data[first as usize..=last as usize]);
    }
}

#[tokio::test]
async fn multipart_boundaries_are_random() {
    let fx = Fixture::new().await;
    let a = fx.get(&[("range", "bytes=0-1,5-6")]).await;
    let b = fx.get(&[("range", "bytes=0-1,5-6")]).await;
    assert_ne!(a.header("content-type"), b.header("content-type"));
}

#[tokio::test]
async fn overlapping_and_adjacent_ranges_are_coalesced() {
    let fx = Fixture::new().await;
    assert_partial(
        &fx.get(&[("range", "bytes=0-9,5-19,20-29")]).await,
        &fx.data,
        0,
        29,
    );
    let f = fx.get(&[("range", "bytes=50-59,0-9,5-12")]).await;
    let parts = parse_multipart(f.header("content-type"), f.bytes());
    let ranges: Vec<_> = parts.iter().map(|p| p.content_range.as_str()).collect();
    assert_eq!(ranges, ["bytes 50-59/10000", "bytes 0-12/10000"]);
}

#[tokio::test]
async fn ranges_adding_up_to_more_than_the_file_get_the_whole_file() {
    let fx = Fixture::new().await;
    assert_full(&fx.get(&[("range", "bytes=0-,0-")]).await, &fx.data);
    let thousand_overlapping = vec!["0-"; 1000].join(",");
    let value = format!("bytes={thousand_overlapping}");
    assert_full(&fx.get(&[("range", &value)]).await, &fx.data);
}

#[tokio::test]
async fn more_ranges_than_the_cap_get_the_whole_file() {
    let fx = Fixture::with_layer(RangeServeLayer::new().max_ranges(2)).await;
    assert_eq!(
        fx.get(&[("range", "bytes=0-0,2-2")]).await.status,
        StatusCode::PARTIAL_CONTENT
    );
    assert_full(&fx.get(&[("range", "bytes=0-0,2-2,4-4")]).await, &fx.data);
    let ten_thousand: Vec<String> = (0..10_000).map(|i| format!("{i}-{i}")).collect();
    let value = format!("bytes={}", ten_thousand.join(","));
    assert_full(&fx.get(&[("range", &value)]).await, &fx.data);
}

#[tokio::test]
async fn head_mirrors_get_without_a_body() {
    let fx = Fixture::new().await;
    for headers in [
        vec![],
        vec![("range", "bytes=0-9")],
        vec![("range", "bytes=0-9,20-29")],
        vec![("range", "bytes=20000-")],
    ] {
        let get = fx.fetch("GET", "/data.bin", &headers).await;
        let head = fx.fetch("HEAD", "/data.bin", &headers).await;
        assert_eq!(get.status, head.status);
        for name in [
            "content-length",
            "content-range",
            "accept-ranges",
            "etag",
            "last-modified",
        ] {
            assert_eq!(
                get.headers.get(name),
                head.headers.get(name),
                "{name} {headers:?}"
            );
        }
        assert!(head.bytes().is_empty());
    }
}

#[tokio::test]
async fn if_range_with_current_strong_etag_serves_the_range() {
    let fx = Fixture::new().await;
    let etag = fx.etag().await;
    let f = fx
        .get(&[("range", "bytes=10-19"), ("if-range", &etag)])
        .await;
    assert_partial(&f, &fx.data, 10, 19);
}

#[tokio::test]
async fn if_range_with_another_or_weak_etag_serves_the_whole_file() {
    let fx = Fixture::new().await;
    let etag = fx.etag().await;
    let weak = format!("W/{etag}");
    for if_range in ["\"old-version\"", weak.as_str(), "garbage"] {
        let f = fx
            .get(&[("range", "bytes=10-19"), ("if-range", if_range)])
            .await;
        assert_full(&f, &fx.data);
    }
}

#[tokio::test]
async fn if_range_date_must_equal_last_modified() {
    let fx = Fixture::new().await;
    let last_modified = fx.last_modified().await;
    let f = fx
        .get(&[("range", "bytes=10-19"), ("if-range", &last_modified)])
        .await;
    assert_partial(&f, &fx.data, 10, 19);
    let other = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_full(
        &fx.get(&[("range", "bytes=10-19"), ("if-range", other)])
            .await,
        &fx.data,
    );
}

#[tokio::test]
async fn if_range_without_range_is_ignored() {
    let fx = Fixture::new().await;
    assert_full(&fx.get(&[("if-range", "\"old\"")]).await, &fx.data);
}

#[tokio::test]
async fn if_none_match_gives_304_with_validators_only() {
    let fx = Fixture::new().await;
    let etag = fx.etag().await;
    for value in [
        etag.clone(),
        format!("W/{etag}"),
        "*".to_owned(),
        format!("\"x\", {etag}"),
    ] {
        let f = fx
            .get(&[("if-none-match", &value), ("range", "bytes=0-1")])
            .await;
        assert_eq!(f.status, StatusCode::NOT_MODIFIED, "{value}");
        assert_eq!(f.header("etag"), etag);
        assert!(f.headers.contains_key("last-modified"));
        assert!(f.headers.get("content-range").is_none());
        assert!(f.headers.get("content-type").is_none());
        assert!(f.bytes().is_empty());
    }
    assert_full(&fx.get(&[("if-none-match", "\"other\"")]).await, &fx.data);
}

#[tokio::test]
async fn if_modified_since_gives_304_unless_modified_after() {
    let fx = Fixture::new().await;
    let last_modified = fx.last_modified().await;
    let f = fx.get(&[("if-modified-since", &last_modified)]).await;
    assert_eq!(f.status, StatusCode::NOT_MODIFIED);
    let long_ago = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_full(&fx.get(&[("if-modified-since", long_ago)]).await, &fx.data);
    assert_full(
        &fx.get(&[("if-modified-since", "not a date")]).await,
        &fx.data,
    );
    // If-None-Match wins over If-Modified-Since.
    let f = fx
        .get(&[
            ("if-modified-since", &last_modified),
            ("if-none-match", "\"x\""),
        ])
        .await;
    assert_full(&f, &fx.data);
}

#[tokio::test]
async fn if_match_failure_is_412() {
    let fx = Fixture::new().await;
    let etag = fx.etag().await;
    for value in ["\"other\"".to_owned(), format!("W/{etag}")] {
        let f = fx
            .get(&[("if-match", &value), ("range", "bytes=0-1")])
            .await;
        assert_eq!(f.status, StatusCode::PRECONDITION_FAILED, "{value}");
        assert!(f.bytes().is_empty());
    }
    assert_partial(
        &fx.get(&[("if-match", &etag), ("range", "bytes=0-1")]).await,
        &fx.data,
        0,
        1,
    );
    assert_full(&fx.get(&[("if-match", "*")]).await, &fx.data);
}

#[tokio::test]
async fn if_unmodified_since_failure_is_412() {
    let fx = Fixture::new().await;
    let long_ago = "Sun, 06 Nov 1994 08:49:37 GMT";
    let f = fx.get(&[("if-unmodified-since", long_ago)]).await;
    assert_eq!(f.status, StatusCode::PRECONDITION_FAILED);
    let last_modified = fx.last_modified().await;
    assert_full(
        &fx.get(&[("if-unmodified-since", &last_modified)]).await,
        &fx.data,
    );
    assert_full(&fx.get(&[("if-unmodified-since", "soon")]).await, &fx.data);
}

#[tokio::test]
async fn range_on_other_methods_is_never_served() {
    let fx = Fixture::new().await;
    // The directory service refuses them; a handler's file is sent whole.
    let dir = send(
        fx.servers[0],
        request("POST", "/data.bin", &[("range", "bytes=0-1")]),
    )
    .await;
    assert_eq!(dir.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(dir.header("allow"), "GET, HEAD");
    let handler = send(
        fx.servers[1],
        request("PUT", "/data.bin", &[("range", "bytes=0-1")]),
    )
    .await;
    assert_eq!(handler.status, StatusCode::OK);
    assert!(handler.headers.get("content-range").is_none());
    assert_eq!(&handler.bytes()[..], &fx.data[..]);
}

#[tokio::test]
async fn several_range_lines_and_non_utf8_ranges_are_ignored() {
    let fx = Fixture::new().await;
    for addr in fx.servers {
        for headers in [
            &b"Range: bytes=0-1\r\nRange: bytes=2-3\r\n"[..],
            &b"Range: bytes=0-1\xff\r\n"[..],
        ] {
            let mut request =
                b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
            request.extend_from_slice(headers);
            request.extend_from_slice(b"\r\n");
            let response = String::from_utf8(support::raw(addr, &request).await).unwrap();
            assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
            assert!(response.ends_with("\r\n\r\nhello world"), "{response}");
        }
    }
}

#[tokio::test]
async fn a_huge_range_header_is_ignored_and_the_server_keeps_answering() {
    let fx = Fixture::new().await;
    let value = format!("bytes={}", "1".repeat(60 * 1024));
    assert_full(&fx.get(&[("range", &value)]).await, &fx.data);
    assert_partial(&fx.get(&[("range", "bytes=1-2")]).await, &fx.data, 1, 2);
}

#[tokio::test]
async fn large_files_stream_in_chunks_with_the_right_bytes() {
    let fx = Fixture::with_layer(RangeServeLayer::new().chunk_size(999)).await;
    assert_full(&fx.get(&[]).await, &fx.data);
    assert_partial(
        &fx.get(&[("range", "bytes=1-8888")]).await,
        &fx.data,
        1,
        8888,
    );
}
