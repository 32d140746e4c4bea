//! Downloads over rough networks: through a proxy that cuts connections at
//! random byte offsets (either direction, FIN or RST), stalls, trickles and
//! splits writes, a client that resumes with `Range` + `If-Range` after every
//! cut ends with the file byte for byte, from every kind of file source: plain,
//! throttled, multipart, precompressed. A file changed between two attempts
//! comes whole in its new version, never spliced. Nothing outlives the
//! connections: no file descriptor, task, running download or client entry.
//!
//! Seeds are fixed; `ROUGH_SEEDS=N` runs N seeds per source instead (a soak:
//! `scripts/rough_soak.sh --seeds N`). A failure prints its seed; the proxy's
//! plan for a connection depends only on the seed and the connection's number,
//! so the same seed replays it.

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::content;
use support::proxy::{Faults, Proxy, Stats};
use support::resume::{alive_tasks, download, download_ranges, open_fds, serve_counted, wait_for};
use tower::Layer;
use tower_range_serve::dir::Encoding;
use tower_range_serve::lifecycle::Shutdown;
use tower_range_serve::{Bandwidth, BandwidthControl, RangeServeLayer, ServeDir};

/// One test at a time in this binary: descriptors are counted per process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const LEN: usize = 384 << 10;

/// The seeds run per source: fixed ones, or `ROUGH_SEEDS` of them.
pub fn seeds(fixed: &[u64]) -> Vec<u64> {
    match std::env::var("ROUGH_SEEDS") {
        Ok(n) => (1..=n.parse::<u64>().expect("ROUGH_SEEDS is a number")).collect(),
        Err(_) => fixed.to_vec(),
    }
}

/// The faults for a file of `len` bytes: cut at most an eighth in, so a download
/// survives several cuts.
fn faults(len: usize) -> Faults {
    let mut faults = Faults::rough(len as u64);
    faults.cut_after = (1, len as u64 / 8);
    faults
}

/// Totals over a test, printed at its end.
#[derive(Debug, Default)]
struct Tally {
    downloads: u32,
    attempts: u32,
    cuts: u64,
    resets: u64,
    stalls: u64,
    trickles: u64,
}

impl Tally {
    fn add(&mut self, stats: &Stats, attempts: u32) {
        self.downloads += 1;
        self.attempts += attempts;
        self.cuts += Stats::get(&stats.cuts);
        self.resets += Stats::get(&stats.resets);
        self.stalls += Stats::get(&stats.stalls);
        self.trickles += Stats::get(&stats.trickles);
    }
}

/// What must be back to its baseline once every connection has closed.
struct Leaks {
    fds: usize,
    tasks: usize,
    open: std::sync::Arc<AtomicUsize>,
    shutdown: Shutdown,
    control: BandwidthControl,
}

