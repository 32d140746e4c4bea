use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::BoxError;
use crate::RangeBody;

pin_project! {
    /// The response body of [`RangeServe`](super::RangeServe): the inner service's
    /// body, untouched (frames, trailers, size hint), or a [`RangeBody`].
    ///
    /// # Example
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body::Body;
    /// use http_body_util::Full;
    /// use tower_range_serve::ResponseBody;
    ///
    /// fn assert_body<B: Body<Data = Bytes>>(_: &B) {}
    /// # fn check(body: ResponseBody<Full<Bytes>>) {
    /// assert_body(&body);
    /// # }
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        Passthrough { #[pin] body: B },
        Range { body: RangeBody },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn passthrough(body: B) -> Self {
        Self {
            inner: Inner::Passthrough { body },
        }
    }

    pub(crate) fn range(body: RangeBody) -> Self {
        Self {
            inner: Inner::Range { body },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().inner.project() {
            InnerProj::Passthrough { body } => body.poll_frame(cx).map_err(Into::into),
            InnerProj::Range { body } => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Passthrough { body } => body.is_end_stream(),
            Inner::Range { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Passthrough { body } => body.size_hint(),
            Inner::Range { body } => body.size_hint(),
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Passthrough { .. } => f.write_str("ResponseBody::Passthrough"),
            Inner::Range { body } => f.debug_tuple("ResponseBody::Range").field(body).finish(),
        }
    }
}
