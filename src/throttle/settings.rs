//! The bandwidth settings of a layer, and the live state its clones share.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::request::Parts;

use super::clients::{Clients, TooManyStreams};
use super::gate::Throttle;
use super::shared::SharedLimit;
use super::store::Store;
use super::{Bandwidth, ClientKey, Policy};

pub(crate) type KeyFn = Arc<dyn Fn(&Parts) -> Option<ClientKey> + Send + Sync>;
pub(crate) type PolicyFn = Arc<dyn Fn(&Parts, Policy) -> Policy + Send + Sync>;

/// What a layer was configured with. Cloning shares the live [`State`].
#[derive(Clone)]
pub(crate) struct Settings {
    /// Whether any bandwidth setting was made; if not, bodies are never throttled.
    pub(crate) enabled: bool,
    pub(crate) rate: Bandwidth,
    pub(crate) rate_after: u64,
    pub(crate) max_streams: Option<usize>,
    pub(crate) retry_after: Duration,
    pub(crate) key: KeyFn,
    pub(crate) policy: Option<PolicyFn>,
    pub(crate) state: Arc<State>,
}

/// What the services of one layer share, and what [`BandwidthControl`] changes.
///
/// [`BandwidthControl`]: super::BandwidthControl
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) total: Arc<SharedLimit>,
    pub(crate) clients: Arc<Clients>,
    client_rate: AtomicU64,
}

impl State {
    pub(crate) fn client_rate(&self) -> Bandwidth {
        Bandwidth::new(self.client_rate.load(Ordering::Relaxed))
    }

    /// Shares the client and total budgets with other servers through `store`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn share(&self, store: Arc<dyn Store>) {
        self.total.share(store.clone(), "total".into());
        self.clients.share(store);
    }

    pub(crate) fn set_client_rate(&self, rate: Bandwidth) {
        self.client_rate
            .store(rate.bytes_per_second(), Ordering::Relaxed);
        self.clients.set_rate(rate);
    }
}

impl Default for SharedLimit {
    fn default() -> Self {
        SharedLimit::new(Bandwidth::UNLIMITED)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: false,
            rate: Bandwidth::UNLIMITED,
            rate_after: 0,
            max_streams: None,
            retry_after: Duration::from_secs(1),
            key: Arc::new(ClientKey::peer_ip),
            policy: None,
            state: Arc::default(),
        }
    }
}

impl Settings {
    /// The policy of a request: the layer's settings, then the policy function.
    pub(crate) fn policy(&self, parts: &Parts) -> Policy {
        let client_rate = self.state.client_rate();
        let mut policy = Policy {
            rate: self.rate,
            rate_after: self.rate_after,
            client: (self.key)(parts).map(|key| (key, client_rate)),
            max_streams: self.max_streams,
        };
        if let Some(choose) = &self.policy {
            policy = choose(parts, policy);
        }
        policy
    }

    /// Admits a response under `policy` (`rate` overrides the policy's own rate)
    /// and returns its throttle.
    pub(crate) fn admit(
        &self,
        policy: Policy,
        rate: Option<Bandwidth>,
    ) -> Result<Throttle, TooManyStreams> {
        let client = match policy.client {
            Some((key, client_rate)) => Some(self.state.clients.admit(
                key,
                client_rate,
                policy.max_streams,
            )?),
            None => None,
        };
        let rate = rate.unwrap_or(policy.rate).limit();
        let total = self.state.total.enter();
        Ok(Throttle::new(rate, policy.rate_after, client, Some(total)))
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("enabled", &self.enabled)
            .field("rate", &self.rate)
            .field("rate_after", &self.rate_after)
            .field("client_rate", &self.state.client_rate())
            .field("total_rate", &self.state.total.rate())
            .field("max_streams", &self.max_streams)
            .field("retry_after", &self.retry_after)
            .field("policy", &self.policy.is_some())
            .finish_non_exhaustive()
    }
}
