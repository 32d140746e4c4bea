//! The reader's tests, through [`Frames`]: what reaches the client, what is
//! read and when.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;

use super::testing::{Frames, Recording, Streamed, feed, frames, gated, poll_once, source};
use crate::protocol::{ByteRange, Segment};

#[tokio::test]
async fn reads_only_the_planned_bytes_in_bounded_chunks() {
    let data = Bytes::from(vec![7u8; 100]);
    let recording = Arc::new(Recording {
        data,
        ..Default::default()
    });
    let body = Frames::range(recording.clone(), ByteRange { start: 10, end: 35 }, 10);
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
async fn static_segments_and_ranges_come_in_order() {
    let segments = vec![
        Segment::Static(Bytes::from_static(b"<")),
        Segment::Source(ByteRange { start: 1, end: 3 }),
        Segment::Static(Bytes::from_static(b"|")),
        Segment::Source(ByteRange { start: 5, end: 6 }),
        Segment::Static(Bytes::from_static(b">")),
    ];
    let body = Frames::new(source(10), segments, 1);
    assert_eq!(body.size_hint().exact(), Some(6));
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"<\x01\x02|\x05>");
}

#[tokio::test]
async fn reads_that_wait_get_more_reads_in_flight_within_the_budget() {
    let source = gated((0..200).map(|i| i as u8).collect());
    let mut body = Frames::full(source.clone(), 10).read_ahead(40);
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
    let mut body = Frames::full(source.clone(), 10).read_ahead(160);
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
    let mut body = Frames::full(source.clone(), 10).read_ahead(40);
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
    let mut body = Frames::new(source.clone(), segments, 10);
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
    let mut body = Frames::full(source.clone(), 10).read_ahead(40);
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
        let mut body = Frames::full(source.clone(), 100);
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

/// Answers every read at once, and fails a read that would have to wait.
#[derive(Debug)]
struct AtHand(Bytes);

impl crate::source::RangeSource for AtHand {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(self: Arc<Self>, _offset: u64, _len: usize) -> crate::source::ReadFuture {
        Box::pin(std::future::ready(Err(io::Error::other(
            "read_at was called",
        ))))
    }

    fn read_now(&self, offset: u64, len: usize) -> Option<io::Result<Bytes>> {
        let start = offset as usize;
        Some(Ok(self.0.slice(start..start + len)))
    }
}

#[tokio::test]
async fn reads_at_hand_are_taken_without_a_future() {
    let source = Arc::new(AtHand(Bytes::from_static(b"0123456789")));
    let body = Frames::range(source, ByteRange { start: 2, end: 9 }, 3);
    let frames = frames(body).await;
    assert_eq!(frames, ["234", "567", "8"]);
}
