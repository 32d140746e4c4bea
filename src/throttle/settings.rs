//! The bandwidth settings of a layer: plain values, and the shared limits
//! ([`BandwidthControl`]) that were made for them.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use super::quota::{Account, Quota, QuotaExhausted, QuotaGate};
use super::shared::TooManyStreams;
use super::stream::Throttle;
use super::{Bandwidth, BandwidthControl, ClientKey, Policy, Restriction};

pub(crate) type KeyFn = Arc<dyn Fn(&Parts) -> Option<ClientKey> + Send + Sync>;
pub(crate) type PolicyFn = Arc<dyn Fn(&Parts, &mut Policy) + Send + Sync>;

/// The default of [`RangeServeLayer::min_throttled_chunk`](crate::RangeServeLayer::min_throttled_chunk): 16 KiB.
pub(crate) const DEFAULT_MIN_THROTTLED_CHUNK: u64 = 16 * 1024;

/// What a layer was configured with.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) rate: Bandwidth,
    pub(crate) rate_after: u64,
    pub(crate) max_streams_per_client: Option<usize>,
    pub(crate) quota: Option<Quota>,
    pub(crate) quota_exhausted: QuotaExhausted,
    /// The smallest chunk a response paced by its own rate sends.
    pub(crate) min_throttled_chunk: u64,
    pub(crate) key: KeyFn,
    pub(crate) policy: Option<PolicyFn>,
    pub(crate) control: BandwidthControl,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate: Bandwidth::UNLIMITED,
            rate_after: 0,
            max_streams_per_client: None,
            quota: None,
            quota_exhausted: QuotaExhausted::End,
            min_throttled_chunk: DEFAULT_MIN_THROTTLED_CHUNK,
            key: Arc::new(ClientKey::peer_ip),
            policy: None,
            control: BandwidthControl::default(),
        }
    }
}

impl Settings {
    /// The policy of a request: the layer's settings, then the policy function,
    /// then the request's [`Restriction`], if any.
    /// A policy that limits clients but found none counts the request under
    /// [`ClientKey::UNIDENTIFIED`] rather than letting it through unlimited.
    pub(crate) fn policy(&self, parts: &Parts) -> Policy {
        let mut policy = Policy {
            rate: self.rate,
            rate_after: self.rate_after,
            client: (self.key)(parts),
            client_rate: self.control.client_rate(),
            max_streams_per_client: self.max_streams_per_client,
            quota: self.quota,
            quota_exhausted: self.quota_exhausted,
            rate_cap: Bandwidth::UNLIMITED,
        };
        if let Some(choose) = &self.policy {
            choose(parts, &mut policy);
        }
        if let Some(restriction) = parts.extensions.get::<Restriction>() {
            restriction.apply(&mut policy);
        }
        if policy.client.is_none() && policy.needs_key() {
            if self.control.first_unidentified() {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    path = parts.uri.path(),
                    "no client key for a request under a client limit: requests without \
                     one share the limits of one client (ClientKey::UNIDENTIFIED); set \
                     RangeServeLayer::client_key"
                );
            }
            policy.client = Some(ClientKey::UNIDENTIFIED);
        }
        policy
    }

    /// Admits a response under `policy` (`rate` overrides the policy's own
    /// rate). `None` when no limit applies to it: the body then goes unthrottled.
    pub(crate) fn admit(
        &self,
        policy: Policy,
        rate: Option<Bandwidth>,
    ) -> Result<Option<Throttle>, TooManyStreams> {
        let rate = rate.unwrap_or(policy.rate).at_most(policy.rate_cap).limit();
        let client = match policy.client {
            Some(key) if policy.needs_client() => Some(self.control.clients().admit(
                key,
                policy.client_rate,
                policy.max_streams_per_client,
            )?),
            _ => None,
        };
        let total = self.control.total();
        let total = total.rate().limit().map(|_| total.enter());
        if rate.is_none() && client.is_none() && total.is_none() {
            return Ok(None);
        }
        let min_chunk = self.min_throttled_chunk;
        Ok(Some(Throttle::new(
            rate,
            policy.rate_after,
            min_chunk,
            client,
            total,
        )))
    }

    /// The account of the request's client under its quota, if one applies.
    pub(crate) fn quota_account(&self, policy: &Policy) -> Option<std::sync::Arc<Account>> {
        let quota = policy.quota?;
        let client = policy.client.as_ref().unwrap_or(&ClientKey::UNIDENTIFIED);
        Some(self.control.quotas().account(client, quota))
    }

    /// The gate of a download on `account`.
    pub(crate) fn quota_gate(
        &self,
        account: std::sync::Arc<Account>,
        policy: &Policy,
    ) -> QuotaGate {
        QuotaGate::new(account, policy.quota_exhausted, self.min_throttled_chunk)
    }

    /// Whether `policy` would admit one more stream now, without counting it
    /// (`HEAD` gets the status `GET` would get).
    pub(crate) fn would_admit(&self, policy: &Policy) -> bool {
        match (&policy.client, policy.max_streams_per_client) {
            (Some(key), Some(max)) => self.control.clients().streams(key) < max,
            _ => true,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("rate", &self.rate)
            .field("rate_after", &self.rate_after)
            .field("client_rate", &self.control.client_rate())
            .field("total_rate", &self.control.total_rate())
            .field("max_streams_per_client", &self.max_streams_per_client)
            .field("quota", &self.quota)
            .field("quota_exhausted", &self.quota_exhausted)
            .field("policy", &self.policy.is_some())
            .finish_non_exhaustive()
    }
}
