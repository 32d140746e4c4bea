//! [`Restriction`]: limits a request carries in its extensions, which can only
//! tighten the policy the layer gives it.

use super::{Bandwidth, ClientKey, Policy};

/// Limits that a request carries in its extensions, applied to its [`Policy`]
/// after the layer's [policy function](crate::RangeServeLayer::policy).
///
/// Something in front of the layer that knows more about the request than the
/// route does (a signed link's claims, an authentication layer) inserts one. It
/// may **set** the client key, and may only **lower** rates and stream caps:
///
/// | field | effect on the policy |
/// |---|---|
/// | `client` | replaces [`Policy::client`]: the request's streams share the limits of this client |
/// | `rate` | the lower of the two; an unlimited route rate becomes this one. It also caps a handler's own [`FileResponse::rate`](crate::FileResponse::rate) |
/// | `client_rate` | the lower of the two; an unlimited route client rate becomes this one |
/// | `max_streams_per_client` | the lower of the two; no route cap becomes this one |
///
/// Unset fields (unlimited rates, `None`) change nothing, so a restriction can
/// never lift a limit the operator set: the total rate, the route's rates and
/// its stream cap stay in force. Setting the client does choose whose client
/// budget the request draws from, which is the point (a user's links share
/// that user's budget whichever address they come from); only give that power
/// to code you trust to name users, like the application that signs links.
///
/// # Example
///
/// ```
/// use tower_range_serve::{Bandwidth, ClientKey, Policy};
/// use tower_range_serve::throttle::Restriction;
///
/// let restriction = Restriction::new()
///     .client(ClientKey::from("user-42"))
///     .rate(Bandwidth::mib(2))
///     .max_streams_per_client(4);
///
/// let mut policy = Policy::default(); // an unlimited route
/// policy.rate = Bandwidth::mib(1);
/// restriction.apply(&mut policy);
/// assert_eq!(policy.client, Some(ClientKey::from("user-42")));
/// assert_eq!(policy.rate, Bandwidth::mib(1)); // never raised
/// assert_eq!(policy.max_streams_per_client, Some(4));
///
/// // Put into a request's extensions, the layer applies it.
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(restriction);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restriction {
    /// The client whose limits the request shares. `None` keeps the policy's.
    pub client: Option<ClientKey>,
    /// The most each response may get. Unlimited changes nothing.
    pub rate: Bandwidth,
    /// The most all running responses of the client may share. Unlimited
    /// changes nothing.
    pub client_rate: Bandwidth,
    /// The most streams the client may run at once. `None` changes nothing.
    pub max_streams_per_client: Option<usize>,
}

impl Restriction {
    /// A restriction that changes nothing.
    ///
    /// ```
    /// use tower_range_serve::Policy;
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// let mut policy = Policy::default();
    /// Restriction::new().apply(&mut policy);
    /// assert_eq!(policy, Policy::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the client key.
    ///
    /// ```
    /// use tower_range_serve::ClientKey;
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// let restriction = Restriction::new().client("user-42");
    /// assert_eq!(restriction.client, Some(ClientKey::from("user-42")));
    /// ```
    #[must_use]
    pub fn client(mut self, client: impl Into<ClientKey>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// Caps the rate of each response.
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// assert_eq!(Restriction::new().rate(Bandwidth::kib(64)).rate, Bandwidth::kib(64));
    /// ```
    #[must_use]
    pub fn rate(mut self, rate: Bandwidth) -> Self {
        self.rate = rate;
        self
    }

    /// Caps the rate the client's responses share.
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// let restriction = Restriction::new().client_rate(Bandwidth::mib(2));
    /// assert_eq!(restriction.client_rate, Bandwidth::mib(2));
    /// ```
    #[must_use]
    pub fn client_rate(mut self, rate: Bandwidth) -> Self {
        self.client_rate = rate;
        self
    }

    /// Caps the client's concurrent streams.
    ///
    /// ```
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// assert_eq!(Restriction::new().max_streams_per_client(2).max_streams_per_client, Some(2));
    /// ```
    #[must_use]
    pub fn max_streams_per_client(mut self, max: usize) -> Self {
        self.max_streams_per_client = Some(max);
        self
    }

    /// Both restrictions at once: `other`'s client if it has one (else this
    /// one's), and the lower of each limit.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, ClientKey};
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// let outer = Restriction::new().client("ip-tier").rate(Bandwidth::kib(64));
    /// let link = Restriction::new().client("user-42").rate(Bandwidth::kib(256));
    /// let both = outer.and(link);
    /// assert_eq!(both.client, Some(ClientKey::from("user-42")));
    /// assert_eq!(both.rate, Bandwidth::kib(64));
    /// ```
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            client: other.client.or(self.client),
            rate: self.rate.at_most(other.rate),
            client_rate: self.client_rate.at_most(other.client_rate),
            max_streams_per_client: min_cap(
                self.max_streams_per_client,
                other.max_streams_per_client,
            ),
        }
    }

    /// Applies the restriction to `policy`: sets the client, lowers the rest
    /// (see the table above).
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, Policy};
    /// use tower_range_serve::throttle::Restriction;
    ///
    /// let mut policy = Policy::default();
    /// policy.client_rate = Bandwidth::mib(4);
    /// Restriction::new().client_rate(Bandwidth::mib(8)).apply(&mut policy);
    /// assert_eq!(policy.client_rate, Bandwidth::mib(4));
    /// Restriction::new().client_rate(Bandwidth::mib(1)).apply(&mut policy);
    /// assert_eq!(policy.client_rate, Bandwidth::mib(1));
    /// ```
    pub fn apply(&self, policy: &mut Policy) {
        if let Some(client) = &self.client {
            policy.client = Some(client.clone());
        }
        policy.rate = policy.rate.at_most(self.rate);
        policy.rate_cap = policy.rate_cap.at_most(self.rate);
        policy.client_rate = policy.client_rate.at_most(self.client_rate);
        policy.max_streams_per_client =
            min_cap(policy.max_streams_per_client, self.max_streams_per_client);
    }
}

/// The lower of two caps, `None` being no cap.
fn min_cap(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restriction_never_raises_a_limit() {
        let mut policy = Policy {
            rate: Bandwidth::kib(100),
            client_rate: Bandwidth::kib(200),
            max_streams_per_client: Some(2),
            ..Policy::default()
        };
        Restriction::new()
            .rate(Bandwidth::kib(500))
            .client_rate(Bandwidth::kib(500))
            .max_streams_per_client(9)
            .apply(&mut policy);
        assert_eq!(policy.rate, Bandwidth::kib(100));
        assert_eq!(policy.client_rate, Bandwidth::kib(200));
        assert_eq!(policy.max_streams_per_client, Some(2));
        assert_eq!(policy.rate_cap, Bandwidth::kib(500));
    }

    #[test]
    fn a_restriction_sets_what_the_route_left_unlimited() {
        let mut policy = Policy::default();
        Restriction::new()
            .client("u")
            .rate(Bandwidth::kib(5))
            .client_rate(Bandwidth::kib(7))
            .apply(&mut policy);
        assert_eq!(policy.client, Some(ClientKey::from("u")));
        assert_eq!(policy.rate, Bandwidth::kib(5));
        assert_eq!(policy.client_rate, Bandwidth::kib(7));
        assert_eq!(policy.max_streams_per_client, None);
    }
}
