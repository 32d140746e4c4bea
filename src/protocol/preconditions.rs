//! Conditional requests (RFC 9110 §13) for `GET` and `HEAD`.
//!
//! The evaluation order is that of §13.2.2:
//!
//! 1. `If-Match` present: false → 412.
//! 2. Otherwise `If-Unmodified-Since` present: false → 412.
//! 3. `If-None-Match` present: false → 304.
//! 4. Otherwise `If-Modified-Since` present: false → 304.
//! 5. `If-Range` decides whether `Range` is honoured ([`if_range_allows_range`]).
//!
//! A date field that is not exactly one valid HTTP-date is ignored, and so is a date
//! condition on a representation without `Last-Modified` (§13.1.3, §13.1.4).

use crate::protocol::entity_tag::{Comparison, EntityTag, list_matches};
use crate::protocol::headers::{Conditions, Field, Validators};

/// The outcome of steps 1–4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Every condition holds: go on to range processing.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` for a `GET` or `HEAD` request.
pub(crate) fn evaluate(conditions: &Conditions, validators: &Validators<'_>) -> Precondition {
    let etag = validators.etag.as_ref();
    if !conditions.if_match.is_empty() {
        // §13.1.1: strong comparison.
        if !list_matches(&conditions.if_match, etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(field) = &conditions.if_unmodified_since {
        // §13.1.4: false if modified after the date.
        if let (Some(since), Some(modified)) = (field.date(), validators.last_modified) {
            if modified > since {
                return Precondition::Failed;
            }
        }
    }

    if !conditions.if_none_match.is_empty() {
        // §13.1.2: weak comparison; a match is "false", which is 304 for GET and HEAD.
        if list_matches(&conditions.if_none_match, etag, Comparison::Weak) {
            return Precondition::NotModified;
        }
    } else if let Some(field) = &conditions.if_modified_since {
        // §13.1.3: false if not modified since the date.
        if let (Some(since), Some(modified)) = (field.date(), validators.last_modified) {
            if modified <= since {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether an `If-Range` field lets `Range` be honoured (§13.1.5).
///
/// An entity tag must strongly match the current one (a weak tag never does); a date
/// must equal `Last-Modified` exactly, and only while that date is strong. Anything
/// else, including an unparseable value, means "send the whole representation".
pub(crate) fn if_range_allows_range(field: &Field, validators: &Validators<'_>) -> bool {
    let Some(value) = field.value() else {
        return false;
    };
    let bytes = value.as_bytes();
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"\"") || trimmed.starts_with(b"W/") {
        return match (EntityTag::parse(bytes), &validators.etag) {
            (Some(requested), Some(current)) => requested.strong_eq(current),
            _ => false,
        };
    }
    match (field.date(), validators.last_modified) {
        (Some(date), Some(modified)) => validators.last_modified_is_strong && date == modified,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::header::{self, HeaderMap, HeaderName, HeaderValue};

    use super::*;

    const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const EARLIER: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const LATER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    fn response_headers(etag: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static(etag));
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static(LAST_MODIFIED),
        );
        headers
    }

    fn long_after() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000)
    }

    fn check(request: &[(HeaderName, &'static str)]) -> Precondition {
        let mut headers = HeaderMap::new();
        for (name, value) in request {
            headers.append(name, HeaderValue::from_static(value));
        }
        let response = response_headers("\"v1\"");
        let validators = Validators::from_headers(&response, long_after());
        evaluate(&Conditions::from_headers(&headers), &validators)
    }

    fn if_range(value: &'static str, etag: &'static str, now: SystemTime) -> bool {
        let response = response_headers(etag);
        let validators = Validators::from_headers(&response, now);
        if_range_allows_range(&Field::One(HeaderValue::from_static(value)), &validators)
    }

    use Precondition::*;

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(check(&[]), Proceed);
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        assert_eq!(check(&[(header::IF_MATCH, "\"v1\"")]), Proceed);
        assert_eq!(check(&[(header::IF_MATCH, "\"v0\", \"v1\"")]), Proceed);
        assert_eq!(check(&[(header::IF_MATCH, "*")]), Proceed);
        assert_eq!(check(&[(header::IF_MATCH, "W/\"v1\"")]), Failed);
        assert_eq!(check(&[(header::IF_MATCH, "\"v0\"")]), Failed);
        assert_eq!(check(&[(header::IF_MATCH, "garbage")]), Failed);
    }

    #[test]
    fn if_unmodified_since_fails_when_modified_after() {
        assert_eq!(check(&[(header::IF_UNMODIFIED_SINCE, EARLIER)]), Failed);
        assert_eq!(
            check(&[(header::IF_UNMODIFIED_SINCE, LAST_MODIFIED)]),
            Proceed
        );
        assert_eq!(
            check(&[(header::IF_UNMODIFIED_SINCE, "not a date")]),
            Proceed
        );
    }

    #[test]
    fn if_match_takes_precedence_over_if_unmodified_since() {
        let request = [
            (header::IF_MATCH, "\"v1\""),
            (header::IF_UNMODIFIED_SINCE, EARLIER),
        ];
        assert_eq!(check(&request), Proceed);
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert_eq!(check(&[(header::IF_NONE_MATCH, "\"v1\"")]), NotModified);
        assert_eq!(check(&[(header::IF_NONE_MATCH, "W/\"v1\"")]), NotModified);
        assert_eq!(check(&[(header::IF_NONE_MATCH, "*")]), NotModified);
        assert_eq!(check(&[(header::IF_NONE_MATCH, "\"v0\"")]), Proceed);
    }

    #[test]
    fn if_modified_since_is_not_modified_at_or_after_the_date() {
        assert_eq!(
            check(&[(header::IF_MODIFIED_SINCE, LAST_MODIFIED)]),
            NotModified
        );
        assert_eq!(check(&[(header::IF_MODIFIED_SINCE, LATER)]), NotModified);
        assert_eq!(check(&[(header::IF_MODIFIED_SINCE, EARLIER)]), Proceed);
        assert_eq!(check(&[(header::IF_MODIFIED_SINCE, "2024-01-01")]), Proceed);
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let request = [
            (header::IF_NONE_MATCH, "\"v0\""),
            (header::IF_MODIFIED_SINCE, LATER),
        ];
        assert_eq!(check(&request), Proceed);
    }

    #[test]
    fn failed_if_match_wins_over_not_modified() {
        let request = [
            (header::IF_MATCH, "\"v0\""),
            (header::IF_NONE_MATCH, "\"v1\""),
        ];
        assert_eq!(check(&request), Failed);
    }

    #[test]
    fn several_date_lines_are_ignored() {
        let request = [
            (header::IF_MODIFIED_SINCE, LATER),
            (header::IF_MODIFIED_SINCE, LATER),
        ];
        assert_eq!(check(&request), Proceed);
    }

    #[test]
    fn if_range_matches_a_strong_etag_only() {
        assert!(if_range("\"v1\"", "\"v1\"", long_after()));
        assert!(!if_range("\"v0\"", "\"v1\"", long_after()));
        assert!(!if_range("W/\"v1\"", "\"v1\"", long_after()));
        assert!(!if_range("\"v1\"", "W/\"v1\"", long_after()));
    }

    #[test]
    fn weak_etag_never_satisfies_if_range() {
        assert!(!if_range("W/\"v1\"", "W/\"v1\"", long_after()));
    }

    #[test]
    fn if_range_date_must_equal_a_strong_last_modified() {
        assert!(if_range(LAST_MODIFIED, "\"v1\"", long_after()));
        assert!(!if_range(LATER, "\"v1\"", long_after()));
        assert!(!if_range(EARLIER, "\"v1\"", long_after()));
        let lm = crate::protocol::headers::parse_date(&HeaderValue::from_static(LAST_MODIFIED));
        assert!(!if_range(LAST_MODIFIED, "\"v1\"", lm.unwrap()));
    }

    #[test]
    fn unparseable_if_range_never_matches() {
        assert!(!if_range("yesterday", "\"v1\"", long_after()));
        assert!(!if_range("\"v1", "\"v1\"", long_after()));
        assert!(!if_range_allows_range(
            &Field::Many,
            &Validators::from_headers(&response_headers("\"v1\""), long_after())
        ));
    }
}
