use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use crate::RangeBody;

/// The response future of [`ServeObjects`](super::ServeObjects).
///
/// # Example
///
/// ```
/// use std::future::Future;
/// use tower_range_serve::objects::ResponseFuture;
///
/// fn assert_future<F: Future + Send>(_: &F) {}
/// # fn check(future: ResponseFuture) {
/// assert_future(&future);
/// # }
/// ```
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Response<RangeBody>> + Send>>,
}

impl ResponseFuture {
    pub(crate) fn new(inner: impl Future<Output = Response<RangeBody>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<RangeBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
