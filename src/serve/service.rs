use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::future::Captured;
use super::layer::Config;
use super::{ResponseBody, ResponseFuture};
use crate::BoxError;
use crate::protocol::Conditions;

/// Middleware that answers range and conditional requests for file-backed responses.
///
/// Made by [`RangeServeLayer`](super::RangeServeLayer); see the
/// [crate documentation](crate) for the behaviour.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{header, Request, Response, StatusCode};
/// use http_body_util::{BodyExt, Empty};
/// use tower::{service_fn, ServiceExt};
/// use tower_range_serve::{FileResponse, RangeBody, RangeServe};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let handler = service_fn(|_req: Request<Empty<Bytes>>| async {
///     Ok::<Response<RangeBody>, Infallible>(
///         FileResponse::from_bytes(Bytes::from_static(b"0123456789")).into_response(),
///     )
/// });
/// let service = RangeServe::new(handler);
///
/// let request = Request::get("/").header(header::RANGE, "bytes=2-4").body(Empty::new()).unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
/// assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 2-4/10");
/// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "234");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RangeServe<S> {
    inner: S,
    /// Shared by the service's clones and its response futures: a request
    /// copies one pointer, not the settings.
    config: Arc<Config>,
}

impl<S> RangeServe<S> {
    /// Wraps `inner` with the default settings of
    /// [`RangeServeLayer`](super::RangeServeLayer).
    ///
    /// ```
    /// use tower::service_fn;
    /// use tower_range_serve::RangeServe;
    ///
    /// let service = RangeServe::new(service_fn(|()| async { Ok::<_, ()>(()) }));
    /// # let _ = service;
    /// ```
    pub fn new(inner: S) -> Self {
        Self::from_config(inner, Arc::new(Config::default()))
    }

    pub(crate) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// A reference to the inner service.
    ///
    /// ```
    /// use tower_range_serve::RangeServe;
    ///
    /// assert_eq!(*RangeServe::new(7).get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    ///
    /// ```
    /// use tower_range_serve::RangeServe;
    ///
    /// let mut service = RangeServe::new(7);
    /// *service.get_mut() += 1;
    /// assert_eq!(service.into_inner(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    ///
    /// ```
    /// use tower_range_serve::RangeServe;
    ///
    /// assert_eq!(RangeServe::new(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RangeServe<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // RFC 9110 §14.2: ranges are defined for GET; HEAD mirrors GET (§9.3.2).
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return ResponseFuture::new(self.inner.call(request), None, self.config.clone());
        }
        let (parts, body) = request.into_parts();
        let bandwidth = &self.config.bandwidth;
        let captured = Captured {
            head: method == Method::HEAD,
            conditions: Conditions::from_headers(&parts.headers),
            policy: bandwidth.policy(&parts),
            #[cfg(feature = "digest")]
            digest: crate::digest::Wanted::from_headers(&parts.headers),
            request: self.config.lifecycle.request_info(&parts),
        };
        let request = Request::from_parts(parts, body);
        ResponseFuture::new(
            self.inner.call(request),
            Some(captured),
            self.config.clone(),
        )
    }
}
