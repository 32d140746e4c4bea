//! A fault-injecting TCP proxy for tests: between a client and a server, on
//! loopback, it cuts connections after a random number of bytes (either
//! direction), stalls, trickles a few bytes at a time, resets (`SO_LINGER` 0,
//! an RST) instead of closing with a FIN, and splits writes at odd sizes.
//!
//! Every connection draws its plan from the proxy's seed and its own number, so
//! a failure replays from its seed (connections are numbered in accept order).
//! The proxy runs on a runtime of its own, on a thread of its own, so that its
//! tasks never count among the tasks of the runtime under test. The plans are
//! in `faults.rs`. Both files are also compiled into `examples/fault_proxy.rs`
//! (the real-client script starts that one).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use super::faults::{Faults, Rng};

/// What the proxy did so far.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    /// Connections the proxy cut (FIN or RST).
    pub cuts: AtomicU64,
    /// The cuts that were resets.
    pub resets: AtomicU64,
    pub stalls: AtomicU64,
    pub trickles: AtomicU64,
    /// Connections being relayed now.
    pub open: AtomicU64,
    /// Bytes relayed server to client.
    pub bytes_down: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }

    pub fn summary(&self) -> String {
        format!(
            "connections {} cuts {} resets {} stalls {} trickles {} open {}",
            Self::get(&self.connections),
            Self::get(&self.cuts),
            Self::get(&self.resets),
            Self::get(&self.stalls),
            Self::get(&self.trickles),
            Self::get(&self.open),
        )
    }
}

/// A proxy running on its own thread; stopped (its connections dropped) when
/// dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream`.
    pub fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> Self {
        Self::start_on(
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            faults,
            seed,
            false,
        )
    }

    /// Starts a proxy on `listen`; `log` prints one line per cut connection.
    pub fn start_on(
        listen: SocketAddr,
        upstream: SocketAddr,
        faults: Faults,
        seed: u64,
        log: bool,
    ) -> Self {
        let listener = std::net::TcpListener::bind(listen).expect("the proxy binds");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = stats.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let config = Arc::new(Config {
                    upstream,
                    faults,
                    seed,
                    log,
                });
                tokio::select! {
                    _ = stopped => {}
                    () = accept_loop(listener, config, shared) => {}
                }
            });
            // Dropping the runtime drops every connection still relayed.
        });
        Self {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs until the proxy's thread ends (never, unless stopped).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Config {
    upstream: SocketAddr,
    faults: Faults,
    seed: u64,
    log: bool,
}

async fn accept_loop(listener: TcpListener, config: Arc<Config>, stats: Arc<Stats>) {
    let mut number = 0u64;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        number += 1;
        stats.connections.fetch_add(1, Ordering::SeqCst);
        stats.open.fetch_add(1, Ordering::SeqCst);
        let (config, stats) = (config.clone(), stats.clone());
        tokio::spawn(async move {
            let _open = Open(&stats);
            if let Ok(server) = TcpStream::connect(config.upstream).await {
                relay(client, server, number, &config, &stats).await;
            }
        });
    }
}

