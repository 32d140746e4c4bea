use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use http::{Response, StatusCode};
use pin_project_lite::pin_project;

use super::ResponseBody;
use super::layer::Config;
use super::respond::{respond, too_many_streams, unavailable};
use crate::RangeBody;
use crate::lifecycle::{Refusal, RequestInfo, ResponseInfo};
use crate::protocol::{Conditions, Validators, decide};
use crate::serve::Representation;
use crate::throttle::{Policy, TooManyStreams};

/// What the service kept of a `GET` or `HEAD` request.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) head: bool,
    pub(crate) conditions: Conditions,
    /// The bandwidth policy.
    pub(crate) policy: Policy,
    pub(crate) request: RequestInfo,
    /// The digest fields the request wants.
    #[cfg(feature = "digest")]
    pub(crate) digest: crate::digest::Wanted,
}

pin_project! {
    /// The response future of [`RangeServe`](super::RangeServe).
    ///
    /// # Example
    ///
    /// ```
    /// use std::future::Future;
    /// use tower_range_serve::ResponseFuture;
    ///
    /// fn assert_future<F: Future>(_: &F) {}
    /// # fn check(future: ResponseFuture<std::future::Ready<Result<http::Response<String>, ()>>>) {
    /// assert_future(&future);
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        captured: Option<Captured>,
        config: Config,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, captured: Option<Captured>, config: Config) -> Self {
        Self {
            inner,
            captured,
            config,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let representation = response.extensions_mut().remove::<Representation>();
        let (Some(representation), Some(captured)) = (representation, this.captured.take()) else {
            return Poll::Ready(Ok(response.map(ResponseBody::passthrough)));
        };
        // A file sent under another status (a custom 404 page, say) is not a
        // representation of the target resource: no ranges, no preconditions.
        // Nor is a body that an inner layer transformed (compressed, say): its
        // bytes are no longer the source's.
        if response.status() != StatusCode::OK || transformed(&response, &representation) {
            return Poll::Ready(Ok(response.map(ResponseBody::passthrough)));
        }

        // The handler's body streams the whole file; it has not read anything yet
        // and is replaced.
        let (mut parts, _whole) = response.into_parts();
        let config = &*this.config;
        if config.lifecycle.is_shutting_down() {
            unavailable(&mut parts, config.retry_after);
            config.lifecycle.answered(
                &captured.request,
                parts.status,
                captured.policy.client,
                Some(Refusal::ShuttingDown),
                0,
            );
            return Poll::Ready(Ok(Response::from_parts(
                parts,
                ResponseBody::range(RangeBody::empty()),
            )));
        }
        let len = representation.source.len();
        let decision = {
            let validators = Validators::from_headers(&parts.headers, SystemTime::now());
            decide(&captured.conditions, &validators, len, config.max_ranges)
        };
        let ranges = config
            .lifecycle
            .observer
            .as_ref()
            .map(|_| decision.ranges(len));
        let body = respond(
            &mut parts,
            decision,
            representation.source,
            config.chunk_size,
        )
        .read_ahead(config.read_ahead);
        #[cfg(feature = "digest")]
        crate::digest::respond(
            &mut parts,
            captured.head,
            &representation.digest,
            &captured.digest,
            &config.digest,
        );
        let body = if captured.head || http_body::Body::is_end_stream(&body) {
            // The status a GET would get: 429 when it would be over its streams.
            let refused = captured.head
                && !http_body::Body::is_end_stream(&body)
                && !config.bandwidth.would_admit(&captured.policy);
            if refused {
                too_many_streams(&mut parts, config.retry_after);
            }
            let sent = match captured.head {
                true => 0,
                false => http_body::Body::size_hint(&body).exact().unwrap_or(0),
            };
            config.lifecycle.answered(
                &captured.request,
                parts.status,
                captured.policy.client,
                refused.then_some(Refusal::TooManyStreams),
                sent,
            );
            match captured.head {
                true => RangeBody::empty(),
                false => body,
            }
        } else {
            stream(
                body,
                &mut parts,
                captured,
                representation.rate,
                ranges,
                len,
                config,
            )
        };
        Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::range(body))))
    }
}

/// Whether an inner layer changed the body of a file response: it has a
/// `Content-Encoding` other than the one the source's bytes have (none, unless
/// [`FileResponse::content_encoding`](crate::FileResponse::content_encoding) said
/// so), or a `Content-Length` other than the source's.
fn transformed<B>(response: &Response<B>, representation: &Representation) -> bool {
    let headers = response.headers();
    let length = headers
        .get(http::header::CONTENT_LENGTH)
        .map(|value| value.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    headers.get(http::header::CONTENT_ENCODING) != representation.encoding.as_ref()
        || length.is_some_and(|length| length != Some(representation.source.len()))
}

/// Admits a body under the bandwidth policy and tracks its life; answers 429 for
/// a client over its stream limit.
fn stream(
    body: RangeBody,
    parts: &mut http::response::Parts,
    captured: Captured,
    rate: Option<crate::Bandwidth>,
    ranges: Option<Vec<(u64, u64)>>,
    file_len: u64,
    config: &Config,
) -> RangeBody {
    let client = captured.policy.client.clone();
    let body = match config.bandwidth.admit(captured.policy, rate) {
        Ok(Some(throttle)) => body.throttled(throttle),
        Ok(None) => body,
        Err(TooManyStreams) => {
            too_many_streams(parts, config.retry_after);
            config.lifecycle.answered(
                &captured.request,
                parts.status,
                client,
                Some(Refusal::TooManyStreams),
                0,
            );
            return RangeBody::empty();
        }
    };
    let response = ResponseInfo {
        client,
        status: parts.status,
        ranges: ranges.unwrap_or_default(),
        file_len,
        total: http_body::Body::size_hint(&body)
            .exact()
            .unwrap_or_default(),
    };
    body.tracked(config.lifecycle.track(captured.request, response))
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
