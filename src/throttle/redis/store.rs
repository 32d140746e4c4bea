//! Limits shared beyond this process: a [`Store`] holds each key's budget (a token
//! bucket in Redis, say), and a limit's turn keeper leases slices of it
//! ([`Leases`]) instead of acquiring from its local limiter.
//!
//! A lease is a slice of the key's budget (by default 100 ms of its rate) that
//! this process then hands out to its own streams, so the store sees one round
//! trip per slice, not one per chunk.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leaky_bucket::RateLimiter;
use tokio::time::Instant;

use super::fleet::Fleet;
use crate::throttle::limiter::limiter_for;

/// Where the budgets of shared limits live when several servers share them.
pub(crate) trait Store: Send + Sync + fmt::Debug + 'static {
    /// Takes up to `ask.want` bytes from the budget of `key`, which refills at
    /// `ask.rate` bytes per second and holds at most `ask.capacity` bytes.
    /// Gives up (an error) after the policy's `timeout`; the keeper stops
    /// waiting after twice that.
    fn take<'a>(&'a self, key: &'a str, ask: Ask) -> TakeFuture<'a>;

    /// Tells the store this replica is alive, without a lease, and answers how
    /// many replicas are (see [`Fleet`]). Gives up like [`take`](Self::take).
    fn beat(&self) -> BeatFuture<'_>;

    /// How leases are sized and what happens when the store fails.
    fn policy(&self) -> &StorePolicy;

    /// Whether the store is failing, shared by every limit that uses it.
    fn health(&self) -> &Health;

    /// What this replica knows of the others sharing the store.
    fn fleet(&self) -> &Fleet;
}

/// Whether a store is failing, shared by every keeper that uses it: one failed
/// lease sends them all to their fallback for the retry period; after it, a
/// probe (a lease of nothing, in a task of its own) asks the store whether it
/// answers again, while every keeper goes on with its fallback. Streams never
/// wait for a failing store, and it gets one request per retry period.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Until when the store counts as failing; `None` while it answers.
    failing_until: std::sync::Mutex<Option<Instant>>,
    probing: AtomicBool,
}

/// What a keeper may do with its store now.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Healthy,
    /// Use the fallback until then.
    Failing(Instant),
    /// Start the probe, and use the fallback until then (by when it knows).
    Probe(Instant),
}

/// Clears the probing mark when the probe ends, however it ends.
struct Probing(Arc<dyn Store>);

impl Drop for Probing {
    fn drop(&mut self) {
        self.0.health().probing.store(false, Ordering::Release);
    }
}

impl Health {
    /// Until when the store counts as failing (`None` while it answers).
    pub(crate) fn failing_until(&self) -> Option<Instant> {
        *self.failing_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn standing(&self, policy: &StorePolicy) -> Standing {
        let now = Instant::now();
        match *self.failing_until.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Standing::Healthy,
            Some(until) if now < until => Standing::Failing(until),
            // A probe is running: it knows within twice its timeout.
            Some(_) if self.probing.swap(true, Ordering::AcqRel) => {
                Standing::Failing(now + policy.timeout)
            }
            Some(_) => Standing::Probe(now + policy.timeout),
        }
    }

    /// Asks `store`, in a task of its own, whether it answers again (a lease of
    /// nothing on `key`), and records the answer.
    fn probe(store: &Arc<dyn Store>, key: &str, ask: Ask) {
        let probing = Probing(store.clone());
        let key = key.to_owned();
        tokio::spawn(async move {
            let store = &probing.0;
            let policy = store.policy();
            let answer = tokio::time::timeout(policy.timeout * 2, store.take(&key, ask)).await;
            let failing_until = match answer {
                Ok(Ok(lease)) => {
                    store.fleet().seen(lease.replicas);
                    None
                }
                Ok(Err(())) | Err(_) => Some(Instant::now() + policy.retry),
            };
            store.health().set(failing_until);
        });
    }

    pub(crate) fn set(&self, failing_until: Option<Instant>) {
        *self.failing_until.lock().unwrap_or_else(|e| e.into_inner()) = failing_until;
    }
}

