//! How the workers of `--workers N` share connections: a new connection is
//! served by the worker serving the fewest (`--no-balance`: by the one whose
//! listener the kernel chose).
//!
//! The kernel spreads the connections over the `SO_REUSEPORT` listeners by a
//! hash of the client's address and port, blind to load: in a check, 64
//! connections landed 39 and 25. So a worker that accepts a connection while
//! it serves [`SLACK`] more than another hands it over, through that worker's
//! inbox, before reading a byte of it. With connections spread evenly nothing
//! moves; a handed connection costs a system call on each side and a wake-up
//! of the other worker. Measured (BENCHMARKS.md, "Whole-program optimisation
//! and balanced workers"): random small files over 64 connections 8-13% more
//! requests per second than `--no-balance`; HTTPS p99 within the noise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tower_range_serve::lifecycle::Connection;

/// How many more connections than another a worker may serve and still keep
/// a new one: with clients that open a connection per request, one of
/// difference comes and goes all the time, and handing those over cost 3-5%
/// of the new TLS connections per second.
const SLACK: usize = 2;

/// The live connections of every worker, and their inboxes.
#[derive(Clone)]
pub(crate) struct Balance {
    live: Arc<[AtomicUsize]>,
    inboxes: Arc<[mpsc::UnboundedSender<Handed>]>,
}

/// A connection handed to another worker, already counted there.
pub(crate) struct Handed {
    pub(crate) stream: std::net::TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) live: Live,
}

/// One connection counted on a worker, until dropped.
pub(crate) struct Live {
    live: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

/// One worker's side: its index, the balance, and its inbox.
pub(crate) struct Worker {
    index: usize,
    balance: Balance,
    inbox: mpsc::UnboundedReceiver<Handed>,
}

impl Balance {
    /// `n` workers, each with its side.
    pub(crate) fn workers(n: usize) -> Vec<Worker> {
        let (senders, inboxes): (Vec<_>, Vec<_>) =
            (0..n).map(|_| mpsc::unbounded_channel()).unzip();
        let balance = Self {
            live: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            inboxes: senders.into(),
        };
        inboxes
            .into_iter()
            .enumerate()
            .map(|(index, inbox)| Worker {
                index,
                balance: balance.clone(),
                inbox,
            })
            .collect()
    }

    /// The worker that should serve a connection `worker` accepted: `worker`
    /// unless another serves at least [`SLACK`] fewer (the fewest, then).
    /// Counted there.
    fn place(&self, worker: usize) -> Live {
        let count = |w: usize| self.live[w].load(Ordering::Relaxed);
        let least = (0..self.live.len())
            .min_by_key(|&w| count(w))
            .unwrap_or(worker);
        let to = if count(least) + SLACK <= count(worker) {
            least
        } else {
            worker
        };
        self.live[to].fetch_add(1, Ordering::Relaxed);
        Live {
            live: self.live.clone(),
            worker: to,
        }
    }
}

/// A worker that stopped (or never started listening) takes nothing more: it
/// counts as full.
impl Drop for Worker {
    fn drop(&mut self) {
        self.balance.live[self.index].store(usize::MAX / 2, Ordering::Relaxed);
    }
}

impl Worker {
    /// A connection this worker accepted: back with its count when it stays
    /// here, `None` when it went to another worker (or was lost on the way,
    /// which is logged).
    pub(crate) fn place(
        &self,
        connection: Connection<TcpStream>,
        peer: SocketAddr,
    ) -> Option<(Connection<TcpStream>, Live)> {
        let live = self.balance.place(self.index);
        if live.worker == self.index {
            return Some((connection, live));
        }
        let to = live.worker;
        match connection.into_inner().into_std() {
            // The other worker stopped since it was chosen: shutting down,
            // the connection is closed.
            Ok(stream) => {
                if self.balance.inboxes[to]
                    .send(Handed { stream, peer, live })
                    .is_err()
                {
                    eprintln!("{peer}: worker {to} stopped; connection closed");
                }
            }
            Err(e) => eprintln!("{peer}: cannot hand the connection to worker {to}: {e}"),
        }
        None
    }

    /// The next connection another worker hands over.
    pub(crate) async fn handed(&mut self) -> Option<Handed> {
        self.inbox.recv().await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tower_range_serve::RangeServeLayer;
    use tower_range_serve::lifecycle::Connections;

    use super::*;

    fn counts(balance: &Balance) -> Vec<usize> {
        balance
            .live
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn a_connection_goes_to_the_worker_serving_the_fewest() {
        let workers = Balance::workers(3);
        let balance = &workers[0].balance;
        let a = balance.place(0);
        let b = balance.place(0);
        assert_eq!(
            (a.worker, b.worker),
            (0, 0),
            "one more than the others: stays"
        );
        let c = balance.place(0);
        assert_eq!(c.worker, 1, "two more: to the first of the fewest");
        let d = balance.place(2);
        assert_eq!(d.worker, 2);
        assert_eq!(counts(balance), [2, 1, 1]);
        drop((c, d));
        let e = balance.place(0);
        assert_eq!(e.worker, 1, "1 and 2 serve none again");
        drop((a, b, e));
        assert_eq!(
            counts(balance),
            [0, 0, 0],
            "a connection's count ends with it"
        );
    }

    #[test]
    fn a_stopped_worker_takes_nothing() {
        let mut workers = Balance::workers(2);
        drop(workers.pop());
        let balance = workers[0].balance.clone();
        let placed: Vec<_> = (0..5).map(|_| balance.place(0)).collect();
        assert!(placed.iter().all(|live| live.worker == 0));
    }

    #[tokio::test]
    async fn a_handed_connection_carries_on_in_the_other_worker() {
        let shutdown = RangeServeLayer::new().shutdown_handle();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = Connections::new(tcp, &shutdown);
        let mut workers = Balance::workers(2);
        let mut clients = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).await.unwrap());
            let (connection, peer) = listener.accept().await.unwrap();
            kept.push(workers[0].place(connection, peer).expect("stays"));
        }
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (connection, peer) = listener.accept().await.unwrap();
        assert!(workers[0].place(connection, peer).is_none(), "handed over");
        assert_eq!(counts(&workers[0].balance), [2, 1]);

        let handed = workers[1].handed().await.unwrap();
        assert_eq!(handed.peer, peer);
        let stream = TcpStream::from_std(handed.stream).unwrap();
        let mut moved = listener.adopt(stream, handed.peer);
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0; 4];
        moved.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        moved.write_all(b"pong").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");

        drop((moved, handed.live, kept));
        assert_eq!(counts(&workers[0].balance), [0, 0]);
    }
}
