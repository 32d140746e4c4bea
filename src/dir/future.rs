use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Response, StatusCode};
use tokio::task::JoinHandle;

use crate::source::RangeBody;

/// The response future of [`ServeDir`](super::ServeDir).
///
/// # Example
///
/// ```
/// use std::future::Future;
/// use tower_range_serve::dir::ResponseFuture;
///
/// fn assert_future<F: Future + Send>(_: &F) {}
/// # fn check(future: ResponseFuture) {
/// assert_future(&future);
/// # }
/// ```
#[derive(Debug)]
pub struct ResponseFuture {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Ready(Option<Box<Response<RangeBody>>>),
    Opening(JoinHandle<Response<RangeBody>>),
}

impl ResponseFuture {
    pub(crate) fn ready(response: Response<RangeBody>) -> Self {
        Self {
            inner: Inner::Ready(Some(Box::new(response))),
        }
    }

    pub(crate) fn opening(handle: JoinHandle<Response<RangeBody>>) -> Self {
        Self {
            inner: Inner::Opening(handle),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<RangeBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = match &mut self.inner {
            Inner::Ready(response) => *response.take().expect("polled after completion"),
            Inner::Opening(handle) => match ready!(Pin::new(handle).poll(cx)) {
                Ok(response) => response,
                Err(_) => super::service::status(StatusCode::INTERNAL_SERVER_ERROR),
            },
        };
        Poll::Ready(Ok(response))
    }
}
