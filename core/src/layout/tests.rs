//! Layout cache tests against a real store: cold to warm, corruption recovery, concurrency.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use crate::names::normalize_name;
use crate::store::PackageStore;

const TAG: &str = "cp311-linux_x86_64";

/// A package as the tests describe it.
#[derive(Clone, Debug)]
struct Pkg {
    name: String,
    version: String,
    /// site-packages files.
    files: BTreeMap<String, Vec<u8>>,
    /// bin scripts.
    scripts: BTreeMap<String, Vec<u8>>,
}

impl Pkg {
    fn new(name: &str, files: &[(&str, &str)], scripts: &[&str]) -> Self {
        Self {
            name: name.into(),
            version: "1.0".into(),
            files: files
                .iter()
                .map(|(p, d)| ((*p).to_string(), d.as_bytes().to_vec()))
                .collect(),
            scripts: scripts
                .iter()
                .map(|s| {
                    (
                        (*s).to_string(),
                        format!("#!/bin/sh\necho {s}\n").into_bytes(),
                    )
                })
                .collect(),
        }
    }

    fn dxpkg(&self) -> Vec<u8> {
        let dist_info = format!(
            "{}-{}.dist-info",
            normalize_name(&self.name).replace('-', "_"),
            self.version
        );
        let mut w = DxpkgWriter::new(&self.name, &self.version, &dist_info);
        w.add(
            Scheme::SitePackages,
            &format!("{dist_info}/METADATA"),
            EntryKind::File,
            0o644,
            format!("Name: {}\n", self.name).into_bytes(),
        );
        for (p, d) in &self.files {
            w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.clone());
        }
        for (p, d) in &self.scripts {
            w.add(Scheme::Scripts, p, EntryKind::File, 0o755, d.clone());
        }
        w.finish().unwrap()
    }

    fn dist_info(&self) -> String {
        format!(
            "{}-{}.dist-info",
            normalize_name(&self.name).replace('-', "_"),
            self.version
        )
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    store: PackageStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        Self { dir, store }
    }

    fn at(dir: &Path) -> PackageStore {
        PackageStore::open(dir.join("store"))
    }

    fn layouts(&self) -> PathBuf {
        self.dir.path().join("layouts")
    }

    fn venv(&self, name: &str) -> PathBuf {
        let v = self.dir.path().join("venvs").join(name);
        std::fs::create_dir_all(&v).unwrap();
        v
    }

    fn cache(&self) -> LayoutCache<'_> {
        LayoutCache::open(&self.layouts(), &self.store).unwrap()
    }
}

fn add(store: &PackageStore, p: &Pkg) -> LayoutPackage {
    LayoutPackage {
        name: p.name.clone(),
        version: p.version.clone(),
        hash: store.store(&p.dxpkg()).unwrap(),
        wheel_sha256: *blake3::hash(p.name.as_bytes()).as_bytes(),
        extra_trees: Vec::new(),
    }
}

fn spec_of(store: &PackageStore, pkgs: &[Pkg]) -> LayoutSpec {
    LayoutSpec {
        interpreter_tag: TAG.into(),
        python_version: (3, 11),
        packages: pkgs.iter().map(|p| add(store, p)).collect(),
    }
}

/// A tree by content: relative path -> `None` for a directory, `Some(bytes)` for a file
/// (symlinks followed).
type Snapshot = BTreeMap<String, Option<Vec<u8>>>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(base: &Path, dir: &Path, out: &mut Snapshot) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if std::fs::metadata(&p).unwrap().is_dir() {
                out.insert(rel, None);
                walk(base, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    out
}

/// A layout's tree without its manifest (which holds the build time).
fn layout_snapshot(root: &Path) -> Snapshot {
    let mut s = snapshot(root);
    s.remove("dx-py-layout.json");
    s
}

/// Naive oracle for a venv's site-packages: the packages' files merged in canonical order.
fn oracle(pkgs: &[Pkg]) -> Snapshot {
    let mut sorted: Vec<&Pkg> = pkgs.iter().collect();
    sorted.sort_by_key(|p| normalize_name(&p.name));
    let mut out = Snapshot::new();
    let mut add_file = |path: &str, data: &[u8]| {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            out.insert(prefix.clone(), None);
        }
        out.insert(path.to_string(), Some(data.to_vec()));
    };
    for p in sorted {
        add_file(
            &format!("{}/METADATA", p.dist_info()),
            format!("Name: {}\n", p.name).as_bytes(),
        );
        for (f, d) in &p.files {
            add_file(f, d);
        }
    }
    out
}

