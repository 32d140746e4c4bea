//! [`Pace`]: what the frame loop of a [`RangeBody`](crate::RangeBody) asks, chunk
//! by chunk, of whatever decides when its chunks may go (a
//! [`Throttle`](crate::throttle::Throttle)), and nothing more.

use std::fmt;
use std::task::{Context, Poll};

use crate::throttle::Throttle;

/// The per-frame exchange between a body and its throttle: how large the next
/// chunk may be, ask for it ahead, and wait until it may go.
pub(crate) trait Pace: fmt::Debug + Send + 'static {
    /// The largest next chunk, at most `configured` (the layer's chunk size).
    fn max_chunk(&self, configured: usize) -> usize;

    /// Starts acquiring a chunk of `len` bytes ahead of sending it, unless a
    /// chunk is already being acquired.
    fn reserve(&mut self, len: usize);

    /// Ready when a chunk of `len` bytes may be sent; it then counts as sent.
    fn poll_send(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<()>;
}

impl Pace for Throttle {
    fn max_chunk(&self, configured: usize) -> usize {
        Throttle::max_chunk(self, configured)
    }

    fn reserve(&mut self, len: usize) {
        Throttle::reserve(self, len);
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<()> {
        Throttle::poll_send(self, cx, len)
    }
}
