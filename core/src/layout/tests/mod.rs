//! Layout cache tests against a real store, one file per topic; here the packages, fixture and
//! tree oracles they share.

mod concurrency;
mod index_misses;
mod merge;
mod properties;
mod venv;

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
