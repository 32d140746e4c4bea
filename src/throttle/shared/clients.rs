//! Per-client shared limits and stream counts, evicted when a client has no
//! stream left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::limit::{Active, SharedLimit};
#[cfg(feature = "redis")]
use crate::throttle::redis::Store;
use crate::throttle::{Bandwidth, ClientKey};

/// The clients with at least one running stream.
///
/// An entry lives exactly as long as its client has streams: the last one to end
/// removes it, so memory follows the number of clients downloading now, not the
/// number ever seen. A client that comes back starts with an empty bucket, which
/// grants nothing that an idle client's full bucket would not (the burst is the
/// same 100 ms of budget either way).
///
/// One limit per client and asked rate (a tier): streams of one client that
/// asked for the same client rate share it; a stream that asked for another
/// rate (a paid request beside a free one) gets a limit of its own, so no
/// request changes the rate of another. The stream cap counts all the client's
/// streams, whatever their tier.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    entries: Mutex<HashMap<ClientKey, Entry>>,
    /// Where client budgets live when several servers share them.
    #[cfg(feature = "redis")]
    store: Option<Arc<dyn Store>>,
}

#[derive(Debug, Default)]
struct Entry {
    /// The client's streams, all tiers together.
    streams: usize,
    /// A client has one tier, rarely a few: a list is enough.
    tiers: Vec<Tier>,
}

/// The limit shared by the streams of one client that asked for `rate`.
#[derive(Debug)]
struct Tier {
    /// The rate the streams asked for (or the last [`Clients::set_rate`]).
    rate: Bandwidth,
    limit: Arc<SharedLimit>,
    streams: usize,
}

/// Refusal: the client already has its maximum of streams.
#[derive(Debug)]
pub(crate) struct TooManyStreams;

