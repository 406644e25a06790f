//! The `.dxtree` of a locked set for one venv path and interpreter, built once and cached in
//! `{cache}/mounts/trees/`; a later mount of the same set maps the cached file. When the store
//! lacks bytecode for the set, a first tree without it is mounted and the server compiles the
//! bytecode afterwards ([`complete_bytecode`]).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::{DplReader, Lock};
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    BytecodeBatch, NoReporter, PlannedPackage, PreparedPackage, WheelSources, bytecode_pack,
    ensure_stored_or_planned, existing_packs, project_hash,
};
use dx_py_core::plural::count;
use dx_py_core::python::{Interpreter, VenvOptions, venv_text_files};
use dx_py_core::store::PackageStore;
use dx_py_fs_linux::tree::{
    MappedTree, PackPlacement, SyntheticFile, TreeSpec, open_tree, write_tree,
};

use super::mount::{MountArgs, absolute};
use super::mount_after::AfterMounting;
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// What a mount serves.
pub(crate) enum MountTree {
    /// A tree with everything, bytecode included.
    Complete(PathBuf),
    /// A first tree the server completes after mounting: it stores the packages laid out from
    /// their wheels (their reads wait until then), compiling each as it is stored along with
    /// the bytecode packs the store lacks, and adds the `__pycache__` directories once all are
    /// there ([`complete_bytecode`]).
    Later {
        /// The tree to mount now.
        first: PathBuf,
        /// What the server does.
        later: AfterMounting,
        /// Packages to store after mounting.
        planned: usize,
        /// Packages without bytecode yet (the planned ones included).
        missing: usize,
    },
}

