//! [`FileResponse`]: how a handler says "this response is a seekable representation".

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use crate::RangeBody;
use crate::protocol::disposition::content_disposition;
use crate::source::DEFAULT_CHUNK_SIZE;
use crate::source::{FileSource, RangeSource};
use crate::throttle::Bandwidth;

/// The response extension that marks a response as file-backed for
/// [`RangeServe`](crate::RangeServe).
#[derive(Clone, Debug)]
pub(crate) struct Representation {
    pub(crate) source: Arc<dyn RangeSource>,
    /// The handler's own rate for this response, replacing the policy's.
    pub(crate) rate: Option<Bandwidth>,
    /// The `Content-Encoding` of the source's bytes, when they are an encoded
    /// representation of their own (a precompressed file).
    pub(crate) encoding: Option<HeaderValue>,
    /// Where the digest of the representation can come from.
    #[cfg(feature = "digest")]
    pub(crate) digest: crate::digest::Origin,
}

/// A file-backed response, returned by a handler.
///
/// It becomes an `http::Response` of the whole representation (200, with
/// `Content-Length`, `Content-Type`, and for files a strong `ETag` and
/// `Last-Modified`), marked so that [`RangeServeLayer`](crate::RangeServeLayer)
/// can answer `Range` and conditional requests from it. Without the layer it is a
/// plain, correct 200 download.
///
/// The layer compares preconditions against the `ETag` and `Last-Modified`
/// *headers* of the response, so a handler may replace them with its own
/// validators after conversion.
///
/// With the `axum` feature, `FileResponse` implements `axum::response::IntoResponse`.
///
/// # Example
///
/// ```
/// use http::{header, StatusCode};
/// use tower_range_serve::FileResponse;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join("file-response-doc.txt");
/// std::fs::write(&path, "hello").unwrap();
///
/// let response = FileResponse::open(&path)
///     .await
///     .unwrap()
///     .attachment(Some("greeting.txt"))
///     .into_response();
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(response.headers()[header::CONTENT_LENGTH], "5");
/// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
/// assert!(response.headers().contains_key(header::ETAG));
/// # });
/// ```
#[derive(Debug)]
pub struct FileResponse {
    source: Arc<dyn RangeSource>,
    headers: HeaderMap,
    rate: Option<Bandwidth>,
    encoding: Option<HeaderValue>,
    #[cfg(feature = "digest")]
    digest: crate::digest::Origin,
}

