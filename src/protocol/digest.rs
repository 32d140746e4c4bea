//! Digest fields: what a request wants (RFC 9530 `Want-Repr-Digest` and
//! `Want-Content-Digest`, RFC 3230 `Want-Digest`), which algorithm answers it,
//! how the answer is written, and the `sha256sum` format of checksum files.
//! Pure: no I/O.
//!
//! ```text
//! Want-Repr-Digest = Dictionary of algorithm = Integer 0..=10  (RFC 9530 §4, RFC 8941)
//!                    e.g. "sha-512=3, sha-256=10"; 0 means "not acceptable"
//! Repr-Digest      = Dictionary of algorithm = Byte Sequence    (RFC 9530 §3)
//!                    e.g. "sha-256=:LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=:"
//! Want-Digest      = #( algorithm [ ";q=" qvalue ] )             (RFC 3230 §4.3.1)
//!                    e.g. "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1" (aria2)
//! Digest           = #( algorithm "=" base64 )                   (RFC 3230 §4.3.2)
//!                    e.g. "SHA-256=LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

/// A digest algorithm of the
/// [HTTP Digest Algorithm Values registry](https://www.iana.org/assignments/http-digest-hash-alg/)
/// (RFC 9530 §7.2) that the layer can send.
///
/// Parses from and prints as its RFC 9530 key (`sha-256`, `sha-512`; parsing
/// ignores case).
///
/// # Example
///
/// ```
/// use tower_range_serve::digest::DigestAlgorithm;
///
/// let algorithm: DigestAlgorithm = "sha-512".parse().unwrap();
/// assert_eq!(algorithm, DigestAlgorithm::Sha512);
/// assert_eq!(algorithm.to_string(), "sha-512");
/// assert_eq!(algorithm.output_len(), 64);
/// assert!("md5".parse::<DigestAlgorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4): 32 bytes.
    Sha256,
    /// SHA-512 (FIPS 180-4): 64 bytes.
    Sha512,
}

impl DigestAlgorithm {
    /// Every algorithm, weakest first.
    pub(crate) const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    /// The length of a digest in bytes.
    ///
    /// ```
    /// use tower_range_serve::digest::DigestAlgorithm;
    ///
    /// assert_eq!(DigestAlgorithm::Sha256.output_len(), 32);
    /// ```
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The position in [`ALL`](Self::ALL).
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Sha256 => 0,
            Self::Sha512 => 1,
        }
    }

    /// The RFC 9530 key: `sha-256`.
    pub(crate) const fn key(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    /// The RFC 3230 name (RFC 5843): `SHA-256`.
    fn legacy_name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
        }
    }

    /// The extension of its checksum files (`sha256sum`'s name): `sha256`.
    pub(crate) const fn checksum_extension(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The error of parsing a [`DigestAlgorithm`]: not one the layer knows.
///
/// ```
/// use tower_range_serve::digest::DigestAlgorithm;
///
/// let error = "crc32".parse::<DigestAlgorithm>().unwrap_err();
/// assert_eq!(error.to_string(), "unknown digest algorithm (expected sha-256 or sha-512)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownAlgorithm;

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown digest algorithm (expected sha-256 or sha-512)")
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for DigestAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, UnknownAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.key().eq_ignore_ascii_case(s))
            .ok_or(UnknownAlgorithm)
    }
}

/// What one request field wants: a weight per algorithm, 0 for "not acceptable"
/// or not named. Weights of different fields are not comparable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wants {
    weights: [u16; 2],
}

