//! [`OpenFileCache`]: what [`ServeDir`](crate::ServeDir) keeps of the paths it
//! resolved, like nginx's `open_file_cache`.
//!
//! An entry is what one relative path led to: an opened file (its descriptor,
//! metadata and response headers), a directory, or nothing (a negative entry).
//! Sidecars (`NAME.br`) and index files are entries of their own, so each
//! entry holds at most one descriptor and the bound on entries is the bound on
//! descriptors. A cached file remembers what the cache said of its sidecars
//! while the cache holds those answers ([`Sidecars`]), so a request that
//! accepts codings looks up the file only.
//!
//! - **Validity.** An entry is used for [`validity`](OpenFileCache::validity)
//!   after its path was resolved (nginx's `open_file_cache_valid`), then the
//!   path is resolved again. A file replaced by another (a new inode: renamed
//!   over, deleted and created again), deleted, or created where there was
//!   nothing, and a sidecar added or removed, are seen within that time.
//! - **Files changed in place** are seen at once: every use of a cached file
//!   first checks its length and modification time through its descriptor (one
//!   `fstat`, no path resolution); a changed one is dropped and its path
//!   resolved again. A response already streaming it ends with an error rather
//!   than splice two versions (see [`FileSource`](crate::source::FileSource)).
//!   Small files whose contents are kept in memory
//!   ([`memory`](OpenFileCache::memory)) check at most every
//!   [`KEPT_RECHECK`](OpenFileCache::KEPT_RECHECK) (100 ms) and, until they
//!   see a change, send the old version whole.
//! - **Bounds.** At most [`entries`](OpenFileCache::entries) entries, and so
//!   descriptors (on Linux, also at most a quarter of the process's soft
//!   `RLIMIT_NOFILE` when the service is built, so that the cache never takes
//!   the descriptors connections need). When full, expired entries go first,
//!   then arbitrary ones. Expired entries are swept every `validity` by a task
//!   on the tokio runtime that stops while the cache is empty, so a deleted
//!   file's descriptor is closed at most about two validities after it was
//!   opened (or when the last response reading it ends).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

pub use self::settings::OpenFileCache;
pub(crate) use self::sidecars::Sidecars;
use super::open::Opened;
use crate::source::kept::Budget;

mod settings;
mod sidecars;

/// Shards of the map: requests on different threads rarely wait for each other.
const SHARDS: usize = 16;

/// What the cache keeps: something opened, which can tell whether it is still
/// what it was when opened.
pub(crate) trait Entry: Send + Sync + 'static {
    /// Whether it may still be used (a file unchanged in place, an object not
    /// seen overwritten).
    fn is_current(&self) -> bool;
}

impl Entry for Opened {
    fn is_current(&self) -> bool {
        Opened::is_current(self)
    }
}

/// The cache itself, shared by the clones of one service.
#[derive(Debug)]
pub(crate) struct Cache<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    hasher: RandomState,
    per_shard: usize,
    validity: Duration,
    /// Whether a sweeping task runs.
    sweeping: AtomicBool,
    /// The memory for small files' contents.
    budget: Option<Arc<Budget>>,
}

#[derive(Debug)]
struct Shard<V> {
    /// By the bytes of the relative path: hashed and compared as one string
    /// (a `Path` is hashed and compared component by component). The paths
    /// come in one spelling (segments joined by `/`, see `relative_path`).
    map: HashMap<Box<[u8]>, Slot<V>>,
}

impl<V> Default for Shard<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

#[derive(Debug)]
struct Slot<V> {
    /// `None`: nothing there (a negative entry).
    found: Option<Arc<V>>,
    expires: Instant,
}

/// What the cache knows of a path; a known answer comes with the instant
/// the cache stops holding it.
#[derive(Debug)]
pub(crate) enum Cached<V> {
    /// It led to this, and still does as far as the cache can tell.
    Found(Arc<V>, Instant),
    /// It led to nothing.
    Missing(Instant),
    /// Not known: resolve it.
    Unknown,
}

