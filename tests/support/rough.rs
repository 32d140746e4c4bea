//! The pieces of the rough-network tests: fixed seeds (or `ROUGH_SEEDS` of them),
//! fault plans sized to a file, totals, and the leak checks.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;
use tower_range_serve::BandwidthControl;
use tower_range_serve::lifecycle::Shutdown;

use super::BoxError;
use super::proxy::{Faults, Proxy, Stats};
use super::resume::{alive_tasks, download, open_fds, serve_counted, wait_for};

/// One test at a time in a binary: descriptors are counted per process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `test` on a runtime of its own (two workers), one test of the binary
/// at a time; the runtime, with its tasks, sockets and blocking pool, is gone
/// before the next test takes its baseline.
pub fn one_at_a_time(test: impl Future<Output = ()>) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(test);
    drop(runtime);
}

/// The seeds run per source: fixed ones, or `ROUGH_SEEDS` of them (a soak),
/// numbered from the first fixed seed times 1000 so that sources differ.
pub fn seeds(fixed: &[u64]) -> Vec<u64> {
    match std::env::var("ROUGH_SEEDS") {
        Ok(n) => {
            let n = n.parse::<u64>().expect("ROUGH_SEEDS is a number");
            let base = fixed[0] * 1000;
            (base..base + n).collect()
        }
        Err(_) => fixed.to_vec(),
    }
}

/// The faults for a file of `len` bytes: nearly every connection cut (the first
/// always), at most an eighth in, so a download survives a dozen cuts or more.
pub fn faults(len: usize) -> Faults {
    let mut faults = Faults::rough(len as u64);
    faults.cut = 0.95;
    faults.cut_first = 1;
    faults.cut_after = (1, len as u64 / 8);
    faults
}

/// Totals over a test, printed at its end.
#[derive(Debug, Default)]
pub struct Tally {
    pub downloads: u32,
    pub attempts: u32,
    /// Connections the proxy cut.
    pub cuts: u64,
    pub resets: u64,
    pub stalls: u64,
    pub trickles: u64,
}

impl Tally {
    pub fn add(&mut self, stats: &Stats, attempts: u32) {
        self.downloads += 1;
        self.attempts += attempts;
        self.cuts += Stats::get(&stats.cuts);
        self.resets += Stats::get(&stats.resets);
        self.stalls += Stats::get(&stats.stalls);
        self.trickles += Stats::get(&stats.trickles);
    }
}

/// What must be back to its baseline once every connection has closed.
pub struct Leaks {
    fds: usize,
    tasks: usize,
    open: Arc<AtomicUsize>,
    shutdown: Shutdown,
    control: BandwidthControl,
}

impl Leaks {
    /// Takes the baseline (after one settling download, so the runtime's own
    /// descriptors and tasks exist already).
    pub async fn baseline(
        open: Arc<AtomicUsize>,
        shutdown: Shutdown,
        control: BandwidthControl,
    ) -> Self {
        let mut leaks = Self {
            fds: 0,
            tasks: 0,
            open,
            shutdown,
            control,
        };
        leaks.settle().await;
        leaks.fds = open_fds();
        leaks.tasks = alive_tasks();
        leaks
    }

    async fn settle(&self) {
        let fds = self.fds;
        let tasks = self.tasks;
        wait_for(|| {
            self.open.load(Ordering::SeqCst) == 0
                && self.shutdown.active() == 0
                && self.control.active_clients() == 0
                && (fds == 0 || (open_fds() <= fds && alive_tasks() <= tasks))
        })
        .await;
    }

    /// Stops `proxy` once its connections have closed, then checks.
    pub async fn assert_none(&self, proxy: Proxy) {
        wait_for(|| Stats::get(&proxy.stats().open) == 0).await;
        assert_eq!(Stats::get(&proxy.stats().open), 0, "proxy connections");
        // Its runtime's descriptors go with it.
        drop(proxy);
        self.settle().await;
        assert_eq!(self.open.load(Ordering::SeqCst), 0, "server connections");
        assert_eq!(self.shutdown.active(), 0, "downloads still running");
        assert_eq!(self.control.active_clients(), 0, "client entries leaked");
        assert_eq!(open_fds(), self.fds, "file descriptors leaked");
        assert!(
            alive_tasks() <= self.tasks,
            "tasks leaked: {} > {}",
            alive_tasks(),
            self.tasks
        );
    }
}

/// One download through a clean proxy, so that what the runtime and the proxy
/// create once exists before a baseline is taken; returns its bytes.
pub async fn settle(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let clean = Proxy::start(addr, Faults::none(), 0);
    let (bytes, _) = download(clean.addr(), path, headers, |_| ()).await;
    drop(clean);
    bytes
}

/// Serves `service` (a layered one, with its layer's `shutdown` and `control`),
/// downloads `path` through a fresh proxy for each seed, and checks every
/// download against `expected` and for leaks.
#[allow(clippy::too_many_arguments)]
pub async fn rough_downloads<S, B>(
    name: &str,
    service: S,
    shutdown: Shutdown,
    control: BandwidthControl,
    path: &str,
    headers: &[(&str, &str)],
    expected: &[u8],
    fixed: &[u64],
) -> Tally
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (addr, open) = serve_counted(service).await;
    assert_eq!(settle(addr, path, headers).await, expected);
    let leaks = Leaks::baseline(open, shutdown, control).await;
    let mut tally = Tally::default();
    for seed in seeds(fixed) {
        let proxy = Proxy::start(addr, faults(expected.len()), seed);
        let (bytes, resumed) = download(proxy.addr(), path, headers, |_| ()).await;
        assert!(bytes == expected, "{name}: seed {seed}: bytes differ");
        assert_eq!(resumed.restarts, 0, "{name}: seed {seed}: {resumed:?}");
        tally.add(proxy.stats(), resumed.attempts);
        leaks.assert_none(proxy).await;
    }
    assert!(
        tally.cuts >= tally.downloads as u64,
        "{name}: too few cuts: {tally:?}"
    );
    eprintln!("{name}: {tally:?}");
    tally
}
