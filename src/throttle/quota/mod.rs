//! Transfer quotas: bytes per client per period (see the
//! [`throttle`](crate::throttle#quotas) module docs for the behaviour).
//!
//! One concern per file: [`Quota`] and [`QuotaExhausted`] (`value`), the
//! windows (`window`), one client's account (`account`) and its leases of a
//! counter shared through Redis (`shared`), the table of accounts (`table`),
//! a download's gate in the frame loop (`gate`) and the `RateLimit` fields
//! (`headers`).

mod account;
mod gate;
pub(crate) mod headers;
#[cfg(feature = "redis")]
mod shared;
mod table;
pub(crate) mod value;
mod window;

pub(crate) use self::account::{Account, Check};
pub(crate) use self::gate::{QuotaGate, Spent};
pub(crate) use self::table::Quotas;
pub use self::value::{Quota, QuotaExhausted};
