//! The cache root and every directory under it: the one place that spells them.
//!
//! ```text
//! {cache}/
//! ├── store/                  PackageStore: objects, `wheels/` records (may live elsewhere: --store)
//! │   └── unpacked/           unpacked copies (a read-only store's go to {cache}/unpacked/)
//! ├── unpacked/               unpacked copies of a read-only store's objects
//! ├── layouts/                LayoutCache: index.dxlc and one tree per package set
//! ├── mounts/                 mount bookkeeping; trees/ holds the `.dxtree` files
//! ├── wheels/                 files downloaded from indexes, by sha256
//! ├── metadata/               core metadata of distribution files, by their sha256
//! ├── pages/                  index and find-links pages with their HTTP caching policy
//! ├── interpreters/           cached interpreter facts
//! ├── builds/                 wheels built from sdists, build-environment locks (`crate::build`)
//! ├── selected/               what universal locks give each interpreter (`install::selected_lock`)
//! ├── roots/{hash}            what uses the cache: venvs, mounts, locks (see [`roots`])
//! ├── .writers/{pid}-{start}  processes that may have temporaries (see `temp`)
//! └── .lock                   the cache lock (see `cache_lock`)
//! ```
//!
//! [`Cache`] hands out these paths and the typed views over them (the store, the layouts);
//! [`clean`] removes what no live venv or mount uses; [`prune`] what no live root reaches.
use std::path::{Path, PathBuf};

use crate::store::PackageStore;

pub mod clean;
pub mod prune;
pub mod reach;
pub mod roots;
pub mod verify;

/// A cache root, with the store it uses.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
    store: PathBuf,
    store_is_shared: bool,
}

impl Cache {
    /// The cache at `root`, its store at `{root}/store` unless `store` names another directory
    /// (a shared, possibly read-only store).
    pub fn new(root: impl Into<PathBuf>, store: Option<&Path>) -> Self {
        let root = root.into();
        let store_is_shared = store.is_some();
        let store = store.map_or_else(|| root.join("store"), Path::to_path_buf);
        Self {
            root,
            store,
            store_is_shared,
        }
    }

    /// This cache with its store moved to `store` when one is named.
    pub fn with_store(&self, store: Option<&Path>) -> Self {
        match store {
            Some(s) => Self::new(self.root.clone(), Some(s)),
            None => self.clone(),
        }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's directory.
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// True when the store was named with `--store` rather than living in the cache.
    pub fn store_is_shared(&self) -> bool {
        self.store_is_shared
    }

    /// The package store; a read-only one keeps its unpacked copies in this cache.
    pub fn store(&self) -> PackageStore {
        let store = PackageStore::open(&self.store);
        if store.is_writable() {
            store
        } else {
            store.with_unpacked_root(self.own_unpacked_dir())
        }
    }

    /// Where unpacked copies of a writable store live: `{store}/unpacked`.
    pub fn store_unpacked_dir(&self) -> PathBuf {
        self.store.join("unpacked")
    }

    /// Where unpacked copies of a read-only store live: `{cache}/unpacked`.
    pub fn own_unpacked_dir(&self) -> PathBuf {
        self.root.join("unpacked")
    }

    /// The store's records of which object each wheel became: `{store}/wheels`.
    pub fn wheel_records_dir(&self) -> PathBuf {
        self.store.join("wheels")
    }

    /// `{cache}/layouts`.
    pub fn layouts_dir(&self) -> PathBuf {
        self.root.join("layouts")
    }

    /// `{cache}/mounts`: the state of mounts and their trees.
    pub fn mounts_dir(&self) -> PathBuf {
        self.root.join("mounts")
    }

    /// `{cache}/mounts/trees`: the `.dxtree` files mounts serve.
    pub fn trees_dir(&self) -> PathBuf {
        self.mounts_dir().join("trees")
    }

    /// `{cache}/wheels`: files downloaded from indexes.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("wheels")
    }

    /// `{cache}/metadata`: the core metadata of distribution files, by their sha256.
    pub fn metadata_dir(&self) -> PathBuf {
        self.root.join("metadata")
    }

    /// `{cache}/pages`: index pages kept with their HTTP caching policy.
    pub fn pages_dir(&self) -> PathBuf {
        self.root.join("pages")
    }