/// Returns the tree serving `args.venv` with the lock's packages, building it if needed. The
/// lock is made (`-r`) first. Neither the conversion of local wheels the store lacks nor their
/// bytecode is waited for (when the store can take them): the mount is served from the
/// packages' layouts at once and the server stores and compiles them.
pub(crate) fn tree_for_lock(
    args: &MountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<MountTree> {
    let interp = settings.interpreter(args.python.as_deref())?;
    // Locking and fetching store packages: held shared, like install, so that `cache clean`
    // waits for them.
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    settings.sweep_after_crashes();
    let store = settings.store();
    // Local wheels are laid out while locking and stored by the server (when it can store).
    let plans = std::sync::Mutex::new(Vec::new());
    let dpl_path = super::install::resolve_lock(
        args.requirements.as_deref(),
        args.lock.as_deref(),
        &args.sources,
        settings,
        &interp,
        super::lock::WhileLocking {
            after_store: None,
            planned: store.is_writable().then_some(&plans),
        },
        printer,
    )?;
    // Read once: everything after this works from these bytes (the file may be rewritten by
    // another `lock` or `mount -r` in the same directory meanwhile).
    let read = std::fs::read(&dpl_path)
        .with_context(|| format!("Cannot read `{}`", dpl_path.display()))?;
    let dpl = DplReader::from_bytes(read.as_slice())
        .with_context(|| format!("Invalid lock `{}`", dpl_path.display()))?;
    let venv = dx_py_fs_linux::mounts::absolute(&args.venv)?;
    let trees = settings.trees_dir();
    if let Some(project) = project_hash(&dpl, &interp.tag())? {
        let path = trees.join(format!(
            "{}.dxtree",
            tree_key(&project.to_string(), &venv, &interp)
        ));
        if path.is_file() {
            // A tree is a cache of what the lock and the store say: one damaged on disk is
            // built again rather than served (a flipped name would serve a wrong directory).
            // Its checksum is one blake3 pass over a file of O(inodes) bytes.
            match open_tree(&path).map(|tree| tree.verify()) {
                Ok(Ok(())) => return Ok(MountTree::Complete(path)),
                Ok(Err(e)) => printer.warn(format_args!(
                    "The cached tree `{}` is damaged ({e}); rebuilding it",
                    path.display()
                )),
                Err(e) => printer.warn(format_args!("{e}; rebuilding it")),
            }
        }
    }
    let client = settings::sources(&args.sources, None, &interp, settings, printer)
        .ok()
        .map(|s| settings::client(settings, s))
        .transpose()?;
    let find_links: Vec<PathBuf> = args.sources.find_links.iter().map(PathBuf::from).collect();
    let lock_dir = absolute(&dpl_path)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let sources = WheelSources {
        client: client.as_ref(),
        find_links: &find_links,
        lock_dir: &lock_dir,
    };
    let mut lock = dpl.to_lock()?;
    drop(dpl);
    let known = plans.into_inner().unwrap_or_else(|e| e.into_inner());
    let before: Vec<_> = lock.packages.iter().map(|p| p.store_hash).collect();
    let (stats, planned) =
        ensure_stored_or_planned(&mut lock.packages, &store, &sources, &NoReporter, known)?;
    let lock_bytes = lock.dpl_bytes()?;
    // The project's lock as this command leaves it: the server adds the store objects of the
    // packages it stores only if the file is still this.
    let mut project_bytes = &read;
    if lock.packages.iter().map(|p| p.store_hash).ne(before) {
        match dx_py_core::atomic::replace(&dpl_path, &lock_bytes) {
            Ok(()) => project_bytes = &lock_bytes,
            Err(e) => printer.warn(format_args!("could not update {}: {e}", dpl_path.display())),
        }
    }
    let planned_by_key: HashMap<ContentHash, &PlannedPackage> =
        planned.iter().map(|p| (p.key, p)).collect();
    let plan_of: HashMap<usize, &PlannedPackage> = planned.iter().map(|p| (p.index, p)).collect();
    let mut packages: Vec<PreparedPackage> = Vec::with_capacity(lock.packages.len());
    for (i, p) in lock.packages.iter().enumerate() {
        let hash = match plan_of.get(&i) {
            Some(pl) => pl.key,
            None => p
                .store_hash
                .context("A locked package was neither stored nor planned")?,
        };
        packages.push(PreparedPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            hash,
            wheel_sha256: p.wheel.sha256,
            bytecode: None,
        });
    }
    let stored: Vec<(usize, ContentHash)> = packages
        .iter()
        .enumerate()
        .filter(|(i, _)| !plan_of.contains_key(i))
        .map(|(i, p)| (i, p.hash))
        .collect();
    let can_compile = interp.info().cache_tag.is_some() && store.is_writable();
    if can_compile {
        let tag = interp.info().cache_tag.as_deref().unwrap_or_default();
        for &(i, h) in &stored {
            packages[i].bytecode = bytecode_pack(&store, &h, tag);
        }
    } else {
        // Nothing can be compiled: serve what there is (with a warning per missing pack).
        let hashes: Vec<ContentHash> = stored.iter().map(|&(_, h)| h).collect();
        for (&(i, _), (pack, _)) in stored.iter().zip(existing_packs(&store, &interp, &hashes)) {
            packages[i].bytecode = pack;
        }
    }
    let missing = match can_compile {
        true => packages.iter().filter(|p| p.bytecode.is_none()).count(),
        false => 0,
    };
    let project = project_hash(
        &DplReader::from_bytes(lock_bytes.as_slice())?,
        &interp.tag(),
    )?;
    if !planned.is_empty() || missing > 0 {
        let set = match project {
            Some(project) if planned.is_empty() => project.to_string(),
            _ => format!("planned {}", blake3::hash(&lock_bytes).to_hex()),
        };
        let (first, lock_copy) = first_tree_files(&trees, &tree_key(&set, &venv, &interp));
        build_tree(&packages, &planned_by_key, &store, &interp, &venv, &first)?;
        // The server works from its own copy: `./dx-py.dpl` may be another set's by then.
        dx_py_core::atomic::replace(&lock_copy, &lock_bytes)
            .with_context(|| format!("Cannot write `{}`", lock_copy.display()))?;
        printer.verbose(format_args!(
            "Built {} ({}, {} stored now, {} after mounting; bytecode for {missing} compiled after mounting)",
            first.display(),
            count(packages.len(), "package"),
            stats.misses,
            planned.len(),
        ));
        let later = AfterMounting {
            lock: lock_copy,
            python: interp.base_executable().to_path_buf(),
            project_lock: match planned.is_empty() {
                true => None,
                false => Some((
                    absolute(&dpl_path)?,
                    blake3::hash(project_bytes).to_hex().to_string(),
                )),
            },
            find_links: find_links
                .iter()
                .map(|d| absolute(d))
                .collect::<Result<_>>()?,
            lock_dir,
        };
        return Ok(MountTree::Later {
            first,
            later,
            planned: planned.len(),
            missing,
        });
    }
    let project = project.context("The lock still lacks store hashes")?;
    let key = tree_key(&project.to_string(), &venv, &interp);
    let path = trees.join(format!("{key}.dxtree"));
    build_tree(&packages, &HashMap::new(), &store, &interp, &venv, &path)?;
    // What a server stopped mid-compile may have left for this venv.
    let (first, lock_copy) = first_tree_files(&trees, &key);
    for stale in [first, lock_copy] {
        let _ = std::fs::remove_file(stale);
    }
    printer.verbose(format_args!(
        "Built {} ({}, {} stored now)",
        path.display(),
        count(packages.len(), "package"),
        stats.misses,
    ));
    Ok(MountTree::Complete(path))
}

