//! [`QuotaGate`]: a download's side of its client's quota, asked by the body's
//! frame loop before each chunk and told what went.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::QuotaExhausted;
use super::account::{Account, Check};
use crate::throttle::pacer::Pacer;

/// A download's gate on its client's quota: before each chunk it asks the
/// account whether the chunk may go (with a store, maybe waiting for a lease),
/// and it charges what went. When the quota is spent it ends the download
/// ([`QuotaExhausted::End`]) or paces it at the reduced rate
/// ([`QuotaExhausted::Reduce`]) until the window ends.
pub(crate) struct QuotaGate {
    account: Arc<Account>,
    exhausted: QuotaExhausted,
    min_chunk: u64,
    /// Set while the quota is spent under [`QuotaExhausted::Reduce`].
    reduced: Option<Pacer>,
    /// What was left of the quota at the last check, less what went since
    /// (more than is left if other downloads of the client spent meanwhile).
    left: u64,
    wait: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// The quota is spent and the download ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spent;

impl QuotaGate {
    /// `min_chunk`: the smallest chunk at a reduced rate (see [`Pacer::new`]).
    pub(crate) fn new(account: Arc<Account>, exhausted: QuotaExhausted, min_chunk: u64) -> Self {
        Self {
            left: account.remaining(),
            account,
            exhausted,
            min_chunk,
            reduced: None,
            wait: None,
        }
    }

    /// The largest next chunk, at most `max`: no more than was left of the
    /// quota at the last check (at least a byte; a download alone ends
    /// exactly at its quota), or a reduced rate's pacing chunk.
    pub(crate) fn max_chunk(&self, max: usize) -> usize {
        let bound = match &self.reduced {
            Some(pacer) => pacer.chunk(),
            None => self.left.max(1),
        };
        max.min(usize::try_from(bound).unwrap_or(usize::MAX))
    }

    /// Ready with `Ok` when a chunk of `len` bytes may go (it is charged by
    /// [`sent`](Self::sent)), with `Err` when the download must end. Asking
    /// again for the same chunk is harmless.
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<Result<(), Spent>> {
        loop {
            if let Some(wait) = &mut self.wait {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            match self.account.check(len as u64) {
                Check::Allowed(left) => {
                    self.reduced = None;
                    self.left = left;
                    return Poll::Ready(Ok(()));
                }
                Check::Wait(wait) => self.wait = Some(wait),
                Check::Spent => {
                    self.left = 0;
                    let Some(rate) = self.exhausted.reduced() else {
                        return Poll::Ready(Err(Spent));
                    };
                    let min_chunk = self.min_chunk;
                    let pacer = self
                        .reduced
                        .get_or_insert_with(|| Pacer::new(rate, min_chunk));
                    ready!(pacer.poll_ready(cx));
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }

    /// Charges `len` bytes that went.
    pub(crate) fn sent(&mut self, len: usize) {
        self.account.charge(len as u64);
        self.left = self.left.saturating_sub(len as u64);
        if let Some(pacer) = &mut self.reduced {
            pacer.charge(len as u64);
        }
    }
}

impl std::fmt::Debug for QuotaGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaGate")
            .field("quota", &self.account.quota())
            .field("exhausted", &self.exhausted)
            .field("reduced", &self.reduced.is_some())
            .finish_non_exhaustive()
    }
}
