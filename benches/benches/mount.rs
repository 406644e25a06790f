//! The FUSE mount: building a tree, mounting it, and file operations on the mount against the
//! same files in a native directory.
//!
//! Corpus: packs of 100 `.py`-sized files (1-3 KiB), `pkgNNN/subN/mod_NN.py`, in a temporary store;
//! for `pack_pages`, one pack holding a 16 MiB file between two small ones.
//! Needs `/dev/fuse` and `fusermount3`, like the mount tests.
#[cfg(target_os = "linux")]
mod linux {
    use std::hint::black_box;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use criterion::{BenchmarkId, Criterion};
    use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
    use dx_py_core::store::PackageStore;
    use dx_py_fs_linux::fs::{PackPages, TreeFs};
    use dx_py_fs_linux::serve::{AutoUnmount, MountOptions, spawn};
    use dx_py_fs_linux::tree::{PackPlacement, TreeSpec};

    const SP: &str = "lib/python3.11/site-packages";

    pub(crate) struct Corpus {
        pub(crate) dir: tempfile::TempDir,
        pub(crate) store: PackageStore,
        pub(crate) spec: TreeSpec,
        /// Site-packages-relative paths of every file.
        pub(crate) files: Vec<String>,
    }

    fn body(i: usize) -> Vec<u8> {
        let mut s = format!("# module {i}\n");
        while s.len() < 1024 + (i * 37) % 2048 {
            s.push_str(&format!("def f_{}(x):\n    return x * {}\n\n", s.len(), i));
        }
        s.into_bytes()
    }