/// What a [`Store::take`] returns: granted bytes, or an error (unreachable, slow,
/// refused), after which the keeper falls back for a while.
pub(crate) type TakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Lease, ()>> + Send + 'a>>;

/// What a [`Store::beat`] returns: the count of live replicas, or an error.
pub(crate) type BeatFuture<'a> = Pin<Box<dyn Future<Output = Result<u32, ()>> + Send + 'a>>;

/// One request to a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ask {
    pub(crate) rate: u64,
    pub(crate) capacity: u64,
    pub(crate) want: u64,
    /// How many of this process's streams draw from the key: replicas share a
    /// key's rate in proportion, so its streams share it evenly wherever they run.
    pub(crate) weight: u64,
    /// The lease period: a replica's fair share accrues over it.
    pub(crate) period: Duration,
    /// Whether this request carries the replica's heartbeat (see [`Fleet`]).
    pub(crate) beat: bool,
}

/// A store's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Bytes granted now (maybe fewer than needed, maybe none).
    pub(crate) granted: u64,
    /// How long until the budget holds `want` bytes again (zero if it does).
    pub(crate) wait: Duration,
    /// How many replicas are alive, this one included (0: the store cannot tell).
    pub(crate) replicas: u32,
}

/// How a keeper uses its store.
#[derive(Debug, Clone)]
pub(crate) struct StorePolicy {
    /// How much of a key's budget one lease takes, as time at its rate.
    pub(crate) lease: Duration,
    /// How long a store may take to answer before it counts as failed.
    pub(crate) timeout: Duration,
    /// How long after a failure the store is asked again.
    pub(crate) retry: Duration,
    /// What streams do meanwhile.
    pub(crate) fallback: FallbackMode,
}

/// What a limit does while its store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FallbackMode {
    /// Go on locally at `rate / replicas`; `None`: by the last count of live
    /// replicas the store reported (see [`Fleet`]), or alone before any.
    Local { replicas: Option<u32> },
    /// Grant nothing until the store answers again.
    Wait,
}

/// How long a keeper keeps leased bytes no request draws from.
const IDLE: Duration = Duration::from_secs(1);

/// A keeper's state towards its store: the leased bytes not handed out yet.
///
/// Leased bytes left over when the keeper goes idle (its streams ended) are
/// dropped after [`IDLE`] (or a lease period, if longer) without a request: a
/// replica then does not add an old slice to the full bucket that new streams
/// find in the store, which keeps a key's burst after a pause at the bucket's
/// size. (Sooner would waste the leases of slow streams: a throttled stream
/// asks about ten times a second, down to one 512-byte chunk at a time.)
#[derive(Debug, Default)]
pub(crate) struct Leases {
    balance: u64,
    /// When the balance was last drawn from.
    used_at: Option<Instant>,
    /// When the store should have a whole slice for us again.
    next_ask: Option<Instant>,
    /// The limiter used while the store fails (`Local` fallback), and its rate.
    local: Option<(u64, Arc<RateLimiter>)>,
}

