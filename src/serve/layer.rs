use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use tower_layer::Layer;

use super::RangeServe;
use crate::body::DEFAULT_CHUNK_SIZE;
use crate::lifecycle::{self, Observer, Shutdown};
use crate::throttle::{Bandwidth, BandwidthControl, ClientKey, Policy, Settings};

/// Settings shared by a layer and the services it makes.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) chunk_size: usize,
    pub(crate) max_ranges: NonZeroUsize,
    pub(crate) bandwidth: Settings,
    pub(crate) lifecycle: lifecycle::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_ranges: NonZeroUsize::new(DEFAULT_MAX_RANGES).expect("non-zero"),
            bandwidth: Settings::default(),
            lifecycle: lifecycle::Settings::default(),
        }
    }
}

/// The default cap on the number of ranges in one request: 100.
pub const DEFAULT_MAX_RANGES: usize = 100;

/// Applies [`RangeServe`] to a service: file-backed responses become range-aware,
/// conditional, seek-based downloads.
///
/// See the [crate documentation](crate) for what it answers, and
/// [`throttle`](crate::throttle) for bandwidth policy. Clones share their
/// bandwidth state (client limits, total limit); separate layers (say, one per
/// route) have their own.
///
/// # Example
///
/// ```
/// use tower_range_serve::RangeServeLayer;
///
/// let layer = RangeServeLayer::new()
///     .chunk_size(256 * 1024)
///     .max_ranges(16);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RangeServeLayer {
    config: Config,
}

impl RangeServeLayer {
    /// A layer with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes are read from the source at once, and so the largest body
    /// frame. Defaults to 64 KiB ([`DEFAULT_CHUNK_SIZE`]); values below 1 are
    /// treated as 1.
    ///
    /// The body holds about one chunk per stream: the next chunk is read ahead,
    /// while one is sent, only when reads wait for the disk. The
    /// server's buffers come on top: with hyper, its HTTP/1 write buffer
    /// (`http1().max_buf_size`, about 400 KiB by default) dominates the memory of a
    /// stalled client; 8 KiB bounds it (see BENCHMARKS.md).
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new().chunk_size(1024 * 1024);
    /// # let _ = layer;
    /// ```
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.config.chunk_size = bytes.max(1);
        self
    }

    /// The largest number of ranges one request may ask for. A request with more
    /// is answered as if it had no `Range` header: 200 with the whole
    /// representation (as nginx's `max_ranges` does). Defaults to 100
    /// ([`DEFAULT_MAX_RANGES`]); values below 1 are treated as 1, so a single range
    /// is always served.
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// // Only single-range requests get a 206.
    /// let layer = RangeServeLayer::new().max_ranges(1);
    /// # let _ = layer;
    /// ```
    pub fn max_ranges(mut self, ranges: usize) -> Self {
        self.config.max_ranges = NonZeroUsize::new(ranges).unwrap_or(NonZeroUsize::MIN);
        self
    }
}

/// Bandwidth policy. See [`throttle`](crate::throttle) for the semantics.
impl RangeServeLayer {
    /// The rate of each response. Unlimited by default.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().rate(Bandwidth::kib(256));
    /// # let _ = layer;
    /// ```
    pub fn rate(mut self, rate: Bandwidth) -> Self {
        self.config.bandwidth.rate = rate;
        self.config.bandwidth.enabled = true;
        self
    }

    /// How many bytes of each response go at full speed before
    /// [`rate`](Self::rate) applies (nginx's `limit_rate_after`). Zero by default.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().rate(Bandwidth::mib(1)).rate_after(8 << 20);
    /// # let _ = layer;
    /// ```
    pub fn rate_after(mut self, bytes: u64) -> Self {
        self.config.bandwidth.rate_after = bytes;
        self.config.bandwidth.enabled = true;
        self
    }

    /// The rate all running responses of one client share. Unlimited by default.
    /// Clients are told apart by [`client_key`](Self::client_key).
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().client_rate(Bandwidth::mib(1));
    /// # let _ = layer;
    /// ```
    pub fn client_rate(mut self, rate: Bandwidth) -> Self {
        self.config.bandwidth.state.set_client_rate(rate);
        self.config.bandwidth.enabled = true;
        self
    }

