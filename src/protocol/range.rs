//! The `Range` header (RFC 9110 §14.1–14.2): syntax, then resolution against a length.
//!
//! ```text
//! Range           = ranges-specifier
//! ranges-specifier = range-unit "=" range-set
//! range-set       = 1#range-spec
//! range-spec      = int-range / suffix-range / other-range
//! int-range       = first-pos "-" [ last-pos ]
//! suffix-range    = "-" suffix-length
//! ```
//!
//! Syntax is checked by the `http-range-header` crate; the policy is ours and lives in
//! [`resolve`]:
//!
//! - An invalid header, another unit, or more ranges than the configured cap: the
//!   header is ignored and the whole representation is served (§14.2 lets a server
//!   ignore `Range`; nginx's `max_ranges` does the same). The parser also rejects
//!   numbers of more than 30 digits and more than 15 empty or malformed members;
//!   such headers are ignored too.
//! - Ends past the end are clamped; a suffix longer than the representation selects
//!   all of it; ranges that start at or past the end are dropped. Nothing left: 416.
//! - Overlapping and adjacent ranges are merged (§14.3 allows coalescing); the
//!   parts keep the order in which they were asked for, a merged part taking the
//!   place of its first member (§15.3.7.2).
//! - Amplification guard: when the requested ranges add up to more than the length
//!   of the representation, the header is ignored and the whole representation is
//!   served once (the CVE-2011-3192 class of attacks, mitigated as nginx does).

use std::num::NonZeroUsize;

use http_range_header::{SyntacticallyCorrectRange, parse_range_header_with_max_ranges};

/// A non-empty, in-bounds byte range `start..end` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start
    }

    /// The `Content-Range` value for this range of a representation of `complete` bytes.
    pub(crate) fn content_range(&self, complete: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end - 1, complete)
    }
}

/// What a `Range` header asks of a representation of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Serve the whole representation: the header is invalid, over a limit, or asks
    /// for more than the whole.
    Ignore,
    /// Serve these ranges: disjoint, non-adjacent, in the order asked, never empty.
    Ranges(Vec<ByteRange>),
    /// No range overlaps the representation (416).
    Unsatisfiable,
}

/// Resolves a raw `Range` header value against a representation of `len` bytes.
///
/// `len` must be non-zero: a zero-length representation is always served whole.
pub(crate) fn resolve(value: &[u8], len: u64, max_ranges: NonZeroUsize) -> Resolved {
    debug_assert!(len > 0);
    let Ok(value) = std::str::from_utf8(value) else {
        return Resolved::Ignore;
    };
    let Ok(parsed) = parse_range_header_with_max_ranges(value, max_ranges) else {
        return Resolved::Ignore;
    };

    let mut requested: u64 = 0;
    let ranges: Vec<ByteRange> = parsed
        .into_ranges()
        .into_iter()
        .filter_map(|spec| clamp(spec, len))
        .inspect(|range| requested = requested.saturating_add(range.len()))
        .collect();
    if ranges.is_empty() {
        return Resolved::Unsatisfiable;
    }
    if requested > len {
        return Resolved::Ignore;
    }
    Resolved::Ranges(coalesce(ranges))
}

/// Applies one syntactically valid range-spec to a length (§14.1.1–14.1.2).
fn clamp(spec: SyntacticallyCorrectRange, len: u64) -> Option<ByteRange> {
    let (start, end) = match spec {
        SyntacticallyCorrectRange::FromStart(first) => (first, len),
        SyntacticallyCorrectRange::FromLast(suffix) => (len.saturating_sub(suffix), len),
        SyntacticallyCorrectRange::Indexed(first, last) => (first, last.saturating_add(1).min(len)),
    };
    (start < end).then_some(ByteRange { start, end })
}

