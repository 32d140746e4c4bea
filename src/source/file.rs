//! Files, read with positional reads on tokio's blocking pool.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::bytes::slice;
use super::kept::{Budget, Kept};
use super::pool::Buffer;
use super::{RangeSource, ReadFuture};

/// A regular file opened for serving.
///
/// Every chunk is one positional read straight into the buffer that becomes the
/// body frame: one copy from the page cache, no shared cursor, no read of bytes
/// outside the planned ranges. Buffers are recycled once their frame is sent (a
/// small bounded pool), so a steady download allocates nothing per chunk. On Linux, a chunk whose pages are all cached is
/// read at once on the calling thread (`preadv2` with `RWF_NOWAIT`, which never
/// waits for the disk; a memory copy of one chunk); any other read goes to tokio's
/// blocking pool. Handing every chunk to the blocking pool costs two thread
/// wake-ups per chunk, which dominated the CPU time of unthrottled downloads
/// (see BENCHMARKS.md).
///
/// Every read also checks that the file is still the version that was opened: a
/// file that turns out shorter than its length at opening fails with
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof), and one whose length or
/// modification time changed (written to, truncated, appended to) fails with
/// [`InvalidData`](io::ErrorKind::InvalidData). The check runs after the read, so
/// a write that raced with it is caught by this read or the next one: a response
/// may be cut short, but it is never completed with bytes of two versions. A file
/// replaced by renaming another over its path is not a change of the open file,
/// which is sent to the end.
///
/// On Linux, a planned range of 1 MiB or more is announced to the kernel
/// (`posix_fadvise` `SEQUENTIAL`: twice the readahead window for this open
/// file), and a read whose pages are only partly cached keeps what it found:
/// the blocking pool reads only the rest. (`WILLNEED` ahead of the reads was
/// tried and measured slower: it replaced the kernel's pipelined readahead by
/// bursts; see BENCHMARKS.md.)
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use tower_range_serve::source::{FileSource, RangeSource};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join("file-source-doc.txt");
/// std::fs::write(&path, "hello world").unwrap();
/// let source = Arc::new(FileSource::open(&path).await.unwrap());
/// assert_eq!(source.len(), 11);
/// assert_eq!(source.read_at(6, 5).await.unwrap(), "world");
/// # });
/// ```
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
    modified: Option<SystemTime>,
    /// The version opened, for the digest cache.
    #[cfg(feature = "digest")]
    identity: Option<super::Identity>,
    /// Where a small file held by the open-file cache keeps its contents.
    kept: Option<Kept>,
}

/// Planned ranges from this length on are read `SEQUENTIAL`.
#[cfg(target_os = "linux")]
const SEQUENTIAL_FROM: u64 = 1 << 20;

