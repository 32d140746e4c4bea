//! Client and total limits shared by several servers through Redis (the `redis`
//! feature): [`RedisLimits`] is the public face, [`Store`] the seam a limit's
//! turn keeper leases through ([`Leases`]).
//!
//! From the bottom up: `fleet` (what a replica knows of the others) and
//! `health` (whether the store fails) are plain state; `store` is the trait
//! and its requests; `tasks` the requests made in tasks of their own (the
//! probe of a failing store, the heartbeat of an idle replica); `leases` the
//! algorithm a keeper takes its budget by; `limits`, `scripts` and `fallback`
//! the Redis store itself and its options.

mod fallback;
mod fleet;
pub(crate) mod health;
mod leases;
mod limits;
mod scripts;
pub(crate) mod store;
pub(crate) mod tasks;
#[cfg(test)]
pub(crate) mod testing;

pub use self::fallback::Fallback;
pub(crate) use self::leases::Leases;
pub use self::limits::RedisLimits;
pub(crate) use self::store::Store;

/// The store sharing a limit's budget, and the limit's key in it.
pub(crate) type SharedBy = (std::sync::Arc<dyn Store>, std::sync::Arc<str>);
