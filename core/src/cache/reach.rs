//! Which roots are live, and what live roots reach: the mark half of `cache prune` (and what
//! `cache clean` keeps).
//!
//! A root is live when its path still refers to what its file records:
//! - a venv whose layout marker names the recorded layout, and that layout is in this cache;
//! - a mount point where a dx-py mount is (the caller reads the mount table), or a mount recorded
//!   less than [`MOUNT_GRACE`] ago: one being made (its tree planned under the cache lock, the
//!   FUSE mount made after the lock is released) must not lose its tree in between;
//! - a lock file whose bytes still hash to the recorded hash.
//!
//! From the live roots: a venv reaches its layout and, through the layout's manifest, the
//! objects it was built from and their bytecode packs; a mount reaches its tree files and the
//! objects (packages and packs) the tree serves; a lock reaches the objects its entries name.
//! Any reached package also reaches the bytecode packs its maps name, so that a fresh venv from a
//! kept object needs no compile.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::Cache;
use super::roots::{self, Root, RootFileError, Uses};
use crate::hash::ContentHash;
use crate::layout::{LayoutManifest, ProjectHash};

/// The root files of a cache, sorted into live and dead.
#[derive(Debug, Default)]
pub struct Roots {
    /// Live roots, with their files.
    pub live: Vec<(PathBuf, Root)>,
    /// Roots whose path is gone or refers to something else now.
    pub dead: Vec<(PathBuf, Root)>,
    /// Files that are not root records (torn, foreign, another version): dead, with the reason.
    pub corrupt: Vec<(PathBuf, RootFileError)>,
}

impl Roots {
    /// The live roots alone.
    pub fn live_roots(&self) -> Vec<Root> {
        self.live.iter().map(|(_, r)| r.clone()).collect()
    }
}

/// Reads `cache`'s root files and checks each against its path now. `is_mounted(path)` tells a
/// live dx-py mount (the platform's mount table, which this crate does not read).
pub fn check_roots(cache: &Cache, is_mounted: &dyn Fn(&Path) -> bool) -> Roots {
    let mut out = Roots::default();
    for (file, root) in roots::read_all(&cache.roots_dir()) {
        match root {
            Ok(root) if is_live(cache, &root, is_mounted) || is_starting(&file, &root) => {
                out.live.push((file, root));
            }
            Ok(root) => out.dead.push((file, root)),
            Err(e) => out.corrupt.push((file, e)),
        }
    }
    out
}

/// How long a mount root counts as live before its mount appears.
pub const MOUNT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A mount recorded moments ago, whose mount may still be being made.
fn is_starting(file: &Path, root: &Root) -> bool {
    matches!(root.uses, Uses::Tree(_))
        && std::fs::metadata(file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < MOUNT_GRACE)
}

fn is_live(cache: &Cache, root: &Root, is_mounted: &dyn Fn(&Path) -> bool) -> bool {
    match &root.uses {
        Uses::Layout(key) => {
            let layouts = cache.layouts_dir();
            let layouts = std::path::absolute(&layouts).unwrap_or(layouts);
            let wanted = layouts.join(key);
            venv_layout_dir(&root.path).is_some_and(|l| l == wanted) && wanted.is_dir()
        }
        Uses::Tree(_) => is_mounted(&root.path),
        Uses::Lock { hash, .. } => {
            std::fs::read(&root.path).is_ok_and(|bytes| ContentHash::of(&bytes) == *hash)
        }
    }
}

/// The layout directory `venv`'s marker names, whatever its Python version.
pub(super) fn venv_layout_dir(venv: &Path) -> Option<PathBuf> {
    if cfg!(windows) {
        // `Lib/site-packages` does not depend on the version.
        return crate::layout::venv_layout(venv, (0, 0)).map(|l| l.layout);
    }
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (major, minor) = name.strip_prefix("python")?.split_once('.')?;
            let version = (major.parse().ok()?, minor.parse().ok()?);
            crate::layout::venv_layout(venv, version).map(|l| l.layout)
        })
}

/// What a set of roots reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    /// Layout keys (directory names under `layouts/`).
    pub layouts: BTreeSet<String>,
    /// Tree keys (`{key}.*` under `mounts/trees/`).
    pub tree_keys: BTreeSet<String>,
    /// Store objects: packages and bytecode packs.
    pub objects: BTreeSet<ContentHash>,
}

/// What `live` roots reach in `cache`.
pub fn reach(cache: &Cache, live: &[Root]) -> Reached {
    let mut r = Reached::default();
    for root in live {
        match &root.uses {
            Uses::Layout(key) => {
                r.layouts.insert(key.clone());
                let (Ok(hash), dir) = (key.parse::<ProjectHash>(), cache.layouts_dir().join(key))
                else {
                    continue;
                };
                if let Ok(manifest) = LayoutManifest::read(&dir, &hash) {
                    for p in &manifest.packages {
                        r.objects.extend(p.hash.parse::<ContentHash>());
                        // Extra trees are unpacked copies of bytecode packs, named by hash.
                        for t in &p.extra_trees {
                            r.objects.extend(
                                t.file_name()
                                    .and_then(|n| n.to_str())
                                    .and_then(|n| n.parse::<ContentHash>().ok()),
                            );
                        }
                    }
                }
            }
            Uses::Tree(key) => {
                r.tree_keys.insert(key.clone());
            }
            Uses::Lock { objects, .. } => r.objects.extend(objects.iter().copied()),
        }
    }
    // Every tree file of a kept mount (its first and its complete tree) names objects it serves.
    for path in tree_files(cache) {
        let kept = roots::tree_key(&path).is_some_and(|k| r.tree_keys.contains(&k));
        if kept
            && path.extension().is_some_and(|x| x == "dxtree")
            && let Ok(tree) = crate::tree::open_tree(&path)
        {
            for i in 0..tree.pack_count() {
                if let Ok(pack) = tree.pack(i) {
                    r.objects.insert(pack.hash);
                }
            }
        }
    }
    let packs: Vec<ContentHash> = bytecode_maps(cache)
        .into_iter()
        .filter(|m| r.objects.contains(&m.package))
        .filter_map(|m| m.pack)
        .collect();
    r.objects.extend(packs);
    r
}

/// The files under the trees directory.
pub(super) fn tree_files(cache: &Cache) -> Vec<PathBuf> {
    std::fs::read_dir(cache.trees_dir())
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// One bytecode map: `{store}/bytecode-v2/{tag}/{package}` naming a pack.
#[derive(Debug)]
pub(super) struct BytecodeMap {
    /// The map file.
    pub(super) path: PathBuf,
    /// The package it is for (its file name).
    pub(super) package: ContentHash,
    /// The pack it names, if it reads as a hash.
    pub(super) pack: Option<ContentHash>,
}

/// Every bytecode map of `cache`'s store.
pub(super) fn bytecode_maps(cache: &Cache) -> Vec<BytecodeMap> {
    let store = crate::store::PackageStore::open(cache.store_dir());
    let mut out = Vec::new();
    for dir in crate::install::bytecode_dirs(&store) {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Some(package) = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<ContentHash>().ok())
            else {
                continue;
            };
            let pack = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.trim().parse().ok());
            out.push(BytecodeMap {
                path: e.path(),
                package,
                pack,
            });
        }
    }
    out
}
