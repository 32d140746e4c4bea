//! Entity tags and their comparison functions (RFC 9110 §8.8.3).
//!
//! ```text
//! entity-tag = [ weak ] opaque-tag
//! weak       = %s"W/"
//! opaque-tag = DQUOTE *etagc DQUOTE
//! etagc      = %x21 / %x23-7E / obs-text
//! ```
//!
//! Parsing never allocates: an [`EntityTag`] borrows from the header value.

use http::HeaderValue;

/// A parsed entity tag, borrowing its opaque part from a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntityTag<'a> {
    weak: bool,
    /// The characters between the quotes.
    opaque: &'a [u8],
}

impl<'a> EntityTag<'a> {
    /// Parses a header value holding exactly one entity tag (an `ETag` or `If-Range` value).
    pub(crate) fn parse(value: &'a [u8]) -> Option<Self> {
        match Self::parse_prefix(trim(value))? {
            (tag, []) => Some(tag),
            _ => None,
        }
    }

    /// Parses one entity tag at the start of `input`, returning it and the rest.
    fn parse_prefix(input: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let (weak, input) = match input.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let input = input.strip_prefix(b"\"")?;
        let end = input.iter().position(|&b| b == b'"')?;
        let opaque = &input[..end];
        if !opaque.iter().all(|&b| b == 0x21 || b >= 0x23) || opaque.contains(&0x7f) {
            return None;
        }
        Some((Self { weak, opaque }, &input[end + 1..]))
    }

    /// Whether this tag is weak (`W/"…"`).
    #[cfg(test)]
    pub(crate) fn is_weak(&self) -> bool {
        self.weak
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong and the same opaque tag.
    pub(crate) fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): the same opaque tag, weakness ignored.
    pub(crate) fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// How two entity tags are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Strong,
    Weak,
}

/// Evaluates a list-valued tag condition (`If-Match`, `If-None-Match`) against the
/// current entity tag: is `*` present, or does any listed tag match?
///
/// The field may span several header lines (RFC 9110 §5.3). A member that is not a
/// well-formed entity tag ends the parsing of its line; what was parsed before it
/// still counts. A representation without an entity tag matches only `*`.
pub(crate) fn list_matches(
    lines: &[HeaderValue],
    current: Option<&EntityTag<'_>>,
    comparison: Comparison,
) -> bool {
    lines.iter().any(|line| {
        let line = trim(line.as_bytes());
        if line == b"*" {
            return true;
        }
        let Some(current) = current else {
            return false;
        };
        ListMembers { rest: line }.any(|tag| match comparison {
            Comparison::Strong => tag.strong_eq(current),
            Comparison::Weak => tag.weak_eq(current),
        })
    })
}

/// Iterates over the entity tags of a `#entity-tag` list, stopping at the first
/// malformed member.
struct ListMembers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ListMembers<'a> {
    type Item = EntityTag<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Empty list elements and optional whitespace are allowed (RFC 9110 §5.6.1).
        let start = self
            .rest
            .iter()
            .position(|&b| !matches!(b, b',' | b' ' | b'\t'))?;
        let (tag, rest) = EntityTag::parse_prefix(&self.rest[start..])?;
        let rest = trim_start(rest);
        if !rest.is_empty() && rest[0] != b',' {
            self.rest = &[];
            return None;
        }
        self.rest = rest;
        Some(tag)
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim(bytes: &[u8]) -> &[u8] {
    let bytes = trim_start(bytes);
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> EntityTag<'_> {
        EntityTag::parse(s.as_bytes()).unwrap()
    }

    fn lines(values: &[&'static str]) -> Vec<HeaderValue> {
        values.iter().map(|v| HeaderValue::from_static(v)).collect()
    }

    #[test]
    fn parses_strong_and_weak_tags() {
        assert!(!tag("\"abc\"").is_weak());
        assert!(tag("W/\"abc\"").is_weak());
        assert!(tag("\"\"").opaque.is_empty());
        assert_eq!(tag("  \"a-b\"  ").opaque, b"a-b");
    }

    #[test]
    fn rejects_malformed_tags() {
        for bad in [
            "abc",
            "\"abc",
            "w/\"abc\"",
            "\"a\"b",
            "\"a\" \"b\"",
            "W/",
            "",
            "\"a\"\"",
        ] {
            assert_eq!(EntityTag::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn strong_comparison_requires_both_strong() {
        assert!(tag("\"1\"").strong_eq(&tag("\"1\"")));
        assert!(!tag("W/\"1\"").strong_eq(&tag("\"1\"")));
        assert!(!tag("\"1\"").strong_eq(&tag("W/\"1\"")));
        assert!(!tag("\"1\"").strong_eq(&tag("\"2\"")));
    }

    #[test]
    fn weak_comparison_ignores_weakness() {
        assert!(tag("W/\"1\"").weak_eq(&tag("\"1\"")));
        assert!(tag("W/\"1\"").weak_eq(&tag("W/\"1\"")));
        assert!(!tag("W/\"1\"").weak_eq(&tag("W/\"2\"")));
    }

    #[test]
    fn list_matches_any_member_across_lines() {
        let current = tag("\"b\"");
        let list = lines(&["\"a\", \"b\""]);
        assert!(list_matches(&list, Some(&current), Comparison::Strong));
        let list = lines(&["\"a\"", " ,, \"b\" ,"]);
        assert!(list_matches(&list, Some(&current), Comparison::Strong));
        let list = lines(&["\"a\", W/\"b\""]);
        assert!(!list_matches(&list, Some(&current), Comparison::Strong));
        assert!(list_matches(&list, Some(&current), Comparison::Weak));
    }

    #[test]
    fn comma_inside_a_tag_is_part_of_the_tag() {
        let current = tag("\"a,b\"");
        let list = lines(&["\"x\", \"a,b\""]);
        assert!(list_matches(&list, Some(&current), Comparison::Strong));
        let list = lines(&["\"a\", \"b\""]);
        assert!(!list_matches(&list, Some(&current), Comparison::Weak));
    }

    #[test]
    fn star_matches_any_representation() {
        let list = lines(&["*"]);
        assert!(list_matches(&list, None, Comparison::Strong));
        assert!(list_matches(&list, Some(&tag("\"x\"")), Comparison::Weak));
    }

    #[test]
    fn malformed_member_stops_the_line() {
        let current = tag("\"b\"");
        let list = lines(&["\"a\" junk, \"b\""]);
        assert!(!list_matches(&list, Some(&current), Comparison::Weak));
        let list = lines(&["\"b\", junk"]);
        assert!(list_matches(&list, Some(&current), Comparison::Weak));
    }

    #[test]
    fn without_current_tag_only_star_matches() {
        let list = lines(&["\"a\""]);
        assert!(!list_matches(&list, None, Comparison::Weak));
    }
}
