//! The facts a decision is made from: what the request asks for ([`Conditions`]) and
//! what the representation is ([`Validators`]). Both are taken from headers only.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::protocol::entity_tag::EntityTag;

/// The request headers that ranges and preconditions depend on (RFC 9110 §13.1, §14.2).
///
/// Values are kept raw (cloning a `HeaderValue` is a reference-count increment) and
/// parsed only when the response turns out to be file-backed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    /// The `Range` value, or `None` if absent. Several `Range` lines make the
    /// field invalid: a singleton field cannot be combined (§5.3).
    pub(crate) range: Option<Field>,
    pub(crate) if_range: Option<Field>,
    /// `If-Match` lines: a list, possibly over several lines.
    pub(crate) if_match: Vec<HeaderValue>,
    /// `If-None-Match` lines: a list, possibly over several lines.
    pub(crate) if_none_match: Vec<HeaderValue>,
    pub(crate) if_modified_since: Option<Field>,
    pub(crate) if_unmodified_since: Option<Field>,
}

/// A singleton header field: one line, or several (which makes it invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    One(HeaderValue),
    Many,
}

impl Field {
    fn from_headers(headers: &HeaderMap, name: &HeaderName) -> Option<Self> {
        let mut lines = headers.get_all(name).iter();
        let first = lines.next()?;
        Some(match lines.next() {
            None => Field::One(first.clone()),
            Some(_) => Field::Many,
        })
    }

    /// The single value, if the field has exactly one line.
    pub(crate) fn value(&self) -> Option<&HeaderValue> {
        match self {
            Field::One(value) => Some(value),
            Field::Many => None,
        }
    }

    /// The field as an HTTP-date; `None` if it is not exactly one valid date.
    pub(crate) fn date(&self) -> Option<SystemTime> {
        parse_date(self.value()?)
    }
}

impl Conditions {
    /// Captures the conditional and range headers of a request.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            range: Field::from_headers(headers, &header::RANGE),
            if_range: Field::from_headers(headers, &header::IF_RANGE),
            if_match: lines(headers, &header::IF_MATCH),
            if_none_match: lines(headers, &header::IF_NONE_MATCH),
            if_modified_since: Field::from_headers(headers, &header::IF_MODIFIED_SINCE),
            if_unmodified_since: Field::from_headers(headers, &header::IF_UNMODIFIED_SINCE),
        }
    }

    /// Whether any condition compares the representation's validators: without
    /// one (a plain `GET`, or a `Range` without `If-Range`) the decision does
    /// not depend on them, and they need not be read.
    pub(crate) fn compares_validators(&self) -> bool {
        self.if_range.is_some()
            || !self.if_match.is_empty()
            || !self.if_none_match.is_empty()
            || self.if_modified_since.is_some()
            || self.if_unmodified_since.is_some()
    }
}

fn lines(headers: &HeaderMap, name: &HeaderName) -> Vec<HeaderValue> {
    headers.get_all(name).iter().cloned().collect()
}

/// Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime form, RFC 9110 §5.6.7).
pub(crate) fn parse_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The validators of the representation being served, read from the response's
/// `ETag` and `Last-Modified` headers: what the client sees is what is compared.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Validators<'a> {
    pub(crate) etag: Option<EntityTag<'a>>,
    pub(crate) last_modified: Option<SystemTime>,
    /// Whether `last_modified` may be used as a strong validator.
    pub(crate) last_modified_is_strong: bool,
}

impl<'a> Validators<'a> {
    /// Reads the validators from response headers, as of `now`.
    ///
    /// A `Last-Modified` date is treated as strong when it lies at least one second
    /// before `now` (RFC 9110 §8.8.2.2): a representation that changed twice within
    /// its last-modified second is then no longer being served under that date.
    pub(crate) fn from_headers(headers: &'a HeaderMap, now: SystemTime) -> Self {
        let etag = headers
            .get(header::ETAG)
            .and_then(|value| EntityTag::parse(value.as_bytes()));
        let last_modified = headers.get(header::LAST_MODIFIED).and_then(parse_date);
        let last_modified_is_strong = last_modified
            .and_then(|date| date.checked_add(Duration::from_secs(1)))
            .is_some_and(|date| date <= now);
        Self {
            etag,
            last_modified,
            last_modified_is_strong,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_range_lines_make_the_field_invalid() {
        let mut headers = HeaderMap::new();
        headers.append(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        headers.append(header::RANGE, HeaderValue::from_static("bytes=2-3"));
        let conditions = Conditions::from_headers(&headers);
        assert_eq!(conditions.range, Some(Field::Many));
        assert_eq!(conditions.range.unwrap().value(), None);
    }

    #[test]
    fn list_fields_keep_every_line() {
        let mut headers = HeaderMap::new();
        headers.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\""));
        headers.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\""));
        assert_eq!(Conditions::from_headers(&headers).if_none_match.len(), 2);
    }

    #[test]
    fn dates_in_all_three_forms_parse_and_garbage_does_not() {
        let expected = parse_date(&HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert!(expected.is_some());
        for other in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_date(&HeaderValue::from_static(other)), expected);
        }
        assert_eq!(parse_date(&HeaderValue::from_static("yesterday")), None);
    }

    #[test]
    fn last_modified_is_strong_only_a_second_after_it() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let date = parse_date(&headers[header::LAST_MODIFIED]).unwrap();
        let later = |ms| date + Duration::from_millis(ms);
        assert!(!Validators::from_headers(&headers, later(999)).last_modified_is_strong);
        assert!(Validators::from_headers(&headers, later(1000)).last_modified_is_strong);
    }
}
