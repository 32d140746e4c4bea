//! Hashing throughput of the digest feature's algorithms (`sha2`, with the
//! CPU's SHA extensions or AVX2 where it detects them), over 1 MiB blocks: the
//! size the background hash reads a file in.
//!
//! ```text
//! cargo bench --bench digest
//! RUSTFLAGS='--cfg sha2_backend="soft"' cargo bench --bench digest   # portable code
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::Digest as _;

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

criterion_group!(benches, hashing);
criterion_main!(benches);
