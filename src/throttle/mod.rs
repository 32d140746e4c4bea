//! Bandwidth policy: how fast each response goes.
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
//! # Memory
//!
//! Per-client state lives while the client has running streams and is dropped with
//! its last one; memory follows the clients downloading now, not all clients ever
//! seen.

pub(crate) mod bandwidth;
pub(crate) mod client_key;
pub(crate) mod control;
mod limiter;
mod pacer;
pub(crate) mod policy;
pub(crate) mod quota;
#[cfg(feature = "redis")]
mod redis;
mod settings;
mod shared;
mod stream;

pub use self::bandwidth::ParseBandwidthError;
#[cfg(feature = "redis")]
pub use self::redis::{Fallback, RedisLimits};

// At the crate root only (one path per item): `Bandwidth`, `BandwidthControl`,
// `ClientKey`, `Policy`, `Quota`, `QuotaExhausted`.
pub(crate) use self::bandwidth::Bandwidth;
pub(crate) use self::client_key::ClientKey;
pub(crate) use self::control::BandwidthControl;
pub(crate) use self::policy::Policy;

pub(crate) use self::settings::Settings;
pub(crate) use self::shared::TooManyStreams;
pub(crate) use self::stream::Throttle;
