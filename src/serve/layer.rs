use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use tower_layer::Layer;

use super::RangeServe;
use crate::lifecycle::{self, Observer, Shutdown};
use crate::source::{DEFAULT_CHUNK_SIZE, DEFAULT_READ_AHEAD};
use crate::throttle::quota::{Quota, QuotaExhausted};
use crate::throttle::{Bandwidth, BandwidthControl, ClientKey, Policy, Settings};

/// Settings shared by a layer and the services it makes.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) chunk_size: usize,
    /// The read-ahead budget of each download.
    pub(crate) read_ahead: usize,
    pub(crate) max_ranges: NonZeroUsize,
    /// The `Retry-After` of a 429 (too many streams) or a 503 (shutting down).
    pub(crate) retry_after: Duration,
    pub(crate) bandwidth: Settings,
    pub(crate) lifecycle: lifecycle::Settings,
    #[cfg(feature = "digest")]
    pub(crate) digest: crate::digest::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            read_ahead: DEFAULT_READ_AHEAD,
            max_ranges: NonZeroUsize::new(DEFAULT_MAX_RANGES).expect("non-zero"),
            retry_after: Duration::from_secs(1),
            bandwidth: Settings::default(),
            lifecycle: lifecycle::Settings::default(),
            #[cfg(feature = "digest")]
            digest: crate::digest::Settings::default(),
        }
    }
}

/// The default cap on the number of ranges in one request: 100.
pub const DEFAULT_MAX_RANGES: usize = 100;

