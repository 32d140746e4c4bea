//! [`OpenFileCache`]: the settings of the open-file cache.

use std::time::Duration;

/// The settings of [`ServeDir`](crate::ServeDir)'s open-file cache: how many
/// paths it remembers, and for how long. See
/// [`ServeDir::open_file_cache`](crate::ServeDir::open_file_cache).
///
/// Defaults: [`DEFAULT_ENTRIES`](Self::DEFAULT_ENTRIES) entries,
/// [`DEFAULT_VALIDITY`](Self::DEFAULT_VALIDITY).
///
/// ```
/// use std::time::Duration;
/// use tower_range_serve::dir::OpenFileCache;
///
/// let cache = OpenFileCache::new().entries(10_000).validity(Duration::from_secs(5));
/// assert_eq!(cache.get_entries(), 10_000);
/// assert_eq!(OpenFileCache::off().get_entries(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct OpenFileCache {
    entries: usize,
    validity: Duration,
    memory: usize,
}

impl Default for OpenFileCache {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenFileCache {
    /// The default bound on entries (and so on descriptors): 4096.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// let bigger = OpenFileCache::new().entries(4 * OpenFileCache::DEFAULT_ENTRIES);
    /// # let _ = bigger;
    /// ```
    pub const DEFAULT_ENTRIES: usize = 4096;

    /// The default validity of an entry: 2 seconds (nginx's
    /// `open_file_cache_valid` is 60 s; a file changed in place is seen at
    /// once either way).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::DEFAULT_VALIDITY, Duration::from_secs(2));
    /// ```
    pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(2);

    /// The default bound on the bytes of small files kept in memory: 16 MiB.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::DEFAULT_MEMORY, 16 << 20);
    /// ```
    pub const DEFAULT_MEMORY: usize = 16 << 20;

    /// The largest file whose contents are kept in memory: 64 KiB.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::KEPT_FILE_MAX, 64 * 1024);
    /// ```
    pub const KEPT_FILE_MAX: u64 = 64 * 1024;

    /// How often a file kept in memory checks its metadata: a small file
    /// changed in place is seen within 100 ms (any other, at once).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::KEPT_RECHECK, Duration::from_millis(100));
    /// ```
    pub const KEPT_RECHECK: Duration = Duration::from_millis(100);

    /// A cache with the default settings.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::new().get_entries(), OpenFileCache::DEFAULT_ENTRIES);
    /// ```
    pub const fn new() -> Self {
        Self {
            entries: Self::DEFAULT_ENTRIES,
            validity: Self::DEFAULT_VALIDITY,
            memory: Self::DEFAULT_MEMORY,
        }
    }

    /// No cache: every request resolves its path and opens its file.
    ///
    /// ```
    /// use tower_range_serve::ServeDir;
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// let service = ServeDir::new("assets").open_file_cache(OpenFileCache::off());
    /// # let _ = service;
    /// ```
    pub const fn off() -> Self {
        Self::new().entries(0)
    }

    /// At most `entries` paths (and open descriptors); 0 turns the cache off.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::new().entries(100).get_entries(), 100);
    /// ```
    pub const fn entries(mut self, entries: usize) -> Self {
        self.entries = entries;
        self
    }

    /// How long an entry is used before its path is resolved again (a zero
    /// validity turns the cache off).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// let cache = OpenFileCache::new().validity(Duration::from_millis(500));
    /// assert_eq!(cache.get_validity(), Duration::from_millis(500));
    /// ```
    pub const fn validity(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// At most `bytes` of file contents kept in memory, in all (0: none).
    ///
    /// A cached file of at most [`KEPT_FILE_MAX`](Self::KEPT_FILE_MAX) bytes
    /// is read whole the first time a response needs its bytes (and checked
    /// against its metadata after the read), and while the cache keeps it, its
    /// responses are sliced from memory: no system call per response. Its
    /// metadata is checked again at most every
    /// [`KEPT_RECHECK`](Self::KEPT_RECHECK), so a small file changed in place
    /// is seen within 100 ms instead of at once; until then its responses
    /// are the old version, whole, under the old validators (never a mix of
    /// two versions, not even for a response that started before the change).
    /// The memory is given back when the entry goes. With `0`, every response
    /// reads the file and checks it first.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// let cache = OpenFileCache::new().memory(64 << 20);
    /// assert_eq!(cache.get_memory(), 64 << 20);
    /// assert_eq!(OpenFileCache::new().memory(0).get_memory(), 0);
    /// ```
    pub const fn memory(mut self, bytes: usize) -> Self {
        self.memory = bytes;
        self
    }

    /// The bound on the bytes of file contents kept in memory.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::default().get_memory(), 16 << 20);
    /// ```
    pub const fn get_memory(&self) -> usize {
        self.memory
    }

    /// The bound on entries.
    ///
    /// ```
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::default().get_entries(), 4096);
    /// ```
    pub const fn get_entries(&self) -> usize {
        self.entries
    }

    /// The validity of an entry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::dir::OpenFileCache;
    ///
    /// assert_eq!(OpenFileCache::default().get_validity(), Duration::from_secs(2));
    /// ```
    pub const fn get_validity(&self) -> Duration {
        self.validity
    }
}
