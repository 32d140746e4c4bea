use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::task::JoinHandle;
use tower_service::Service;

use super::lookup::status;
use crate::RangeBody;
use crate::ResponseBody;

pin_project! {
    /// The response future of [`ServeDir`](crate::ServeDir): the lookup (inline
    /// from cached data, else on the blocking pool), then, if it found nothing,
    /// the fallback's answer.
    ///
    /// # Example
    ///
    /// ```
    /// use std::future::Future;
    /// use tower_range_serve::dir::{NotFound, ResponseFuture};
    ///
    /// fn assert_future<F: Future + Send>(_: &F) {}
    /// # fn check(future: ResponseFuture<String, NotFound>) {
    /// assert_future(&future);
    /// # }
    /// ```
    pub struct ResponseFuture<B, F>
    where
        F: Service<Request<B>>,
    {
        #[pin]
        state: State<B, F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<B, F>
    where
        F: Service<Request<B>>,
    {
        Ready { response: Option<Response<RangeBody>> },
        LookingUp {
            handle: JoinHandle<Option<Response<RangeBody>>>,
            fallback: Option<(F, Request<B>)>,
        },
        Fallback { fallback: F, request: Option<Request<B>> },
        Calling { #[pin] future: F::Future },
    }
}

impl<B, F: Service<Request<B>>> ResponseFuture<B, F> {
    pub(super) fn ready(response: Response<RangeBody>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    pub(super) fn looking_up(
        handle: JoinHandle<Option<Response<RangeBody>>>,
        fallback: F,
        request: Request<B>,
    ) -> Self {
        Self {
            state: State::LookingUp {
                handle,
                fallback: Some((fallback, request)),
            },
        }
    }

    pub(super) fn fallback(fallback: F, request: Request<B>) -> Self {
        Self {
            state: State::Fallback {
                fallback,
                request: Some(request),
            },
        }
    }
}

impl<B, F, FB> Future for ResponseFuture<B, F>
where
    F: Service<Request<B>, Response = Response<FB>, Error = Infallible>,
{
    type Output = Result<Response<ResponseBody<FB>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Ready { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::range)));
                }
                StateProj::LookingUp { handle, fallback } => {
                    let found = match ready!(Pin::new(handle).poll(cx)) {
                        Ok(found) => found,
                        Err(_) => Some(status(StatusCode::INTERNAL_SERVER_ERROR)),
                    };
                    if let Some(response) = found {
                        return Poll::Ready(Ok(response.map(ResponseBody::range)));
                    }
                    let (fallback, request) = fallback.take().expect("polled after completion");
                    State::Fallback {
                        fallback,
                        request: Some(request),
                    }
                }
                StateProj::Fallback { fallback, request } => {
                    let Ok(()) = ready!(fallback.poll_ready(cx));
                    let request = request.take().expect("polled after completion");
                    State::Calling {
                        future: fallback.call(request),
                    }
                }
                StateProj::Calling { future } => {
                    let Ok(response) = ready!(future.poll(cx));
                    return Poll::Ready(Ok(response.map(ResponseBody::passthrough)));
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

impl<B, F: Service<Request<B>>> std::fmt::Debug for ResponseFuture<B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
