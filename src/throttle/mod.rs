//! Bandwidth policy: how fast each response goes, and how much each client may
//! receive per period (quotas).
//!
//! # Limits
//!
//! A response obeys every limit that applies to it at once:
//!
//! - **its own rate** ([`RangeServeLayer::rate`](crate::RangeServeLayer::rate)),
//!   after an optional unthrottled start
//!   ([`rate_after`](crate::RangeServeLayer::rate_after), like nginx's
//!   `limit_rate_after`). Paced by a clock per response: exact over any duration.
//! - **its client's rate** ([`client_rate`](crate::RangeServeLayer::client_rate)),
//!   shared fairly by all running responses of one [`ClientKey`] (by default the
//!   peer IP): 16 parallel connections of one client get the same total as one,
//!   each about a sixteenth.
//! - **the total rate** ([`total_rate`](crate::RangeServeLayer::total_rate)) of all
//!   responses of the layer (and its clones) together.
//!
//! A limit left unlimited turns nothing on: a response under no finite limit is
//! sent unthrottled, counts towards nothing and costs nothing per chunk. A
//! response that started so is not throttled later if a
//! [`BandwidthControl`] sets a limit meanwhile; responses
//! that were under a limit follow its changes.
//!
//! Shared limits are [`leaky-bucket`](https://docs.rs/leaky-bucket) limiters
//! counting bytes. Sharers take turns chunk by chunk, first come, first served,
//! and every chunk is a tenth of a second of the sharer's part of the rate, so
//! turns are equal and short.
//!
//! # Precedence
//!
//! For each request the layer builds a [`Policy`] from its
//! settings, then hands it to the [policy function](crate::RangeServeLayer::policy),
//! if any, which may read and change any of it (pick the tier from an
//! authentication extension, say). Last, a
//! handler's [`FileResponse::rate`](crate::FileResponse::rate) replaces the
//! response's own rate (a file's own rate, or unlimited). Client and total limits
//! are the operator's caps: a handler cannot lift them.
//!
//! A [`Restriction`] in the request's extensions (a signed link's claims, say)
//! is applied after the policy function: it may set the client key and only
//! lower the rates and the stream cap, and its rate caps a handler's rate too.
//!
//! # Bursts and precision
//!
//! - Own rate: the bytes sent by time `t` never exceed `rate_after + rate × t`
//!   plus one chunk plus 100 ms of the rate (the slack that lets a briefly
//!   delayed stream catch up; a stream stalled for longer does not burst).
//! - Shared rates: a limiter holds at most 100 ms of its budget, so after an idle
//!   period a client may receive 100 ms of its rate at once, never more.
//! - Chunks: a response paced by its own rate sends a tenth of a second of it at
//!   once, but at least [`min_throttled_chunk`](crate::RangeServeLayer::min_throttled_chunk)
//!   (16 KiB, or one second of the rate if that is less): at 16 KiB/s one chunk
//!   a second, as nginx does, because each chunk costs a timer, a read, a write
//!   and a wake-up. Under a shared limit a chunk is a tenth of a second of the
//!   response's share (at least 512 bytes), so sharers take short, equal turns.
//!   An unthrottled response keeps the layer's chunk size.
//!
//! # Slow consumers and dropped streams
//!
//! A client that stops reading never slows the others sharing its limits. Each
//! shared limit has one task, its turn keeper, which alone acquires from the
//! leaky-bucket limiter and grants chunks to the streams first come, first
//! served; a stream asks for its next chunk one chunk ahead and waits only for
//! its own grant, whether or not its consumer is polling (a leaky-bucket waiter
//! may be the one refilling the bucket for everyone, so no stream's consumer may
//! hold that role). A response that ends or is dropped gives its place up at
//! once: the keeper stops acquiring for it and the tokens gathered so far go back
//! to the bucket.
//!
//! # Clients
//!
//! A client is told apart by its [`ClientKey`], found by the
//! layer's [`client_key`](crate::RangeServeLayer::client_key) function (by
//! default the peer IP, from a `SocketAddr` extension or axum's `ConnectInfo`) or
//! set by the policy function. When a client rate or a stream cap applies and no
//! key is found, the request is not let through unlimited: every such request
//! of the layer counts as one client, [`ClientKey::UNIDENTIFIED`](crate::ClientKey::UNIDENTIFIED),
//! sharing its rate and its stream cap, and with the `tracing` feature the first
//! one logs a warning. Fix the key function rather than rely on it.
//!
//! # Tiers: one client, several client rates
//!
//! A request's client rate applies to the streams that asked for it. Streams
//! of one client key that asked for the same client rate share it; a stream
//! that asked for another rate (the policy function gave a paid request 2 MiB/s
//! beside the same user's free downloads at 100 KiB/s) shares another limit of
//! that rate with the client's other streams of that tier. No request changes
//! the rate of another: the free downloads stay at 100 KiB/s, the paid one gets
//! 2 MiB/s, and the client gets both together. The stream cap counts the
//! client's streams of every tier. Changing rates on purpose is
//! [`BandwidthControl::set_client_rate`]'s job: it sets every running client
//! limit, of every tier, to the new rate (a client with streams in two tiers
//! then gets it twice until one tier's streams end). With Redis, every replica shares one budget per client and tier
//! (`client:KEY@RATE`).
//!
//! # Admission
//!
//! With [`max_streams_per_client`](crate::RangeServeLayer::max_streams_per_client),
//! a client's request beyond its running streams gets `429 Too Many Requests`
//! with `Retry-After` before any byte of the file is sent. Only responses with a
//! body count (not `HEAD`, 304, 412 or 416); a `HEAD` gets the 429 its `GET`
//! would get.
//!
//! # Quotas
//!
//! A [`Quota`](crate::Quota) says how many bytes a client may receive per
//! period ("10 GiB per day"): set it on the layer
//! ([`RangeServeLayer::quota`](crate::RangeServeLayer::quota)) or per request
//! in the policy function ([`Policy::quota`](crate::Policy::quota), a tier; a signed link's claims
//! apply through the policy the same way). It applies per [`ClientKey`];
//! requests without a key share the quota of [`ClientKey::UNIDENTIFIED`], as
//! they share a client rate. A client's downloads under one quota share it;
//! a request under another quota (another tier) counts apart.
//!
//! **Delivered bytes.** Every frame of a download is charged when it is handed
//! to the server (what an [`Observer`](crate::lifecycle::Observer) counts as
//! sent), throttled or not: a download cut after 3 MiB spends 3 MiB, a resume
//! spends what it sends, `HEAD`, 304, 412, 416 and refusals spend nothing, and
//! `multipart/byteranges` spends its whole body (boundaries included). It
//! costs a check and a charge per frame (an uncontended lock each; measured
//! in BENCHMARKS.md: about 1 µs per request, 2–3 ms per GiB in 64 KiB frames).
//!
//! **Windows** are fixed and aligned to the Unix epoch (a day's quota starts
//! afresh at 00:00 UTC); see [`Quota`](crate::Quota#windows) for why, and the
//! burst at a window's edge.
//!
//! **When it is spent**, [`QuotaExhausted`](crate::QuotaExhausted) decides:
//!
//! - `End` (the default): a new request gets `429 Too Many Requests` before any
//!   byte, with `Retry-After` the seconds until the window ends (rounded up; a
//!   fixed window frees nothing sooner); `HEAD` gets the 429 its `GET` would.
//!   A running download is checked before each chunk, and its chunks are no
//!   larger than what was left at the last check, so a download alone ends
//!   exactly at the quota. Downloads of one client running at once may each
//!   send one chunk beyond it: **a client never receives more than its quota
//!   plus one chunk (the [`chunk_size`](crate::RangeServeLayer::chunk_size),
//!   64 KiB by default, or less when throttled) per running download per
//!   window**. The download then ends with an error, so the connection is
//!   aborted and the client can resume with `Range` and `If-Range` later;
//!   observers see [`Outcome::QuotaExhausted`](crate::lifecycle::Outcome::QuotaExhausted)
//!   and, for the 429, [`Refusal::Quota`](crate::lifecycle::Refusal::Quota).
//! - `Reduce(rate)`: running downloads go on at `rate` each (besides their
//!   other limits), and new requests are served at it rather than refused,
//!   until the window ends. The bytes still count. The rate is per download:
//!   bound a client's total with
//!   [`max_streams_per_client`](crate::RangeServeLayer::max_streams_per_client).
//!
//! **Telling the client.** Downloads (200, 206), `HEAD` and the quota's 429
//! carry the fields of
//! [draft-ietf-httpapi-ratelimit-headers-09](https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/09/)
//! (§3, §4), with the quota unit `content-bytes`:
//!
//! ```text
//! RateLimit-Policy: "quota";q=10737418240;qu="content-bytes";w=86400
//! RateLimit: "quota";r=5368709120;t=3600
//! ```
//!
//! `r` is what was left before this answer (0 once spent), `t` the seconds
//! until the window ends (rounded up). A 429 for too many streams carries
//! neither.
//!
//! **Across replicas** (the `redis` feature, `RedisLimits`): each client's
//! counter is one Redis key per window, `{prefix}:quota:{client}@{bytes}/{period_ms}:{window}`,
//! kept by an atomic script on Redis's clock (so replicas agree on windows
//! whatever their clocks say) and expiring a second after its window. A
//! replica leases 1% of the quota at a time (at least 64 KiB, at most the
//! quota) in a task of its own and spends it locally: one Redis call per lease,
//! never one per chunk. A client new to a replica in a window waits for one
//! lease (one round trip) before its answer, so that a spent quota is a 429,
//! not a cut download. Leased bytes count as used: a client may be refused
//! while up to a lease per replica it used is leased but unsent (it gets them
//! if it comes back to that replica within the window).
//!
//! **While Redis is away** each replica goes on, never unlimited, with its
//! unspent lease and its share of what the counter had left at its last
//! answer: divided by the replicas it last saw (`Fallback::LearnedShare`,
//! the default) or by the count given (`Fallback::LocalShare`); under
//! `Fallback::Wait` downloads and new requests wait for Redis. A replica that
//! never reached Redis counts as alone (the whole quota). What a replica
//! delivers meanwhile is added to the counter when Redis answers again. With
//! every replica cut off, together they deliver about what was left; if only
//! `k` of `n` are (a partition), up to `k / n` of what was left more.
//!
//! # Memory
//!
//! Per-client state lives while the client has running streams and is dropped with
//! its last one; memory follows the clients downloading now, not all clients ever
//! seen. A quota's accounts must outlive downloads (a client that comes back
//! must find its quota spent): each is kept until its window ends and no
//! download holds it, and the table is swept when it has doubled, so its size
//! follows the clients seen in the current window.

pub(crate) mod bandwidth;
pub(crate) mod client_key;
pub(crate) mod control;
mod limiter;
mod pacer;
pub(crate) mod policy;
pub(crate) mod quota;
#[cfg(feature = "redis")]
mod redis;
mod restriction;
mod settings;
mod shared;
mod stream;

pub use self::bandwidth::ParseBandwidthError;
#[cfg(feature = "redis")]
pub use self::redis::{Fallback, RedisLimits};
pub use self::restriction::Restriction;

// At the crate root only (one path per item): `Bandwidth`, `BandwidthControl`,
// `ClientKey`, `Policy`, `Quota`, `QuotaExhausted`.
pub(crate) use self::bandwidth::Bandwidth;
pub(crate) use self::client_key::ClientKey;
pub(crate) use self::control::BandwidthControl;
pub(crate) use self::policy::Policy;

pub(crate) use self::settings::Settings;
pub(crate) use self::shared::TooManyStreams;
pub(crate) use self::stream::Throttle;