impl Leaks {
    /// Takes the baseline (after one settling download, so the runtime's own
    /// descriptors and tasks exist already).
    async fn baseline(
        open: std::sync::Arc<AtomicUsize>,
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
    async fn assert_none(&self, proxy: Proxy) {
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

/// Serves `dir` through `layer`, downloads `path` through a fresh proxy for
/// each seed, and checks every download against `expected` and for leaks.
async fn rough_downloads(
    name: &str,
    layer: RangeServeLayer,
    dir: ServeDir,
    path: &str,
    headers: &[(&str, &str)],
    expected: &[u8],
    fixed: &[u64],
) -> Tally {
    let shutdown = layer.shutdown_handle();
    let control = layer.bandwidth_control();
    let (addr, open) = serve_counted(layer.layer(dir)).await;
    let clean = Proxy::start(addr, Faults::none(), 0);
    let (settling, _) = download(clean.addr(), path, headers, |_| ()).await;
    assert_eq!(settling, expected);
    drop(clean);
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

fn tree(name: &str, data: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join(name), data).unwrap();
    root
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_downloads_survive_cuts_stalls_and_trickles_byte_exact() {
    let _one = lock();
    let data = content(LEN);
    let root = tree("a.bin", &data);
    let layer = RangeServeLayer::new().chunk_size(16 << 10);
    let dir = ServeDir::new(root.path());
    rough_downloads(
        "plain",
        layer,
        dir,
        "/a.bin",
        &[],
        &data,
        &[1, 2, 3, 4, 5, 6],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_downloads_survive_cuts_and_leave_no_client_entry() {
    let _one = lock();
    let data = content(LEN);
    let root = tree("a.bin", &data);
    // A per-response rate, and a per-client one shared by the resumes.
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::mib(8))
        .client_rate(Bandwidth::mib(6))
        .max_streams_per_client(64);
    let dir = ServeDir::new(root.path());
    rough_downloads(
        "throttled",
        layer,
        dir,
        "/a.bin",
        &[],
        &data,
        &[11, 12, 13, 14],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompressed_downloads_resume_the_compressed_bytes_exactly() {
    let _one = lock();
    // Compressible: a 16-symbol alphabet in a sequence that does not repeat.
    let text: Vec<u8> = content(3 * LEN).iter().map(|b| b'a' + (b & 15)).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &text).unwrap();
    let gz = gz.finish().unwrap();
    let root = tree("app.txt", &text);
    std::fs::write(root.path().join("app.txt.gz"), &gz).unwrap();
    let layer = RangeServeLayer::new().chunk_size(16 << 10);
    let dir = ServeDir::new(root.path()).precompressed([Encoding::Gzip]);
    let accept = [("accept-encoding", "gzip")];
    rough_downloads(
        "precompressed",
        layer,
        dir,
        "/app.txt",
        &accept,
        &gz,
        &[21, 22, 23, 24],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_downloads_resume_only_the_missing_parts() {
    let _one = lock();
    let data = content(LEN);
    let root = tree("a.bin", &data);
    let layer = RangeServeLayer::new().chunk_size(16 << 10);
    let (addr, open) = serve_counted(layer.clone().layer(ServeDir::new(root.path()))).await;
    let leaks = Leaks::baseline(open, layer.shutdown_handle(), layer.bandwidth_control()).await;
    let len = LEN as u64;
    let wanted = [
        (0, 999),
        (5_000, 70_000),
        (100_001, 100_001),
        (150_000, 260_000),
        (300_000, len - 1),
    ];
    let mut tally = Tally::default();
    for seed in seeds(&[31, 32, 33, 34, 35, 36]) {
        let proxy = Proxy::start(addr, faults(LEN / 2), seed);
        let (held, resumed) = download_ranges(proxy.addr(), "/a.bin", len, &wanted).await;
        for (at, byte) in held.iter().enumerate() {
            let inside = wanted.iter().any(|&(a, b)| (a..=b).contains(&(at as u64)));
            assert_eq!(*byte, inside.then_some(data[at]), "seed {seed}: byte {at}");
        }
        tally.add(proxy.stats(), resumed.attempts);
        leaks.assert_none(proxy).await;
    }
    assert!(tally.cuts >= tally.downloads as u64, "{tally:?}");
    eprintln!("multipart: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_between_attempts_comes_whole_in_its_new_version() {
    let _one = lock();
    let old = content(LEN);
    let new: Vec<u8> = content(LEN + 1000).iter().map(|b| !b).collect();
    let root = tree("a.bin", &old);
    let path = root.path().join("a.bin");
    let layer = RangeServeLayer::new().chunk_size(16 << 10);
    let (addr, open) = serve_counted(layer.clone().layer(ServeDir::new(root.path()))).await;
    let leaks = Leaks::baseline(open, layer.shutdown_handle(), layer.bandwidth_control()).await;
    let mut tally = Tally::default();
    for seed in seeds(&[41, 42, 43, 44]) {
        std::fs::write(&path, &old).unwrap();
        let mut faults = faults(LEN);
        // The first answer cut, so the change falls between two attempts.
        faults.cut_first = 1;
        faults.cut_upstream = 0.0;
        faults.cut_after = (LEN as u64 / 8, LEN as u64 / 4);
        let proxy = Proxy::start(addr, faults, seed);
        let mut changed = false;
        let change = |held: &[u8]| {
            if !changed && !held.is_empty() {
                assert_eq!(held, &old[..held.len()]);
                std::fs::write(&path, &new).unwrap();
                changed = true;
            }
        };
        let (bytes, resumed) = download(proxy.addr(), "/a.bin", &[], change).await;
        assert!(bytes == new, "seed {seed}: not the new version whole");
        assert_eq!(resumed.restarts, 1, "seed {seed}: {resumed:?}");
        tally.add(proxy.stats(), resumed.attempts);
        leaks.assert_none(proxy).await;
    }
    eprintln!("changed: {tally:?}");
}
