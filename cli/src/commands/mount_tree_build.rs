//! The `.dxtree` of a locked set for one venv path and interpreter, built once and cached in
//! `{cache}/mounts/trees/`; a later mount of the same set maps the cached file. When the store
//! lacks bytecode for the set, a first tree without it is mounted and the server compiles the
//! bytecode afterwards ([`complete_bytecode`]).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::DplReader;
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    InstallReport, NoReporter, PrepareOptions, PreparedPackage, WheelSources, bytecode_pack,
    ensure_bytecode_packs, existing_packs, prepare_packages, project_hash,
};
use dx_py_core::python::{Interpreter, VenvOptions, venv_text_files};
use dx_py_core::store::PackageStore;
use dx_py_fs_linux::tree::{MappedTree, PackPlacement, SyntheticFile, TreeSpec, open_tree};

use super::mount::{BytecodeLater, MountArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// What a mount serves.
pub(crate) enum MountTree {
    /// A tree with everything, bytecode included.
    Complete(PathBuf),
    /// A tree without the bytecode packs the lock still lacks: the server mounts it and then
    /// compiles them ([`complete_bytecode`]), adding the `__pycache__` directories as they come.
    BytecodeLater {
        /// The tree to mount now.
        first: PathBuf,
        /// What the server compiles.
        later: BytecodeLater,
        /// Packages without bytecode yet.
        missing: usize,
    },
}

/// Returns the tree serving `args.venv` with the lock's packages, building it if needed. The
/// lock is made (`-r`) and its packages stored first; bytecode the store lacks is not waited for
/// (when it can be made): the mount is served at once and the server compiles it.
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
    let store = settings.store();
    let dpl_path = super::install::resolve_lock(
        args.requirements.as_deref(),
        args.lock.as_deref(),
        &args.sources,
        settings,
        &interp,
        None,
        printer,
    )?;
    let dpl = DplReader::open(&dpl_path)?;
    let venv = dx_py_fs_linux::mounts::absolute(&args.venv)?;
    let trees = settings.cache_dir.join("mounts").join("trees");
    if let Some(project) = project_hash(&dpl, &interp.tag())? {
        let path = trees.join(format!(
            "{}.dxtree",
            tree_key(&project.to_string(), &venv, &interp)
        ));
        if path.is_file() {
            return Ok(MountTree::Complete(path));
        }
    }
    let client = settings::sources(&args.sources, None)
        .ok()
        .map(|s| settings::client(settings, s))
        .transpose()?;
    let find_links: Vec<PathBuf> = args.sources.find_links.iter().map(PathBuf::from).collect();
    let lock_dir = dpl_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let sources = WheelSources {
        client: client.as_ref(),
        find_links: &find_links,
        lock_dir: &lock_dir,
    };
    let mut report = InstallReport::default();
    let (mut packages, updated) = prepare_packages(
        &dpl,
        &interp,
        &store,
        &sources,
        PrepareOptions {
            compile: false,
            after_store: None,
        },
        &NoReporter,
        &mut report,
    )?;
    drop(dpl);
    if let Some(lock) = updated
        && let Err(e) = lock.write_dpl(&dpl_path)
    {
        printer.warn(format_args!("could not update {}: {e}", dpl_path.display()));
    }
    let hashes: Vec<ContentHash> = packages.iter().map(|p| p.hash).collect();
    let can_compile = interp.info().cache_tag.is_some() && store.is_writable();
    let packs = if can_compile {
        let tag = interp.info().cache_tag.as_deref().unwrap_or_default();
        hashes
            .iter()
            .map(|h| bytecode_pack(&store, h, tag))
            .collect()
    } else {
        // Nothing can be compiled: serve what there is (with a warning per missing pack).
        existing_packs(&store, &interp, &hashes)
            .into_iter()
            .map(|(pack, _)| pack)
            .collect::<Vec<_>>()
    };
    for (p, pack) in packages.iter_mut().zip(packs) {
        p.bytecode = pack;
    }
    let missing = packages.iter().filter(|p| p.bytecode.is_none()).count();
    let dpl = DplReader::open(&dpl_path)?;
    let project =
        project_hash(&dpl, &interp.tag())?.context("The lock still lacks store hashes")?;
    let key = tree_key(&project.to_string(), &venv, &interp);
    let (first, lock) = first_tree_files(&trees, &key);
    if can_compile && missing > 0 {
        build_tree(&packages, &store, &interp, &venv, &first)?;
        // The server reads the lock after mounting; `./dx-py.dpl` may be another set's by then.
        let bytes = std::fs::read(&dpl_path)
            .with_context(|| format!("Cannot read `{}`", dpl_path.display()))?;
        dx_py_core::atomic::replace(&lock, &bytes)
            .with_context(|| format!("Cannot write `{}`", lock.display()))?;
        printer.verbose(format_args!(
            "Built {} ({} packages, {} stored now; bytecode for {missing} compiled after mounting)",
            first.display(),
            packages.len(),
            report.store_misses,
        ));
        let later = BytecodeLater {
            lock,
            python: interp.base_executable().to_path_buf(),
        };
        return Ok(MountTree::BytecodeLater {
            first,
            later,
            missing,
        });
    }
    let path = trees.join(format!("{key}.dxtree"));
    build_tree(&packages, &store, &interp, &venv, &path)?;
    // What a server stopped mid-compile may have left for this venv.
    for stale in [first, lock] {
        let _ = std::fs::remove_file(stale);
    }
    printer.verbose(format_args!(
        "Built {} ({} packages, {} stored now)",
        path.display(),
        packages.len(),
        report.store_misses,
    ));
    Ok(MountTree::Complete(path))
}

