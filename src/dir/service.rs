use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower_service::Service;

use super::ResponseFuture;
use super::path::relative_path;
use crate::serve::FileResponse;
use crate::source::RangeBody;

/// Serves the files under a root directory, by request path.
///
/// Each file is answered as a [`FileResponse`]: put
/// [`RangeServeLayer`](crate::RangeServeLayer) around it for ranges and
/// conditional requests.
///
/// - `GET` and `HEAD` only; other methods get 405 with `Allow: GET, HEAD`.
/// - The path is percent-decoded; `..` segments, backslashes, NUL bytes, drive
///   prefixes and invalid UTF-8 get 404.
/// - Missing files, directories, and files that cannot be opened get 404.
/// - Symbolic links may point anywhere inside the root; a path that resolves to
///   something outside it gets 404, unless [`follow_symlinks`](Self::follow_symlinks)
///   allows it. The check resolves the path just before opening it; it assumes that
///   clients cannot create links inside the root.
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
pub struct ServeDir {
    root: Arc<Root>,
}

#[derive(Debug)]
struct Root {
    path: PathBuf,
    follow_symlinks: bool,
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
            }),
        }
    }

    /// Whether symbolic links may lead outside the root. Defaults to `false`.
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    ///
    /// let service = ServeDir::new("assets").follow_symlinks(true);
    /// # let _ = service;
    /// ```
    #[must_use]
    pub fn follow_symlinks(self, follow: bool) -> Self {
        Self {
            root: Arc::new(Root {
                path: self.root.path.clone(),
                follow_symlinks: follow,
            }),
        }
    }
}

impl Root {
    /// Opens the file at `relative`, on the current thread (blocking).
    fn open(&self, relative: &Path) -> Response<RangeBody> {
        match self.open_checked(relative) {
            Ok(file) => file.into_response(),
            Err(e) if is_not_found(&e) => status(StatusCode::NOT_FOUND),
            Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn open_checked(&self, relative: &Path) -> io::Result<FileResponse> {
        let path = self.path.join(relative);
        if self.follow_symlinks {
            return FileResponse::open_blocking(&path);
        }
        let resolved = path.canonicalize()?;
        // The root is resolved anew each time, not cached: a root that is itself a
        // link swapped at deploy time (`current -> releases/v2`) must follow.
        if !resolved.starts_with(self.path.canonicalize()?) {
            return Err(io::ErrorKind::NotFound.into());
        }
        FileResponse::open_blocking(&resolved)
    }
}

fn is_not_found(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::InvalidFilename
    )
}

/// An empty response with `status`.
pub(super) fn status(status: StatusCode) -> Response<RangeBody> {
    let mut response = Response::new(RangeBody::empty());
    *response.status_mut() = status;
    response
}

impl<B> Service<Request<B>> for ServeDir {
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
            return ResponseFuture::ready(response);
        }
        let Some(relative) = relative_path(request.uri().path()) else {
            return ResponseFuture::ready(status(StatusCode::NOT_FOUND));
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return ResponseFuture::ready(status(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let root = self.root.clone();
        ResponseFuture::opening(runtime.spawn_blocking(move || root.open(&relative)))
    }
}
