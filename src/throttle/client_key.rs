//! [`ClientKey`]: whose request it is, for limits shared per client.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::request::Parts;

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
    Unidentified,
}

impl ClientKey {
    /// The client of requests for which no key could be found while a client
    /// limit or a stream cap applies. Such requests are not let through
    /// unlimited: they all share this one client's rate and stream count (and,
    /// with the `tracing` feature, the first one logs a warning). Displayed as
    /// `unidentified`.
    ///
    /// ```
    /// use tower_range_serve::ClientKey;
    ///
    /// assert_eq!(ClientKey::UNIDENTIFIED.to_string(), "unidentified");
    /// assert_ne!(ClientKey::UNIDENTIFIED, ClientKey::from("unidentified"));
    /// ```
    pub const UNIDENTIFIED: ClientKey = ClientKey(Repr::Unidentified);

    /// The peer's IP address, from a [`SocketAddr`] request extension (hyper-util
    /// servers, the demo server and the examples insert one per connection) or,
    /// with the `axum` feature, from axum's `ConnectInfo<SocketAddr>` (served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`). The default
    /// [client key](crate::RangeServeLayer::client_key).
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
        peer_addr(parts).map(|addr| Self::from(addr.ip()))
    }
}

/// The peer's address, from a [`SocketAddr`] request extension or (with the
/// `axum` feature) axum's `ConnectInfo<SocketAddr>`.
pub(crate) fn peer_addr(parts: &Parts) -> Option<SocketAddr> {
    let extensions = &parts.extensions;
    let addr = extensions.get::<SocketAddr>();
    #[cfg(feature = "axum")]
    let addr = addr.or_else(|| {
        let info = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()?;
        Some(&info.0)
    });
    addr.copied()
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
            Repr::Unidentified => f.write_str("unidentified"),
        }
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}
