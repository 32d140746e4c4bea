use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use object_store::ObjectStore;
use object_store::path::Path;
use tower_service::Service;

use super::ResponseFuture;
use crate::RangeBody;
use crate::dir::OpenFileCache;
use crate::dir::cache::{Cache, Cached, Entry};
use crate::dir::path::relative_path;
use crate::serve::FileResponse;
use crate::source::ObjectSource;

/// Serves the objects under a prefix of an object store, by request path.
///
/// The request path is mapped to a key with the same rules as
/// [`ServeDir`](crate::ServeDir) (percent-decoded, `..` and the like refused),
/// appended to the [`prefix`](Self::prefix). Each object is answered as a
/// [`FileResponse`]: put [`RangeServeLayer`](crate::RangeServeLayer) around it for
/// ranges and conditional requests. See [the module](crate::objects) for the
/// status codes of store errors.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http::{header, Request, StatusCode};
/// use http_body_util::Empty;
/// use object_store::{memory::InMemory, path::Path, ObjectStore, PutPayload};
/// use tower::{Layer, ServiceExt};
/// use tower_range_serve::{objects::ServeObjects, RangeServeLayer};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = Arc::new(InMemory::new());
/// let key = Path::from("public/hello.txt");
/// store.put(&key, PutPayload::from_static(b"hello world")).await.unwrap();
///
/// let service = RangeServeLayer::new().layer(ServeObjects::new(store).prefix("public"));
/// let request = Request::get("/hello.txt")
///     .header(header::RANGE, "bytes=6-")
///     .body(Empty::<Bytes>::new())
///     .unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
/// assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 6-10/11");
/// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ServeObjects {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    open_timeout: Duration,
    cache: Option<Arc<Cache<ObjectSource>>>,
}

impl Entry for ObjectSource {
    fn is_current(&self) -> bool {
        !self.is_stale()
    }
}

impl ServeObjects {
    /// Serves the objects of `store`, keys named by the whole request path.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use tower_range_serve::objects::ServeObjects;
    ///
    /// let service = ServeObjects::new(Arc::new(InMemory::new()));
    /// # let _ = service;
    /// ```
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            prefix: Path::default(),
            open_timeout: Duration::from_secs(10),
            cache: None,
        }
    }

    /// Keeps what opening an object learned (its `HEAD`: length, `ETag`,
    /// `Content-Type`), and which keys are missing, for a short time, so that
    /// a request within [`validity`](OpenFileCache::validity) of the last open
    /// of its key costs no `HEAD`. Off by default (`OpenFileCache::off()`).
    ///
    /// Reads stay pinned to the `ETag` seen at opening (`If-Match`), so the
    /// bytes of two versions are never mixed. An object overwritten or deleted
    /// while cached fails the next download of it (the pinned `GET` finds
    /// another version; the client resumes with `If-Range`), which forgets the
    /// entry: the request after opens it again. A new object where a missing
    /// one was is seen within the validity. The cache is made by this call and
    /// shared by the clones of the service.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use tower_range_serve::dir::OpenFileCache;
    /// use tower_range_serve::objects::ServeObjects;
    ///
    /// let service = ServeObjects::new(Arc::new(InMemory::new()))
    ///     .open_cache(OpenFileCache::new().entries(10_000));
    /// assert_eq!(service.cached_entries(), 0);
    /// ```
    #[must_use]
    pub fn open_cache(mut self, cache: OpenFileCache) -> Self {
        self.cache = Cache::new(cache).map(Arc::new);
        self
    }

    /// How many keys the [`open_cache`](Self::open_cache) holds now (0
    /// without one).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use tower_range_serve::objects::ServeObjects;
    ///
    /// assert_eq!(ServeObjects::new(Arc::new(InMemory::new())).cached_entries(), 0);
    /// ```
    pub fn cached_entries(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.len())
    }

    /// Serves only keys under `prefix` (`/a.txt` is the key `prefix/a.txt`).
    /// None by default.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use tower_range_serve::objects::ServeObjects;
    ///
    /// let service = ServeObjects::new(Arc::new(InMemory::new())).prefix("downloads/v2");
    /// # let _ = service;
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<Path>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long opening an object (its `HEAD`, with the store client's own
    /// retries) may take before the answer is 504. Defaults to 10 seconds.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use object_store::memory::InMemory;
    /// use tower_range_serve::objects::ServeObjects;
    ///
    /// let service = ServeObjects::new(Arc::new(InMemory::new()))
    ///     .open_timeout(Duration::from_secs(3));
    /// # let _ = service;
    /// ```
    #[must_use]
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// The key a request path names, or `None` if it is not a safe one.
    fn key(&self, uri_path: &str) -> Option<Path> {
        let relative = relative_path(uri_path)?;
        let mut key = self.prefix.clone();
        let mut named = false;
        for part in relative.iter() {
            key = key.child(part.to_str()?);
            named = true;
        }
        named.then_some(key)
    }
}

