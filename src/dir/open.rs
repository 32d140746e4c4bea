//! Opening a relative path under the root so that nothing outside it is reached.
//!
//! On Linux one `openat2` call with `RESOLVE_BENEATH` resolves and opens the path,
//! and the kernel refuses any step out of the root (`..` past it, a link leading
//! out of it, an absolute link, `/proc` magic links): no `canonicalize` (a
//! system call per component) and no window between checking a path and opening
//! it. With `RESOLVE_CACHED` the same call answers from the dentry cache only, or
//! fails with `EAGAIN` instead of waiting for the disk, so a lookup can run on
//! the async thread and go to the blocking pool only when it would wait.
//!
//! `RESOLVE_BENEATH` also refuses absolute links, even to a file inside the
//! root; such a path (and any other the kernel refuses as leaving the root) is
//! decided the portable way, so the rule stays "links are followed while they
//! lead inside the root". Elsewhere, or on a kernel without `openat2` (before
//! 5.6; 5.12 for `RESOLVE_CACHED`), the path is canonicalized and checked
//! against the canonical root, then opened.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::cache::Sidecars;
use crate::serve::{FileHeaders, SharedChecksums};
use crate::source::FileSource;
use crate::source::kept::Budget;

/// An opened file or directory, with its metadata and its path (for its
/// `Content-Type`, its checksum files, and to list a directory). Shared by the
/// responses that use it while the open-file cache keeps it.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) handle: Handle,
    pub(super) metadata: Metadata,
    pub(super) path: Arc<Path>,
    /// The response headers of a file, made once.
    headers: OnceLock<FileHeaders>,
    /// Those of a sidecar sent as a precompressed variant, made once.
    variant: OnceLock<FileHeaders>,
    /// Its checksum files, read once (when a request first asks for a digest).
    checksums: SharedChecksums,
    /// What the open-file cache said of its sidecars.
    pub(super) sidecars: Sidecars<Opened>,
}

/// What was opened.
#[derive(Debug)]
pub(super) enum Handle {
    /// A regular file, ready to be read by any number of responses.
    File(Arc<FileSource>),
    /// A directory.
    Dir(File),
}

impl Opened {
    fn new(file: File, metadata: Metadata, path: PathBuf) -> io::Result<Self> {
        let handle = if metadata.is_file() {
            Handle::File(Arc::new(FileSource::with_metadata(file, &metadata)?))
        } else if metadata.is_dir() {
            Handle::Dir(file)
        } else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let path: Arc<Path> = path.into();
        Ok(Self {
            handle,
            metadata,
            checksums: SharedChecksums::new(path.clone()),
            path,
            headers: OnceLock::new(),
            variant: OnceLock::new(),
            sidecars: Sidecars::default(),
        })
    }

    /// The file, if this is a regular file.
    pub(super) fn source(&self) -> Option<&Arc<FileSource>> {
        match &self.handle {
            Handle::File(source) => Some(source),
            Handle::Dir(_) => None,
        }
    }

    /// Keeps a small file's contents in memory once read (see
    /// [`OpenFileCache::memory`](super::OpenFileCache::memory)).
    pub(super) fn keep_within(&mut self, budget: &Arc<Budget>) {
        if let Handle::File(source) = &mut self.handle {
            if let Some(source) = Arc::get_mut(source) {
                source.keep_within(budget);
            }
        }
    }

    /// The `Content-Type`, `ETag` and `Last-Modified` of a file, typed after
    /// its own path; `None` for a directory.
    pub(super) fn headers(&self) -> Option<&FileHeaders> {
        let source = self.source()?;
        Some(
            self.headers
                .get_or_init(|| FileHeaders::new(source, &self.path)),
        )
    }

    /// The headers of this sidecar sent as the `encoding` variant of the file
    /// whose headers are `original` (see `lookup::variant_headers`), made the
    /// first time: a sidecar's name says its coding and its original, so
    /// they are the same each time. `None` for a directory.
    pub(super) fn variant_headers(
        &self,
        make: impl FnOnce(&FileHeaders) -> FileHeaders,
    ) -> Option<&FileHeaders> {
        let own = self.headers()?;
        Some(self.variant.get_or_init(|| make(own)))
    }

    /// The checksum files beside it, shared by its responses.
    pub(super) fn checksums(&self) -> &SharedChecksums {
        &self.checksums
    }

    /// Whether what was opened is still what its metadata says: a file's
    /// length and modification time are unchanged (one `fstat`; a file
    /// rewritten in place is not). Directories always are.
    pub(super) fn is_current(&self) -> bool {
        self.source().is_none_or(|source| source.is_unchanged())
    }
}

/// How an open may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Only from cached data: fails with [`io::ErrorKind::WouldBlock`] where the
    /// disk would be needed (for a call on the async thread).
    Never,
    /// As long as the disk takes (on the blocking pool).
    Allowed,
}

