//! Layout cache: warm install (`install_cached` into a fresh venv) for 10, 100 and 1,000
//! packages, and DXLC index lookups.
//!
//! Run: `cargo bench -p dx-py-benches --bench layout`; with `DX_PY_BENCH_INTERLEAVED=1` it first
//! prints warm installs measured side by side with their file-system floor.
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, criterion_group};
use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use dx_py_core::layout::{
    LayoutCache, LayoutEntry, LayoutIndex, LayoutPackage, LayoutSpec, ProjectHash, encode_index,
};
use dx_py_core::store::PackageStore;

const SIZES: [usize; 3] = [10, 100, 1000];

/// Package `i`: three small files, and a launcher when `script`.
fn package(i: usize, script: bool) -> Vec<u8> {
    let name = format!("pkg{i}");
    let dist_info = format!("{name}-1.0.dist-info");
    let mut w = DxpkgWriter::new(&name, "1.0", &dist_info);
    let mut file = |scheme, path: String, mode, data: String| {
        w.add(scheme, &path, EntryKind::File, mode, data.into_bytes());
    };
    file(
        Scheme::SitePackages,
        format!("{dist_info}/METADATA"),
        0o644,
        format!("Name: {name}\n"),
    );
    file(
        Scheme::SitePackages,
        format!("{name}/__init__.py"),
        0o644,
        format!("from .core import *\nNAME = {name:?}\n"),
    );
    file(
        Scheme::SitePackages,
        format!("{name}/core.py"),
        0o644,
        "def f():\n    return 1\n".repeat(20),
    );
    if script {
        file(
            Scheme::Scripts,
            format!("{name}-cli"),
            0o755,
            format!("#!python\nimport {name}\n"),
        );
    }
    w.finish().expect("valid package")
}

/// A fresh venv as `python -m venv --without-pip` leaves it: `pyvenv.cfg`, `bin/python`, an
/// empty `lib/python3.11/site-packages/`.
fn fresh_venv(root: &Path) -> tempfile::TempDir {
    let venv = tempfile::tempdir_in(root).expect("venv dir");
    std::fs::create_dir_all(venv.path().join("lib/python3.11/site-packages")).expect("lib");
    std::fs::create_dir_all(venv.path().join("bin")).expect("bin");
    std::fs::write(venv.path().join("pyvenv.cfg"), "home = /usr/bin\n").expect("cfg");
    symlink(
        Path::new("/usr/bin/python3"),
        &venv.path().join("bin/python"),
    );
    venv
}

fn symlink(target: &Path, link: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link).expect("symlink");
    #[cfg(not(unix))]
    std::fs::write(link, target.to_string_lossy().as_bytes()).expect("link stand-in");
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: PackageStore,
}

impl Fixture {
    fn new() -> Self {
        // Under the target directory: the same filesystem as a real cache, not tmpfs.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");
        let root = dir.path().to_path_buf();
        let store = PackageStore::open(root.join("store"));
        Self {
            _dir: dir,
            root,
            store,
        }
    }

    /// A set of the first `n` packages; package `i` has a launcher when `script(i)`.
    fn spec(&self, n: usize, tag: &str, script: impl Fn(usize) -> bool) -> LayoutSpec {
        LayoutSpec {
            interpreter_tag: tag.to_string(),
            python_version: (3, 11),
            packages: (0..n)
                .map(|i| LayoutPackage {
                    name: format!("pkg{i}"),
                    version: "1.0".into(),
                    hash: self.store.store(&package(i, script(i))).expect("store"),
                    wheel_sha256: [0; 32],
                    extra_trees: Vec::new(),
                })
                .collect(),
        }
    }
}

