//! [`BandwidthControl`]: the limits that the responses of a layer share (one per
//! client, one in total), and the handle to change them while streams run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Bandwidth;
use super::quota::Quotas;
#[cfg(feature = "redis")]
use super::redis::Store;
use super::shared::{Clients, SharedLimit};

/// The shared limits of a [`RangeServeLayer`](crate::RangeServeLayer): the rate
/// each client's responses share, the total rate of all of them, the table
/// of clients with running streams, and the clients' quota accounts (see
/// [`throttle`](crate::throttle#quotas)).
///
/// A layer makes its own when it is configured: each call of
/// [`client_rate`](crate::RangeServeLayer::client_rate),
/// [`total_rate`](crate::RangeServeLayer::total_rate) or
/// [`redis`](crate::RangeServeLayer::redis) gives the layer new limits, so a
/// clone configured differently never changes the original. Clones of a layer
/// (and every service made from them, say one per route under axum's
/// `Router::layer`) share the limits they were cloned with, as clones of tower's
/// `GlobalConcurrencyLimitLayer` share their semaphore. To share limits between
/// layers configured differently, give one layer's control to the other with
/// [`with_bandwidth_control`](crate::RangeServeLayer::with_bandwidth_control).
///
/// Running streams follow a change from their next chunk on: within about 100 ms
/// of the old budget, well under a second.
///
/// # Example
///
/// ```
/// use tower_range_serve::{Bandwidth, RangeServeLayer};
///
/// let layer = RangeServeLayer::new().total_rate(Bandwidth::mib(100));
/// let control = layer.bandwidth_control();
///
/// // Later, from an admin endpoint or a signal handler:
/// control.set_total_rate(Bandwidth::mib(50));
/// control.set_client_rate(Bandwidth::kib(512));
/// assert_eq!(control.total_rate(), Bandwidth::mib(50));
/// assert_eq!(layer.bandwidth_control().total_rate(), Bandwidth::mib(50));
/// assert_eq!(control.active_clients(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct BandwidthControl {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    total: Arc<SharedLimit>,
    clients: Arc<Clients>,
    /// The clients' quota accounts.
    quotas: Quotas,
    client_rate: AtomicU64,
    /// Whether a request with no client key was already reported.
    unidentified_seen: AtomicBool,
    /// Where the budgets live when several servers share them.
    #[cfg(feature = "redis")]
    store: Option<Arc<dyn Store>>,
}

impl Default for SharedLimit {
    fn default() -> Self {
        SharedLimit::new(Bandwidth::UNLIMITED)
    }
}

impl BandwidthControl {
    /// The limit of all responses together.
    pub fn total_rate(&self) -> Bandwidth {
        self.state.total.rate()
    }

    /// Changes the limit of all responses together; unlimited lifts it.
    pub fn set_total_rate(&self, rate: Bandwidth) {
        self.state.total.set_rate(rate);
    }

    /// The default rate each client's responses share.
    pub fn client_rate(&self) -> Bandwidth {
        Bandwidth::new(self.state.client_rate.load(Ordering::Relaxed))
    }

    /// Changes the rate of every client with running streams (each of its
    /// tiers, see [`throttle`](crate::throttle#tiers-one-client-several-client-rates)),
    /// and the default for new ones. A [policy function](crate::RangeServeLayer::policy)
    /// that sets its own client rates has them applied to the client's next
    /// requests.
    pub fn set_client_rate(&self, rate: Bandwidth) {
        self.state
            .client_rate
            .store(rate.bytes_per_second(), Ordering::Relaxed);
        self.state.clients.set_rate(rate);
    }

    /// How many clients have running streams (and so hold limiter state).
    pub fn active_clients(&self) -> usize {
        self.state.clients.len()
    }

    /// New limits with these rates, sharing no state with any other.
    fn made(
        client_rate: Bandwidth,
        total_rate: Bandwidth,
        #[cfg(feature = "redis")] store: Option<Arc<dyn Store>>,
    ) -> Self {
        #[cfg(feature = "redis")]
        let (total, clients) = (
            SharedLimit::shared_by(total_rate, store.clone().map(|s| (s, "total".into()))),
            store.clone().map(Clients::shared_by).unwrap_or_default(),
        );
        #[cfg(not(feature = "redis"))]
        let (total, clients) = (SharedLimit::new(total_rate), Clients::default());
        Self {
            state: Arc::new(State {
                total: Arc::new(total),
                clients: Arc::new(clients),
                quotas: Quotas::new(
                    Default::default(),
                    #[cfg(feature = "redis")]
                    store.clone(),
                ),
                client_rate: AtomicU64::new(client_rate.bytes_per_second()),
                unidentified_seen: AtomicBool::new(false),
                #[cfg(feature = "redis")]
                store,
            }),
        }
    }

    /// New limits with these rates and the store of `self`, if any.
    fn remade(&self, client_rate: Bandwidth, total_rate: Bandwidth) -> Self {
        Self::made(
            client_rate,
            total_rate,
            #[cfg(feature = "redis")]
            self.state.store.clone(),
        )
    }

    /// New limits with `rate` per client.
    pub(crate) fn with_client_rate(&self, rate: Bandwidth) -> Self {
        self.remade(rate, self.total_rate())
    }

    /// New limits with `rate` in total.
    pub(crate) fn with_total_rate(&self, rate: Bandwidth) -> Self {
        self.remade(self.client_rate(), rate)
    }

    /// New limits, with the same rates, whose budgets live in `store`.
    #[cfg(feature = "redis")]
    pub(crate) fn with_store(&self, store: Arc<dyn Store>) -> Self {
        Self::made(self.client_rate(), self.total_rate(), Some(store))
    }

    pub(crate) fn total(&self) -> &Arc<SharedLimit> {
        &self.state.total
    }

    pub(crate) fn clients(&self) -> &Arc<Clients> {
        &self.state.clients
    }

    pub(crate) fn quotas(&self) -> &Quotas {
        &self.state.quotas
    }

    /// Whether this is the first request with no client key under these limits.
    pub(crate) fn first_unidentified(&self) -> bool {
        !self.state.unidentified_seen.swap(true, Ordering::Relaxed)
    }
}