/// Opens `relative` under `root` (links followed; with `follow_symlinks`
/// `false`, only where they stay inside the root). Only regular files and
/// directories are opened: anything else is [`io::ErrorKind::NotFound`], and a
/// FIFO never blocks the open.
pub(super) fn open_beneath(
    root: &Path,
    relative: &Path,
    follow_symlinks: bool,
    wait: Wait,
) -> io::Result<Opened> {
    #[cfg(target_os = "linux")]
    if !follow_symlinks {
        match linux::open_beneath(root, relative, wait) {
            Err(e) if linux::undecided(&e) => {}
            opened => return opened,
        }
    }
    if wait == Wait::Never {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let path = root.join(relative);
    let path = match follow_symlinks {
        true => path,
        false => {
            let resolved = path.canonicalize()?;
            // The root is resolved anew each time, not cached: a root that is
            // itself a link swapped at deploy time (`current -> releases/v2`)
            // must follow.
            if !resolved.starts_with(root.canonicalize()?) {
                return Err(io::ErrorKind::NotFound.into());
            }
            resolved
        }
    };
    // Checked before opening: opening a FIFO would wait for a writer.
    let metadata = std::fs::metadata(&path)?;
    if !metadata.is_file() && !metadata.is_dir() {
        return Err(io::ErrorKind::NotFound.into());
    }
    let file = File::open(&path)?;
    let metadata = file.metadata()?;
    Opened::new(file, metadata, path)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::io;
    use std::path::{Component, Path};

    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    use rustix::io::Errno;

    use super::{Opened, Wait};

    pub(super) fn open_beneath(root: &Path, relative: &Path, wait: Wait) -> io::Result<Opened> {
        // The root itself is opened by its path each time (a root that is a
        // link swapped at deploy time must follow); its dentries are the
        // hottest of all, so this is not guarded by RESOLVE_CACHED.
        let dir = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        if wait == Wait::Never {
            resolve |= ResolveFlags::CACHED;
        }
        let name = match relative.components().next() {
            Some(Component::Normal(_)) => relative,
            _ => Path::new("."),
        };
        // O_NONBLOCK: opening a FIFO does not wait for a writer (and reads of
        // regular files ignore it).
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let fd =
            openat2(&dir, name, flags, Mode::empty(), resolve).map_err(|errno| match errno {
                // Too many links, or a magic link: as missing.
                Errno::LOOP => io::ErrorKind::NotFound.into(),
                Errno::AGAIN => io::ErrorKind::WouldBlock.into(),
                errno => io::Error::from(errno),
            })?;
        let file = File::from(fd);
        let metadata = file.metadata()?;
        Opened::new(file, metadata, root.join(relative))
    }

    /// Whether `error` leaves the answer to the portable way: this kernel (or
    /// its sandbox) has no usable `openat2`, or the path takes a step the
    /// kernel refuses beneath the root (`EXDEV`: `..` past it, or an absolute
    /// link, which may still lead inside it).
    pub(super) fn undecided(error: &io::Error) -> bool {
        matches!(
            error.raw_os_error().map(Errno::from_raw_os_error),
            Some(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::XDEV)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/file.txt"), "inside").unwrap();
        root
    }

    #[test]
    fn files_and_directories_inside_the_root_open() {
        let root = root();
        for wait in [Wait::Allowed, Wait::Never] {
            let opened = open_beneath(root.path(), Path::new("sub/file.txt"), false, wait);
            // On the async path the dentries of a file just written are cached.
            let opened = opened.unwrap();
            assert!(opened.metadata.is_file());
            assert_eq!(opened.metadata.len(), 6);
            let dir = open_beneath(root.path(), Path::new("sub"), false, Wait::Allowed).unwrap();
            assert!(dir.metadata.is_dir());
            let top = open_beneath(root.path(), Path::new(""), false, Wait::Allowed).unwrap();
            assert!(top.metadata.is_dir());
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_root_are_not_found_and_links_inside_open() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "no").unwrap();
        let root = root();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink("sub/file.txt", root.path().join("in")).unwrap();
        std::os::unix::fs::symlink(root.path().join("sub/file.txt"), root.path().join("abs"))
            .unwrap();
        std::os::unix::fs::symlink("../../etc", root.path().join("sub/up")).unwrap();
        for name in ["out", "sub/up/passwd"] {
            let error = open_beneath(root.path(), Path::new(name), false, Wait::Allowed);
            assert_eq!(error.unwrap_err().kind(), io::ErrorKind::NotFound, "{name}");
        }
        for name in ["in", "abs"] {
            let inside = open_beneath(root.path(), Path::new(name), false, Wait::Allowed);
            assert_eq!(inside.unwrap().metadata.len(), 6, "{name}");
        }
        // An absolute link is decided on the blocking pool, not from the cache.
        let abs = open_beneath(root.path(), Path::new("abs"), false, Wait::Never);
        assert_eq!(abs.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // Following links anywhere is the caller's choice.
        let out = open_beneath(root.path(), Path::new("out"), true, Wait::Allowed).unwrap();
        assert_eq!(out.metadata.len(), 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_is_not_found_and_never_blocks_the_open() {
        let root = root();
        let fifo = root.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        for follow in [false, true] {
            let error = open_beneath(root.path(), Path::new("fifo"), follow, Wait::Allowed);
            assert_eq!(error.unwrap_err().kind(), io::ErrorKind::NotFound);
        }
    }
}
