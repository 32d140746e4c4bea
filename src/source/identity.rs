//! [`Identity`]: what tells one version of a file from another, for what is
//! kept per version (the digests of the `digest` feature).

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What identifies a version of a file: where it is (device, inode) and what
/// changed it last (length, modification and status-change times, which a
/// writer cannot set back together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Identity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
    /// Seconds and nanoseconds since the epoch.
    pub(crate) mtime: (i64, i64),
    pub(crate) ctime: (i64, i64),
}

impl Identity {
    /// The identity of the version `metadata` describes; `None` where the
    /// platform does not tell inodes.
    #[cfg(unix)]
    pub(crate) fn of(metadata: &Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    /// The identity of the version `metadata` describes; `None` where the
    /// platform does not tell inodes.
    #[cfg(not(unix))]
    pub(crate) fn of(_metadata: &Metadata) -> Option<Self> {
        None
    }

    /// When the version was last changed (the later of its two times).
    pub(crate) fn changed(&self) -> SystemTime {
        let time = |(secs, nanos): (i64, i64)| {
            let at = Duration::new(secs.unsigned_abs(), u32::try_from(nanos).unwrap_or(0));
            if secs >= 0 {
                UNIX_EPOCH + at
            } else {
                UNIX_EPOCH - at
            }
        };
        time(self.mtime).max(time(self.ctime))
    }
}
