//! [`LayoutCache`]: builds layouts, records them in the DXLC index, installs them into venvs.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::Mmap;

use super::index::{IndexError, LayoutEntry, LayoutIndex, encode_index};
use super::manifest::MANIFEST_NAME;
use super::verify::{self, LayoutProblem, VerifyLevel, VerifyReport};
use super::{
    BuildOutcome, Installed, Layout, LayoutError, LayoutManifest, LayoutSpec, LinkMode,
    ProjectHash, build, install,
};
use crate::store::PackageStore;

const INDEX_NAME: &str = "index.dxlc";
const LOCK_NAME: &str = "index.lock";
/// How precisely a hit records the layout's last use.
const USED_GRANULARITY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The layout cache in one directory (`{cache}/layouts`), backed by a package store.
///
/// Lookups read the mapped index without any lock. Builds run without a lock too (each in its
/// own temporary directory, renamed into place); only recording a layout in the index takes the
/// exclusive `index.lock`, for as long as it takes to write and rename a new index file.
#[derive(Debug)]
pub struct LayoutCache<'s> {
    root: PathBuf,
    store: &'s PackageStore,
    view: RwLock<Arc<View>>,
    strongest: LinkMode,
    /// Where installs record the venvs that use a layout (`crate::cache::roots`).
    roots: Option<PathBuf>,
}

/// The index as this process last mapped it.
#[derive(Debug, Default)]
struct View {
    index: Option<LayoutIndex<Mmap>>,
    /// Identity of the mapped file, to notice that a writer replaced it.
    id: Option<FileId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Self {
            dev,
            ino,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<'s> LayoutCache<'s> {
    /// Opens (creating the directory if needed) the cache at `root`, the layouts directory.
    /// A missing or corrupt index is not an error: every lookup misses until a writer rebuilds it.
    pub fn open(root: &Path, store: &'s PackageStore) -> Result<Self, LayoutError> {
        fs_err::create_dir_all(root)?;
        let root = std::path::absolute(root).map_err(LayoutError::fs("make absolute", root))?;
        let cache = Self {
            root,
            store,
            view: RwLock::new(Arc::new(View::default())),
            strongest: LinkMode::Hardlink,
            roots: None,
        };
        cache.refresh_view();
        Ok(cache)
    }

    /// Limits how files are placed in new layouts: `Hardlink` (the default) tries hard links,
    /// then symlinks, then copies; `Symlink` starts at symlinks; `Copy` only copies. Existing
    /// layouts are reused whatever mode they were built with.
    pub fn set_link_mode(&mut self, strongest: LinkMode) {
        self.strongest = strongest;
    }

    /// Records every venv an install points at a layout in the roots log at `dir`, so that
    /// cleaning knows it is in use.
    pub fn record_roots_in(&mut self, dir: PathBuf) {
        self.roots = Some(dir);
    }

    /// The layouts directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `{layouts}/index.dxlc`.
    pub fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_NAME)
    }

    /// Where the layout `hash` lives: `{layouts}/{hash hex}`.
    pub fn layout_dir(&self, hash: &ProjectHash) -> PathBuf {
        self.root.join(hash.to_hex())
    }

    fn current_view(&self) -> Arc<View> {
        Arc::clone(&self.view.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-maps the index if the file changed since it was mapped; true when it did.
    fn refresh_view(&self) -> bool {
        let path = self.index_path();
        let id = std::fs::metadata(&path).ok().map(|m| FileId::of(&m));
        if id == self.current_view().id {
            return false;
        }
        let index = id.and_then(|_| {
            // Index files are written under a temporary name and renamed into place, never
            // modified afterwards, so the mapped bytes cannot change.
            let map = crate::sys::map_immutable(&path);
            match map
                .map_err(|e| e.to_string())
                .and_then(|m| LayoutIndex::new(m).map_err(|e| e.to_string()))
            {
                Ok(ix) => Some(ix),
                Err(e) => {
                    tracing::warn!(
                        "Ignoring the layout index `{}` ({e}); the next build rebuilds it",
                        path.display()
                    );
                    None
                }
            }
        });
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(View { index, id });
        true
    }

    /// Looks `hash` up in the mapped index, O(1) and lock-free; on a miss, re-maps the index if
    /// another process replaced it and looks again. A corrupt entry is a miss.
    pub fn get(&self, hash: &ProjectHash) -> Option<LayoutEntry> {
        if let Some(e) = self.get_mapped(hash) {
            return Some(e);
        }
        if self.refresh_view() {
            return self.get_mapped(hash);
        }
        None
    }

    fn get_mapped(&self, hash: &ProjectHash) -> Option<LayoutEntry> {
        let view = self.current_view();
        match view.index.as_ref()?.get(hash) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(
                    "Layout index entry for `{hash}` is damaged ({e}); treating it as a miss"
                );
                None
            }
        }
    }

