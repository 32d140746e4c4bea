use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use tower_layer::Layer;

use super::{KeySet, SignedLinks};
use crate::throttle::client_key::peer_addr;

pub(crate) type IpFn = Arc<dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync>;

/// The default clock-skew allowance: 30 seconds.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Applies [`SignedLinks`] to a service: every request needs a valid signed
/// link, and the link's claims become its bandwidth policy.
///
/// Put it in front of (outside) [`RangeServeLayer`](crate::RangeServeLayer)
/// and [`ServeDir`](crate::ServeDir) (or `ServeObjects`), so that it sees the
/// path they resolve. See the [module documentation](super) for the format
/// and the answers.
///
/// # Example
///
/// ```
/// use tower::Layer;
/// use tower_range_serve::signed::{KeySet, SignedLinksLayer, SigningKey};
/// use tower_range_serve::{RangeServeLayer, ServeDir};
///
/// let key = SigningKey::new("k1", [7u8; 32]).unwrap();
/// let service = SignedLinksLayer::new(KeySet::new(key))
///     .layer(RangeServeLayer::new().layer(ServeDir::new("files")));
/// # let _ = service;
/// ```
#[derive(Clone)]
#[must_use]
pub struct SignedLinksLayer {
    pub(crate) keys: Arc<KeySet>,
    pub(crate) clock_skew: Duration,
    pub(crate) client_ip: IpFn,
}

impl SignedLinksLayer {
    /// A layer verifying links with `keys` (a [`KeySet`], or one
    /// [`SigningKey`](super::SigningKey)).
    pub fn new(keys: impl Into<KeySet>) -> Self {
        Self {
            keys: Arc::new(keys.into()),
            clock_skew: DEFAULT_CLOCK_SKEW,
            client_ip: Arc::new(|parts| peer_addr(parts).map(|addr| addr.ip())),
        }
    }

    /// How far this server's clock may be from the minter's: a link is
    /// accepted from `nbf − skew` until `exp + skew`. Defaults to
    /// [`DEFAULT_CLOCK_SKEW`] (30 seconds); whole seconds count.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::signed::{SignedLinksLayer, SigningKey};
    ///
    /// let layer = SignedLinksLayer::new(SigningKey::new("k1", [7u8; 32]).unwrap())
    ///     .clock_skew(Duration::ZERO);
    /// # let _ = layer;
    /// ```
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// How to find the client address an `ip` claim is checked against.
    /// Defaults to the peer address (a `SocketAddr` extension, or with the
    /// `axum` feature axum's `ConnectInfo<SocketAddr>`). Behind a reverse
    /// proxy, read the address the proxy vouches for; a link with an `ip`
    /// claim is refused when this finds none.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use tower_range_serve::signed::{SignedLinksLayer, SigningKey};
    ///
    /// let layer = SignedLinksLayer::new(SigningKey::new("k1", [7u8; 32]).unwrap())
    ///     .client_ip(|parts| {
    ///         let value = parts.headers.get("x-real-ip")?.to_str().ok()?;
    ///         value.parse::<IpAddr>().ok()
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn client_ip<F>(mut self, find: F) -> Self
    where
        F: Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.client_ip = Arc::new(find);
        self
    }
}

impl<S> Layer<S> for SignedLinksLayer {
    type Service = SignedLinks<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignedLinks::from_layer(inner, self.clone())
    }
}

impl fmt::Debug for SignedLinksLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedLinksLayer")
            .field("keys", &self.keys)
            .field("clock_skew", &self.clock_skew)
            .finish_non_exhaustive()
    }
}