impl<V: Entry> Cache<V> {
    /// The cache `settings` ask for, or `None` for none.
    pub(crate) fn new(settings: OpenFileCache) -> Option<Self> {
        let entries = settings.get_entries().min(descriptor_budget());
        if entries == 0 || settings.get_validity().is_zero() {
            return None;
        }
        let shards = entries.clamp(1, SHARDS);
        Some(Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            per_shard: entries / shards,
            validity: settings.get_validity(),
            sweeping: AtomicBool::new(false),
            budget: Budget::new(settings.get_memory(), OpenFileCache::KEPT_FILE_MAX),
        })
    }

    /// The memory for small files' contents, if they are kept.
    pub(crate) fn budget(&self) -> Option<&Arc<Budget>> {
        self.budget.as_ref()
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard<V>> {
        // The high bits: the map inside uses the low ones.
        let index = (self.hasher.hash_one(key) >> 32) as usize % self.shards.len();
        &self.shards[index]
    }

    /// What `relative` led to, if it is known and still valid. A file changed
    /// in place since it was opened is forgotten.
    pub(crate) fn get(&self, relative: &Path) -> Cached<V> {
        let key = key(relative);
        let shard = self.shard(key);
        let now = Instant::now();
        let (found, until) = {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            match shard.map.get(key) {
                None => return Cached::Unknown,
                Some(slot) if slot.expires <= now => {
                    let expired = shard.map.remove(key);
                    drop(shard);
                    drop(expired); // its descriptor is closed outside the lock
                    return Cached::Unknown;
                }
                Some(Slot {
                    found: None,
                    expires,
                }) => return Cached::Missing(*expires),
                Some(Slot {
                    found: Some(found),
                    expires,
                }) => (found.clone(), *expires),
            }
        };
        if found.is_current() {
            return Cached::Found(found, until);
        }
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let same = shard
            .map
            .get(key)
            .and_then(|slot| slot.found.as_ref())
            .is_some_and(|cached| Arc::ptr_eq(cached, &found));
        let changed = same.then(|| shard.map.remove(key));
        drop(shard);
        drop(changed);
        Cached::Unknown
    }

    /// Remembers that `relative` led to `found` (`None`: to nothing), until
    /// the instant returned.
    pub(crate) fn insert(self: &Arc<Self>, relative: &Path, found: Option<Arc<V>>) -> Instant {
        let now = Instant::now();
        let expires = now + self.validity;
        let slot = Slot { found, expires };
        let key = key(relative);
        let evicted = {
            let mut shard = self
                .shard(key)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut evicted = Vec::new();
            if shard.map.len() >= self.per_shard && !shard.map.contains_key(key) {
                evicted = shard.take_expired(now);
                if shard.map.len() >= self.per_shard {
                    // Full of valid entries: an arbitrary one goes (the
                    // iteration order of a randomly seeded map).
                    let victim = shard.map.keys().next().cloned();
                    if let Some(slot) = victim.and_then(|victim| shard.map.remove(&victim)) {
                        evicted.push(slot);
                    }
                }
            }
            let replaced = shard.map.insert(key.into(), slot);
            evicted.extend(replaced);
            evicted
        };
        drop(evicted);
        self.start_sweeping();
        expires
    }

    /// How many entries the cache holds.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .map
                    .len()
            })
            .sum()
    }

    /// Drops the entries expired at `now`.
    fn sweep(&self, now: Instant) {
        for shard in self.shards.iter() {
            let expired = shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take_expired(now);
            drop(expired);
        }
    }

    /// Starts the task that sweeps expired entries, unless one runs (or there
    /// is no tokio runtime: then entries are dropped when met expired, or to
    /// make room).
    fn start_sweeping(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        let guard = Stopped(Some(Arc::downgrade(self)));
        runtime.spawn(sweep_while_not_empty(guard, self.validity));
    }
}

