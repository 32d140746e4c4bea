//! [`SigningKey`] (an id and a secret; mints links) and [`KeySet`] (the keys a
//! layer verifies with).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::claims::{Claims, unix_seconds};
use super::link::{Params, encode_path};
use crate::dir::path::canonical_path;

/// A secret with an id: signs links, and verifies the links that name its id.
///
/// The secret is at least [`MIN_LEN`](Self::MIN_LEN) bytes (32, the size of
/// the HMAC-SHA256 output; draw them from a CSPRNG). The id is what a link's
/// `kid` names: 1 to 64 ASCII letters, digits, `-`, `_` or `.`. `Debug` never
/// shows the secret.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_range_serve::Bandwidth;
/// use tower_range_serve::signed::{Claims, SigningKey};
///
/// let key = SigningKey::new("2026-12", [7u8; 32]).unwrap();
/// let claims = Claims::expiring_in(Duration::from_secs(3600))
///     .client("user-42")
///     .client_rate(Bandwidth::mib(2));
/// let link = key.sign("/videos/a b.mp4", &claims).unwrap();
/// assert_eq!(link.path(), "/videos/a%20b.mp4");
/// assert!(link.query().starts_with("exp="));
/// assert!(link.to_string().contains("&sub=user-42&crate=2097152&kid=2026-12&sig="));
/// ```
#[derive(Clone)]
pub struct SigningKey {
    id: Arc<str>,
    secret: Arc<[u8]>,
}

impl SigningKey {
    /// The shortest secret accepted: 32 bytes.
    pub const MIN_LEN: usize = 32;

    /// A key with `id` and `secret`.
    ///
    /// # Errors
    ///
    /// If the secret is shorter than [`MIN_LEN`](Self::MIN_LEN) bytes, or the id
    /// is not 1 to 64 of `A-Z a-z 0-9 - _ .`.
    ///
    /// ```
    /// use tower_range_serve::signed::SigningKey;
    ///
    /// assert!(SigningKey::new("k1", [0u8; 32]).is_ok());
    /// let short = SigningKey::new("k1", b"hunter2").unwrap_err();
    /// assert_eq!(short.to_string(), "a signing key needs at least 32 bytes, this one has 7");
    /// assert!(SigningKey::new("k 1", [0u8; 32]).is_err());
    /// ```
    pub fn new(id: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let id = id.into();
        let secret = secret.as_ref();
        if secret.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(KeyError::BadId(id));
        }
        Ok(Self {
            id: id.into(),
            secret: secret.into(),
        })
    }

    /// The key's id.
    ///
    /// ```
    /// use tower_range_serve::signed::SigningKey;
    ///
    /// assert_eq!(SigningKey::new("k1", [0u8; 32]).unwrap().id(), "k1");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A link to the file at `path` (a URI path as `ServeDir` sees it:
    /// percent-encoded where needed, dot segments allowed) under `claims`.
    ///
    /// # Errors
    ///
    /// If `path` does not resolve under a root (`..` above it, a backslash, a
    /// NUL, invalid percent-encoding: what `ServeDir` refuses), or the client
    /// holds a control character.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::signed::{Claims, SigningKey};
    ///
    /// let key = SigningKey::new("k1", [1u8; 32]).unwrap();
    /// let claims = Claims::expiring_in(Duration::from_secs(60));
    /// let link = key.sign("/a/./b/../c.txt", &claims);
    /// assert!(link.is_err()); // `..` is never served
    /// let link = key.sign("//a/./c.txt", &claims).unwrap();
    /// assert_eq!(link.path(), "/a/c.txt");
    /// ```
    pub fn sign(&self, path: &str, claims: &Claims) -> Result<SignedLink, SignError> {
        let canonical = canonical_path(path).ok_or(SignError::Path)?;
        let params = self.params(claims, String::new())?;
        Ok(self.finish(encode_path(&canonical), &canonical, params))
    }

    /// A folder link: one query valid for every path under `folder` (the
    /// folder itself included), for a player that fetches many segments.
    /// Append [`SignedLink::query`] to any path under [`SignedLink::path`].
    ///
    /// # Errors
    ///
    /// As [`sign`](Self::sign).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::signed::{Claims, SigningKey};
    ///
    /// let key = SigningKey::new("k1", [1u8; 32]).unwrap();
    /// let claims = Claims::expiring_in(Duration::from_secs(600));
    /// let link = key.sign_folder("/hls/show-1/", &claims).unwrap();
    /// assert_eq!(link.path(), "/hls/show-1");
    /// assert!(link.query().contains("&scope=/hls/show-1&"));
    /// let segment = format!("/hls/show-1/seg-00042.ts?{}", link.query());
    /// # let _ = segment;
    /// ```
    pub fn sign_folder(&self, folder: &str, claims: &Claims) -> Result<SignedLink, SignError> {
        let canonical = canonical_path(folder).ok_or(SignError::Path)?;
        let params = self.params(claims, canonical.clone())?;
        Ok(self.finish(encode_path(&canonical), &canonical, params))
    }

    fn params(&self, claims: &Claims, scope: String) -> Result<Params, SignError> {
        let number = |n: u64| if n == 0 { String::new() } else { n.to_string() };
        let client = claims.client.clone().unwrap_or_default();
        if client.chars().any(char::is_control) {
            return Err(SignError::Client);
        }
        Ok(Params {
            exp: unix_seconds(claims.expires).to_string(),
            nbf: claims
                .not_before
                .map(|t| unix_seconds(t).to_string())
                .unwrap_or_default(),
            ip: claims.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            sub: client,
            client_rate: number(claims.client_rate.bytes_per_second()),
            rate: number(claims.rate.bytes_per_second()),
            streams: claims
                .max_streams
                .map(|n| n.to_string())
                .unwrap_or_default(),
            scope,
            kid: self.id.to_string(),
            sig: String::new(),
        })
    }

    fn finish(&self, path: String, canonical: &str, mut params: Params) -> SignedLink {
        let tag = self
            .mac(&params.signed_string(canonical))
            .finalize()
            .into_bytes();
        params.sig = URL_SAFE_NO_PAD.encode(tag);
        SignedLink {
            path,
            query: params.query(),
        }
    }

    /// The MAC over `signed`, ready to finalize or verify.
    pub(crate) fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        mac.update(signed.as_bytes());
        mac
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A minted link: the encoded path and the query to append to it.
///
/// `Display` gives `PATH?QUERY`, ready to append to the server's origin.
///
/// ```
/// use std::time::Duration;
/// use tower_range_serve::signed::{Claims, SigningKey};
///
/// let key = SigningKey::new("k1", [1u8; 32]).unwrap();
/// let link = key.sign("/a.txt", &Claims::expiring_in(Duration::from_secs(60))).unwrap();
/// assert_eq!(link.to_string(), format!("{}?{}", link.path(), link.query()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    path: String,
    query: String,
}

