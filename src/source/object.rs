//! Objects in an object store (S3, GCS, Azure Blob, R2, …) through the
//! `object_store` crate.

use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use bytes::Bytes;
use futures_core::Stream;
use object_store::path::Path;
use object_store::{Attribute, GetOptions, GetRange, GetResult, ObjectMeta, ObjectStore};

use super::{RangeSource, RangeStream, ReadFuture};

/// An object opened for serving: its length, ETag, Last-Modified and
/// Content-Type as the store gave them when it was opened.
///
/// The body streams each planned range with one ranged `GET`
/// ([`stream_range`](RangeSource::stream_range)), read ahead of the client within
/// the download's budget, and dropped (which cancels the request) when the client
/// goes away; a new `GET` starts only where the plan jumps (the next part of a
/// `multipart/byteranges` answer).
///
/// Every `GET` after the opening is pinned to the version seen then: it carries
/// `If-Match` with the ETag of the opening (or, for a store that gives no ETag,
/// `If-Unmodified-Since` with its Last-Modified), and its answer's ETag is checked
/// too. An object overwritten while it is sent ends the body with an
/// [`InvalidData`](io::ErrorKind::InvalidData) error, as a changed file does: the
/// response is cut short, never completed with bytes of two versions, and the
/// client's next request (with `If-Range`) gets the new version whole.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use object_store::{memory::InMemory, path::Path, ObjectStore, PutPayload};
/// use tower_range_serve::source::{ObjectSource, RangeSource};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = Arc::new(InMemory::new());
/// store.put(&Path::from("a.txt"), PutPayload::from_static(b"hello world")).await.unwrap();
///
/// let source = Arc::new(ObjectSource::open(store, Path::from("a.txt")).await.unwrap());
/// assert_eq!(source.len(), 11);
/// assert!(source.meta().e_tag.is_some());
/// assert_eq!(source.read_at(6, 5).await.unwrap(), "world");
/// # });
/// ```
#[derive(Debug)]
pub struct ObjectSource {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
    content_type: Option<String>,
    /// Set when a read found the object changed (or gone) since opening.
    stale: Arc<AtomicBool>,
}

impl ObjectSource {
    /// Opens the object at `location` with one `HEAD` request: its metadata and
    /// `Content-Type`. Fails with the store's error (`NotFound` for a missing key).
    pub async fn open(store: Arc<dyn ObjectStore>, location: Path) -> object_store::Result<Self> {
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = store.get_opts(&location, options).await?;
        let content_type = result
            .attributes
            .get(&Attribute::ContentType)
            .map(|value| value.to_string());
        Ok(Self {
            store,
            meta: result.meta,
            content_type,
            stale: Arc::default(),
        })
    }

    /// The object's metadata when it was opened.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use object_store::{memory::InMemory, path::Path, ObjectStore, PutPayload};
    /// # use tower_range_serve::source::ObjectSource;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let store = Arc::new(InMemory::new());
    /// # store.put(&Path::from("a"), PutPayload::from_static(b"abc")).await.unwrap();
    /// let source = ObjectSource::open(store, Path::from("a")).await.unwrap();
    /// assert_eq!(source.meta().size, 3);
    /// # });
    /// ```
    pub fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    /// The `Content-Type` the store keeps for the object, if any.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use object_store::{memory::InMemory, path::Path, ObjectStore, PutPayload};
    /// # use tower_range_serve::source::ObjectSource;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let store = Arc::new(InMemory::new());
    /// # store.put(&Path::from("a"), PutPayload::from_static(b"abc")).await.unwrap();
    /// let source = ObjectSource::open(store, Path::from("a")).await.unwrap();
    /// assert_eq!(source.content_type(), None); // none was stored with it
    /// # });
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Whether a read found that the object changed (or was deleted) since it
    /// was opened: a cache of opened objects must open it again.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// The modification time when the object was opened.
    pub(crate) fn modified(&self) -> SystemTime {
        self.meta.last_modified.into()
    }

