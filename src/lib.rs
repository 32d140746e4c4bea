//! Tower middleware that makes any file-backed HTTP route a correct, resumable
//! download.
//!
//! Handlers return a [`FileResponse`] (a file, an in-memory [`Bytes`](bytes::Bytes),
//! or any [`RangeSource`](source::RangeSource)); [`RangeServeLayer`] reads `Range`,
//! `If-Range` and the other preconditions of RFC 9110 from the request and answers
//! 200, 206 (one range or `multipart/byteranges`), 304, 412 or 416. The body reads
//! only the bytes it sends, with positional reads in bounded chunks, so a range at
//! the end of a huge file starts at once and the body holds about one chunk per
//! download, more only while reads wait for the disk or an object store (reads
//! ahead within [`RangeServeLayer::read_ahead`], 1 MiB; the server's own write
//! buffer comes on top; see [`RangeServeLayer::chunk_size`]). Responses that are not file-backed pass through untouched: status,
//! headers, body frames and trailers (gRPC keeps working).
//!
//! [`ServeDir`] maps request paths to files under a root, for when there is no
//! handler of one's own: precompressed variants chosen by `Accept-Encoding`
//! (range-served on their encoded bytes), index files, directory listings (HTML
//! or JSON) and a fallback service. With the `object-store` feature,
//! `objects::ServeObjects` does the same for the objects of a bucket (S3, GCS,
//! Azure Blob, R2, …).
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_range_serve::{FileResponse, RangeServeLayer};
//!
//! async fn report() -> Result<FileResponse, axum::http::StatusCode> {
//!     FileResponse::open("reports/latest.pdf")
//!         .await
//!         .map(|file| file.attachment(Some("report.pdf")))
//!         .map_err(|_| axum::http::StatusCode::NOT_FOUND)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/report", get(report))
//!     .route("/health", get(|| async { "ok" })) // passed through untouched
//!     .layer(RangeServeLayer::new());
//! # let _ = app;
//! ```
//!
//! (`IntoResponse` for [`FileResponse`] needs the `axum` feature; without it, use
//! [`FileResponse::into_response`] to get an `http::Response`.)
//!
//! # Behaviour
//!
//! For a `GET` of a file-backed response with status 200 (`HEAD` gets exactly the
//! same status and headers, without a body):
//!
//! | request | answer |
//! |---|---|
//! | no `Range` | 200, whole file, `Accept-Ranges: bytes` |
//! | `Range: bytes=0-99`, `bytes=100-`, `bytes=-100` | 206, `Content-Range: bytes 0-99/len` |
//! | several ranges | 206 `multipart/byteranges` in the order asked, overlapping and adjacent ranges merged |
//! | ranges adding up to more than the file, or more than [`max_ranges`](RangeServeLayer::max_ranges) | 200, whole file |
//! | no range overlaps the file | 416, `Content-Range: bytes */len` |
//! | invalid `Range`, another unit, several `Range` lines | 200, whole file (RFC 9110 §14.2) |
//! | any `Range` on an empty file | 200, `Content-Length: 0` |
//! | `If-Range` with the current strong `ETag`, or exactly the `Last-Modified` date | the range |
//! | `If-Range` with anything else (another or a weak `ETag`, another date) | 200, whole file |
//! | `If-Match` not matching (strong comparison) | 412 |
//! | `If-Unmodified-Since` before `Last-Modified` (without `If-Match`) | 412 |
//! | `If-None-Match` matching (weak comparison, or `*`) | 304 with `ETag` and `Last-Modified` |
//! | `If-Modified-Since` at or after `Last-Modified` (without `If-None-Match`) | 304 |
//!
//! Preconditions are evaluated in the order of RFC 9110 §13.2.2, before `Range`.
//! Every 200 and 206 carries an exact `Content-Length`. Validators are read from the
//! response's `ETag` and `Last-Modified` headers, so a handler can set its own.
//!
//! Other methods are not range-processed (RFC 9110 §14.2): a file-backed response to
//! `POST` is sent whole. A file-backed response with another status than 200 (say a
//! custom 404 page) is sent as it is.
//!
//! # Bandwidth
//!
//! Each response can have its own rate (after an unthrottled start), all responses
//! of one client can share a rate fairly, and a layer can cap its total; a policy
//! function picks them per request and a handler can override a response's own
//! rate. Limits can change while streams run, clients can be capped in concurrent
//! streams (429), and a client that stops reading never slows the others. See
//! [`throttle`] for the semantics, precedence, bursts and precision.
//!
//! Builder calls never change another layer: each
//! [`client_rate`](RangeServeLayer::client_rate) or
//! [`total_rate`](RangeServeLayer::total_rate) gives the layer limits of its own,
//! clones share the limits they were cloned with, and
//! [`with_bandwidth_control`](RangeServeLayer::with_bandwidth_control) shares them
//! on purpose (see [`BandwidthControl`]). A limit left unlimited costs nothing.
//!
//! Behind a load balancer, the `redis` feature shares the client and total
//! limits across replicas: `RangeServeLayer::redis` with a
//! `throttle::RedisLimits` (leases of 100 ms of a rate, local pacing, a fallback
//! while Redis is away).
//!
//! ```
//! use tower_range_serve::{Bandwidth, RangeServeLayer};
//!
//! let layer = RangeServeLayer::new()
//!     .rate(Bandwidth::mib(8))          // each download
//!     .rate_after(4 << 20)              // after 4 MiB at full speed
//!     .client_rate(Bandwidth::mib(16))  // all downloads of one client
//!     .max_streams_per_client(8)        // a 9th gets 429
//!     .total_rate(Bandwidth::mib(500)); // everything together
//! # let _ = layer;
//! ```
//!
//! # Lifecycle
//!
//! A download that loses its client stops reading at once and releases its file
//! and its share of every limit. [`lifecycle::Shutdown`] refuses new downloads
//! (503), lets running ones finish within a grace period, then cuts them.
//! [`lifecycle::Observer`] hears every answer and each download's start,
//! progress and end. A file that changes while it is sent ends its download with
//! an error instead of mixing versions. [`lifecycle::Connections`] (a listener for
//! `axum::serve` and hyper-util) disconnects clients that accept no byte for too
//! long and closes every connection still open when the grace period ends, so a
//! client that stopped reading never holds the shutdown open. See [`lifecycle`].
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use axum::Router;
//! use tower_range_serve::{lifecycle::Connections, RangeServeLayer, ServeDir};
//!
//! let layer = RangeServeLayer::new();
//! let shutdown = layer.shutdown_handle();
//! let app = Router::new().fallback_service(ServeDir::new("downloads")).layer(layer);
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let listener = Connections::new(tcp, &shutdown).idle_timeout(Duration::from_secs(60));
//! axum::serve(listener.axum(), app.into_make_service_with_connect_info::<SocketAddr>())
//!     .with_graceful_shutdown(async move {
//!         // tokio::signal::ctrl_c().await.unwrap();
//!         shutdown.begin(Duration::from_secs(10));
//!     })
//!     .await
//!     .unwrap();
//! # });
//! ```
//!
//! # Examples
//!
//! Runnable with `cargo run --example NAME`, each tested in `tests/`:
//! `serve` (the demo download server with every flag), `axum` (per-route policy:
//! a free tier per IP, a premium tier per user behind a bearer token, JSON passed
//! through), `hyper` (the smallest server, no framework), `tonic` (gRPC and
//! downloads on one port).
//!
//! # With other middleware
//!
//! - **Compression** goes *outside* the layer (`.layer(RangeServeLayer::new())`
//!   then `.layer(CompressionLayer::new())` in axum): it then sees the final answer,
//!   and tower-http does not compress responses with `Content-Range`. Better still,
//!   leave file responses alone (every one carries `Accept-Ranges: bytes`):
//!   `CompressionLayer::new().compress_when(DefaultPredicate::new().and(|_, _,
//!   headers: &HeaderMap, _| !headers.contains_key(ACCEPT_RANGES)))`, so no
//!   compressed 200 shares a strong `ETag` with identity ranges. A file response
//!   that an inner layer has already compressed (it has `Content-Encoding`, or a
//!   `Content-Length` other than the file's) is passed through untouched.
//!   Precompressed files are the better way: [`ServeDir::precompressed`] (or
//!   [`FileResponse::content_encoding`] in a handler) sends `app.js.br` for
//!   `app.js` as a representation of its own, with ranges and validators of its
//!   own.
//! - **Authentication** that puts a user into the request extensions for the
//!   [policy](RangeServeLayer::policy) or [client key](RangeServeLayer::client_key)
//!   must run *before* (outside) the layer, which reads the request when called.
//! - **axum's `ConnectInfo`**: with the `axum` feature, the default client key
//!   finds the peer in `ConnectInfo<SocketAddr>` (served with
//!   `into_make_service_with_connect_info::<SocketAddr>()`) as well as in a plain
//!   `SocketAddr` extension (hyper-util servers). A request for which no key is
//!   found while a client limit or a stream cap applies is never let through
//!   unlimited: all such requests share the limits of one client,
//!   [`ClientKey::UNIDENTIFIED`].
//! - **Tracing**: a `TraceLayer` outside the layer logs what the client gets (206
//!   and the bytes of the range); inside, it sees the handler's 200.
//! - **Timeouts** (`TimeoutLayer`) bound the time to the response head only, so they
//!   do not cut long throttled downloads; either order works.
//! - [`ServeDir`] maps the whole request path: under axum, mount it with
//!   `nest_service("/files", ..)`, which strips the prefix.
//!
//! # Integrity
//!
//! The body never sends bytes other than those its headers promise. If the source
//! fails, or a file turns out shorter than when it was opened, the body ends with
//! an error: the server aborts the connection (HTTP/1.1) or resets the stream
//! (HTTP/2), and the client knows the download is incomplete and can resume with
//! `Range` and `If-Range`.
//!
//! # Digests
//!
//! With the `digest` feature, a client that asks (`Want-Repr-Digest`, RFC 9530;
//! `Want-Digest`, RFC 3230, which aria2 sends) gets the digest of the whole
//! representation on every 200 and 206 and on `HEAD`, so it can verify a resumed
//! or segmented download end to end: from a `NAME.sha256` checksum file beside
//! the file, a digest the handler attached, or a hash computed once per file
//! version in the background ([`RangeServeLayer::digests`]). Hashing is never on
//! the request path, and a changed file never gets its old digest. See the
//! `digest` module.
//!
//! # Metrics and the operator's view
//!
//! With the `metrics` feature, `RangeServeLayer::metrics` records answers,
//! bytes, running downloads, durations to the last byte, outcomes, throttle
//! waits, refusals and the Redis state through the `metrics` facade (any
//! exporter); see `lifecycle::Metrics` for the table of names. Observers can
//! end a running download through its
//! [`CancelHandle`](lifecycle::CancelHandle). The demo server (`examples/serve/`)
//! serves them as `/metrics` (`--metrics`) and as a live admin page with a JSON
//! API (`--admin`).
//!
//! # Layout
//!
//! The source tree shows the three parts of the design: `protocol/` (RFC 9110
//! ranges, validators, preconditions, the decision and the multipart layout:
//! pure functions, no I/O), `source/` (where bytes come from, and the reader
//! that reads a plan's bytes in bounded chunks, ahead of the client within a
//! budget) and `throttle/` (when the next chunk may go: per-response pacing,
//! limits shared per client and in total, and their Redis part). `serve/` is
//! the middleware that joins them: the layer, and [`RangeBody`], whose frame
//! loop takes chunks from the source's reader, asks the throttle when each may
//! go and tells `lifecycle/` (disconnects, shutdown, progress, cancel and
//! metrics) what was sent. `dir/` is the directory service, `objects/` its object-storage twin
//! (feature `object-store`) and `digest/` the digest fields (feature
//! `digest`). Each part imports only those below it: `protocol/` nothing of
//! the others, `source/` only `protocol/`, `throttle/` and `lifecycle/` neither
//! `serve/` nor the services.
//!
//! # HEAD and RFC 9110 §14.2
//!
//! RFC 9110 defines range requests for `GET` only, and says `HEAD` should answer
//! with the headers `GET` would have (§9.3.2). Like nginx and Apache, the layer lets
//! `HEAD` mirror `GET`, ranges included, so a client can probe a range cheaply:
//! it gets the status `GET` would get (206, 304, 412, 416, 429 for a client over
//! its streams, 503 while shutting down), and is not counted as a stream.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "digest")]
#[cfg_attr(docsrs, doc(cfg(feature = "digest")))]
pub mod digest;
pub mod dir;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod lifecycle;
#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub mod objects;
mod protocol;
mod serve;
#[cfg(feature = "signed-links")]
#[cfg_attr(docsrs, doc(cfg(feature = "signed-links")))]
pub mod signed;
pub mod source;
pub mod throttle;

pub use self::dir::service::ServeDir;
pub use self::serve::{
    DEFAULT_MAX_RANGES, FileResponse, RangeBody, RangeServe, RangeServeLayer, ResponseBody,
    ResponseFuture,
};
pub use self::source::read::{DEFAULT_CHUNK_SIZE, DEFAULT_READ_AHEAD};
pub use self::throttle::bandwidth::Bandwidth;
pub use self::throttle::client_key::ClientKey;
pub use self::throttle::control::BandwidthControl;
pub use self::throttle::policy::Policy;
pub use self::throttle::quota::{Quota, QuotaExhausted};

/// The error type of [`ResponseBody`]: the inner body's error or an I/O error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
