//! `Content-Disposition` values (RFC 6266) with RFC 8187 `filename*` for names that
//! plain ASCII cannot carry.

use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 8187 `attr-char` minus ALPHA / DIGIT: what may stay unencoded in `filename*`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Builds `attachment` or `inline`, with the file name if there is one.
///
/// A name of printable ASCII without `"` or `\` goes into `filename` as it is.
/// Any other name gets an ASCII fallback in `filename` (each other character
/// replaced by `_`) and its exact UTF-8 form in `filename*`.
pub(crate) fn content_disposition(kind: &str, filename: Option<&str>) -> HeaderValue {
    let Some(name) = filename else {
        return HeaderValue::from_str(kind).expect("kind is a token");
    };
    let plain = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ';
    let fallback: String = name
        .chars()
        .map(|c| if plain(c) { c } else { '_' })
        .collect();
    let value = if fallback == name {
        format!("{kind}; filename=\"{name}\"")
    } else {
        let encoded = utf8_percent_encode(name, ATTR_CHAR);
        format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
    };
    HeaderValue::try_from(value).expect("only printable ASCII is written")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_alone() {
        assert_eq!(content_disposition("inline", None), "inline");
    }

    #[test]
    fn ascii_names_are_quoted() {
        assert_eq!(
            content_disposition("attachment", Some("report 2024.pdf")),
            "attachment; filename=\"report 2024.pdf\""
        );
    }

    #[test]
    fn non_ascii_names_get_filename_star() {
        assert_eq!(
            content_disposition("attachment", Some("naïve résumé.txt")),
            "attachment; filename=\"na_ve r_sum_.txt\"; \
             filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt"
        );
    }

    #[test]
    fn quotes_backslashes_and_controls_cannot_break_out() {
        let value = content_disposition("attachment", Some("a\"b\\c\r\nd.txt"));
        assert_eq!(
            value,
            "attachment; filename=\"a_b_c__d.txt\"; filename*=UTF-8''a%22b%5Cc%0D%0Ad.txt"
        );
    }
}
