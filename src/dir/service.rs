use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower_service::Service;

use super::cache::{Cache, OpenFileCache};
use super::lookup::{Root, Target, status};
use super::path::{is_plain_name, relative_path};
use super::{Encoding, NotFound, ResponseFuture};
use crate::ResponseBody;
use crate::protocol::accept::{candidates, prefers_json};

/// Serves the files under a root directory, by request path.
///
/// Each file is answered as a [`FileResponse`](crate::FileResponse): put
/// [`RangeServeLayer`](crate::RangeServeLayer) around it for ranges and
/// conditional requests.
///
/// - `GET` and `HEAD` only; other methods get 405 with `Allow: GET, HEAD`.
/// - The path is percent-decoded; `..` segments, backslashes, NUL bytes, drive
///   prefixes and invalid UTF-8 get 404.
/// - Missing files, and files that cannot be opened, get 404 (or the
///   [`fallback`](Self::fallback)'s answer).
/// - Symbolic links may point anywhere inside the root; a path that resolves to
///   something outside it gets 404, unless [`follow_symlinks`](Self::follow_symlinks)
///   allows it. The check resolves the path just before opening it; it assumes that
///   clients cannot create links inside the root.
/// - A directory requested with its trailing slash gets its
///   [`index`](Self::index) file (`index.html` by default), else its
///   [`listing`](Self::listing) if turned on, else 404. Requested without the
///   slash, it is redirected to it (308, a relative `Location`, the query kept)
///   when there is an index or a listing to show.
/// - With [`precompressed`](Self::precompressed), `NAME.br`, `NAME.zst`, `NAME.gz`
///   or `NAME.zz` beside a file is sent instead of it to clients that accept
///   that coding.
///
/// Files and their variants are the only responses the layer range-serves;
/// listings, redirects and 404s pass through it as they are.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use http::{header, Request, StatusCode};
/// use http_body_util::Empty;
/// use tower::{Layer, ServiceExt};
/// use tower_range_serve::{RangeServeLayer, ServeDir};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = tempfile::tempdir().unwrap();
/// std::fs::write(root.path().join("hello.txt"), "hello world").unwrap();
///
/// let service = RangeServeLayer::new().layer(ServeDir::new(root.path()));
/// let request = Request::get("/hello.txt")
///     .header(header::RANGE, "bytes=6-")
///     .body(Empty::<Bytes>::new())
///     .unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
/// assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 6-10/11");
/// # });
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServeDir<F = NotFound> {
    root: Arc<Root>,
    fallback: F,
}

impl ServeDir {
    /// Serves the files under `root`.
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    ///
    /// let service = ServeDir::new("assets");
    /// # let _ = service;
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Arc::new(Root {
                path: root.into(),
                follow_symlinks: false,
                precompressed: Vec::new(),
                index: Some("index.html".to_owned()),
                listing: false,
                show_hidden: false,
                cache_settings: OpenFileCache::new(),
                cache: None,
            }),
            fallback: NotFound,
        }
        .with(|_| {})
    }
}

impl<F> ServeDir<F> {
    /// Changes the settings of this value only (clones keep theirs), with an
    /// open-file cache of its own.
    fn with(mut self, change: impl FnOnce(&mut Root)) -> Self {
        let root = Arc::make_mut(&mut self.root);
        change(root);
        root.cache = Cache::new(root.cache_settings).map(Arc::new);
        self
    }

    /// Keeps the files, directories and missing paths that requests resolved,
    /// for a short time, like nginx's `open_file_cache`: a request for a path
    /// resolved less than [`validity`](OpenFileCache::validity) ago reuses its
    /// open file, metadata and headers (and knows which sidecars exist) instead
    /// of resolving and opening it again. Defaults to [`OpenFileCache::new`]:
    /// 4096 entries, valid 2 seconds; [`OpenFileCache::off`] turns it off.
    ///
    /// What it means for changes to the files (see [`OpenFileCache`]):
    /// - a file changed in place is seen by the next request (each use checks
    ///   the open file's length and modification time), or within 100 ms for
    ///   a small file kept in memory
    ///   ([`OpenFileCache::memory`](OpenFileCache::memory): up to 64 KiB each,
    ///   16 MiB in all by default), which sends the old version whole until then;
    /// - a file replaced by another (renamed over), deleted or created, and a
    ///   sidecar added or removed, are seen within the validity;
    /// - no response ever mixes the bytes of two versions;
    /// - at most `entries` descriptors are kept open, each at most about two
    ///   validities after its path was resolved.
    ///
    /// The cache is made by this call and shared by the clones of the
    /// service; a service built from a clone with other settings has its own.
    /// (The request headers are not part of it: one cache serves every
    /// `Accept-Encoding`.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::ServeDir;
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// let service = ServeDir::new("assets")
    ///     .open_file_cache(OpenFileCache::new().entries(10_000).validity(Duration::from_secs(5)));
    /// # let _ = service;
    /// ```
    pub fn open_file_cache(self, cache: OpenFileCache) -> Self {
        self.with(|root| root.cache_settings = cache)
    }

