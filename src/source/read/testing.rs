//! Sources that record, wait for the test, or stream from a channel, and a
//! minimal body around a [`Reader`], for the tests of the reader and of the
//! bodies built on it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use super::Reader;
use crate::protocol::{ByteRange, Segment, Segments};
use crate::source::{RangeSource, RangeStream, ReadFuture};

pub(crate) fn source(len: usize) -> Arc<dyn RangeSource> {
    Arc::new(Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()))
}

/// A source that records every read and can be told to misbehave.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    pub(crate) data: Bytes,
    pub(crate) reads: Mutex<Vec<(u64, usize)>>,
    pub(crate) short_after: Option<usize>,
    pub(crate) polls: AtomicUsize,
    /// Reads wait once before completing, as reads from disk do.
    pub(crate) slow: bool,
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

pub(crate) async fn frames<B>(mut body: B) -> Vec<Bytes>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        frames.push(frame.unwrap().into_data().unwrap());
    }
    frames
}

pub(crate) fn poll_once<F: std::future::Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(std::task::Waker::noop()))
}

/// A source whose every read waits until the test opens the gate for it.
#[derive(Debug)]
pub(crate) struct Gated {
    pub(crate) data: Bytes,
    pub(crate) gate: tokio::sync::Semaphore,
    pub(crate) started: AtomicUsize,
    pub(crate) done: Arc<AtomicUsize>,
    pub(crate) most_in_flight: AtomicUsize,
    pub(crate) lens: Mutex<Vec<usize>>,
}

pub(crate) fn gated(data: Vec<u8>) -> Arc<Gated> {
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

pub(crate) type Feeder = tokio::sync::mpsc::UnboundedSender<io::Result<Bytes>>;

/// A source streamed from a channel the test feeds.
#[derive(Debug, Default)]
pub(crate) struct Streamed {
    pub(crate) data: Bytes,
    /// The sender of each stream opened, and its range.
    pub(crate) streams: Mutex<Vec<(u64, u64, Feeder)>>,
    /// Pieces the body has taken from the streams.
    pub(crate) taken: Arc<AtomicUsize>,
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

pub(crate) fn futures_stream<F>(
    poll: F,
) -> impl futures_core::Stream<Item = io::Result<Bytes>> + Send
where
    F: FnMut(&mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> + Send + Unpin,
{
    struct PollFn<F>(F);
    impl<F> futures_core::Stream for PollFn<F>
    where
        F: FnMut(&mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> + Unpin,
    {
        type Item = io::Result<Bytes>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            (self.0)(cx)
        }
    }
    PollFn(poll)
}

pub(crate) fn feed(source: &Streamed, stream: usize, piece: &[u8]) {
    let streams = source.streams.lock().unwrap();
    let _ = streams[stream].2.send(Ok(Bytes::copy_from_slice(piece)));
}

/// What a body does around its reader when nothing throttles it and it is too
/// short to ramp (see `serve::range_body`): every frame is a chunk of at most
/// the chunk size, after which the reader reads ahead. Ends after an error.
pub(crate) struct Frames(Option<Reader>);

impl Frames {
    pub(crate) fn new(
        source: Arc<dyn RangeSource>,
        segments: impl Into<Segments>,
        chunk_size: usize,
    ) -> Self {
        Self(Some(Reader::new(source, segments.into(), chunk_size)))
    }

    pub(crate) fn range(source: Arc<dyn RangeSource>, range: ByteRange, chunk_size: usize) -> Self {
        Self::new(source, Segment::Source(range), chunk_size)
    }

    pub(crate) fn full(source: Arc<dyn RangeSource>, chunk_size: usize) -> Self {
        let end = source.len();
        Self::range(source, ByteRange { start: 0, end }, chunk_size)
    }

    pub(crate) fn read_ahead(mut self, bytes: usize) -> Self {
        if let Some(reader) = &mut self.0 {
            reader.set_read_ahead(bytes);
        }
        self
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(reader) = &mut self.0 else {
            return Poll::Ready(None);
        };
        let max = reader.chunk_size();
        match ready!(reader.poll_next(cx, max)) {
            Some(Ok(chunk)) => {
                reader.read_ahead(max, cx);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(error)) => {
                self.0 = None;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                self.0 = None;
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, Reader::remaining))
    }
}
