//! Interpreter discovery (cache hit), venv creation and bytecode compilation.
//!
//! `cargo bench -p dx-py-benches --bench python`. Uses `python3` on PATH; the bytecode corpus is
//! that interpreter's standard library without its tests (~870 files, numpy-sized).
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dx_py_core::python::{
    ExistingVenv, Interpreter, VenvOptions, compile_sources_with, create_venv,
};

fn stdlib_sources(interp: &Interpreter) -> Vec<(String, Vec<u8>)> {
    let v = interp.version();
    let root = interp
        .info()
        .base_prefix
        .join(format!("lib/python{}.{}", v.major, v.minor));
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !matches!(
                    &*name,
                    "site-packages" | "test" | "tests" | "__pycache__" | "idlelib"
                ) {
                    stack.push(path);
                }
            } else if name.ends_with(".py") {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let interp = Interpreter::find(None, cache.path()).expect("python3 on PATH");

    c.bench_function("interpreter_find_cached", |b| {
        b.iter(|| black_box(Interpreter::find(None, cache.path()).unwrap()))
    });

    let dir = tempfile::tempdir().unwrap();
    let mut n = 0u64;
    c.bench_function("create_venv_fresh", |b| {
        b.iter(|| {
            n += 1;
            let path = dir.path().join(format!("fresh{n}"));
            black_box(create_venv(&interp, &path, &VenvOptions::default()).unwrap())
        })
    });
    let venv = dir.path().join("venv");
    c.bench_function("create_venv_over_existing", |b| {
        let clear = VenvOptions {
            existing: ExistingVenv::Clear,
            ..VenvOptions::default()
        };
        b.iter(|| black_box(create_venv(&interp, &venv, &clear).unwrap()))
    });

    let sources = stdlib_sources(&interp);
    let bytes: usize = sources.iter().map(|(_, s)| s.len()).sum();
    eprintln!("bytecode corpus: {} files, {} bytes", sources.len(), bytes);
    let mut group = c.benchmark_group("compile_stdlib");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    for jobs in [1, 2] {
        group.bench_function(format!("jobs_{jobs}"), |b| {
            b.iter(|| {
                let pycs = compile_sources_with(
                    &interp,
                    sources.iter().map(|(n, s)| (n.as_str(), s.as_slice())),
                    jobs,
                )
                .unwrap();
                black_box(pycs)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