/// The key of a relative path: its bytes.
fn key(relative: &Path) -> &[u8] {
    relative.as_os_str().as_encoded_bytes()
}

impl<V> Shard<V> {
    fn take_expired(&mut self, now: Instant) -> Vec<Slot<V>> {
        let mut expired = Vec::new();
        self.map.retain(|_, slot| {
            let keep = slot.expires > now;
            if !keep {
                expired.push(Slot {
                    found: slot.found.take(),
                    expires: slot.expires,
                });
            }
            keep
        });
        expired
    }
}

/// Sweeps the cache every `validity` while it holds entries and exists.
/// The guard is an argument, part of the future from the start: a task
/// dropped with its runtime, even before it ran, lets the next insertion start
/// another.
async fn sweep_while_not_empty<V: Entry>(mut guard: Stopped<V>, validity: Duration) {
    loop {
        tokio::time::sleep(validity).await;
        let Some(cache) = guard.0.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        cache.sweep(Instant::now());
        if cache.len() == 0 {
            cache.sweeping.store(false, Ordering::Release);
            // An entry inserted meanwhile saw a sweeper running: stay for it.
            if cache.len() == 0 || cache.sweeping.swap(true, Ordering::AcqRel) {
                guard.0 = None;
                return;
            }
        }
    }
}

/// Marks the cache as swept by no task when the sweeping task ends otherwise
/// than by finding the cache empty.
struct Stopped<V: Entry>(Option<Weak<Cache<V>>>);

impl<V: Entry> Drop for Stopped<V> {
    fn drop(&mut self) {
        if let Some(cache) = self.0.as_ref().and_then(Weak::upgrade) {
            cache.sweeping.store(false, Ordering::Release);
        }
    }
}

/// The most descriptors the cache may hold: a quarter of the soft limit on
/// open files (Linux), so that connections keep the rest.
fn descriptor_budget() -> usize {
    #[cfg(target_os = "linux")]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(current) = limit.current {
            return usize::try_from(current / 4).unwrap_or(usize::MAX);
        }
    }
    usize::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_entries_or_validity_is_no_cache() {
        assert!(Cache::<Opened>::new(OpenFileCache::off()).is_none());
        assert!(Cache::<Opened>::new(OpenFileCache::new().validity(Duration::ZERO)).is_none());
        assert!(Cache::<Opened>::new(OpenFileCache::new()).is_some());
    }

    #[test]
    fn the_bound_holds_across_shards() {
        let cache = Arc::new(Cache::<Opened>::new(OpenFileCache::new().entries(100)).unwrap());
        for i in 0..10_000 {
            cache.insert(Path::new(&format!("missing-{i}")), None);
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        // Every shard full (at most 100 / 16 each, or less under a low limit
        // on descriptors).
        assert_eq!(cache.len(), cache.per_shard * cache.shards.len());
        let last = Path::new("missing-9999");
        assert!(matches!(cache.get(last), Cached::Missing(_)));
        assert!(matches!(cache.get(Path::new("other")), Cached::Unknown));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_are_swept() {
        let cache = Arc::new(Cache::<Opened>::new(OpenFileCache::new().entries(10)).unwrap());
        cache.insert(Path::new("a"), None);
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(matches!(cache.get(Path::new("a")), Cached::Missing(_)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(matches!(cache.get(Path::new("a")), Cached::Unknown));
        cache.insert(Path::new("b"), None);
        assert_eq!(cache.len(), 1);
        // The sweeper drops it without anyone asking.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_sweeper_dropped_with_its_runtime_lets_another_start() {
        let cache = Arc::new(Cache::<Opened>::new(OpenFileCache::new().entries(10)).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async { cache.insert(Path::new("a"), None) });
        assert!(cache.sweeping.load(Ordering::Acquire));
        drop(runtime);
        assert!(!cache.sweeping.load(Ordering::Acquire));
    }
}