/// Applies [`RangeServe`] to a service: file-backed responses become range-aware,
/// conditional, seek-based downloads.
///
/// See the [crate documentation](crate) for what it answers, and
/// [`throttle`](crate::throttle) for bandwidth policy.
///
/// Builder methods take and return the layer by value; none changes another
/// layer. The shared limits (the client table and the total limit, see
/// [`BandwidthControl`]) are made anew by each call of
/// [`client_rate`](Self::client_rate), [`total_rate`](Self::total_rate) and
/// [`redis`](Self::redis); clones share the limits they were cloned with, so one
/// layer applied to many routes has one client table; layers that should share
/// limits while configured differently share them explicitly with
/// [`with_bandwidth_control`](Self::with_bandwidth_control).
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
    /// The body holds about one chunk per stream: later chunks are read ahead,
    /// while one is sent, only when reads wait (see
    /// [`read_ahead`](Self::read_ahead)). The
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

    /// How many bytes of a download may be read before its client asks for
    /// them, for sources whose reads wait (a file not in the page cache, an
    /// object store). Defaults to 1 MiB ([`DEFAULT_READ_AHEAD`]); 0 (or anything
    /// below one chunk) turns read-ahead off.
    ///
    /// Reads that complete at once (cached pages, bytes in memory) are never made
    /// ahead. Each time the client has to wait for a read, the window of reads
    /// in flight doubles, from one chunk up to this budget, and reads grow to a
    /// quarter of it (at most 1 MiB). Nothing is read ahead while the client
    /// does not read, so a stalled client holds at most this budget (in
    /// practice, the window it had reached).
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new().read_ahead(4 << 20);
    /// # let _ = layer;
    /// ```
    pub fn read_ahead(mut self, bytes: usize) -> Self {
        self.config.read_ahead = bytes;
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
        self
    }

    /// The smallest chunk a response paced by its own [`rate`](Self::rate)
    /// sends at once. A throttled response sends a tenth of a second of its rate
    /// at a time, but at least this many bytes (or one second of its rate, if
    /// that is less). Defaults to 16 KiB: at 16 KiB/s one chunk a second, as
    /// nginx's `limit_rate` does, and from 160 KiB/s up ten chunks a second.
    ///
    /// The trade-off is smoothness (and memory) against CPU: each chunk costs a
    /// timer, a read, a write and a wake-up of the client; a paced response is
    /// ahead of its schedule by at most one chunk; and a chunk waiting in the
    /// server's buffers (HTTP/2 streams share their connection's) is held in
    /// memory. 10,000 streams at 16 KiB/s over HTTP/2 used 4.4× less CPU than
    /// with ten chunks a second, and about 14 KiB more memory each (see
    /// BENCHMARKS.md). `0` sends a tenth of a second of the
    /// rate at a time (at least 512 bytes) at any rate: ten chunks a second.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// // Ten small sends a second even at 16 KiB/s: smoother, more CPU.
    /// let layer = RangeServeLayer::new()
    ///     .rate(Bandwidth::kib(16))
    ///     .min_throttled_chunk(0);
    /// # let _ = layer;
    /// ```
    pub fn min_throttled_chunk(mut self, bytes: u64) -> Self {
        self.config.bandwidth.min_throttled_chunk = bytes;
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
        self
    }

    /// The rate all running responses of one client share. Unlimited by default.
    /// Clients are told apart by [`client_key`](Self::client_key).
    ///
    /// A [policy function](Self::policy) may give a request another client rate
    /// (a tier): streams of one client that asked for different client rates
    /// never change each other's rate; each tier of a client is shared by the
    /// streams that asked for it (see [`throttle`](crate::throttle#tiers-one-client-several-client-rates)).
    ///
    /// Gives the layer new shared limits (see [`BandwidthControl`]): a clone
    /// made before keeps its own.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let base = RangeServeLayer::new().client_rate(Bandwidth::kib(256));
    /// let premium = base.clone().client_rate(Bandwidth::mib(8));
    /// assert_eq!(base.bandwidth_control().client_rate(), Bandwidth::kib(256));
    /// assert_eq!(premium.bandwidth_control().client_rate(), Bandwidth::mib(8));
    /// ```
    pub fn client_rate(mut self, rate: Bandwidth) -> Self {
        let control = &self.config.bandwidth.control;
        self.config.bandwidth.control = control.with_client_rate(rate);
        self
    }

    /// The rate of all responses of this layer (and its clones) together.
    /// Unlimited by default.
    ///
    /// Gives the layer new shared limits (see [`BandwidthControl`]): a clone
    /// made before keeps its own.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().total_rate(Bandwidth::mib(100));
    /// # let _ = layer;
    /// ```
    pub fn total_rate(mut self, rate: Bandwidth) -> Self {
        let control = &self.config.bandwidth.control;
        self.config.bandwidth.control = control.with_total_rate(rate);
        self
    }

    /// Shares the client and total limits with other servers (replicas behind a
    /// load balancer) through Redis: every replica draws each client's rate, and
    /// the total, from one budget. See [`RedisLimits`](crate::throttle::RedisLimits)
    /// for leases, precision and what happens when Redis fails. The per-response
    /// [`rate`](Self::rate) stays local. Layers with different limits need
    /// different [prefixes](crate::throttle::RedisLimits::prefix).
    ///
    /// Gives the layer new shared limits, with the rates set so far (see
    /// [`BandwidthControl`]).
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
    pub fn redis(mut self, limits: crate::throttle::RedisLimits) -> Self {
        let control = &self.config.bandwidth.control;
        self.config.bandwidth.control = control.with_store(Arc::new(limits));
        self
    }

    /// Uses `control`'s shared limits (its client table, client rate and total
    /// limit) instead of this layer's own: several layers configured differently
    /// (say, one per route) then share one total, and a client's streams under
    /// all of them share its rate. A later [`client_rate`](Self::client_rate),
    /// [`total_rate`](Self::total_rate) or [`redis`](Self::redis) gives the layer
    /// limits of its own again; change shared rates on `control`.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let free = RangeServeLayer::new()
    ///     .rate(Bandwidth::kib(256))
    ///     .total_rate(Bandwidth::mib(100));
    /// let paid = RangeServeLayer::new()
    ///     .rate(Bandwidth::mib(8))
    ///     .with_bandwidth_control(free.bandwidth_control());
    /// free.bandwidth_control().set_total_rate(Bandwidth::mib(200));
    /// assert_eq!(paid.bandwidth_control().total_rate(), Bandwidth::mib(200));
    /// ```
    pub fn with_bandwidth_control(mut self, control: BandwidthControl) -> Self {
        self.config.bandwidth.control = control;
        self
    }

    /// How a request's client is found. Defaults to [`ClientKey::peer_ip`]: the
    /// peer's IP from a `SocketAddr` request extension or (with the `axum`
    /// feature) axum's `ConnectInfo<SocketAddr>`. Middleware that puts the key
    /// into the extensions must run before (outside) this layer.
    ///
    /// When a client limit or a stream cap applies and no key is found, the
    /// request is not let through unlimited: all such requests share the limits
    /// of one client, [`ClientKey::UNIDENTIFIED`] (with the `tracing` feature,
    /// the first one logs a warning).
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
        self.config.bandwidth.max_streams_per_client = Some(streams);
        self
    }

    /// The bytes each client may receive per period (see
    /// [`throttle`](crate::throttle#quotas)): delivered bytes are counted per
    /// [`client_key`](Self::client_key) in fixed windows aligned to the epoch;
    /// a client that has spent its quota gets what
    /// [`quota_exhausted`](Self::quota_exhausted) says. None by default; the
    /// [policy function](Self::policy) may set one per request (a tier).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::{Quota, RangeServeLayer};
    ///
    /// // 10 GiB per day per client.
    /// let layer = RangeServeLayer::new().quota(Quota::new(10 << 30, Duration::from_secs(86_400)));
    /// # let _ = layer;
    /// ```
    pub fn quota(mut self, quota: Quota) -> Self {
        self.config.bandwidth.quota = Some(quota);
        self
    }

    /// What a client that has spent its [`quota`](Self::quota) gets: by
    /// default [`QuotaExhausted::End`] (running downloads end, new requests
    /// get 429 with `Retry-After` until the window ends).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::{Bandwidth, Quota, QuotaExhausted, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new()
    ///     .quota(Quota::new(1 << 30, Duration::from_secs(86_400)))
    ///     .quota_exhausted(QuotaExhausted::Reduce(Bandwidth::kib(64)));
    /// # let _ = layer;
    /// ```
    pub fn quota_exhausted(mut self, exhausted: QuotaExhausted) -> Self {
        self.config.bandwidth.quota_exhausted = exhausted;
        self
    }

    /// The `Retry-After` of the answers that ask a client to come back later:
    /// 429 for too many streams, 503 while shutting down. Defaults to one second
    /// (sent in whole seconds, at least 1).
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
        self.config.retry_after = after;
        self
    }

    /// Chooses the policy of each request. The function gets the request's head
    /// and the [`Policy`] the layer's settings give, which it may read and
    /// change.
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
    ///     .policy(|parts, policy: &mut Policy| match parts.extensions.get::<Tier>() {
    ///         Some(Tier::Paid { user }) => {
    ///             policy.client = Some(ClientKey::from(user.as_str()));
    ///             policy.client_rate = Bandwidth::mib(8);
    ///             policy.max_streams_per_client = Some(16);
    ///         }
    ///         Some(Tier::Free) | None => policy.max_streams_per_client = Some(2),
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn policy<F>(mut self, choose: F) -> Self
    where
        F: Fn(&Parts, &mut Policy) + Send + Sync + 'static,
    {
        self.config.bandwidth.policy = Some(Arc::new(choose));
        self
    }

    /// The handle to this layer's shared limits (see [`BandwidthControl`]), to
    /// change them while it serves. Take it after the last
    /// [`client_rate`](Self::client_rate), [`total_rate`](Self::total_rate) or
    /// [`redis`](Self::redis) call: each of them gives the layer new limits.
    ///
    /// ```
    /// use tower_range_serve::{Bandwidth, RangeServeLayer};
    ///
    /// let layer = RangeServeLayer::new().total_rate(Bandwidth::mib(10));
    /// let control = layer.bandwidth_control();
    /// control.set_total_rate(Bandwidth::mib(20));
    /// ```
    pub fn bandwidth_control(&self) -> BandwidthControl {
        self.config.bandwidth.control.clone()
    }
}