impl Clients {
    /// Admits one more stream of `key`, sharing `rate` with the client's other
    /// streams that asked for `rate`. That tier's limit is set to `rate` again if
    /// [`set_rate`](Self::set_rate) changed it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        key: ClientKey,
        rate: Bandwidth,
        max_streams: Option<usize>,
    ) -> Result<ClientStream, TooManyStreams> {
        let mut entries = self.lock();
        let entry = entries.entry(key.clone()).or_default();
        if max_streams.is_some_and(|max| entry.streams >= max) {
            if entry.streams == 0 {
                entries.remove(&key);
            }
            return Err(TooManyStreams);
        }
        entry.streams += 1;
        let tier = match entry.tiers.iter().position(|tier| tier.rate == rate) {
            Some(index) => &mut entry.tiers[index],
            None => {
                entry.tiers.push(Tier {
                    rate,
                    limit: Arc::new(self.new_limit(&key, rate)),
                    streams: 0,
                });
                entry.tiers.last_mut().expect("just pushed")
            }
        };
        tier.streams += 1;
        tier.limit.set_rate(rate);
        let active = tier.limit.enter();
        Ok(ClientStream {
            clients: self.clone(),
            key,
            active,
        })
    }

    /// Sets the rate of every running limit (every client, every tier). Each
    /// tier is then the tier of `rate`: a new request asking for `rate` joins
    /// it rather than opening another.
    pub(crate) fn set_rate(&self, rate: Bandwidth) {
        for entry in self.lock().values_mut() {
            for tier in &mut entry.tiers {
                tier.rate = rate;
                tier.limit.set_rate(rate);
            }
        }
    }

    /// How many streams `key` runs now.
    pub(crate) fn streams(&self, key: &ClientKey) -> usize {
        self.lock().get(key).map_or(0, |entry| entry.streams)
    }

    /// How many clients have running streams.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Clients whose budgets live in `store`.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_by(store: Arc<dyn Store>) -> Self {
        Self {
            entries: Mutex::default(),
            store: Some(store),
        }
    }

    /// A new tier's limit, in the store (if there is one) under its
    /// [`store_key`].
    #[cfg(feature = "redis")]
    fn new_limit(&self, key: &ClientKey, rate: Bandwidth) -> SharedLimit {
        let store = self.store.as_ref();
        let shared_by = store.map(|store| (store.clone(), store_key(key, rate).into()));
        SharedLimit::shared_by(rate, shared_by)
    }

    /// A new tier's limit.
    #[cfg(not(feature = "redis"))]
    fn new_limit(&self, _key: &ClientKey, rate: Bandwidth) -> SharedLimit {
        SharedLimit::new(rate)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The key of a client's tier in a shared store: `client:KEY@RATE`, the rate in
/// bytes per second (`unlimited` for a tier that only counts streams), so that
/// every replica finds one budget per client and tier.
#[cfg(feature = "redis")]
fn store_key(key: &ClientKey, rate: Bandwidth) -> String {
    match rate.limit() {
        Some(_) => format!("client:{key}@{}", rate.bytes_per_second()),
        None => format!("client:{key}@unlimited"),
    }
}

/// One admitted stream of a client; dropping it ends the stream's share.
#[derive(Debug)]
pub(crate) struct ClientStream {
    clients: Arc<Clients>,
    key: ClientKey,
    active: Active,
}

impl ClientStream {
    pub(crate) fn limit(&self) -> &Arc<SharedLimit> {
        self.active.limit()
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        let mut entries = self.clients.lock();
        let Some(entry) = entries.get_mut(&self.key) else {
            return;
        };
        entry.streams -= 1;
        if entry.streams == 0 {
            entries.remove(&self.key);
            return;
        }
        let limit = self.active.limit();
        if let Some(index) = entry
            .tiers
            .iter()
            .position(|tier| Arc::ptr_eq(&tier.limit, limit))
        {
            entry.tiers[index].streams -= 1;
            if entry.tiers[index].streams == 0 {
                entry.tiers.swap_remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_while_streams_run() {
        let clients = Arc::new(Clients::default());
        let a1 = clients.admit("a".into(), Bandwidth::kib(1), None).unwrap();
        let a2 = clients.admit("a".into(), Bandwidth::kib(1), None).unwrap();
        let b = clients.admit("b".into(), Bandwidth::kib(1), None).unwrap();
        assert_eq!(clients.len(), 2);
        assert_eq!(a1.limit().chunk_hint(), Some(1024 / 10 / 2));
        drop(a1);
        assert_eq!(clients.len(), 2);
        drop((a2, b));
        assert_eq!(clients.len(), 0);
    }

    #[test]
    fn streams_beyond_the_maximum_are_refused() {
        let clients = Arc::new(Clients::default());
        let first = clients
            .admit("a".into(), Bandwidth::UNLIMITED, Some(2))
            .unwrap();
        let _second = clients
            .admit("a".into(), Bandwidth::UNLIMITED, Some(2))
            .unwrap();
        assert!(
            clients
                .admit("a".into(), Bandwidth::UNLIMITED, Some(2))
                .is_err()
        );
        assert!(
            clients
                .admit("b".into(), Bandwidth::UNLIMITED, Some(2))
                .is_ok()
        );
        drop(first);
        assert!(
            clients
                .admit("a".into(), Bandwidth::UNLIMITED, Some(2))
                .is_ok()
        );
    }

    #[test]
    fn a_refused_first_stream_leaves_no_entry() {
        let clients = Arc::new(Clients::default());
        assert!(
            clients
                .admit("a".into(), Bandwidth::UNLIMITED, Some(0))
                .is_err()
        );
        assert_eq!(clients.len(), 0);
    }

    #[test]
    fn streams_that_asked_for_other_rates_keep_their_own() {
        let clients = Arc::new(Clients::default());
        let free = clients.admit("a".into(), Bandwidth::kib(1), None).unwrap();
        let paid = clients.admit("a".into(), Bandwidth::kib(2), None).unwrap();
        let free2 = clients.admit("a".into(), Bandwidth::kib(1), None).unwrap();
        assert_eq!(free.limit().rate(), Bandwidth::kib(1));
        assert_eq!(paid.limit().rate(), Bandwidth::kib(2));
        assert!(Arc::ptr_eq(free.limit(), free2.limit()));
        assert!(!Arc::ptr_eq(free.limit(), paid.limit()));
        assert_eq!(clients.len(), 1);
        assert_eq!(clients.streams(&"a".into()), 3);
        // The control changes every tier; a request at the new rate joins one.
        clients.set_rate(Bandwidth::kib(3));
        assert_eq!(free.limit().rate(), Bandwidth::kib(3));
        assert_eq!(paid.limit().rate(), Bandwidth::kib(3));
        let free3 = clients.admit("a".into(), Bandwidth::kib(3), None).unwrap();
        assert!(Arc::ptr_eq(free.limit(), free3.limit()));
        drop((free, free2, free3));
        // The last stream of a tier removes the tier, not the client.
        assert_eq!(clients.lock()[&ClientKey::from("a")].tiers.len(), 1);
        drop(paid);
        assert_eq!(clients.len(), 0);
    }

    #[test]
    fn the_stream_cap_counts_every_tier() {
        let clients = Arc::new(Clients::default());
        let _free = clients
            .admit("a".into(), Bandwidth::kib(1), Some(2))
            .unwrap();
        let _paid = clients
            .admit("a".into(), Bandwidth::kib(2), Some(2))
            .unwrap();
        assert!(
            clients
                .admit("a".into(), Bandwidth::kib(4), Some(2))
                .is_err()
        );
    }
}
