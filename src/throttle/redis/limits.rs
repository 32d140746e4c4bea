//! [`RedisLimits`]: client and total limits shared by several servers through
//! Redis (the `redis` feature).

use std::fmt;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, Script};

use super::Fallback;
use super::fleet::{ALIVE_FOR, Fleet};
use super::health::Health;
use super::scripts::{BEAT, HEARTBEAT, QUOTA, TAKE};
use super::store::{
    Ask, BeatFuture, FallbackMode, Lease, QuotaAsk, QuotaFuture, QuotaLease, Store, StorePolicy,
    TakeFuture,
};

/// Client and total limits shared by several servers through Redis, so that a
/// client's connections spread over many replicas get the client's rate in
/// total, not once per replica.
///
/// Give it to [`RangeServeLayer::redis`](crate::RangeServeLayer::redis). Every
/// replica then draws each shared limit from one token bucket per key in Redis
/// (`{prefix}:client:{key}@{rate}`, one per client and asked rate, and `{prefix}:total`): it leases a slice of the
/// budget (by default 100 ms of the rate) with one atomic script, and hands the
/// slice out to its own streams, so Redis sees about ten requests per second per
/// busy key and replica, however many streams share it. The per-response rate
/// stays local.
///
/// # Precision
///
/// Across replicas, a key's bytes in any period `t` never exceed `rate × t` plus
/// its bucket (a slice and a quarter at most, 125 ms of the rate by default; a
/// key new to Redis starts with one slice) plus the leased bytes replicas held
/// unsent when the period began (at most a slice each, and none after a second
/// without streams: an idle replica drops what it holds).
///
/// So streams that start under a key idle for a second get at most the bucket
/// before the rate applies, however many replicas they start on; and since a
/// replica not drawing from a key yet takes at most its share of a slice among
/// the live replicas (see [`Fallback`] for how they count themselves), replicas
/// starting at once split the first slice instead of the first one taking it.
/// Measured: within 1.5% of the rate over 8 s with two replicas, within 3% over
/// 6 s with three replicas and no headcount given, and a start burst under
/// 150 ms of the rate with 2, 3 and 5 replicas (see BENCHMARKS.md).
///
/// # Fairness
///
/// Replicas busy with one key split its rate in proportion to their streams
/// under it, whichever asks first: each replica's share of a lease period is
/// reserved for it in Redis, so a key's streams share its rate evenly wherever
/// they run. What a replica's streams leave unused goes to the others within a
/// lease period or two.
///
/// # When Redis fails
///
/// A lease that fails or takes longer than [`timeout`](Self::timeout) (250 ms by
/// default) switches every limit of this `RedisLimits` to its [`Fallback`] for
/// [`probe_interval`](Self::probe_interval) (one second); then a probe, in the
/// background, asks Redis again, and when it answers all limits rejoin the
/// shared budget by themselves. Only the lease that found Redis failing waits
/// for it (up to the timeout); a stream never fails because Redis did.
///
/// Redis is connected to lazily, on the first lease, and again after a failure;
/// a server starts even while Redis is down. Every replica sends a heartbeat
/// (with one lease a second, or alone every 1.5 s while idle), so that the
/// default fallback, [`Fallback::LearnedShare`], knows how many replicas share
/// the rates.
///
/// ```
/// use tower_range_serve::throttle::{Fallback, RedisLimits};
/// use tower_range_serve::{Bandwidth, RangeServeLayer};
///
/// let redis = RedisLimits::new("redis://127.0.0.1:6379")?
///     .prefix("downloads")
///     .fallback(Fallback::local_share(4));
/// let layer = RangeServeLayer::new()
///     .client_rate(Bandwidth::mib(2))
///     .total_rate(Bandwidth::mib(500))
///     .redis(redis);
/// # let _ = layer;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct RedisLimits {
    client: Client,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    script: Script,
    beat: Script,
    quota: Script,
    /// This replica's name in the keys' fair shares.
    replica: u64,
    prefix: String,
    policy: StorePolicy,
    health: Health,
    fleet: Fleet,
}