impl Wants {
    /// Reads `Want-Repr-Digest` or `Want-Content-Digest` (RFC 9530 §4): a
    /// Structured Field Dictionary (RFC 8941 §3.2) whose lines are combined.
    /// `None` if the field is absent or does not parse (RFC 8941 §4.2: the whole
    /// field is then ignored). Members with another algorithm, or a value other
    /// than an Integer from 0 to 10, are ignored.
    pub(crate) fn structured(lines: &[HeaderValue]) -> Option<Self> {
        if lines.is_empty() {
            return None;
        }
        let combined = combine(lines)?;
        let dictionary: sfv::Dictionary = sfv::Parser::new(&combined).parse().ok()?;
        let mut wants = Self::default();
        for algorithm in DigestAlgorithm::ALL {
            let Some(sfv::ListEntry::Item(item)) = dictionary.get(algorithm.key()) else {
                continue;
            };
            let Some(weight) = item.bare_item.as_integer().map(i64::from) else {
                continue;
            };
            if let Ok(weight @ 0..=10) = u16::try_from(weight) {
                wants.weights[algorithm.index()] = weight;
            }
        }
        Some(wants)
    }

    /// Reads `Want-Digest` (RFC 3230 §4.3.1): algorithms, case-insensitive, each
    /// with an optional `q` (RFC 9110 §12.4.2; 1 when absent). `None` if absent.
    /// Malformed members are ignored.
    pub(crate) fn legacy(lines: &[HeaderValue]) -> Option<Self> {
        if lines.is_empty() {
            return None;
        }
        let mut wants = Self::default();
        for line in lines {
            let Ok(line) = line.to_str() else { continue };
            for member in line.split(',') {
                let mut params = member.split(';');
                let name = params.next().unwrap_or_default().trim();
                let Some(algorithm) = DigestAlgorithm::ALL
                    .into_iter()
                    .find(|a| a.legacy_name().eq_ignore_ascii_case(name))
                else {
                    continue;
                };
                let mut weight = Some(1000);
                for param in params {
                    if let Some((key, value)) = param.split_once('=') {
                        if key.trim().eq_ignore_ascii_case("q") {
                            weight = qvalue(value.trim());
                        }
                    }
                }
                if let Some(weight) = weight {
                    wants.weights[algorithm.index()] = weight;
                }
            }
        }
        Some(wants)
    }

    /// Wants every algorithm equally: for a layer that sends digests unasked.
    pub(crate) const fn any() -> Self {
        Self { weights: [1, 1] }
    }

    /// Whether `algorithm` is acceptable.
    pub(crate) fn accepts(self, algorithm: DigestAlgorithm) -> bool {
        self.weights[algorithm.index()] > 0
    }

    /// The most wanted acceptable algorithm among those `available`; ties go to
    /// the stronger one.
    pub(crate) fn choose(
        self,
        available: impl Fn(DigestAlgorithm) -> bool,
    ) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL
            .into_iter()
            .filter(|&algorithm| self.accepts(algorithm) && available(algorithm))
            .max_by_key(|algorithm| (self.weights[algorithm.index()], algorithm.index()))
    }
}

/// Joins the lines of a list field with commas (RFC 9110 §5.3).
fn combine(lines: &[HeaderValue]) -> Option<String> {
    let mut combined = String::new();
    for line in lines {
        if !combined.is_empty() {
            combined.push_str(", ");
        }
        combined.push_str(line.to_str().ok()?);
    }
    Some(combined)
}

/// A qvalue (`0`, `0.5`, `1.000`: RFC 9110 §12.4.2) in thousandths.
fn qvalue(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A `Repr-Digest` or `Content-Digest` value with one digest (RFC 9530 §2, §3):
/// `sha-256=:<base64>:`.
pub(crate) fn structured_value(algorithm: DigestAlgorithm, digest: &[u8]) -> HeaderValue {
    value(format!("{}=:{}:", algorithm.key(), STANDARD.encode(digest)))
}

/// A `Digest` value (RFC 3230 §4.3.2, RFC 5843): `SHA-256=<base64>`.
pub(crate) fn legacy_value(algorithm: DigestAlgorithm, digest: &[u8]) -> HeaderValue {
    value(format!(
        "{}={}",
        algorithm.legacy_name(),
        STANDARD.encode(digest)
    ))
}

fn value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("base64 and a token are a valid header value")
}

