//! The digest feature's costs: hashing throughput of its algorithms (`sha2`,
//! with the CPU's SHA extensions or AVX2 where it detects them) over 1 MiB
//! blocks, the size the background hash reads a file in; and what a request
//! for a file pays on the request path.
//!
//! ```text
//! cargo bench --bench digest
//! RUSTFLAGS='--cfg sha2_backend="soft"' cargo bench --bench digest   # portable code
//! ```

use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use sha2::Digest as _;
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::digest::Digests;
use tower_range_serve::source::FileSource;
use tower_range_serve::{FileResponse, RangeBody, RangeServeLayer};

const BLOCK: usize = 1 << 20;

fn hashing(c: &mut Criterion) {
    let block: Vec<u8> = (0..BLOCK).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut group = c.benchmark_group("hash 1 MiB");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    group.bench_function("sha-256", |b| {
        b.iter(|| sha2::Sha256::digest(black_box(&block)))
    });
    group.bench_function("sha-512", |b| {
        b.iter(|| sha2::Sha512::digest(black_box(&block)))
    });
    group.finish();
}

/// One `GET` with `Want-Repr-Digest` and `Want-Digest` (as aria2 sends it) for
/// a 1 MiB file, opened by the handler on the current thread, through the
/// layer; the body is not read.
fn request_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("file.bin");
    std::fs::write(&path, vec![0x5a; BLOCK]).expect("write the file");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("a tokio runtime");

    // (name, whether checksum files are looked for, the layer's digests)
    let cases = [
        ("no checksum files, digests off", false, Digests::off()),
        (
            "checksum files looked for, digests off",
            true,
            Digests::off(),
        ),
        (
            "checksum files looked for, digest cached",
            true,
            Digests::new(),
        ),
    ];
    let mut group = c.benchmark_group("first byte path");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, checksum_files, digests) in cases {
        let path = path.clone();
        let handler = service_fn(move |_: Request<()>| {
            let path: PathBuf = path.clone();
            async move {
                let file = if checksum_files {
                    FileResponse::open(&path).await
                } else {
                    FileSource::open(&path)
                        .await
                        .map(|source| FileResponse::from_file(source, &path))
                };
                Ok::<Response<RangeBody>, Infallible>(file.expect("open").into_response())
            }
        });
        let service = RangeServeLayer::new().digests(digests).layer(handler);
        let request = || {
            Request::get("/file.bin")
                .header("want-repr-digest", "sha-256=10")
                .header("want-digest", "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1")
                .body(())
                .expect("a request")
        };
        // Let the cached case's digest be computed (files settle for 2 s).
        runtime.block_on(async {
            let _ = service.clone().oneshot(request()).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        });
        let cached = matches!(name, "checksum files looked for, digest cached");
        group.bench_function(name, |b| {
            b.iter(|| {
                let response = runtime
                    .block_on(service.clone().oneshot(request()))
                    .expect("infallible");
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.headers().contains_key("repr-digest"), cached);
                black_box(response)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hashing, request_path);
criterion_main!(benches);
