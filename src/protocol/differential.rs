//! Differential test (unit tests only): our `Range` resolution against `http-range-header` used
//! directly (`parse_range_header` + `validate`), on generated headers.
//!
//! We use the same crate's parser, so syntax is judged alike; the differences are
//! in policy, and each is allowed by RFC 9110:
//!
//! | class | `http-range-header` | ours | RFC 9110 |
//! |---|---|---|---|
//! | `Overlapping`: more than one overlap (`0-9,5-14,8-20`) | rejects (`TooManyOverlapping`) | merges, then serves the union with 206, or 200 when the ranges add up to more than the file | §14.2: a server MAY ignore or reject a header with many small or overlapping ranges, and MAY coalesce overlapping ones (§14.3) |
//! | `Amplification`: accepted ranges adding up to more than the file (`0-,0-`, `0-60,40-99`) | serves them as asked | ignores `Range` (200, whole file once) | §14.2: a server MAY ignore `Range`; this is the CVE-2011-3192 guard |
//! | `Coalesced`: accepted ranges overlapping once, or adjacent | keeps them as asked | merges them (the same bytes in fewer parts), each merged part in the place of its first member; disjoint ranges keep the request's order | §14.3 and §15.3.7.2: a server MAY coalesce overlapping ranges, and SHOULD otherwise keep the request's order |
//!
//! Everything else must agree exactly: the same headers are ignored (invalid
//! syntax, other units, too many ranges or digits), the same are unsatisfiable
//! (416), and single ranges get the same clamped bounds.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use http_range_header::{
    RangeRejected, RangeUnsatisfiableError, SyntacticallyCorrectRange, parse_range_header,
};
use proptest::prelude::*;

use crate::fuzzing::resolve_range;

/// `http-range-header`'s own default cap, used for both sides.
const MAX_RANGES: usize = 100;

/// Why the two may differ for a header; `None` when they must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Disagreement {
    Overlapping,
    Amplification,
    Coalesced,
}

/// Each range-spec on its own, clamped by `http-range-header` (`None` when
/// unsatisfiable): what the reference gives for a single range.
fn clamp_alone(spec: SyntacticallyCorrectRange, len: u64) -> Option<(u64, u64)> {
    let text = match spec {
        SyntacticallyCorrectRange::FromStart(first) => format!("bytes={first}-"),
        SyntacticallyCorrectRange::FromLast(suffix) => format!("bytes=-{suffix}"),
        SyntacticallyCorrectRange::Indexed(first, last) => format!("bytes={first}-{last}"),
    };
    let parsed = parse_range_header(&text).expect("a range-spec printed back parses");
    match parsed.validate(len) {
        Ok(ranges) => {
            assert_eq!(ranges.len(), 1);
            Some((*ranges[0].start(), *ranges[0].end()))
        }
        Err(RangeUnsatisfiableError::Unsatisfiable) => None,
        Err(other) => panic!("{text}: {other}"),
    }
}

/// Sorted, with overlapping and adjacent ranges merged.
fn coalesce(ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    // Merge in order of start, remembering where each merged range was first asked
    // for; then put them back in the request's order.
    let mut by_start: Vec<(u64, u64, usize)> = ranges
        .into_iter()
        .enumerate()
        .map(|(i, (first, last))| (first, last, i))
        .collect();
    by_start.sort_unstable();
    let mut merged: Vec<(usize, (u64, u64))> = Vec::new();
    for (first, last, i) in by_start {
        match merged.last_mut() {
            Some((asked, previous)) if first <= previous.1.saturating_add(1) => {
                previous.1 = previous.1.max(last);
                *asked = (*asked).min(i);
            }
            _ => merged.push((i, (first, last))),
        }
    }
    merged.sort_unstable();
    merged.into_iter().map(|(_, range)| range).collect()
}

fn total(ranges: &[(u64, u64)]) -> u64 {
    ranges
        .iter()
        .map(|(first, last)| last - first + 1)
        .fold(0, u64::saturating_add)
}

fn bounds(ranges: &[RangeInclusive<u64>]) -> Vec<(u64, u64)> {
    ranges.iter().map(|r| (*r.start(), *r.end())).collect()
}

/// Compares the two on one header; returns the disagreement class, if any.
/// Panics where they differ outside the classes of the table above.
fn compare(value: &str, len: u64) -> Option<Disagreement> {
    let ours = resolve_range(value.as_bytes(), len, MAX_RANGES);
    let parsed = match parse_range_header(value) {
        Ok(parsed) => parsed,
        Err(error) => {
            assert_eq!(ours, None, "{value:?} ({error}) must be ignored");
            return None;
        }
    };
    let alone: Vec<(u64, u64)> = parsed
        .clone()
        .into_ranges()
        .into_iter()
        .filter_map(|spec| clamp_alone(spec, len))
        .collect();
    match parsed.validate(len) {
        Err(RangeUnsatisfiableError::Unsatisfiable) => {
            assert_eq!(ours, Some(Vec::new()), "{value:?} of {len} must be 416");
            None
        }
        Err(RangeUnsatisfiableError::Rejected(RangeRejected::TooManyOverlapping)) => {
            // Ours serves the union, unless that would send more than the file.
            let expected = (total(&alone) <= len).then(|| coalesce(alone));
            assert_eq!(ours, expected, "{value:?} of {len}");
            Some(Disagreement::Overlapping)
        }
        Err(other) => panic!("{value:?} of {len}: unexpected {other}"),
        Ok(theirs) => {
            let theirs = bounds(&theirs);
            assert_eq!(theirs, alone, "the reference clamps each range alone");
            if total(&theirs) > len {
                assert_eq!(ours, None, "{value:?} of {len} must be ignored");
                return Some(Disagreement::Amplification);
            }
            let merged = coalesce(theirs.clone());
            assert_eq!(ours.as_ref(), Some(&merged), "{value:?} of {len}");
            (merged != theirs).then_some(Disagreement::Coalesced)
        }
    }
}

