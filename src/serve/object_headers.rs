//! The headers of an object's response (the `object-store` feature), for
//! [`FileResponse::from_object`](crate::FileResponse::from_object).

use http::header::{self, HeaderMap, HeaderValue};

use crate::source::ObjectSource;

/// The headers of an object's response: `Content-Type` (the stored one, else
/// guessed from the key's extension), `ETag` and `Last-Modified`.
pub(crate) fn headers(source: &ObjectSource) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = source
        .content_type()
        .and_then(|value| HeaderValue::from_str(value).ok())
        .or_else(|| {
            let name = source.meta().location.filename().unwrap_or_default();
            let mime = mime_guess::from_path(name).first_or_octet_stream();
            HeaderValue::from_str(mime.as_ref()).ok()
        })
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(e_tag) = source.meta().e_tag.as_deref().and_then(entity_tag) {
        headers.insert(header::ETAG, e_tag);
    }
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::try_from(httpdate::fmt_http_date(source.modified()))
            .expect("an HTTP-date is a valid header value"),
    );
    headers
}

/// The store's ETag as a header value: quoted if the store gave it bare (as
/// some stores do), `None` if it is not a valid entity tag.
fn entity_tag(e_tag: &str) -> Option<HeaderValue> {
    let quoted = e_tag.ends_with('"') && (e_tag.starts_with('"') || e_tag.starts_with("W/\""));
    let value = match quoted {
        true => e_tag.to_owned(),
        false => format!("\"{e_tag}\""),
    };
    let inner = value.trim_start_matches("W/");
    let valid = inner.len() >= 2
        && inner[1..inner.len() - 1]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b));
    valid.then(|| HeaderValue::from_str(&value).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_quoted_and_checked() {
        assert_eq!(entity_tag("\"abc\"").unwrap(), "\"abc\"");
        assert_eq!(entity_tag("W/\"abc\"").unwrap(), "W/\"abc\"");
        assert_eq!(entity_tag("17").unwrap(), "\"17\"");
        assert_eq!(entity_tag("a b"), None);
        assert_eq!(entity_tag("a\"b"), None);
    }
}
