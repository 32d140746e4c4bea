//! Limits shared by many responses: one per client ([`Clients`]) and one per
//! layer (the total), each a [`SharedLimit`] whose turn keeper (see [`turns`])
//! alone acquires from its `leaky-bucket` limiter, or leases from Redis with the
//! `redis` feature.

mod clients;
mod limit;
mod turns;

pub(crate) use self::clients::{ClientStream, Clients, TooManyStreams};
pub(crate) use self::limit::{Active, SharedLimit};
pub(crate) use self::turns::Turn;
