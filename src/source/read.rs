//! [`Reader`]: reads exactly the planned bytes of a body from a [`RangeSource`],
//! in bounded chunks, ahead of the client within a budget when its reads wait.
//!
//! This is the reading half of [`RangeBody`](crate::RangeBody): it knows the
//! plan of segments and the source, nothing of throttles, frame sizes or
//! downloads' lives. The body (in `serve/`) asks it for the next chunk of at
//! most so many bytes, and tells it when to read ahead.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;

use crate::protocol::{ByteRange, Segment, Segments};
use crate::source::{RangeSource, RangeStream, ReadFuture};

/// The default number of bytes read from the source at once: 64 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;

/// The largest read of a reader whose reads wait (the window's quarter).
const MAX_READ: usize = 1024 * 1024;

/// The default read-ahead budget of one download: 1 MiB. See
/// [`RangeServeLayer::read_ahead`](crate::RangeServeLayer::read_ahead).
pub const DEFAULT_READ_AHEAD: usize = 1024 * 1024;

/// The reading state of one body: the plan, the source and the reads in flight.
pub(crate) struct Reader {
    source: Arc<dyn RangeSource>,
    /// Segments not started yet.
    segments: Segments,
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

impl Reader {
    /// A reader of `segments`, reading source ranges `chunk_size` bytes at a
    /// time (at least one), with the default read-ahead budget. Reads nothing yet.
    pub(crate) fn new(source: Arc<dyn RangeSource>, segments: Segments, chunk_size: usize) -> Self {
        let remaining = segments.len();
        Self {
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
        }
    }

    /// Reads at most `bytes` ahead of the client, for sources whose reads wait.
    pub(crate) fn set_read_ahead(&mut self, bytes: usize) {
        self.ahead.budget = bytes;
    }

    /// Bytes not yet yielded.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The largest chunk this reader was made for.
    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Adds the reader's state to the `Debug` output of its body.
    pub(crate) fn debug_fields(&self, debug: &mut fmt::DebugStruct<'_, '_>) {
        debug
            .field("source", &self.source)
            .field("remaining", &self.remaining)
            .field("chunk_size", &self.chunk_size)
            .field("queued", &self.queued)
            .field("read_ahead", &self.ahead);
    }

    /// Starts reading the next chunk of the current range (at most `max_chunk`
    /// bytes), polling it once with `cx`. The caller queues it (see
    /// [`enqueue`](Self::enqueue)) or takes it at once.
    fn start_read(&mut self, max_chunk: usize, cx: &mut Context<'_>) -> Read {
        let size = self.ahead.read_size(max_chunk);
        let Some(Fetch::Reads { next, end }) = &mut self.fetch else {
            unreachable!("reads are started for a range read by reads");
        };
        let len = (*end - *next).min(size as u64) as usize; // at most `size`
        let offset = *next;
        *next += len as u64;
        if let Some(result) = self.source.read_now(offset, len) {
            return Read::Done(result, len);
        }
        let mut read = self.source.clone().read_at(offset, len);
        match read.as_mut().poll(cx) {
            Poll::Ready(result) => Read::Done(result, len),
            Poll::Pending => Read::Running(read, len),
        }
    }

    /// Queues a read behind the others.
    fn enqueue(&mut self, read: Read) {
        self.queued += read.expected();
        self.queue.push_back(read);
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
        self.enqueue(read);
        Poll::Ready(())
    }

    /// The length of the next chunk, if it is known yet.
    pub(crate) fn next_len(&self, max_chunk: usize) -> Option<usize> {
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
    pub(crate) fn read_ahead(&mut self, max_chunk: usize, cx: &mut Context<'_>) {
        loop {
            match &self.fetch {
                Some(Fetch::Reads { next, end }) if next < end => {
                    let len = (end - next).min(self.ahead.read_size(max_chunk) as u64) as usize;
                    if self.queued + len > self.ahead.window {
                        return;
                    }
                    let noop = &mut Context::from_waker(std::task::Waker::noop());
                    let read = self.start_read(max_chunk, noop);
                    self.enqueue(read);
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
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        max_chunk: usize,
    ) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            let (result, expected) = if let Some(read) = self.queue.front_mut() {
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
                (result, expected)
            } else {
                match &self.fetch {
                    Some(Fetch::Reads { next, end }) if next < end => {
                        // A read that completes at once is the chunk, never
                        // queued; one that does not has registered `cx`.
                        match self.start_read(max_chunk, cx) {
                            Read::Done(result, expected) => (result, expected),
                            running => {
                                self.enqueue(running);
                                self.starve(max_chunk);
                                return Poll::Pending;
                            }
                        }
                    }
                    Some(Fetch::Stream { left, .. }) if *left > 0 => {
                        if self.poll_stream(cx).is_pending() {
                            self.starve(max_chunk);
                            return Poll::Pending;
                        }
                        continue;
                    }
                    _ => {
                        self.fetch = None;
                        match self.segments.pop_front() {
                            None => return Poll::Ready(None),
                            Some(Segment::Static(bytes)) => {
                                self.remaining -= bytes.len() as u64;
                                return Poll::Ready(Some(Ok(bytes)));
                            }
                            Some(Segment::Source(range)) => self.fetch_range(range),
                        }
                        continue;
                    }
                }
            };
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
    }

    /// Starts sending `range` of the source: one stream, or reads.
    fn fetch_range(&mut self, range: ByteRange) {
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

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