    /// How many paths the open-file cache holds now (0 without one): files and
    /// directories (one descriptor each) and missing paths.
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    ///
    /// assert_eq!(ServeDir::new("assets").cached_entries(), 0);
    /// ```
    pub fn cached_entries(&self) -> usize {
        self.root.cache.as_ref().map_or(0, |cache| cache.len())
    }

    /// Whether symbolic links may lead outside the root. Defaults to `false`.
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    ///
    /// let service = ServeDir::new("assets").follow_symlinks(true);
    /// # let _ = service;
    /// ```
    pub fn follow_symlinks(self, follow: bool) -> Self {
        self.with(|root| root.follow_symlinks = follow)
    }

    /// Serves precompressed variants: for a file `NAME`, the sidecar
    /// `NAME.<extension>` of each of `encodings` that exists is a representation
    /// of it in that coding (see [`Encoding`]). Defaults to none.
    ///
    /// The request's `Accept-Encoding` picks one (RFC 9110 §12.5.3: weights,
    /// `*`, `identity;q=0`); the order of `encodings` breaks ties, and the
    /// identity file comes after every coding. Without the header, or when no
    /// variant is acceptable (even with `identity;q=0`, rather than 406, like
    /// tower-http and nginx), the identity file is sent.
    ///
    /// A variant is sent with `Content-Encoding`, the original's `Content-Type`,
    /// and a strong `ETag` of its own (from the sidecar's length and modification
    /// time, and the coding's name), so a cache or a resuming client never mixes
    /// encodings. Under [`RangeServeLayer`](crate::RangeServeLayer), ranges,
    /// `If-Range` and 304 apply to the encoded bytes (RFC 9110 §14.1: a range
    /// counts bytes of the selected representation). Every response of a file
    /// with a sidecar, the identity one too, carries `Vary: Accept-Encoding`.
    ///
    /// Only what a request could get is looked for: the sidecars of the codings
    /// it accepts, best first, up to the first that exists (a hash lookup each
    /// with the [`open_file_cache`](Self::open_file_cache)). A request that
    /// accepts none of them (no `Accept-Encoding`, say) costs no look at all:
    /// its identity response carries `Vary: Accept-Encoding` whether the file
    /// has sidecars or not, as nginx's `gzip_vary` does. One that accepts some
    /// and finds none of them looks for the others, so that the response of a
    /// file without sidecars does not vary.
    ///
    /// A sidecar is trusted to hold the same content as its file. It is never
    /// sent for a file that does not exist, and a request for `NAME.gz` itself
    /// gets it as a plain file (`application/gzip`).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{header, Request};
    /// use http_body_util::Empty;
    /// use tower::{Layer, ServiceExt};
    /// use tower_range_serve::dir::Encoding;
    /// use tower_range_serve::{RangeServeLayer, ServeDir};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::write(root.path().join("app.js"), "console.log(1)").unwrap();
    /// std::fs::write(root.path().join("app.js.br"), b"\x8b\x06\x80console.log(1)\x03").unwrap();
    ///
    /// let dir = ServeDir::new(root.path()).precompressed([Encoding::Brotli, Encoding::Gzip]);
    /// let service = RangeServeLayer::new().layer(dir);
    /// let request = Request::get("/app.js")
    ///     .header(header::ACCEPT_ENCODING, "gzip, br")
    ///     .body(Empty::<Bytes>::new())
    ///     .unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript");
    /// assert_eq!(response.headers()[header::VARY], "accept-encoding");
    /// # });
    /// ```
    pub fn precompressed(self, encodings: impl IntoIterator<Item = Encoding>) -> Self {
        let mut list = Vec::new();
        for encoding in encodings {
            if !list.contains(&encoding) {
                list.push(encoding);
            }
        }
        self.with(|root| root.precompressed = list)
    }

    /// The file sent for a directory requested with its trailing slash, `None`
    /// for none. Defaults to `index.html`.
    ///
    /// # Panics
    ///
    /// If the name is not a plain file name (empty, `..`, or with a separator).
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    ///
    /// let service = ServeDir::new("site").index(Some("default.htm"));
    /// let no_index = ServeDir::new("files").index(None);
    /// # let _ = (service, no_index);
    /// ```
    pub fn index(self, name: Option<&str>) -> Self {
        if let Some(name) = name {
            assert!(
                is_plain_name(name),
                "an index must be a plain file name, not {name:?}"
            );
        }
        self.with(|root| root.index = name.map(str::to_owned))
    }

