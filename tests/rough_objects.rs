//! Objects over rough networks: downloads from `ServeObjects` resumed after
//! every cut end byte for byte, from object_store's in-memory store behind a
//! fault-injecting proxy, and from a real S3 API server (moto) whose own
//! connection is cut, stalled and trickled mid-download: then the response
//! ends with an error, never with wrong bytes under its `Content-Length`, and
//! the client's resume succeeds.
//!
//! Seeds are fixed; `ROUGH_SEEDS=N` runs N seeds instead (see
//! `tests/rough_network.rs`).

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use support::content;
use support::moto::MotoServer;
use support::proxy::{Faults, Proxy, Stats};
use support::resume::{download, download_ranges, serve_counted, wait_for};
use support::rough::{Leaks, Tally, faults, one_at_a_time, rough_downloads, seeds, settle};
use tower::Layer;
use tower_range_serve::RangeServeLayer;
use tower_range_serve::objects::ServeObjects;

const LEN: usize = 384 << 10;

/// The ranges of the multipart downloads.
const RANGES: [(u64, u64); 4] = [
    (0, 999),
    (10_000, 90_000),
    (150_000, 150_000),
    (200_000, LEN as u64 - 1),
];

/// Checks that `held` has exactly `data`'s bytes in `RANGES` and none elsewhere.
fn assert_ranges(held: &[Option<u8>], data: &[u8], seed: u64) {
    for (at, byte) in held.iter().enumerate() {
        let inside = RANGES.iter().any(|&(a, b)| (a..=b).contains(&(at as u64)));
        assert_eq!(*byte, inside.then_some(data[at]), "seed {seed}: byte {at}");
    }
}

async fn put(store: &dyn ObjectStore, key: &str, data: &[u8]) {
    store
        .put(&Path::from(key), PutPayload::from(data.to_vec()))
        .await
        .unwrap();
}

/// Puts `data` at `key` and waits for it, from synchronous code inside the
/// test's runtime (a download's `before` hook): on a thread of its own.
fn overwrite(store: &Arc<InMemory>, key: &str, data: &[u8]) {
    let (store, key, data) = (store.clone(), key.to_owned(), data.to_vec());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(put(&*store, &key, &data))
    })
    .join()
    .unwrap();
}

#[test]
fn in_memory_objects_survive_cuts_stalls_and_trickles_byte_exact() {
    one_at_a_time(async {
        let data = content(LEN);
        let store = Arc::new(InMemory::new());
        put(&*store, "a.bin", &data).await;
        let layer = RangeServeLayer::new().chunk_size(16 << 10);
        let (shutdown, control) = (layer.shutdown_handle(), layer.bandwidth_control());
        let service = layer.layer(ServeObjects::new(store));
        let seeds = [51, 52, 53, 54, 55, 56];
        rough_downloads(
            "in-memory",
            service,
            shutdown,
            control,
            "/a.bin",
            &[],
            &data,
            &seeds,
        )
        .await;
    });
}

#[test]
fn an_object_overwritten_between_attempts_comes_whole_in_its_new_version() {
    one_at_a_time(async {
        let old = content(LEN);
        let new: Vec<u8> = content(LEN - 1000).iter().map(|b| !b).collect();
        let store = Arc::new(InMemory::new());
        let layer = RangeServeLayer::new().chunk_size(16 << 10);
        let service = layer.clone().layer(ServeObjects::new(store.clone()));
        let (addr, open) = serve_counted(service).await;
        put(&*store, "v.bin", &old).await;
        settle(addr, "/v.bin", &[]).await;
        let leaks = Leaks::baseline(open, layer.shutdown_handle(), layer.bandwidth_control()).await;
        let mut tally = Tally::default();
        for seed in seeds(&[61, 62, 63, 64]) {
            put(&*store, "v.bin", &old).await;
            let mut faults = faults(LEN);
            faults.cut_first = 1;
            faults.cut_upstream = 0.0;
            faults.cut_after = (LEN as u64 / 8, LEN as u64 / 4);
            let proxy = Proxy::start(addr, faults, seed);
            let mut overwritten = false;
            let (bytes, resumed) = download(proxy.addr(), "/v.bin", &[], |held| {
                if !overwritten && !held.is_empty() {
                    assert_eq!(held, &old[..held.len()]);
                    overwrite(&store, "v.bin", &new);
                    overwritten = true;
                }
            })
            .await;
            assert!(bytes == new, "seed {seed}: not the new version whole");
            assert_eq!(resumed.restarts, 1, "seed {seed}: {resumed:?}");
            tally.add(proxy.stats(), resumed.attempts);
            leaks.assert_none(proxy).await;
        }
        eprintln!("overwritten: {tally:?}");
    });
}

