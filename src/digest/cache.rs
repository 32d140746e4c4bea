//! The cache of digests computed in the background, keyed by file version, and
//! the hashing itself (on the blocking pool, bounded in concurrency).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::Digest as _;
use tokio::sync::Semaphore;

use super::DigestAlgorithm;
use crate::source::{FileSource, Identity};

/// How long after its last change a file is hashed at the earliest: longer than
/// the tick of any file system clock, so that a write made while hashing changes
/// the file's times and is noticed.
const SETTLE: Duration = Duration::from_secs(2);

/// The most versions waiting for their hash; beyond it, none is scheduled.
const MAX_PENDING: usize = 64;

/// Bytes read at once while hashing.
const READ_SIZE: usize = 1 << 20;

/// Reads between two checks that the file is still the version being hashed:
/// a version superseded meanwhile is given up early (every 64 MiB).
const CHECK_EVERY: u64 = 64;

/// Digests of one algorithm by version: bounded in entries, oldest first out.
pub(crate) struct Cache {
    algorithm: DigestAlgorithm,
    capacity: usize,
    permits: Arc<Semaphore>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("Cache")
            .field("algorithm", &self.algorithm)
            .field("capacity", &self.capacity)
            .field("entries", &state.digests.len())
            .field("pending", &state.pending.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    digests: HashMap<Identity, Bytes>,
    /// Insertion order, for eviction.
    order: VecDeque<Identity>,
    /// Versions scheduled or being hashed.
    pending: HashSet<Identity>,
}

impl Cache {
    pub(crate) fn new(algorithm: DigestAlgorithm, capacity: usize, concurrent: usize) -> Self {
        Self {
            algorithm,
            capacity: capacity.max(1),
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            state: Mutex::default(),
        }
    }

    pub(crate) fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The digest of `identity`, if computed.
    pub(crate) fn get(&self, identity: &Identity) -> Option<Bytes> {
        self.state().digests.get(identity).cloned()
    }

    fn insert(&self, identity: Identity, digest: Bytes) {
        let mut state = self.state();
        if state.digests.insert(identity, digest).is_none() {
            state.order.push_back(identity);
        }
        while state.order.len() > self.capacity {
            if let Some(oldest) = state.order.pop_front() {
                state.digests.remove(&oldest);
            }
        }
    }

    /// Schedules the hash of `file`'s version unless it is known, pending, or
    /// too many are. Returns at once; needs a tokio runtime (without one, does
    /// nothing).
    pub(crate) fn schedule(self: &Arc<Self>, file: &Arc<FileSource>) {
        let Some(&identity) = file.identity() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut state = self.state();
            if state.digests.contains_key(&identity)
                || state.pending.len() >= MAX_PENDING
                || !state.pending.insert(identity)
            {
                return;
            }
        }
        let pending = Pending {
            cache: self.clone(),
            identity,
        };
        let file = file.clone();
        runtime.spawn(async move {
            let cache = &pending.cache;
            let settled = identity.changed() + SETTLE;
            if let Ok(wait) = settled.duration_since(SystemTime::now()) {
                tokio::time::sleep(wait).await;
            }
            let Ok(permit) = cache.permits.clone().acquire_owned().await else {
                return;
            };
            let algorithm = cache.algorithm;
            let hashed = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                hash(&file, algorithm, &identity)
            })
            .await;
            if let Ok(Ok(digest)) = hashed {
                cache.insert(identity, digest);
            }
        });
    }
}

/// Takes a version off the pending set when its task ends, however it ends.
struct Pending {
    cache: Arc<Cache>,
    identity: Identity,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.cache.state().pending.remove(&self.identity);
    }
}

/// Hashes the whole file, failing if it is not the version `identity` names at
/// the end (changed while being read) or is not as long.
pub(crate) fn hash(
    file: &FileSource,
    algorithm: DigestAlgorithm,
    identity: &Identity,
) -> io::Result<Bytes> {
    match algorithm {
        DigestAlgorithm::Sha256 => hash_with(sha2::Sha256::new(), file, identity),
        DigestAlgorithm::Sha512 => hash_with(sha2::Sha512::new(), file, identity),
    }
}

fn hash_with<D: sha2::Digest>(
    mut hasher: D,
    file: &FileSource,
    identity: &Identity,
) -> io::Result<Bytes> {
    let mut buf = vec![0; READ_SIZE];
    let mut offset = 0u64;
    let changed = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "file changed while being hashed",
        )
    };
    for reads in 1u64.. {
        if reads % CHECK_EVERY == 0 && Identity::of(&file.current_metadata()?) != Some(*identity) {
            return Err(changed());
        }
        let n = match file.read_blocking(&mut buf, offset) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    let now = Identity::of(&file.current_metadata()?);
    if offset != identity.len || now.as_ref() != Some(identity) {
        return Err(changed());
    }
    Ok(Bytes::from(hasher.finalize().to_vec()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::UNIX_EPOCH;

    use super::*;

    fn identity(n: u64) -> Identity {
        Identity {
            dev: 1,
            ino: n,
            len: 10,
            mtime: (1, 0),
            ctime: (1, 0),
        }
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest() {
        let cache = Cache::new(DigestAlgorithm::Sha256, 2, 1);
        for n in 0..3 {
            cache.insert(identity(n), Bytes::from(vec![n as u8]));
        }
        assert_eq!(cache.get(&identity(0)), None);
        assert_eq!(cache.get(&identity(1)).unwrap()[..], [1]);
        assert_eq!(cache.get(&identity(2)).unwrap()[..], [2]);
        assert_eq!(cache.state().order.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_hash_of_a_file_changed_meanwhile_is_discarded() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"hello").unwrap();
        let source = FileSource::open_blocking(file.path()).unwrap();
        let id = *source.identity().unwrap();
        let digest = hash(&source, DigestAlgorithm::Sha256, &id).unwrap();
        assert_eq!(
            digest[..],
            sha2::Sha256::digest(b"hello")[..],
            "the SHA-256 of the file"
        );
        // Same length, new content, another modification time.
        std::fs::write(file.path(), b"HELLO").unwrap();
        file.as_file().set_modified(UNIX_EPOCH).unwrap();
        let err = hash(&source, DigestAlgorithm::Sha256, &id).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
