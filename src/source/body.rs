//! [`RangeBody`]: a body that reads exactly its planned bytes from a
//! [`RangeSource`], in bounded chunks.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::lifecycle::{Outcome, Tracker};
use crate::protocol::{ByteRange, Segment};
use crate::source::{RangeSource, ReadFuture};
use crate::throttle::Throttle;

use super::ramp::Ramp;

/// The default number of bytes read from the source at once: 64 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;

/// The response body of a file-backed response.
///
/// It streams a plan of segments (ranges of a [`RangeSource`], and for
/// `multipart/byteranges` the boundaries between them), reading at most one chunk at
/// a time with positional reads. While a chunk is being sent, the next one is
/// already being read if the source's reads have to wait (disk); reads that
/// complete at once (cached pages) are made when the chunk is asked for, so a
/// client that stops reading does not make the server hold one more chunk. Its
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
    throttle: Option<Throttle>,
    /// A chunk read but not yet allowed to go by the throttle.
    held: Option<Bytes>,
    /// Shutdown, progress and end reporting.
    tracker: Option<Tracker>,
    /// How large a frame may be by now (see [`Ramp`]).
    ramp: Ramp,
}

struct Reader {
    source: Arc<dyn RangeSource>,
    /// Segments not yet planned; the front one may be partly planned.
    segments: VecDeque<Segment>,
    /// The read of the next chunk to send, and its expected length.
    pending: Option<(Read, usize)>,
    /// The next chunk (offset, length), planned but not read yet.
    planned: Option<(u64, usize)>,
    /// Whether the source's last read had to wait (disk, blocking pool): then
    /// the next chunk is read while this one is sent. Reads that complete at
    /// once (cached pages, bytes in memory) are not done ahead, so a response
    /// whose client stops reading holds no chunk beyond what the server
    /// already took from it.
    slow: bool,
    /// Bytes not yet yielded.
    remaining: u64,
    chunk_size: usize,
}

/// A read of one chunk: done when it was started, or running.
enum Read {
    Done(io::Result<Bytes>),
    Running(ReadFuture),
}

impl RangeBody {
    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self {
            reader: None,
            throttle: None,
            held: None,
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
    }

    /// A body sending `segments`, reading source ranges `chunk_size` bytes at a time.
    pub(crate) fn new(
        source: Arc<dyn RangeSource>,
        segments: impl Into<VecDeque<Segment>>,
        chunk_size: usize,
    ) -> Self {
        let segments = segments.into();
        let remaining = segments.iter().map(Segment::len).sum();
        if remaining == 0 {
            return Self::empty();
        }
        Self {
            reader: Some(Reader {
                source,
                segments,
                pending: None,
                planned: None,
                slow: false,
                remaining,
                chunk_size: chunk_size.max(1),
            }),
            throttle: None,
            held: None,
            tracker: None,
            ramp: Ramp::default(),
        }
    }

