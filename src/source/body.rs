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
use crate::source::{RangeSource, RangeStream, ReadFuture};
use crate::throttle::Throttle;

use super::ramp::Ramp;

/// The default number of bytes read from the source at once: 64 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;

/// The largest read of a body whose reads wait (the window's quarter).
const MAX_READ: usize = 1024 * 1024;

/// The default read-ahead budget of one download: 1 MiB. See
/// [`RangeServeLayer::read_ahead`](crate::RangeServeLayer::read_ahead).
pub const DEFAULT_READ_AHEAD: usize = 1024 * 1024;

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
    /// Segments not started yet.
    segments: VecDeque<Segment>,
    /// How the source range being sent is fetched; `None` between ranges.
    fetch: Option<Fetch>,
    /// Reads of the current range, in order: the front one is the next chunk
    /// to send, the others are read ahead.
    queue: VecDeque<Read>,
    /// Bytes in `queue`, read or being read.
    queued: usize,
    /// How far ahead of the client the source is read.
    ahead: ReadAhead,
    /// Whether the body is waiting for the read of the next chunk.
    waiting: bool,
    /// Bytes not yet yielded.
    remaining: u64,
    chunk_size: usize,
}

/// Where the bytes of the current source range come from.
enum Fetch {
    /// Positional reads of at most one chunk each; `next..end` is not asked yet.
    Reads { next: u64, end: u64 },
    /// One stream for the whole range; `left` bytes are still to come.
    Stream { stream: RangeStream, left: u64 },
}

/// A read of one piece of the range, with its expected length.
enum Read {
    Done(io::Result<Bytes>, usize),
    Running(ReadFuture, usize),
}

impl Read {
    fn expected(&self) -> usize {
        match self {
            Read::Done(_, len) | Read::Running(_, len) => *len,
        }
    }
}

/// The read-ahead window of one body: how many bytes may be read before the
/// client asks for them.
///
/// It opens only for sources whose reads wait. Each time the client is ready
/// for a chunk that is not there yet, the window doubles (from one chunk), up to
/// the budget. It does not close again during the download: a cold file is
/// mostly read from the kernel's readahead, and the reads that miss come at
/// intervals, each costing a trip to the blocking pool and back (milliseconds
/// on a loaded machine) that a window closed in between would make the client
/// wait for. While it is open, reads are a quarter of the window (from one chunk
/// up to [`MAX_READ`]): fewer trips, each sent as several frames. Nothing is
/// read ahead while the body is not polled, so a client that stops reading
/// stops the read-ahead, with at most the window held for it.
#[derive(Debug, Clone, Copy)]
struct ReadAhead {
    budget: usize,
    window: usize,
}

impl ReadAhead {
    /// The client waited for a read: read further ahead.
    fn starved(&mut self, chunk: usize) {
        self.window = (self.window.saturating_mul(2)).max(chunk).min(self.budget);
    }