fn launchers_of(pkgs: &[Pkg]) -> Vec<String> {
    let set: BTreeSet<String> = pkgs
        .iter()
        .flat_map(|p| p.scripts.keys().cloned())
        .collect();
    set.into_iter().collect()
}

fn venv_site_packages(venv: &Path) -> PathBuf {
    venv.join("lib/python3.11/site-packages")
}

/// Checks that `venv` holds exactly the layout of `pkgs`: its own `site-packages` is a real
/// directory whose `.pth` file adds the layout's, and the launchers are linked.
fn assert_venv_is(venv: &Path, pkgs: &[Pkg]) {
    let sp = venv_site_packages(venv);
    assert!(std::fs::symlink_metadata(&sp).unwrap().is_dir());
    let marker = install::read_marker(&sp.join(install::PTH_NAME)).unwrap();
    assert_eq!(marker.format, 2);
    let layout_sp = marker.layout.join("site-packages");
    assert_eq!(snapshot(&layout_sp), oracle(pkgs));
    let pth = std::fs::read_to_string(sp.join(install::PTH_NAME)).unwrap();
    let exec = pth
        .lines()
        .filter(|l| l.starts_with("import "))
        .collect::<Vec<_>>();
    assert_eq!(
        exec,
        [format!(
            "import site; site.addsitedir('{}')",
            layout_sp.display()
        )]
    );
    let mut bin: Vec<String> = std::fs::read_dir(venv.join("bin"))
        .map(|r| {
            r.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    bin.retain(|n| !n.starts_with("python") && !n.starts_with("activate"));
    bin.sort();
    assert_eq!(bin, launchers_of(pkgs));
    assert_eq!(marker.launchers, launchers_of(pkgs));
}

/// The site-packages of the layout `venv` points at.
fn layout_site_packages(venv: &Path) -> PathBuf {
    let marker = install::read_marker(&venv_site_packages(venv).join(install::PTH_NAME)).unwrap();
    marker.layout.join("site-packages")
}

fn arb_pkgs() -> impl Strategy<Value = Vec<Pkg>> {
    // Directories start with `d`, files with `f`, so no path is a file in one package and a
    // directory in another; `ns/` is a namespace shared by packages, `shared.py` a file two
    // packages may both ship, and `tool` a launcher more than one may ship.
    let pkg = (
        btree_map("(d[a-c]/){0,2}f[a-d]\\.py", vec(any::<u8>(), 0..24), 1..6),
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(vec!["tool", "run", "serve"], 0..3),
    );
    vec(pkg, 1..5).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (files, ns, shared, scripts))| {
                let mut p = Pkg::new(&format!("Pkg_{i}"), &[], &scripts);
                for (f, d) in files {
                    p.files.insert(format!("p{i}/{f}"), d);
                }
                if ns {
                    p.files
                        .insert(format!("ns/p{i}/__init__.py"), vec![i as u8]);
                }
                if shared {
                    p.files
                        .insert("shared.py".into(), format!("# from {i}\n").into_bytes());
                }
                p
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The first install builds, the second is a hit; both venvs hold the oracle's tree, and
    /// every file is a hard link of the store's file (shared bytes, realpath in the layout).
    #[test]
    fn cold_then_warm_gives_the_same_tree(pkgs in arb_pkgs()) {
        let fx = Fixture::new();
        let cache = fx.cache();
        let spec = spec_of(&fx.store, &pkgs);
        let hash = spec.project_hash();
        prop_assert!(cache.install_cached(&hash, &fx.venv("a")).unwrap().is_none());
        let cold = cache.install(&spec, &fx.venv("a")).unwrap();
        prop_assert!(!cold.hit);
        let warm = cache.install(&spec, &fx.venv("b")).unwrap();
        prop_assert!(warm.hit);
        prop_assert_eq!(&cold.layout, &warm.layout);
        assert_venv_is(&fx.venv("a"), &pkgs);
        assert_venv_is(&fx.venv("b"), &pkgs);
        // A fresh cache (another process) also hits, through the index file.
        let again = fx.cache();
        prop_assert!(again.install_cached(&hash, &fx.venv("c")).unwrap().is_some());
        assert_venv_is(&fx.venv("c"), &pkgs);
        let report = cache.verify_layout(&hash, VerifyLevel::Full).unwrap();
        prop_assert!(report.is_ok(), "{:?}", report);
        let m = cache.manifest(&hash).unwrap();
        prop_assert_eq!(m.link_mode(), LinkMode::Hardlink);
        prop_assert_eq!(m.links.symlink + m.links.copy, 0);
        let entry = cache.get(&hash).unwrap();
        prop_assert_eq!(entry.package_count as usize, pkgs.len());
        prop_assert_eq!(u64::from(entry.file_count), m.file_count);
        prop_assert_eq!(entry.interpreter_tag(), TAG);
    }

    /// Damage a layout (delete or replace files, directories, the manifest, the whole tree):
    /// the full check notices, and a rebuild restores the identical tree.
    #[test]
    fn damaged_layouts_are_detected_and_rebuilt(
        pkgs in arb_pkgs(),
        damage in vec((0..6u8, any::<prop::sample::Index>()), 1..4),
    ) {
        let fx = Fixture::new();
        let cache = fx.cache();
        let spec = spec_of(&fx.store, &pkgs);
        let hash = spec.project_hash();
        let layout = cache.build_layout(&spec).unwrap();
        prop_assert_eq!(layout.outcome, BuildOutcome::Built);
        let before = layout_snapshot(&layout.path);
        cache.install(&spec, &fx.venv("v")).unwrap();

        for (kind, at) in &damage {
            let files: Vec<PathBuf> = walk_files(&layout.path.join("site-packages"));
            let dirs: Vec<PathBuf> = walk_dirs(&layout.path.join("site-packages"));
            match kind {
                0 if !files.is_empty() => std::fs::remove_file(&files[at.index(files.len())]).unwrap(),
                1 if !files.is_empty() => {
                    // Replace (never write through: the file is the store's inode).
                    let f = &files[at.index(files.len())];
                    let mut data = std::fs::read(f).unwrap();
                    data.push(b'!');
                    std::fs::remove_file(f).unwrap();
                    std::fs::write(f, data).unwrap();
                }
                2 if !dirs.is_empty() => std::fs::remove_dir_all(&dirs[at.index(dirs.len())]).unwrap(),
                3 => { let _ = std::fs::remove_file(layout.path.join("dx-py-layout.json")); }
                4 => { let _ = std::fs::remove_dir_all(layout.path.join("site-packages")); }
                5 => { let _ = std::fs::remove_dir_all(&layout.path); }
                _ => {}
            }
        }
        let damaged = std::fs::symlink_metadata(&layout.path).is_err()
            || !layout.path.join("dx-py-layout.json").is_file()
            || layout_snapshot(&layout.path) != before;
        let report = cache.verify_layout(&hash, VerifyLevel::Full).unwrap();
        prop_assert_eq!(report.is_ok(), !damaged, "{:?}", report);

        let existed = std::fs::symlink_metadata(&layout.path).is_ok();
        let rebuilt = cache.rebuild_layout(&spec).unwrap();
        prop_assert_eq!(rebuilt.outcome, if existed { BuildOutcome::Rebuilt } else { BuildOutcome::Built });
        prop_assert_eq!(layout_snapshot(&layout.path), before);
        prop_assert!(cache.verify_layout(&hash, VerifyLevel::Full).unwrap().is_ok());
        // The venv made before the damage works again without reinstalling.
        assert_venv_is(&fx.venv("v"), &pkgs);
        prop_assert_eq!(cache.entries().len(), 1);
    }

    /// Damage the index (flip bytes, cut it, delete it): lookups miss or stay right, never
    /// panic; the next writer rebuilds it from the layouts on disk, holding each exactly once.
    #[test]
    fn a_damaged_index_is_a_miss_and_gets_rebuilt(
        flips in vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        delete in any::<bool>(),
    ) {
        let fx = Fixture::new();
        let sets = fixed_sets();
        let specs: Vec<LayoutSpec> = sets.iter().map(|s| spec_of(&fx.store, s)).collect();
        {
            let cache = fx.cache();
            for s in &specs {
                cache.build_layout(s).unwrap();
            }
            prop_assert_eq!(cache.entries().len(), specs.len());
        }
        let index = fx.layouts().join("index.dxlc");
        let mut bytes = std::fs::read(&index).unwrap();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        std::fs::write(&index, &bytes).unwrap();
        if delete {
            std::fs::remove_file(&index).unwrap();
        }
        let cache = fx.cache();
        for (s, pkgs) in specs.iter().zip(&sets) {
            let h = s.project_hash();
            if let Some(e) = cache.get(&h) {
                prop_assert_eq!(e.project_hash, h);
                prop_assert_eq!(e.package_count as usize, pkgs.len());
            }
        }
        // The next writer (here, for a new set) notices the damage and rebuilds the index from
        // the layouts on disk: the damaged sets are back without being asked for.
        let extra = spec_of(&fx.store, &[Pkg::new("delta", &[("delta.py", "")], &[])]);
        prop_assert_eq!(cache.build_layout(&extra).unwrap().outcome, BuildOutcome::Built);
        for s in &specs {
            prop_assert!(cache.get(&s.project_hash()).is_some());
            let l = cache.build_layout(s).unwrap();
            prop_assert_eq!(l.outcome, BuildOutcome::Reused);
        }
        let ix = LayoutIndex::new(std::fs::read(&index).unwrap()).unwrap();
        ix.verify().unwrap();
        let got: BTreeSet<ProjectHash> = ix.entries().map(|e| e.unwrap().project_hash).collect();
        let mut want: BTreeSet<ProjectHash> = specs.iter().map(LayoutSpec::project_hash).collect();
        want.insert(extra.project_hash());
        prop_assert_eq!(got, want);
        for (s, pkgs) in specs.iter().zip(&sets) {
            let venv = fx.venv(&s.project_hash().to_hex()[..8]);
            prop_assert!(cache.install_cached(&s.project_hash(), &venv).unwrap().is_some());
            assert_venv_is(&venv, pkgs);
        }
    }
}

fn walk_files(root: &Path) -> Vec<PathBuf> {
    walk(root).into_iter().filter(|p| !p.is_dir()).collect()
}

fn walk_dirs(root: &Path) -> Vec<PathBuf> {
    walk(root).into_iter().filter(|p| p.is_dir()).collect()
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Three overlapping sets, the same in every process.
fn fixed_sets() -> Vec<Vec<Pkg>> {
    let a = Pkg::new(
        "alpha",
        &[("alpha/__init__.py", "A = 1\n"), ("ns/alpha.py", "")],
        &["alpha-cli"],
    );
    let b = Pkg::new(
        "Beta.Pkg",
        &[("beta/__init__.py", "B = 2\n"), ("ns/beta.py", "")],
        &["beta"],
    );
    let c = Pkg::new(
        "gamma",
        &[("gamma/__init__.py", "G\n"), ("gamma/sub/x.py", "x\n")],
        &[],
    );
    vec![vec![a.clone(), b.clone()], vec![b, c.clone()], vec![a, c]]
}

#[test]
fn namespace_packages_merge_into_real_directories() {
    let fx = Fixture::new();
    let one = Pkg::new("google-one", &[("google/one/__init__.py", "1")], &[]);
    let two = Pkg::new("google-two", &[("google/two/__init__.py", "2")], &[]);
    let spec = spec_of(&fx.store, &[one.clone(), two.clone()]);
    let cache = fx.cache();
    let layout = cache.build_layout(&spec).unwrap();
    let google = layout.site_packages().join("google");
    let meta = std::fs::symlink_metadata(&google).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert!(google.join("one/__init__.py").is_file());
    assert!(google.join("two/__init__.py").is_file());
    assert_eq!(snapshot(&layout.site_packages()), oracle(&[one, two]));
}

#[test]
fn a_file_in_two_packages_goes_to_the_later_one_whatever_the_input_order() {
    let fx = Fixture::new();
    let a = Pkg::new("aaa", &[("same.py", "from a")], &[]);
    let z = Pkg::new("zzz", &[("same.py", "from z")], &[]);
    let cache = fx.cache();
    let one = cache
        .build_layout(&spec_of(&fx.store, &[a.clone(), z.clone()]))
        .unwrap();
    assert_eq!(
        std::fs::read(one.site_packages().join("same.py")).unwrap(),
        b"from z"
    );
    let two = cache
        .build_layout(&spec_of(&fx.store, &[z.clone(), a.clone()]))
        .unwrap();
    assert_eq!(two.outcome, BuildOutcome::Reused);
    assert_eq!(one.path, two.path);
    // Built from scratch in the other order, the tree is the same.
    let other = LayoutCache::open(&fx.dir.path().join("other"), &fx.store).unwrap();
    let three = other.build_layout(&spec_of(&fx.store, &[z, a])).unwrap();
    assert_eq!(three.outcome, BuildOutcome::Built);
    assert_eq!(
        std::fs::read(three.site_packages().join("same.py")).unwrap(),
        b"from z"
    );
}

#[test]
fn a_file_against_a_directory_is_a_conflict() {
    let fx = Fixture::new();
    let a = Pkg::new("aaa", &[("thing", "file")], &[]);
    let b = Pkg::new("bbb", &[("thing/inner.py", "dir")], &[]);
    let err = fx
        .cache()
        .build_layout(&spec_of(&fx.store, &[a, b]))
        .unwrap_err();
    assert!(
        matches!(&err, LayoutError::Conflict { path, dir_package, file_package }
            if path == Path::new("site-packages/thing") && dir_package == "bbb" && file_package == "aaa"),
        "{err}"
    );
    // Nothing half-built is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(fx.layouts())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|n| n == "index.lock" || n == "index.dxlc"),
        "{leftovers:?}"
    );
}

#[test]
fn extra_trees_are_merged_over_their_package() {
    let fx = Fixture::new();
    let p = Pkg::new("demo", &[("demo/__init__.py", "x = 1\n")], &[]);
    let mut spec = spec_of(&fx.store, std::slice::from_ref(&p));
    let extra = fx.dir.path().join("bytecode");
    std::fs::create_dir_all(extra.join("site-packages/demo/__pycache__")).unwrap();
    std::fs::write(
        extra.join("site-packages/demo/__pycache__/__init__.cpython-311.pyc"),
        b"pyc",
    )
    .unwrap();
    spec.packages[0].extra_trees.push(extra.clone());
    let cache = fx.cache();
    let layout = cache.build_layout(&spec).unwrap();
    assert_eq!(
        std::fs::read(
            layout
                .site_packages()
                .join("demo/__pycache__/__init__.cpython-311.pyc")
        )
        .unwrap(),
        b"pyc"
    );
    assert!(
        cache
            .verify_layout(&spec.project_hash(), VerifyLevel::Full)
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        cache
            .manifest(&spec.project_hash())
            .unwrap()
            .to_spec()
            .packages[0]
            .extra_trees,
        vec![extra]
    );
    // A missing extra tree is an error, not a silently smaller layout.
    spec.packages[0].extra_trees = vec![fx.dir.path().join("nope")];
    spec.interpreter_tag = "cp311-other".into();
    assert!(cache.build_layout(&spec).is_err());
}

#[test]
fn symlink_and_copy_modes_are_recorded_and_verified() {
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(0);
    let spec = spec_of(&fx.store, &pkgs);
    for (mode, name) in [(LinkMode::Symlink, "s"), (LinkMode::Copy, "c")] {
        let layouts = fx.dir.path().join(format!("layouts-{name}"));
        let mut cache = LayoutCache::open(&layouts, &fx.store).unwrap();
        cache.set_link_mode(mode);
        let layout = cache.build_layout(&spec).unwrap();
        assert_eq!(layout.link_mode, mode);
        let init = layout.site_packages().join("alpha/__init__.py");
        let is_link = std::fs::symlink_metadata(&init)
            .unwrap()
            .file_type()
            .is_symlink();
        assert_eq!(is_link, mode == LinkMode::Symlink);
        if mode == LinkMode::Symlink {
            // realpath lands in the package's own complete site-packages tree.
            let real = std::fs::canonicalize(&init).unwrap();
            assert!(
                real.ends_with("site-packages/alpha/__init__.py"),
                "{}",
                real.display()
            );
            assert!(real.starts_with(std::fs::canonicalize(fx.store.root()).unwrap()));
        }
        let venv = fx.venv(name);
        assert!(cache.install(&spec, &venv).unwrap().hit);
        assert_venv_is(&venv, &pkgs);
        assert_eq!(cache.get(&spec.project_hash()).unwrap().link_mode, mode);
        assert!(
            cache
                .verify_layout(&spec.project_hash(), VerifyLevel::Full)
                .unwrap()
                .is_ok()
        );
        // A copy of the wrong size is caught.
        std::fs::remove_file(&init).unwrap();
        std::fs::write(&init, b"changed size").unwrap();
        let report = cache
            .verify_layout(&spec.project_hash(), VerifyLevel::Full)
            .unwrap();
        assert!(!report.is_ok());
    }
}

#[test]
fn another_filesystem_falls_back_to_symlinks() {
    // /dev/shm is tmpfs on Linux CI machines; skip where it is not a separate filesystem.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let store = PackageStore::open(shm.path().join("store"));
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(0);
    let spec = spec_of(&store, &pkgs);
    let cache = LayoutCache::open(&fx.layouts(), &store).unwrap();
    let layout = cache.build_layout(&spec).unwrap();
    let same_fs = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(shm.path()).unwrap().dev()
            == std::fs::metadata(fx.dir.path()).unwrap().dev()
    };
    let want = if same_fs {
        LinkMode::Hardlink
    } else {
        LinkMode::Symlink
    };
    assert_eq!(layout.link_mode, want);
    let venv = fx.venv("x");
    cache.install(&spec, &venv).unwrap();
    assert_venv_is(&venv, &pkgs);
}

#[test]
fn install_keeps_the_venvs_own_packages_and_replaces_stale_launchers_only() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let cache = fx.cache();
    let venv = fx.venv("v");
    let sp = venv_site_packages(&venv);
    std::fs::create_dir_all(sp.join("own_pkg")).unwrap();
    std::fs::write(sp.join("own_pkg/x.py"), b"mine").unwrap();
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    for own in ["python", "python3.11", "activate", "activate.fish"] {
        std::fs::write(venv.join("bin").join(own), own).unwrap();
    }
    cache.install(&spec_of(&fx.store, &sets[0]), &venv).unwrap();
    assert_venv_is(&venv, &sets[0]);
    assert!(venv.join("bin/alpha-cli").exists());
    // The user replaces one launcher with their own file: switching layouts keeps it.
    std::fs::remove_file(venv.join("bin/beta")).unwrap();
    std::fs::write(venv.join("bin/beta"), b"mine").unwrap();
    cache.install(&spec_of(&fx.store, &sets[2]), &venv).unwrap();
    assert_eq!(snapshot(&layout_site_packages(&venv)), oracle(&sets[2]));
    assert!(venv.join("bin/alpha-cli").exists());
    assert_eq!(std::fs::read(venv.join("bin/beta")).unwrap(), b"mine");
    for own in ["python", "python3.11", "activate", "activate.fish"] {
        assert_eq!(
            std::fs::read(venv.join("bin").join(own)).unwrap(),
            own.as_bytes()
        );
    }
    // Back to a set with `beta`: the user's file is replaced by the launcher, as pip would.
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_venv_is(&venv, &sets[1]);
    assert!(!venv.join("bin/alpha-cli").exists());
    // What the venv holds of its own stays, beside the `.pth` file and nothing else.
    let mut own: Vec<_> = std::fs::read_dir(&sp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    own.sort();
    assert_eq!(own, [install::PTH_NAME, "own_pkg"]);
    assert_eq!(std::fs::read(sp.join("own_pkg/x.py")).unwrap(), b"mine");
}

#[test]
fn a_venv_of_the_symlink_design_is_converted() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let cache = fx.cache();
    let old = cache.build_layout(&spec_of(&fx.store, &sets[0])).unwrap();
    let venv = fx.venv("v");
    let sp = venv_site_packages(&venv);
    std::fs::create_dir_all(sp.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(old.site_packages(), &sp).unwrap();
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::os::unix::fs::symlink(old.path.join("bin/alpha-cli"), venv.join("bin/alpha-cli")).unwrap();
    let legacy = format!(
        "{{\"format\":1,\"project_hash\":\"{}\",\"layout\":\"{}\",\"launchers\":[\"alpha-cli\"]}}",
        old.project_hash.to_hex(),
        old.path.display()
    );
    std::fs::write(venv.join(install::LEGACY_MARKER_NAME), legacy).unwrap();
    assert_eq!(
        crate::layout::venv_layout(&venv, (3, 11))
            .unwrap()
            .launchers,
        ["alpha-cli"]
    );
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_venv_is(&venv, &sets[1]);
    // The old layout was not touched through the symlink, and the old marker is gone.
    assert_eq!(snapshot(&old.site_packages()), oracle(&sets[0]));
    assert!(!venv.join(install::LEGACY_MARKER_NAME).exists());
    assert!(!venv.join("bin/alpha-cli").exists());
}

#[test]
fn the_pth_names_any_path_as_python_reads_it() {
    // Python reads the literal back as the same path, whatever characters it holds.
    let paths = [
        "/plain/path",
        "/with space/and'quote/back\\slash",
        "/caf\u{e9}/\u{65e5}\u{672c}/\u{1f40d}",
        "/tab\there",
    ];
    let mut code = String::from("import sys\n");
    for p in paths {
        code.push_str(&format!(
            "sys.stdout.buffer.write(({}).encode('utf-8') + b'\\0')\n",
            install::python_str(p)
        ));
    }
    let Ok(out) = std::process::Command::new("python3")
        .args(["-c", &code])
        .output()
    else {
        eprintln!("skipped: no python3 on PATH");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<&[u8]> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    let want: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
    assert_eq!(got, want);
    for p in paths {
        assert!(install::python_str(p).is_ascii());
    }
}

#[test]
fn an_empty_site_packages_and_a_torn_marker_are_handled() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let cache = fx.cache();
    let venv = fx.venv("v");
    std::fs::create_dir_all(venv_site_packages(&venv)).unwrap();
    cache.install(&spec_of(&fx.store, &sets[0]), &venv).unwrap();
    assert_venv_is(&venv, &sets[0]);
    // A marker cut short by a crash is ignored: the next install still ends whole, except that
    // a launcher only the lost marker named (`alpha-cli`) stays, still a working link.
    let pth = venv_site_packages(&venv).join(install::PTH_NAME);
    std::fs::write(&pth, b"# dx-py-layout: {\"format\":2,\"proj").unwrap();
    assert!(install::read_marker(&pth).is_none());
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_eq!(snapshot(&layout_site_packages(&venv)), oracle(&sets[1]));
    let marker = install::read_marker(&pth).unwrap();
    assert_eq!(marker.launchers, launchers_of(&sets[1]));
    assert!(venv.join("bin/alpha-cli").is_file());
    // With a whole marker again, switching layouts cleans up as usual.
    cache.install(&spec_of(&fx.store, &sets[2]), &venv).unwrap();
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_venv_is(&venv, &sets[1]);
    // A venv directory that does not exist yet is created.
    let new = fx.dir.path().join("not/yet/venv");
    assert!(
        cache
            .install_cached(&spec_of(&fx.store, &sets[0]).project_hash(), &new)
            .unwrap()
            .is_some()
    );
    assert_venv_is(&new, &sets[0]);
}

#[test]
fn a_layout_deleted_behind_the_index_is_a_miss_then_rebuilt() {
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(1);
    let spec = spec_of(&fx.store, &pkgs);
    let cache = fx.cache();
    let layout = cache.build_layout(&spec).unwrap();
    std::fs::remove_dir_all(&layout.path).unwrap();
    assert!(cache.get(&spec.project_hash()).is_some());
    assert!(
        cache
            .install_cached(&spec.project_hash(), &fx.venv("v"))
            .unwrap()
            .is_none()
    );
    let installed = cache.install(&spec, &fx.venv("v")).unwrap();
    assert!(!installed.hit);
    assert_venv_is(&fx.venv("v"), &pkgs);
    // Quick check failures other than "missing" swap a fresh tree in.
    std::fs::remove_file(layout.path.join("dx-py-layout.json")).unwrap();
    assert_eq!(
        cache.build_layout(&spec).unwrap().outcome,
        BuildOutcome::Rebuilt
    );
    assert_eq!(cache.entries().len(), 1);
}

#[test]
fn realpath_sibling_lookups_work_from_python() {
    let Ok(out) = std::process::Command::new("python3")
        .arg("--version")
        .output()
    else {
        return;
    };
    if !out.status.success() {
        return;
    }
    let fx = Fixture::new();
    // Like numpy: the package finds its vendored libraries next to itself through realpath.
    let numpyish = Pkg::new(
        "numpyish",
        &[
            (
                "numpyish/__init__.py",
                "import os\nhere = os.path.dirname(os.path.realpath(__file__))\nLIBS = os.path.join(os.path.dirname(here), 'numpyish.libs')\nFOUND = sorted(os.listdir(LIBS))\n",
            ),
            ("numpyish.libs/libfake.so", "ELF"),
        ],
        &[],
    );
    let other = Pkg::new("other", &[("other.py", "")], &[]);
    let spec = spec_of(&fx.store, &[numpyish, other]);
    let mut results = Vec::new();
    for mode in [LinkMode::Hardlink, LinkMode::Symlink] {
        let mut cache =
            LayoutCache::open(&fx.dir.path().join(format!("layouts-{mode}")), &fx.store).unwrap();
        cache.set_link_mode(mode);
        let venv = fx.venv(&mode.to_string());
        let installed = cache.install(&spec, &venv).unwrap();
        let out = std::process::Command::new("python3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // Through the venv's `.pth` file, as `site` processes it at start-up.
            .args([
                "-S",
                "-c",
                "import site, sys; site.addsitedir(sys.argv[1]); import numpyish, other; print(numpyish.FOUND)",
            ])
            .arg(&installed.site_packages)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        results.push(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(results, vec!["['libfake.so']\n"; 2]);
}

#[test]
fn a_stale_view_sees_layouts_published_by_others() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let early = fx.cache();
    let late = fx.cache();
    let spec = spec_of(&fx.store, &sets[0]);
    assert!(early.get(&spec.project_hash()).is_none());
    late.build_layout(&spec).unwrap();
    assert!(early.get(&spec.project_hash()).is_some());
}

#[test]
fn rebuild_index_recovers_every_layout_from_disk() {
    let fx = Fixture::new();
    let cache = fx.cache();
    let specs: Vec<_> = fixed_sets().iter().map(|s| spec_of(&fx.store, s)).collect();
    for s in &specs {
        cache.build_layout(s).unwrap();
    }
    std::fs::write(fx.layouts().join("index.dxlc"), b"garbage").unwrap();
    // Junk in the layouts directory is ignored.
    std::fs::create_dir_all(fx.layouts().join("not-a-hash")).unwrap();
    std::fs::create_dir_all(fx.layouts().join("ab".repeat(32))).unwrap();
    assert_eq!(cache.rebuild_index().unwrap(), 3);
    for s in &specs {
        assert!(cache.get(&s.project_hash()).is_some());
    }
}

// ---- concurrency ----------------------------------------------------------------------------

const CHILD_ENV: &str = "DX_PY_LAYOUT_TEST_CHILD";

/// Each worker installs every fixed set (starting at a different one) into its own venvs and
/// into one venv shared by everybody.
fn worker(root: &Path, store: &PackageStore, who: &str) {
    let sets = fixed_sets();
    let cache = LayoutCache::open(&root.join("layouts"), store).unwrap();
    let start: usize = who.bytes().map(usize::from).sum();
    for k in 0..sets.len() * 2 {
        let i = (start + k) % sets.len();
        let spec = spec_of(store, &sets[i]);
        let venv = root.join("venvs").join(format!("{who}-{k}"));
        std::fs::create_dir_all(&venv).unwrap();
        cache.install(&spec, &venv).unwrap();
        assert_venv_is(&venv, &sets[i]);
        cache.install(&spec, &root.join("venvs/shared")).unwrap();
    }
}

/// After the workers: every private venv was checked by its worker; the shared venv holds one
/// whole set; the index holds each layout exactly once; every layout passes the full check.
fn check_after_workers(root: &Path, store: &PackageStore) {
    let sets = fixed_sets();
    let cache = LayoutCache::open(&root.join("layouts"), store).unwrap();
    let shared = root.join("venvs/shared");
    let marker =
        install::read_marker(&venv_site_packages(&shared).join(install::PTH_NAME)).unwrap();
    let which = sets
        .iter()
        .find(|s| spec_of(store, s).project_hash().to_hex() == marker.project_hash)
        .unwrap();
    assert_venv_is(&shared, which);
    let ix = LayoutIndex::new(std::fs::read(root.join("layouts/index.dxlc")).unwrap()).unwrap();
    ix.verify().unwrap();
    let got: Vec<ProjectHash> = ix.entries().map(|e| e.unwrap().project_hash).collect();
    let want: BTreeSet<ProjectHash> = sets
        .iter()
        .map(|s| spec_of(store, s).project_hash())
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    for h in &want {
        assert!(cache.verify_layout(h, VerifyLevel::Full).unwrap().is_ok());
    }
    // No temporary trees left behind.
    for e in std::fs::read_dir(root.join("layouts")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".tmp"), "{name}");
    }
}

#[test]
fn threads_build_and_install_at_once() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.dir.path().join("venvs/shared")).unwrap();
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (fx, barrier) = (&fx, &barrier);
            s.spawn(move || {
                barrier.wait();
                worker(fx.dir.path(), &fx.store, &format!("t{t}"));
            });
        }
    });
    check_after_workers(fx.dir.path(), &fx.store);
}

