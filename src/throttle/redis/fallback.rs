//! [`Fallback`]: what streams under a shared limit do while Redis cannot be
//! reached.

use std::num::NonZeroU32;

#[cfg(doc)]
use super::RedisLimits;

/// What streams under a shared limit do while Redis cannot be reached.
///
/// ```
/// use tower_range_serve::throttle::Fallback;
///
/// // The default: each replica goes on alone at its share of every shared
/// // rate among the replicas it last saw in Redis (a third of it with three).
/// let learned = Fallback::LearnedShare;
/// // Four replicas, whatever Redis said: a quarter of every shared rate each.
/// let open = Fallback::local_share(4);
/// // Streams wait until Redis answers again.
/// let closed = Fallback::Wait;
/// # let _ = (learned, open, closed);
/// ```
///
/// # How replicas learn how many they are
///
/// Each replica (each [`RedisLimits`]) tells Redis it is alive, in a sorted set
/// `{prefix}:replicas` on Redis's clock: one lease a second carries the
/// heartbeat (no extra request), and while no lease has for 1.5 s a background
/// task sends one (one small script per replica every 1.5 s while idle). A
/// replica silent for three seconds is no longer counted. Every lease answers
/// with the count of live replicas, and [`LearnedShare`](Self::LearnedShare)
/// divides a rate by the last count seen. So a replica that joins lowers the
/// others' share with its first lease (or its first beat, within 1.5 s), and
/// one that leaves raises it within about five seconds: three without a beat,
/// and the others' next lease or beat.
///
/// # Outages and partitions
///
/// When Redis is down for every replica, each goes on at `rate / n`, `n` being
/// the count it last saw: with streams on all of them the fleet keeps the
/// rate, plus the local buckets the replicas start their fallback with (100 ms
/// of each one's share, 100 ms of the rate in all) and, on the way back, the
/// key's bucket in Redis (100 ms of the rate for a key Redis lost, 125 ms at
/// most). Replicas rejoin one by one, each at its next probe (within
/// [`probe_interval`](RedisLimits::probe_interval)); until the last one has, those
/// back share the whole rate through Redis while the others still go at
/// `rate / n`, as in a partition (below). Measured with three replicas and a
/// 3 s outage: +1.4 to +3.9% over 6 s; with five, up to +7.3%.
///
/// When only `k` of `n` replicas lose Redis (a partition, `k < n`), those `k`
/// go on at `rate / n` each while the others keep sharing the whole rate
/// through Redis (and stop counting the lost ones after three seconds): a key
/// served by all of them may then get up to `rate × (1 + k / n)` in total,
/// below twice the rate (one replica of two cut off: 1.5 times). Fail-closed ([`Wait`](Self::Wait)) never exceeds the rate, at the cost
/// of stalling the lost replicas' streams.
///
/// A replica that never reached Redis knows no count and goes on at the whole
/// rate, as [`local_share(1)`](Self::local_share) would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// Fail open with a count of replicas learned from Redis (the default):
    /// each replica goes on alone at `rate / n` of every shared limit, `n`
    /// being the number of live replicas in its last answer from Redis (1
    /// before any answer). See [how replicas learn how many they
    /// are](Self#how-replicas-learn-how-many-they-are).
    LearnedShare,
    /// Fail open with a count of replicas given by hand: each replica goes on
    /// alone at `rate / replicas` of every shared limit, whatever Redis said
    /// (with the right count, the cluster keeps about its total rate).
    LocalShare(NonZeroU32),
    /// Fail closed: streams under a shared limit send nothing until Redis
    /// answers again (their connections stay open).
    Wait,
}

impl Fallback {
    /// [`Fallback::LocalShare`] for `replicas` replicas (at least one).
    ///
    /// ```
    /// use tower_range_serve::throttle::Fallback;
    ///
    /// assert_eq!(Fallback::local_share(0), Fallback::local_share(1));
    /// ```
    pub fn local_share(replicas: u32) -> Self {
        Self::LocalShare(NonZeroU32::new(replicas).unwrap_or(NonZeroU32::MIN))
    }
}
