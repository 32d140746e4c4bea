//! Signed, expiring download links that carry their own policy (feature
//! `signed-links`).
//!
//! The application mints a link once — "user 42 may download `/videos/a.mp4`
//! at 2 MiB/s until 18:00" — and any replica that holds the key enforces it,
//! resumes included, without a shared session store. Like nginx's
//! `secure_link`, S3 presigned URLs or CloudFront signed URLs, but the link
//! also carries the download's bandwidth policy.
//!
//! [`SignedLinksLayer`] goes in front of (outside)
//! [`RangeServeLayer`](crate::RangeServeLayer) and
//! [`ServeDir`](crate::ServeDir) or `ServeObjects`. Every request needs a
//! valid link; its claims become a [`Restriction`](crate::throttle::Restriction)
//! in the request's extensions, which the range layer applies to the
//! request's [`Policy`](crate::Policy). [`SigningKey::sign`] mints links in
//! Rust; the format below lets any language mint them with its standard
//! library (`docs/signed-links.md` has Go and Python snippets).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Empty};
//! use tower::{Layer, ServiceExt};
//! use tower_range_serve::signed::{Claims, KeySet, SignedLinksLayer, SigningKey};
//! use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # std::fs::create_dir(dir.path().join("videos")).unwrap();
//! # std::fs::write(dir.path().join("videos/a.mp4"), b"0123456789").unwrap();
//! let key = SigningKey::new("2026-12", [7u8; 32]).unwrap(); // 32 random bytes
//! let service = SignedLinksLayer::new(KeySet::new(key.clone()))
//!     .layer(RangeServeLayer::new().layer(ServeDir::new(dir.path())));
//!
//! let claims = Claims::expiring_in(Duration::from_secs(3600))
//!     .client("user-42")
//!     .client_rate(Bandwidth::mib(2));
//! let link = key.sign("/videos/a.mp4", &claims).unwrap();
//!
//! let request = Request::get(link.to_string())
//!     .header("range", "bytes=2-4")
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let response = service.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
//! assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "234");
//!
//! // The same query on another path: 403, and not a byte of any file.
//! let request = Request::get(format!("/videos/b.mp4?{}", link.query()))
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! # });
//! ```
//!
//! # The format (version 1)
//!
//! A link is the file's URL with these query parameters (any order; each at
//! most once; other parameters are allowed, ignored by the check and passed
//! on, and they can change nothing that is signed):
//!
//! | name | value | required |
//! |---|---|---|
//! | `exp` | expiry: Unix time in seconds, decimal digits; the link is valid up to and including this second | yes |
//! | `nbf` | not before: Unix time in seconds | no |
//! | `ip` | client address or prefix: `192.0.2.7`, `203.0.113.0/24`, `2001:db8::/32` | no |
//! | `sub` | client key (the user): downloads share this client's limits | no |
//! | `crate` | client rate: bytes per second, decimal digits, shared by the client's downloads | no |
//! | `rate` | rate of each download: bytes per second | no |
//! | `streams` | most downloads the client may run at once | no |
//! | `scope` | folder link: the canonical path of a folder; the link is valid for it and every path under it | no |
//! | `kid` | the id of the key that signed | yes |
//! | `sig` | the signature | yes |
//!
//! Values are percent-decoded (with `+` as a space, as form encoding writes
//! it) and must then be UTF-8 without control characters. An empty value is
//! the same as an absent parameter. Parameter names are matched exactly,
//! undecoded.
//!
//! **The canonical path** is the request path as `ServeDir` resolves it:
//! percent-decoded (`%2F` included), split on `/`, empty and `.` segments
//! dropped, then `/` + the segments joined with `/` (`/` for the root, no
//! trailing slash). A path with a `..` segment, a backslash, a NUL, a `:` or
//! invalid UTF-8 never resolves, so it is refused before any check. So
//! `/videos/a.mp4`, `//videos/./a.mp4/` and `/videos/%61.mp4` share one
//! canonical path, and `/a/../b` or `/%62` can never use a signature made
//! for another one. Under axum's `nest_service`, the path is the one the
//! layer sees (without the prefix, if the layer is inside the nest).
//!
//! **The signed string** is these lines, joined with a line feed (`\n`, 0x0A),
//! without a final line feed, encoded as UTF-8:
//!
//! ```text
//! tower-range-serve link v1
//! path=<canonical path>          (for a folder link: scope=<scope>)
//! exp=<exp>
//! nbf=<nbf>
//! ip=<ip>
//! sub=<sub>
//! crate=<crate>
//! rate=<rate>
//! streams=<streams>
//! kid=<kid>
//! ```
//!
//! Every line is present; an absent parameter has an empty value (`nbf=`).
//! Values are the decoded values, exactly as they appear in the query (`exp=0100`
//! is signed as `0100`). No value can hold a line feed, so the string is
//! unambiguous.
//!
//! **The signature** is `sig = base64url(HMAC-SHA256(secret, signed string))`,
//! with the URL-safe alphabet (`-`, `_`) and without `=` padding: 43
//! characters.
//!
//! For example, with the key `k1` whose secret is 32 bytes of `0x07`, the file
//! `/videos/a b.mp4`, expiry `1800000000` and client `user-42`:
//!
//! ```
//! # use std::time::{Duration, UNIX_EPOCH};
//! # use tower_range_serve::signed::{Claims, SigningKey};
//! let key = SigningKey::new("k1", [7u8; 32]).unwrap();
//! let claims = Claims::expiring_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000)).client("user-42");
//! assert_eq!(
//!     key.sign("/videos/a b.mp4", &claims).unwrap().to_string(),
//!     "/videos/a%20b.mp4?exp=1800000000&sub=user-42&kid=k1\
//!      &sig=JcNmDKoGoEA-5CgL8SGrkv8NThbMG4Lpy31w6Hs20k4"
//! );
//! ```
//!
//! # Answers
//!
//! | link | answer |
//! |---|---|
//! | valid | the inner service's answer (200, 206, …), under the link's policy |
//! | missing, malformed, unknown `kid`, wrong `sig`, made for another path, or the path does not resolve | 403 Forbidden |
//! | valid, but a folder link and the path is not under its `scope` | 403 Forbidden |
//! | valid, but the client address is not in `ip` (or none is known) | 403 Forbidden |
//! | valid, but before `nbf` | 403 Forbidden |
//! | valid, but after `exp` | 410 Gone |
//!
//! Refusals carry a short `text/plain` body and `Cache-Control: no-store`,
//! never a byte of a file; the inner service is not called. The signature is
//! checked first, with a constant-time comparison (`hmac`'s `verify_slice`).
//! Only a query that is not a link at all (a required parameter missing, one
//! given twice, a value that breaks the syntax) is refused before the MAC;
//! for every well-formed link the MAC is computed, whatever else is wrong (an
//! unknown `kid` is checked with the signing key, then refused), so the time
//! taken does not tell how much of a signature matched; and only a link with
//! a valid signature learns that it expired (410) or is not yet valid.
//!
//! **Time.** A link is checked when the request arrives: a download that
//! started before `exp` runs to its end, and a resume (a new request) after
//! `exp` gets 410. A clock skew of 30 seconds is allowed on both ends
//! ([`SignedLinksLayer::clock_skew`]): accepted from `nbf − 30 s` to
//! `exp + 30 s`.
//!
//! # Claims and the operator's limits
//!
//! `crate`, `rate` and `streams` can only lower what the route gives (the
//! lower of the two; an unlimited route value becomes the claim's); `rate`
//! also caps a handler's own rate. The total rate always applies. `sub` is the
//! one claim that is not a cap: it sets whose client limits the downloads
//! share, so a user's links share the user's budget from any address. It
//! cannot lift a limit either (the route's client rate and stream cap apply
//! to that client too), but an application that mints a fresh `sub` per link
//! gives each link a client budget of its own: that is the application's
//! call, as the party that names users. A [`Restriction`](crate::throttle::Restriction)
//! already in the request (from an outer layer) is combined with the link's
//! (the lower of each limit; the link's client).

mod body;
mod claims;
mod future;
mod key;
mod layer;
mod link;
mod service;
pub(crate) mod verify;

pub use self::body::ResponseBody;
pub use self::claims::{Claims, IpPrefix, ParseIpPrefixError};
pub use self::future::ResponseFuture;
pub use self::key::{KeyError, KeySet, SignError, SignedLink, SigningKey};
pub use self::layer::{DEFAULT_CLOCK_SKEW, SignedLinksLayer};
pub use self::service::SignedLinks;
