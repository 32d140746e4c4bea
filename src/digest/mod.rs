//! Digests of whole representations, so a client can verify a resumed or
//! segmented download end to end (feature `digest`).
//!
//! # Fields
//!
//! - **`Repr-Digest`** (RFC 9530 §3): the digest of the *whole* selected
//!   representation, the same on every 200 and 206 (single range or
//!   `multipart/byteranges`) and on `HEAD`. Sent when the request asks with
//!   `Want-Repr-Digest` (RFC 9530 §4, a Structured Field Dictionary of
//!   preferences from 1 to 10; `sha-256=0` refuses an algorithm), or always
//!   ([`Digests::always`]).
//! - **`Content-Digest`** (RFC 9530 §2): the digest of the message content. Sent
//!   only on a 200 to `GET`, where the content is the whole representation and
//!   the value equals `Repr-Digest`; never on a 206 or to `HEAD`, whose content
//!   is something else. Asked with `Want-Content-Digest`.
//! - **`Digest`** (RFC 3230 §4.3.2, obsoleted by RFC 9530 but what aria2
//!   verifies): `SHA-256=<base64>` of the whole representation, when the request
//!   has `Want-Digest` (aria2 sends `SHA-512;q=1, SHA-256;q=1, SHA;q=0.1` and
//!   fails the download, exit 32, on a mismatch).
//!
//! None of them goes on 304, 412, 416, 429 or 503: those carry no selected
//! representation's content (RFC 9110 §15.4.5 lists what a 304 keeps).
//!
//! # Where a digest comes from
//!
//! In this order, per response:
//!
//! 1. A digest the handler attached: [`FileResponse::repr_digest`](crate::FileResponse::repr_digest)
//!    (an object store's own checksum, a database column).
//! 2. A checksum file beside the file, `NAME.sha256` or `NAME.sha512` in
//!    `sha256sum` format (`HEX  NAME`), read by
//!    [`FileResponse::open`](crate::FileResponse::open) with the file, so it is
//!    used on the very first request. A checksum file that does not parse, names
//!    another file, or is older than the file (the file changed after it was
//!    published) is ignored. Read only for requests that ask for a digest;
//!    under [`ServeDir`](crate::ServeDir)'s open-file cache, digests found in
//!    checksum files are kept with the opened file for the cache's validity
//!    (none found is not kept: a new checksum file is used at once).
//! 3. A cache of digests computed in the background ([`Digests::algorithm`]).
//!
//! The digest follows the file that was opened: a precompressed `NAME.br`
//! served as the representation gets `NAME.br.sha256` and its own cached digest.
//!
//! # Never a wrong digest
//!
//! Hashing is never on the request path. The first response for a version goes
//! without a digest and schedules one hash of it; later responses for the same
//! version carry it. The cache is keyed by what identifies a version: device,
//! inode, length, and modification and status-change times in nanoseconds. A
//! file changed in place is a new version, which is hashed anew and never gets
//! the old digest. A hash is read through the file opened for the response and
//! is discarded if the file's identity changed while it was read. A file that
//! changed less than 2 seconds before is hashed only 2 seconds after its last
//! change, so a write in the same tick of a coarse file system clock cannot go
//! unnoticed. (Identities are read on Unix; elsewhere only checksum files and
//! attached digests are sent.)
//!
//! Hashes run on tokio's blocking pool, at most
//! [`concurrent_hashes`](Digests::concurrent_hashes) at once (1 by default), so
//! a burst of first requests for big files queues instead of starving the
//! server; at most 64 versions wait, more are not scheduled until there is room.
//! `sha2` uses the CPU's SHA extensions where it finds them.
//!
//! # Example
//!
//! ```
//! use tower_range_serve::digest::{DigestAlgorithm, Digests};
//! use tower_range_serve::RangeServeLayer;
//!
//! let layer = RangeServeLayer::new().digests(
//!     Digests::new()
//!         .algorithm(DigestAlgorithm::Sha512)
//!         .cache_entries(10_000)
//!         .concurrent_hashes(2),
//! );
//! # let _ = layer;
//! ```
//!
//! A client verifies with any of:
//!
//! ```text
//! aria2c -x4 http://host/big.iso                     # Want-Digest, checked by aria2
//! curl -sI -H 'Want-Repr-Digest: sha-256=10' http://host/big.iso | grep -i repr-digest
//! ```

mod cache;
mod checksum;
mod respond;

use std::sync::Arc;

pub use crate::protocol::digest::{DigestAlgorithm, UnknownAlgorithm};

pub(crate) use self::checksum::Checksums;
pub(crate) use self::respond::{Wanted, respond};

use self::cache::Cache;
use crate::source::FileSource;

/// The default number of versions whose digests are kept: 4096.
///
/// ```
/// use tower_range_serve::digest::{DEFAULT_CACHE_ENTRIES, Digests};
///
/// let digests = Digests::new().cache_entries(4 * DEFAULT_CACHE_ENTRIES);
/// # let _ = digests;
/// ```
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;