    /// Shares the client and total limits with other servers (replicas behind a
    /// load balancer) through Redis: every replica draws each client's rate, and
    /// the total, from one budget. See [`RedisLimits`](crate::throttle::RedisLimits)
    /// for leases, precision and what happens when Redis fails. The per-response
    /// [`rate`](Self::rate) stays local. Requires the `redis` feature.
    ///
    /// ```
    /// use tower_range_serve::throttle::RedisLimits;
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new()
    ///     .client_rate(Bandwidth::mib(1))
    ///     .redis(RedisLimits::new("redis://127.0.0.1:6379")?);
    /// # let _ = layer;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis(self, limits: crate::throttle::RedisLimits) -> Self {
        self.config.bandwidth.state.share(Arc::new(limits));
        self
    }

    /// How a request's client is found. Defaults to [`ClientKey::peer_ip`], the IP
    /// of a `SocketAddr` request extension. Requests without a key have no client
    /// limit and no stream count: with axum's `into_make_service_with_connect_info`,
    /// key by `ConnectInfo<SocketAddr>` here, since axum does not insert a plain
    /// `SocketAddr`. Middleware that puts the key into the extensions must run
    /// before this layer.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, ClientKey, RangeServeLayer};
    ///
    /// /// Put into the request extensions by an authentication layer.
    /// #[derive(Clone)]
    /// struct UserId(String);
    ///
    /// let layer = RangeServeLayer::new()
    ///     .client_rate(Bandwidth::mib(2))
    ///     .client_key(|parts| {
    ///         let user = parts.extensions.get::<UserId>()?;
    ///         Some(ClientKey::from(user.0.as_str()))
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn client_key<F>(mut self, key: F) -> Self
    where
        F: Fn(&Parts) -> Option<ClientKey> + Send + Sync + 'static,
    {
        self.config.bandwidth.key = Arc::new(key);
        self.config.bandwidth.enabled = true;
        self
    }

    /// The most streams one client may run at once; beyond it, 429 with
    /// `Retry-After` (see [`retry_after`](Self::retry_after)). Unlimited by default.
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new().max_streams_per_client(4);
    /// # let _ = layer;
    /// ```
    pub fn max_streams_per_client(mut self, streams: usize) -> Self {
        self.config.bandwidth.max_streams = Some(streams);
        self.config.bandwidth.enabled = true;
        self
    }

    /// The `Retry-After` of a 429 for too many streams. Defaults to one second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new()
    ///     .max_streams_per_client(2)
    ///     .retry_after(Duration::from_secs(10));
    /// # let _ = layer;
    /// ```
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.config.bandwidth.retry_after = after;
        self
    }

    /// The rate of all responses of this layer (and its clones) together.
    /// Unlimited by default.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().total_rate(Bandwidth::mib(100));
    /// # let _ = layer;
    /// ```
    pub fn total_rate(mut self, rate: Bandwidth) -> Self {
        self.config.bandwidth.state.total.set_rate(rate);
        self.config.bandwidth.enabled = true;
        self
    }

    /// Chooses the policy of each request. The function gets the request's head
    /// and the policy the layer's settings give, and returns the one to apply.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, ClientKey, Policy, RangeServeLayer};
    ///
    /// #[derive(Clone)]
    /// enum Tier {
    ///     Free,
    ///     Paid { user: String },
    /// }
    ///
    /// let layer = RangeServeLayer::new()
    ///     .client_rate(Bandwidth::kib(256)) // the free tier, per IP
    ///     .policy(|parts, policy: Policy| match parts.extensions.get::<Tier>() {
    ///         Some(Tier::Paid { user }) => policy
    ///             .client(ClientKey::from(user.as_str()), Bandwidth::mib(8))
    ///             .max_streams(16),
    ///         Some(Tier::Free) | None => policy.max_streams(2),
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn policy<F>(mut self, choose: F) -> Self
    where
        F: Fn(&Parts, Policy) -> Policy + Send + Sync + 'static,
    {
        self.config.bandwidth.policy = Some(Arc::new(choose));
        self.config.bandwidth.enabled = true;
        self
    }

    /// A handle to change the shared limits of this layer while it serves.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().total_rate(Bandwidth::mib(10));
    /// let control = layer.bandwidth_control();
    /// control.set_total_rate(Bandwidth::mib(20));
    /// ```
    pub fn bandwidth_control(&self) -> BandwidthControl {
        BandwidthControl {
            state: self.config.bandwidth.state.clone(),
        }
    }
}

/// Lifecycle. See [`lifecycle`](crate::lifecycle).
impl RangeServeLayer {
    /// Tells `observer` when downloads start, progress and end.
    ///
    /// ```
    /// use tower_range_serve::lifecycle::{Download, End, Observer};
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// struct Log;
    ///
    /// impl Observer for Log {
    ///     fn end(&self, download: &Download, end: &End) {
    ///         println!("{} {:?} after {} bytes", download.path, end.outcome, end.sent);
    ///     }
    /// }
    ///
    /// let layer = RangeServeLayer::new().observer(Log);
    /// # let _ = layer;
    /// ```
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.config
            .lifecycle
            .set_observer(std::sync::Arc::new(observer));
        self
    }

    /// How often, at most, an observer hears of a download's progress.
    /// Defaults to one second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new().progress_interval(Duration::from_millis(250));
    /// # let _ = layer;
    /// ```
    pub fn progress_interval(mut self, every: Duration) -> Self {
        self.config.lifecycle.progress_interval = every;
        self
    }

    /// A handle to shut this layer (and its clones' services) down gracefully.
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new();
    /// let shutdown = layer.shutdown_handle();
    /// assert!(!shutdown.is_shutting_down());
    /// ```
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            state: self.config.lifecycle.shutdown.clone(),
        }
    }
}

impl<S> Layer<S> for RangeServeLayer {
    type Service = RangeServe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RangeServe::from_config(inner, self.config.clone())
    }
}
