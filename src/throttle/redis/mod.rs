//! Client and total limits shared by several servers through Redis (the `redis`
//! feature): [`RedisLimits`] is the public face, [`Store`] the seam a limit's
//! turn keeper leases through.

mod fleet;
mod limits;
mod store;

pub use self::limits::{Fallback, RedisLimits};
pub(crate) use self::store::{Leases, Store};

/// The store sharing a limit's budget, and the limit's key in it.
pub(crate) type SharedBy = (std::sync::Arc<dyn Store>, std::sync::Arc<str>);