/// The digest of `file_name` in a checksum file in `sha256sum` format: lines of
/// `HEX  NAME` (or `HEX *NAME`, binary mode). The line whose name, or its last
/// path segment, is `file_name` counts; a file of one line naming `-` (standard
/// input) or nothing counts for any name. `None` if no line fits, or the hex
/// digest is not of `algorithm`'s length.
pub(crate) fn parse_checksum(
    text: &[u8],
    algorithm: DigestAlgorithm,
    file_name: &str,
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let only = lines.len() == 1;
    lines.into_iter().find_map(|line| {
        let (hex, name) = match line.split_once(' ') {
            Some((hex, rest)) => {
                let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
                (hex, Some(name))
            }
            None => (line.trim_end(), None),
        };
        let fits = match name {
            None | Some("-") => only,
            Some(name) => name.rsplit('/').next() == Some(file_name),
        };
        fits.then(|| decode_hex(hex, algorithm.output_len()))
            .flatten()
    })
}

fn decode_hex(hex: &str, len: usize) -> Option<Vec<u8>> {
    if hex.len() != 2 * len || !hex.is_ascii() {
        return None;
    }
    (0..len)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    use DigestAlgorithm::{Sha256, Sha512};

    fn lines(values: &[&'static str]) -> Vec<HeaderValue> {
        values.iter().map(|v| HeaderValue::from_static(v)).collect()
    }

    fn structured(values: &[&'static str]) -> Option<Wants> {
        Wants::structured(&lines(values))
    }

    fn both(_: DigestAlgorithm) -> bool {
        true
    }

    #[test]
    fn the_higher_preference_wins() {
        let wants = structured(&["sha-512=3, sha-256=10"]).unwrap();
        assert_eq!(wants.choose(both), Some(Sha256));
        let wants = structured(&["sha-256=1, sha-512=3"]).unwrap();
        assert_eq!(wants.choose(both), Some(Sha512));
    }

    #[test]
    fn zero_means_not_wanted() {
        let wants = structured(&["sha-256=0"]).unwrap();
        assert_eq!(wants.choose(both), None);
        let wants = structured(&["sha-256=0, sha-512=1"]).unwrap();
        assert_eq!(wants.choose(|a| a == Sha256), None);
        assert_eq!(wants.choose(both), Some(Sha512));
    }

    #[test]
    fn only_available_algorithms_are_chosen() {
        let wants = structured(&["sha-512=10, sha-256=1"]).unwrap();
        assert_eq!(wants.choose(|a| a == Sha256), Some(Sha256));
        assert_eq!(wants.choose(|_| false), None);
    }

    #[test]
    fn ties_go_to_the_stronger_algorithm() {
        let wants = structured(&["sha-256=5, sha-512=5"]).unwrap();
        assert_eq!(wants.choose(both), Some(Sha512));
    }

    #[test]
    fn lines_are_combined_and_unknown_members_ignored() {
        let wants = structured(&["md5=10, unixsum=3", "sha-256=2"]).unwrap();
        assert_eq!(wants.choose(both), Some(Sha256));
        // Out of range, or not an integer: ignored.
        for value in [
            "sha-256=11",
            "sha-256=-1",
            "sha-256=1.5",
            "sha-256",
            "sha-256=x",
        ] {
            let wants = Wants::structured(&[HeaderValue::from_static(value)]).unwrap();
            assert_eq!(wants.choose(both), None, "{value}");
        }
    }

    #[test]
    fn a_field_that_does_not_parse_is_ignored_whole() {
        assert_eq!(structured(&["sha-256=10, SHA-512=1"]), None);
        assert_eq!(structured(&["sha-256=10,,"]), None);
        assert_eq!(structured(&[]), None);
    }

    #[test]
    fn aria2s_want_digest_accepts_both() {
        let wants = Wants::legacy(&lines(&["SHA-512;q=1, SHA-256;q=1, SHA;q=0.1"])).unwrap();
        assert_eq!(wants.choose(|a| a == Sha256), Some(Sha256));
        assert_eq!(wants.choose(both), Some(Sha512));
    }

    #[test]
    fn want_digest_q_values_order_and_refuse() {
        let wants = Wants::legacy(&lines(&["sha-256;q=0.9", "SHA-512 ; q=0.3"])).unwrap();
        assert_eq!(wants.choose(both), Some(Sha256));
        let wants = Wants::legacy(&lines(&["SHA-256;q=0, SHA-512;q=0.001"])).unwrap();
        assert_eq!(wants.choose(|a| a == Sha256), None);
        assert_eq!(wants.choose(both), Some(Sha512));
        let wants = Wants::legacy(&lines(&["SHA-256;q=2, MD5"])).unwrap();
        assert_eq!(wants.choose(both), None);
        assert_eq!(Wants::legacy(&[]), None);
    }

    #[test]
    fn qvalues_parse_like_rfc_9110() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("0"), Some(0));
        for bad in ["1.5", "0.0001", "2", "-1", "", "0.x"] {
            assert_eq!(qvalue(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_written_as_rfc_9530_and_rfc_3230_say() {
        // RFC 9530 Appendix B: the SHA-256 of `{"hello": "world"}`.
        let digest = STANDARD
            .decode("X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=")
            .unwrap();
        assert_eq!(
            structured_value(Sha256, &digest),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(
            legacy_value(Sha256, &digest),
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
        );
        let parsed: sfv::Dictionary =
            sfv::Parser::new(structured_value(Sha256, &digest).as_bytes())
                .parse()
                .unwrap();
        assert!(
            matches!(parsed.get("sha-256"), Some(sfv::ListEntry::Item(item))
            if item.bare_item.as_byte_sequence() == Some(&digest[..]))
        );
    }

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn hello() -> Vec<u8> {
        decode_hex(HEX, 32).unwrap()
    }

    #[test]
    fn checksum_files_in_sha256sum_format_parse() {
        let text = format!("{HEX}  hello.txt\n");
        assert_eq!(
            parse_checksum(text.as_bytes(), Sha256, "hello.txt"),
            Some(hello())
        );
        let text = format!("{}  other.txt\n{HEX} *dir/hello.txt\n", "0".repeat(64));
        assert_eq!(
            parse_checksum(text.as_bytes(), Sha256, "hello.txt"),
            Some(hello())
        );
        let upper = HEX.to_uppercase();
        for text in [format!("{upper}  -\n"), format!("{HEX}\n")] {
            assert_eq!(parse_checksum(text.as_bytes(), Sha256, "x"), Some(hello()));
        }
    }

    #[test]
    fn checksum_files_that_do_not_fit_are_ignored() {
        for text in [
            format!("{HEX}  other.txt\n"),
            format!("{}  hello.txt\n", &HEX[1..]),
            format!("{}  hello.txt\n", HEX.replace('2', "g")),
            format!("{HEX}\n{HEX}  a\n"),
            "garbage".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                parse_checksum(text.as_bytes(), Sha256, "hello.txt"),
                None,
                "{text}"
            );
        }
        // A SHA-256 is not a SHA-512.
        let text = format!("{HEX}  hello.txt\n");
        assert_eq!(parse_checksum(text.as_bytes(), Sha512, "hello.txt"), None);
        assert_eq!(parse_checksum(&[0xff, 0xfe], Sha256, "hello.txt"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(value in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                let lines = [value];
                if let Some(wants) = Wants::structured(&lines) {
                    let _ = wants.choose(both);
                }
                if let Some(wants) = Wants::legacy(&lines) {
                    let _ = wants.choose(both);
                }
            }
            let _ = parse_checksum(&value, Sha256, "file.bin");
        }

        #[test]
        fn every_weight_of_0_to_10_is_kept(a in 0u16..=10, b in 0u16..=10) {
            let value = HeaderValue::try_from(format!("sha-256={a}, sha-512={b}")).unwrap();
            let wants = Wants::structured(&[value]).unwrap();
            let expected = match (a, b) {
                (0, 0) => None,
                (a, b) if a > b => Some(Sha256),
                _ => Some(Sha512),
            };
            prop_assert_eq!(wants.choose(both), expected);
        }
    }
}