impl Leases {
    /// Waits until `len` bytes of `key`'s budget (`rate` bytes per second) are
    /// this process's, leasing from `store` as needed. `weight` is the number of
    /// this process's streams under the limit.
    pub(crate) async fn take(
        &mut self,
        store: &Arc<dyn Store>,
        key: &str,
        rate: u64,
        weight: u64,
        len: u64,
    ) {
        let policy = store.policy();
        Fleet::keep_beating(store);
        // Beyond 2^53 bytes per second a rate is unlimited in practice, and the
        // store's arithmetic (Lua's doubles) stays exact below it.
        let rate = rate.min(1 << 53);
        let slice = ((rate as f64 * policy.lease.as_secs_f64()) as u64).clamp(1, 1 << 53);
        // A slice and a quarter: a replica a little late to ask again (timer,
        // round trip) loses nothing, and a key's burst stays near one slice. At
        // least a tenth of a second, the largest chunk a limit hands out.
        let capacity = slice.saturating_add(slice / 4).max(rate / 10);
        if self
            .used_at
            .is_some_and(|at| at.elapsed() > policy.lease.max(IDLE))
        {
            self.balance = 0;
        }
        loop {
            if self.balance >= len {
                self.balance -= len;
                self.used_at = Some(Instant::now());
                return;
            }
            // Before the store's health: it may have failed meanwhile.
            if let Some(at) = self.next_ask.take() {
                tokio::time::sleep_until(at).await;
            }
            let need = len - self.balance;
            let ask = Ask {
                rate,
                capacity,
                want: need.max(slice).min(capacity),
                weight: weight.max(1),
                period: policy.lease,
                beat: false,
            };
            let health = store.health();
            let fallback_until = match health.standing(policy) {
                Standing::Healthy => None,
                Standing::Failing(until) => Some(until),
                Standing::Probe(until) => {
                    let beat = store.fleet().beat_due();
                    Health::probe(
                        store,
                        key,
                        Ask {
                            want: 0,
                            beat,
                            ..ask
                        },
                    );
                    Some(until)
                }
            };
            if let Some(until) = fallback_until {
                match policy.fallback {
                    FallbackMode::Local { replicas } => {
                        let replicas = replicas
                            .or_else(|| store.fleet().replicas().map(NonZeroU32::get))
                            .unwrap_or(1);
                        let share = (rate / u64::from(replicas.max(1))).max(1);
                        self.local(share).acquire(clamp(need)).await;
                        self.balance = 0;
                        return;
                    }
                    FallbackMode::Wait => tokio::time::sleep_until(until).await,
                }
                continue;
            }
            // The store gives up after `timeout` itself (and can then drop a
            // stuck connection); this is the guard against one that does not.
            let ask = Ask {
                beat: store.fleet().beat_due(),
                ..ask
            };
            match tokio::time::timeout(policy.timeout * 2, store.take(key, ask)).await {
                Ok(Ok(lease)) => {
                    store.fleet().seen(lease.replicas);
                    self.balance += lease.granted;
                    // Not worth asking again before a whole slice is there.
                    if lease.wait > Duration::ZERO {
                        self.next_ask = Some(Instant::now() + lease.wait);
                    }
                }
                Ok(Err(())) | Err(_) => health.set(Some(Instant::now() + policy.retry)),
            }
        }
    }

    fn local(&mut self, rate: u64) -> Arc<RateLimiter> {
        match &self.local {
            Some((current, limiter)) if *current == rate => limiter.clone(),
            _ => {
                let limiter = Arc::new(limiter_for(rate));
                self.local = Some((rate, limiter.clone()));
                limiter
            }
        }
    }
}