    /// A `GET` of `range` pinned to the version seen at opening.
    fn get(
        &self,
        range: Range<u64>,
    ) -> Pin<Box<dyn Future<Output = io::Result<GetResult>> + Send>> {
        let (if_match, if_unmodified_since) = match &self.meta.e_tag {
            Some(e_tag) => (Some(e_tag.clone()), None),
            None => (None, Some(self.meta.last_modified)),
        };
        let options = GetOptions {
            if_match,
            if_unmodified_since,
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let store = self.store.clone();
        let location = self.meta.location.clone();
        let e_tag = self.meta.e_tag.clone();
        let stale = self.stale.clone();
        Box::pin(async move {
            let result = store.get_opts(&location, options).await.map_err(io_error);
            // A store that ignores `If-Match` still says which version it sent.
            let result = result.and_then(|result| {
                if result.meta.e_tag != e_tag || result.range != range {
                    return Err(changed());
                }
                Ok(result)
            });
            if let Err(e) = &result {
                if e.kind() == io::ErrorKind::InvalidData {
                    stale.store(true, Ordering::Relaxed);
                }
            }
            result
        })
    }
}

impl RangeSource for ObjectSource {
    fn len(&self) -> u64 {
        self.meta.size
    }

    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        let get = self.get(offset..offset + len as u64);
        Box::pin(async move { get.await?.bytes().await.map_err(io_error) })
    }

    fn stream_range(self: Arc<Self>, offset: u64, len: u64) -> Option<RangeStream> {
        Some(Box::pin(ObjectStream::Opening(
            self.get(offset..offset + len),
        )))
    }
}

/// One ranged `GET`: its answer's head, then its body.
enum ObjectStream {
    Opening(Pin<Box<dyn Future<Output = io::Result<GetResult>> + Send>>),
    Streaming(Pin<Box<dyn Stream<Item = object_store::Result<Bytes>> + Send>>),
    Done,
}

impl Stream for ObjectStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut *self {
                ObjectStream::Opening(get) => match ready!(get.as_mut().poll(cx)) {
                    Ok(result) => *self = ObjectStream::Streaming(result.into_stream()),
                    Err(e) => {
                        *self = ObjectStream::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                ObjectStream::Streaming(stream) => {
                    let next = ready!(stream.as_mut().poll_next(cx));
                    if !matches!(next, Some(Ok(_))) {
                        *self = ObjectStream::Done;
                    }
                    return Poll::Ready(next.map(|piece| piece.map_err(io_error)));
                }
                ObjectStream::Done => return Poll::Ready(None),
            }
        }
    }
}

fn changed() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "object changed while being sent",
    )
}

/// A store error as an I/O error: a version that no longer matches (or a
/// deleted object) is [`InvalidData`](io::ErrorKind::InvalidData).
fn io_error(error: object_store::Error) -> io::Error {
    match error {
        object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. } => {
            changed()
        }
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    async fn store_with(key: &str, data: &'static [u8]) -> Arc<InMemory> {
        let store = Arc::new(InMemory::new());
        store
            .put(&Path::from(key), PutPayload::from_static(data))
            .await
            .unwrap();
        store
    }

    async fn collect(mut stream: RangeStream) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        while let Some(piece) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            bytes.extend_from_slice(&piece?);
        }
        Ok(bytes)
    }

    #[tokio::test]
    async fn opening_gives_length_and_validators() {
        let store = store_with("k", b"0123456789").await;
        let source = ObjectSource::open(store, Path::from("k")).await.unwrap();
        assert_eq!(source.len(), 10);
        assert!(source.meta().e_tag.is_some());
        assert_eq!(
            SystemTime::from(source.meta().last_modified),
            source.modified()
        );
    }

    #[tokio::test]
    async fn a_missing_key_fails_to_open_with_not_found() {
        let store = Arc::new(InMemory::new());
        let err = ObjectSource::open(store, Path::from("nope"))
            .await
            .unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn ranges_are_streamed_and_read() {
        let store = store_with("k", b"0123456789").await;
        let source = Arc::new(ObjectSource::open(store, Path::from("k")).await.unwrap());
        let stream = source.clone().stream_range(2, 5).unwrap();
        assert_eq!(collect(stream).await.unwrap(), b"23456");
        assert_eq!(source.read_at(7, 3).await.unwrap(), "789");
    }

    #[tokio::test]
    async fn reads_after_an_overwrite_fail_instead_of_mixing_versions() {
        let store = store_with("k", b"0123456789").await;
        let source = Arc::new(
            ObjectSource::open(store.clone(), Path::from("k"))
                .await
                .unwrap(),
        );
        store
            .put(&Path::from("k"), PutPayload::from_static(b"abcdefghij"))
            .await
            .unwrap();
        let err = source.clone().read_at(0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = collect(source.clone().stream_range(0, 4).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        store.delete(&Path::from("k")).await.unwrap();
        let err = source.read_at(0, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
