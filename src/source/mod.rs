//! Where the bytes of a representation come from.
//!
//! A [`RangeSource`] is a seekable representation of known length: a file
//! ([`FileSource`]), an in-memory [`Bytes`], or anything a user implements (an object
//! store read by range, a database blob). The body asks it for exactly the bytes
//! it plans to send, one bounded chunk at a time.
//!
//! (Inside the crate, this module also holds the reader that does that asking,
//! read-ahead included, for [`RangeBody`](crate::RangeBody); it knows nothing of
//! throttles or downloads' lives, which the body adds in the middleware.)

mod bytes;
mod file;
#[cfg(feature = "digest")]
mod identity;
pub(crate) mod kept;
#[cfg(feature = "object-store")]
mod object;
mod pool;
pub(crate) mod read;

pub use self::file::FileSource;
#[cfg(feature = "digest")]
pub(crate) use self::identity::Identity;
#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub use self::object::ObjectSource;
pub(crate) use self::read::{DEFAULT_CHUNK_SIZE, DEFAULT_READ_AHEAD};

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use ::bytes::Bytes;
use futures_core::Stream;

/// The future returned by [`RangeSource::read_at`].
pub type ReadFuture = Pin<Box<dyn Future<Output = io::Result<Bytes>> + Send + 'static>>;

/// The stream returned by [`RangeSource::stream_range`]: the bytes of one
/// range, in pieces of any size, in order.
pub type RangeStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// A representation that can be read at any offset.
///
/// # Contract
///
/// [`read_at`](RangeSource::read_at) must resolve to exactly `len` bytes taken at
/// `offset`, or to an error. A source that finds fewer bytes than its
/// [`len`](RangeSource::len) promised (a truncated file) must return an error, never
/// a short or padded buffer: the response is then aborted rather than sent with
/// bytes that do not match its `Content-Length`. The body checks the length of
/// every buffer and treats a mismatch as an error too.
///
/// The body only asks for offsets and lengths inside `0..len()`, and never more
/// than its chunk size at once.
///
/// # Slow sources and read-ahead
///
/// The body polls each read once when it starts it. A read that completes then
/// (a copy from memory or the page cache) is made only when the client is ready
/// for the chunk. When the client has to wait for a read, the body reads ahead:
/// it starts the next reads while it sends, several at once and larger, within a
/// window that doubles each time the client waits again, up to the download's
/// budget
/// ([`RangeServeLayer::read_ahead`](crate::RangeServeLayer::read_ahead), 1 MiB by
/// default). Reads made ahead are polled once with a no-op waker, and again when
/// the body is next polled; nothing is read ahead while the body is not polled. So
/// a slow read should start its work when `read_at` is called or on its first
/// poll (spawn it, as [`FileSource`] does on the blocking pool), not in later
/// steps that need a wake-up.
///
/// A source for which one long request is better than many reads (an object
/// store, where each request costs a round trip) implements
/// [`stream_range`](RangeSource::stream_range): the body then opens one stream per
/// planned range and pulls from it, ahead of the client within the same window.
///
/// # Example
///
/// An in-memory source; [`Bytes`] already implements the trait like this.
///
/// ```
/// use std::{io, sync::Arc};
/// use bytes::Bytes;
/// use tower_range_serve::source::{RangeSource, ReadFuture};
///
/// #[derive(Debug)]
/// struct Zeros(u64);
///
/// impl RangeSource for Zeros {
///     fn len(&self) -> u64 {
///         self.0
///     }
///
///     fn read_at(self: Arc<Self>, _offset: u64, len: usize) -> ReadFuture {
///         Box::pin(std::future::ready(Ok(Bytes::from(vec![0; len]))))
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let source = Arc::new(Zeros(10));
/// assert_eq!(source.read_at(2, 3).await.unwrap(), Bytes::from_static(&[0, 0, 0]));
/// # });
/// ```
pub trait RangeSource: fmt::Debug + Send + Sync + 'static {
    /// The length of the representation in bytes.
    fn len(&self) -> u64;

    /// Whether the representation is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `len` bytes starting at `offset`.
    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture;

    /// Reads exactly `len` bytes starting at `offset` at once, if the source
    /// can without waiting (bytes held in memory); `None` (the default) when
    /// the read has to be awaited. The body tries it before
    /// [`read_at`](RangeSource::read_at), which a source that answers here
    /// still implements: it saves a boxed future per read of bytes at hand.
    /// The [contract](RangeSource#contract) of `read_at` holds for it too.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::source::RangeSource;
    ///
    /// let source = Bytes::from_static(b"hello world");
    /// assert_eq!(source.read_now(6, 5).unwrap().unwrap(), "world");
    /// ```
    fn read_now(&self, offset: u64, len: usize) -> Option<io::Result<Bytes>> {
        let _ = (offset, len);
        None
    }

    /// Streams the `len` bytes starting at `offset`, for a source that serves a
    /// range best as one long request; `None` (the default) has the body read
    /// the range with [`read_at`](RangeSource::read_at).
    ///
    /// The stream must yield exactly `len` bytes in all, or an error: the body
    /// ends with an error if it yields more, or ends before. Dropping it must
    /// cancel the request (the body drops it when the client goes away). It
    /// should do its work when polled, since the body applies back-pressure by
    /// not polling it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use bytes::Bytes;
    /// use tower_range_serve::source::RangeSource;
    ///
    /// // Sources in memory or in files are read by `read_at`.
    /// assert!(Arc::new(Bytes::from_static(b"abc")).stream_range(0, 3).is_none());
    /// ```
    fn stream_range(self: Arc<Self>, offset: u64, len: u64) -> Option<RangeStream> {
        let _ = (offset, len);
        None
    }

    /// A hint, before the body reads `len` bytes from `offset` in order with
    /// [`read_at`](RangeSource::read_at): a source may prepare (a file tells the
    /// kernel to read ahead, see [`FileSource`]). Does nothing by default.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_range_serve::source::RangeSource;
    ///
    /// Bytes::from_static(b"abc").will_read(0, 3); // nothing to prepare
    /// ```
    fn will_read(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}