/// Merges ranges that overlap or touch. The merged ranges keep the request's
/// order, each in the place of its first member.
fn coalesce(ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    if ranges.len() < 2 {
        return ranges;
    }
    let mut by_start: Vec<usize> = (0..ranges.len()).collect();
    by_start.sort_unstable_by_key(|&i| ranges[i].start);
    // (index of the first member asked for, merged range)
    let mut merged: Vec<(usize, ByteRange)> = Vec::with_capacity(ranges.len());
    for i in by_start {
        let range = ranges[i];
        match merged.last_mut() {
            Some((first, last)) if range.start <= last.end => {
                last.end = last.end.max(range.end);
                *first = (*first).min(i);
            }
            _ => merged.push((i, range)),
        }
    }
    merged.sort_unstable_by_key(|&(first, _)| first);
    merged.into_iter().map(|(_, range)| range).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: NonZeroUsize = match NonZeroUsize::new(100) {
        Some(max) => max,
        None => unreachable!(),
    };

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn ranges(value: &str, len: u64) -> Resolved {
        resolve(value.as_bytes(), len, MAX)
    }

    #[test]
    fn single_ranges_of_every_form() {
        assert_eq!(ranges("bytes=0-9", 100), Resolved::Ranges(vec![r(0, 10)]));
        assert_eq!(ranges("bytes=90-", 100), Resolved::Ranges(vec![r(90, 100)]));
        assert_eq!(ranges("bytes=-10", 100), Resolved::Ranges(vec![r(90, 100)]));
        assert_eq!(
            ranges("bytes=99-99", 100),
            Resolved::Ranges(vec![r(99, 100)])
        );
    }

    #[test]
    fn unit_is_case_insensitive() {
        assert_eq!(ranges("Bytes=0-0", 10), Resolved::Ranges(vec![r(0, 1)]));
        assert_eq!(ranges("BYTES=0-0", 10), Resolved::Ranges(vec![r(0, 1)]));
    }

    #[test]
    fn end_past_eof_is_clamped_and_long_suffix_is_whole() {
        assert_eq!(ranges("bytes=5-1000", 10), Resolved::Ranges(vec![r(5, 10)]));
        assert_eq!(ranges("bytes=-1000", 10), Resolved::Ranges(vec![r(0, 10)]));
    }

    #[test]
    fn huge_numbers_clamp_without_overflow() {
        let max = u64::MAX;
        assert_eq!(
            ranges(&format!("bytes=0-{max}"), 10),
            Resolved::Ranges(vec![r(0, 10)])
        );
        assert_eq!(
            ranges("bytes=0-99999999999999999999999", 10),
            Resolved::Ranges(vec![r(0, 10)])
        );
        assert_eq!(
            ranges(&format!("bytes={max}-"), 10),
            Resolved::Unsatisfiable
        );
    }

    #[test]
    fn starts_past_the_end_are_unsatisfiable() {
        assert_eq!(ranges("bytes=10-", 10), Resolved::Unsatisfiable);
        assert_eq!(ranges("bytes=10-20, 30-40", 10), Resolved::Unsatisfiable);
        assert_eq!(ranges("bytes=-0", 10), Resolved::Unsatisfiable);
    }

    #[test]
    fn unsatisfiable_members_are_dropped_beside_satisfiable_ones() {
        assert_eq!(
            ranges("bytes=50-60, 0-1", 10),
            Resolved::Ranges(vec![r(0, 2)])
        );
    }

    #[test]
    fn invalid_syntax_or_other_units_are_ignored() {
        for value in [
            "",
            "bytes=",
            "bytes=,,,",
            "bytes=a-b",
            "bytes=5-1",
            "bytes=--1",
            "bytes=1-2-3",
            "bytes 0-1",
            "items=0-1",
            "bytes=0-1, x",
            "bytes=0-000000000000000000000000000000000000001",
        ] {
            assert_eq!(ranges(value, 100), Resolved::Ignore, "{value:?}");
        }
        assert_eq!(resolve(b"bytes=0-1\xff", 100, MAX), Resolved::Ignore);
    }

    #[test]
    fn overlapping_and_adjacent_ranges_are_merged_in_the_order_asked() {
        assert_eq!(
            ranges("bytes=20-29, 0-4, 5-9, 3-6", 100),
            Resolved::Ranges(vec![r(20, 30), r(0, 10)])
        );
        assert_eq!(
            ranges("bytes=50-59, 0-9, 30-39", 100),
            Resolved::Ranges(vec![r(50, 60), r(0, 10), r(30, 40)])
        );
        assert_eq!(
            ranges("bytes=30-39, 0-9, 5-35", 100),
            Resolved::Ranges(vec![r(0, 40)])
        );
        assert_eq!(
            ranges("bytes=0-1, 2-3", 100),
            Resolved::Ranges(vec![r(0, 4)])
        );
    }

    #[test]
    fn asking_for_more_than_the_whole_is_ignored() {
        assert_eq!(ranges("bytes=0-, 0-", 100), Resolved::Ignore);
        assert_eq!(ranges("bytes=0-60, 40-99", 100), Resolved::Ignore);
        // Exactly the whole is still a range request.
        assert_eq!(
            ranges("bytes=0-49, 50-99", 100),
            Resolved::Ranges(vec![r(0, 100)])
        );
    }

    #[test]
    fn more_ranges_than_the_cap_are_ignored() {
        let max = NonZeroUsize::new(3).unwrap();
        assert!(matches!(
            resolve(b"bytes=0-0,2-2,4-4", 100, max),
            Resolved::Ranges(_)
        ));
        assert_eq!(
            resolve(b"bytes=0-0,2-2,4-4,6-6", 100, max),
            Resolved::Ignore
        );
    }

    #[test]
    fn content_range_is_inclusive() {
        assert_eq!(r(0, 10).content_range(100), "bytes 0-9/100");
    }

    proptest! {
        #[test]
        fn resolved_ranges_are_in_bounds_disjoint_and_apart(
            value in "(bytes|BYTES|x)=[0-9, -]{0,40}",
            len in 1u64..10_000,
        ) {
            if let Resolved::Ranges(ranges) = resolve(value.as_bytes(), len, MAX) {
                prop_assert!(!ranges.is_empty());
                let total: u64 = ranges.iter().map(ByteRange::len).sum();
                prop_assert!(total <= len);
                for (i, a) in ranges.iter().enumerate() {
                    for b in &ranges[i + 1..] {
                        prop_assert!(a.end < b.start || b.end < a.start, "{ranges:?}");
                    }
                }
                for range in ranges {
                    prop_assert!(range.start < range.end && range.end <= len);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..64), len in 1u64..u64::MAX) {
            let _ = resolve(&value, len, MAX);
        }
    }
}
