//! Turns a [`Decision`] into a status, headers and a planned body.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::header::{self, HeaderName, HeaderValue};
use http::response::Parts;

use crate::RangeBody;
use crate::protocol::{Decision, Multipart};
use crate::source::RangeSource;

const BYTES: HeaderValue = HeaderValue::from_static("bytes");

/// Sets the status and headers of `parts` for `decision` and returns the body to
/// send (for `GET`; `HEAD` sends none).
///
/// Headers the handler set that do not describe the content (`Cache-Control`,
/// `Content-Disposition`, …) are kept; `Content-Length`, `Content-Range`,
/// `Content-Type` and `Accept-Ranges` are the layer's.
pub(crate) fn respond(
    parts: &mut Parts,
    decision: Decision,
    source: Arc<dyn RangeSource>,
    chunk_size: usize,
) -> RangeBody {
    let len = source.len();
    let headers = &mut parts.headers;
    headers.remove(header::CONTENT_RANGE);
    let (status, body) = match decision {
        Decision::Full => {
            headers.insert(header::ACCEPT_RANGES, BYTES);
            // The handler's `Content-Length`, one line, is the source's (a
            // response whose length differs is passed through, never answered
            // here): kept when spelled as RFC 9110 §8.6 has it (`1*DIGIT`; a
            // `+5` parses as 5 too, and is replaced).
            let mut lines = headers.get_all(header::CONTENT_LENGTH).iter();
            let canonical = |value: &HeaderValue| {
                !value.is_empty() && value.as_bytes().iter().all(u8::is_ascii_digit)
            };
            if lines.next().is_some_and(canonical) && lines.next().is_none() {
                parts.status = StatusCode::OK;
                return RangeBody::full(source, chunk_size);
            }
            (StatusCode::OK, RangeBody::full(source, chunk_size))
        }
        Decision::Partial(range) => {
            headers.insert(header::ACCEPT_RANGES, BYTES);
            headers.insert(
                header::CONTENT_RANGE,
                header_value(range.content_range(len)),
            );
            let body = RangeBody::range(source, range, chunk_size);
            (StatusCode::PARTIAL_CONTENT, body)
        }
        Decision::Multipart(ranges) => {
            headers.insert(header::ACCEPT_RANGES, BYTES);
            let multipart = Multipart::new(&ranges, len, headers.get(header::CONTENT_TYPE));
            headers.insert(header::CONTENT_TYPE, multipart.content_type);
            let body = RangeBody::new(source, multipart.segments, chunk_size);
            (StatusCode::PARTIAL_CONTENT, body)
        }
        Decision::NotModified => {
            // RFC 9110 §15.4.5: validators and caching headers stay, content
            // metadata goes.
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_DISPOSITION);
            parts.status = StatusCode::NOT_MODIFIED;
            return RangeBody::empty();
        }
        Decision::PreconditionFailed => {
            // An empty body has no content coding (a precompressed file's).
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_ENCODING);
            headers.remove(header::CONTENT_DISPOSITION);
            (StatusCode::PRECONDITION_FAILED, RangeBody::empty())
        }
        Decision::RangeNotSatisfiable => {
            headers.insert(header::ACCEPT_RANGES, BYTES);
            headers.insert(
                header::CONTENT_RANGE,
                header_value(format!("bytes */{len}")),
            );
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_ENCODING);
            headers.remove(header::CONTENT_DISPOSITION);
            (StatusCode::RANGE_NOT_SATISFIABLE, RangeBody::empty())
        }
    };
    let content_length = http_body::Body::size_hint(&body)
        .exact()
        .expect("a planned body has an exact length");
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    parts.status = status;
    body
}

fn header_value(value: String) -> HeaderValue {
    HeaderValue::try_from(value).expect("digits and ASCII are a valid header value")
}

/// Turns `parts` into a 429 for a client over its stream limit, sent before any
/// byte of the file.
pub(crate) fn too_many_streams(parts: &mut Parts, retry_after: Duration) {
    refuse(parts, StatusCode::TOO_MANY_REQUESTS, retry_after);
}

/// Turns `parts` into a 429 for a client that has spent its quota, sent
/// before any byte of the file, with `Retry-After` the seconds until its window
/// ends (rounded up: a fixed window frees nothing before its end).
pub(crate) fn quota_spent(parts: &mut Parts, reset: Duration) {
    let seconds = crate::throttle::quota::headers::seconds(reset);
    refuse(
        parts,
        StatusCode::TOO_MANY_REQUESTS,
        Duration::from_secs(seconds),
    );
}

/// Turns `parts` into a 503 for a layer that is shutting down.
pub(crate) fn unavailable(parts: &mut Parts, retry_after: Duration) {
    refuse(parts, StatusCode::SERVICE_UNAVAILABLE, retry_after);
}

fn refuse(parts: &mut Parts, status: StatusCode, retry_after: Duration) {
    let headers = &mut parts.headers;
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_ENCODING,
        header::CONTENT_RANGE,
        header::CONTENT_DISPOSITION,
        header::ACCEPT_RANGES,
        // The digest fields (RFC 9530, RFC 3230): a refusal has no representation.
        HeaderName::from_static("repr-digest"),
        HeaderName::from_static("content-digest"),
        HeaderName::from_static("digest"),
    ] {
        headers.remove(name);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_secs().max(1)),
    );
    parts.status = status;
}
