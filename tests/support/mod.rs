//! Shared helpers: a real hyper server on 127.0.0.1:0 and a minimal client.
#![allow(dead_code, unreachable_pub)]

pub mod faults;
pub mod moto;
pub mod proxy;
pub mod redis;
pub mod resume;
pub mod rough;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `service` on a fresh loopback port until the test's runtime ends.
pub async fn serve<S, B>(service: S) -> SocketAddr
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// What came back for one request.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body, or the error that cut it off.
    pub body: Result<Bytes, String>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    pub fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("complete body")
    }
}

/// Sends one request over a new HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, request: Request<Empty<Bytes>>) -> Fetched {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| e.to_string());
    Fetched {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A request builder for `GET path` with the given headers.
pub fn get(path: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    request("GET", path, headers)
}

pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Empty::new()).unwrap()
}

/// Writes raw request bytes and reads until the server closes (`Connection: close`).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    response
}

/// Deterministic test content: byte i is a function of i, not periodic with small
/// periods, so a misplaced range shows.
pub fn content(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// One part of a `multipart/byteranges` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub content_type: Option<String>,
    pub content_range: String,
    pub body: Vec<u8>,
}

/// Parses a `multipart/byteranges` body strictly; panics on anything malformed.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart content type");
    let delimiter = format!("--{boundary}");
    let close = format!("\r\n--{boundary}--\r\n");
    assert!(body.ends_with(close.as_bytes()), "closing delimiter");
    let body = &body[..body.len() - close.len()];
    assert!(body.starts_with(delimiter.as_bytes()), "opening delimiter");
    let separator = format!("\r\n{delimiter}");
    let mut parts = Vec::new();
    for raw in split(&body[delimiter.len()..], separator.as_bytes()) {
        let raw = raw.strip_prefix(b"\r\n").expect("CRLF after delimiter");
        let end = find(raw, b"\r\n\r\n").expect("end of part headers");
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut content_type = None;
        let mut content_range = None;
        for line in head.split("\r\n") {
            let (name, value) = line.split_once(": ").expect("header line");
            match name {
                "Content-Type" => content_type = Some(value.to_owned()),
                "Content-Range" => content_range = Some(value.to_owned()),
                other => panic!("unexpected part header {other}"),
            }
        }
        parts.push(Part {
            content_type,
            content_range: content_range.expect("Content-Range in every part"),
            body: raw[end + 4..].to_vec(),
        });
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut haystack: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    while let Some(i) = find(haystack, separator) {
        pieces.push(&haystack[..i]);
        haystack = &haystack[i + separator.len()..];
    }
    pieces.push(haystack);
    pieces
}

/// Parses `bytes first-last/complete` into (first, last, complete).
pub fn parse_content_range(value: &str) -> (u64, u64, u64) {
    let rest = value.strip_prefix("bytes ").expect("bytes unit");
    let (range, complete) = rest.split_once('/').unwrap();
    let (first, last) = range.split_once('-').unwrap();
    (
        first.parse().unwrap(),
        last.parse().unwrap(),
        complete.parse().unwrap(),
    )
}
