//! The decision for any request and response headers never panics, answers only
//! 200, 206, 304, 412 or 416, and a 206 sends only bytes of the file:
//! disjoint ranges adding up to at most its length.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower_range_serve::fuzzing::decide;

const REQUEST: [HeaderName; 6] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

#[derive(Debug, Arbitrary)]
enum Value {
    Raw(Vec<u8>),
    /// The response's `ETag`, so that matches happen.
    Etag,
    WeakEtag,
    /// The response's `Last-Modified`, so that date comparisons tie.
    LastModified,
}

#[derive(Debug, Arbitrary)]
struct Input {
    small: bool,
    len: u64,
    max_ranges: u8,
    /// Seconds after the Unix epoch.
    now: u32,
    etag: Option<Vec<u8>>,
    last_modified: Option<u32>,
    request: Vec<(u8, Value)>,
}

fuzz_target!(|input: Input| {
    let len = if input.small {
        input.len % 4096
    } else {
        input.len
    };
    let mut response = HeaderMap::new();
    if let Some(etag) = input
        .etag
        .as_deref()
        .and_then(|v| HeaderValue::from_bytes(v).ok())
    {
        response.insert(header::ETAG, etag);
    }
    if let Some(secs) = input.last_modified {
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.into());
        let value = HeaderValue::from_str(&httpdate::fmt_http_date(date)).unwrap();
        response.insert(header::LAST_MODIFIED, value);
    }
    let mut request = HeaderMap::new();
    for (name, value) in &input.request {
        let name = REQUEST[usize::from(*name) % REQUEST.len()].clone();
        let value = match value {
            Value::Raw(bytes) => HeaderValue::from_bytes(bytes).ok(),
            Value::Etag => response.get(header::ETAG).cloned(),
            Value::WeakEtag => response
                .get(header::ETAG)
                .and_then(|v| HeaderValue::from_bytes(&[b"W/", v.as_bytes()].concat()).ok()),
            Value::LastModified => response.get(header::LAST_MODIFIED).cloned(),
        };
        if let Some(value) = value {
            request.append(name, value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(input.now.into());
    let max_ranges = usize::from(input.max_ranges);

    let (status, ranges) = decide(&request, &response, len, max_ranges, now);
    let has = |name: &HeaderName| request.contains_key(name);
    match status {
        200 if len == 0 => assert!(ranges.is_empty()),
        200 => assert_eq!(ranges, [(0, len - 1)]),
        206 => {
            assert!(has(&header::RANGE) && len > 0);
            assert!(!ranges.is_empty() && ranges.len() <= max_ranges.max(1));
            let mut total: u64 = 0;
            for &(first, last) in &ranges {
                assert!(first <= last && last < len, "{ranges:?} of {len}");
                total += last - first + 1;
            }
            assert!(total <= len, "{ranges:?} add up to more than {len}");
            // Merged: no two parts overlap or touch (they keep the order asked).
            for (i, &(a_first, a_last)) in ranges.iter().enumerate() {
                for &(b_first, b_last) in &ranges[i + 1..] {
                    assert!(
                        a_last + 1 < b_first || b_last + 1 < a_first,
                        "not merged: {ranges:?}"
                    );
                }
            }
        }
        304 => {
            assert!(has(&header::IF_NONE_MATCH) || has(&header::IF_MODIFIED_SINCE));
            assert!(ranges.is_empty());
        }
        412 => {
            assert!(has(&header::IF_MATCH) || has(&header::IF_UNMODIFIED_SINCE));
            assert!(ranges.is_empty());
        }
        416 => assert!(has(&header::RANGE) && len > 0 && ranges.is_empty()),
        other => panic!("status {other}"),
    }
});