/// The first tree of a venv whose bytecode is compiled after mounting, and the server's copy of
/// its lock.
fn first_tree_files(trees: &Path, key: &str) -> (PathBuf, PathBuf) {
    let file = |ext| trees.join(format!("{key}.first.{ext}"));
    (file("dxtree"), file("dpl"))
}

/// The server's half of [`MountTree::Later`]: finishes `batch` (the bytecode packs `lock`
/// lacks for `interp`, compiling since the packages were stored; `None` when none can be made)
/// and builds the complete tree (the one a later mount of the same set maps). Returns it mapped
/// (before the cache lock is let go).
pub(crate) fn complete_bytecode(
    lock: &Lock,
    settings: &Settings,
    store: &PackageStore,
    interp: &Interpreter,
    venv: &Path,
    batch: Option<BytecodeBatch<'_>>,
) -> Result<MappedTree> {
    let bytes = lock.dpl_bytes()?;
    let project = project_hash(&DplReader::from_bytes(bytes.as_slice())?, &interp.tag())?
        .context("The lock lacks store hashes")?;
    let mut packages = Vec::new();
    for p in lock.packages.iter().cloned() {
        packages.push(PreparedPackage {
            hash: p.store_hash.context("The lock lacks store hashes")?,
            wheel_sha256: p.wheel.sha256,
            name: p.name,
            version: p.version,
            bytecode: None,
        });
    }
    let hashes: Vec<ContentHash> = packages.iter().map(|p| p.hash).collect();
    let packs = match batch {
        Some(batch) => batch.finish_for(&hashes, None)?,
        None => existing_packs(store, interp, &hashes),
    };
    for (p, (pack, _)) in packages.iter_mut().zip(packs) {
        p.bytecode = pack;
    }
    let trees = settings.trees_dir();
    let path = trees.join(format!(
        "{}.dxtree",
        tree_key(&project.to_string(), venv, interp)
    ));
    build_tree(&packages, &HashMap::new(), store, interp, venv, &path)?;
    Ok(open_tree(&path)?)
}

/// Writes the tree of `packages` (and their bytecode packs) for a venv at `venv` to `path`.
fn build_tree(
    packages: &[PreparedPackage],
    planned: &HashMap<ContentHash, &PlannedPackage>,
    store: &PackageStore,
    interp: &Interpreter,
    venv: &Path,
    path: &Path,
) -> Result<()> {
    let v = interp.version();
    let pyver = format!("{}.{}", v.major, v.minor);
    let mut spec = TreeSpec {
        packs: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
    };
    for p in packages {
        spec.packs
            .push((p.hash, PackPlacement::venv(&pyver, &p.name)));
        if let Some(pack) = p.bytecode {
            let site_packages = PackPlacement {
                site_packages: Some(format!("lib/python{pyver}/site-packages")),
                scripts: None,
                headers: None,
                data: None,
            };
            spec.packs.push((pack, site_packages));
        }
        let launchers = match planned.get(&p.hash) {
            Some(planned) => planned.launchers.clone(),
            None => store.get(&p.hash)?.launchers()?,
        };
        for (name, bytes) in launchers {
            spec.files.push(SyntheticFile {
                path: format!("bin/{name}"),
                bytes,
                mode: 0o755,
            });
        }
    }
    for (rel, text) in venv_text_files(interp, venv, &VenvOptions::default()) {
        spec.files.push(SyntheticFile {
            path: rel,
            bytes: text.into_bytes(),
            mode: 0o644,
        });
    }
    spec.symlinks.push((
        "bin/python".into(),
        interp.base_executable().to_string_lossy().into_owned(),
    ));
    spec.symlinks
        .push((format!("bin/python{}", v.major), "python".into()));
    spec.symlinks
        .push((format!("bin/python{pyver}"), "python".into()));
    spec.symlinks.push(("lib64".into(), "lib".into()));
    let dir = path.parent().context("A tree path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("Cannot create `{}`", dir.display()))?;
    let layouts = planned.iter().map(|(key, p)| (*key, &p.layout)).collect();
    write_tree(path, &spec.build_with(store, &layouts)?)?;
    Ok(())
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
