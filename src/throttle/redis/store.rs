//! [`Store`]: where the budgets of limits shared beyond this process live (a
//! token bucket per key in Redis, say), and the requests and answers a limit's
//! keeper exchanges with it. How a keeper leases from it is [`Leases`](super::Leases).
//!
//! A lease is a slice of the key's budget (by default 100 ms of its rate) that
//! this process then hands out to its own streams, so the store sees one round
//! trip per slice, not one per chunk.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::fleet::Fleet;
use super::health::Health;

/// Where the budgets of shared limits live when several servers share them.
pub(crate) trait Store: Send + Sync + fmt::Debug + 'static {
    /// Takes up to `ask.want` bytes from the budget of `key`, which refills at
    /// `ask.rate` bytes per second and holds at most `ask.capacity` bytes.
    /// Gives up (an error) after the policy's `timeout`; the keeper stops
    /// waiting after twice that.
    fn take<'a>(&'a self, key: &'a str, ask: Ask) -> TakeFuture<'a>;

    /// Tells the store this replica is alive, without a lease, and answers how
    /// many replicas are (see [`Fleet`]). Gives up like [`take`](Self::take).
    fn beat(&self) -> BeatFuture<'_>;

    /// Adds `ask.debt` bytes to the counter of `key` in the current window
    /// of a quota (`ask.limit` bytes per `ask.period`, windows aligned to the
    /// epoch on the store's clock), then takes up to `ask.want` bytes more
    /// while the counter stays within the limit. Gives up like
    /// [`take`](Self::take).
    fn quota<'a>(&'a self, key: &'a str, ask: QuotaAsk) -> QuotaFuture<'a>;

    /// How leases are sized and what happens when the store fails.
    fn policy(&self) -> &StorePolicy;

    /// Whether the store is failing, shared by every limit that uses it.
    fn health(&self) -> &Health;

    /// What this replica knows of the others sharing the store.
    fn fleet(&self) -> &Fleet;
}

/// What a [`Store::take`] returns: granted bytes, or an error (unreachable, slow,
/// refused), after which the keeper falls back for a while.
pub(crate) type TakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Lease, ()>> + Send + 'a>>;

/// What a [`Store::beat`] returns: the count of live replicas, or an error.
pub(crate) type BeatFuture<'a> = Pin<Box<dyn Future<Output = Result<u32, ()>> + Send + 'a>>;

/// What a [`Store::quota`] returns: the lease, or an error.
pub(crate) type QuotaFuture<'a> = Pin<Box<dyn Future<Output = Result<QuotaLease, ()>> + Send + 'a>>;

/// One request for a quota's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaAsk {
    /// The quota's bytes per window.
    pub(crate) limit: u64,
    /// The window's length.
    pub(crate) period: Duration,
    /// Bytes to lease.
    pub(crate) want: u64,
    /// Bytes delivered in this window without a lease (beyond one, or while
    /// the store failed), added to the counter whatever the limit.
    pub(crate) debt: u64,
    /// Whether this request carries the replica's heartbeat (see [`Fleet`]).
    pub(crate) beat: bool,
}

/// A store's answer to a [`QuotaAsk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaLease {
    /// Bytes leased now (fewer than wanted: the quota is spent).
    pub(crate) granted: u64,
    /// The counter after this request: bytes delivered or leased in the window
    /// by every replica.
    pub(crate) used: u64,
    /// How long until the window ends.
    pub(crate) until_end: Duration,
    /// How many replicas are alive, this one included.
    pub(crate) replicas: u32,
}

/// One request to a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ask {
    pub(crate) rate: u64,
    pub(crate) capacity: u64,
    pub(crate) want: u64,
    /// How many of this process's streams draw from the key: replicas share a
    /// key's rate in proportion, so its streams share it evenly wherever they run.
    pub(crate) weight: u64,
    /// The lease period: a replica's fair share accrues over it.
    pub(crate) period: Duration,
    /// Whether this request carries the replica's heartbeat (see [`Fleet`]).
    pub(crate) beat: bool,
}

/// A store's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Bytes granted now (maybe fewer than needed, maybe none).
    pub(crate) granted: u64,
    /// How long until the budget holds `want` bytes again (zero if it does).
    pub(crate) wait: Duration,
    /// How many replicas are alive, this one included (0: the store cannot tell).
    pub(crate) replicas: u32,
}

/// How a keeper uses its store.
#[derive(Debug, Clone)]
pub(crate) struct StorePolicy {
    /// How much of a key's budget one lease takes, as time at its rate.
    pub(crate) lease: Duration,
    /// How long a store may take to answer before it counts as failed.
    pub(crate) timeout: Duration,
    /// How long after a failure the store is asked again.
    pub(crate) retry: Duration,
    /// What streams do meanwhile.
    pub(crate) fallback: FallbackMode,
}

/// What a limit does while its store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FallbackMode {
    /// Go on locally at `rate / replicas`; `None`: by the last count of live
    /// replicas the store reported (see [`Fleet`]), or alone before any.
    Local { replicas: Option<u32> },
    /// Grant nothing until the store answers again.
    Wait,
}