impl RedisLimits {
    /// Limits kept in the Redis at `url` (`redis://host:port/db`,
    /// `rediss://` with TLS support compiled in, `redis+unix:///path`). Only
    /// parses the URL; connecting happens on first use.
    ///
    /// By default: prefix `tower-range-serve`, leases of 100 ms, a 250 ms
    /// timeout, a retry after one second, and [`Fallback::LearnedShare`] (each
    /// replica goes on at its share among the replicas it last saw in Redis).
    ///
    /// ```
    /// use tower_range_serve::throttle::RedisLimits;
    ///
    /// assert!(RedisLimits::new("redis://127.0.0.1:6379/0").is_ok());
    /// assert!(RedisLimits::new("not a url").is_err());
    /// ```
    pub fn new<T: IntoConnectionInfo>(url: T) -> Result<Self, RedisError> {
        Ok(Self {
            client: Client::open(url)?,
            connection: tokio::sync::Mutex::new(None),
            script: Script::new(&format!("{HEARTBEAT}{TAKE}")),
            beat: Script::new(&format!("{HEARTBEAT}{BEAT}")),
            quota: Script::new(&format!("{HEARTBEAT}{QUOTA}")),
            replica: replica_id(),
            prefix: "tower-range-serve".to_owned(),
            policy: StorePolicy {
                lease: Duration::from_millis(100),
                timeout: Duration::from_millis(250),
                retry: Duration::from_secs(1),
                fallback: FallbackMode::Local { replicas: None },
            },
            health: Health::default(),
            fleet: Fleet::default(),
        })
    }

