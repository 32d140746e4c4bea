//! [`RangeBody`]: a body that sends exactly its planned bytes, read from a
//! [`RangeSource`] in bounded chunks, and its frame loop: the throttle says when
//! a chunk may go (see [`Pace`]), the client's quota whether it may go at all
//! (see [`QuotaGate`]), the tracker hears what was sent, and the
//! [`Ramp`] bounds the frames of a large download that has only begun.
//!
//! The reading itself (plan, reads in flight, read-ahead) is the source's
//! [`Reader`].

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::lifecycle::{Outcome, Tracker};
use crate::protocol::{ByteRange, Segment, Segments};
use crate::source::RangeSource;
use crate::source::read::Reader;
use crate::throttle::quota::{QuotaGate, Spent};

use super::pace::Pace;
use super::ramp::Ramp;

/// The response body of a file-backed response.
///
/// It streams a plan of segments (ranges of a [`RangeSource`], and for
/// `multipart/byteranges` the boundaries between them), with positional reads of
/// at most one chunk each, or one stream per range for sources that stream
/// ([`RangeSource::stream_range`]). Reads that complete at once (cached pages)
/// are made when the chunk is asked for, so a client that stops reading does not
/// make the server hold one more chunk. When the client has to wait for reads
/// (disk, object storage), the next ones are made while it is sent, several at
/// once, within the read-ahead budget (see
/// [`RangeServeLayer::read_ahead`](crate::RangeServeLayer::read_ahead)). Its
/// [`size_hint`](Body::size_hint) is exact, so a server can send
/// `Content-Length`; after the last frame it returns `None` forever.
///
/// If the source fails or returns a buffer of the wrong length, the body yields the
/// error and ends: the connection is aborted instead of completing a response whose
/// bytes do not match its headers.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::BodyExt;
/// use tower_range_serve::{FileResponse, RangeBody};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let response = FileResponse::from_bytes(Bytes::from_static(b"hello")).into_response();
/// let body: RangeBody = response.into_body();
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
/// # });
/// ```
pub struct RangeBody {
    /// `None` once the body has ended.
    reader: Option<Reader>,
    /// When the next chunk may go, for a throttled response.
    throttle: Option<Box<dyn Pace>>,
    /// A chunk read but not yet allowed to go by the throttle.
    held: Option<Bytes>,
    /// The length of the next chunk, fixed when it was first asked of the
    /// throttle (as a chunk read then would have been), and whether the
    /// throttle has let it go: a throttled chunk is read only then.
    next: Option<(usize, bool)>,
    /// The client's quota, checked before each chunk and charged with it
    /// (boxed: rare, and the body is moved as it is wrapped).
    quota: Option<Box<QuotaGate>>,
    /// Shutdown, progress and end reporting.
    tracker: Option<Tracker>,
    /// How large a frame may be by now (see [`Ramp`]).
    ramp: Ramp,
}

