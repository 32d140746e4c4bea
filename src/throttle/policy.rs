//! [`Policy`]: the bandwidth one request gets.

use super::quota::{Quota, QuotaExhausted};
use super::{Bandwidth, ClientKey};

/// The bandwidth policy of one request.
///
/// The layer builds one per request from its settings (the fields have the names
/// of [`RangeServeLayer`](crate::RangeServeLayer)'s builder methods) and hands it
/// to the [policy function](crate::RangeServeLayer::policy), if one is set,
/// which may read and change any part of it. A handler's
/// [`FileResponse::rate`](crate::FileResponse::rate) then replaces `rate` for its
/// response.
///
/// # Example
///
/// ```
/// use tower_range_serve::{Bandwidth, ClientKey, Policy};
///
/// let mut policy = Policy::default();
/// assert_eq!(policy.rate, Bandwidth::UNLIMITED);
/// policy.client = Some(ClientKey::from("user-42"));
/// policy.client_rate = Bandwidth::mib(16);
/// policy.max_streams_per_client = Some(8);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// The rate of each response. Unlimited by default.
    pub rate: Bandwidth,
    /// How many bytes of each response go at full speed before `rate` applies
    /// (nginx's `limit_rate_after`).
    pub rate_after: u64,
    /// Whose request it is: the responses of one client share `client_rate`
    /// and count towards `max_streams_per_client`. The layer's
    /// [`client_key`](crate::RangeServeLayer::client_key) sets it; when it is
    /// `None` after the policy function while `client_rate` or
    /// `max_streams_per_client` limits something or a `quota` applies, the request is counted under
    /// [`ClientKey::UNIDENTIFIED`].
    pub client: Option<ClientKey>,
    /// The rate the client's running responses share: those that asked for the
    /// same client rate (a tier). A request with another client rate never
    /// changes this one's; see [`throttle`](crate::throttle#tiers-one-client-several-client-rates).
    pub client_rate: Bandwidth,
    /// The most streams the client may run at once; a request beyond it gets 429
    /// Too Many Requests with `Retry-After`.
    pub max_streams_per_client: Option<usize>,
    /// The bytes the client may receive per period (see
    /// [`throttle`](crate::throttle#quotas)); `None`, the default: no quota. The
    /// client's downloads under one quota share it; a request under another
    /// quota (a tier) counts apart.
    pub quota: Option<Quota>,
    /// What a client that has spent its quota gets.
    pub quota_exhausted: QuotaExhausted,
    /// The most any response may get, whatever its own rate (a handler's
    /// [`FileResponse::rate`](crate::FileResponse::rate) included): set by a
    /// [`Restriction`](super::Restriction). Unlimited by default.
    pub(crate) rate_cap: Bandwidth,
}

impl Policy {
    /// Whether the policy limits the client's streams: a client rate or a
    /// stream cap applies.
    pub(crate) fn needs_client(&self) -> bool {
        self.client_rate.limit().is_some() || self.max_streams_per_client.is_some()
    }

    /// Whether the policy needs to know the request's client: it limits its
    /// streams, or a quota applies.
    pub(crate) fn needs_key(&self) -> bool {
        self.needs_client() || self.quota.is_some()
    }
}
