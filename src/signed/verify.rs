//! Checking one request's link: the signature first (in constant time, with
//! the same work whatever is wrong), then what it claims.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;

use super::key::KeySet;
use super::link::{Parsed, parse};
use crate::throttle::Restriction;
use crate::{Bandwidth, ClientKey};

/// Why a request is refused. Each has its status and a short text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No link, a malformed one, an unknown key, a wrong signature (another
    /// path included), or a path that does not resolve: 403.
    Invalid,
    /// Valid, but for a folder the path is not under: 403.
    OutsideScope,
    /// Valid, but for other client addresses (or none could be found): 403.
    WrongAddress,
    /// Valid, but not yet: 403.
    NotYetValid,
    /// Valid, but expired: 410 Gone.
    Expired,
}

impl Refusal {
    pub(crate) fn status(self) -> http::StatusCode {
        match self {
            Self::Expired => http::StatusCode::GONE,
            _ => http::StatusCode::FORBIDDEN,
        }
    }

    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Invalid => "invalid or missing link signature\n",
            Self::OutsideScope => "link not valid for this path\n",
            Self::WrongAddress => "link not valid for this client address\n",
            Self::NotYetValid => "link not valid yet\n",
            Self::Expired => "link expired\n",
        }
    }
}

/// The facts of a request a link is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// The canonical path (`None`: the path does not resolve).
    pub(crate) path: Option<&'a str>,
    pub(crate) query: Option<&'a str>,
    pub(crate) now: u64,
    pub(crate) skew: u64,
    pub(crate) peer: Option<IpAddr>,
}

/// Checks the link of `request` against `keys`: the restriction its claims
/// put on the request, or why it is refused.
pub(crate) fn verify(keys: &KeySet, request: Request<'_>) -> Result<Restriction, Refusal> {
    let path = request.path.ok_or(Refusal::Invalid)?;
    let link = parse(request.query).map_err(|_| Refusal::Invalid)?;
    // An unknown key id still costs one MAC (with the signing key), and fails.
    let key = keys.get(&link.params.kid);
    let mac = key
        .unwrap_or(keys.signing_key())
        .mac(&link.params.signed_string(path));
    let tag = URL_SAFE_NO_PAD.decode(&link.params.sig).unwrap_or_default();
    // `verify_slice` compares in constant time.
    let signed = mac.verify_slice(&tag).is_ok();
    if !(signed && key.is_some()) {
        return Err(Refusal::Invalid);
    }
    check_claims(&link, path, request)?;
    Ok(restriction(&link))
}

