//! DPL lookups and opens, against parsing the same lock as `pylock.toml`; and "entries for this
//! environment" of a universal lock (DPL version 2), cold and warm.
//!
//! `cargo bench -p dx-py-benches --bench dpl -- --warm-up-time 1 --measurement-time 3`
use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dx_py_core::dpl::{
    DplBuilder, DplReader, Lock, LockMeta, LockedPackage, LockedWheel, UniversalDplReader,
    UniversalLock, UniversalLockedPackage,
};
use dx_py_core::hash::ContentHash;

/// A lock of `n` packages shaped like a real one: URLs, markers on some, a few edges each.
fn synthetic_lock(n: usize) -> Lock {
    let name = |i: usize| format!("Package_{i:05}-Lib");
    let packages = (0..n)
        .map(|i| {
            let version = format!("{}.{}.{}", i % 7, i % 31, i % 101);
            let escaped = format!("package_{i:05}_lib");
            LockedPackage {
                name: name(i),
                version: version.clone(),
                marker: (i % 5 == 0).then(|| "python_version >= \"3.9\"".to_string()),
                requires_python: Some(">=3.8".to_string()),
                index_url: Some("http://127.0.0.1:3141/simple/".to_string()),
                extras: if i % 10 == 0 {
                    vec!["socks".into(), "security".into()]
                } else {
                    Vec::new()
                },
                extras_bitmap: u64::from(i % 10 == 0),
                wheel: LockedWheel {
                    filename: format!("{escaped}-{version}-py3-none-any.whl"),
                    url: Some(format!(
                        "http://127.0.0.1:3141/packages/{:02x}/{escaped}-{version}-py3-none-any.whl",
                        i % 256
                    )),
                    path: None,
                    sha256: *ContentHash::of(format!("wheel {i}").as_bytes()).as_bytes(),
                    size: Some(10_000 + i as u64),
                },
                sdist: None,
                local: None,
                store_hash: Some(ContentHash::of(format!("store {i}").as_bytes())),
                dependencies: (1..4)
                    .map(|k| (i * 7 + k * 13) % n)
                    .filter(|&d| d != i)
                    .map(name)
                    .collect(),
            }
        })
        .collect();
    Lock {
        meta: LockMeta {
            environment: "cp311-linux_x86_64".into(),
            python_version: "3.11.9".into(),
            requires_python: Some(">=3.9".into()),
            inputs_hash: ContentHash::of(b"inputs"),
        },
        packages,
    }
}