#[test]
fn a_cut_or_slowed_object_store_aborts_the_response_and_the_resume_succeeds() {
    one_at_a_time(async {
        let Some(moto) = MotoServer::start_or_skip(
            "a_cut_or_slowed_object_store_aborts_the_response_and_the_resume_succeeds",
        ) else {
            return;
        };
        moto.create_bucket("rough");
        let data = content(LEN);
        put(&*moto.store("rough"), "a.bin", &data).await;
        let upstream = moto
            .endpoint()
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let mut tally = Tally::default();
        let mut aborted = 0;
        for seed in seeds(&[71, 72, 73, 74]) {
            // Cuts anywhere in moto's answers (heads, bodies, either direction),
            // stalls and trickles; object_store retries a cut body once, so some
            // cuts heal inside it and others reach the client.
            let proxy = Proxy::start(upstream, faults(LEN), seed);
            let store = moto.store_through("rough", proxy.addr(), 1, Duration::from_secs(10));
            let layer = RangeServeLayer::new();
            let service = layer.clone().layer(ServeObjects::new(store));
            let (addr, open) = serve_counted(service).await;
            // The client's own link is clean: every cut it sees comes from the store.
            let (bytes, resumed) = download(addr, "/a.bin", &[], |_| ()).await;
            assert!(bytes == data, "seed {seed}: bytes differ");
            assert_eq!(resumed.restarts, 0, "seed {seed}: {resumed:?}");
            aborted += resumed.cuts;
            // Several ranges in one answer: one GET per range, each pinned.
            let (held, ranges) = download_ranges(addr, "/a.bin", LEN as u64, &RANGES).await;
            assert_ranges(&held, &data, seed);
            aborted += ranges.cuts;
            tally.add(proxy.stats(), resumed.attempts + ranges.attempts);
            tally.downloads += 1;
            // Nothing left open: no connection to the server, no download running,
            // no connection to the store (object_store keeps none idle here).
            let shutdown = layer.shutdown_handle();
            wait_for(|| {
                open.load(Ordering::SeqCst) == 0
                    && shutdown.active() == 0
                    && Stats::get(&proxy.stats().open) == 0
            })
            .await;
            assert_eq!(
                open.load(Ordering::SeqCst),
                0,
                "seed {seed}: server connections"
            );
            assert_eq!(shutdown.active(), 0, "seed {seed}: downloads still running");
            assert_eq!(
                Stats::get(&proxy.stats().open),
                0,
                "seed {seed}: store connections"
            );
        }
        assert!(tally.cuts > 0, "the proxy cut nothing: {tally:?}");
        assert!(aborted > 0, "no cut reached the client: {tally:?}");
        eprintln!("moto: {tally:?}, responses aborted {aborted}");
    });
}

#[test]
fn an_object_store_stalled_past_its_timeout_aborts_the_response_and_the_resume_succeeds() {
    one_at_a_time(async {
        let Some(moto) = MotoServer::start_or_skip(
            "an_object_store_stalled_past_its_timeout_aborts_the_response_and_the_resume_succeeds",
        ) else {
            return;
        };
        moto.create_bucket("slow");
        let data = content(LEN);
        put(&*moto.store("slow"), "a.bin", &data).await;
        let upstream = moto
            .endpoint()
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        // No cut: the store's answers stall, every 96 to 192 KiB, for longer than
        // the client's timeout of 600 ms.
        let mut faults = Faults::none();
        faults.event_every = (96 << 10, 192 << 10);
        faults.stall = 1.0;
        faults.stall_ms = (900, 1000);
        let proxy = Proxy::start(upstream, faults, 81);
        let store = moto.store_through("slow", proxy.addr(), 1, Duration::from_millis(600));
        let layer = RangeServeLayer::new();
        let (addr, open) = serve_counted(layer.clone().layer(ServeObjects::new(store))).await;
        let (bytes, resumed) = download(addr, "/a.bin", &[], |_| ()).await;
        assert!(bytes == data, "bytes differ");
        assert_eq!(resumed.restarts, 0, "{resumed:?}");
        assert!(resumed.cuts > 0, "no stall reached the client: {resumed:?}");
        let stalls = Stats::get(&proxy.stats().stalls);
        assert!(stalls > 0);
        let shutdown = layer.shutdown_handle();
        wait_for(|| open.load(Ordering::SeqCst) == 0 && shutdown.active() == 0).await;
        assert_eq!(shutdown.active(), 0, "downloads still running");
        eprintln!("slow moto: {resumed:?}, stalls {stalls}");
    });
}
