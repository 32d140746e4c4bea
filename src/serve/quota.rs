//! The quota's part of an answer: whether a download may start, the 429 of a
//! client that has spent its quota, and the `RateLimit` fields on the others.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::response::Parts;

use super::respond::quota_spent;
use crate::throttle::quota::{Account, Check, QuotaExhausted, headers};

/// Whether a download may start under its client's quota.
pub(crate) enum Admission {
    Open,
    /// 429 until the window ends.
    Spent,
    /// Ask again when this is ready (a lease from Redis is on its way).
    Wait(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// Whether a download may start: while anything of the quota is left, and
/// after it under [`QuotaExhausted::Reduce`] (at the reduced rate).
pub(crate) fn admission(account: &Arc<Account>, exhausted: QuotaExhausted) -> Admission {
    match account.check(1) {
        Check::Allowed(_) => Admission::Open,
        Check::Spent if exhausted.reduced().is_some() => Admission::Open,
        Check::Spent => Admission::Spent,
        Check::Wait(wait) => Admission::Wait(wait),
    }
}

/// Whether a download may start, without waiting for Redis (for `HEAD`: what
/// this process knows).
pub(crate) fn spent_now(account: &Arc<Account>, exhausted: QuotaExhausted) -> bool {
    matches!(admission(account, exhausted), Admission::Spent)
}

/// Turns `parts` into the 429 of a client that has spent its quota.
pub(crate) fn refuse(parts: &mut Parts, account: &Account) {
    let reset = account.reset();
    quota_spent(parts, reset);
    headers::insert(&mut parts.headers, account.quota(), 0, reset);
}

/// Tells the client its quota and what is left of it (before this answer).
pub(crate) fn inform(parts: &mut Parts, account: &Account) {
    let (remaining, reset) = (account.remaining(), account.reset());
    headers::insert(&mut parts.headers, account.quota(), remaining, reset);
}