fn get(c: &mut Criterion) {
    let lock = synthetic_lock(1000);
    let bytes = DplBuilder::from_lock(&lock).to_bytes().unwrap();
    let reader = DplReader::from_bytes(&bytes[..]).unwrap();
    // Normalized spellings (the common case) and respelled ones (normalized on the fly).
    let names: Vec<String> = (0..1000).map(|i| format!("package-{i:05}-lib")).collect();
    let respelled: Vec<String> = (0..1000).map(|i| format!("Package_{i:05}.Lib")).collect();
    let mut g = c.benchmark_group("dpl_get_1000");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            black_box(
                reader
                    .get(black_box(&names[i]))
                    .unwrap()
                    .unwrap()
                    .version_major(),
            )
        })
    });
    g.bench_function("hit_respelled", |b| {
        b.iter(|| {
            i = (i + 1) % respelled.len();
            black_box(
                reader
                    .get(black_box(&respelled[i]))
                    .unwrap()
                    .unwrap()
                    .version_major(),
            )
        })
    });
    g.bench_function("miss", |b| {
        b.iter(|| black_box(reader.get(black_box("not-in-the-lock")).unwrap().is_none()))
    });
    // First read of each entry through a fresh reader: checksum, UTF-8 and edge checks
    // included (plus one O(1) open per 1000 lookups).
    g.throughput(Throughput::Elements(names.len() as u64));
    g.bench_function("first_read_x1000", |b| {
        b.iter_batched(
            || DplReader::from_bytes(&bytes[..]).unwrap(),
            |r| {
                for n in &names {
                    black_box(r.get(n).unwrap().unwrap().version_major());
                }
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    let pylock = lock.to_pylock_string();
    g.sample_size(10);
    g.bench_function("pylock_parse_then_find", |b| {
        b.iter(|| {
            let l = Lock::from_pylock_str(black_box(&pylock)).unwrap();
            black_box(l.get("package-00500-lib").map(|p| p.version.len()))
        })
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("dpl_open");
    for n in [10, 1000, 10_000] {
        let lock = synthetic_lock(n);
        let bytes = DplBuilder::from_lock(&lock).to_bytes().unwrap();
        let path = dir.path().join(format!("{n}.dpl"));
        DplBuilder::from_lock(&lock).write(&path).unwrap();
        g.bench_with_input(BenchmarkId::new("from_bytes", n), &bytes, |b, bytes| {
            b.iter(|| black_box(DplReader::from_bytes(black_box(&bytes[..])).unwrap().len()))
        });
        g.bench_with_input(BenchmarkId::new("open_file_mmap", n), &path, |b, path| {
            b.iter(|| black_box(DplReader::open(black_box(path)).unwrap().len()))
        });
        g.bench_with_input(
            BenchmarkId::new("open_file_then_get", n),
            &path,
            |b, path| {
                b.iter(|| {
                    let r = DplReader::open(black_box(path)).unwrap();
                    black_box(
                        r.get("package-00005-lib")
                            .unwrap()
                            .map(|e| e.version_minor()),
                    )
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("pylock_parse");
    g.sample_size(10);
    for n in [10, 1000, 10_000] {
        let text = synthetic_lock(n).to_pylock_string();
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                black_box(
                    Lock::from_pylock_str(black_box(text))
                        .unwrap()
                        .packages
                        .len(),
                )
            })
        });
    }
    g.finish();
}

fn whole_file(c: &mut Criterion) {
    let lock = synthetic_lock(1000);
    let bytes = DplBuilder::from_lock(&lock).to_bytes().unwrap();
    let reader = DplReader::from_bytes(&bytes[..]).unwrap();
    let mut g = c.benchmark_group("dpl_1000");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("verify", |b| b.iter(|| reader.verify().unwrap()));
    g.bench_function("to_lock", |b| {
        b.iter(|| black_box(reader.to_lock().unwrap().packages.len()))
    });
    g.bench_function("build", |b| {
        b.iter(|| black_box(DplBuilder::from_lock(&lock).to_bytes().unwrap().len()))
    });
    g.finish();
}

/// Wheel tags of a package with binary wheels: four Pythons on Linux x86-64, two on Linux
/// ARM, Windows and macOS.
const BINARY_TAGS: [&str; 10] = [
    "cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-win_amd64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp312-cp312-macosx_11_0_arm64",
];

/// A universal lock of `n` entries: ten wheels each (a pure wheel added on every third), an
/// sdist, markers on a fifth, and every fifteenth name at two versions split on the Python.
fn synthetic_universal_lock(n: usize) -> UniversalLock {
    let markers = [
        "sys_platform == 'win32'",
        "platform_machine == 'aarch64'",
        "python_full_version < '3.11'",
        "implementation_name == 'cpython' and sys_platform != 'darwin'",
    ];
    let mut packages = Vec::with_capacity(n);
    let mut i = 0;
    while packages.len() < n {
        let name = format!("Package_{i:05}-Lib");
        let escaped = format!("package_{i:05}_lib");
        let versions: Vec<(String, Option<String>)> = if i % 15 == 0 {
            vec![
                ("1.0".into(), Some("python_full_version < '3.12'".into())),
                ("2.0".into(), Some("python_full_version >= '3.12'".into())),
            ]
        } else {
            let marker = (i % 5 == 1).then(|| markers[i % 4].to_string());
            vec![(format!("{}.{}", i % 7, i % 31), marker)]
        };
        for (version, marker) in versions {
            let file = |tag: &str, ext: &str| {
                let filename = format!("{escaped}-{version}{tag}{ext}");
                LockedWheel {
                    url: Some(format!("http://127.0.0.1:3141/packages/{filename}")),
                    sha256: *ContentHash::of(filename.as_bytes()).as_bytes(),
                    filename,
                    path: None,
                    size: Some(10_000 + i as u64),
                }
            };
            let mut wheels: Vec<LockedWheel> = BINARY_TAGS
                .iter()
                .map(|t| file(&format!("-{t}"), ".whl"))
                .collect();
            if i % 3 == 0 {
                wheels.push(file("-py3-none-any", ".whl"));
            }
            packages.push(UniversalLockedPackage {
                name: name.clone(),
                version: version.clone(),
                marker,
                requires_python: Some(">=3.9".into()),
                index_url: Some("http://127.0.0.1:3141/simple/".into()),
                dependencies: (1..4)
                    .map(|k| (i * 7 + k * 13) % n)
                    .filter(|&d| d != i && d < i)
                    .map(|d| format!("Package_{d:05}-Lib"))
                    .collect(),
                wheels,
                sdist: Some(file("", ".tar.gz")),
                local: None,
            });
        }
        i += 1;
    }
    UniversalLock {
        requires_python: Some(">=3.9".into()),
        environments: Vec::new(),
        inputs_hash: ContentHash::of(b"inputs"),
        packages,
    }
}

/// "Entries for this environment" of a 300-entry universal lock, for this machine's `python3`:
/// cold (choose, write the v1 selection), warm (the kept selection found), and the parts.
fn universal_selection(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let Ok(interp) = dx_py_core::python::Interpreter::find(None, tmp.path()) else {
        eprintln!("no python3: universal selection benches skipped");
        return;
    };
    let lock = synthetic_universal_lock(300);
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    let dpl = dir.join("dx-py.dpl");
    lock.write_dpl(&dpl).unwrap();
    let pylock = dir.join("pylock.toml");
    std::fs::write(&pylock, lock.to_pylock_string()).unwrap();
    let cache = tmp.path().join("cache");
    let bytes = std::fs::read(&dpl).unwrap();

    let mut g = c.benchmark_group("universal_300");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let kept = dx_py_core::install::selected_lock(&dir, &interp, &cache).unwrap();
    g.bench_function("selected_lock_cold", |b| {
        b.iter_batched(
            || std::fs::remove_file(&kept).unwrap(),
            |()| black_box(dx_py_core::install::selected_lock(&dir, &interp, &cache).unwrap()),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("selected_lock_warm", |b| {
        b.iter(|| black_box(dx_py_core::install::selected_lock(&dir, &interp, &cache).unwrap()))
    });
    let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
    g.bench_function("select_in_memory", |b| {
        b.iter(|| {
            let lock = dx_py_core::install::select_for(&reader, &dpl, &interp).unwrap();
            black_box(lock.packages.len())
        })
    });
    g.bench_function("verify", |b| b.iter(|| reader.verify().unwrap()));
    g.bench_function("read_pylock_for", |b| {
        b.iter(|| {
            let lock = dx_py_core::install::read_pylock_for(&pylock, &interp).unwrap();
            black_box(lock.packages.len())
        })
    });
    g.finish();
}

criterion_group!(benches, get, open, whole_file, universal_selection);
criterion_main!(benches);