/// Runs as a child process when `CHILD_ENV` names a root; a no-op in a normal test run.
#[test]
fn concurrent_child() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let (root, who) = spec.split_once('|').unwrap();
    let root = Path::new(root);
    // Wait for the go signal so that the processes really overlap.
    while !root.join("go").exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let store = Fixture::at(root);
    std::thread::scope(|s| {
        for t in 0..2 {
            let store = &store;
            s.spawn(move || worker(root, store, &format!("{who}t{t}")));
        }
    });
}

#[test]
fn processes_build_and_install_at_once() {
    let fx = Fixture::new();
    let root = fx.dir.path();
    std::fs::create_dir_all(root.join("venvs/shared")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "layout::tests::concurrent_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|p{i}", root.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(root.join("go"), b"").unwrap();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    }
    check_after_workers(root, &Fixture::at(root));
}

#[test]
fn rebuilds_race_with_installs_of_the_same_layout() {
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(0);
    let spec = spec_of(&fx.store, &pkgs);
    let cache = fx.cache();
    cache.build_layout(&spec).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                assert_eq!(
                    cache.rebuild_layout(&spec).unwrap().outcome,
                    BuildOutcome::Rebuilt
                );
            }
        });
        for t in 0..3 {
            let (cache, spec, fx) = (&cache, &spec, &fx);
            s.spawn(move || {
                for k in 0..10 {
                    cache.install(spec, &fx.venv(&format!("{t}-{k}"))).unwrap();
                }
            });
        }
    });
    for t in 0..3 {
        for k in 0..10 {
            assert_venv_is(&fx.venv(&format!("{t}-{k}")), &pkgs);
        }
    }
    assert_eq!(cache.entries().len(), 1);
    assert!(
        cache
            .verify_layout(&spec.project_hash(), VerifyLevel::Full)
            .unwrap()
            .is_ok()
    );
}