fn warm_install(c: &mut Criterion) {
    let fx = Fixture::new();
    let cache = LayoutCache::open(&fx.root.join("layouts"), &fx.store).expect("cache");
    let venvs = fx.root.join("venvs");
    std::fs::create_dir_all(&venvs).expect("venvs");

    // Three launchers in every set: measures the part that must not grow with the set.
    let mut group = c.benchmark_group("layout/install_cached");
    for n in SIZES {
        let spec = fx.spec(n, "cp311-linux_x86_64", |i| i < 3);
        let hash = spec.project_hash();
        cache.build_layout(&spec).expect("build");
        group.bench_function(format!("{n}_packages_3_launchers"), |b| {
            b.iter_batched(
                || fresh_venv(&venvs),
                |venv| {
                    let done = cache.install_cached(&hash, venv.path()).expect("install");
                    assert!(done.is_some());
                    venv
                },
                BatchSize::PerIteration,
            );
        });
    }
    // One launcher per ten packages: `bin/` costs O(launchers).
    for n in SIZES {
        let spec = fx.spec(n, "cp311-scripts", |i| i % 10 == 0);
        let hash = spec.project_hash();
        cache.build_layout(&spec).expect("build");
        group.bench_function(format!("{n}_packages_{}_launchers", n / 10), |b| {
            b.iter_batched(
                || fresh_venv(&venvs),
                |venv| {
                    let done = cache.install_cached(&hash, venv.path()).expect("install");
                    assert!(done.is_some());
                    venv
                },
                BatchSize::PerIteration,
            );
        });
    }
    // The floor: the same metadata operations as a 3-launcher install into a fresh venv (3
    // symlinks, 1 small file in site-packages) and nothing else. Creating a directory entry
    // costs 10 us to over 1 ms on a shared VM, so this tells install overhead from noise.
    group.bench_function("fs_floor_same_4_ops", |b| {
        b.iter_batched(
            || fresh_venv(&venvs),
            |venv| {
                floor_ops(venv.path());
                venv
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    // For comparison: the cold path, building a 100-package layout from unpacked trees.
    let mut group = c.benchmark_group("layout/build_layout");
    group.sample_size(10);
    let spec = fx.spec(100, "cp311-cold", |i| i < 3);
    let mut round = 0u32;
    group.bench_function("100_packages_cold", |b| {
        b.iter_batched(
            || {
                round += 1;
                let dir = fx.root.join(format!("cold-{round}"));
                LayoutCache::open(&dir, &fx.store).expect("cache")
            },
            |cold| {
                cold.build_layout(black_box(&spec)).expect("build");
                cold
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn index_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let mut group = c.benchmark_group("layout/index_get");
    for n in [100usize, 10_000] {
        let entries: Vec<LayoutEntry> = (0..n)
            .map(|i| {
                let h = ProjectHash::from_bytes(spread_key(i));
                LayoutEntry::new(h, "cp311-linux_x86_64", (3, 11))
            })
            .collect();
        let bytes = encode_index(&entries, 0, 1, 0).expect("encode");
        let path = dir.path().join(format!("index-{n}.dxlc"));
        std::fs::write(&path, &bytes).expect("write");
        // The file was written above and nothing modifies it while it is mapped.
        let map = dx_py_core::sys::map_immutable(&path).expect("map");
        let index = LayoutIndex::new(map).expect("index");
        let keys: Vec<ProjectHash> = entries.iter().map(|e| e.project_hash).collect();
        let mut k = 0usize;
        group.bench_function(format!("hit_{n}"), |b| {
            b.iter(|| {
                k = (k + 1) % keys.len();
                black_box(index.get(black_box(&keys[k])).expect("entry"))
            });
        });
        let absent = ProjectHash::from_bytes([0xee; 32]);
        group.bench_function(format!("miss_{n}"), |b| {
            b.iter(|| black_box(index.get(black_box(&absent)).expect("entry")));
        });
    }

    // Through the cache: read lock, Arc clone, mapped lookup.
    let fx = Fixture::new();
    let cache = LayoutCache::open(&fx.root.join("layouts"), &fx.store).expect("cache");
    let spec = fx.spec(10, "cp311-linux_x86_64", |_| false);
    cache.build_layout(&spec).expect("build");
    let hash = spec.project_hash();
    group.bench_function("layout_cache_get_hit", |b| {
        b.iter(|| black_box(cache.get(black_box(&hash))).expect("hit"));
    });
    group.finish();
}

/// Distinct, well-spread 32-byte keys without pulling blake3 into the benches crate.
fn spread_key(i: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut x = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    for chunk in out.chunks_mut(8) {
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    out
}

/// Warm installs and their file-system floor, interleaved round by round so that both see the
/// same machine load (on a shared VM, creating a directory entry costs anywhere from 10 us to over
/// 1 ms from one minute to the next, which criterion's one-after-the-other groups cannot factor
/// out). Prints min / median / p90. Runs only with `DX_PY_BENCH_INTERLEAVED=1`.
fn interleaved() {
    if std::env::var_os("DX_PY_BENCH_INTERLEAVED").is_none() {
        return;
    }
    let fx = Fixture::new();
    let cache = LayoutCache::open(&fx.root.join("layouts"), &fx.store).expect("cache");
    let venvs = fx.root.join("venvs");
    std::fs::create_dir_all(&venvs).expect("venvs");
    let hashes: Vec<(usize, ProjectHash)> = SIZES
        .iter()
        .map(|&n| {
            let spec = fx.spec(n, "cp311-linux_x86_64", |i| i < 3);
            cache.build_layout(&spec).expect("build");
            (n, spec.project_hash())
        })
        .collect();
    let mut times: Vec<(String, Vec<std::time::Duration>)> = hashes
        .iter()
        .map(|(n, _)| {
            (
                format!("install_cached {n} packages, 3 launchers"),
                Vec::new(),
            )
        })
        .chain([("fs floor, the same 6 ops".to_string(), Vec::new())])
        .collect();
    for _ in 0..300 {
        let mut keep = Vec::new();
        for (i, (_, hash)) in hashes.iter().enumerate() {
            let venv = fresh_venv(&venvs);
            let t = std::time::Instant::now();
            assert!(
                cache
                    .install_cached(hash, venv.path())
                    .expect("install")
                    .is_some()
            );
            times[i].1.push(t.elapsed());
            keep.push(venv);
        }
        let venv = fresh_venv(&venvs);
        let v = venv.path();
        let t = std::time::Instant::now();
        floor_ops(v);
        times[hashes.len()].1.push(t.elapsed());
        keep.push(venv);
    }
    println!("interleaved, 300 rounds:");
    for (name, mut t) in times {
        t.sort_unstable();
        println!(
            "  {name:42} min {:>9.1?}  median {:>9.1?}  p90 {:>9.1?}",
            t[0],
            t[t.len() / 2],
            t[t.len() * 9 / 10]
        );
    }
}

criterion_group!(benches, warm_install, index_get);

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// What a 3-launcher warm install does to a fresh venv, by hand: three launcher symlinks and the
/// `.pth` file in site-packages.
fn floor_ops(v: &Path) {
    for i in 0..3 {
        symlink(Path::new("/nonexistent/cli"), &v.join(format!("bin/l{i}")));
    }
    std::fs::write(
        v.join("lib/python3.11/site-packages/_dx_py_layout.pth"),
        b"# dx-py-layout: {}\nimport site\n",
    )
    .expect("pth");
}