    /// Sends no chunk before `throttle` allows it; chunk sizes follow its rates.
    pub(crate) fn throttled(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// A body sending one range of `source`.
    pub(crate) fn range(source: Arc<dyn RangeSource>, range: ByteRange, chunk_size: usize) -> Self {
        Self::new(source, [Segment::Source(range)], chunk_size)
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

impl Reader {
    /// Plans the next chunk, of at most `max_chunk` bytes, if the next segment
    /// is a source range.
    fn plan(&mut self, max_chunk: usize) -> Option<(u64, usize)> {
        debug_assert!(self.pending.is_none() && self.planned.is_none());
        let Some(Segment::Source(range)) = self.segments.front_mut() else {
            return None;
        };
        let len = range.len().min(max_chunk as u64);
        let offset = range.start;
        range.start += len;
        if range.start == range.end {
            self.segments.pop_front();
        }
        Some((offset, len as usize)) // at most `max_chunk`
    }

    /// Starts reading a planned chunk, polling it once with `cx`: whether it
    /// completes at once decides whether the next one is read ahead.
    fn start(&mut self, (offset, len): (u64, usize), cx: &mut Context<'_>) {
        let mut read = self.source.clone().read_at(offset, len);
        let read = match read.as_mut().poll(cx) {
            Poll::Ready(result) => Read::Done(result),
            Poll::Pending => Read::Running(read),
        };
        self.slow = matches!(read, Read::Running(_));
        self.pending = Some((read, len));
    }

    /// The length of the next chunk, if it is known yet.
    fn next_len(&self) -> Option<usize> {
        match (&self.pending, &self.planned, self.segments.front()) {
            (Some((_, len)), _, _) | (None, Some((_, len)), _) => Some(*len),
            (None, None, Some(Segment::Static(bytes))) => Some(bytes.len()),
            (None, None, _) => None,
        }
    }

    /// Plans the next chunk while the current one is sent, and reads it now if
    /// the source's reads have to wait.
    fn read_ahead(&mut self, max_chunk: usize) {
        if self.pending.is_some() || self.planned.is_some() {
            return;
        }
        let Some(next) = self.plan(max_chunk) else {
            return;
        };
        match self.slow {
            // Nobody waits on this poll: the body is polled again for the frame.
            true => self.start(next, &mut Context::from_waker(std::task::Waker::noop())),
            false => self.planned = Some(next),
        }
    }

    /// The next chunk. Source reads are at most `max_chunk` bytes.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        max_chunk: usize,
    ) -> Poll<Option<io::Result<Bytes>>> {
        if self.pending.is_none() {
            let next = match self.planned.take() {
                Some(planned) => planned,
                None => match self.segments.front() {
                    None => return Poll::Ready(None),
                    Some(Segment::Static(_)) => {
                        let Some(Segment::Static(bytes)) = self.segments.pop_front() else {
                            unreachable!("front segment is static");
                        };
                        self.remaining -= bytes.len() as u64;
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    Some(Segment::Source(_)) => self.plan(max_chunk).expect("a source range"),
                },
            };
            self.start(next, cx);
        }
        let (read, expected) = self.pending.as_mut().expect("a read was started");
        let expected = *expected;
        let result = match read {
            Read::Done(_) => {
                let Some((Read::Done(result), _)) = self.pending.take() else {
                    unreachable!("the read is done");
                };
                result
            }
            Read::Running(read) => {
                let result = ready!(read.as_mut().poll(cx));
                self.pending = None;
                result
            }
        };
        let chunk = match result {
            Ok(chunk) if chunk.len() == expected => chunk,
            Ok(chunk) => {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "source returned {} bytes where {expected} were asked",
                        chunk.len()
                    ),
                ))));
            }
            Err(e) => return Poll::Ready(Some(Err(e))),
        };
        self.remaining -= expected as u64;
        Poll::Ready(Some(Ok(chunk)))
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
        if let Some(error) = this.tracker.as_mut().and_then(|t| t.poll_cut(cx)) {
            this.finish(Outcome::Shutdown);
            return Poll::Ready(Some(Err(error)));
        }
        let reader = this.reader.as_mut().expect("checked above");
        let configured = reader.chunk_size;
        // A throttled response's chunks follow its rate; the others ramp up.
        let ramped = this.ramp.max_chunk(configured);
        let max_chunk = |throttle: &Option<Throttle>| match throttle {
            Some(throttle) => throttle.max_chunk(configured),
            None => ramped,
        };
        let chunk = match this.held.take() {
            Some(chunk) => chunk,
            None => match ready!(reader.poll_next(cx, max_chunk(&this.throttle))) {
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
        if let Some(throttle) = &mut this.throttle {
            if throttle.poll_send(cx, chunk.len()).is_pending() {
                this.held = Some(chunk);
                return Poll::Pending;
            }
        }
        // The next chunk is read, and asked of the shared limits, while this one
        // is sent; its size follows the limits as they are now.
        reader.read_ahead(max_chunk(&this.throttle));
        if let (Some(throttle), Some(next)) = (&mut this.throttle, reader.next_len()) {
            throttle.reserve(next);
        }
        if let Some(tracker) = &mut this.tracker {
            tracker.sent(chunk.len());
        }
        this.ramp.sent(chunk.len());
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none()
            && self
                .reader
                .as_ref()
                .is_none_or(|reader| reader.remaining == 0)
    }

    fn size_hint(&self) -> SizeHint {
        let unread = self.reader.as_ref().map_or(0, |reader| reader.remaining);
        let held = self.held.as_ref().map_or(0, |chunk| chunk.len() as u64);
        SizeHint::with_exact(unread + held)
    }
}

impl fmt::Debug for RangeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RangeBody");
        if let Some(reader) = &self.reader {
            debug
                .field("source", &reader.source)
                .field("remaining", &reader.remaining)
                .field("chunk_size", &reader.chunk_size)
                .field("reading", &reader.pending.is_some())
                .field("reads_ahead", &reader.slow)
                .field("throttle", &self.throttle);
        }
        debug.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;

    use super::*;

    fn source(len: usize) -> Arc<dyn RangeSource> {
        Arc::new(Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()))
    }

    /// A source that records every read and can be told to misbehave.
    #[derive(Debug, Default)]
    struct Recording {
        data: Bytes,
        reads: Mutex<Vec<(u64, usize)>>,
        short_after: Option<usize>,
        polls: AtomicUsize,
        /// Reads wait once before completing, as reads from disk do.
        slow: bool,
    }

    impl RangeSource for Recording {
        fn len(&self) -> u64 {
            self.data.len() as u64
        }

        fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
            let n = self.polls.fetch_add(1, Ordering::SeqCst);
            self.reads.lock().unwrap().push((offset, len));
            let mut chunk = self.data.slice(offset as usize..offset as usize + len);
            if self.short_after.is_some_and(|after| n >= after) {
                chunk.truncate(len - 1);
            }
            match self.slow {
                true => Box::pin(async move {
                    tokio::task::yield_now().await;
                    Ok(chunk)
                }),
                false => Box::pin(std::future::ready(Ok(chunk))),
            }
        }
    }

    async fn frames(mut body: RangeBody) -> Vec<Bytes> {
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        frames
    }

    #[tokio::test]
    async fn reads_only_the_planned_bytes_in_bounded_chunks() {
        let data = Bytes::from(vec![7u8; 100]);
        let recording = Arc::new(Recording {
            data,
            ..Default::default()
        });
        let body = RangeBody::range(recording.clone(), ByteRange { start: 10, end: 35 }, 10);
        assert_eq!(body.size_hint().exact(), Some(25));
        let frames = frames(body).await;
        assert_eq!(
            frames.iter().map(Bytes::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert_eq!(
            *recording.reads.lock().unwrap(),
            [(10, 10), (20, 10), (30, 5)]
        );
    }

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
    async fn static_segments_and_ranges_come_in_order() {
        let segments = vec![
            Segment::Static(Bytes::from_static(b"<")),
            Segment::Source(ByteRange { start: 1, end: 3 }),
            Segment::Static(Bytes::from_static(b"|")),
            Segment::Source(ByteRange { start: 5, end: 6 }),
            Segment::Static(Bytes::from_static(b">")),
        ];
        let body = RangeBody::new(source(10), segments, 1);
        assert_eq!(body.size_hint().exact(), Some(6));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"<\x01\x02|\x05>");
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
