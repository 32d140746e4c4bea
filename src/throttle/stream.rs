//! [`Throttle`]: the throttle of one stream, which says when its next chunk may go.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::pacer::Pacer;
use super::shared::{Active, ClientStream, SharedLimit, Turn};

/// The smallest chunk a throttled response reads and sends.
pub(crate) const MIN_CHUNK: usize = 512;

/// Every limit that applies to one response: its own rate (after an unthrottled
/// start), its client's shared limit and the layer's total.
///
/// Shared limits hand out turns (see `shared::turns`): the next chunk is asked
/// for one chunk ahead, and the limits' keepers grant it whether or not this
/// response's consumer is polling the body (a full socket, a stalled client), so
/// nobody else waits for it. A body dropped mid-wait drops its turn, which the
/// keepers then skip.
#[derive(Debug)]
pub(crate) struct Throttle {
    pacer: Option<Pacer>,
    /// Bytes still to send before the pacer applies (`rate_after`).
    unpaced: u64,
    client: Option<ClientStream>,
    total: Option<Active>,
    permit: Permit,
}

#[derive(Debug)]
enum Permit {
    /// Nothing acquired for the next chunk yet.
    None,
    Waiting(Turn),
    /// The shared limits granted the next chunk.
    Granted,
}

impl Throttle {
    /// `min_chunk`: see [`Pacer::new`].
    pub(crate) fn new(
        rate: Option<u64>,
        rate_after: u64,
        min_chunk: u64,
        client: Option<ClientStream>,
        total: Option<Active>,
    ) -> Self {
        Self {
            pacer: rate.map(|rate| Pacer::new(rate, min_chunk)),
            unpaced: rate_after,
            client,
            total,
            permit: Permit::None,
        }
    }

    /// The largest next chunk: the own rate's pacing chunk (see [`Pacer::new`]),
    /// or a tenth of a second of a shared limit's rate (of this response's share
    /// of it), whichever is tightest, so sharers take equal turns.
    pub(crate) fn max_chunk(&self, configured: usize) -> usize {
        let own = self.pacer.as_ref().map(|pacer| match self.unpaced {
            0 => pacer.chunk(),
            unpaced => unpaced,
        });
        let shared = self.shared().filter_map(|limit| limit.chunk_hint());
        let tightest = own.into_iter().chain(shared).min();
        match tightest {
            Some(bytes) => usize::try_from(bytes)
                .unwrap_or(usize::MAX)
                .clamp(MIN_CHUNK, configured.max(MIN_CHUNK))
                .min(configured),
            None => configured,
        }
    }

    fn shared(&self) -> impl Iterator<Item = &Arc<SharedLimit>> {
        let client = self.client.as_ref().map(ClientStream::limit);
        let total = self.total.as_ref().map(Active::limit);
        client.into_iter().chain(total)
    }

    /// Starts acquiring `len` bytes from the shared limits, unless already done.
    pub(crate) fn reserve(&mut self, len: usize) {
        if !matches!(self.permit, Permit::None) {
            return;
        }
        let limited = |limit: &&Arc<SharedLimit>| limit.rate().limit().is_some();
        let client = self.client.as_ref().map(ClientStream::limit);
        let total = self.total.as_ref().map(Active::limit);
        let limits = [
            client.filter(limited).cloned(),
            total.filter(limited).cloned(),
        ];
        self.permit = match limits {
            [None, None] => Permit::Granted,
            limits => Permit::Waiting(Turn::request(limits, len)),
        };
    }

    /// Ready when a chunk of `len` bytes may be sent; it is then counted as sent.
    pub(crate) fn poll_send(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<()> {
        self.reserve(len);
        if let Permit::Waiting(turn) = &mut self.permit {
            ready!(Pin::new(turn).poll(cx));
            self.permit = Permit::Granted;
        }
        let len = len as u64;
        let paced = len.saturating_sub(self.unpaced);
        if let Some(pacer) = &mut self.pacer {
            if paced > 0 {
                ready!(pacer.poll_ready(cx));
                pacer.charge(paced);
            }
        }
        self.unpaced -= len - paced;
        self.permit = Permit::None;
        Poll::Ready(())
    }
}