/// The first tree of a venv whose bytecode is compiled after mounting, and the server's copy of
/// its lock.
fn first_tree_files(trees: &Path, key: &str) -> (PathBuf, PathBuf) {
    let file = |ext| trees.join(format!("{key}.first.{ext}"));
    (file("dxtree"), file("dpl"))
}

/// The server's half of [`MountTree::BytecodeLater`]: compiles the bytecode packs `lock` lacks
/// for `interp` and builds the complete tree (the one a later mount of the same set maps).
/// Returns it mapped (before the cache lock is let go).
pub(crate) fn complete_bytecode(
    lock: &Path,
    settings: &Settings,
    interp: &Interpreter,
    venv: &Path,
) -> Result<MappedTree> {
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    let store = settings.store();
    let dpl = DplReader::open(lock)?;
    let project = project_hash(&dpl, &interp.tag())?.context("The lock lacks store hashes")?;
    let mut packages = Vec::new();
    for p in dpl.to_lock()?.packages {
        packages.push(PreparedPackage {
            hash: p.store_hash.context("The lock lacks store hashes")?,
            name: p.name,
            version: p.version,
            bytecode: None,
        });
    }
    let hashes: Vec<ContentHash> = packages.iter().map(|p| p.hash).collect();
    let packs = ensure_bytecode_packs(&store, &hashes, interp, None)?;
    for (p, (pack, _)) in packages.iter_mut().zip(packs) {
        p.bytecode = pack;
    }
    let trees = settings.cache_dir.join("mounts").join("trees");
    let path = trees.join(format!(
        "{}.dxtree",
        tree_key(&project.to_string(), venv, interp)
    ));
    build_tree(&packages, &store, interp, venv, &path)?;
    Ok(open_tree(&path)?)
}

/// Writes the tree of `packages` (and their bytecode packs) for a venv at `venv` to `path`.
fn build_tree(
    packages: &[PreparedPackage],
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
        let mapped = store.get(&p.hash)?;
        for (name, bytes) in dx_py_core::scripts::launchers_for(mapped.reader()) {
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
    spec.build_to_file(store, path)?;
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
