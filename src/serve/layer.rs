use std::num::NonZeroUsize;

use tower_layer::Layer;

use super::RangeServe;
use crate::body::DEFAULT_CHUNK_SIZE;

/// Settings shared by a layer and the services it makes.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) chunk_size: usize,
    pub(crate) max_ranges: NonZeroUsize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_ranges: NonZeroUsize::new(DEFAULT_MAX_RANGES).expect("non-zero"),
        }
    }
}

/// The default cap on the number of ranges in one request: 100.
pub const DEFAULT_MAX_RANGES: usize = 100;

/// Applies [`RangeServe`] to a service: file-backed responses become range-aware,
/// conditional, seek-based downloads.
///
/// See the [crate documentation](crate) for what it answers.
///
/// # Example
///
/// ```
/// use tower_range_serve::RangeServeLayer;
///
/// let layer = RangeServeLayer::new()
///     .chunk_size(256 * 1024)
///     .max_ranges(16);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RangeServeLayer {
    config: Config,
}

impl RangeServeLayer {
    /// A layer with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes are read from the source at once, and so the largest body
    /// frame. Defaults to 64 KiB ([`DEFAULT_CHUNK_SIZE`]); values below 1 are
    /// treated as 1.
    ///
    /// Memory per stream is about two chunks: the one being sent and the one being
    /// read ahead.
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new().chunk_size(1024 * 1024);
    /// # let _ = layer;
    /// ```
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.config.chunk_size = bytes.max(1);
        self
    }

    /// The largest number of ranges one request may ask for. A request with more
    /// is answered as if it had no `Range` header: 200 with the whole
    /// representation (as nginx's `max_ranges` does). Defaults to 100
    /// ([`DEFAULT_MAX_RANGES`]); values below 1 are treated as 1, so a single range
    /// is always served.
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// // Only single-range requests get a 206.
    /// let layer = RangeServeLayer::new().max_ranges(1);
    /// # let _ = layer;
    /// ```
    pub fn max_ranges(mut self, ranges: usize) -> Self {
        self.config.max_ranges = NonZeroUsize::new(ranges).unwrap_or(NonZeroUsize::MIN);
        self
    }
}

impl<S> Layer<S> for RangeServeLayer {
    type Service = RangeServe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RangeServe::from_config(inner, self.config.clone())
    }
}