impl SignedLink {
    /// The canonical path, percent-encoded (for a folder link, the folder).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, without `?`.
    pub fn query(&self) -> &str {
        &self.query
    }
}

impl fmt::Display for SignedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}?{}", self.path, self.query)
    }
}

/// The keys a [`SignedLinksLayer`](super::SignedLinksLayer) verifies links
/// with: one that signs (and verifies), and older or newer ones that only
/// verify, for key rotation. A link names its key by id.
///
/// To rotate: add the new key as a verifying key to every replica, then make
/// it the signing key, then drop the old one once its last link has expired.
///
/// ```
/// use tower_range_serve::signed::{KeySet, SigningKey};
///
/// let new = SigningKey::new("2027-01", [2u8; 32]).unwrap();
/// let old = SigningKey::new("2026-12", [1u8; 32]).unwrap();
/// let keys = KeySet::new(new).verify_also(old);
/// assert_eq!(keys.signing_key().id(), "2027-01");
/// assert!(keys.get("2026-12").is_some());
/// assert!(keys.get("2025-01").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// A set with one key, which signs.
    pub fn new(signing: SigningKey) -> Self {
        Self {
            keys: vec![signing],
        }
    }

    /// Adds a key that verifies links naming its id (a key with the same id
    /// as one already in the set replaces it, unless that one signs).
    #[must_use]
    pub fn verify_also(mut self, key: SigningKey) -> Self {
        if key.id != self.keys[0].id {
            self.keys.retain(|k| k.id != key.id);
            self.keys.push(key);
        }
        self
    }

    /// The key that signs new links.
    pub fn signing_key(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The key with `id`, if any.
    pub fn get(&self, id: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| *k.id == *id)
    }
}

impl From<SigningKey> for KeySet {
    fn from(key: SigningKey) -> Self {
        Self::new(key)
    }
}

/// Why a [`SigningKey`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret has fewer than [`SigningKey::MIN_LEN`] bytes (this many).
    TooShort(usize),
    /// The id is not 1 to 64 of `A-Z a-z 0-9 - _ .`.
    BadId(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(len) => write!(
                f,
                "a signing key needs at least {} bytes, this one has {len}",
                SigningKey::MIN_LEN
            ),
            Self::BadId(id) => write!(
                f,
                "invalid key id {id:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a link could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The path does not resolve under a root, so it could never be served.
    Path,
    /// The client key holds a control character.
    Client,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Path => "the path does not resolve under a root",
            Self::Client => "the client key holds a control character",
        })
    }
}

impl std::error::Error for SignError {}
