//! Proactive negotiation (RFC 9110 §12): `Accept-Encoding` (§12.5.3), and
//! whether `Accept` (§12.5.1) prefers JSON to HTML.
//!
//! ```text
//! Accept-Encoding = #( codings [ weight ] )
//! codings         = content-coding / "identity" / "*"
//! weight          = OWS ";" OWS "q=" qvalue
//! qvalue          = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
//! ```
//!
//! Examples: `gzip, br;q=0.9`, `*;q=0.5, identity`, `identity;q=0`. Element
//! names are case-insensitive; `x-gzip` means `gzip` (§8.4.1.3). An element whose
//! weight does not parse is ignored, as if it were not there.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// A weight in thousandths: `q=0.5` is 500.
type Quality = u16;

const ONE: Quality = 1000;

/// The most codings a server offers that [`candidates`] weighs (more are
/// never candidates): `ServeDir` knows four.
const MAX_CODINGS: usize = 8;

/// The codings a request could be sent, as indices into the server's list,
/// best first (see [`candidates`]). Held inline: reading `Accept-Encoding`
/// allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Candidates {
    indices: [u8; MAX_CODINGS],
    len: u8,
}

impl Candidates {
    /// The indices, best first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.indices[..usize::from(self.len)]
            .iter()
            .map(|&i| usize::from(i))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        self.iter().any(|i| i == index)
    }
}

/// The `available` codings (lowercase names, the server's order of
/// preference) that the request's `Accept-Encoding` could be sent, best
/// first: those weighted above zero and at least as much as the identity, by
/// weight, ties in the server's order. The first of them that exists is the
/// one to send; identity when none does.
///
/// Without the header field a client has said nothing: no candidate (RFC 9110
/// §12.5.3 lets the server pick any coding then; like tower-http, nginx and
/// Caddy, we send none). A coding's weight is that of its first element, or of
/// `*`. Identity competes only with a weight the request gives it
/// (`identity;q=0.5`, or through `*`), and loses ties; unnamed, it is what is
/// sent when no coding is acceptable. When nothing is acceptable at all (say
/// `identity;q=0` and no variant the client takes), the answer is identity
/// all the same: §12.5.3 says the server SHOULD then send the representation
/// without a content coding, and §12.1 allows it instead of 406.
///
/// One pass over the elements, without allocating.
pub(crate) fn candidates<'a>(
    headers: &HeaderMap,
    available: impl Iterator<Item = &'a str> + Clone,
) -> Candidates {
    let Some(elements) = elements(headers, header::ACCEPT_ENCODING) else {
        return Candidates::default();
    };
    let mut weights = [None; MAX_CODINGS];
    let (mut identity, mut any) = (None, None);
    for (name, q) in elements {
        // An element whose weight does not parse is not there.
        let Some(q) = q else { continue };
        let name = if name.eq_ignore_ascii_case("x-gzip") {
            "gzip"
        } else {
            name
        };
        if name == "*" {
            any.get_or_insert(q);
        } else if name.eq_ignore_ascii_case("identity") {
            identity.get_or_insert(q);
        } else if let Some(i) = available
            .clone()
            .take(MAX_CODINGS)
            .position(|coding| coding.eq_ignore_ascii_case(name))
        {
            weights[i].get_or_insert(q);
        }
    }
    let identity = identity.or(any).unwrap_or(0);
    let weight = |i: u8| weights[usize::from(i)].or(any).unwrap_or(0);
    let mut candidates = Candidates::default();
    for i in (0u8..).take(available.count().min(MAX_CODINGS)) {
        let q = weight(i);
        if q > 0 && q >= identity {
            candidates.indices[usize::from(candidates.len)] = i;
            candidates.len += 1;
        }
    }
    // Stable (insertion sort on a few elements, no allocation): ties keep the
    // server's order.
    let len = usize::from(candidates.len);
    candidates.indices[..len].sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    candidates
}

