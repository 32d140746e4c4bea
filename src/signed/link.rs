//! The link format: the query parameters, the string that is signed, and
//! their parsing. No keys, no clock.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::claims::IpPrefix;
use crate::dir::path::canonical_path;

/// The first line of every signed string: the format's version.
pub(crate) const VERSION: &str = "tower-range-serve link v1";

/// The bytes of a query value the minter percent-encodes: all but unreserved
/// characters, `/` and `:` (legal in a query, and readable in `ip` and `scope`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// The bytes of a path segment the minter percent-encodes: all but unreserved
/// characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The parameters of a link, as found in (or made for) a query: decoded values,
/// signed exactly as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) exp: String,
    pub(crate) nbf: String,
    pub(crate) ip: String,
    pub(crate) sub: String,
    pub(crate) client_rate: String,
    pub(crate) rate: String,
    pub(crate) streams: String,
    pub(crate) scope: String,
    pub(crate) kid: String,
    pub(crate) sig: String,
}

/// A link's parameters after checking their syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) params: Params,
    pub(crate) exp: u64,
    pub(crate) nbf: Option<u64>,
    pub(crate) ip: Option<IpPrefix>,
    pub(crate) client_rate: Option<u64>,
    pub(crate) rate: Option<u64>,
    pub(crate) streams: Option<usize>,
}

/// Every parameter, in the order of a minted query (`sig` last).
const QUERY_NAMES: [&str; 10] = [
    "exp", "nbf", "ip", "sub", "crate", "rate", "streams", "scope", "kid", "sig",
];

/// The parameters of the signed string after its path or scope line, in order.
const SIGNED_NAMES: [&str; 8] = ["exp", "nbf", "ip", "sub", "crate", "rate", "streams", "kid"];

impl Params {
    /// The value of the parameter `name` (one of [`QUERY_NAMES`]).
    fn field(&self, name: &str) -> &str {
        match name {
            "exp" => &self.exp,
            "nbf" => &self.nbf,
            "ip" => &self.ip,
            "sub" => &self.sub,
            "crate" => &self.client_rate,
            "rate" => &self.rate,
            "streams" => &self.streams,
            "scope" => &self.scope,
            "kid" => &self.kid,
            "sig" => &self.sig,
            _ => unreachable!("not a parameter: {name}"),
        }
    }

    /// The value of the parameter at `index` in [`QUERY_NAMES`].
    fn field_mut(&mut self, index: usize) -> &mut String {
        [
            &mut self.exp,
            &mut self.nbf,
            &mut self.ip,
            &mut self.sub,
            &mut self.client_rate,
            &mut self.rate,
            &mut self.streams,
            &mut self.scope,
            &mut self.kid,
            &mut self.sig,
        ]
        .into_iter()
        .nth(index)
        .expect("an index of QUERY_NAMES")
    }

    /// The string that is signed for a request whose canonical path is `path`:
    /// the version line, `path=PATH` (or `scope=SCOPE` for a folder link), then
    /// `NAME=VALUE` for each of [`SIGNED_NAMES`] (empty values included), joined with
    /// `\n`.
    pub(crate) fn signed_string(&self, path: &str) -> String {
        let mut out = String::with_capacity(160 + path.len() + self.sub.len());
        out.push_str(VERSION);
        if self.scope.is_empty() {
            let _ = write!(out, "\npath={path}");
        } else {
            let _ = write!(out, "\nscope={}", self.scope);
        }
        for name in SIGNED_NAMES {
            let _ = write!(out, "\n{name}={}", self.field(name));
        }
        out
    }

    /// The query of the link: the non-empty parameters, `sig` last.
    pub(crate) fn query(&self) -> String {
        let mut out = String::new();
        for name in QUERY_NAMES {
            let value = self.field(name);
            if !value.is_empty() {
                if !out.is_empty() {
                    out.push('&');
                }
                let _ = write!(out, "{name}={}", utf8_percent_encode(value, QUERY_VALUE));
            }
        }
        out
    }
}

