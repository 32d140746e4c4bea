//! What a small-file request costs in the library, without sockets or HTTP
//! parsing: `ServeDir` (its defaults: the open-file cache with small files kept
//! in memory, `br` and `gzip` sidecars looked for) under `RangeServeLayer`,
//! on a single-threaded runtime, the body read to its end. The CPU time per
//! request that the demo server adds to hyper's own (issue #27's profile);
//! BENCHMARKS.md has the figures against nginx.
//!
//! ```text
//! cargo bench --bench small_files
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use tower::{Layer, ServiceExt};
use tower_range_serve::dir::Encoding;
use tower_range_serve::{RangeServeLayer, ServeDir};

const FILES: usize = 1000;

fn small_files(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(root.path().join("4k.bin"), [0x5a; 4096]).expect("write a file");
    std::fs::create_dir(root.path().join("small")).expect("a folder");
    let names: Vec<String> = (0..FILES).map(|i| format!("/small/f{i:04}.txt")).collect();
    for (i, name) in names.iter().enumerate() {
        let path = root.path().join(&name[1..]);
        let len = 1024 + (i * 7919) % (15 * 1024);
        std::fs::write(&path, vec![b'a' + (i % 26) as u8; len]).expect("write a file");
        std::fs::write(path.with_extension("txt.br"), vec![b'b'; len / 4]).expect("a sidecar");
        std::fs::write(path.with_extension("txt.gz"), vec![b'g'; len / 3]).expect("a sidecar");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = ServeDir::new(root.path()).precompressed([Encoding::Brotli, Encoding::Gzip]);
    let service = RangeServeLayer::new().layer(dir);
    let get = |path: &str, accept: Option<&'static str>| {
        let mut request = Request::get(path);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT_ENCODING, accept);
        }
        request
            .body(Empty::<bytes::Bytes>::new())
            .expect("a request")
    };
    let serve = |request| {
        runtime.block_on(async {
            let response = service.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.expect("the body");
            black_box(body.to_bytes().len())
        })
    };
    // Every file opened, kept and checked once.
    for name in &names {
        serve(get(name, Some("br, gzip")));
        serve(get(name, None));
    }
    serve(get("/4k.bin", None));

    let mut group = c.benchmark_group("small files");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("one 4 KiB file", |b| b.iter(|| serve(get("/4k.bin", None))));
    for (name, accept) in [
        ("1,000 files at random", None),
        (
            "1,000 files at random, br and gzip accepted",
            Some("br, gzip"),
        ),
    ] {
        let mut next = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 617) % FILES;
                serve(get(&names[next], accept))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, small_files);
criterion_main!(benches);
