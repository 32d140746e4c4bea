//! The decision function: request conditions, representation validators and length
//! in; what to answer out. Pure: no I/O, no clock, no allocation beyond the ranges.

use std::num::NonZeroUsize;

use crate::protocol::headers::{Conditions, Validators};
use crate::protocol::preconditions::{Precondition, evaluate, if_range_allows_range};
use crate::protocol::range::{ByteRange, Resolved, resolve};

/// What to answer to a `GET` or `HEAD` for a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// 200 with the whole representation.
    Full,
    /// 206 with one range.
    Partial(ByteRange),
    /// 206 `multipart/byteranges` with these ranges (at least two, disjoint).
    Multipart(Vec<ByteRange>),
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 416 Range Not Satisfiable.
    RangeNotSatisfiable,
}

impl Decision {
    /// The inclusive byte ranges this decision sends of `len` bytes.
    pub(crate) fn ranges(&self, len: u64) -> Vec<(u64, u64)> {
        let inclusive = |r: &ByteRange| (r.start, r.end - 1);
        match self {
            Decision::Full if len > 0 => vec![(0, len - 1)],
            Decision::Partial(range) => vec![inclusive(range)],
            Decision::Multipart(ranges) => ranges.iter().map(inclusive).collect(),
            _ => Vec::new(),
        }
    }
}

/// Decides the answer to a `GET` or `HEAD` request for a representation of `len`
/// bytes (RFC 9110 §13.2.2, then §14.2).
///
/// `max_ranges` caps how many ranges one request may ask for; beyond it `Range` is
/// ignored. A zero-length representation is always served whole.
pub(crate) fn decide(
    conditions: &Conditions,
    validators: &Validators<'_>,
    len: u64,
    max_ranges: NonZeroUsize,
) -> Decision {
    match evaluate(conditions, validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return Decision::NotModified,
        Precondition::Failed => return Decision::PreconditionFailed,
    }
    let Some(range) = &conditions.range else {
        return Decision::Full;
    };
    if let Some(if_range) = &conditions.if_range {
        if !if_range_allows_range(if_range, validators) {
            return Decision::Full;
        }
    }
    let Some(range) = range.value() else {
        return Decision::Full;
    };
    if len == 0 {
        return Decision::Full;
    }
    match resolve(range.as_bytes(), len, max_ranges) {
        Resolved::Ignore => Decision::Full,
        Resolved::Unsatisfiable => Decision::RangeNotSatisfiable,
        Resolved::Ranges(mut ranges) if ranges.len() == 1 => Decision::Partial(ranges.remove(0)),
        Resolved::Ranges(ranges) => Decision::Multipart(ranges),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::header::{self, HeaderMap, HeaderName, HeaderValue};

    use super::*;

    const LEN: u64 = 1000;

    fn decide_with(request: &[(HeaderName, &'static str)], len: u64) -> Decision {
        let mut headers = HeaderMap::new();
        for (name, value) in request {
            headers.append(name, HeaderValue::from_static(value));
        }
        let mut response = HeaderMap::new();
        response.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        response.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
        let validators = Validators::from_headers(&response, now);
        let max = NonZeroUsize::new(100).unwrap();
        decide(&Conditions::from_headers(&headers), &validators, len, max)
    }

    fn range(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn no_range_is_full() {
        assert_eq!(decide_with(&[], LEN), Decision::Full);
    }

    #[test]
    fn one_range_is_partial_and_several_are_multipart() {
        assert_eq!(
            decide_with(&[(header::RANGE, "bytes=0-9")], LEN),
            Decision::Partial(range(0, 10))
        );
        assert_eq!(
            decide_with(&[(header::RANGE, "bytes=0-9,20-29")], LEN),
            Decision::Multipart(vec![range(0, 10), range(20, 30)])
        );
    }

    #[test]
    fn unsatisfiable_range_is_416() {
        assert_eq!(
            decide_with(&[(header::RANGE, "bytes=5000-")], LEN),
            Decision::RangeNotSatisfiable
        );
    }

    #[test]
    fn empty_representation_is_full_whatever_the_range() {
        for value in ["bytes=0-0", "bytes=-1", "bytes=5-", "bytes=-0"] {
            assert_eq!(decide_with(&[(header::RANGE, value)], 0), Decision::Full);
        }
    }

    #[test]
    fn if_range_mismatch_serves_the_whole() {
        let request = [(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"v0\"")];
        assert_eq!(decide_with(&request, LEN), Decision::Full);
        let request = [(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"v1\"")];
        assert_eq!(decide_with(&request, LEN), Decision::Partial(range(0, 10)));
    }

    #[test]
    fn if_range_without_range_is_ignored() {
        assert_eq!(
            decide_with(&[(header::IF_RANGE, "\"v0\"")], LEN),
            Decision::Full
        );
    }

    #[test]
    fn preconditions_come_before_ranges() {
        let request = [(header::RANGE, "bytes=5000-"), (header::IF_MATCH, "\"v0\"")];
        assert_eq!(decide_with(&request, LEN), Decision::PreconditionFailed);
        let request = [
            (header::RANGE, "bytes=0-1"),
            (header::IF_NONE_MATCH, "\"v1\""),
        ];
        assert_eq!(decide_with(&request, LEN), Decision::NotModified);
    }

    #[test]
    fn several_range_lines_are_ignored() {
        let request = [(header::RANGE, "bytes=0-1"), (header::RANGE, "bytes=3-4")];
        assert_eq!(decide_with(&request, LEN), Decision::Full);
    }

    #[test]
    fn without_a_comparing_condition_the_validators_do_not_matter() {
        fn validators(headers: &HeaderMap) -> Validators<'_> {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000);
            Validators::from_headers(headers, now)
        }
        let mut response = HeaderMap::new();
        response.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        response.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let empty = HeaderMap::new();
        let max = NonZeroUsize::new(100).unwrap();
        let requests: [&[(HeaderName, &str)]; 9] = [
            &[],
            &[(header::RANGE, "bytes=0-9")],
            &[(header::RANGE, "bytes=0-1,5-6")],
            &[(header::RANGE, "bytes=5000-")],
            &[(header::RANGE, "items=0-1")],
            &[(header::IF_RANGE, "\"v1\""), (header::RANGE, "bytes=0-9")],
            &[(header::IF_MATCH, "\"v1\"")],
            &[(header::IF_NONE_MATCH, "\"v1\"")],
            &[(header::IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT")],
        ];
        let mut compared = 0;
        for request in requests {
            let mut headers = HeaderMap::new();
            for (name, value) in request {
                headers.append(name, HeaderValue::from_str(value).unwrap());
            }
            let conditions = Conditions::from_headers(&headers);
            let known = decide(&conditions, &validators(&response), LEN, max);
            let unread = decide(&conditions, &validators(&empty), LEN, max);
            if conditions.compares_validators() {
                compared += 1;
                assert_ne!(known, unread, "{request:?}");
            } else {
                assert_eq!(known, unread, "{request:?}");
            }
        }
        assert_eq!(compared, 4);
    }
}