    /// Lists directories that have no index. Defaults to `false`.
    ///
    /// A listing is an HTML page (`text/html`), or JSON when the request's
    /// `Accept` prefers `application/json` to `text/html`. Entries are sorted,
    /// directories first, then by name; names are HTML-escaped and links
    /// percent-encoded and relative; there is a parent link except at the root.
    /// An entry is listed only if a request for it could be served: hidden files
    /// (names starting with `.`) are left out unless [`show_hidden`](Self::show_hidden),
    /// and symbolic links are judged like the files they point to (one leading
    /// out of the root is left out unless [`follow_symlinks`](Self::follow_symlinks)).
    ///
    /// The JSON is an array with one object per entry, the fields of Caddy's
    /// `browse` JSON:
    ///
    /// ```json
    /// [{"name": "docs", "is_dir": true, "is_symlink": false, "size": 0,
    ///   "mod_time": "2026-12-01T23:00:00Z", "url": "docs/"},
    ///  {"name": "a b.txt", "is_dir": false, "is_symlink": false, "size": 12,
    ///   "mod_time": "2026-12-01T22:59:58Z", "url": "a%20b.txt"}]
    /// ```
    ///
    /// (`mod_time` is `null` where the platform has no modification times.)
    /// Listings are sent with `Cache-Control: no-cache` and `Vary: Accept`, and
    /// are not range-served (they have no validators).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{header, Request};
    /// use http_body_util::{BodyExt, Empty};
    /// use tower::ServiceExt;
    /// use tower_range_serve::ServeDir;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::write(root.path().join("a b.txt"), "hello").unwrap();
    ///
    /// let service = ServeDir::new(root.path()).listing(true);
    /// let request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    /// let page = response.into_body().collect().await.unwrap().to_bytes();
    /// assert!(String::from_utf8_lossy(&page).contains("<a href=\"a%20b.txt\">a b.txt</a>"));
    /// # });
    /// ```
    pub fn listing(self, listing: bool) -> Self {
        self.with(|root| root.listing = listing)
    }

    /// Lists hidden files (names starting with `.`) too. Defaults to `false`.
    /// Hidden files are served either way: this is about listings only.
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    ///
    /// let service = ServeDir::new("files").listing(true).show_hidden(true);
    /// # let _ = service;
    /// ```
    pub fn show_hidden(self, show: bool) -> Self {
        self.with(|root| root.show_hidden = show)
    }

    /// Answers requests that find nothing with `fallback`: a missing file, a
    /// path refused as unsafe, a directory with nothing to show. Like tower-http's
    /// `fallback` (a custom 404 page, a single-page app's `index.html`). Methods
    /// other than `GET` and `HEAD` still get 405.
    ///
    /// The fallback's responses go through [`RangeServeLayer`](crate::RangeServeLayer)
    /// like any other: a [`FileResponse`](crate::FileResponse) with status 200
    /// is range-served, one with another status (set a 404 for a custom error
    /// page, like tower-http's `not_found_service`) is sent as it is.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, StatusCode};
    /// use http_body_util::{BodyExt, Empty};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_range_serve::{FileResponse, RangeBody, ServeDir};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let not_found = service_fn(|_: Request<Empty<Bytes>>| async {
    ///     let mut page = FileResponse::from_bytes(Bytes::from_static(b"no such page")).into_response();
    ///     *page.status_mut() = StatusCode::NOT_FOUND;
    ///     Ok::<http::Response<RangeBody>, Infallible>(page)
    /// });
    /// let service = ServeDir::new("assets").fallback(not_found);
    /// let request = Request::get("/missing").body(Empty::new()).unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::NOT_FOUND);
    /// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "no such page");
    /// # });
    /// ```
    pub fn fallback<G>(self, fallback: G) -> ServeDir<G> {
        // The cache stays: the settings it depends on did not change.
        ServeDir {
            root: self.root,
            fallback,
        }
    }
}

/// What the lookup needs of `request`, or `None` for a path that is not safe.
/// The negotiation headers are read only where they can change the answer.
fn target<B>(request: &Request<B>, root: &Root) -> Option<Target> {
    let path = request.uri().path();
    Some(Target {
        relative: relative_path(path)?,
        uri: request.uri().clone(),
        directory_form: path.ends_with('/'),
        candidates: if root.precompressed.is_empty() {
            Default::default()
        } else {
            candidates(
                request.headers(),
                root.precompressed.iter().map(|e| e.name()),
            )
        },
        json: root.listing && prefers_json(request.headers()),
    })
}

impl<B, F, FB> Service<Request<B>> for ServeDir<F>
where
    F: Service<Request<B>, Response = Response<FB>, Error = Infallible> + Clone,
{
    type Response = Response<ResponseBody<FB>>;
    type Error = Infallible;
    type Future = ResponseFuture<B, F>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The fallback is made ready by the future that calls it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return ResponseFuture::ready(response);
        }
        let Some(target) = target(&request, &self.root) else {
            return ResponseFuture::fallback(self.fallback.clone(), request);
        };
        // From cached dentries and inodes, the lookup takes a few system calls
        // that never wait: done here, without two thread hand-offs.
        match self.root.lookup_cached(&target) {
            Ok(Some(response)) => return ResponseFuture::ready(response),
            Ok(None) => return ResponseFuture::fallback(self.fallback.clone(), request),
            Err(()) => {}
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return ResponseFuture::ready(status(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let root = self.root.clone();
        let lookup = runtime.spawn_blocking(move || root.lookup(&target));
        ResponseFuture::looking_up(lookup, self.fallback.clone(), request)
    }
}
