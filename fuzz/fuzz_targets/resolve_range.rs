//! `Range` resolution never panics, and what it resolves to is always safe to send:
//! ranges inside the file, disjoint and not adjacent, adding up to at most
//! the file, never more of them than `max_ranges`. `decide` agrees with it.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower_range_serve::fuzzing::{decide, resolve_range};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Small lengths most of the time, so that ranges often hit the end.
    small: bool,
    len: u64,
    max_ranges: u8,
    value: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let len = if input.small {
        input.len % 4096 + 1
    } else {
        input.len.max(1)
    };
    let max_ranges = usize::from(input.max_ranges);
    let resolved = resolve_range(&input.value, len, max_ranges);

    if let Some(ranges) = &resolved {
        assert!(ranges.len() <= max_ranges.max(1), "{ranges:?}");
        let mut total: u64 = 0;
        for &(first, last) in ranges {
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

    // The same header through the whole decision gives the same answer.
    if let Ok(value) = HeaderValue::from_bytes(&input.value) {
        let mut request = HeaderMap::new();
        request.insert(header::RANGE, value);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let decided = decide(&request, &HeaderMap::new(), len, max_ranges, now);
        let expected = match resolved {
            None => (200, vec![(0, len - 1)]),
            Some(ranges) if ranges.is_empty() => (416, ranges),
            Some(ranges) => (206, ranges),
        };
        assert_eq!(decided, expected);
    }
});
