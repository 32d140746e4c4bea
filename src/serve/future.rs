use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use http::{Response, StatusCode};
use pin_project_lite::pin_project;

use super::ResponseBody;
use super::layer::Config;
use super::quota::{self, Admission};
use super::respond::{respond, too_many_streams, unavailable};
use crate::RangeBody;
use crate::lifecycle::{Refusal, RequestInfo, ResponseInfo};
use crate::protocol::{Conditions, Validators, decide};
use crate::serve::Representation;
use crate::throttle::quota::headers as quota_headers;
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
        config: Arc<Config>,
        // A download waiting for its client's quota (a lease from Redis);
        // boxed: most responses have no quota, and the future stays small.
        admitting: Option<Box<Admitting>>,
    }
}

/// A download decided but not started: its client's quota is being asked.
struct Admitting {
    parts: http::response::Parts,
    body: RangeBody,
    captured: Captured,
    rate: Option<crate::Bandwidth>,
    ranges: Option<Vec<(u64, u64)>>,
    file_len: u64,
    quota: Option<(
        std::sync::Arc<crate::throttle::quota::Account>,
        Option<Wait>,
    )>,
}

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, captured: Option<Captured>, config: Arc<Config>) -> Self {
        Self {
            inner,
            captured,
            config,
            admitting: None,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(admitting) = this.admitting.as_mut() {
                // The client's quota: 429 if spent, wait if Redis is being asked.
                let mut spent = None;
                if let Some((account, wait)) = &mut admitting.quota {
                    let exhausted = admitting.captured.policy.quota_exhausted;
                    loop {
                        if let Some(pending) = wait {
                            ready!(pending.as_mut().poll(cx));
                            *wait = None;
                        }
                        match quota::admission(account, exhausted) {
                            Admission::Open => break,
                            Admission::Wait(pending) => *wait = Some(pending),
                            Admission::Spent => {
                                spent = Some(account.clone());
                                break;
                            }
                        }
                    }
                }
                if let Some(account) = spent {
                    let Admitting {
                        mut parts,
                        captured,
                        ..
                    } = *this.admitting.take().expect("checked above");
                    quota::refuse(&mut parts, &account);
                    this.config.lifecycle.answered(
                        &captured.request,
                        parts.status,
                        captured.policy.client,
                        Some(Refusal::Quota),
                        0,
                    );
                    let body = ResponseBody::range(RangeBody::empty());
                    return Poll::Ready(Ok(Response::from_parts(parts, body)));
                }
                let admitting = this.admitting.take().expect("checked above");
                let (parts, body) = stream(*admitting, this.config);
                return Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::range(body))));
            }
            let mut response = ready!(this.inner.as_mut().poll(cx))?;
            let representation = response.extensions_mut().remove::<Representation>();
            let (Some(representation), Some(captured)) = (representation, this.captured.take())
            else {
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
                let validators = match captured.conditions.compares_validators() {
                    true => Validators::from_headers(&parts.headers, SystemTime::now()),
                    false => Validators::default(),
                };
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
            let account = config.bandwidth.quota_account(&captured.policy);
            let body = if captured.head || http_body::Body::is_end_stream(&body) {
                // The status a GET would get: 429 when it would be over its streams
                // or its quota (as far as this process knows).
                let would_stream = captured.head && !http_body::Body::is_end_stream(&body);
                let refused = match &account {
                    Some(account) if would_stream => {
                        let spent = quota::spent_now(account, captured.policy.quota_exhausted);
                        match spent {
                            true => quota::refuse(&mut parts, account),
                            false => quota::inform(&mut parts, account),
                        }
                        spent.then_some(Refusal::Quota)
                    }
                    _ => None,
                };
                let refused = refused.or_else(|| {
                    let over = would_stream && !config.bandwidth.would_admit(&captured.policy);
                    over.then(|| {
                        too_many_streams(&mut parts, config.retry_after);
                        Refusal::TooManyStreams
                    })
                });
                let sent = match captured.head {
                    true => 0,
                    false => http_body::Body::size_hint(&body).exact().unwrap_or(0),
                };
                config.lifecycle.answered(
                    &captured.request,
                    parts.status,
                    captured.policy.client,
                    refused,
                    sent,
                );
                match captured.head {
                    true => RangeBody::empty(),
                    false => body,
                }
            } else {
                let admitting = Admitting {
                    parts,
                    body,
                    captured,
                    rate: representation.rate,
                    ranges,
                    file_len: len,
                    quota: account.map(|account| (account, None)),
                };
                if admitting.quota.is_none() {
                    // No quota to ask: the download starts now.
                    let (parts, body) = stream(admitting, config);
                    return Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::range(body))));
                }
                // The download starts once its client's quota says so.
                *this.admitting = Some(Box::new(admitting));
                continue;
            };
            return Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::range(body))));
        }
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

/// Admits a body (its client's quota allowed it) under the bandwidth policy
/// and tracks its life; answers 429 for a client over its stream limit.
fn stream(admitting: Admitting, config: &Config) -> (http::response::Parts, RangeBody) {
    let Admitting {
        mut parts,
        body,
        captured,
        rate,
        ranges,
        file_len,
        quota,
    } = admitting;
    let client = captured.policy.client.clone();
    let gate = quota.map(|(account, _)| {
        quota::inform(&mut parts, &account);
        config.bandwidth.quota_gate(account, &captured.policy)
    });
    let body = match config.bandwidth.admit(captured.policy, rate) {
        Ok(Some(throttle)) => body.throttled(throttle),
        Ok(None) => body,
        Err(TooManyStreams) => {
            too_many_streams(&mut parts, config.retry_after);
            for name in [quota_headers::RATELIMIT, quota_headers::RATELIMIT_POLICY] {
                parts.headers.remove(name);
            }
            config.lifecycle.answered(
                &captured.request,
                parts.status,
                client,
                Some(Refusal::TooManyStreams),
                0,
            );
            return (parts, RangeBody::empty());
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
    let body = match gate {
        Some(gate) => body.quota(gate),
        None => body,
    };
    let body = body.tracked(config.lifecycle.track(captured.request, response));
    (parts, body)
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
