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
#[derive(Debug, Default)]
pub(crate) struct Clients {
    entries: Mutex<HashMap<ClientKey, Entry>>,
    /// Where client budgets live when several servers share them.
    #[cfg(feature = "redis")]
    store: Option<Arc<dyn Store>>,
}

#[derive(Debug)]
struct Entry {
    limit: Arc<SharedLimit>,
    streams: usize,
}

/// Refusal: the client already has its maximum of streams.
#[derive(Debug)]
pub(crate) struct TooManyStreams;

impl Clients {
    /// Admits one more stream of `key`, sharing `rate` with the client's others.
    /// The client's rate becomes `rate` if it was another one.
    pub(crate) fn admit(
        self: &Arc<Self>,
        key: ClientKey,
        rate: Bandwidth,
        max_streams: Option<usize>,
    ) -> Result<ClientStream, TooManyStreams> {
        let mut entries = self.lock();
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            limit: Arc::new(self.new_limit(&key, rate)),
            streams: 0,
        });
        if max_streams.is_some_and(|max| entry.streams >= max) {
            if entry.streams == 0 {
                entries.remove(&key);
            }
            return Err(TooManyStreams);
        }
        entry.streams += 1;
        entry.limit.set_rate(rate);
        let active = entry.limit.enter();
        Ok(ClientStream {
            clients: self.clone(),
            key,
            active,
        })
    }

    /// Sets the rate of every client with running streams.
    pub(crate) fn set_rate(&self, rate: Bandwidth) {
        for entry in self.lock().values() {
            entry.limit.set_rate(rate);
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

    /// A new client's limit, in the store under `client:KEY` if there is one.
    #[cfg(feature = "redis")]
    fn new_limit(&self, key: &ClientKey, rate: Bandwidth) -> SharedLimit {
        let store = self.store.as_ref();
        let shared_by = store.map(|store| (store.clone(), format!("client:{key}").into()));
        SharedLimit::shared_by(rate, shared_by)
    }

    /// A new client's limit.
    #[cfg(not(feature = "redis"))]
    fn new_limit(&self, _key: &ClientKey, rate: Bandwidth) -> SharedLimit {
        SharedLimit::new(rate)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
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
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.streams -= 1;
            if entry.streams == 0 {
                entries.remove(&self.key);
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
    fn the_latest_rate_of_a_client_applies_to_all_its_streams() {
        let clients = Arc::new(Clients::default());
        let a1 = clients.admit("a".into(), Bandwidth::kib(1), None).unwrap();
        let _a2 = clients.admit("a".into(), Bandwidth::kib(2), None).unwrap();
        assert_eq!(a1.limit().rate(), Bandwidth::kib(2));
        clients.set_rate(Bandwidth::kib(3));
        assert_eq!(a1.limit().rate(), Bandwidth::kib(3));
    }
}