impl FileResponse {
    /// Opens a file, guessing its `Content-Type` from the extension
    /// (`application/octet-stream` when unknown) and deriving a strong `ETag` from
    /// its length and modification time (nanoseconds where the platform has them).
    ///
    /// With the `digest` feature, the layer uses the checksum files beside it
    /// (`PATH.sha256`, `PATH.sha512`; see the `digest` module) for requests that
    /// ask for a digest.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if `path` is not a regular file.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(io::Error::other)?
    }

    /// Like [`open`](Self::open), on the current thread (blocking).
    pub(crate) fn open_blocking(path: &Path) -> io::Result<Self> {
        let source = FileSource::open_blocking(path)?;
        Ok(Self::from_file(source, path).checksums_beside(path))
    }

    /// With the `digest` feature, the layer looks for published checksum files
    /// of the opened file beside `path`, its own path (`PATH.sha256`,
    /// `PATH.sha512`), when a request asks for a digest.
    pub(crate) fn checksums_beside(self, path: &Path) -> Self {
        self.shared_checksums(&SharedChecksums::new(path.into()))
    }

    /// Like [`checksums_beside`](Self::checksums_beside), with checksum files
    /// that other responses of the same opened file share (read once).
    #[cfg(feature = "digest")]
    pub(crate) fn shared_checksums(mut self, checksums: &SharedChecksums) -> Self {
        self.digest.checksums = Some(checksums.0.clone());
        self
    }

    /// Without the `digest` feature, nothing.
    #[cfg(not(feature = "digest"))]
    pub(crate) fn shared_checksums(self, _checksums: &SharedChecksums) -> Self {
        self
    }

    /// Serves an opened file, typed after `path`'s extension. No checksum file
    /// is looked for (`path` may name another file than the one opened); the
    /// digest cache still knows the file by its identity.
    ///
    /// ```
    /// use tower_range_serve::{source::FileSource, FileResponse};
    ///
    /// let path = std::env::temp_dir().join("from-file-doc.json");
    /// std::fs::write(&path, "{}").unwrap();
    /// let source = FileSource::open_blocking(&path).unwrap();
    /// let response = FileResponse::from_file(source, &path).into_response();
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    pub fn from_file(source: FileSource, path: &Path) -> Self {
        let headers = FileHeaders::new(&source, path);
        Self::from_shared_file(Arc::new(source), &headers)
    }

    /// Serves a file that other responses may be reading too (from an
    /// open-file cache), with headers made once for it.
    pub(crate) fn from_shared_file(source: Arc<FileSource>, file: &FileHeaders) -> Self {
        let mut headers = HeaderMap::with_capacity(8);
        for (name, value) in [
            (header::CONTENT_LENGTH, &file.content_length),
            (header::CONTENT_TYPE, &file.content_type),
            (header::ETAG, &file.etag),
            (header::LAST_MODIFIED, &file.last_modified),
        ] {
            if let Some(value) = value {
                headers.insert(name, value.clone());
            }
        }
        Self {
            #[cfg(feature = "digest")]
            digest: crate::digest::Origin {
                file: Some(source.clone()),
                ..Default::default()
            },
            source,
            headers,
            rate: None,
            encoding: None,
        }
    }

    /// Serves any [`RangeSource`]. No `Content-Type` and no validators are set:
    /// add them with [`content_type`](Self::content_type) or on the response.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// let response = FileResponse::from_source(Bytes::from_static(b"abc")).into_response();
    /// assert_eq!(response.headers()["content-length"], "3");
    /// ```
    pub fn from_source(source: impl RangeSource) -> Self {
        Self {
            source: Arc::new(source),
            headers: HeaderMap::new(),
            rate: None,
            encoding: None,
            #[cfg(feature = "digest")]
            digest: crate::digest::Origin::default(),
        }
    }

    /// Serves an object of an object store, with the `Content-Type` stored with
    /// it (else guessed from the key's extension), and its `ETag` and
    /// `Last-Modified`. Needs the `object-store` feature.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::{memory::InMemory, path::Path, ObjectStore, PutPayload};
    /// use tower_range_serve::{source::ObjectSource, FileResponse};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = Arc::new(InMemory::new());
    /// store.put(&Path::from("a.json"), PutPayload::from_static(b"{}")).await.unwrap();
    /// let object = ObjectSource::open(store, Path::from("a.json")).await.unwrap();
    /// let response = FileResponse::from_object(object).into_response();
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// assert!(response.headers().contains_key("etag"));
    /// # });
    /// ```
    #[cfg(feature = "object-store")]
    #[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
    pub fn from_object(source: crate::source::ObjectSource) -> Self {
        Self::from_shared_object(Arc::new(source))
    }

    /// Serves an opened object that other responses may be reading too (from
    /// a cache of opened objects).
    #[cfg(feature = "object-store")]
    pub(crate) fn from_shared_object(source: Arc<crate::source::ObjectSource>) -> Self {
        Self {
            headers: super::object_headers::headers(&source),
            source,
            rate: None,
            encoding: None,
            #[cfg(feature = "digest")]
            digest: crate::digest::Origin::default(),
        }
    }

    /// Serves bytes held in memory, typed `application/octet-stream`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// let response = FileResponse::from_bytes(Bytes::from_static(b"abc")).into_response();
    /// assert_eq!(response.headers()["content-type"], "application/octet-stream");
    /// ```
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self::from_source(bytes).content_type(HeaderValue::from_static("application/octet-stream"))
    }

    /// Sets the `Content-Type`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::HeaderValue;
    /// use tower_range_serve::FileResponse;
    ///
    /// let response = FileResponse::from_bytes(Bytes::from_static(b"<p>"))
    ///     .content_type(HeaderValue::from_static("text/html"))
    ///     .into_response();
    /// assert_eq!(response.headers()["content-type"], "text/html");
    /// ```
    #[must_use]
    pub fn content_type(mut self, value: HeaderValue) -> Self {
        self.headers.insert(header::CONTENT_TYPE, value);
        self
    }

    /// Says that the source's bytes are content-coded (`Content-Encoding`, RFC
    /// 9110 §8.4): a precompressed file, such as `app.js.gz` served for `app.js`.
    ///
    /// The encoded bytes are then the selected representation itself: ranges
    /// count them, and `If-Range` and 304 compare against its validators (RFC
    /// 9110 §14.1). Give it validators of its own, distinct from the identity
    /// file's (a file's own `ETag` from [`open`](Self::open) is), and a
    /// `Vary: Accept-Encoding` when the encoding was negotiated. A response that
    /// gains a `Content-Encoding` any other way (an inner compression layer) is
    /// passed through by the layer untouched.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{header, HeaderValue};
    /// use tower_range_serve::FileResponse;
    ///
    /// let gzipped = Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    /// let response = FileResponse::from_bytes(gzipped)
    ///     .content_type(HeaderValue::from_static("text/plain"))
    ///     .content_encoding(HeaderValue::from_static("gzip"))
    ///     .into_response();
    /// assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    /// ```
    #[must_use]
    pub fn content_encoding(mut self, value: HeaderValue) -> Self {
        self.headers.insert(header::CONTENT_ENCODING, value.clone());
        self.encoding = Some(value);
        self
    }

    /// Asks the client to save the response (`Content-Disposition: attachment`),
    /// under `filename` if given. Names outside printable ASCII are sent as an
    /// RFC 8187 `filename*` beside an ASCII fallback.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// let response = FileResponse::from_bytes(Bytes::new())
    ///     .attachment(Some("café.txt"))
    ///     .into_response();
    /// assert_eq!(
    ///     response.headers()["content-disposition"],
    ///     "attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt"
    /// );
    /// ```
    #[must_use]
    pub fn attachment(self, filename: Option<&str>) -> Self {
        self.disposition("attachment", filename)
    }

    /// Asks the client to display the response (`Content-Disposition: inline`),
    /// naming it `filename` if given.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// let response = FileResponse::from_bytes(Bytes::new()).inline(None).into_response();
    /// assert_eq!(response.headers()["content-disposition"], "inline");
    /// ```
    #[must_use]
    pub fn inline(self, filename: Option<&str>) -> Self {
        self.disposition("inline", filename)
    }

    /// Sets this response's own rate, replacing the one the layer's policy gives
    /// ([`Bandwidth::UNLIMITED`] lifts it). The layer's client and total limits
    /// still apply.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::{Bandwidth, FileResponse};
    ///
    /// let preview = FileResponse::from_bytes(Bytes::from_static(b"..."))
    ///     .rate(Bandwidth::UNLIMITED)
    ///     .into_response();
    /// # let _ = preview;
    /// ```
    #[must_use]
    pub fn rate(mut self, rate: Bandwidth) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Attaches a known digest of the whole representation (an object store's
    /// own checksum, say), sent in `Repr-Digest` and `Digest` when asked (see
    /// [`digest`](crate::digest)). It replaces a checksum file's digest of the
    /// same algorithm. It must be the digest of exactly the bytes served.
    ///
    /// # Panics
    ///
    /// If `digest` is not [`algorithm.output_len()`](crate::digest::DigestAlgorithm::output_len)
    /// bytes long.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Empty;
    /// use tower::{service_fn, ServiceExt};
    /// use tower_range_serve::digest::DigestAlgorithm;
    /// use tower_range_serve::{FileResponse, RangeBody, RangeServe};
    ///
    /// // The SHA-256 of "hello", as a store might report it.
    /// let sha256 = [
    ///     0x2c, 0xf2, 0x4d, 0xba, 0x5f, 0xb0, 0xa3, 0x0e, 0x26, 0xe8, 0x3b, 0x2a, 0xc5, 0xb9,
    ///     0xe2, 0x9e, 0x1b, 0x16, 0x1e, 0x5c, 0x1f, 0xa7, 0x42, 0x5e, 0x73, 0x04, 0x33, 0x62,
    ///     0x93, 0x8b, 0x98, 0x24,
    /// ];
    /// let handler = service_fn(move |_: Request<Empty<Bytes>>| async move {
    ///     let file = FileResponse::from_bytes(Bytes::from_static(b"hello"))
    ///         .repr_digest(DigestAlgorithm::Sha256, sha256);
    ///     Ok::<Response<RangeBody>, Infallible>(file.into_response())
    /// });
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let request = Request::get("/")
    ///     .header("range", "bytes=1-2")
    ///     .header("want-repr-digest", "sha-256=10")
    ///     .body(Empty::new())
    ///     .unwrap();
    /// let response = RangeServe::new(handler).oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), 206);
    /// assert_eq!(
    ///     response.headers()["repr-digest"],
    ///     "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:"
    /// );
    /// # });
    /// ```
    #[cfg(feature = "digest")]
    #[cfg_attr(docsrs, doc(cfg(feature = "digest")))]
    #[must_use]
    pub fn repr_digest(
        mut self,
        algorithm: crate::digest::DigestAlgorithm,
        digest: impl AsRef<[u8]>,
    ) -> Self {
        let digest = digest.as_ref();
        assert_eq!(
            digest.len(),
            algorithm.output_len(),
            "a {algorithm} digest is {} bytes",
            algorithm.output_len()
        );
        self.digest
            .known
            .set(algorithm, Bytes::copy_from_slice(digest));
        self
    }

    fn disposition(mut self, kind: &str, filename: Option<&str>) -> Self {
        self.headers.insert(
            header::CONTENT_DISPOSITION,
            content_disposition(kind, filename),
        );
        self
    }

    /// The length of the representation in bytes.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// assert_eq!(FileResponse::from_bytes(Bytes::from_static(b"abc")).len(), 3);
    /// ```
    pub fn len(&self) -> u64 {
        self.source.len()
    }

    /// Whether the representation is empty.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// assert!(FileResponse::from_bytes(Bytes::new()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Converts into a 200 response with the whole representation as its body,
    /// marked for [`RangeServeLayer`](crate::RangeServeLayer).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::FileResponse;
    ///
    /// let response = FileResponse::from_bytes(Bytes::from_static(b"abc")).into_response();
    /// assert_eq!(response.status(), 200);
    /// ```
    pub fn into_response(self) -> Response<RangeBody> {
        let body = RangeBody::full(self.source.clone(), DEFAULT_CHUNK_SIZE);
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::OK;
        *response.headers_mut() = self.headers;
        // A file's is made once with its other headers (see `FileHeaders`).
        if !response.headers().contains_key(header::CONTENT_LENGTH) {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(self.source.len()));
        }
        response.extensions_mut().insert(Representation {
            source: self.source,
            rate: self.rate,
            encoding: self.encoding,
            #[cfg(feature = "digest")]
            digest: self.digest,
        });
        response
    }
}

