//! The open connections of a layer's [`Connections`](super::Connections), by
//! peer address: how a request finds its connection's [`IdleSignal`] when the
//! server (say `axum::serve`) gives it only `ConnectInfo<SocketAddr>`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::connection::IdleSignal;

/// Peer address to idle signal, for the connections open now. A peer address
/// (IP and port) names one open TCP connection of a listener.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    signals: Mutex<HashMap<SocketAddr, IdleSignal>>,
    /// `signals.len()`, read without the lock: a layer whose connections are not
    /// registered never locks.
    len: AtomicUsize,
}

impl Peers {
    /// The signal of the connection from `peer`, if it is registered.
    pub(crate) fn signal(&self, peer: SocketAddr) -> Option<IdleSignal> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.lock().get(&peer).cloned()
    }

    /// Registers the connection from `peer` until the registration drops.
    pub(crate) fn register(self: &Arc<Self>, peer: SocketAddr, signal: IdleSignal) -> Registration {
        let mut signals = self.lock();
        signals.insert(peer, signal);
        self.len.store(signals.len(), Ordering::Relaxed);
        Registration {
            peers: self.clone(),
            peer,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, IdleSignal>> {
        self.signals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A registered connection; dropping it removes the entry.
#[derive(Debug)]
pub(crate) struct Registration {
    peers: Arc<Peers>,
    peer: SocketAddr,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut signals = self.peers.lock();
        signals.remove(&self.peer);
        self.peers.len.store(signals.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_found_by_its_peer_while_it_is_open() {
        let peers = Arc::new(Peers::default());
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert!(peers.signal(a).is_none());
        let registration = peers.register(a, IdleSignal::default());
        assert!(peers.signal(a).is_some());
        assert!(peers.signal(b).is_none());
        drop(registration);
        assert!(peers.signal(a).is_none());
        assert_eq!(peers.len.load(Ordering::Relaxed), 0);
    }
}