    /// Every entry of the current index (corrupt entries skipped).
    pub fn entries(&self) -> Vec<LayoutEntry> {
        self.refresh_view();
        let view = self.current_view();
        view.index
            .as_ref()
            .map(|ix| ix.entries().filter_map(Result::ok).collect())
            .unwrap_or_default()
    }

    /// Installs the cached layout `hash` into `venv`, if there is a healthy one.
    ///
    /// Writes `lib/pythonX.Y/site-packages/_dx_py_layout.pth`, which adds the layout's
    /// `site-packages` to `sys.path` after the venv's own (atomically replacing a previous one),
    /// and one symlink per launcher in `bin/`; removes launchers of the previous layout that this
    /// one lacks, and records both in the `.pth` file's marker line.
    /// `Ok(None)` on a miss or when the layout fails the cheap check (then `build_layout`
    /// repairs it). Costs O(1) in packages and files, O(launchers) for `bin/`.
    pub fn install_cached(
        &self,
        hash: &ProjectHash,
        venv: &Path,
    ) -> Result<Option<Installed>, LayoutError> {
        let Some(entry) = self.get(hash) else {
            return Ok(None);
        };
        let dir = self.layout_dir(hash);
        let Some(manifest) = verify::looks_whole(&dir) else {
            tracing::warn!("Layout `{}` is damaged; it will be rebuilt", dir.display());
            return Ok(None);
        };
        let installed = install::install(
            &self.root,
            &dir,
            hash,
            entry.python_version,
            entry.interpreter_tag(),
            venv,
        )?;
        self.record_root(venv, hash);
        // Last use goes on the manifest's mtime: updating the index on every hit would need the
        // writer lock and a whole new index file. At most once an hour, since each update is a
        // metadata write; read-only caches simply keep the old time.
        let stale = manifest
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age > USED_GRANULARITY);
        if stale && let Ok(f) = std::fs::File::open(dir.join(MANIFEST_NAME)) {
            let _ = f.set_modified(SystemTime::now());
        }
        Ok(Some(installed))
    }

    /// Installs `spec` into `venv`: a cache hit when possible, else builds (or repairs) the
    /// layout first.
    pub fn install(&self, spec: &LayoutSpec, venv: &Path) -> Result<Installed, LayoutError> {
        let hash = spec.project_hash();
        if let Some(done) = self.install_cached(&hash, venv)? {
            return Ok(done);
        }
        let layout = self.build_layout(spec)?;
        let installed = install::install(
            &self.root,
            &layout.path,
            &hash,
            spec.python_version,
            &spec.interpreter_tag,
            venv,
        )?;
        self.record_root(venv, &hash);
        Ok(Installed {
            hit: false,
            ..installed
        })
    }

    fn record_root(&self, venv: &Path, hash: &ProjectHash) {
        if let Some(dir) = &self.roots {
            crate::cache::roots::record_venv(dir, venv, &hash.to_hex());
        }
    }

    /// Returns the layout for `spec`, building it if it is missing and rebuilding it if it fails
    /// the cheap check, and makes sure the index records it.
    ///
    /// The tree is built in a temporary directory inside the layouts directory and renamed into
    /// place; if another process renamed its own first, theirs is used and ours discarded.
    pub fn build_layout(&self, spec: &LayoutSpec) -> Result<Layout, LayoutError> {
        let hash = spec.project_hash();
        let dir = self.layout_dir(&hash);
        match verify::quick(&dir, &hash) {
            Ok(manifest) => {
                self.record(&hash, &manifest)?;
                Ok(manifest.to_layout(hash, dir, BuildOutcome::Reused))
            }
            Err(LayoutProblem::MissingLayout) => self.build_fresh(spec, &hash, false),
            Err(problem) => {
                tracing::warn!("Rebuilding layout `{}`: {problem:?}", dir.display());
                self.build_fresh(spec, &hash, true)
            }
        }
    }

    /// Builds `spec`'s layout afresh and swaps it in for whatever is there (a damaged or
    /// half-deleted tree), then records it. Venvs pointing at the layout see the new tree.
    pub fn rebuild_layout(&self, spec: &LayoutSpec) -> Result<Layout, LayoutError> {
        let hash = spec.project_hash();
        let exists = std::fs::symlink_metadata(self.layout_dir(&hash)).is_ok();
        self.build_fresh(spec, &hash, exists)
    }

    /// Checks the layout `hash`: cheaply (directory, manifest, `site-packages`) or fully (every
    /// file against the store's unpacked trees).
    pub fn verify_layout(
        &self,
        hash: &ProjectHash,
        level: VerifyLevel,
    ) -> Result<VerifyReport, LayoutError> {
        verify::verify(self.store, &self.layout_dir(hash), hash, level)
    }

    /// Reads a layout's manifest (to rebuild it without the original spec: `to_spec`).
    pub fn manifest(&self, hash: &ProjectHash) -> Result<LayoutManifest, LayoutError> {
        LayoutManifest::read(&self.layout_dir(hash), hash)
    }

    fn build_fresh(
        &self,
        spec: &LayoutSpec,
        hash: &ProjectHash,
        replace: bool,
    ) -> Result<Layout, LayoutError> {
        let dir = self.layout_dir(hash);
        let tmp = crate::temp::dir_in(&self.root).map_err(LayoutError::fs(
            "create a temporary directory in",
            &self.root,
        ))?;
        let manifest =
            build::build_tree(self.store, spec, hash, tmp.path(), self.strongest, now())?;
        let tmp = tmp.keep();
        let outcome = if replace {
            swap_in(&tmp, &dir)?;
            BuildOutcome::Rebuilt
        } else {
            match std::fs::rename(&tmp, &dir) {
                Ok(()) => BuildOutcome::Built,
                Err(e) if std::fs::symlink_metadata(&dir).is_ok() => {
                    // Another process published this layout first.
                    if let Ok(theirs) = verify::quick(&dir, hash) {
                        tracing::debug!(
                            "layout `{}` was built concurrently ({e}); using it",
                            dir.display()
                        );
                        let _ = install::remove_tree(&tmp);
                        self.record(hash, &theirs)?;
                        return Ok(theirs.to_layout(*hash, dir, BuildOutcome::Reused));
                    }
                    swap_in(&tmp, &dir)?;
                    BuildOutcome::Rebuilt
                }
                Err(e) => {
                    let _ = install::remove_tree(&tmp);
                    return Err(LayoutError::fs("rename into place", &dir)(e));
                }
            }
        };
        sync_dir(&self.root);
        self.record(hash, &manifest)?;
        Ok(manifest.to_layout(*hash, dir, outcome))
    }

    /// Makes sure the index holds `hash` as `manifest` describes it.
    fn record(&self, hash: &ProjectHash, manifest: &LayoutManifest) -> Result<(), LayoutError> {
        let wanted = manifest.to_entry(*hash, 0);
        if self.get(hash).is_some_and(|e| same_layout(&e, &wanted)) {
            return Ok(());
        }
        self.update_index(|entries| {
            if entries.get(hash).is_some_and(|e| same_layout(e, &wanted)) {
                return false;
            }
            entries.insert(*hash, manifest.to_entry(*hash, now()));
            true
        })
    }

    /// Rebuilds the index from the layouts on disk (their manifests), dropping entries whose
    /// layout is gone, and removes temporary trees whose builder is gone (see [`crate::temp`]).
    /// Returns the number of layouts indexed.
    pub fn rebuild_index(&self) -> Result<usize, LayoutError> {
        crate::temp::sweep(&self.root);
        let mut n = 0;
        self.update_index(|entries| {
            let scanned = self.scan_layouts();
            n = scanned.len();
            *entries = scanned;
            true
        })?;
        Ok(n)
    }

    /// Drops `hashes` from the index, so that a pruned layout is unknown before its tree goes
    /// (a crash in between leaves a tree nothing points to, never an entry without a tree).
    pub fn forget(
        &self,
        hashes: &std::collections::BTreeSet<ProjectHash>,
    ) -> Result<(), LayoutError> {
        self.update_index(|entries| {
            let before = entries.len();
            entries.retain(|h, _| !hashes.contains(h));
            entries.len() != before
        })
    }

    /// Every layout directory with a readable manifest, as index entries.
    fn scan_layouts(&self) -> BTreeMap<ProjectHash, LayoutEntry> {
        let mut out = BTreeMap::new();
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return out;
        };
        for d in dirs.flatten() {
            let Some(hash) = d
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<ProjectHash>().ok())
            else {
                continue;
            };
            match verify::quick(&d.path(), &hash) {
                Ok(m) => {
                    let used = std::fs::metadata(d.path().join(MANIFEST_NAME))
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(m.created, |d| d.as_secs());
                    out.insert(hash, m.to_entry(hash, used));
                }
                Err(p) => tracing::warn!("Not indexing layout `{}`: {p:?}", d.path().display()),
            }
        }
        out
    }

    /// Under the exclusive index lock: reads the current index (or, if it is missing or corrupt,
    /// the layouts on disk), applies `change`, and publishes a new index if anything changed.
    fn update_index(
        &self,
        change: impl FnOnce(&mut BTreeMap<ProjectHash, LayoutEntry>) -> bool,
    ) -> Result<(), LayoutError> {
        let lock_path = self.root.join(LOCK_NAME);
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?
            .into_parts()
            .0;
        let mut lock = fd_lock::RwLock::new(file);
        let _guard = lock.write().map_err(LayoutError::fs("lock", &lock_path))?;

        let path = self.index_path();
        let (mut entries, capacity, generation, mut dirty) = match read_index(&path) {
            Ok(Some(ix)) => {
                let header = *ix.header();
                match ix.verify() {
                    Ok(()) => (
                        ix.entries()
                            .filter_map(Result::ok)
                            .map(|e| (e.project_hash, e))
                            .collect(),
                        header.capacity,
                        header.generation,
                        false,
                    ),
                    Err(e) => {
                        tracing::warn!(
                            "Layout index `{}` is damaged ({e}); rebuilding it from the layouts on disk",
                            path.display()
                        );
                        (
                            self.scan_layouts(),
                            header.capacity,
                            header.generation,
                            true,
                        )
                    }
                }
            }
            // No index yet: a new cache (nothing on disk) or a deleted index (layouts to find).
            Ok(None) => {
                let found = self.scan_layouts();
                let dirty = !found.is_empty();
                (found, 0, 0, dirty)
            }
            Err(e) => {
                tracing::warn!(
                    "Layout index `{}` is unreadable ({e}); rebuilding it from the layouts on disk",
                    path.display()
                );
                (self.scan_layouts(), 0, 0, true)
            }
        };
        dirty |= change(&mut entries);
        if dirty {
            let list: Vec<LayoutEntry> = entries.into_values().collect();
            let bytes = encode_index(&list, capacity, generation.wrapping_add(1), now()).map_err(
                |source| LayoutError::Index {
                    path: path.clone(),
                    source,
                },
            )?;
            publish(&self.root, &path, &bytes)?;
        }
        drop(_guard);
        self.refresh_view();
        Ok(())
    }
}

