//! The `.dxtree` a lock is served from, for one venv path and interpreter: built once and kept
//! in `{cache}/mounts/trees/`, so that a later mount of the same set maps the cached file.
//!
//! When the store lacks some packages (local wheels, laid out from their index without being
//! stored) or their bytecode, a first tree without them is served at once, and the server
//! completes it after mounting ([`super::PendingWork`], then [`complete_tree`]).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::after::{AfterMounting, ProjectLock};
use super::error::MountPlanError;
use super::remote::LazyPackage;
use crate::cache::Cache;
use crate::dpl::{DplReader, Lock, LockedPackage};
use crate::dxpkg::PackageLayout;
use crate::hash::ContentHash;
use crate::install::{
    BytecodeBatch, FetchStats, NoReporter, PlannedPackage, PreparedPackage, WheelSources,
    bytecode_pack, ensure_stored_or_planned, existing_packs, finish_bytecode, prepared_packages,
    project_hash,
};
use crate::python::{Interpreter, VenvOptions, VenvShape, venv_text_files};
use crate::store::PackageStore;
use crate::tree::{MappedTree, PackPlacement, SyntheticFile, TreeSpec, open_tree, write_tree};

/// What [`plan_mount`] is asked.
pub struct MountRequest<'a> {
    /// The project's lock (a `dx-py.dpl`), absolute.
    pub lock: &'a Path,
    /// Its bytes, read once: everything works from them (the file may be rewritten by another
    /// `lock` or `mount -r` in the same directory meanwhile).
    pub lock_bytes: Vec<u8>,
    /// Where the venv is served (absolute): `pyvenv.cfg` and the activation scripts name it.
    pub venv: &'a Path,
    /// The venv's interpreter.
    pub interp: &'a Interpreter,
    /// The cache (trees go in its `mounts/trees/`).
    pub cache: &'a Cache,
    /// The store the packages are served from.
    pub store: &'a PackageStore,
    /// Where wheels the store lacks come from; `lock_dir` and `find_links` absolute (the server
    /// runs elsewhere).
    pub sources: WheelSources<'a>,
    /// Packages laid out while locking, to be stored after mounting.
    pub planned: Vec<PlannedPackage>,
}

/// What a mount serves, from [`plan_mount`].
#[derive(Debug)]
pub struct MountPlan {
    /// The tree to mount now.
    pub tree: PathBuf,
    /// What the server completes after mounting, when the tree is a first one.
    pub later: Option<StoreLater>,
    /// The tree built now, when it was not cached.
    pub built: Option<BuiltTree>,
    /// What the caller should tell the user.
    pub warnings: Vec<PlanWarning>,
    /// `(package object, its bytecode pack)` of the packages served before their objects are
    /// fetched: the server fetches the two together.
    pub remote_pairs: Vec<(ContentHash, ContentHash)>,
}

/// The work a first tree leaves to the server.
#[derive(Debug)]
pub struct StoreLater {
    /// The server's inputs.
    pub after: AfterMounting,
    /// Packages to store after mounting.
    pub planned: usize,
    /// Packages without bytecode yet (the planned ones included).
    pub missing: usize,
}

/// A tree [`plan_mount`] built.
#[derive(Debug)]
pub struct BuiltTree {
    /// Its file.
    pub path: PathBuf,
    /// Packages it serves.
    pub packages: usize,
    /// Packages stored by this plan (downloads).
    pub stored_now: usize,
}

/// Something the user should know about a plan that still worked.
#[derive(Debug)]
pub enum PlanWarning {
    /// The cached tree failed its check and was built again.
    DamagedTree {
        /// The tree file.
        path: PathBuf,
        /// What was wrong.
        error: String,
    },
    /// The project's lock could not be given the store objects found now.
    LockNotUpdated {
        /// The lock.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

impl std::fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DamagedTree { path, error } => write!(
                f,
                "The cached tree `{}` is damaged ({error}); rebuilding it",
                path.display()
            ),
            Self::LockNotUpdated { path, error } => {
                write!(f, "could not update {}: {error}", path.display())
            }
        }
    }
}