    /// `{cache}/interpreters`: cached interpreter facts.
    pub fn interpreters_dir(&self) -> PathBuf {
        self.root.join("interpreters")
    }

    /// `{cache}/builds`: wheels built from sdists and what builds need (`crate::build`).
    pub fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }

    /// `{cache}/selected`: the version 1 DPLs universal locks give interpreters
    /// (`crate::install::selected_lock`).
    pub fn selected_dir(&self) -> PathBuf {
        self.root.join("selected")
    }

    /// `{cache}/roots`: what uses the cache.
    pub fn roots_dir(&self) -> PathBuf {
        self.root.join("roots")
    }

    /// Every directory where dx-py makes temporaries in this cache and its store (see
    /// `crate::temp`): what a sweep reads, and all it reads.
    pub fn temp_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.store().temp_dirs();
        dirs.extend([
            self.layouts_dir(),
            // The mount servers' status files are replaced through temporaries here.
            self.mounts_dir(),
            self.trees_dir(),
            self.downloads_dir(),
            self.metadata_dir(),
            self.pages_dir(),
            self.interpreters_dir(),
            self.roots_dir(),
            self.builds_dir(),
            self.selected_dir(),
        ]);
        dirs
    }

    /// Every directory of the cache that holds derived or downloaded data, with its kind, for
    /// `cache stats` and `cache clean --all` (the store only when it lives in the cache).
    pub fn kinds(&self) -> Vec<(Kind, PathBuf)> {
        let mut v = vec![
            (Kind::Layouts, self.layouts_dir()),
            (Kind::Trees, self.trees_dir()),
            (Kind::Unpacked, self.own_unpacked_dir()),
            (Kind::Downloads, self.downloads_dir()),
            (Kind::Metadata, self.metadata_dir()),
            (Kind::Pages, self.pages_dir()),
            (Kind::Interpreters, self.interpreters_dir()),
            (Kind::Builds, self.builds_dir()),
            (Kind::Selected, self.selected_dir()),
        ];
        if !self.store_is_shared {
            v.push((Kind::Store, self.store.clone()));
        }
        v
    }
}

/// Removing a path of the cache failed.
#[derive(Debug, thiserror::Error)]
#[error("Failed to remove `{}`", path.display())]
pub struct RemoveError {
    /// What could not be removed.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Removes a file or a whole tree (read-only unpacked copies included); a missing one is fine.
/// Removes the venvs' lock files (`crate::install::venv_locks_dir`), and their directory when
/// nothing else is in it. Only under the exclusive cache lock: then no install holds one.
fn remove_venv_locks(cache: &Cache) -> Result<(), RemoveError> {
    let dir = crate::install::venv_locks_dir(cache.root());
    remove_any(&dir)?;
    if let Some(parent) = dir.parent() {
        // Not empty (something else of the cache's): kept.
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), RemoveError> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RemoveError {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// What a cache directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Package objects, their unpacked copies and wheel records.
    Store,
    /// Unpacked copies of a read-only store's objects.
    Unpacked,
    /// Ready site-packages trees.
    Layouts,
    /// Mount trees.
    Trees,
    /// Files downloaded from indexes.
    Downloads,
    /// Core metadata of distribution files.
    Metadata,
    /// Index pages (the HTTP cache).
    Pages,
    /// Interpreter facts.
    Interpreters,
    /// Wheels built from sdists (locks name them by path: not removed as refetchable).
    Builds,
    /// What universal locks give each interpreter: computed again from the lock in about a
    /// millisecond, so no root keeps them.
    Selected,
}

impl Kind {
    /// True for what can always be fetched or computed again, so that `cache clean --all`
    /// removes it whole.
    pub fn is_refetchable(self) -> bool {
        matches!(
            self,
            Kind::Downloads | Kind::Metadata | Kind::Pages | Kind::Interpreters | Kind::Selected
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Store => "store",
            Kind::Unpacked => "unpacked",
            Kind::Layouts => "layouts",
            Kind::Trees => "trees",
            Kind::Downloads => "downloads",
            Kind::Metadata => "metadata",
            Kind::Pages => "pages",
            Kind::Interpreters => "interpreters",
            Kind::Builds => "builds",
            Kind::Selected => "selected",
        })
    }
}
