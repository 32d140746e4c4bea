use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Response, header};
use pin_project_lite::pin_project;

use super::ResponseBody;
use super::verify::Refusal;

pin_project! {
    /// The response future of [`SignedLinks`](super::SignedLinks): the inner
    /// service's response, or a refusal made without calling it.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Refused { refusal: Refusal },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn refused(refusal: Refusal) -> Self {
        Self {
            kind: Kind::Refused { refusal },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(ResponseBody::passthrough)))
            }
            KindProj::Refused { refusal } => Poll::Ready(Ok(refuse(*refusal))),
        }
    }
}

/// The answer to a refused link: its status, a short text, never cached.
fn refuse<B>(refusal: Refusal) -> Response<ResponseBody<B>> {
    // Counted with the layer's refusals (`lifecycle::Metrics`), without the
    // range layer's own labels: this layer runs before it.
    #[cfg(feature = "metrics")]
    metrics::counter!(crate::lifecycle::Metrics::REFUSALS, "cause" => "signed_link").increment(1);
    let text = refusal.text();
    let mut response = Response::new(ResponseBody::refusal(text));
    *response.status_mut() = refusal.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("ResponseFuture::Inner"),
            Kind::Refused { refusal } => f
                .debug_tuple("ResponseFuture::Refused")
                .field(refusal)
                .finish(),
        }
    }
}