/// Two entries describe the same layout build (times aside).
fn same_layout(a: &LayoutEntry, b: &LayoutEntry) -> bool {
    a.created == b.created
        && a.file_count == b.file_count
        && a.package_count == b.package_count
        && a.link_mode == b.link_mode
        && a.python_version == b.python_version
        && a.total_bytes == b.total_bytes
}

/// The index at `path`: `Ok(None)` when there is none, `Err` when it cannot be read or parsed.
fn read_index(path: &Path) -> Result<Option<LayoutIndex<Mmap>>, String> {
    // Index files are only ever replaced by rename, never written in place.
    match crate::sys::map_immutable(path) {
        Ok(map) => LayoutIndex::new(map)
            .map(Some)
            .map_err(|e: IndexError| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `bytes` to a new file beside `path`, fsyncs it, renames it over `path`, and fsyncs the
/// directory: readers see the old index or the new one, never a mix.
fn publish(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let mut tmp =
        crate::temp::file_in(dir).map_err(LayoutError::fs("create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(LayoutError::fs("write", tmp.path().to_path_buf()))?;
    tmp.persist(path)
        .map_err(|e| LayoutError::fs("replace", path)(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Makes renames in `dir` durable (best effort; not possible on every platform).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Puts the finished tree `new` at `dir`, replacing whatever is there, then deletes the old tree.
/// On Linux one `renameat2(RENAME_EXCHANGE)` swaps them so `dir` never disappears; elsewhere the
/// old tree is renamed aside first.
fn swap_in(new: &Path, dir: &Path) -> Result<(), LayoutError> {
    if std::fs::symlink_metadata(dir).is_err() {
        match std::fs::rename(new, dir) {
            Ok(()) => return Ok(()),
            Err(_) if std::fs::symlink_metadata(dir).is_ok() => {}
            Err(e) => {
                let _ = install::remove_tree(new);
                return Err(LayoutError::fs("rename into place", dir)(e));
            }
        }
    }
    match exchange(new, dir) {
        Ok(()) => {}
        Err(e) => {
            tracing::debug!("atomic exchange unavailable ({e}); renaming aside");
            let aside = new.with_extension("old");
            if let Err(e) = std::fs::rename(dir, &aside) {
                let _ = install::remove_tree(new);
                return Err(LayoutError::fs("move aside", dir)(e));
            }
            if let Err(e) = std::fs::rename(new, dir) {
                let _ = install::remove_tree(new);
                return Err(LayoutError::fs("rename into place", dir)(e));
            }
            let _ = install::remove_tree(&aside);
            return Ok(());
        }
    }
    // After the exchange, `new` holds the old tree.
    if let Err(e) = crate::temp::remove_any(new) {
        tracing::warn!(
            "Failed to remove the replaced layout `{}`: {e}",
            new.display()
        );
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    Ok(renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)?)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