/// A number near the interesting places for a file of `len` bytes.
fn position(len: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..len.saturating_mul(2).max(2)).prop_map(|n| n.to_string()),
        1 => (len.saturating_sub(2)..len.saturating_add(2)).prop_map(|n| n.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => Just("18446744073709551616".to_owned()),
        1 => (0u64..100).prop_map(|n| format!("{n:0>30}")),
        1 => (0u64..100).prop_map(|n| format!("{n:0>31}")),
    ]
}

fn range_spec(len: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (position(len), position(len)).prop_map(|(a, b)| format!("{a}-{b}")),
        3 => position(len).prop_map(|a| format!("{a}-")),
        3 => position(len).prop_map(|n| format!("-{n}")),
        1 => Just(String::new()),
        1 => Just(" ".to_owned()),
        1 => "[-0-9a+ \t]{1,6}",
    ]
}

fn header(len: u64) -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        12 => Just("bytes="),
        1 => Just("BYTES="),
        1 => Just("bytes= "),
        1 => Just("items="),
        1 => Just("bytes ="),
        1 => Just(""),
    ];
    let separator = prop_oneof![Just(","), Just(", "), Just(" ,"), Just(",\t")];
    let count = prop_oneof![8 => 1usize..6, 1 => 90usize..110];
    (
        unit,
        separator,
        count.prop_flat_map(move |n| proptest::collection::vec(range_spec(len), n)),
    )
        .prop_map(|(unit, separator, specs)| format!("{unit}{}", specs.join(separator)))
}

fn header_and_len() -> impl Strategy<Value = (String, u64)> {
    prop_oneof![1u64..20, 1u64..5000, Just(u64::MAX)].prop_flat_map(|len| (header(len), Just(len)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn ours_agrees_with_http_range_header_outside_the_policy_differences(
        (value, len) in header_and_len(),
    ) {
        compare(&value, len);
    }
}

#[test]
fn each_disagreement_class_happens_and_nothing_else_differs() {
    let examples: [(&str, u64, Option<Disagreement>); 14] = [
        // Agreement: ignored, unsatisfiable, single ranges clamped alike.
        ("bytes=", 100, None),
        ("bytes=,,,", 100, None),
        ("items=0-1", 100, None),
        ("bytes=5-1", 100, None),
        ("bytes=0-0000000000000000000000000000001", 100, None),
        ("bytes=100-", 100, None),
        ("bytes=-0", 100, None),
        ("bytes=90-1000", 100, None),
        ("bytes=-1000", 100, None),
        ("bytes=0-18446744073709551616", 100, None),
        // Disjoint ranges keep the order asked, on both sides.
        ("bytes=50-59, 0-9", 100, None),
        // Ours merges what the reference keeps as asked.
        ("bytes=0-9, 10-19", 100, Some(Disagreement::Coalesced)),
        // The reference serves 200 bytes of a 100-byte file; ours ignores it.
        ("bytes=0-, 0-", 100, Some(Disagreement::Amplification)),
        // The reference rejects a second overlap; ours merges to 0-20.
        (
            "bytes=0-9, 5-14, 8-20",
            100,
            Some(Disagreement::Overlapping),
        ),
    ];
    for (value, len, expected) in examples {
        assert_eq!(compare(value, len), expected, "{value:?} of {len}");
    }
}

#[test]
fn disagreements_are_only_the_documented_classes() {
    // A fixed sweep: every pair of range-specs around the interesting positions of
    // a 10-byte file, counted by class (any other difference panics in `compare`).
    let positions = [0u64, 1, 4, 5, 9, 10, 11];
    let specs: Vec<String> = positions
        .iter()
        .flat_map(|&a| {
            let mut specs = vec![format!("{a}-"), format!("-{a}")];
            specs.extend(
                positions
                    .iter()
                    .filter(|&&b| b >= a)
                    .map(|b| format!("{a}-{b}")),
            );
            specs
        })
        .collect();
    let mut classes: BTreeMap<Option<Disagreement>, usize> = BTreeMap::new();
    for a in &specs {
        for b in &specs {
            for c in ["", ",3-4", ",8-"] {
                let value = format!("bytes={a},{b}{c}");
                *classes.entry(compare(&value, 10)).or_default() += 1;
            }
        }
    }
    for class in [
        None,
        Some(Disagreement::Overlapping),
        Some(Disagreement::Amplification),
        Some(Disagreement::Coalesced),
    ] {
        assert!(classes.get(&class).is_some_and(|&n| n > 0), "{classes:?}");
    }
}