impl FileSource {
    /// Opens a regular file on the blocking pool.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] for a directory or anything else
    /// that is not a regular file.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(io::Error::other)?
    }

    /// Opens a regular file on the current thread (blocking).
    pub fn open_blocking(path: &Path) -> io::Result<Self> {
        Self::from_file(File::open(path)?)
    }

    /// Wraps an open file, reading its length and modification time.
    pub fn from_file(file: File) -> io::Result<Self> {
        let metadata = file.metadata()?;
        Self::with_metadata(file, &metadata)
    }

    /// Wraps an open file whose metadata was just read (one `fstat` fewer).
    pub(crate) fn with_metadata(file: File, metadata: &std::fs::Metadata) -> io::Result<Self> {
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(Self {
            file,
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(feature = "digest")]
            identity: super::Identity::of(metadata),
            kept: None,
        })
    }

    /// Keeps the whole file in memory from its first read on, within
    /// `budget`, if it is small enough: for the open-file cache, which checks
    /// before each use, or at most every [`RECHECK`](super::kept::RECHECK)
    /// once the file is kept, that it did not change (reads from memory do
    /// not check).
    pub(crate) fn keep_within(&mut self, budget: &Arc<Budget>) {
        self.kept = Kept::new(budget, self.len);
    }

    /// Whether its contents are in memory.
    #[cfg(test)]
    pub(crate) fn is_kept(&self) -> bool {
        self.kept.as_ref().is_some_and(|kept| kept.get().is_some())
    }

    /// Whether the open file is still the version that was opened: same
    /// length and modification time (one `fstat`). For caches that keep files
    /// open between responses.
    ///
    /// A file kept in memory is checked at most every
    /// [`RECHECK`](super::kept::RECHECK): its responses read no file, so they
    /// never mix versions, and a change in place is seen within that time. A
    /// small file not kept yet is read (from the page cache only) when it is
    /// checked, so that a file whose responses never read it (one always sent
    /// as its precompressed variant) is not checked at every use either.
    pub(crate) fn is_unchanged(&self) -> bool {
        let Some(kept) = &self.kept else {
            return self.check_unchanged().is_ok();
        };
        if kept.checked_lately() {
            return true;
        }
        let len = self.len as usize; // kept files are small
        #[cfg(target_os = "linux")]
        if kept.wants(len) {
            if let Ok((buf, read)) = self.read_cached(0, len) {
                if read == len {
                    // Kept only if checked after the read, as any read is.
                    let unchanged = self.check_unchanged().is_ok();
                    if unchanged {
                        kept.offer(&buf.freeze());
                        kept.checked_now();
                    }
                    return unchanged;
                }
            }
        }
        let unchanged = self.check_unchanged().is_ok();
        if unchanged {
            kept.checked_now();
        }
        unchanged
    }

    /// The version opened, where the platform tells it.
    #[cfg(feature = "digest")]
    pub(crate) fn identity(&self) -> Option<&super::Identity> {
        self.identity.as_ref()
    }

    /// One positional read on this thread (blocking), for hashing.
    #[cfg(feature = "digest")]
    pub(crate) fn read_blocking(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        read_at(&self.file, buf, offset)
    }

    /// The open file's metadata now.
    #[cfg(feature = "digest")]
    pub(crate) fn current_metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    /// The modification time when the file was opened, where the platform has one.
    pub fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    /// Reads the chunk on this thread as far as its pages are in the page
    /// cache: `Ok` with the buffer and how many bytes were read (all of them,
    /// some, or none), the rest to be read by the blocking pool.
    #[cfg(target_os = "linux")]
    fn read_cached(&self, offset: u64, len: usize) -> io::Result<(Buffer, usize)> {
        use rustix::io::{Errno, ReadWriteFlags, preadv2};
        let mut buf = Buffer::new(len);
        let read = preadv2(
            &self.file,
            &mut [io::IoSliceMut::new(buf.as_mut_slice())],
            offset,
            ReadWriteFlags::NOWAIT,
        );
        match read {
            // Partly cached, or at the end of a file that shrank: the blocking read
            // finishes it and tells which.
            Ok(n) => Ok((buf, n)),
            Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::INTR) => Ok((buf, 0)),
            Err(e) => Err(e.into()),
        }
    }

    #[cfg(test)]
    fn read_exact_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.fill(Buffer::new(len), offset, 0)
    }

    /// Reads the bytes of `buf` from `filled` on, at `offset + filled`
    /// (blocking), and checks that the file did not change.
    fn fill(&self, mut buf: Buffer, offset: u64, mut filled: usize) -> io::Result<Bytes> {
        let len = buf.as_mut_slice().len();
        while filled < len {
            match read_at(
                &self.file,
                &mut buf.as_mut_slice()[filled..],
                offset + filled as u64,
            ) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file is shorter than when it was opened",
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.check_unchanged()?;
        Ok(buf.freeze())
    }

    /// Reads `len` bytes at `offset`: from the page cache on this thread, or
    /// on the blocking pool.
    fn read(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        #[cfg(target_os = "linux")]
        let (buf, filled) = match self.read_cached(offset, len) {
            Ok((buf, n)) if n == len => {
                let result = self.check_unchanged().map(|()| buf.freeze());
                return Box::pin(std::future::ready(result));
            }
            Ok(partial) => partial,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        #[cfg(not(target_os = "linux"))]
        let (buf, filled) = (Buffer::new(len), 0);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Box::pin(std::future::ready(Err(io::Error::other(
                "file reads need a tokio runtime",
            ))));
        };
        let read = runtime.spawn_blocking(move || self.fill(buf, offset, filled));
        Box::pin(async move { read.await.map_err(io::Error::other)? })
    }

    /// Fails if the file's length or modification time changed since opening.
    fn check_unchanged(&self) -> io::Result<()> {
        let metadata = self.file.metadata()?;
        if metadata.len() != self.len || metadata.modified().ok() != self.modified {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "file changed while being sent",
            ));
        }
        Ok(())
    }
}

