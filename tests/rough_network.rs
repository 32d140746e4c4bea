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

use support::content;
use support::proxy::Proxy;
use support::resume::{download, download_ranges, serve_counted};
use support::rough::{Leaks, Tally, faults, one_at_a_time, rough_downloads, seeds, settle};
use tower::Layer;
use tower_range_serve::dir::Encoding;
// The open-file cache keeps descriptors by design (`tests/dir_cache.rs`
// bounds them); off here, so that descriptors are counted exactly.
use tower_range_serve::dir::OpenFileCache;
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

const LEN: usize = 384 << 10;

fn tree(name: &str, data: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join(name), data).unwrap();
    root
}

/// Serves `root` through `layer` and runs `rough_downloads` on it.
async fn rough_dir(
    name: &str,
    layer: RangeServeLayer,
    dir: ServeDir,
    path: &str,
    headers: &[(&str, &str)],
    expected: &[u8],
    fixed: &[u64],
) -> Tally {
    let (shutdown, control) = (layer.shutdown_handle(), layer.bandwidth_control());
    let service = layer.layer(dir);
    rough_downloads(
        name, service, shutdown, control, path, headers, expected, fixed,
    )
    .await
}

#[test]
fn plain_downloads_survive_cuts_stalls_and_trickles_byte_exact() {
    one_at_a_time(async {
        let data = content(LEN);
        let root = tree("a.bin", &data);
        let layer = RangeServeLayer::new().chunk_size(16 << 10);
        let dir = ServeDir::new(root.path()).open_file_cache(OpenFileCache::off());
        rough_dir(
            "plain",
            layer,
            dir,
            "/a.bin",
            &[],
            &data,
            &[1, 2, 3, 4, 5, 6],
        )
        .await;
    });
}

#[test]
fn throttled_downloads_survive_cuts_and_leave_no_client_entry() {
    one_at_a_time(async {
        let data = content(LEN);
        let root = tree("a.bin", &data);
        // A per-response rate, and a per-client one shared by the resumes.
        let layer = RangeServeLayer::new()
            .rate(Bandwidth::mib(8))
            .client_rate(Bandwidth::mib(6))
            .max_streams_per_client(64);
        let dir = ServeDir::new(root.path()).open_file_cache(OpenFileCache::off());
        rough_dir(
            "throttled",
            layer,
            dir,
            "/a.bin",
            &[],
            &data,
            &[11, 12, 13, 14],
        )
        .await;
    });
}

#[test]
fn precompressed_downloads_resume_the_compressed_bytes_exactly() {
    one_at_a_time(async {
        // Compressible: a 16-symbol alphabet in a sequence that does not repeat.
        let text: Vec<u8> = content(3 * LEN).iter().map(|b| b'a' + (b & 15)).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let gz = gz.finish().unwrap();
        let root = tree("app.txt", &text);
        std::fs::write(root.path().join("app.txt.gz"), &gz).unwrap();
        let layer = RangeServeLayer::new().chunk_size(16 << 10);
        let dir = ServeDir::new(root.path())
            .open_file_cache(OpenFileCache::off())
            .precompressed([Encoding::Gzip]);
        let accept = [("accept-encoding", "gzip")];
        rough_dir(
            "precompressed",
            layer,
            dir,
            "/app.txt",
            &accept,
            &gz,
            &[21, 22, 23, 24],
        )
        .await;
    });
}

#[test]
fn multipart_downloads_resume_only_the_missing_parts() {
    one_at_a_time(async {
        let data = content(LEN);
        let root = tree("a.bin", &data);
        let layer = RangeServeLayer::new().chunk_size(16 << 10);
        let (addr, open) = serve_counted(
            layer
                .clone()
                .layer(ServeDir::new(root.path()).open_file_cache(OpenFileCache::off())),
        )
        .await;
        settle(addr, "/a.bin", &[]).await;
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
    });
}

#[test]
fn a_file_changed_between_attempts_comes_whole_in_its_new_version() {
    one_at_a_time(async {
        let old = content(LEN);
        let new: Vec<u8> = content(LEN + 1000).iter().map(|b| !b).collect();
        let root = tree("a.bin", &old);
        let path = root.path().join("a.bin");
        let layer = RangeServeLayer::new().chunk_size(16 << 10);
        let (addr, open) = serve_counted(
            layer
                .clone()
                .layer(ServeDir::new(root.path()).open_file_cache(OpenFileCache::off())),
        )
        .await;
        settle(addr, "/a.bin", &[]).await;
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
    });
}