impl From<FileResponse> for Response<RangeBody> {
    fn from(file: FileResponse) -> Self {
        file.into_response()
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for FileResponse {
    fn into_response(self) -> axum::response::Response {
        FileResponse::into_response(self).map(axum::body::Body::new)
    }
}

/// The checksum files beside an opened file (with the `digest` feature; nothing
/// without it), read at most once for all its responses.
#[derive(Debug)]
pub(crate) struct SharedChecksums(#[cfg(feature = "digest")] Arc<crate::digest::Checksums>);

impl SharedChecksums {
    /// Those beside `path`, the opened file's own path.
    #[cfg(feature = "digest")]
    pub(crate) fn new(path: Arc<Path>) -> Self {
        Self(Arc::new(crate::digest::Checksums::new(path)))
    }

    /// Without the `digest` feature, none.
    #[cfg(not(feature = "digest"))]
    pub(crate) fn new(_path: Arc<Path>) -> Self {
        Self()
    }
}

/// The headers of a file's response that depend only on the version opened
/// and its path: made once per opened file (an open-file cache keeps them).
#[derive(Debug, Clone, Default)]
pub(crate) struct FileHeaders {
    /// The file's length (a value made once: formatting one allocates).
    pub(crate) content_length: Option<HeaderValue>,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) etag: Option<HeaderValue>,
    pub(crate) last_modified: Option<HeaderValue>,
}

impl FileHeaders {
    /// `Content-Type` from `path`'s extension (`application/octet-stream` when
    /// unknown), a strong `ETag` from the length and modification time, and
    /// `Last-Modified`.
    pub(crate) fn new(source: &FileSource, path: &Path) -> Self {
        // The guesses are static strings: values that cost nothing to clone.
        let mime = mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream");
        let modified = source.modified();
        Self {
            content_length: Some(HeaderValue::from(source.len())),
            content_type: Some(HeaderValue::from_static(mime)),
            etag: modified.map(|modified| etag(source.len(), modified)),
            last_modified: modified.map(|modified| {
                HeaderValue::try_from(httpdate::fmt_http_date(modified))
                    .expect("an HTTP-date is a valid header value")
            }),
        }
    }
}

/// A strong entity tag from the length and modification time: `"<len>-<nanos>"` in
/// hex, like nginx's `"<mtime>-<len>"` but with sub-second precision.
fn etag(len: u64, modified: SystemTime) -> HeaderValue {
    let nanos = match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos(),
        Err(before) => before.duration().as_nanos(),
    };
    HeaderValue::try_from(format!("\"{len:x}-{nanos:x}\"")).expect("hex digits are valid")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn etag_changes_with_length_and_nanoseconds() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = etag(10, t);
        assert_ne!(a, etag(11, t));
        assert_ne!(a, etag(10, t + Duration::from_nanos(1)));
        assert!(a.to_str().unwrap().starts_with("\"a-"));
    }

