//! The protocol: RFC 9110 ranges and conditional requests, decided from header
//! values and a length.
//!
//! Everything here is pure: no I/O, no clock of its own, no runtime. The
//! middleware ([`crate::serve`]) hands it the request's and the response's headers
//! and the representation's length, and gets back what to answer
//! ([`Decision`]) and, for `multipart/byteranges`, the layout of the body
//! ([`Multipart`], a list of [`Segment`]s). What sends the bytes is the body's
//! business ([`crate::source`]), and when it may send them is the throttle's.
//!
//! - [`headers`]: the facts a decision is made from (the request's conditions,
//!   the representation's validators), read from headers.
//! - [`entity_tag`]: entity tags and their comparison (RFC 9110 §8.8.3).
//! - [`range`]: the `Range` header, parsed then resolved against a length (§14).
//! - [`preconditions`]: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//!   `If-Unmodified-Since` and `If-Range`, in the order of §13.2.2.
//! - [`decision`]: 200, 206, 304, 412 or 416.
//! - [`multipart`]: the `multipart/byteranges` layout (§14.6).
//! - [`disposition`]: `Content-Disposition` values (RFC 6266, RFC 8187).
//! - [`accept`]: proactive negotiation, `Accept-Encoding` and `Accept` (§12.5).
//! - `digest` (feature `digest`): `Want-Repr-Digest` and `Want-Digest`
//!   preferences, digest field values, checksum files (RFC 9530, RFC 3230).

pub(crate) mod accept;
pub(crate) mod decision;
#[cfg(feature = "digest")]
pub(crate) mod digest;
pub(crate) mod disposition;
pub(crate) mod entity_tag;
pub(crate) mod headers;
pub(crate) mod multipart;
pub(crate) mod preconditions;
pub(crate) mod range;
mod segment;

#[cfg(test)]
mod differential;

pub(crate) use self::decision::{Decision, decide};
pub(crate) use self::headers::{Conditions, Validators};
pub(crate) use self::multipart::Multipart;
pub(crate) use self::range::ByteRange;
pub(crate) use self::segment::{Segment, Segments};