/// How the layer sends digests; see the [module documentation](self).
///
/// A value: [`RangeServeLayer::digests`](crate::RangeServeLayer::digests) makes
/// the cache, shared by that layer's clones. Without that call, a layer sends the
/// digests that are known without hashing (attached ones, checksum files) when
/// asked ([`Digests::known_only`]).
///
/// # Example
///
/// ```
/// use tower_range_serve::digest::Digests;
/// use tower_range_serve::RangeServeLayer;
///
/// // SHA-256 on every 200 and 206, asked for or not.
/// let layer = RangeServeLayer::new().digests(Digests::new().always(true));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Digests {
    mode: Mode,
    always: bool,
    cache_entries: usize,
    concurrent_hashes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Known,
    Compute(DigestAlgorithm),
}

impl Default for Digests {
    fn default() -> Self {
        Self::known_only()
    }
}

impl Digests {
    /// SHA-256 digests, computed in the background for files without a checksum
    /// file, sent when asked; a cache of [`DEFAULT_CACHE_ENTRIES`] versions, one
    /// hash at a time.
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    ///
    /// let digests = Digests::new();
    /// # let _ = digests;
    /// ```
    pub fn new() -> Self {
        Self {
            mode: Mode::Compute(DigestAlgorithm::Sha256),
            ..Self::known_only()
        }
    }

    /// Only digests known without hashing: attached by the handler or read from
    /// checksum files. The layer's default.
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    ///
    /// let digests = Digests::known_only();
    /// # let _ = digests;
    /// ```
    pub fn known_only() -> Self {
        Self {
            mode: Mode::Known,
            always: false,
            cache_entries: DEFAULT_CACHE_ENTRIES,
            concurrent_hashes: 1,
        }
    }

    /// No digest fields at all, whatever the request asks.
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    ///
    /// let digests = Digests::off();
    /// # let _ = digests;
    /// ```
    pub fn off() -> Self {
        Self {
            mode: Mode::Off,
            ..Self::known_only()
        }
    }

    /// The algorithm computed in the background. Digests of other algorithms
    /// are still sent when known (a `NAME.sha512` beside a file). Defaults to
    /// SHA-256, which every client that verifies knows.
    ///
    /// ```
    /// use tower_range_serve::digest::{DigestAlgorithm, Digests};
    ///
    /// let digests = Digests::new().algorithm(DigestAlgorithm::Sha512);
    /// # let _ = digests;
    /// ```
    pub fn algorithm(mut self, algorithm: DigestAlgorithm) -> Self {
        self.mode = Mode::Compute(algorithm);
        self
    }

    /// Whether `Repr-Digest` (and on a 200, `Content-Digest`) is sent on
    /// requests that do not ask for it. A request that refuses every algorithm
    /// the layer has (`Want-Repr-Digest: sha-256=0`) still gets none. Defaults
    /// to `false`.
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    ///
    /// let digests = Digests::new().always(true);
    /// # let _ = digests;
    /// ```
    pub fn always(mut self, always: bool) -> Self {
        self.always = always;
        self
    }

    /// How many versions' digests are kept (at least 1); the oldest computed
    /// goes first. Defaults to [`DEFAULT_CACHE_ENTRIES`] (about 100 bytes
    /// each).
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    ///
    /// let digests = Digests::new().cache_entries(100);
    /// # let _ = digests;
    /// ```
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries.max(1);
        self
    }

    /// How many files are hashed at once, each on a thread of tokio's blocking
    /// pool (at least 1). Defaults to 1.
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    ///
    /// let digests = Digests::new().concurrent_hashes(2);
    /// # let _ = digests;
    /// ```
    pub fn concurrent_hashes(mut self, hashes: usize) -> Self {
        self.concurrent_hashes = hashes.max(1);
        self
    }
}

/// What a layer does with digests: built from [`Digests`] with a cache of its
/// own.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    mode: Mode,
    always: bool,
    cache: Option<Arc<Cache>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new(Digests::default())
    }
}

impl Settings {
    pub(crate) fn new(digests: Digests) -> Self {
        let cache = match digests.mode {
            Mode::Compute(algorithm) => Some(Arc::new(Cache::new(
                algorithm,
                digests.cache_entries,
                digests.concurrent_hashes,
            ))),
            Mode::Off | Mode::Known => None,
        };
        Self {
            mode: digests.mode,
            always: digests.always,
            cache,
        }
    }
}

/// The digests of a representation known without hashing, by algorithm.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    digests: [Option<bytes::Bytes>; 2],
}

impl Known {
    pub(crate) fn get(&self, algorithm: DigestAlgorithm) -> Option<&bytes::Bytes> {
        self.digests[algorithm.index()].as_ref()
    }

    pub(crate) fn set(&mut self, algorithm: DigestAlgorithm, digest: bytes::Bytes) {
        self.digests[algorithm.index()] = Some(digest);
    }

    /// Whether no digest is known.
    pub(crate) fn is_empty(&self) -> bool {
        self.digests.iter().all(Option::is_none)
    }

    /// Adds the digests of `other` that this one lacks.
    pub(crate) fn fill_from(&mut self, other: Known) {
        for (mine, theirs) in self.digests.iter_mut().zip(other.digests) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
    }
}

/// Where a representation's digest can come from: what is known, the file to
/// hash if it is one, and the path beside which its checksum files are.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub(crate) known: Known,
    pub(crate) file: Option<Arc<FileSource>>,
    /// The checksum files beside the opened file's own path: `PATH.sha256`
    /// and `PATH.sha512` are read when a request first asks for a digest (two
    /// small reads, or two failed opens), once per opened file.
    pub(crate) checksums: Option<Arc<Checksums>>,
}