    pub(crate) fn corpus(files: usize) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let mut spec = TreeSpec::default();
        let mut paths = Vec::new();
        for p in 0..files.div_ceil(100) {
            let mut w = DxpkgWriter::new(
                &format!("pkg{p:03}"),
                "1.0",
                &format!("pkg{p:03}-1.0.dist-info"),
            );
            let mut init = std::collections::BTreeSet::new();
            for i in 0..100.min(files - p * 100) {
                let sub = i / 20;
                let path = format!("pkg{p:03}/sub{sub}/mod_{i:02}.py");
                w.add(
                    Scheme::SitePackages,
                    &path,
                    EntryKind::File,
                    0o644,
                    body(p * 100 + i),
                );
                paths.push(path);
                init.insert(format!("pkg{p:03}/sub{sub}/__init__.py"));
            }
            for path in init {
                w.add(
                    Scheme::SitePackages,
                    &path,
                    EntryKind::File,
                    0o644,
                    Vec::new(),
                );
                paths.push(path);
            }
            let hash = store.store(&w.finish().unwrap()).unwrap();
            spec.packs.push((
                hash,
                PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "x"),
            ));
        }
        Corpus {
            dir,
            store,
            spec,
            files: paths,
        }
    }

    impl Corpus {
        fn tree(&self) -> PathBuf {
            let path = self.dir.path().join("venv.dxtree");
            if !path.exists() {
                self.spec.build_to_file(&self.store, &path).unwrap();
            }
            path
        }

        fn mountpoint(&self) -> PathBuf {
            let p = self.dir.path().join("mnt");
            std::fs::create_dir_all(&p).unwrap();
            p
        }

        fn mount(&self, opts: &MountOptions) -> dx_py_fs_linux::serve::MountedSession {
            let fs = TreeFs::open(&self.tree(), self.store.root()).unwrap();
            spawn(fs, &self.mountpoint(), opts).unwrap()
        }

        /// The same site-packages written as ordinary files.
        fn native(&self) -> PathBuf {
            let root = self.dir.path().join("native");
            for pack in &self.spec.packs {
                let pkg = self.store.get(&pack.0).unwrap();
                for e in pkg.reader().entries() {
                    let e = e.unwrap();
                    let p = root.join(SP).join(e.path);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(&p, pkg.entry_data(&e).unwrap()).unwrap();
                }
            }
            root
        }
    }

    /// What an import-heavy program does: stat every file, read it, list every directory.
    fn replay(root: &Path, files: &[String]) -> u64 {
        let mut bytes = 0u64;
        let site = root.join(SP);
        let mut dirs = std::collections::BTreeSet::new();
        for f in files {
            let p = site.join(f);
            let meta = std::fs::metadata(&p).unwrap();
            bytes += std::fs::read(&p).unwrap().len() as u64 + meta.len();
            dirs.insert(p.parent().unwrap().to_path_buf());
            // The probes a module finder makes for names that are not there.
            let _ = std::fs::metadata(p.with_extension("so"));
        }
        for d in dirs {
            bytes += std::fs::read_dir(d).unwrap().count() as u64;
        }
        bytes
    }

    pub(crate) fn build(c: &mut Criterion) {
        let mut g = c.benchmark_group("tree_build");
        g.sample_size(10);
        for n in [1_000, 10_000] {
            let corpus = corpus(n);
            g.bench_with_input(BenchmarkId::from_parameter(n), &corpus, |b, corpus| {
                b.iter(|| black_box(corpus.spec.build(&corpus.store).unwrap()))
            });
        }
        g.finish();
    }

    pub(crate) fn mount(c: &mut Criterion) {
        let mut g = c.benchmark_group("mount");
        g.sample_size(20);
        for n in [1_000, 10_000] {
            let corpus = corpus(n);
            // `direct`: root's mount(2), what `dx-py mount` does (its watcher starts after the
            // mount is live); `fusermount3`: through fusermount3's auto_unmount.
            for (name, auto_unmount) in [
                ("direct", AutoUnmount::Off),
                ("fusermount3", AutoUnmount::Fusermount),
            ] {
                let opts = MountOptions {
                    auto_unmount,
                    ..MountOptions::default()
                };
                g.bench_function(BenchmarkId::new(name, n), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let start = Instant::now();
                            let m = corpus.mount(&opts);
                            total += start.elapsed();
                            m.unmount().unwrap();
                        }
                        total
                    })
                });
            }
        }
        g.finish();
    }

    pub(crate) fn ops(c: &mut Criterion) {
        let corpus = corpus(1_000);
        let files = &corpus.files;
        let mut g = c.benchmark_group("replay_1000_files");
        g.sample_size(20);
        let native = corpus.native();
        g.bench_function("native_warm", |b| {
            b.iter(|| black_box(replay(&native, files)))
        });
        let opts = MountOptions::default();
        {
            let m = corpus.mount(&opts);
            let root = m.mountpoint().to_path_buf();
            g.bench_function("fuse_warm", |b| b.iter(|| black_box(replay(&root, files))));
            m.unmount().unwrap();
        }
        g.bench_function("fuse_cold", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let m = corpus.mount(&opts);
                    let start = Instant::now();
                    black_box(replay(m.mountpoint(), files));
                    total += start.elapsed();
                    m.unmount().unwrap();
                }
                total
            })
        });
        g.finish();

        // A real interpreter importing 200 modules (no bytecode: both sides compile).
        let mut g = c.benchmark_group("python_import_200_modules");
        g.sample_size(10);
        let modules: Vec<String> = files
            .iter()
            .filter(|f| f.ends_with(".py") && !f.ends_with("__init__.py"))
            .take(200)
            .map(|f| f.trim_end_matches(".py").replace('/', "."))
            .collect();
        let script = format!("import {}", modules.join(", "));
        let python = |root: &Path| {
            let out = std::process::Command::new("python3")
                .args(["-S", "-c", &script])
                .env("PYTHONPATH", root.join(SP))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        g.bench_function("native", |b| b.iter(|| python(&native)));
        let m = corpus.mount(&opts);
        let root = m.mountpoint().to_path_buf();
        g.bench_function("fuse", |b| b.iter(|| python(&root)));
        m.unmount().unwrap();
        g.finish();
    }

    /// Reading a 16 MiB file on a fresh mount whose pack is in the page cache: what
    /// `PackPages::Release` (prefetch exactly, hand the pages back after each reply) costs per
    /// byte against the kernel's defaults. The pack is read whole (untimed) before every
    /// iteration, so both start from a cached pack.
    pub(crate) fn pack_pages(c: &mut Criterion) {
        const BIG: usize = 16 << 20;
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let mut w = DxpkgWriter::new("big", "1.0", "big-1.0.dist-info");
        let big = dx_py_core::testing::noise(BIG, 0x9e37_79b9_7f4a_7c15);
        for (path, data) in [
            ("big/a.py", b"A = 1\n".to_vec()),
            ("big/data.bin", big),
            ("big/z.py", b"Z = 1\n".to_vec()),
        ] {
            w.add(Scheme::SitePackages, path, EntryKind::File, 0o644, data);
        }
        let hash = store.store(&w.finish().unwrap()).unwrap();
        let pack_path = store.get_path(&hash);
        let spec = TreeSpec {
            packs: vec![(
                hash,
                PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "x"),
            )],
            ..TreeSpec::default()
        };
        let tree = dir.path().join("venv.dxtree");
        spec.build_to_file(&store, &tree).unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let file = mnt.join(SP).join("big/data.bin");

        let mut g = c.benchmark_group("read_16MiB_fresh_mount_pack_cached");
        g.sample_size(10);
        g.throughput(criterion::Throughput::Bytes(BIG as u64));
        for (name, mode) in [("keep", PackPages::Keep), ("release", PackPages::Release)] {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        black_box(std::fs::read(&pack_path).unwrap().len());
                        let fs = TreeFs::open(&tree, store.root()).unwrap().pack_pages(mode);
                        let m = spawn(fs, &mnt, &MountOptions::default()).unwrap();
                        let start = Instant::now();
                        black_box(std::fs::read(&file).unwrap().len());
                        total += start.elapsed();
                        m.unmount().unwrap();
                    }
                    total
                })
            });
        }
        g.finish();
    }
}

#[cfg(target_os = "linux")]
criterion::criterion_group!(
    benches,
    linux::build,
    linux::mount,
    linux::ops,
    linux::pack_pages
);
#[cfg(target_os = "linux")]
criterion::criterion_main!(benches);

#[cfg(not(target_os = "linux"))]
fn main() {}
