//! [`BandwidthControl`]: change shared limits while streams run.

use std::sync::Arc;

use super::Bandwidth;
use super::settings::State;

/// A handle to the shared limits of a [`RangeServeLayer`](crate::RangeServeLayer)
/// and every service made from it (or from its clones).
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
/// assert_eq!(control.active_clients(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct BandwidthControl {
    pub(crate) state: Arc<State>,
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
        self.state.client_rate()
    }

    /// Changes the rate of every client with running streams, and the default
    /// for new ones. A [policy function](crate::RangeServeLayer::policy) that sets
    /// its own client rates has them applied again at the client's next request.
    pub fn set_client_rate(&self, rate: Bandwidth) {
        self.state.set_client_rate(rate);
    }

    /// How many clients have running streams (and so hold limiter state).
    pub fn active_clients(&self) -> usize {
        self.state.clients.len()
    }
}