/// The cached tree of the lock `bytes` (read from `lock`) for `venv` and `interp`, when there
/// is one and it passes its check; one that fails is reported in `warnings` (and is built again
/// by [`plan_mount`]). O(1) in packages: the warm path of `dx-py mount`.
pub fn cached_tree(
    lock: &Path,
    bytes: &[u8],
    venv: &Path,
    interp: &Interpreter,
    cache: &Cache,
    warnings: &mut Vec<PlanWarning>,
) -> Result<Option<PathBuf>, MountPlanError> {
    let dpl = DplReader::from_bytes(bytes).map_err(|source| MountPlanError::Lock {
        path: lock.to_path_buf(),
        source,
    })?;
    let Some(project) = project_hash(&dpl, &interp.tag())? else {
        return Ok(None);
    };
    let path = cache.trees_dir().join(format!(
        "{}.dxtree",
        tree_key(&project.to_string(), venv, interp)
    ));
    if !path.is_file() {
        return Ok(None);
    }
    // A tree is a cache of what the lock and the store say: one damaged on disk is built
    // again rather than served (a flipped name would serve a wrong directory). Its checksum
    // is one blake3 pass over a file of O(inodes) bytes.
    let error = match open_tree(&path).map(|tree| tree.verify()) {
        Ok(Ok(())) => return Ok(Some(path)),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    warnings.push(PlanWarning::DamagedTree { path, error });
    Ok(None)
}

/// Builds the tree serving `req.venv` with the lock's packages (call [`cached_tree`] first).
/// Neither the conversion of local wheels the store lacks nor their bytecode is waited for
/// (when the store can take them): the tree serves the packages from their layouts, and
/// [`MountPlan::later`] says what the server stores and compiles.
pub fn plan_mount(req: MountRequest<'_>) -> Result<MountPlan, MountPlanError> {
    let MountRequest {
        lock: dpl_path,
        lock_bytes: read,
        venv,
        interp,
        cache,
        store,
        sources,
        planned: known,
    } = req;
    let mut warnings = Vec::new();
    let invalid = |source| MountPlanError::Lock {
        path: dpl_path.to_path_buf(),
        source,
    };
    let trees = cache.trees_dir();
    let dpl = DplReader::from_bytes(read.as_slice()).map_err(invalid)?;
    let mut lock = dpl.to_lock().map_err(invalid)?;
    drop(dpl);
    let before: Vec<_> = lock.packages.iter().map(|p| p.store_hash).collect();
    let can_compile = interp.info().cache_tag.is_some() && store.is_writable();
    let tag = interp.info().cache_tag.as_deref().filter(|_| can_compile);
    // With a remote tier, packages it has are laid out from their objects' indexes: not
    // fetched before mounting.
    let mut lazy = super::remote::lazy_packages(store, &mut lock.packages, tag)?;
    let (stats, planned) = stored_or_planned(&mut lock.packages, &lazy, store, &sources, known)?;
    let lock_bytes = lock.dpl_bytes()?;
    // The project's lock as this plan leaves it: the server adds the store objects of the
    // packages it stores only if the file still holds these bytes.
    let mut project_bytes = &read;
    if lock.packages.iter().map(|p| p.store_hash).ne(before) {
        match crate::atomic::replace(dpl_path, &lock_bytes) {
            Ok(()) => project_bytes = &lock_bytes,
            Err(e) => warnings.push(PlanWarning::LockNotUpdated {
                path: dpl_path.to_path_buf(),
                error: e.to_string(),
            }),
        }
    }
    let plan_of: HashMap<usize, &PlannedPackage> = planned.iter().map(|p| (p.index, p)).collect();
    let lazy_of: HashMap<usize, &LazyPackage> = lazy.iter().map(|p| (p.index, p)).collect();
    let mut hashes = Vec::with_capacity(lock.packages.len());
    for (i, p) in lock.packages.iter().enumerate() {
        hashes.push(match plan_of.get(&i) {
            Some(pl) => pl.key,
            None => p.store_hash.ok_or_else(|| MountPlanError::NotStored {
                package: p.name.clone(),
            })?,
        });
    }
    // Bytecode only for the stored packages; a planned one's is compiled once it is stored, a
    // lazy one's is the remote's.
    let stored: Vec<(usize, ContentHash)> = (0..hashes.len())
        .filter(|i| !plan_of.contains_key(i) && !lazy_of.contains_key(i))
        .map(|i| (i, hashes[i]))
        .collect();
    let mut bytecode = vec![None; hashes.len()];
    for p in &lazy {
        bytecode[p.index] = p.bytecode.as_ref().map(|(pack, _)| *pack);
    }
    if let Some(tag) = tag {
        for &(i, h) in &stored {
            bytecode[i] = bytecode_pack(store, &h, tag);
        }
    } else {
        // Nothing can be compiled: serve what there is (with a warning per missing pack).
        let only: Vec<ContentHash> = stored.iter().map(|&(_, h)| h).collect();
        for (&(i, _), (pack, _)) in stored.iter().zip(existing_packs(store, interp, &only)) {
            bytecode[i] = pack;
        }
    }
    let packages = prepared_packages(&lock, hashes, bytecode);
    let missing = match can_compile {
        true => packages.iter().filter(|p| p.bytecode.is_none()).count(),
        false => 0,
    };
    let project = project_hash(
        &DplReader::from_bytes(lock_bytes.as_slice()).map_err(invalid)?,
        &interp.tag(),
    )?;
    if (!planned.is_empty() || missing > 0) && !lazy.is_empty() {
        // The server completes this tree from stored objects: the lazy ones are fetched now.
        super::remote::fetch_all(store, &lazy)?;
        lazy.clear();
    }
    let mut unread: Unread<'_> = planned
        .iter()
        .map(|p| (p.key, (&p.layout, p.launchers.as_slice())))
        .collect();
    for p in &lazy {
        let o = &p.object;
        unread.insert(o.hash, (&o.layout, o.launchers.as_slice()));
        if let Some((pack, Some(index))) = &p.bytecode {
            unread.insert(*pack, (&index.layout, &[]));
        }
    }
    let remote_pairs = lazy
        .iter()
        .filter_map(|p| Some((p.object.hash, p.bytecode.as_ref()?.0)))
        .collect();
    if !planned.is_empty() || missing > 0 {
        let set = match project {
            Some(project) if planned.is_empty() => project.to_string(),
            _ => format!("planned {}", blake3::hash(&lock_bytes).to_hex()),
        };
        let (first, lock_copy) = first_tree_files(&trees, &tree_key(&set, venv, interp));
        build_tree(&packages, &unread, store, interp, venv, &first)?;
        // The server works from its own copy: the project's lock may be another set's by then.
        crate::atomic::replace(&lock_copy, &lock_bytes)
            .map_err(MountPlanError::io("write", &lock_copy))?;
        let lock_dir = sources.lock_dir.to_path_buf();
        let after = AfterMounting {
            lock: lock_copy,
            python: interp.base_executable().to_path_buf(),
            project_lock: (!planned.is_empty()).then(|| ProjectLock {
                path: dpl_path.to_path_buf(),
                left: blake3::hash(project_bytes).to_hex().to_string(),
            }),
            find_links: sources.find_links.to_vec(),
            lock_dir,
        };
        return Ok(MountPlan {
            built: Some(BuiltTree {
                path: first.clone(),
                packages: packages.len(),
                stored_now: stats.misses,
            }),
            tree: first,
            later: Some(StoreLater {
                after,
                planned: planned.len(),
                missing,
            }),
            warnings,
            remote_pairs,
        });
    }
    let project = project.ok_or_else(|| MountPlanError::NotStored {
        package: "(some package)".to_string(),
    })?;
    let key = tree_key(&project.to_string(), venv, interp);
    let path = trees.join(format!("{key}.dxtree"));
    build_tree(&packages, &unread, store, interp, venv, &path)?;
    // What a server stopped mid-compile may have left for this venv.
    let (first, lock_copy) = first_tree_files(&trees, &key);
    for stale in [first, lock_copy] {
        let _ = fs_err::remove_file(stale);
    }
    Ok(MountPlan {
        built: Some(BuiltTree {
            path: path.clone(),
            packages: packages.len(),
            stored_now: stats.misses,
        }),
        tree: path,
        later: None,
        warnings,
        remote_pairs,
    })
}

/// The first tree of a venv whose bytecode is compiled after mounting, and the server's copy of
/// its lock.
fn first_tree_files(trees: &Path, key: &str) -> (PathBuf, PathBuf) {
    let file = |ext| trees.join(format!("{key}.first.{ext}"));
    (file("dxtree"), file("dpl"))
}

/// The server's half of a first tree: finishes `batch` (the bytecode packs `lock` lacks for
/// `interp`, compiling since the packages were stored; `None` when none can be made) and builds
/// the complete tree (the one a later mount of the same set maps). Returns it mapped.
pub fn complete_tree(
    lock: &Lock,
    cache: &Cache,
    store: &PackageStore,
    interp: &Interpreter,
    venv: &Path,
    batch: Option<BytecodeBatch<'_>>,
) -> Result<MappedTree, MountPlanError> {
    let bytes = lock.dpl_bytes()?;
    let dpl = DplReader::from_bytes(bytes.as_slice()).map_err(|source| MountPlanError::Lock {
        path: PathBuf::from("(the server's lock)"),
        source,
    })?;
    let not_stored = |package: &str| MountPlanError::NotStored {
        package: package.to_string(),
    };
    let project = project_hash(&dpl, &interp.tag())?.ok_or_else(|| not_stored("(some package)"))?;
    let hashes = lock
        .packages
        .iter()
        .map(|p| p.store_hash.ok_or_else(|| not_stored(&p.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let packs = finish_bytecode(batch, true, store, interp, &hashes, None)?;
    let packs = packs.into_iter().map(|(pack, _)| pack).collect();
    let packages = prepared_packages(lock, hashes, packs);
    let path = cache.trees_dir().join(format!(
        "{}.dxtree",
        tree_key(&project.to_string(), venv, interp)
    ));
    build_tree(&packages, &HashMap::new(), store, interp, venv, &path)?;
    // The mount at `venv` now serves this tree, not its first one (another key): its root
    // must say so, or `cache prune` would find the mount live and its objects unreached.
    crate::cache::roots::record_mount(&cache.roots_dir(), venv, &path);
    Ok(open_tree(&path)?)
}

/// Packs the tree lays out without reading their objects (packages stored after mounting,
/// objects fetched on first read): each one's layout and launchers.
type Unread<'a> = HashMap<ContentHash, (&'a PackageLayout, &'a [(String, Vec<u8>)])>;

/// The packages of `packages` that are not `lazy` made available as
/// [`ensure_stored_or_planned`] does (the lazy ones are the remote's already).
fn stored_or_planned(
    packages: &mut [LockedPackage],
    lazy: &[LazyPackage],
    store: &PackageStore,
    sources: &WheelSources<'_>,
    known: Vec<PlannedPackage>,
) -> Result<(FetchStats, Vec<PlannedPackage>), MountPlanError> {
    if lazy.is_empty() {
        return Ok(ensure_stored_or_planned(
            packages,
            store,
            sources,
            &NoReporter,
            known,
        )?);
    }
    let skip: std::collections::HashSet<usize> = lazy.iter().map(|p| p.index).collect();
    let rest_index: Vec<usize> = (0..packages.len()).filter(|i| !skip.contains(i)).collect();
    let mut rest: Vec<LockedPackage> = rest_index.iter().map(|&i| packages[i].clone()).collect();
    let (stats, mut planned) =
        ensure_stored_or_planned(&mut rest, store, sources, &NoReporter, known)?;
    for (p, &i) in rest.into_iter().zip(&rest_index) {
        packages[i].store_hash = p.store_hash;
    }
    for p in &mut planned {
        p.index = rest_index[p.index];
    }
    Ok((stats, planned))
}

/// Writes the tree of `packages` (and their bytecode packs) for a venv at `venv` to `path`;
/// `unread` gives the layouts and launchers of packs not read from the store.
fn build_tree(
    packages: &[PreparedPackage],
    unread: &Unread<'_>,
    store: &PackageStore,
    interp: &Interpreter,
    venv: &Path,
    path: &Path,
) -> Result<(), MountPlanError> {
    let mut launchers = Vec::with_capacity(packages.len());
    for p in packages {
        launchers.push(match unread.get(&p.hash) {
            Some((_, launchers)) => launchers.to_vec(),
            None => store.get(&p.hash)?.launchers()?,
        });
    }
    let mut spec = tree_spec(packages, launchers, &VenvShape::of(interp));
    for (rel, text) in venv_text_files(interp, venv, &VenvOptions::default()) {
        spec.files.push(SyntheticFile {
            path: rel,
            bytes: text.into_bytes(),
            mode: 0o644,
        });
    }
    spec.symlinks.insert(
        0,
        (
            "bin/python".into(),
            interp.base_executable().to_string_lossy().into_owned(),
        ),
    );
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(MountPlanError::io("create", dir))?;
    let layouts = unread
        .iter()
        .map(|(key, (layout, _))| (*key, *layout))
        .collect();
    write_tree(path, &spec.build_with(store, &layouts)?)?;
    Ok(())
}

/// The tree of a venv shaped as `shape` serving `packages` (each with its bytecode pack) and
/// their `launchers` (one list per package): packs placed where `shape` puts them, launchers in
/// its bin directory, the interpreter links beside them and `lib64` (the caller adds the venv's
/// text files and `bin/python` itself).
pub fn tree_spec(
    packages: &[PreparedPackage],
    launchers: Vec<Vec<(String, Vec<u8>)>>,
    shape: &VenvShape,
) -> TreeSpec {
    let bin = shape.bin_dir();
    let mut spec = TreeSpec {
        packs: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
    };
    for (p, launchers) in packages.iter().zip(launchers) {
        spec.packs
            .push((p.hash, PackPlacement::venv(shape, &p.name)));
        if let Some(pack) = p.bytecode {
            spec.packs
                .push((pack, PackPlacement::site_packages_only(shape)));
        }
        for (name, bytes) in launchers {
            spec.files.push(SyntheticFile {
                path: format!("{bin}/{name}"),
                bytes,
                mode: 0o755,
            });
        }
    }
    for name in shape.python_links() {
        spec.symlinks
            .push((format!("{bin}/{name}"), "python".into()));
    }
    spec.symlinks.push(("lib64".into(), "lib".into()));
    spec
}

/// The cache key of a tree: the set, where it is served (pyvenv.cfg and activate name it) and
/// the interpreter it links to.
fn tree_key(project: &str, venv: &Path, interp: &Interpreter) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"dx-py tree v1\0");
    h.update(project.as_bytes());
    h.update(b"\0");
    h.update(venv.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(interp.base_executable().as_os_str().as_encoded_bytes());
    h.finalize().to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
    use crate::python::PythonVersion;
    use crate::tree::{NodeKind, Tree};

    /// A free-threaded 3.13t venv gets its packages, bytecode and interpreter links where
    /// `python3.13t -m venv` puts them: under `lib/python3.13t/`, not `lib/python3.13/`.
    #[test]
    fn a_free_threaded_shape_puts_packages_under_lib_python3_13t() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
        let mut w = DxpkgWriter::new("demo", "1", "demo-1.dist-info");
        w.add(
            Scheme::SitePackages,
            "demo/__init__.py",
            EntryKind::File,
            0o644,
            b"X = 1\n".to_vec(),
        );
        let hash = store.store(&w.finish().unwrap()).unwrap();
        let packages = [PreparedPackage {
            name: "demo".into(),
            version: "1".into(),
            hash,
            wheel_sha256: [0; 32],
            bytecode: None,
        }];
        let version = PythonVersion {
            major: 3,
            minor: 13,
            patch: 0,
        };
        let shape = VenvShape::new(version, true);
        let launchers = vec![vec![("demo".to_string(), b"#!python\n".to_vec())]];
        let spec = tree_spec(&packages, launchers, &shape);
        let tree = Tree::new(spec.build(&store).unwrap()).unwrap();
        let site = shape.site_packages();
        if !cfg!(windows) {
            assert_eq!(site, "lib/python3.13t/site-packages");
        }
        let found = |path: String| tree.resolve(&path).unwrap().map(|n| n.kind);
        assert_eq!(
            found(format!("{site}/demo/__init__.py")),
            Some(NodeKind::File)
        );
        let bin = shape.bin_dir();
        assert_eq!(found(format!("{bin}/python3.13t")), Some(NodeKind::Symlink));
        assert_eq!(found(format!("{bin}/demo")), Some(NodeKind::File));
        assert_eq!(found("lib/python3.13".to_string()), None);
    }
}
