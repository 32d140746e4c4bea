//! Where the bytes of a representation come from.
//!
//! A [`RangeSource`] is a seekable representation of known length: a file
//! ([`FileSource`]), an in-memory [`Bytes`], or anything a user implements (an object
//! store read by range, a database blob). The body asks it for exactly the bytes
//! it plans to send, one bounded chunk at a time.

pub(crate) mod body;
mod bytes;
mod file;
mod pool;
mod ramp;

pub(crate) use self::body::{DEFAULT_CHUNK_SIZE, RangeBody};
pub use self::file::FileSource;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use ::bytes::Bytes;

/// The future returned by [`RangeSource::read_at`].
pub type ReadFuture = Pin<Box<dyn Future<Output = io::Result<Bytes>> + Send + 'static>>;

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
/// The body only asks for offsets and lengths inside `0..len()`, one read at a time
/// per response, and never more than its chunk size at once.
///
/// The body polls each read once when it starts it. A read that completes then
/// (a copy from memory or the page cache) is made only when the client is ready
/// for the chunk; a read that does not is taken as slow, and the next chunk is
/// then read ahead while one is sent: polled once with a no-op waker, and again
/// when the body is next polled. So a slow read should start its work when
/// `read_at` is called or on its first poll (spawn it, as [`FileSource`] does
/// on the blocking pool), not in later steps that need a wake-up.
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
}
