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

/// The request's `Accept-Encoding`: which content codings it takes, how much.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AcceptEncoding {
    /// `None` without the header field.
    elements: Option<Vec<(String, Quality)>>,
}

impl AcceptEncoding {
    /// Reads every `Accept-Encoding` line of `headers`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            elements: elements(headers, header::ACCEPT_ENCODING).map(|elements| {
                elements
                    .filter_map(|(name, q)| {
                        let name = name.to_ascii_lowercase();
                        let name = if name == "x-gzip" {
                            "gzip".into()
                        } else {
                            name
                        };
                        Some((name, q?))
                    })
                    .collect()
            }),
        }
    }

    /// The weight the request gives `coding` (a lowercase content-coding name),
    /// in thousandths, by its own element or `*`; `None` when it names neither.
    fn weight(&self, coding: &str) -> Option<Quality> {
        let elements = self.elements.as_ref()?;
        let find = |name: &str| elements.iter().find(|(n, _)| n == name).map(|&(_, q)| q);
        find(coding).or_else(|| find("*"))
    }

    /// Picks among the `available` codings (the server's order of preference)
    /// and identity: the index of the chosen coding, or `None` for identity.
    ///
    /// Without the header field a client has said nothing: identity (RFC 9110
    /// §12.5.3 lets the server pick any coding then; like tower-http, nginx and
    /// Caddy, we send none). Otherwise the acceptable coding (weight above 0)
    /// with the highest weight wins, the server's order breaking ties. Identity
    /// competes only with a weight the request gives it (`identity;q=0.5`, or
    /// through `*`), and loses ties; unnamed, it is what is sent when no
    /// coding is acceptable. When nothing is acceptable at all (say
    /// `identity;q=0` and no variant the client takes), the answer is identity
    /// all the same: §12.5.3 says the server SHOULD then send the representation
    /// without a content coding, and §12.1 allows it instead of 406.
    #[cfg(test)]
    pub(crate) fn choose(&self, available: &[&str]) -> Option<usize> {
        self.elements.as_ref()?;
        let identity = self.weight("identity").unwrap_or(0);
        let (index, q) = available
            .iter()
            .map(|coding| self.weight(coding).unwrap_or(0))
            .enumerate()
            // The first of the best: `max_by_key` would keep the last.
            .fold(None, |best: Option<(usize, Quality)>, (i, q)| match best {
                Some((_, best_q)) if best_q >= q => best,
                _ => Some((i, q)),
            })?;
        (q > 0 && q >= identity).then_some(index)
    }

    /// The indices of `available` codings this request could be sent, best
    /// first: those weighted above zero and at least as much as the identity,
    /// by weight, ties in the server's order. The first of them that exists
    /// is what [`choose`](Self::choose) picks among the existing ones; none
    /// without the header.
    pub(crate) fn candidates<'a>(&self, available: impl Iterator<Item = &'a str>) -> Vec<usize> {
        if self.elements.is_none() {
            return Vec::new();
        }
        let identity = self.weight("identity").unwrap_or(0);
        let mut weighted: Vec<(usize, Quality)> = available
            .enumerate()
            .filter_map(|(i, coding)| {
                let q = self.weight(coding).unwrap_or(0);
                (q > 0 && q >= identity).then_some((i, q))
            })
            .collect();
        // Stable: ties keep the server's order.
        weighted.sort_by_key(|&(_, q)| std::cmp::Reverse(q));
        weighted.into_iter().map(|(i, _)| i).collect()
    }
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

    fn accept(values: &[&str]) -> AcceptEncoding {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        AcceptEncoding::from_headers(&headers)
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
    fn the_first_existing_candidate_is_what_choose_picks() {
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
                let candidates = accept.candidates(ALL.iter().copied());
                let first = candidates.iter().find(|&&i| available.contains(&ALL[i]));
                let chosen = accept.choose(available).map(|i| available[i]);
                assert_eq!(first.map(|&i| ALL[i]), chosen, "{header:?} {available:?}");
            }
        }
        assert!(
            AcceptEncoding::default()
                .candidates(ALL.iter().copied())
                .is_empty()
        );
    }
}
