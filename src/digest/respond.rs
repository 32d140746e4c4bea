//! Setting the digest fields of a response from what the request wants.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, response::Parts};

use super::{DigestAlgorithm, Known, Mode, Origin, Settings};
use crate::protocol::digest::{Wants, legacy_value, structured_value};

const WANT_REPR_DIGEST: HeaderName = HeaderName::from_static("want-repr-digest");
const WANT_CONTENT_DIGEST: HeaderName = HeaderName::from_static("want-content-digest");
const WANT_DIGEST: HeaderName = HeaderName::from_static("want-digest");
pub(crate) const REPR_DIGEST: HeaderName = HeaderName::from_static("repr-digest");
pub(crate) const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");
pub(crate) const DIGEST: HeaderName = HeaderName::from_static("digest");

/// The digest fields a request has, kept raw until the response turns out to
/// be file-backed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted {
    repr: Vec<HeaderValue>,
    content: Vec<HeaderValue>,
    legacy: Vec<HeaderValue>,
}

impl Wanted {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let lines = |name| headers.get_all(name).iter().cloned().collect();
        Self {
            repr: lines(WANT_REPR_DIGEST),
            content: lines(WANT_CONTENT_DIGEST),
            legacy: lines(WANT_DIGEST),
        }
    }
}

/// Sets `Repr-Digest`, `Content-Digest` and `Digest` on a 200 or 206 whose
/// digest is known, as the request asks; schedules the hash of a file whose
/// digest is wanted and not yet known. Never waits.
pub(crate) fn respond(
    parts: &mut Parts,
    head: bool,
    origin: &Origin,
    wanted: &Wanted,
    settings: &Settings,
) {
    let status = parts.status;
    let headers = &mut parts.headers;
    // The digest of the whole file is not that of a range, nor of no content.
    if status != StatusCode::OK || head {
        headers.remove(CONTENT_DIGEST);
    }
    let full_or_partial = status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT;
    if !full_or_partial || settings.mode == Mode::Off {
        return;
    }
    let unasked = settings.always.then(Wants::any);
    let repr = Wants::structured(&wanted.repr).or(unasked);
    let content = (status == StatusCode::OK && !head)
        .then(|| Wants::structured(&wanted.content).or(unasked))
        .flatten();
    let legacy = Wants::legacy(&wanted.legacy);
    let asked = [repr, content, legacy];
    if asked.iter().all(Option::is_none) {
        return;
    }

    let mut known = origin.known.clone();
    let wanted_unknown = |known: &Known, algorithm| {
        known.get(algorithm).is_none() && asked.iter().flatten().any(|w| w.accepts(algorithm))
    };
    // Published checksum files win, and are used on the first request. Read
    // here, only for requests that ask: small files, on this thread.
    if let (Some(checksums), Some(file)) = (&origin.checksums, &origin.file) {
        if DigestAlgorithm::ALL
            .iter()
            .any(|&a| wanted_unknown(&known, a))
        {
            known.fill_from(checksums.read(file));
        }
    }
    if let (Some(cache), Some(file)) = (&settings.cache, &origin.file) {
        let algorithm = cache.algorithm();
        let wanted = asked.iter().flatten().any(|wants| wants.accepts(algorithm));
        if known.get(algorithm).is_none() && wanted {
            match file.identity().and_then(|identity| cache.get(identity)) {
                Some(digest) => known.set(algorithm, digest),
                None => cache.schedule(file),
            }
        }
    }

    type Format = fn(DigestAlgorithm, &[u8]) -> HeaderValue;
    let fields: [(Option<Wants>, HeaderName, Format); 3] = [
        (repr, REPR_DIGEST, structured_value),
        (content, CONTENT_DIGEST, structured_value),
        (legacy, DIGEST, legacy_value),
    ];
    for (wants, name, format) in fields {
        let chosen = wants.and_then(|wants| wants.choose(|a| known.get(a).is_some()));
        if let Some((algorithm, digest)) = chosen.and_then(|a| Some((a, known.get(a)?))) {
            headers.insert(name, format(algorithm, digest));
        }
    }
}