impl RangeBody {
    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self {
            reader: None,
            throttle: None,
            held: None,
            next: None,
            quota: None,
            tracker: None,
            ramp: Ramp::default(),
        }
    }

    /// Reports this body's life to `tracker`, and ends it when shutdown says so.
    pub(crate) fn tracked(mut self, tracker: Tracker) -> Self {
        self.tracker = Some(tracker);
        self
    }

    /// Ends the body: nothing more is read, sent, held from a limiter or reported.
    fn finish(&mut self, outcome: Outcome) {
        if let Some(mut tracker) = self.tracker.take() {
            tracker.end(outcome);
        }
        self.reader = None;
        self.throttle = None;
        self.held = None;
        self.next = None;
        self.quota = None;
    }

    /// A body sending `segments`, reading source ranges `chunk_size` bytes at a time.
    pub(crate) fn new(
        source: Arc<dyn RangeSource>,
        segments: impl Into<Segments>,
        chunk_size: usize,
    ) -> Self {
        let reader = Reader::new(source, segments.into(), chunk_size);
        let remaining = reader.remaining();
        if remaining == 0 {
            return Self::empty();
        }
        Self {
            reader: Some(reader),
            throttle: None,
            held: None,
            next: None,
            quota: None,
            tracker: None,
            ramp: Ramp::for_len(remaining),
        }
    }

    /// Reads at most `bytes` ahead of the client, for sources whose reads wait.
    pub(crate) fn read_ahead(mut self, bytes: usize) -> Self {
        if let Some(reader) = &mut self.reader {
            reader.set_read_ahead(bytes);
        }
        self
    }

    /// Sends no chunk before `throttle` allows it; chunk sizes follow its rates.
    pub(crate) fn throttled(mut self, throttle: impl Pace) -> Self {
        self.throttle = Some(Box::new(throttle));
        self
    }

    /// Sends no chunk once `quota` is spent (or paces it, see [`QuotaGate`]),
    /// and charges it with every chunk that goes.
    pub(crate) fn quota(mut self, quota: QuotaGate) -> Self {
        self.quota = Some(Box::new(quota));
        self
    }

    /// A body sending one range of `source`.
    pub(crate) fn range(source: Arc<dyn RangeSource>, range: ByteRange, chunk_size: usize) -> Self {
        Self::new(source, Segment::Source(range), chunk_size)
    }

    /// A body sending the whole of `source`.
    pub(crate) fn full(source: Arc<dyn RangeSource>, chunk_size: usize) -> Self {
        let end = source.len();
        match end {
            0 => Self::empty(),
            _ => Self::range(source, ByteRange { start: 0, end }, chunk_size),
        }
    }
}

impl Default for RangeBody {
    /// An empty body.
    ///
    /// ```
    /// use http_body::Body;
    /// use tower_range_serve::RangeBody;
    ///
    /// assert!(RangeBody::default().is_end_stream());
    /// ```
    fn default() -> Self {
        Self::empty()
    }
}

impl Body for RangeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.reader.is_none() {
            return Poll::Ready(None);
        }
        if let Some((outcome, error)) = this.tracker.as_mut().and_then(|t| t.poll_cut(cx)) {
            this.finish(outcome);
            return Poll::Ready(Some(Err(error)));
        }
        let reader = this.reader.as_mut().expect("checked above");
        let configured = reader.chunk_size();
        // A throttled response's chunks follow its rate; the others ramp up.
        let ramped = this.ramp.max_chunk(configured);
        // Nor more than is left of the client's quota.
        let max_chunk = |throttle: &Option<Box<dyn Pace>>, quota: &Option<Box<QuotaGate>>| {
            let max = match throttle {
                Some(throttle) => throttle.max_chunk(configured),
                None => ramped,
            };
            quota.as_ref().map_or(max, |quota| quota.max_chunk(max))
        };
        // A throttled response waits for its throttle before it reads, when it
        // knows the next chunk's length: a paced stream then holds no chunk
        // while it waits (at 16 KiB/s, a 16 KiB chunk for a second), whatever
        // its connection: over HTTP/2, where a stream's frames wait in the
        // connection's buffers, 10,000 such streams hold 160 MiB less.
        if this.held.is_none() && this.throttle.is_some() {
            if this.next.is_none() {
                let max = max_chunk(&this.throttle, &this.quota);
                this.next = reader.next_len(max).map(|len| (len, false));
            }
            if let (Some((len, granted @ false)), Some(throttle)) =
                (&mut this.next, &mut this.throttle)
            {
                if throttle.poll_send(cx, *len).is_pending() {
                    if let Some(tracker) = &mut this.tracker {
                        tracker.throttle_waits();
                    }
                    return Poll::Pending;
                }
                if let Some(tracker) = &mut this.tracker {
                    tracker.throttle_passed();
                }
                *granted = true;
            }
        }
        let asked = match this.next {
            Some((len, _)) => len,
            None => max_chunk(&this.throttle, &this.quota),
        };
        let chunk = match this.held.take() {
            Some(chunk) => chunk,
            None => match ready!(reader.poll_next(cx, asked)) {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => {
                    this.finish(Outcome::Failed(error.kind()));
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    this.finish(Outcome::Complete);
                    return Poll::Ready(None);
                }
            },
        };
        if let Some(quota) = &mut this.quota {
            match quota.poll_send(cx, chunk.len()) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(Spent)) => {
                    this.finish(Outcome::QuotaExhausted);
                    let error = io::Error::other("the client's download quota is spent");
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Pending => {
                    this.held = Some(chunk);
                    return Poll::Pending;
                }
            }
        }
        // A chunk read before its throttle let it go (its length was not
        // known ahead) waits for it now.
        if let (None, Some(throttle)) = (this.next.take(), &mut this.throttle) {
            if throttle.poll_send(cx, chunk.len()).is_pending() {
                this.held = Some(chunk);
                if let Some(tracker) = &mut this.tracker {
                    tracker.throttle_waits();
                }
                return Poll::Pending;
            }
            if let Some(tracker) = &mut this.tracker {
                tracker.throttle_passed();
            }
        }
        // The next chunk is read, and asked of the shared limits, while this one
        // is sent; its size follows the limits as they are now.
        let max = max_chunk(&this.throttle, &this.quota);
        reader.read_ahead(max, cx);
        if let (Some(throttle), Some(next)) = (&mut this.throttle, reader.next_len(max)) {
            throttle.reserve(next);
        }
        if let Some(tracker) = &mut this.tracker {
            tracker.sent(chunk.len());
        }
        if let Some(quota) = &mut this.quota {
            quota.sent(chunk.len());
        }
        this.ramp.sent(chunk.len());
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none()
            && self
                .reader
                .as_ref()
                .is_none_or(|reader| reader.remaining() == 0)
    }

    fn size_hint(&self) -> SizeHint {
        let unread = self.reader.as_ref().map_or(0, Reader::remaining);
        let held = self.held.as_ref().map_or(0, |chunk| chunk.len() as u64);
        SizeHint::with_exact(unread + held)
    }
}

