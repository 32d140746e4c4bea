//! The `RateLimit-Policy` and `RateLimit` fields of
//! [draft-ietf-httpapi-ratelimit-headers-09](https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/09/)
//! for a quota of bytes.

use std::time::Duration;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use super::Quota;

/// `RateLimit-Policy` (draft §3).
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft §4).
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Sets both fields: the policy (`q` bytes per window of `w` seconds, in the
/// quota unit `content-bytes`, draft §3.1) and the client's standing in it
/// (`r` bytes remaining, `t` seconds until the window ends, draft §4.1). The
/// policy is named `"quota"`. Seconds are rounded up, so a client that waits
/// `t` seconds finds a new window.
pub(crate) fn insert(headers: &mut HeaderMap, quota: Quota, remaining: u64, reset: Duration) {
    let window = seconds(quota.period()).max(1);
    let policy = format!(
        "\"quota\";q={};qu=\"content-bytes\";w={window}",
        quota.bytes()
    );
    let standing = format!("\"quota\";r={remaining};t={}", seconds(reset));
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, standing)] {
        let value = HeaderValue::try_from(value).expect("ASCII digits and quotes");
        headers.insert(name, value);
    }
}

/// Whole seconds, rounded up.
pub(crate) fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_draft() {
        let mut headers = HeaderMap::new();
        let quota = Quota::new(1 << 30, Duration::from_secs(86_400));
        insert(&mut headers, quota, 1000, Duration::from_millis(3_500));
        assert_eq!(
            headers["ratelimit-policy"],
            "\"quota\";q=1073741824;qu=\"content-bytes\";w=86400"
        );
        assert_eq!(headers["ratelimit"], "\"quota\";r=1000;t=4");
    }

    #[test]
    fn a_window_under_a_second_says_one() {
        let mut headers = HeaderMap::new();
        insert(
            &mut headers,
            Quota::new(1, Duration::from_millis(10)),
            0,
            Duration::ZERO,
        );
        assert_eq!(
            headers["ratelimit-policy"],
            "\"quota\";q=1;qu=\"content-bytes\";w=1"
        );
        assert_eq!(headers["ratelimit"], "\"quota\";r=0;t=0");
    }
}