fn check_claims(link: &Parsed, path: &str, request: Request<'_>) -> Result<(), Refusal> {
    let scope = &link.params.scope;
    let in_scope = scope.is_empty()
        || scope == "/"
        || path == scope
        || path
            .strip_prefix(scope.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
    if !in_scope {
        return Err(Refusal::OutsideScope);
    }
    if let Some(prefix) = link.ip {
        if !request.peer.is_some_and(|ip| prefix.contains(ip)) {
            return Err(Refusal::WrongAddress);
        }
    }
    if link
        .nbf
        .is_some_and(|nbf| request.now.saturating_add(request.skew) < nbf)
    {
        return Err(Refusal::NotYetValid);
    }
    if request.now > link.exp.saturating_add(request.skew) {
        return Err(Refusal::Expired);
    }
    Ok(())
}

fn restriction(link: &Parsed) -> Restriction {
    let mut restriction = Restriction::new();
    if !link.params.sub.is_empty() {
        restriction = restriction.client(ClientKey::from(link.params.sub.as_str()));
    }
    if let Some(rate) = link.client_rate {
        restriction = restriction.client_rate(Bandwidth::new(rate));
    }
    if let Some(rate) = link.rate {
        restriction = restriction.rate(Bandwidth::new(rate));
    }
    if let Some(max) = link.streams {
        restriction = restriction.max_streams_per_client(max);
    }
    restriction
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::dir::path::canonical_path;
    use crate::signed::{Claims, SigningKey};

    const NOW: u64 = 1_800_000_000;

    fn key(id: &str, byte: u8) -> SigningKey {
        SigningKey::new(id, [byte; 32]).unwrap()
    }

    fn at(secs: u64) -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn check(
        keys: &KeySet,
        uri: &str,
        now: u64,
        peer: Option<&str>,
    ) -> Result<Restriction, Refusal> {
        let (path, query) = uri
            .split_once('?')
            .map_or((uri, None), |(p, q)| (p, Some(q)));
        let canonical = canonical_path(path);
        verify(
            keys,
            Request {
                path: canonical.as_deref(),
                query,
                now,
                skew: 30,
                peer: peer.map(|p| p.parse().unwrap()),
            },
        )
    }

    #[test]
    fn a_link_verifies_for_its_path_and_every_spelling_of_it() {
        let keys = KeySet::new(key("k", 1));
        let link = keys
            .signing_key()
            .sign("/v/a.mp4", &Claims::expiring_at(at(NOW + 60)))
            .unwrap();
        let q = link.query();
        for path in ["/v/a.mp4", "//v/./a.mp4", "/v/%61.mp4", "/%76/a.mp4/"] {
            assert!(
                check(&keys, &format!("{path}?{q}"), NOW, None).is_ok(),
                "{path}"
            );
        }
        for path in [
            "/v/b.mp4",
            "/v/a.mp4x",
            "/a.mp4",
            "/v",
            "/v/a.mp4/x",
            "/v/../a.mp4",
        ] {
            assert_eq!(
                check(&keys, &format!("{path}?{q}"), NOW, None),
                Err(Refusal::Invalid),
                "{path}"
            );
        }
    }

    #[test]
    fn claims_become_the_restriction() {
        let keys = KeySet::new(key("k", 1));
        let claims = Claims::expiring_at(at(NOW + 60))
            .client("user 42")
            .client_rate(Bandwidth::kib(256))
            .rate(Bandwidth::kib(64))
            .max_streams(3);
        let link = keys.signing_key().sign("/a", &claims).unwrap();
        let restriction = check(&keys, &link.to_string(), NOW, None).unwrap();
        assert_eq!(
            restriction,
            Restriction::new()
                .client("user 42")
                .client_rate(Bandwidth::kib(256))
                .rate(Bandwidth::kib(64))
                .max_streams_per_client(3)
        );
    }

    #[test]
    fn time_claims_allow_thirty_seconds_of_skew() {
        let keys = KeySet::new(key("k", 1));
        let claims = Claims::expiring_at(at(NOW + 60)).not_before(at(NOW));
        let link = keys.signing_key().sign("/a", &claims).unwrap().to_string();
        assert_eq!(
            check(&keys, &link, NOW - 31, None),
            Err(Refusal::NotYetValid)
        );
        assert!(check(&keys, &link, NOW - 30, None).is_ok());
        assert!(check(&keys, &link, NOW + 90, None).is_ok());
        assert_eq!(check(&keys, &link, NOW + 91, None), Err(Refusal::Expired));
    }

    #[test]
    fn address_claims_need_a_matching_peer() {
        let keys = KeySet::new(key("k", 1));
        let claims = Claims::expiring_at(at(NOW + 60)).ip("192.0.2.0/24".parse().unwrap());
        let link = keys.signing_key().sign("/a", &claims).unwrap().to_string();
        assert!(check(&keys, &link, NOW, Some("192.0.2.200")).is_ok());
        assert!(check(&keys, &link, NOW, Some("::ffff:192.0.2.1")).is_ok());
        assert_eq!(
            check(&keys, &link, NOW, Some("192.0.3.1")),
            Err(Refusal::WrongAddress)
        );
        assert_eq!(check(&keys, &link, NOW, None), Err(Refusal::WrongAddress));
    }

    #[test]
    fn folder_links_cover_their_folder_only() {
        let keys = KeySet::new(key("k", 1));
        let link = keys
            .signing_key()
            .sign_folder("/hls/a", &Claims::expiring_at(at(NOW + 60)))
            .unwrap();
        let q = link.query();
        for path in ["/hls/a", "/hls/a/", "/hls/a/x.ts", "/hls/a/b/c.ts"] {
            assert!(
                check(&keys, &format!("{path}?{q}"), NOW, None).is_ok(),
                "{path}"
            );
        }
        for path in ["/hls/ab", "/hls", "/hls/b/x.ts", "/"] {
            assert_eq!(
                check(&keys, &format!("{path}?{q}"), NOW, None),
                Err(Refusal::OutsideScope),
                "{path}"
            );
        }
        // A file link for the folder's path is not a folder link.
        let file = keys
            .signing_key()
            .sign("/hls/a", &Claims::expiring_at(at(NOW + 60)))
            .unwrap();
        let forged = format!("/hls/a/x.ts?{}&scope=/hls/a", file.query());
        assert_eq!(check(&keys, &forged, NOW, None), Err(Refusal::Invalid));
        let root = keys
            .signing_key()
            .sign_folder("/", &Claims::expiring_at(at(NOW + 60)))
            .unwrap();
        assert!(check(&keys, &format!("/any/thing?{}", root.query()), NOW, None).is_ok());
    }

    #[test]
    fn keys_rotate_by_id() {
        let old = key("old", 1);
        let new = key("new", 2);
        let keys = KeySet::new(new.clone()).verify_also(old.clone());
        let claims = Claims::expiring_at(at(NOW + 60));
        for signer in [&old, &new] {
            assert!(
                check(
                    &keys,
                    &signer.sign("/a", &claims).unwrap().to_string(),
                    NOW,
                    None
                )
                .is_ok()
            );
        }
        // A retired key, and a key whose id names another key, fail.
        let retired = key("retired", 3).sign("/a", &claims).unwrap().to_string();
        assert_eq!(check(&keys, &retired, NOW, None), Err(Refusal::Invalid));
        let impostor = SigningKey::new("old", [9u8; 32]).unwrap();
        let forged = impostor.sign("/a", &claims).unwrap().to_string();
        assert_eq!(check(&keys, &forged, NOW, None), Err(Refusal::Invalid));
    }

    #[test]
    fn an_expired_link_with_a_wrong_signature_is_invalid_not_gone() {
        let keys = KeySet::new(key("k", 1));
        let link = keys
            .signing_key()
            .sign("/a", &Claims::expiring_at(at(NOW - 3600)))
            .unwrap();
        assert_eq!(
            check(&keys, &link.to_string(), NOW, None),
            Err(Refusal::Expired)
        );
        let tampered = link.to_string().replace("sig=", "sig=A");
        assert_eq!(check(&keys, &tampered, NOW, None), Err(Refusal::Invalid));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// URI paths: segments of a small alphabet that includes the
        /// characters paths are spelled with (`.`, `%`, `/`, encoded bytes).
        fn uri_path() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("a".to_owned()),
                    Just("b".to_owned()),
                    Just(".".to_owned()),
                    Just("..".to_owned()),
                    Just("".to_owned()),
                    Just("%61".to_owned()),
                    Just("%2F".to_owned()),
                    Just("%2e".to_owned()),
                    Just("a b".to_owned()),
                    "[a-c.%0-9A-F]{1,4}",
                ],
                0..5,
            )
            .prop_map(|segments| format!("/{}", segments.join("/")))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn a_signature_verifies_only_for_its_canonical_path(
                signed in uri_path(),
                requested in uri_path(),
            ) {
                let keys = KeySet::new(key("k", 1));
                let claims = Claims::expiring_at(at(NOW + 60));
                let Ok(link) = keys.signing_key().sign(&signed, &claims) else {
                    prop_assert!(canonical_path(&signed).is_none());
                    return Ok(());
                };
                let verdict = check(&keys, &format!("{requested}?{}", link.query()), NOW, None);
                let same = canonical_path(&requested).is_some()
                    && canonical_path(&requested) == canonical_path(&signed);
                prop_assert_eq!(verdict.is_ok(), same, "{} {}", signed, requested);
            }

            #[test]
            fn any_one_character_change_to_the_query_is_refused(
                at_fraction in 0.0..1.0f64,
                replacement in proptest::char::range(' ', '~'),
                delete in any::<bool>(),
            ) {
                let keys = KeySet::new(key("k", 1));
                let claims = Claims::expiring_at(at(NOW + 60))
                    .client("user-42")
                    .client_rate(Bandwidth::kib(64))
                    .ip("127.0.0.0/8".parse().unwrap());
                let link = keys.signing_key().sign("/v/a.mp4", &claims).unwrap();
                let query = link.query();
                let at = ((query.len() as f64) * at_fraction) as usize;
                let mut changed = query.to_owned();
                if delete {
                    changed.remove(at);
                } else {
                    prop_assume!(query.as_bytes()[at] != replacement as u8);
                    changed.replace_range(at..=at, &replacement.to_string());
                }
                let verdict = check(&keys, &format!("/v/a.mp4?{changed}"), NOW, Some("127.0.0.1"));
                prop_assert_eq!(verdict, Err(Refusal::Invalid), "{}", changed);
            }

            #[test]
            fn the_parser_never_panics(query in ".{0,200}", path in ".{0,40}") {
                let keys = KeySet::new(key("k", 1));
                let _ = check(&keys, &format!("/{path}?{query}"), NOW, Some("::1"));
                let _ = parse(Some(&query));
            }
        }
    }
}