    /// How many bytes to read at once.
    fn read_size(&self, max_chunk: usize) -> usize {
        (self.window / 4).clamp(max_chunk, MAX_READ.max(max_chunk))
    }
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
                fetch: None,
                queue: VecDeque::new(),
                queued: 0,
                ahead: ReadAhead {
                    budget: DEFAULT_READ_AHEAD,
                    window: 0,
                },
                waiting: false,
                remaining,
                chunk_size: chunk_size.max(1),
            }),
            throttle: None,
            held: None,
            tracker: None,
            ramp: Ramp::for_len(remaining),
        }
    }

    /// Reads at most `bytes` ahead of the client, for sources whose reads wait.
    pub(crate) fn read_ahead(mut self, bytes: usize) -> Self {
        if let Some(reader) = &mut self.reader {
            reader.ahead.budget = bytes;
        }
        self
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
    /// Starts reading the next chunk of the current range (at most `max_chunk`
    /// bytes), polling it once with `cx`. Returns whether it completed at once.
    fn start_read(&mut self, max_chunk: usize, cx: &mut Context<'_>) -> bool {
        let size = self.ahead.read_size(max_chunk);
        let Some(Fetch::Reads { next, end }) = &mut self.fetch else {
            unreachable!("reads are started for a range read by reads");
        };
        let len = (*end - *next).min(size as u64) as usize; // at most `size`
        let mut read = self.source.clone().read_at(*next, len);
        *next += len as u64;
        let read = match read.as_mut().poll(cx) {
            Poll::Ready(result) => Read::Done(result, len),
            Poll::Pending => Read::Running(read, len),
        };
        let done = matches!(read, Read::Done(..));
        self.queued += len;
        self.queue.push_back(read);
        done
    }

    /// Polls the current range's stream once for its next piece and queues it
    /// (or its error). Pending when nothing has come yet.
    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(Fetch::Stream { stream, left }) = &mut self.fetch else {
            unreachable!("the range is streamed");
        };
        let read = match ready!(stream.as_mut().poll_next(cx)) {
            Some(Ok(piece)) if piece.len() as u64 <= *left => {
                *left -= piece.len() as u64;
                let len = piece.len();
                Read::Done(Ok(piece), len)
            }
            Some(Ok(_)) => {
                *left = 0;
                Read::Done(
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "source streamed more bytes than the range",
                    )),
                    0,
                )
            }
            Some(Err(e)) => {
                *left = 0;
                Read::Done(Err(e), 0)
            }
            None => {
                *left = 0;
                Read::Done(
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "source stream ended before the range",
                    )),
                    0,
                )
            }
        };
        self.queued += read.expected();
        self.queue.push_back(read);
        Poll::Ready(())
    }

    /// The length of the next chunk, if it is known yet.
    fn next_len(&self, max_chunk: usize) -> Option<usize> {
        if let Some(read) = self.queue.front() {
            return Some(read.expected().min(max_chunk));
        }
        match (&self.fetch, self.segments.front()) {
            (Some(Fetch::Reads { next, end }), _) if next < end => {
                Some((end - next).min(max_chunk as u64) as usize)
            }
            (Some(_), _) => None,
            (None, Some(Segment::Static(bytes))) => Some(bytes.len()),
            (None, _) => None,
        }
    }

    /// Reads ahead of the client, within the window. Reads are polled with a
    /// no-op waker (the body is polled again for the next frame); a stream with
    /// `cx`, so that what arrives for it wakes the body.
    fn read_ahead(&mut self, max_chunk: usize, cx: &mut Context<'_>) {
        loop {
            match &self.fetch {
                Some(Fetch::Reads { next, end }) if next < end => {
                    let len = (end - next).min(self.ahead.read_size(max_chunk) as u64) as usize;
                    if self.queued + len > self.ahead.window {
                        return;
                    }
                    let noop = &mut Context::from_waker(std::task::Waker::noop());
                    self.start_read(max_chunk, noop);
                }
                Some(Fetch::Stream { left, .. }) if *left > 0 => {
                    if self.queued >= self.ahead.window || self.poll_stream(cx).is_pending() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// The client waits for a read: once per wait, the window opens further.
    fn starve(&mut self, max_chunk: usize) {
        if !self.waiting {
            self.waiting = true;
            self.ahead.starved(self.chunk_size.min(max_chunk));
        }
    }

    /// The next chunk. Source reads are at most `max_chunk` bytes.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        max_chunk: usize,
    ) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if let Some(read) = self.queue.front_mut() {
                let (result, expected) = match read {
                    Read::Done(..) => {
                        let Some(Read::Done(result, expected)) = self.queue.pop_front() else {
                            unreachable!("the read is done");
                        };
                        (result, expected)
                    }
                    Read::Running(future, expected) => {
                        let expected = *expected;
                        let Poll::Ready(result) = future.as_mut().poll(cx) else {
                            self.starve(max_chunk);
                            return Poll::Pending;
                        };
                        self.queue.pop_front();
                        (result, expected)
                    }
                };
                self.queued -= expected;
                let mut chunk = match result {
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
                if chunk.len() > max_chunk {
                    let rest = chunk.split_off(max_chunk);
                    self.queued += rest.len();
                    let len = rest.len();
                    self.queue.push_front(Read::Done(Ok(rest), len));
                }
                if chunk.is_empty() {
                    continue;
                }
                self.waiting = false;
                self.remaining -= chunk.len() as u64;
                return Poll::Ready(Some(Ok(chunk)));
            }
            match &self.fetch {
                Some(Fetch::Reads { next, end }) if next < end => {
                    // A read that does not complete at its first poll has
                    // registered `cx`.
                    if !self.start_read(max_chunk, cx) {
                        self.starve(max_chunk);
                        return Poll::Pending;
                    }
                }
                Some(Fetch::Stream { left, .. }) if *left > 0 => {
                    if self.poll_stream(cx).is_pending() {
                        self.starve(max_chunk);
                        return Poll::Pending;
                    }
                }
                _ => {
                    self.fetch = None;
                    match self.segments.pop_front() {
                        None => return Poll::Ready(None),
                        Some(Segment::Static(bytes)) => {
                            self.remaining -= bytes.len() as u64;
                            return Poll::Ready(Some(Ok(bytes)));
                        }
                        Some(Segment::Source(range)) => {
                            let stream = self.source.clone().stream_range(range.start, range.len());
                            self.fetch = Some(match stream {
                                Some(stream) => Fetch::Stream {
                                    stream,
                                    left: range.len(),
                                },
                                None => {
                                    self.source.will_read(range.start, range.len());
                                    Fetch::Reads {
                                        next: range.start,
                                        end: range.end,
                                    }
                                }
                            });
                        }
                    }
                }
            }
        }
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
        let max = max_chunk(&this.throttle);
        reader.read_ahead(max, cx);
        if let (Some(throttle), Some(next)) = (&mut this.throttle, reader.next_len(max)) {
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
                .field("queued", &reader.queued)
                .field("read_ahead", &reader.ahead)
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

    fn poll_once<F: std::future::Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    /// A source whose every read waits until the test opens the gate for it.
    #[derive(Debug)]
    struct Gated {
        data: Bytes,
        gate: tokio::sync::Semaphore,
        started: AtomicUsize,
        done: Arc<AtomicUsize>,
        most_in_flight: AtomicUsize,
        lens: Mutex<Vec<usize>>,
    }

    fn gated(data: Vec<u8>) -> Arc<Gated> {
        Arc::new(Gated {
            data: Bytes::from(data),
            gate: tokio::sync::Semaphore::new(0),
            started: AtomicUsize::new(0),
            done: Arc::default(),
            most_in_flight: AtomicUsize::new(0),
            lens: Mutex::default(),
        })
    }

    impl RangeSource for Gated {
        fn len(&self) -> u64 {
            self.data.len() as u64
        }

        fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
            let started = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            let in_flight = started - self.done.load(Ordering::SeqCst);
            self.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            self.lens.lock().unwrap().push(len);
            let chunk = self.data.slice(offset as usize..offset as usize + len);
            Box::pin(async move {
                self.gate.acquire().await.unwrap().forget();
                self.done.fetch_add(1, Ordering::SeqCst);
                Ok(chunk)
            })
        }
    }

    #[tokio::test]
    async fn reads_that_wait_get_more_reads_in_flight_within_the_budget() {
        let source = gated((0..200).map(|i| i as u8).collect());
        let mut body = RangeBody::full(source.clone(), 10).read_ahead(40);
        let mut sent = Vec::new();
        let mut in_flight_after_frame = Vec::new();
        for _ in 0..20 {
            let mut frame = std::pin::pin!(body.frame());
            // The client is ready before the read is: it waits.
            assert!(poll_once(frame.as_mut()).is_pending());
            source.gate.add_permits(1);
            let chunk = frame.await.unwrap().unwrap().into_data().unwrap();
            sent.extend_from_slice(&chunk);
            let started = source.started.load(Ordering::SeqCst);
            // What was read or is being read beyond what was sent: the budget.
            assert!((started * 10).min(200) - sent.len() <= 40);
            in_flight_after_frame.push(started - source.done.load(Ordering::SeqCst));
        }
        assert_eq!(sent, source.data);
        // The window opened one chunk at a time: 1, 2, 4, then the budget.
        assert_eq!(in_flight_after_frame[..4], [1, 2, 4, 4]);
        assert_eq!(source.most_in_flight.load(Ordering::SeqCst), 4);
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn reads_grow_with_the_window_and_are_sent_in_chunks() {
        let source = gated((0..2000).map(|i| i as u8).collect());
        let mut body = RangeBody::full(source.clone(), 10).read_ahead(160);
        let mut sent = Vec::new();
        while sent.len() < 2000 {
            let mut frame = std::pin::pin!(body.frame());
            let frame = match poll_once(frame.as_mut()) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    source.gate.add_permits(1);
                    frame.await
                }
            };
            let chunk = frame.unwrap().unwrap().into_data().unwrap();
            assert!(chunk.len() <= 10);
            sent.extend_from_slice(&chunk);
        }
        assert_eq!(sent, source.data);
        // The window reached the budget (160): reads of a quarter of it.
        let lens = source.lens.lock().unwrap().clone();
        assert_eq!(lens[..3], [10, 10, 10]);
        assert!(lens.iter().all(|&len| len <= 40));
        assert_eq!(
            lens.iter().filter(|&&len| len == 40).count(),
            47,
            "{lens:?}"
        );
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_stops_the_read_ahead() {
        let source = gated(vec![1u8; 1000]);
        let mut body = RangeBody::full(source.clone(), 10).read_ahead(40);
        for _ in 0..5 {
            let mut frame = std::pin::pin!(body.frame());
            assert!(poll_once(frame.as_mut()).is_pending());
            source.gate.add_permits(1);
            frame.await.unwrap().unwrap();
        }
        let started = source.started.load(Ordering::SeqCst);
        // Every read may complete; the body is not polled, so no new one starts.
        source.gate.add_permits(1000);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(source.started.load(Ordering::SeqCst), started);
        assert!(started * 10 - 50 <= 40);
        drop(body);
    }

    type Feeder = tokio::sync::mpsc::UnboundedSender<io::Result<Bytes>>;

    /// A source streamed from a channel the test feeds.
    #[derive(Debug, Default)]
    struct Streamed {
        data: Bytes,
        /// The sender of each stream opened, and its range.
        streams: Mutex<Vec<(u64, u64, Feeder)>>,
        /// Pieces the body has taken from the streams.
        taken: Arc<AtomicUsize>,
    }

    impl RangeSource for Streamed {
        fn len(&self) -> u64 {
            self.data.len() as u64
        }

        fn read_at(self: Arc<Self>, _: u64, _: usize) -> ReadFuture {
            unreachable!("streamed sources are not read by read_at here")
        }

        fn stream_range(self: Arc<Self>, offset: u64, len: u64) -> Option<RangeStream> {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            self.streams.lock().unwrap().push((offset, len, tx));
            let taken = self.taken.clone();
            Some(Box::pin(futures_stream(move |cx| {
                let piece = rx.poll_recv(cx);
                if matches!(piece, Poll::Ready(Some(_))) {
                    taken.fetch_add(1, Ordering::SeqCst);
                }
                piece
            })))
        }
    }

    fn futures_stream<F>(poll: F) -> impl futures_core::Stream<Item = io::Result<Bytes>> + Send
    where
        F: FnMut(&mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> + Send + Unpin,
    {
        struct PollFn<F>(F);
        impl<F> futures_core::Stream for PollFn<F>
        where
            F: FnMut(&mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> + Unpin,
        {
            type Item = io::Result<Bytes>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                (self.0)(cx)
            }
        }
        PollFn(poll)
    }

    fn feed(source: &Streamed, stream: usize, piece: &[u8]) {
        let streams = source.streams.lock().unwrap();
        let _ = streams[stream].2.send(Ok(Bytes::copy_from_slice(piece)));
    }

    #[tokio::test]
    async fn a_streamed_source_gets_one_stream_per_range_cut_into_chunks() {
        let data = Bytes::from((0..100).map(|i| i as u8).collect::<Vec<_>>());
        let source = Arc::new(Streamed {
            data: data.clone(),
            ..Default::default()
        });
        let segments = vec![
            Segment::Source(ByteRange { start: 0, end: 30 }),
            Segment::Static(Bytes::from_static(b"|")),
            Segment::Source(ByteRange { start: 50, end: 75 }),
        ];
        let mut body = RangeBody::new(source.clone(), segments, 10);
        let mut frame = std::pin::pin!(body.frame());
        assert!(poll_once(frame.as_mut()).is_pending());
        // One piece larger than a chunk, then the rest.
        feed(&source, 0, &data[0..25]);
        feed(&source, 0, &data[25..30]);
        assert_eq!(
            frame.await.unwrap().unwrap().into_data().unwrap(),
            data.slice(0..10)
        );
        let mut frames = vec![data.slice(0..10)];
        let mut got = 0;
        while let Some(frame) = {
            let mut next = std::pin::pin!(body.frame());
            match poll_once(next.as_mut()) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    // The next range's stream is open: feed it.
                    assert_eq!(source.streams.lock().unwrap().len(), 2);
                    feed(&source, 1, &data[50..75]);
                    next.await
                }
            }
        } {
            frames.push(frame.unwrap().into_data().unwrap());
            got += 1;
            assert!(got < 20);
        }
        assert!(frames.iter().all(|frame| frame.len() <= 10));
        let sent = frames.concat();
        assert_eq!(sent, [&data[0..30], b"|", &data[50..75]].concat());
        let streams = source.streams.lock().unwrap();
        let ranges: Vec<_> = streams
            .iter()
            .map(|(offset, len, _)| (*offset, *len))
            .collect();
        assert_eq!(ranges, [(0, 30), (50, 25)]);
    }

    #[tokio::test]
    async fn a_streamed_source_is_read_ahead_within_the_budget_and_dropped_with_the_body() {
        let source = Arc::new(Streamed {
            data: Bytes::from(vec![3u8; 1000]),
            ..Default::default()
        });
        let mut body = RangeBody::full(source.clone(), 10).read_ahead(40);
        for _ in 0..3 {
            let mut frame = std::pin::pin!(body.frame());
            assert!(poll_once(frame.as_mut()).is_pending());
            feed(&source, 0, &[3u8; 10]);
            frame.await.unwrap().unwrap();
        }
        // The store sends far more than the budget; the body takes at most the
        // window, and nothing while it is not polled.
        for _ in 0..90 {
            feed(&source, 0, &[3u8; 10]);
        }
        body.frame().await.unwrap().unwrap();
        let taken = source.taken.load(Ordering::SeqCst);
        assert!(taken <= 4 + 1 + 4, "{taken} pieces taken");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(source.taken.load(Ordering::SeqCst), taken);
        // The client goes away: the stream (its request) is dropped.
        assert!(!source.streams.lock().unwrap()[0].2.is_closed());
        drop(body);
        assert!(source.streams.lock().unwrap()[0].2.is_closed());
    }

    #[tokio::test]
    async fn a_stream_that_ends_early_or_sends_too_much_ends_the_body_with_an_error() {
        for (pieces, kind) in [
            (&[&[1u8; 5][..]][..], io::ErrorKind::UnexpectedEof),
            (
                &[&[1u8; 5][..], &[1u8; 6][..]][..],
                io::ErrorKind::InvalidData,
            ),
        ] {
            let source = Arc::new(Streamed {
                data: Bytes::from(vec![1u8; 10]),
                ..Default::default()
            });
            let mut body = RangeBody::full(source.clone(), 100);
            let mut frame = std::pin::pin!(body.frame());
            assert!(poll_once(frame.as_mut()).is_pending());
            for piece in pieces {
                feed(&source, 0, piece);
            }
            source.streams.lock().unwrap().clear(); // ends the stream
            assert_eq!(frame.await.unwrap().unwrap().into_data().unwrap().len(), 5);
            let err = body.frame().await.unwrap().unwrap_err();
            assert_eq!(err.kind(), kind);
            assert!(body.frame().await.is_none());
        }
    }
}
