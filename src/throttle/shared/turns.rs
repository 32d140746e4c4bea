//! Turns at a shared limit: each [`SharedLimit`] has one task, its *turn keeper*,
//! that is the only one ever acquiring from its `leaky-bucket` limiter, and hands
//! the granted chunks out to the streams in the order they asked.
//!
//! # Why one acquirer
//!
//! A leaky-bucket waiter may become the limiter's *core*, the one that sleeps and
//! refills the bucket for all. With one acquisition per stream, two things go
//! wrong when streams come and go by the thousand (leaky-bucket 1.1.2):
//!
//! - a waiter dropped after the finishing core handed it the core, but before it
//!   was polled again, takes the hand-off with it: no other waiter is woken and
//!   the limit stalls until a new acquisition arrives (reproduced with leaky-bucket
//!   alone, on paused time, and seen as a stall in about one run in three of
//!   `tests/disconnect.rs` with a shared limit);
//! - from reading its code, not reproduced: a waiter polled while the queue
//!   completes it can link itself back into the wait list after completion.
//!
//! A single acquirer never meets either: its acquisition is never dropped midway
//! (only with the keeper, when nobody shares the limit any more), never races
//! another one, and is polled by the runtime whatever the streams' consumers do,
//! so a stalled client cannot hold the core. Fairness moves into the keeper's
//! queue, which is first come, first served; every stream has at most one
//! request queued per limit, so sharers take turns chunk by chunk.
//!
//! # Cancellation
//!
//! A stream that goes away drops its [`Turn`]. The keeper then stops acquiring
//! for it at once (or skips it, if not started yet); leaky-bucket returns the
//! tokens gathered so far to the bucket, so a dropped stream costs its sharers
//! nothing. Dropping the one acquisition is safe: no other waiter exists to be
//! handed the core.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::limit::SharedLimit;
#[cfg(feature = "redis")]
use crate::throttle::redis::Leases;

/// A request for `len` bytes from every limit in `hops`, one after the other.
#[derive(Debug)]
pub(crate) struct Request {
    len: usize,
    /// The limits still to pass, in order (a client's, then the total).
    hops: std::iter::Flatten<std::array::IntoIter<Option<Arc<SharedLimit>>, 2>>,
    granted: oneshot::Sender<()>,
}

/// The sending side of a keeper's queue.
pub(crate) type Queue = mpsc::UnboundedSender<Request>;

/// A stream's wait for its turn: ready once every limit granted the chunk.
#[derive(Debug)]
pub(crate) struct Turn(oneshot::Receiver<()>);

impl Turn {
    /// Asks every limit in `limits` (in order) for `len` bytes. A fixed array,
    /// not a `Vec`: no allocation per chunk beyond the grant's channel.
    pub(crate) fn request(limits: [Option<Arc<SharedLimit>>; 2], len: usize) -> Self {
        let (granted, turn) = oneshot::channel();
        forward(Request {
            len,
            hops: limits.into_iter().flatten(),
            granted,
        });
        Self(turn)
    }
}