    /// The prefix of this layer's keys. Layers that must not share budgets (one
    /// per route, say) need different prefixes; replicas of one layer, the same.
    ///
    /// ```
    /// # use tower_range_serve::throttle::RedisLimits;
    /// let redis = RedisLimits::new("redis://127.0.0.1/")?.prefix("videos");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How much of a key's budget one lease takes, as time at the key's rate
    /// (100 ms by default). Longer leases mean fewer Redis requests and coarser
    /// sharing between replicas.
    ///
    /// ```
    /// # use tower_range_serve::throttle::RedisLimits;
    /// # use std::time::Duration;
    /// let redis = RedisLimits::new("redis://127.0.0.1/")?.lease(Duration::from_millis(50));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.policy.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// How long a lease may take before Redis counts as failed (250 ms by
    /// default, at least 1 ms). The connection is then made anew.
    ///
    /// ```
    /// # use tower_range_serve::throttle::RedisLimits;
    /// # use std::time::Duration;
    /// let redis = RedisLimits::new("redis://127.0.0.1/")?.timeout(Duration::from_millis(100));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long every limit stays on its fallback after Redis failed before it
    /// is asked again (one second by default, at least 10 ms). (Not to be
    /// confused with [`RangeServeLayer::retry_after`](crate::RangeServeLayer::retry_after),
    /// the `Retry-After` sent to clients.) The question is
    /// a probe in a task of its own (a lease of nothing): streams keep their
    /// fallback until Redis has answered it.
    ///
    /// ```
    /// # use tower_range_serve::throttle::RedisLimits;
    /// # use std::time::Duration;
    /// let redis = RedisLimits::new("redis://127.0.0.1/")?.probe_interval(Duration::from_secs(2));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn probe_interval(mut self, every: Duration) -> Self {
        self.policy.retry = every.max(Duration::from_millis(10));
        self
    }

    /// What streams do while Redis fails. See [`Fallback`].
    ///
    /// ```
    /// # use tower_range_serve::throttle::{Fallback, RedisLimits};
    /// let redis = RedisLimits::new("redis://127.0.0.1/")?.fallback(Fallback::Wait);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.policy.fallback = match fallback {
            Fallback::LocalShare(replicas) => FallbackMode::Local {
                replicas: Some(replicas.get()),
            },
            Fallback::LearnedShare => FallbackMode::Local { replicas: None },
            Fallback::Wait => FallbackMode::Wait,
        };
        self
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = &*slot {
            return Ok(connection.clone());
        }
        // Our timeout for connecting and for every answer (redis-rs would
        // otherwise cut answers at its own 500 ms).
        let timeout = Some(self.policy.timeout);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(slot.insert(connection).clone())
    }

    async fn take(&self, key: &str, ask: Ask) -> Result<Lease, RedisError> {
        let mut invocation = self.script.key(format!("{}:{key}", self.prefix));
        invocation
            .key(self.fleet_key())
            .arg(ask.rate)
            .arg(ask.capacity)
            .arg(ask.want)
            .arg(self.replica)
            .arg(ask.weight)
            .arg(micros(ask.period))
            .arg(u8::from(ask.beat))
            .arg(micros(ALIVE_FOR));
        let (granted, wait, replicas) = self.invoke::<(u64, u64, u32)>(&invocation).await?;
        Ok(Lease {
            granted: granted.min(ask.want),
            wait: Duration::from_micros(wait),
            replicas,
        })
    }

    async fn quota(&self, key: &str, ask: QuotaAsk) -> Result<QuotaLease, RedisError> {
        let mut invocation = self.quota.key(format!("{}:{key}", self.prefix));
        invocation
            .key(self.fleet_key())
            .arg(ask.limit)
            .arg(micros(ask.period))
            .arg(ask.want)
            .arg(ask.debt)
            .arg(self.replica)
            .arg(u8::from(ask.beat))
            .arg(micros(ALIVE_FOR));
        let (granted, used, until_end, replicas) =
            self.invoke::<(u64, u64, u64, u32)>(&invocation).await?;
        Ok(QuotaLease {
            granted: granted.min(ask.want),
            used,
            until_end: Duration::from_micros(until_end),
            replicas,
        })
    }

    async fn beat(&self) -> Result<u32, RedisError> {
        let mut invocation = self.beat.key(self.fleet_key());
        invocation.arg(self.replica).arg(micros(ALIVE_FOR));
        self.invoke(&invocation).await
    }

    /// The sorted set of the replicas' heartbeats.
    fn fleet_key(&self) -> String {
        format!("{}:replicas", self.prefix)
    }

    /// Runs a script within the timeout.
    async fn invoke<T: ::redis::FromRedisValue>(
        &self,
        invocation: &::redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let mut connection = self.connection().await?;
        let invoke = invocation.invoke_async::<T>(&mut connection);
        let result = match tokio::time::timeout(self.policy.timeout, invoke).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            ))),
        };
        match result {
            Ok(answer) => Ok(answer),
            Err(error) => {
                // Connect anew next time: Redis may have restarted, or the
                // connection may be stuck. (A lease given up on by its caller,
                // whose stream went away, keeps the connection.)
                *self.connection.lock().await = None;
                Err(error)
            }
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A random name for this replica (a `RedisLimits`), told apart from others
/// sharing the keys without configuration.
fn replica_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Notes a failed request to Redis before it becomes the store's bare error:
/// all a limit does with a failure is go by its fallback for the probe interval
/// (see [`Fallback`]), so the error itself would otherwise leave no trace. With
/// the `tracing` feature it is logged as a warning (target
/// `tower_range_serve`). While Redis stays away the limits ask it again once
/// per probe interval (and an idle replica's heartbeat about as often), so
/// this is a line or two per interval, never one per chunk or stream.
fn failed(request: &'static str, error: &RedisError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "tower_range_serve",
        request,
        %error,
        "redis request failed: shared limits go by their fallback"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (request, error);
}

impl Store for RedisLimits {
    fn take<'a>(&'a self, key: &'a str, ask: Ask) -> TakeFuture<'a> {
        Box::pin(async move {
            RedisLimits::take(self, key, ask)
                .await
                .map_err(|error| failed("lease", &error))
        })
    }

    fn quota<'a>(&'a self, key: &'a str, ask: QuotaAsk) -> QuotaFuture<'a> {
        Box::pin(async move {
            RedisLimits::quota(self, key, ask)
                .await
                .map_err(|error| failed("quota", &error))
        })
    }

    fn beat(&self) -> BeatFuture<'_> {
        Box::pin(async move {
            RedisLimits::beat(self)
                .await
                .map_err(|error| failed("heartbeat", &error))
        })
    }

    fn policy(&self) -> &StorePolicy {
        &self.policy
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn fleet(&self) -> &Fleet {
        &self.fleet
    }
}

impl fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimits")
            .field("server", &self.client.get_connection_info().addr())
            .field("prefix", &self.prefix)
            .field("lease", &self.policy.lease)
            .field("timeout", &self.policy.timeout)
            .field("probe_interval", &self.policy.retry)
            .field("fallback", &self.policy.fallback)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use std::sync::Mutex;

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::*;

    /// Collects the fields of events.
    #[derive(Default)]
    struct Events(Mutex<Vec<String>>);

    struct Fields<'a>(&'a mut String);

    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
            use std::fmt::Write;
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    impl Subscriber for &'static Events {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut text = String::new();
            event.record(&mut Fields(&mut text));
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[tokio::test]
    async fn a_failed_request_to_redis_leaves_a_warning() {
        // A port nobody listens on: connecting is refused at once.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let limits = RedisLimits::new(format!("redis://127.0.0.1:{port}/")).unwrap();
        let events: &'static Events = Box::leak(Box::default());
        let _default = tracing::subscriber::set_default(events);
        let ask = Ask {
            rate: 1000,
            capacity: 1000,
            want: 100,
            weight: 1,
            period: Duration::from_millis(100),
            beat: false,
        };
        assert_eq!(Store::take(&limits, "k", ask).await, Err(()));
        assert_eq!(Store::beat(&limits).await, Err(()));
        let events = events.0.lock().unwrap();
        let warnings: Vec<_> = events
            .iter()
            .filter(|event| event.contains("redis request failed"))
            .collect();
        assert_eq!(warnings.len(), 2, "{events:?}");
        assert!(warnings[0].contains("request=\"lease\""), "{warnings:?}");
        assert!(
            warnings[1].contains("request=\"heartbeat\""),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().all(|w| w.contains("error=")),
            "{warnings:?}"
        );
    }
}