/// Whether `Accept` prefers `application/json` to `text/html`: JSON has a higher
/// weight, by the most specific media range that matches each (§12.5.1).
/// Without `Accept`, or with `*/*` alone, HTML.
pub(crate) fn prefers_json(headers: &HeaderMap) -> bool {
    let Some(elements) = elements(headers, header::ACCEPT) else {
        return false;
    };
    let ranges: Vec<(String, Quality)> = elements
        .filter_map(|(range, q)| Some((range.to_ascii_lowercase(), q?)))
        .collect();
    let quality = |kind: &str, subtype: &str| {
        let exact = format!("{kind}/{subtype}");
        let any_subtype = format!("{kind}/*");
        [exact.as_str(), any_subtype.as_str(), "*/*"]
            .iter()
            .find_map(|wanted| ranges.iter().find(|(r, _)| r == wanted).map(|&(_, q)| q))
            .unwrap_or(0)
    };
    quality("application", "json") > quality("text", "html")
}

/// The elements of every `name` line: each one's name and weight (`None` when
/// the weight does not parse; `ONE` without one). `None` without the field.
fn elements(
    headers: &HeaderMap,
    name: HeaderName,
) -> Option<impl Iterator<Item = (&str, Option<Quality>)>> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    Some(
        lines
            // A line that is not visible ASCII has no element we could match.
            .filter_map(|line| line.to_str().ok())
            .flat_map(|line| line.split(','))
            .filter_map(|element| {
                let mut parts = element.split(';');
                let name = parts.next()?.trim();
                if name.is_empty() {
                    return None;
                }
                let mut q = Some(ONE);
                for parameter in parts {
                    let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
                    if key.trim().eq_ignore_ascii_case("q") {
                        q = qvalue(value.trim());
                    }
                }
                Some((name, q))
            }),
    )
}