/// Counts a connection as open while alive.
struct Open<'a>(&'a Stats);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How one direction of one connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The sender closed (FIN): passed on.
    Closed,
    /// The proxy cut here.
    Cut,
    /// A read or write failed (a peer reset, say).
    Failed,
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    number: u64,
    config: &Config,
    stats: &Stats,
) {
    let faults = &config.faults;
    let mut plan = Rng::new(config.seed ^ number.wrapping_mul(0xa076_1d64_78bd_642f));
    let cut = plan.chance(faults.cut) || number <= faults.cut_first;
    let upstream_cut = cut && plan.chance(faults.cut_upstream);
    let cut_at = match (cut, upstream_cut) {
        (false, _) => None,
        (true, false) => Some(plan.between(faults.cut_after)),
        (true, true) => Some(plan.between(faults.cut_upstream_after)),
    };
    let reset = plan.chance(faults.reset);
    let (up_rng, down_rng) = (Rng::new(plan.next_u64()), Rng::new(plan.next_u64()));
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let up = pump(
            client_read,
            server_write,
            upstream_cut.then_some(cut_at).flatten(),
            faults,
            up_rng,
            stats,
            false,
        );
        let down = pump(
            server_read,
            client_write,
            (!upstream_cut).then_some(cut_at).flatten(),
            faults,
            down_rng,
            stats,
            true,
        );
        tokio::pin!(up, down);
        let (mut up_end, mut down_end) = (None, None);
        loop {
            tokio::select! {
                end = &mut up, if up_end.is_none() => up_end = Some(end),
                end = &mut down, if down_end.is_none() => down_end = Some(end),
            }
            match (up_end, down_end) {
                (Some(End::Cut), _) | (_, Some(End::Cut)) => break End::Cut,
                (Some(End::Failed), _) | (_, Some(End::Failed)) => break End::Failed,
                (Some(End::Closed), Some(End::Closed)) => break End::Closed,
                _ => {}
            }
        }
    };
    if end == End::Cut {
        stats.cuts.fetch_add(1, Ordering::SeqCst);
        if reset {
            stats.resets.fetch_add(1, Ordering::SeqCst);
            for stream in [&client, &server] {
                let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
            }
        }
        if config.log {
            let direction = if upstream_cut { "up" } else { "down" };
            let how = if reset { "reset" } else { "fin" };
            println!(
                "conn {number}: cut {direction} after {} bytes ({how})",
                cut_at.unwrap_or(0)
            );
        }
    }
}

/// Copies `from` to `to` with the faults of one direction, until the sender
/// closes, something fails, or the cut.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    cut_at: Option<u64>,
    faults: &Faults,
    mut rng: Rng,
    stats: &Stats,
    downstream: bool,
) -> End {
    let events = faults.event_every.1 > 0;
    let mut next_event = if events {
        rng.between(faults.event_every)
    } else {
        u64::MAX
    };
    let mut sent = 0u64;
    // A trickle under way: bytes left, then step and pause.
    let mut trickle = (0u64, 1u64, 0u64);
    let mut buf = vec![0u8; 32 << 10];
    if cut_at == Some(0) {
        return End::Cut;
    }
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return End::Closed;
            }
            Ok(n) => n,
            Err(_) => return End::Failed,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let mut piece = chunk.len() as u64;
            if faults.max_split > 0 {
                piece = piece.min(rng.between((1, faults.max_split)));
            }
            if trickle.0 > 0 {
                piece = piece.min(trickle.1).min(trickle.0);
            }
            if let Some(cut) = cut_at {
                piece = piece.min(cut - sent);
            }
            piece = piece.min(next_event.saturating_sub(sent).max(1));
            let piece = piece as usize;
            if to.write_all(&chunk[..piece]).await.is_err() {
                return End::Failed;
            }
            chunk = &chunk[piece..];
            sent += piece as u64;
            if downstream {
                stats.bytes_down.fetch_add(piece as u64, Ordering::Relaxed);
            }
            if cut_at == Some(sent) {
                let _ = to.flush().await;
                return End::Cut;
            }
            if trickle.0 > 0 {
                trickle.0 = trickle.0.saturating_sub(piece as u64);
                tokio::time::sleep(Duration::from_millis(trickle.2)).await;
            }
            if sent >= next_event {
                next_event = sent + rng.between(faults.event_every).max(1);
                if rng.chance(faults.stall) {
                    stats.stalls.fetch_add(1, Ordering::SeqCst);
                    let ms = rng.between(faults.stall_ms);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                } else {
                    stats.trickles.fetch_add(1, Ordering::SeqCst);
                    trickle = (
                        rng.between(faults.trickle_bytes),
                        rng.between(faults.trickle_step).max(1),
                        rng.between(faults.trickle_ms),
                    );
                }
            }
        }
    }
}
