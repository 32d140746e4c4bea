//! Entry points for fuzz targets and differential tests. Not a stable API.

use std::num::NonZeroUsize;
use std::time::SystemTime;

use http::HeaderMap;

use crate::protocol::range::{Resolved, resolve};
use crate::protocol::{Conditions, Decision, Validators, decide as decide_inner};

/// What a `Range` value resolves to against `len` (> 0) bytes: `None` when the
/// header is ignored, `Some(vec![])` when unsatisfiable, else the inclusive ranges.
pub fn resolve_range(value: &[u8], len: u64, max_ranges: usize) -> Option<Vec<(u64, u64)>> {
    let max = NonZeroUsize::new(max_ranges).unwrap_or(NonZeroUsize::MIN);
    match resolve(value, len.max(1), max) {
        Resolved::Ignore => None,
        Resolved::Unsatisfiable => Some(Vec::new()),
        Resolved::Ranges(ranges) => Some(ranges.iter().map(|r| (r.start, r.end - 1)).collect()),
    }
}

/// The decision for a `GET` with `request` headers, for a representation of
/// `len` bytes whose response carries `response` headers, as of `now`: the
/// status and the inclusive ranges to send.
pub fn decide(
    request: &HeaderMap,
    response: &HeaderMap,
    len: u64,
    max_ranges: usize,
    now: SystemTime,
) -> (u16, Vec<(u64, u64)>) {
    let max = NonZeroUsize::new(max_ranges).unwrap_or(NonZeroUsize::MIN);
    let validators = Validators::from_headers(response, now);
    let conditions = Conditions::from_headers(request);
    let decision = decide_inner(&conditions, &validators, len, max);
    let status = match decision {
        Decision::Full => 200,
        Decision::Partial(_) | Decision::Multipart(_) => 206,
        Decision::NotModified => 304,
        Decision::PreconditionFailed => 412,
        Decision::RangeNotSatisfiable => 416,
    };
    (status, decision.ranges(len))
}

/// Parses an HTTP-date the way preconditions do.
pub fn parse_date(value: &[u8]) -> Option<SystemTime> {
    crate::protocol::headers::parse_date(&http::HeaderValue::from_bytes(value).ok()?)
}

/// Checks the link in `uri` (path and query) with a fixed key (`k1`, 32 bytes
/// of 7) as of Unix second `now`, from `peer`: `Ok(())` or the refusal's status.
#[cfg(feature = "signed-links")]
pub fn signed_link(uri: &str, now: u64, peer: Option<std::net::IpAddr>) -> Result<(), u16> {
    use crate::signed::KeySet;
    use crate::signed::verify::{Request, verify};
    let keys = KeySet::new(fuzz_key());
    let (path, query) = uri
        .split_once('?')
        .map_or((uri, None), |(p, q)| (p, Some(q)));
    let path = crate::dir::path::canonical_path(path);
    let request = Request {
        path: path.as_deref(),
        query,
        now,
        skew: 30,
        peer,
    };
    verify(&keys, request)
        .map(|_| ())
        .map_err(|r| r.status().as_u16())
}

/// The key [`signed_link`] verifies with.
#[cfg(feature = "signed-links")]
pub fn fuzz_key() -> crate::signed::SigningKey {
    crate::signed::SigningKey::new("k1", [7u8; 32]).expect("a valid key")
}