/// A canonical path percent-encoded for a URL, segment by segment.
pub(crate) fn encode_path(canonical: &str) -> String {
    let mut out = String::with_capacity(canonical.len());
    for segment in canonical.split('/').skip(1) {
        out.push('/');
        out.extend(utf8_percent_encode(segment, PATH_SEGMENT));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Why a query is not a well-formed link. Never shown to clients (they get
/// one answer for every malformed link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// A parameter appears twice.
    Duplicate,
    /// A value is not UTF-8 after decoding, or holds a control character.
    BadValue,
    /// `exp`, `kid` or `sig` is missing.
    Missing,
    /// A number, an address or a scope is not written as the format says.
    BadSyntax,
}

/// Parses the link's parameters out of a query (`None` counts as empty).
/// Other parameters are ignored.
pub(crate) fn parse(query: Option<&str>) -> Result<Parsed, Malformed> {
    let mut params = Params::default();
    let mut seen = [false; QUERY_NAMES.len()];
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(index) = QUERY_NAMES.iter().position(|n| *n == name) else {
            continue;
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(Malformed::Duplicate);
        }
        *params.field_mut(index) = decode_value(value)?;
    }
    if params.exp.is_empty() || params.kid.is_empty() || params.sig.is_empty() {
        return Err(Malformed::Missing);
    }
    if !params.scope.is_empty() && canonical_path(&params.scope).as_deref() != Some(&params.scope) {
        return Err(Malformed::BadSyntax);
    }
    Ok(Parsed {
        exp: number(&params.exp)?.ok_or(Malformed::Missing)?,
        nbf: number(&params.nbf)?,
        ip: optional(&params.ip, |v| v.parse().ok())?,
        client_rate: number(&params.client_rate)?,
        rate: number(&params.rate)?,
        streams: optional(&params.streams, |v| v.parse().ok().filter(|_| digits(v)))?,
        params,
    })
}

/// Decodes a query value: `+` is a space (as form encoding writes it), then
/// percent-decoding; the result must be UTF-8 without control characters.
fn decode_value(raw: &str) -> Result<String, Malformed> {
    let plus = raw.replace('+', " ");
    let value = percent_decode_str(&plus)
        .decode_utf8()
        .map_err(|_| Malformed::BadValue)?;
    if value.chars().any(char::is_control) {
        return Err(Malformed::BadValue);
    }
    Ok(value.into_owned())
}

fn digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number of ASCII digits (leading zeros allowed), or `None` if empty.
fn number(value: &str) -> Result<Option<u64>, Malformed> {
    optional(value, |v| v.parse().ok().filter(|_| digits(v)))
}

fn optional<T>(value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Malformed> {
    if value.is_empty() {
        return Ok(None);
    }
    parse(value).map(Some).ok_or(Malformed::BadSyntax)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<Parsed, Malformed> {
        parse(Some(q))
    }

    #[test]
    fn a_link_needs_an_expiry_a_key_id_and_a_signature() {
        assert!(query("exp=1&kid=a&sig=x").is_ok());
        assert_eq!(query("kid=a&sig=x"), Err(Malformed::Missing));
        assert_eq!(query("exp=1&sig=x"), Err(Malformed::Missing));
        assert_eq!(query("exp=1&kid=a"), Err(Malformed::Missing));
        assert_eq!(query("exp=&kid=a&sig=x"), Err(Malformed::Missing));
        assert_eq!(parse(None), Err(Malformed::Missing));
    }

    #[test]
    fn a_parameter_may_appear_once() {
        assert_eq!(query("exp=1&exp=2&kid=a&sig=x"), Err(Malformed::Duplicate));
        assert_eq!(query("exp=1&kid=a&sig=x&sig=x"), Err(Malformed::Duplicate));
        // Others are ignored, however often.
        assert!(query("exp=1&kid=a&sig=x&t=1&t=2&%65xp=3").is_ok());
    }

    #[test]
    fn values_are_checked() {
        for bad in [
            "exp=-1",
            "exp=%2B1",
            "exp=1x",
            "exp=99999999999999999999",
            "exp=1&nbf=1.5",
            "exp=1&streams=-1",
            "exp=1&ip=300.0.0.1",
            "exp=1&ip=10.0.0.0/33",
            "exp=1&crate=1MiB",
            "exp=1&scope=/a/",
            "exp=1&scope=a",
            "exp=1&scope=/a/../b",
        ] {
            let q = format!("{bad}&kid=a&sig=x");
            assert_eq!(query(&q).err(), Some(Malformed::BadSyntax), "{q}");
        }
        assert_eq!(query("exp=1&kid=a&sig=x&sub=%0A"), Err(Malformed::BadValue));
        assert_eq!(query("exp=1&kid=a&sig=x&sub=%FF"), Err(Malformed::BadValue));
    }

    #[test]
    fn values_are_decoded_before_signing() {
        let parsed = query("exp=0100&kid=a&sig=x&sub=Ada+Lovelace%21&ip=10.0.0.0%2F8").unwrap();
        assert_eq!(parsed.params.sub, "Ada Lovelace!");
        assert_eq!(parsed.params.ip, "10.0.0.0/8");
        assert_eq!(parsed.exp, 100);
        assert_eq!(parsed.params.exp, "0100");
    }

    #[test]
    fn the_signed_string_lists_every_name_in_order() {
        let parsed = query("kid=k1&exp=1700000000&sub=u42&sig=x&crate=2097152").unwrap();
        assert_eq!(
            parsed.params.signed_string("/videos/a.mp4"),
            "tower-range-serve link v1\npath=/videos/a.mp4\nexp=1700000000\nnbf=\nip=\n\
             sub=u42\ncrate=2097152\nrate=\nstreams=\nkid=k1"
        );
        let folder = query("kid=k1&exp=1&scope=/videos&sig=x").unwrap();
        assert!(
            folder
                .params
                .signed_string("/videos/a.mp4")
                .starts_with("tower-range-serve link v1\nscope=/videos\nexp=1\n")
        );
    }

    #[test]
    fn a_query_parses_back_to_its_parameters() {
        let params = Params {
            exp: "17".into(),
            sub: "a b&c=d/é".into(),
            ip: "2001:db8::/32".into(),
            scope: "/x y".into(),
            kid: "k".into(),
            sig: "s-_".into(),
            ..Params::default()
        };
        assert_eq!(query(&params.query()).unwrap().params, params);
    }

    #[test]
    fn paths_are_encoded_by_segment() {
        assert_eq!(encode_path("/"), "/");
        assert_eq!(encode_path("/a b/c?d#é"), "/a%20b/c%3Fd%23%C3%A9");
        assert_eq!(
            canonical_path(&encode_path("/a b/c?d#é")).unwrap(),
            "/a b/c?d#é"
        );
    }
}