impl Future for Turn {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A keeper that is gone (its runtime shut down) cannot hold a stream back.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// Queues `request` at `limit`'s keeper, starting the keeper if there is none
/// (or its runtime is gone). Gives the request back when the limit lets
/// everything through: unlimited, or no runtime to keep turns on.
fn enqueue(limit: &Arc<SharedLimit>, request: Request) -> Result<(), Request> {
    if limit.rate().limit().is_none() {
        return Err(request);
    }
    let mut queue = limit.queue();
    let request = match queue.as_ref() {
        Some(keeper) => match keeper.send(request) {
            Ok(()) => return Ok(()),
            Err(closed) => closed.0,
        },
        None => request,
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Err(request);
    };
    let keeper = queue.insert(spawn_keeper(limit, &runtime));
    keeper.send(request).map_err(|returned| returned.0)
}

/// Passes `request` to its next limit, or grants it when none is left. A limit
/// that has no keeper to queue at (unlimited, or no runtime) lets it through.
fn forward(mut request: Request) {
    while let Some(limit) = request.hops.next() {
        match enqueue(&limit, request) {
            Ok(()) => return,
            Err(passed) => request = passed,
        }
    }
    // The stream may be gone; then there is nobody to tell.
    let _ = request.granted.send(());
}

/// Starts the keeper of `limit`, returning its queue.
fn spawn_keeper(limit: &Arc<SharedLimit>, runtime: &tokio::runtime::Handle) -> Queue {
    let (queue, requests) = mpsc::unbounded_channel();
    runtime.spawn(keep(Arc::downgrade(limit), requests));
    queue
}

/// The keeper: acquires each request's bytes in turn (from its limiter, or by
/// leases from its store), then passes it on. Ends when its limit is dropped.
async fn keep(limit: Weak<SharedLimit>, mut requests: mpsc::UnboundedReceiver<Request>) {
    #[cfg(feature = "redis")]
    let mut leases = Leases::default();
    while let Some(mut request) = requests.recv().await {
        let Some(acquirer) = limit.upgrade().and_then(|limit| Acquirer::of(&limit)) else {
            forward(request);
            continue;
        };
        let len = request.len;
        let mut acquire = pin!(async {
            match acquirer {
                Acquirer::Local(limiter) => limiter.acquire(len).await,
                #[cfg(feature = "redis")]
                Acquirer::Store {
                    store: (store, key),
                    rate,
                    streams,
                } => leases.take(&store, &key, rate, streams, len as u64).await,
            }
        });
        let granted = poll_fn(|cx| {
            if acquire.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            // The stream went away: stop. leaky-bucket puts the tokens gathered
            // so far back into the bucket; leased bytes stay this keeper's.
            request.granted.poll_closed(cx).map(|()| false)
        })
        .await;
        if granted {
            forward(request);
        }
    }
}

/// Where a keeper takes the next request's bytes from.
enum Acquirer {
    /// The limit's own leaky-bucket limiter.
    Local(Arc<leaky_bucket::RateLimiter>),
    /// Leases from the store that holds the limit's budget.
    #[cfg(feature = "redis")]
    Store {
        store: crate::throttle::redis::SharedBy,
        rate: u64,
        streams: u64,
    },
}

impl Acquirer {
    /// `None` when the limit is unlimited now.
    fn of(limit: &SharedLimit) -> Option<Self> {
        let limiter = limit.limiter()?;
        #[cfg(feature = "redis")]
        if let Some(store) = limit.store() {
            return Some(Self::Store {
                store: store.clone(),
                rate: limit.rate().limit()?,
                streams: limit.streams(),
            });
        }
        Some(Self::Local(limiter))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::Bandwidth;

    /// 1,000 bytes per second: 100 bytes at once, then 100 more every 100 ms.
    fn limit() -> Arc<SharedLimit> {
        Arc::new(SharedLimit::new(Bandwidth::new(1000)))
    }

    #[tokio::test(start_paused = true)]
    async fn turns_come_in_the_order_asked() {
        let limit = limit();
        let start = Instant::now();
        let turns: Vec<_> = (0..4)
            .map(|_| tokio::spawn(Turn::request([Some(limit.clone()), None], 100)))
            .collect();
        let mut granted = Vec::new();
        for turn in turns {
            turn.await.unwrap();
            granted.push(start.elapsed().as_millis());
        }
        assert_eq!(granted, [0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_turn_costs_the_next_one_nothing() {
        let limit = limit();
        let start = Instant::now();
        Turn::request([Some(limit.clone()), None], 100).await;
        let dropped = Turn::request([Some(limit.clone()), None], 100);
        let next = Turn::request([Some(limit.clone()), None], 100);
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(dropped);
        next.await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_passes_every_limit_in_order() {
        let (client, total) = (limit(), limit());
        let start = Instant::now();
        // The total is spent by somebody else first; the client is not.
        Turn::request([Some(total.clone()), None], 100).await;
        Turn::request([Some(client.clone()), Some(total.clone())], 100).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_limits_let_turns_through_at_once() {
        let unlimited = Arc::new(SharedLimit::new(Bandwidth::UNLIMITED));
        let start = Instant::now();
        for _ in 0..10 {
            Turn::request([Some(unlimited.clone()), None], 1 << 30).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[test]
    fn without_a_runtime_turns_are_granted_at_once() {
        let turn = Turn::request([Some(limit()), None], 100);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(pin!(turn).poll(&mut cx).is_ready());
    }
}
