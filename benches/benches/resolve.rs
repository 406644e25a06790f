//! The solver alone (in-memory source, no prefetch threads) on synthetic graphs where every
//! newest version fails deep down: a chain of `depth` packages with `versions` versions each,
//! `p{i}==v` requiring `p{i+1}==v`, and only version 1 of the last package installable. The
//! solver has to learn, level by level, that each newer version is unusable.
use std::hint::black_box;
use std::str::FromStr;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dx_py_core::index::IndexFile;
use dx_py_core::resolve::{InMemorySource, Manifest, ResolveOptions, Target, resolve};
use dx_py_core::testing::{cp311_tag_priority, linux_cp311_markers};
use dx_py_core::wheel::WheelMetadata;
use pep508_rs::{PackageName, Requirement};

fn chain(depth: usize, versions: usize) -> InMemorySource {
    let mut source = InMemorySource::new();
    for i in 0..depth {
        let name = format!("p{i}");
        for v in 1..=versions {
            let requires_dist = if i + 1 < depth {
                vec![format!("p{}=={v}.0", i + 1)]
            } else if v == 1 {
                vec![]
            } else {
                vec!["missing>=1".to_string()]
            };
            let filename = format!("{name}-{v}.0-py3-none-any.whl");
            let metadata = WheelMetadata {
                metadata_version: Some("2.1".into()),
                name: name.clone(),
                version: format!("{v}.0"),
                requires_dist,
                requires_python: None,
                provides_extra: vec![],
            };
            let file = IndexFile {
                url: format!("mem://{filename}"),
                filename,
                sha256: None,
                requires_python: None,
                yanked: false,
                yanked_reason: None,
                size: None,
                ..IndexFile::default()
            };
            source.add(PackageName::from_str(&name).unwrap(), file, Some(metadata));
        }
    }
    source.add(
        PackageName::from_str("missing").unwrap(),
        IndexFile {
            url: "mem://missing-0.1.tar.gz".into(),
            filename: "missing-0.1.tar.gz".into(),
            sha256: None,
            requires_python: None,
            yanked: false,
            yanked_reason: None,
            size: None,
            ..IndexFile::default()
        },
        None,
    );
    source
}

fn bench(c: &mut Criterion) {
    let markers = linux_cp311_markers();
    let target = Target {
        markers: &markers,
        tag_priority: &cp311_tag_priority,
    };
    let manifest = Manifest {
        requirements: vec![Requirement::from_str("p0").unwrap()],
        ..Manifest::default()
    };
    let options = ResolveOptions {
        prefetch_threads: 0,
        ..ResolveOptions::default()
    };
    let mut group = c.benchmark_group("resolve_backtracking_chain");
    for (depth, versions) in [(10, 10), (20, 20), (40, 40)] {
        let source = chain(depth, versions);
        let resolution = resolve(&manifest, target, &options, &source).unwrap();
        assert!(
            resolution
                .packages
                .iter()
                .all(|p| p.version.to_string() == "1.0")
        );
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{depth}x{versions}")),
            &source,
            |b, source| b.iter(|| resolve(black_box(&manifest), target, &options, source).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
