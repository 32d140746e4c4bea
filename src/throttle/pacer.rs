//! [`Pacer`]: the per-response rate, as a clock.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How far a response may fall behind its schedule and still catch up at full
/// speed (a slow client, a busy socket, timer lateness). Beyond it, the schedule
/// moves on: a stalled client gets no burst when it comes back.
pub(crate) const SLACK: Duration = Duration::from_millis(100);

/// Paces one response at a fixed rate: the chunk after `sent` bytes may go at
/// `start + sent / rate`. Exact over any duration (no per-chunk rounding), so the
/// bytes sent by time `t` never exceed `rate × t` plus one chunk plus [`SLACK`].
///
/// A response has its own pacer, so it needs no shared limiter: nothing another
/// stream does can delay it, and it delays no one.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: u64,
    chunk: u64,
    start: Option<Instant>,
    sent: u64,
    sleep: Pin<Box<Sleep>>,
}

impl Pacer {
    /// A pacer of `rate` bytes per second, sending chunks of a tenth of a
    /// second of it, but at least `min_chunk` bytes (or one second of the rate,
    /// if that is less): fewer, larger sends for slow rates, which is what a
    /// throttled stream costs (a timer, a read, a write and a wake-up each).
    pub(crate) fn new(rate: u64, min_chunk: u64) -> Self {
        Self {
            rate,
            chunk: (rate / 10).max(min_chunk.min(rate)),
            start: None,
            sent: 0,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// The largest chunk to send at once.
    pub(crate) fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Ready when the next chunk may be sent.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        let due = start
            + Duration::from_nanos(
                u64::try_from(u128::from(self.sent) * 1_000_000_000 / u128::from(self.rate))
                    .unwrap_or(u64::MAX),
            );
        if due > now {
            if self.sleep.deadline() != due {
                self.sleep.as_mut().reset(due);
            }
            ready!(self.sleep.as_mut().poll(cx));
            return Poll::Ready(());
        }
        let behind = now - due;
        if behind > SLACK {
            self.start = Some(start + (behind - SLACK));
        }
        Poll::Ready(())
    }

    /// Records `bytes` as sent.
    pub(crate) fn charge(&mut self, bytes: u64) {
        self.sent += bytes;
    }
}