async fn open(
    store: Arc<dyn ObjectStore>,
    key: Path,
    timeout: Duration,
    cache: Option<Arc<Cache<ObjectSource>>>,
) -> Response<RangeBody> {
    let cached = std::path::PathBuf::from(key.as_ref());
    if let Some(cache) = &cache {
        match cache.get(&cached) {
            Cached::Found(source, _) => {
                return FileResponse::from_shared_object(source).into_response();
            }
            Cached::Missing(_) => return status(StatusCode::NOT_FOUND),
            Cached::Unknown => {}
        }
    }
    let opened = tokio::time::timeout(timeout, ObjectSource::open(store, key)).await;
    let source = match opened {
        Ok(Ok(source)) => Arc::new(source),
        Ok(Err(error)) => {
            if let (Some(cache), object_store::Error::NotFound { .. }) = (&cache, &error) {
                cache.insert(&cached, None);
            }
            return status(status_of(&error));
        }
        Err(_elapsed) => return status(StatusCode::GATEWAY_TIMEOUT),
    };
    if let Some(cache) = &cache {
        cache.insert(&cached, Some(source.clone()));
    }
    FileResponse::from_shared_object(source).into_response()
}

/// The answer to a store error before the response head; see the module docs.
fn status_of(error: &object_store::Error) -> StatusCode {
    use object_store::Error;
    match error {
        Error::NotFound { .. } | Error::InvalidPath { .. } => return StatusCode::NOT_FOUND,
        Error::PermissionDenied { .. } | Error::Unauthenticated { .. } => {
            return StatusCode::BAD_GATEWAY;
        }
        _ => {}
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::TimedOut => return StatusCode::GATEWAY_TIMEOUT,
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected => return StatusCode::SERVICE_UNAVAILABLE,
                _ => {}
            }
        }
        cause = error.source();
    }
    StatusCode::BAD_GATEWAY
}

fn status(status: StatusCode) -> Response<RangeBody> {
    let mut response = Response::new(RangeBody::empty());
    *response.status_mut() = status;
    response
}

impl<B> Service<Request<B>> for ServeObjects {
    type Response = Response<RangeBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return ResponseFuture::new(std::future::ready(response));
        }
        let Some(key) = self.key(request.uri().path()) else {
            return ResponseFuture::new(std::future::ready(status(StatusCode::NOT_FOUND)));
        };
        let cache = self.cache.clone();
        ResponseFuture::new(open(self.store.clone(), key, self.open_timeout, cache))
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn service() -> ServeObjects {
        ServeObjects::new(Arc::new(InMemory::new())).prefix("p/q")
    }

    #[test]
    fn request_paths_map_to_keys_under_the_prefix() {
        let key = |path| service().key(path).map(|key| key.to_string());
        assert_eq!(key("/a/b.txt").as_deref(), Some("p/q/a/b.txt"));
        assert_eq!(key("//a/./b%20c").as_deref(), Some("p/q/a/b c"));
        assert_eq!(key("/a%2Fb").as_deref(), Some("p/q/a/b"));
        for refused in ["/", "/../etc/passwd", "/a/..%2f..%2fx", "/a%5cb", "/%ff"] {
            assert_eq!(key(refused), None, "{refused}");
        }
    }

    #[test]
    fn store_errors_map_to_gateway_statuses() {
        let boxed = |e: io::Error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) };
        let generic = |kind: io::ErrorKind| object_store::Error::Generic {
            store: "S3",
            source: boxed(io::Error::new(kind, "x")),
        };
        let not_found = object_store::Error::NotFound {
            path: "a".into(),
            source: boxed(io::Error::other("x")),
        };
        let denied = object_store::Error::PermissionDenied {
            path: "a".into(),
            source: boxed(io::Error::other("x")),
        };
        assert_eq!(status_of(&not_found), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&denied), StatusCode::BAD_GATEWAY);
        assert_eq!(
            status_of(&generic(io::ErrorKind::TimedOut)),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status_of(&generic(io::ErrorKind::ConnectionRefused)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_of(&generic(io::ErrorKind::Other)),
            StatusCode::BAD_GATEWAY
        );
    }
}