impl RangeSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        let Some(kept) = &self.kept else {
            return self.read(offset, len);
        };
        if let Some(read) = self.read_now(offset, len) {
            return Box::pin(std::future::ready(read));
        }
        let whole = self.len as usize; // kept files are small
        if !kept.wants(whole) {
            return self.read(offset, len);
        }
        // A small file's first read reads all of it, and keeps it.
        let whole = self.clone().read(0, whole);
        Box::pin(async move {
            let contents = whole.await?;
            if let Some(kept) = &self.kept {
                kept.offer(&contents);
            }
            slice(&contents, offset, len)
        })
    }

    /// A small file whose contents are kept is sliced, not read.
    fn read_now(&self, offset: u64, len: usize) -> Option<io::Result<Bytes>> {
        let contents = self.kept.as_ref()?.get()?;
        Some(slice(contents, offset, len))
    }

    fn will_read(&self, offset: u64, len: u64) {
        // A larger kernel readahead window for this open file (a hint: its
        // failure changes nothing).
        #[cfg(target_os = "linux")]
        if len >= SEQUENTIAL_FROM {
            let _ = rustix::fs::fadvise(&self.file, 0, None, rustix::fs::Advice::Sequential);
        }
        let _ = offset;
        #[cfg(not(target_os = "linux"))]
        let _ = len;
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn reads_exactly_the_asked_bytes() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let source = Arc::new(FileSource::open(file.path()).await.unwrap());
        assert_eq!(source.len, 10);
        assert_eq!(source.clone().read_at(3, 4).await.unwrap(), "3456");
    }

    #[test]
    fn the_blocking_read_reads_the_same_bytes() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let source = FileSource::open_blocking(file.path()).unwrap();
        assert_eq!(source.read_exact_at(2, 5).unwrap(), "23456");
        let err = source.read_exact_at(8, 5).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cached_pages_are_read_without_the_blocking_pool() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[7u8; 100_000]).unwrap();
        file.as_file().sync_all().unwrap();
        let source = FileSource::open_blocking(file.path()).unwrap();
        // Just written: in the page cache. No runtime is needed for that read.
        let (_, read) = source.read_cached(1000, 65536).unwrap();
        assert_eq!(read, 65536);
        // Past the end: partly read, the rest left to the blocking read, which
        // reports it.
        let (buf, read) = source.read_cached(99_000, 65536).unwrap();
        assert_eq!(read, 1000);
        let err = source.fill(buf, 99_000, read).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_sequential_hint_changes_no_byte() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[5u8; 3 << 20]).unwrap();
        let source = Arc::new(FileSource::open(file.path()).await.unwrap());
        source.will_read(0, 3 << 20);
        source.will_read(10, 10);
        assert_eq!(source.read_at(1 << 20, 4).await.unwrap(), [5u8; 4][..]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_kept_small_file_is_read_once_and_sliced_after() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let budget = Budget::new(100, 64).unwrap();
        let mut source = FileSource::open(file.path()).await.unwrap();
        source.keep_within(&budget);
        let source = Arc::new(source);
        assert!(!source.is_kept());
        assert_eq!(source.clone().read_at(2, 3).await.unwrap(), "234");
        assert!(source.is_kept());
        assert_eq!(budget.left(), 90);
        // Read from memory now: a write to the file does not reach it (the
        // cache's check of the metadata is what drops it).
        std::os::unix::fs::FileExt::write_at(file.as_file(), b"x", 5).unwrap();
        assert_eq!(source.clone().read_at(4, 3).await.unwrap(), "456");
        drop(source);
        assert_eq!(budget.left(), 100);
    }

    #[tokio::test]
    async fn a_small_file_over_the_budget_is_read_by_range_as_any_other() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let budget = Budget::new(5, 64).unwrap();
        let mut source = FileSource::open(file.path()).await.unwrap();
        source.keep_within(&budget);
        let source = Arc::new(source);
        assert_eq!(source.clone().read_at(2, 3).await.unwrap(), "234");
        assert!(source.is_unchanged());
        assert!(!source.is_kept());
        assert_eq!(budget.left(), 5);
    }

    #[tokio::test]
    async fn a_truncated_file_is_an_error_not_a_short_read() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let source = Arc::new(FileSource::open(file.path()).await.unwrap());
        file.as_file().set_len(5).unwrap();
        let err = source.read_at(3, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_modified_or_grown_file_is_an_error() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let source = Arc::new(FileSource::open(file.path()).await.unwrap());
        file.write_all(b"more").unwrap();
        let err = source.clone().read_at(0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"0123456789").unwrap();
        let source = Arc::new(FileSource::open(file.path()).await.unwrap());
        let later = source.modified().unwrap() + std::time::Duration::from_secs(1);
        file.as_file().set_modified(later).unwrap();
        let err = source.read_at(0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileSource::open(dir.path()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_blocking_read_outside_a_runtime_is_an_error_not_a_panic() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789").unwrap();
        let source = Arc::new(FileSource::open_blocking(file.path()).unwrap());
        // Past the end, so not a cached read: it needs the blocking pool.
        let read = source.read_at(5, 10);
        let result = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read);
        assert!(result.is_err());
    }
}
