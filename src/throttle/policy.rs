//! [`Policy`]: the bandwidth one request gets, and [`ClientKey`]: whose it is.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::request::Parts;

use super::Bandwidth;

/// Identifies a client whose responses share one bandwidth.
///
/// Made from an IP address, or from any string (a user id put into the request
/// extensions by an authentication layer, an API key's name).
///
/// # Example
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use tower_range_serve::ClientKey;
///
/// let by_ip = ClientKey::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// let by_user = ClientKey::from("user-42");
/// assert_ne!(by_ip, by_user);
/// assert_eq!(by_user.to_string(), "user-42");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Ip(IpAddr),
    Name(Arc<str>),
}

impl ClientKey {
    /// The peer's IP address, from a [`SocketAddr`] request extension (the demo
    /// server and the examples insert one per connection). With axum, key by
    /// `ConnectInfo<SocketAddr>` with [`RangeServeLayer::client_key`] instead.
    ///
    /// [`RangeServeLayer::client_key`]: crate::RangeServeLayer::client_key
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_range_serve::ClientKey;
    ///
    /// let mut request = http::Request::new(());
    /// let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
    /// request.extensions_mut().insert(peer);
    /// let (parts, ()) = request.into_parts();
    /// assert_eq!(ClientKey::peer_ip(&parts), Some(ClientKey::from(peer.ip())));
    /// ```
    pub fn peer_ip(parts: &Parts) -> Option<Self> {
        parts
            .extensions
            .get::<SocketAddr>()
            .map(|addr| Self::from(addr.ip()))
    }
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        Self(Repr::Ip(ip))
    }
}

impl From<&str> for ClientKey {
    fn from(name: &str) -> Self {
        Self(Repr::Name(name.into()))
    }
}

impl From<String> for ClientKey {
    fn from(name: String) -> Self {
        Self(Repr::Name(name.into()))
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Ip(ip) => ip.fmt(f),
            Repr::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}

/// The bandwidth policy of one request.
///
/// The layer builds one per request from its settings
/// ([`rate`](crate::RangeServeLayer::rate),
/// [`client_rate`](crate::RangeServeLayer::client_rate), …) and hands it to the
/// policy function, if one is set, which may change any part of it
/// ([`RangeServeLayer::policy`](crate::RangeServeLayer::policy)).
///
/// # Example
///
/// ```
/// use tower_range_serve::{Bandwidth, ClientKey, Policy};
///
/// let premium = Policy::default()
///     .rate(Bandwidth::mib(8))
///     .client(ClientKey::from("user-42"), Bandwidth::mib(16))
///     .max_streams(8);
/// # let _ = premium;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Policy {
    pub(crate) rate: Bandwidth,
    pub(crate) rate_after: u64,
    pub(crate) client: Option<(ClientKey, Bandwidth)>,
    pub(crate) max_streams: Option<usize>,
}

impl Policy {
    /// The rate of each response of this request. Unlimited by default.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, Policy};
    ///
    /// let policy = Policy::default().rate(Bandwidth::kib(256));
    /// # let _ = policy;
    /// ```
    pub fn rate(mut self, rate: Bandwidth) -> Self {
        self.rate = rate;
        self
    }

    /// How many bytes of the response go at full speed before
    /// [`rate`](Self::rate) applies (nginx's `limit_rate_after`). Zero by default.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, Policy};
    ///
    /// // A fast start for video players, then 1 MiB/s.
    /// let policy = Policy::default().rate(Bandwidth::mib(1)).rate_after(4 << 20);
    /// # let _ = policy;
    /// ```
    pub fn rate_after(mut self, bytes: u64) -> Self {
        self.rate_after = bytes;
        self
    }

    /// The client the request belongs to and the bandwidth all of that client's
    /// responses share. An unlimited `rate` still counts the client's streams for
    /// [`max_streams`](Self::max_streams).
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, ClientKey, Policy};
    ///
    /// let policy = Policy::default().client(ClientKey::from("user-42"), Bandwidth::mib(1));
    /// # let _ = policy;
    /// ```
    pub fn client(mut self, key: ClientKey, rate: Bandwidth) -> Self {
        self.client = Some((key, rate));
        self
    }

    /// No client: no shared per-client limit and no stream count.
    ///
    /// ```
    /// use tower_range_serve::Policy;
    ///
    /// let policy = Policy::default().no_client();
    /// # let _ = policy;
    /// ```
    pub fn no_client(mut self) -> Self {
        self.client = None;
        self
    }

    /// The most concurrent streams the client may have; a request beyond it gets
    /// 429 Too Many Requests with `Retry-After`. Needs a [`client`](Self::client).
    ///
    /// ```
    /// use tower_range_serve::Policy;
    ///
    /// let policy = Policy::default().max_streams(4);
    /// # let _ = policy;
    /// ```
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.max_streams = Some(streams);
        self
    }
}