impl fmt::Debug for RangeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RangeBody");
        if let Some(reader) = &self.reader {
            reader.debug_fields(&mut debug);
            debug.field("throttle", &self.throttle);
            debug.field("quota", &self.quota);
        }
        debug.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::source::ReadFuture;
    use crate::source::read::testing::{Recording, frames, source};

    #[tokio::test]
    async fn only_reads_that_wait_are_made_ahead() {
        for slow in [false, true] {
            let recording = Arc::new(Recording {
                data: Bytes::from(vec![7u8; 100]),
                slow,
                ..Default::default()
            });
            let mut body = RangeBody::full(recording.clone(), 10);
            body.frame().await.unwrap().unwrap();
            // Cached pages: the next chunk is read when asked for, so a client
            // that stops reading holds no chunk read for it. Disk: it is read
            // while this one is sent.
            let reads = recording.reads.lock().unwrap().clone();
            match slow {
                false => assert_eq!(reads, [(0, 10)]),
                true => assert_eq!(reads, [(0, 10), (10, 10)]),
            }
            assert_eq!(frames(body).await.concat(), [7u8; 90]);
            assert_eq!(recording.reads.lock().unwrap().len(), 10);
        }
    }

    /// A throttle that lets `open` chunks go, then waits; its chunks are at
    /// most `max` bytes (the layer's chunk size while `max` is 0).
    #[derive(Debug, Default)]
    struct Gate {
        open: Arc<std::sync::atomic::AtomicUsize>,
        max: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Pace for Gate {
        fn max_chunk(&self, configured: usize) -> usize {
            match self.max.load(std::sync::atomic::Ordering::SeqCst) {
                0 => configured,
                max => max.min(configured),
            }
        }
        fn reserve(&mut self, _: usize) {}
        fn poll_send(&mut self, _: &mut Context<'_>, _: usize) -> Poll<()> {
            use std::sync::atomic::Ordering::SeqCst;
            match self.open.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)) {
                Ok(_) => Poll::Ready(()),
                Err(_) => Poll::Pending,
            }
        }
    }

    /// A body of 100 bytes read `chunk_size` at a time behind a [`Gate`]
    /// letting `open` chunks go, of at most `max` bytes; the gate's knobs.
    fn gated(
        chunk_size: usize,
        open: usize,
        max: usize,
    ) -> (
        RangeBody,
        Arc<Recording>,
        Arc<std::sync::atomic::AtomicUsize>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        let recording = Arc::new(Recording {
            data: Bytes::from(vec![7u8; 100]),
            ..Default::default()
        });
        let gate = Gate::default();
        gate.open.store(open, SeqCst);
        gate.max.store(max, SeqCst);
        let (open, max) = (gate.open.clone(), gate.max.clone());
        let body = RangeBody::full(recording.clone(), chunk_size).throttled(gate);
        (body, recording, open, max)
    }

    #[tokio::test]
    async fn a_throttled_body_reads_no_chunk_while_its_throttle_waits() {
        use std::sync::atomic::Ordering::SeqCst;
        let (mut body, recording, open, _) = gated(10, 2, 0);
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        let noop = &mut Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut body).poll_frame(noop).is_pending());
        assert!(Pin::new(&mut body).poll_frame(noop).is_pending());
        // Only the chunks that went were read: nothing waits in memory.
        assert_eq!(*recording.reads.lock().unwrap(), [(0, 10), (10, 10)]);
        assert_eq!(body.size_hint().exact(), Some(80));
        open.store(usize::MAX, SeqCst);
        assert_eq!(frames(body).await.concat(), [7u8; 80]);
        assert_eq!(recording.reads.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_waiting_chunk_keeps_the_length_it_was_asked_with() {
        use std::sync::atomic::Ordering::SeqCst;
        let (mut body, _, open, max) = gated(40, 1, 10);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), 10);
        let noop = &mut Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut body).poll_frame(noop).is_pending());
        // The shared limits' share grows while the chunk waits (another
        // stream ended): the chunk the throttle was asked for stays 10 bytes,
        // as a chunk read before the wait would have.
        max.store(20, SeqCst);
        open.store(1, SeqCst);
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second.len(), 10);
        open.store(usize::MAX, SeqCst);
        assert_eq!(frames(body).await.concat(), [7u8; 80]);
    }

    #[tokio::test]
    async fn size_hint_counts_down_and_the_body_is_fused() {
        let mut body = RangeBody::full(source(10), 4);
        assert_eq!(body.size_hint().exact(), Some(10));
        body.frame().await.unwrap().unwrap();
        assert_eq!(body.size_hint().exact(), Some(6));
        assert!(!body.is_end_stream());
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn empty_source_is_an_ended_body() {
        let body = RangeBody::full(source(0), 4);
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(frames(body).await.is_empty());
    }

    #[tokio::test]
    async fn a_short_buffer_from_the_source_ends_the_body_with_an_error() {
        let recording = Arc::new(Recording {
            data: Bytes::from(vec![1u8; 30]),
            short_after: Some(1),
            ..Default::default()
        });
        let mut body = RangeBody::full(recording, 10);
        assert_eq!(
            body.frame()
                .await
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
            10
        );
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn source_errors_end_the_body() {
        #[derive(Debug)]
        struct Failing;
        impl RangeSource for Failing {
            fn len(&self) -> u64 {
                10
            }
            fn read_at(self: Arc<Self>, _: u64, _: usize) -> ReadFuture {
                Box::pin(std::future::ready(Err(io::Error::other("disk on fire"))))
            }
        }
        let mut body = RangeBody::full(Arc::new(Failing), 4);
        assert!(body.frame().await.unwrap().is_err());
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn nothing_is_read_before_the_first_poll() {
        let recording = Arc::new(Recording {
            data: Bytes::from(vec![1u8; 30]),
            ..Default::default()
        });
        drop(RangeBody::full(recording.clone(), 10));
        assert!(recording.reads.lock().unwrap().is_empty());
    }
}