fn clamp(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A store in memory: a token bucket on the (paused) tokio clock that starts
    /// with a lease period of the rate (as the Redis script does), or failing,
    /// that reports `replicas` live replicas and counts the heartbeats sent
    /// without a lease.
    #[derive(Debug)]
    struct Bucket {
        state: Mutex<(f64, Instant)>,
        failing: std::sync::atomic::AtomicBool,
        asks: Mutex<Vec<Ask>>,
        replicas: AtomicU32,
        beats: Mutex<Vec<Instant>>,
        policy: StorePolicy,
        health: Health,
        fleet: Fleet,
    }

    impl Bucket {
        fn new(fallback: FallbackMode) -> Self {
            Self {
                state: Mutex::new((f64::NAN, Instant::now())),
                failing: Default::default(),
                asks: Mutex::default(),
                replicas: AtomicU32::new(0),
                beats: Mutex::default(),
                policy: StorePolicy {
                    lease: Duration::from_millis(100),
                    timeout: Duration::from_millis(250),
                    retry: Duration::from_secs(1),
                    fallback,
                },
                health: Health::default(),
                fleet: Fleet::default(),
            }
        }

        fn fail(&self, failing: bool) {
            self.failing
                .store(failing, std::sync::atomic::Ordering::SeqCst);
        }

        fn answer_replicas(&self, replicas: u32) {
            self.replicas.store(replicas, Ordering::SeqCst);
        }
    }

    impl Store for Bucket {
        fn take<'a>(&'a self, _key: &'a str, ask: Ask) -> TakeFuture<'a> {
            Box::pin(async move {
                self.asks.lock().unwrap().push(ask);
                if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(());
                }
                let mut state = self.state.lock().unwrap();
                let now = Instant::now();
                let (tokens, at) = *state;
                // A new key starts with one period of the rate, as in Redis.
                let tokens = match tokens.is_nan() {
                    true => (ask.rate as f64 * ask.period.as_secs_f64()).min(ask.capacity as f64),
                    false => (tokens + (now - at).as_secs_f64() * ask.rate as f64)
                        .min(ask.capacity as f64),
                };
                let granted = ask.want.min(tokens as u64);
                let left = tokens - granted as f64;
                *state = (left, now);
                let short = (ask.want as f64 - left).max(0.0);
                Ok(Lease {
                    granted,
                    wait: Duration::from_secs_f64(short / ask.rate as f64),
                    replicas: self.replicas.load(Ordering::SeqCst),
                })
            })
        }

        fn beat(&self) -> BeatFuture<'_> {
            Box::pin(async move {
                self.beats.lock().unwrap().push(Instant::now());
                match self.failing.load(Ordering::SeqCst) {
                    true => Err(()),
                    false => Ok(self.replicas.load(Ordering::SeqCst)),
                }
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

    /// A bucket, and the same as the keepers see it.
    fn bucket(fallback: FallbackMode) -> (Arc<Bucket>, Arc<dyn Store>) {
        let bucket = Arc::new(Bucket::new(fallback));
        (bucket.clone(), bucket)
    }

    /// Runs `futures` together, on this task.
    async fn all<F: Future<Output = ()>>(futures: Vec<F>) {
        let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
        std::future::poll_fn(|cx| {
            for slot in &mut futures {
                if slot
                    .as_mut()
                    .is_some_and(|f| f.as_mut().poll(cx).is_ready())
                {
                    *slot = None;
                }
            }
            match futures.iter().all(Option::is_none) {
                true => std::task::Poll::Ready(()),
                false => std::task::Poll::Pending,
            }
        })
        .await;
    }

    /// Lets spawned probes run.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn wants(bucket: &Bucket) -> Vec<u64> {
        bucket
            .asks
            .lock()
            .unwrap()
            .iter()
            .map(|ask| ask.want)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn leases_slices_and_hands_them_out_locally() {
        let (bucket, store) = bucket(FallbackMode::Wait);
        let mut leases = Leases::default();
        let start = Instant::now();
        // 10,000 B/s: a lease is 1,000 bytes; 100-byte chunks take one round
        // trip per ten chunks.
        for _ in 0..50 {
            leases.take(&store, "k", 10_000, 1, 100).await;
        }
        assert_eq!(bucket.asks.lock().unwrap().len(), 5);
        // The first 1,000 bytes were in the new key's bucket (a slice); the
        // rest came at the rate.
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn leased_bytes_left_over_are_dropped_after_a_second_idle() {
        let (bucket, store) = bucket(FallbackMode::Wait);
        let mut leases = Leases::default();
        // Leases a slice of 1,000 bytes, keeps 900.
        leases.take(&store, "k", 10_000, 1, 100).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        leases.take(&store, "k", 10_000, 1, 100).await;
        assert_eq!(bucket.asks.lock().unwrap().len(), 1, "kept for a second");
        tokio::time::sleep(Duration::from_millis(1001)).await;
        leases.take(&store, "k", 10_000, 1, 100).await;
        assert_eq!(bucket.asks.lock().unwrap().len(), 2, "dropped after");
        assert_eq!(leases.balance, 900);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_falls_back_to_a_local_share_then_rejoins() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(2) });
        let mut leases = Leases::default();
        bucket.fail(true);
        let start = Instant::now();
        // 10,000 B/s shared by two replicas: 5,000 B/s here, whose bucket
        // starts with 500 bytes.
        for _ in 0..10 {
            leases.take(&store, "k", 10_000, 1, 100).await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        assert_eq!(bucket.asks.lock().unwrap().len(), 1);
        bucket.fail(false);
        tokio::time::sleep_until(start + Duration::from_secs(1)).await;
        // The retry period is over: a probe (a lease of nothing) asks in the
        // background while this chunk goes by the fallback, without waiting.
        leases.take(&store, "k", 10_000, 1, 100).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        settle().await;
        leases.take(&store, "k", 10_000, 1, 100).await;
        assert_eq!(wants(&bucket), [1000, 0, 1000]);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn one_failed_lease_sends_every_limit_to_its_fallback_and_one_probes() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(1) });
        let mut limits: Vec<Leases> = (0..3).map(|_| Leases::default()).collect();
        bucket.fail(true);
        let start = Instant::now();
        for (i, leases) in limits.iter_mut().enumerate() {
            leases.take(&store, &format!("k{i}"), 10_000, 1, 100).await;
        }
        // Only the first limit asked; the others went to the fallback at once.
        assert_eq!(wants(&bucket), [1000]);
        // After the retry period, one probe for all of them, still failing.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (i, leases) in limits.iter_mut().enumerate() {
            leases.take(&store, &format!("k{i}"), 10_000, 1, 100).await;
        }
        settle().await;
        assert_eq!(wants(&bucket), [1000, 0]);
        // The store answers again: the next probe succeeds and all rejoin.
        bucket.fail(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
        limits[1].take(&store, "k1", 10_000, 1, 100).await;
        settle().await;
        limits[2].take(&store, "k2", 10_000, 1, 100).await;
        assert_eq!(wants(&bucket), [1000, 0, 0, 1000]);
        // Nobody ever waited for the store.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_waiting_to_ask_again_sees_that_the_store_failed_meanwhile() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(1) });
        let (mut a, mut b) = (Leases::default(), Leases::default());
        // A leases the new key's 1,000 bytes: a whole slice is there again in 100 ms.
        a.take(&store, "a", 10_000, 1, 100).await;
        // A needs more than it holds and waits those 100 ms to ask; meanwhile B
        // finds the store failing. A then goes by its fallback without asking.
        let b_fails = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            bucket.fail(true);
            b.take(&store, "b", 10_000, 1, 100).await;
        };
        tokio::join!(a.take(&store, "a", 10_000, 1, 1000), b_fails);
        assert_eq!(wants(&bucket), [1000, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_makes_streams_wait_when_asked_to() {
        let (bucket, store) = bucket(FallbackMode::Wait);
        let mut leases = Leases::default();
        bucket.fail(true);
        let start = Instant::now();
        let take = leases.take(&store, "k", 10_000, 1, 100);
        let failing = async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            bucket.fail(false);
        };
        tokio::join!(take, failing);
        // Asked at 0 s (failing), probed at 1 and 2 s (failing) and 3 s (it
        // answers); the stream's next look, at 3.25 s, leases.
        assert_eq!(wants(&bucket), [1000, 0, 0, 0, 1000]);
        assert_eq!(start.elapsed(), Duration::from_millis(3250));
    }

    /// How long 1,000 bytes take through a fresh limit, in chunks of 100.
    async fn thousand_bytes(store: &Arc<dyn Store>, key: &str) -> Duration {
        let mut leases = Leases::default();
        let start = Instant::now();
        for _ in 0..10 {
            leases.take(store, key, 10_000, 1, 100).await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn the_learned_fallback_share_follows_the_last_count_of_live_replicas() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
        // Four replicas are alive: a lease says so.
        bucket.answer_replicas(4);
        Leases::default().take(&store, "a", 10_000, 1, 100).await;
        assert_eq!(store.fleet().replicas(), NonZeroU32::new(4));
        // Redis fails: a quarter of 10,000 B/s here, whose bucket starts with
        // 250 bytes: 1,000 bytes take 300 ms (with the whole rate, none).
        bucket.fail(true);
        assert_eq!(
            thousand_bytes(&store, "b").await,
            Duration::from_millis(300)
        );
        // Back, with two replicas left: the probe after the retry period says so.
        bucket.fail(false);
        bucket.answer_replicas(2);
        tokio::time::sleep(Duration::from_secs(1)).await;
        Leases::default().take(&store, "c", 10_000, 1, 100).await;
        settle().await;
        assert_eq!(store.fleet().replicas(), NonZeroU32::new(2));
        // Failing again: half the rate each, 500 bytes at once, 500 in 100 ms.
        bucket.fail(true);
        assert_eq!(
            thousand_bytes(&store, "d").await,
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_that_never_reached_the_store_goes_on_at_the_whole_rate() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
        bucket.fail(true);
        assert_eq!(store.fleet().replicas(), None);
        // 10,000 B/s alone: its bucket holds the 1,000 bytes.
        assert_eq!(thousand_bytes(&store, "k").await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_given_by_hand_ignores_the_learned_one() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: Some(2) });
        bucket.answer_replicas(4);
        Leases::default().take(&store, "a", 10_000, 1, 100).await;
        bucket.fail(true);
        assert_eq!(
            thousand_bytes(&store, "b").await,
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn busy_replicas_beat_with_their_leases_and_idle_ones_on_their_own() {
        let (bucket, store) = bucket(FallbackMode::Wait);
        bucket.answer_replicas(3);
        let mut leases = Leases::default();
        let start = Instant::now();
        // A lease every 150 ms for two seconds (each wants more than it holds).
        for _ in 0..14 {
            leases.take(&store, "k", 10_000, 1, 1000).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let beat_at: Vec<_> = bucket
            .asks
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, ask)| ask.beat)
            .map(|(i, _)| i)
            .collect();
        // The first ask beats, then the first one at least a second later.
        assert_eq!(beat_at, [0, 7]);
        assert!(bucket.beats.lock().unwrap().is_empty(), "no extra request");
        // Idle from 2.1 s on (the last beat at 1.05 s): a beat of its own
        // 1.5 s after the last, and every 1.5 s.
        tokio::time::sleep_until(start + Duration::from_secs(6)).await;
        let since: Vec<_> = bucket
            .beats
            .lock()
            .unwrap()
            .iter()
            .map(|at| (*at - start).as_millis())
            .collect();
        assert_eq!(since, [2550, 4050, 5550]);
        assert_eq!(store.fleet().replicas(), NonZeroU32::new(3));
        // It learns from its own beats too.
        bucket.answer_replicas(2);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(store.fleet().replicas(), NonZeroU32::new(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_replica_asks_a_failing_store_again_with_its_beats() {
        let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
        Leases::default().take(&store, "k", 10_000, 1, 100).await;
        bucket.fail(true);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        bucket.fail(false);
        tokio::time::sleep(Duration::from_secs(2)).await;
        // A beat 1.5 s after the lease finds the store failing (the limits fall
        // back for the retry period, 1 s); with no limit probing, the next beat
        // asks 1.5 s after that period: failing at 4 s, answering at 6.5 s.
        let since: Vec<_> = bucket
            .beats
            .lock()
            .unwrap()
            .iter()
            .map(|at| (*at - start).as_millis())
            .collect();
        assert_eq!(since, [1500, 4000, 6500]);
        assert_eq!(store.health().failing_until(), None);
        // The beating task is the one left; it ends with its store.
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        assert_eq!(tasks(), 1);
        drop((bucket, store));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(tasks(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn replicas_starting_at_once_on_a_new_key_get_one_slice_however_many() {
        for replicas in [2, 3, 5] {
            let (bucket, store) = bucket(FallbackMode::Local { replicas: None });
            bucket.answer_replicas(replicas);
            let start = Instant::now();
            // Each replica's streams take 100-byte chunks as fast as granted;
            // note when each chunk went.
            let sent = Mutex::new(Vec::new());
            let replica = || async {
                let mut leases = Leases::default();
                while start.elapsed() < Duration::from_millis(500) {
                    leases.take(&store, "k", 10_000, 1, 100).await;
                    sent.lock().unwrap().push(start.elapsed());
                }
            };
            all((0..replicas).map(|_| replica()).collect()).await;
            let sent = sent.into_inner().unwrap();
            // One slice (1,000 bytes) at once, then the rate, whatever the count.
            let at_once = sent.iter().filter(|at| at.is_zero()).count();
            assert_eq!(at_once, 10, "{replicas} replicas");
            for at in &sent {
                let by_then = sent.iter().filter(|other| *other <= at).count() as u64 * 100;
                assert!(
                    by_then <= 1000 + 10_000 * at.as_millis() as u64 / 1000,
                    "{replicas}"
                );
            }
        }
    }
}
