use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::lookup::status;
use crate::RangeBody;

/// The default fallback of [`ServeDir`](crate::ServeDir): an empty 404.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, StatusCode};
/// use http_body_util::Empty;
/// use tower::ServiceExt;
/// use tower_range_serve::dir::NotFound;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let response = NotFound.oneshot(Request::new(Empty::<Bytes>::new())).await.unwrap();
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<RangeBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<RangeBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        ready(Ok(status(StatusCode::NOT_FOUND)))
    }
}