    #[tokio::test]
    async fn file_responses_carry_validators_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("movie.mp4");
        std::fs::write(&path, b"0123456789").unwrap();
        let response = FileResponse::open(&path).await.unwrap().into_response();
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "video/mp4");
        assert_eq!(headers[header::CONTENT_LENGTH], "10");
        assert!(headers.contains_key(header::LAST_MODIFIED));
        assert!(headers[header::ETAG].to_str().unwrap().starts_with("\"a-"));
        assert!(response.extensions().get::<Representation>().is_some());
    }

    #[test]
    fn a_content_coding_is_recorded_for_the_layer() {
        let gzip = HeaderValue::from_static("gzip");
        let response = FileResponse::from_bytes(Bytes::from_static(b"\x1f\x8b"))
            .content_encoding(gzip.clone())
            .into_response();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], gzip);
        let representation = response.extensions().get::<Representation>().unwrap();
        assert_eq!(representation.encoding, Some(gzip));
        let plain = FileResponse::from_bytes(Bytes::new()).into_response();
        let representation = plain.extensions().get::<Representation>().unwrap();
        assert_eq!(representation.encoding, None);
    }

    #[tokio::test]
    async fn unknown_extensions_are_octet_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.zzz-unknown");
        std::fs::write(&path, b"x").unwrap();
        let response = FileResponse::open(&path).await.unwrap().into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
    }
}
