//! The contents of small files kept in memory while the open-file cache keeps
//! them open, within a budget of bytes shared by all of one cache's files.
//!
//! A kept file answers every read from memory: no `pread`, no `fstat`. What
//! makes that safe is who keeps it: the cache checks the open file's length and
//! modification time before each use, and the contents were read and checked
//! against the same metadata (see [`FileSource`](super::FileSource)), so they are
//! the bytes of the version the response's validators name.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// How long a kept file's check of its metadata holds: a file changed in
/// place is seen within this time.
pub(crate) const RECHECK: Duration = crate::dir::OpenFileCache::KEPT_RECHECK;

/// The bytes of file contents one cache may keep, and the largest file it
/// keeps whole.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Files up to this length are kept.
    largest: u64,
    /// Bytes not yet taken.
    left: AtomicUsize,
}

impl Budget {
    /// A budget of `bytes`, for files of at most `largest` bytes; `None` when
    /// nothing could be kept.
    pub(crate) fn new(bytes: usize, largest: u64) -> Option<Arc<Self>> {
        (bytes > 0 && largest > 0).then(|| {
            Arc::new(Self {
                largest,
                left: AtomicUsize::new(bytes),
            })
        })
    }

    /// Takes `len` bytes of the budget, if they are left.
    fn take(&self, len: usize) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(len)
            })
            .is_ok()
    }

    fn give_back(&self, len: usize) {
        self.left.fetch_add(len, Ordering::AcqRel);
    }

    /// Bytes not taken.
    #[cfg(test)]
    pub(crate) fn left(&self) -> usize {
        self.left.load(Ordering::Acquire)
    }
}

/// The contents of one file, once read (at most once), charged to a budget
/// until dropped.
#[derive(Debug)]
pub(crate) struct Kept {
    contents: OnceLock<Bytes>,
    budget: Arc<Budget>,
    /// When it was made, and when its metadata was last found unchanged
    /// (microseconds after that; `u64::MAX`: never).
    since: Instant,
    checked: AtomicU64,
}

impl Kept {
    /// A place for the contents of a file of `len` bytes, if the budget keeps
    /// files that long.
    pub(crate) fn new(budget: &Arc<Budget>, len: u64) -> Option<Self> {
        (len > 0 && len <= budget.largest).then(|| Self {
            contents: OnceLock::new(),
            budget: budget.clone(),
            since: Instant::now(),
            checked: AtomicU64::new(u64::MAX),
        })
    }

    /// Whether the contents are kept and the file was found unchanged less
    /// than [`RECHECK`] ago.
    pub(crate) fn checked_lately(&self) -> bool {
        let checked = self.checked.load(Ordering::Acquire);
        self.contents.get().is_some()
            && checked != u64::MAX
            && self.micros_now().saturating_sub(checked) < RECHECK.as_micros() as u64
    }

    /// Notes that the file was just found unchanged.
    pub(crate) fn checked_now(&self) {
        self.checked.store(self.micros_now(), Ordering::Release);
    }

    fn micros_now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
    }

    /// Whether contents of `len` bytes would be kept now: none are yet, and
    /// the budget has room (so that a full budget costs no read of the whole
    /// file for nothing).
    pub(crate) fn wants(&self, len: usize) -> bool {
        self.contents.get().is_none() && self.budget.left.load(Ordering::Acquire) >= len
    }

    /// The contents, once kept.
    pub(crate) fn get(&self) -> Option<&Bytes> {
        self.contents.get()
    }

    /// Keeps a copy of `contents` (just what they take, not the read buffer
    /// they may sit in) if the budget has room and nothing is kept yet.
    pub(crate) fn offer(&self, contents: &[u8]) {
        if self.contents.get().is_some() || !self.budget.take(contents.len()) {
            return;
        }
        if self.contents.set(Bytes::copy_from_slice(contents)).is_err() {
            // Another response kept them first.
            self.budget.give_back(contents.len());
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if let Some(contents) = self.contents.get() {
            self.budget.give_back(contents.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_what_is_kept_and_gets_it_back() {
        let budget = Budget::new(10, 8).unwrap();
        assert!(Kept::new(&budget, 9).is_none(), "too long to keep");
        assert!(Kept::new(&budget, 0).is_none());
        let a = Kept::new(&budget, 6).unwrap();
        a.offer(b"abcdef");
        assert_eq!(a.get().unwrap(), "abcdef");
        a.offer(b"xxxxxx");
        assert_eq!(a.get().unwrap(), "abcdef", "kept once");
        assert_eq!(budget.left(), 4);
        let b = Kept::new(&budget, 6).unwrap();
        assert!(!b.wants(6), "no room");
        assert!(b.wants(4));
        b.offer(b"ghijkl");
        assert!(b.get().is_none(), "over the budget");
        assert_eq!(budget.left(), 4);
        drop(a);
        assert_eq!(budget.left(), 10);
        assert!(Budget::new(0, 8).is_none());
    }
}