/// Digests. See [`digest`](crate::digest).
#[cfg(feature = "digest")]
#[cfg_attr(docsrs, doc(cfg(feature = "digest")))]
impl RangeServeLayer {
    /// How the layer sends `Repr-Digest`, `Content-Digest` and `Digest`
    /// (RFC 9530, RFC 3230). Gives the layer a new digest cache (clones made
    /// after share it). Defaults to [`Digests::known_only`](crate::digest::Digests::known_only):
    /// checksum files and attached digests, when asked, no hashing.
    ///
    /// ```
    /// use tower_range_serve::digest::Digests;
    /// use tower_range_serve::RangeServeLayer;
    ///
    /// let layer = RangeServeLayer::new().digests(Digests::new());
    /// # let _ = layer;
    /// ```
    pub fn digests(mut self, digests: crate::digest::Digests) -> Self {
        self.config.digest = crate::digest::Settings::new(digests);
        self
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

    /// Records download metrics through the `metrics` facade (the `metrics`
    /// feature), beside the [`observer`](Self::observer): see
    /// [`Metrics`](crate::lifecycle::Metrics) for what is recorded and the
    /// names. A later call replaces the metrics of an earlier one.
    ///
    /// ```
    /// use tower_range_serve::RangeServeLayer;
    /// use tower_range_serve::lifecycle::Metrics;
    ///
    /// let layer = RangeServeLayer::new().metrics(Metrics::new().label("route", "downloads"));
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, metrics: crate::lifecycle::Metrics) -> Self {
        self.config.lifecycle.set_metrics(metrics.observer());
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
        RangeServe::from_config(inner, Arc::new(self.config.clone()))
    }
}