/// Parses a qvalue into thousandths, strictly.
fn qvalue(value: &str) -> Option<Quality> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |n, digit| n * 10 + Quality::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(ONE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// A request's headers with these `Accept-Encoding` lines.
    struct Accept(HeaderMap);

    impl Accept {
        /// The coding to send among `available` (all exist), `None` for identity.
        fn choose(&self, available: &[&str]) -> Option<usize> {
            self.candidates(available).iter().next()
        }

        fn candidates(&self, available: &[&str]) -> Candidates {
            candidates(&self.0, available.iter().copied())
        }
    }

    fn accept(values: &[&str]) -> Accept {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Accept(headers)
    }

    const ALL: &[&str] = &["br", "zstd", "gzip"];

    #[test]
    fn qvalues_parse_strictly() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("0."), Some(0));
        for bad in ["1.5", "2", "0.1234", "-0", "abc", "", "0.x", ".5", "1.001"] {
            assert_eq!(qvalue(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_header_means_identity() {
        assert_eq!(accept(&[]).choose(ALL), None);
    }

    #[test]
    fn an_empty_header_means_identity() {
        assert_eq!(accept(&[""]).choose(ALL), None);
    }

    #[test]
    fn the_server_order_breaks_ties() {
        assert_eq!(accept(&["gzip, br, zstd"]).choose(ALL), Some(0));
        assert_eq!(accept(&["gzip, zstd"]).choose(ALL), Some(1));
        assert_eq!(accept(&["*"]).choose(ALL), Some(0));
        assert_eq!(accept(&["gzip, identity"]).choose(ALL), Some(2));
    }

    #[test]
    fn the_highest_weight_wins() {
        assert_eq!(accept(&["br;q=0.5, gzip;q=0.8"]).choose(ALL), Some(2));
        assert_eq!(accept(&["gzip;q=0.5, identity"]).choose(ALL), None);
        assert_eq!(accept(&["gzip;q=0.5, identity;q=0.4"]).choose(ALL), Some(2));
        assert_eq!(accept(&["*;q=0.5, gzip;q=0.4"]).choose(ALL), Some(0));
        assert_eq!(accept(&["br;q=0, gzip"]).choose(ALL), Some(2));
        assert_eq!(accept(&["*;q=0.1, zstd;q=0.2"]).choose(ALL), Some(1));
    }

    #[test]
    fn a_refused_coding_is_never_chosen() {
        assert_eq!(accept(&["br;q=0"]).choose(&["br"]), None);
        assert_eq!(accept(&["*, br;q=0"]).choose(&["br", "gzip"]), Some(1));
        assert_eq!(accept(&["*;q=0"]).choose(ALL), None);
    }

    #[test]
    fn refused_identity_takes_any_acceptable_coding() {
        assert_eq!(accept(&["identity;q=0, gzip;q=0.1"]).choose(ALL), Some(2));
        assert_eq!(accept(&["*;q=0, br"]).choose(ALL), Some(0));
        // Nothing acceptable: identity all the same (§12.5.3), not 406.
        assert_eq!(accept(&["identity;q=0"]).choose(ALL), None);
        assert_eq!(accept(&["identity;q=0"]).choose(&[]), None);
    }

    #[test]
    fn names_are_case_insensitive_and_x_gzip_is_gzip() {
        assert_eq!(accept(&["GZip"]).choose(ALL), Some(2));
        assert_eq!(accept(&["x-gzip"]).choose(ALL), Some(2));
        assert_eq!(accept(&["BR;Q=1"]).choose(ALL), Some(0));
    }

    #[test]
    fn lines_combine_and_bad_elements_are_ignored() {
        assert_eq!(accept(&["gzip;q=0.5", "zstd"]).choose(ALL), Some(1));
        assert_eq!(accept(&["br;q=2, gzip"]).choose(ALL), Some(2));
        assert_eq!(accept(&[",,; ;q=1,gzip ; q=0.3 "]).choose(ALL), Some(2));
        assert_eq!(accept(&["br;q=abc"]).choose(ALL), None);
    }

    #[test]
    fn a_coding_weighs_what_its_first_valid_element_says() {
        assert_eq!(accept(&["gzip;q=0, gzip"]).choose(ALL), None);
        assert_eq!(
            accept(&["gzip;q=x", "gzip;q=0.5, identity;q=0.4"]).choose(ALL),
            Some(2)
        );
        assert_eq!(accept(&["x-gzip;q=0, gzip"]).choose(ALL), None);
        assert_eq!(accept(&["*;q=0, *"]).choose(ALL), None);
    }

    #[test]
    fn codings_past_the_limit_are_never_candidates() {
        let many: Vec<String> = (0..MAX_CODINGS + 2).map(|i| format!("c{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let all = accept(&["*"]).candidates(&many);
        assert_eq!(
            all.iter().collect::<Vec<_>>(),
            (0..MAX_CODINGS).collect::<Vec<_>>()
        );
        assert!(accept(&["c9"]).candidates(&many).is_empty());
    }

    fn json(value: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        prefers_json(&headers)
    }

    #[test]
    fn json_only_when_preferred_to_html() {
        assert!(json(Some("application/json")));
        assert!(json(Some("application/json, text/html;q=0.9")));
        assert!(json(Some("application/*, */*;q=0.1")));
        assert!(!json(None));
        assert!(!json(Some("*/*")));
        assert!(!json(Some("text/html,application/xhtml+xml,*/*;q=0.8")));
        assert!(!json(Some("application/json;q=0.5, text/html")));
        assert!(!json(Some("application/json;q=0")));
    }

    #[test]
    fn a_shorter_list_keeps_the_order_of_the_longer() {
        let lists: [&[&str]; 4] = [ALL, &["gzip"], &["br", "gzip"], &[]];
        for header in [
            "gzip, br",
            "br;q=0.5, gzip;q=0.8",
            "*",
            "*;q=0",
            "identity;q=0, gzip",
            "gzip;q=0.5, identity",
            "zstd;q=0.9, *;q=0.9",
            "",
        ] {
            let accept = accept(&[header]);
            for available in lists {
                let candidates = accept.candidates(ALL);
                let first = candidates.iter().find(|&i| available.contains(&ALL[i]));
                let chosen = accept.choose(available).map(|i| available[i]);
                assert_eq!(first.map(|i| ALL[i]), chosen, "{header:?} {available:?}");
            }
        }
        assert!(accept(&[]).candidates(ALL).is_empty());
        assert!(accept(&["*"]).candidates(&[]).is_empty());
    }
}
