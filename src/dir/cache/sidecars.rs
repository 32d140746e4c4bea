//! [`Sidecars`]: what a cached file remembers of its precompressed sidecars,
//! so that a request that accepts codings costs one cache lookup (the file's),
//! not one more per coding it probes.
//!
//! Each answer is the open-file cache's own (the sidecar's entry, or its
//! negative entry), kept beside the file until that entry's validity ends: it
//! is never used longer than the cache would have used it. A sidecar is held
//! weakly: only the cache's entry keeps it, so once the cache drops it
//! (evicted, expired, changed) it is looked up again, and no descriptor is
//! held here. It is checked like a cache hit before each use (a sidecar
//! changed in place is not used). A remembered *missing* answer may outlive
//! its negative entry when a full cache evicts that entry early; it still
//! ends within the entry's validity.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::time::Instant;

use super::Entry;
use crate::dir::Encoding;

/// The sidecars of one file that were looked for, by coding.
#[derive(Debug)]
pub(crate) struct Sidecars<V> {
    seen: Mutex<[Option<Seen<V>>; Encoding::ALL.len()]>,
}

/// One answer of the cache: the sidecar (`None`: there is none), and when the
/// cache stops holding that answer.
#[derive(Debug)]
struct Seen<V> {
    sidecar: Option<Weak<V>>,
    until: Instant,
}

impl<V> Default for Sidecars<V> {
    fn default() -> Self {
        Self {
            seen: Mutex::new(Default::default()),
        }
    }
}

impl<V: Entry> Sidecars<V> {
    /// What is known at `now` of the `encoding` sidecar: `Some(Some(_))` it is
    /// there (and unchanged), `Some(None)` there is none, `None` not known (ask
    /// the cache).
    pub(crate) fn get(&self, encoding: Encoding, now: Instant) -> Option<Option<Arc<V>>> {
        let sidecar = {
            let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let seen = seen[encoding.index()]
                .as_ref()
                .filter(|seen| seen.until > now)?;
            match &seen.sidecar {
                None => return Some(None),
                Some(sidecar) => sidecar.upgrade()?,
            }
        };
        sidecar.is_current().then_some(Some(sidecar))
    }

    /// Remembers the cache's answer for the `encoding` sidecar, which it holds
    /// until `until`.
    pub(crate) fn remember(&self, encoding: Encoding, sidecar: Option<&Arc<V>>, until: Instant) {
        let seen = Seen {
            sidecar: sidecar.map(Arc::downgrade),
            until,
        };
        let mut all = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        all[encoding.index()] = Some(seen);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[derive(Debug, Default)]
    struct Fake(AtomicBool);

    impl Entry for Fake {
        fn is_current(&self) -> bool {
            !self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn an_answer_holds_until_the_caches_does() {
        let now = Instant::now();
        let until = now + Duration::from_secs(2);
        let sidecars = Sidecars::<Fake>::default();
        assert!(sidecars.get(Encoding::Brotli, now).is_none());
        let brotli = Arc::new(Fake::default());
        sidecars.remember(Encoding::Brotli, Some(&brotli), until);
        sidecars.remember(Encoding::Gzip, None, until);
        let found = sidecars.get(Encoding::Brotli, now).unwrap().unwrap();
        assert!(Arc::ptr_eq(&found, &brotli));
        assert!(sidecars.get(Encoding::Gzip, now).unwrap().is_none());
        assert!(sidecars.get(Encoding::Zstd, now).is_none());
        // At `until`, neither is known any more.
        assert!(sidecars.get(Encoding::Brotli, until).is_none());
        assert!(sidecars.get(Encoding::Gzip, until).is_none());
    }

    #[test]
    fn a_sidecar_gone_from_the_cache_or_changed_is_not_known() {
        let now = Instant::now();
        let until = now + Duration::from_secs(2);
        let sidecars = Sidecars::<Fake>::default();
        let brotli = Arc::new(Fake::default());
        sidecars.remember(Encoding::Brotli, Some(&brotli), until);
        brotli.0.store(true, Ordering::Relaxed); // changed in place
        assert!(sidecars.get(Encoding::Brotli, now).is_none());
        let gzip = Arc::new(Fake::default());
        sidecars.remember(Encoding::Gzip, Some(&gzip), until);
        drop(gzip); // evicted, and no response reads it
        assert!(sidecars.get(Encoding::Gzip, now).is_none());
    }
}
