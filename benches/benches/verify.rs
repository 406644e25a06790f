//! What checking store objects against their names costs: hashing an object whole (what
//! `store verify` and a missing sidecar cost) against opening it with its sidecar and checking
//! its 16 KiB groups, all of them or one.
//!
//! Run: `cargo bench -p dx-py-benches --bench verify`.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use dx_py_core::hash::ContentHash;
use dx_py_core::store::PackageStore;

/// A package of `len` bytes of data: one large file and 200 small ones (a fixed corpus).
fn object(len: usize) -> Vec<u8> {
    let mut w = DxpkgWriter::new("big", "1.0", "big-1.0.dist-info");
    let bytes = dx_py_core::testing::noise(len, 0x9e37_79b9_7f4a_7c15);
    w.add(
        Scheme::SitePackages,
        "big/data.bin",
        EntryKind::File,
        0o644,
        bytes,
    );
    for i in 0..200 {
        let text = format!("X = {i}\n").repeat(40).into_bytes();
        w.add(
            Scheme::SitePackages,
            &format!("big/m{i}.py"),
            EntryKind::File,
            0o644,
            text,
        );
    }
    w.finish().expect("valid package")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = object(32 << 20);
    let hash = PackageStore::open(dir.path())
        .store(&bytes)
        .expect("stored");
    let len = bytes.len() as u64;
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(len));
    g.bench_function("blake3 of the whole object (store verify)", |b| {
        b.iter(|| black_box(ContentHash::of(black_box(&bytes))))
    });
    g.bench_function("open with sidecar, check every group", |b| {
        b.iter(|| {
            let store = PackageStore::open(dir.path());
            let p = store.get(&hash).expect("opens");
            p.check(0..len).expect("sound");
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("open with sidecar (CVs merged, index checked)", |b| {
        b.iter(|| black_box(PackageStore::open(dir.path()).get(&hash).expect("opens")))
    });
    let store = PackageStore::open(dir.path());
    let p = store.get(&hash).expect("opens");
    g.bench_function("check one 16 KiB group (first read of a group)", |b| {
        b.iter(|| {
            p.forget(1 << 20..(1 << 20) + 1);
            p.check(black_box(1 << 20..(1 << 20) + 100)).expect("sound");
        })
    });
    g.bench_function("check a checked group (every later read)", |b| {
        b.iter(|| p.check(black_box(1 << 20..(1 << 20) + 100)).expect("sound"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
