//! The `.dxtree` of a locked set for one venv path and interpreter, built once and cached in
//! `{cache}/mounts/trees/`; a later mount of the same set maps the cached file.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::DplReader;
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    InstallReport, LazyBytecodeBatch, NoReporter, PrepareOptions, WheelSources, prepare_packages,
    project_hash,
};
use dx_py_core::python::{Interpreter, VenvOptions, venv_text_files};
use dx_py_fs_linux::tree::{PackPlacement, SyntheticFile, TreeSpec};

use super::mount::MountArgs;
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// Returns the tree file serving `args.venv` with the lock's packages, building it if needed.
pub(crate) fn tree_for_lock(
    args: &MountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<PathBuf> {
    let interp = settings.interpreter(args.python.as_deref())?;
    // Locking, fetching and compiling store packages: held shared, like install, so that
    // `cache clean` waits for them.
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    let store = settings.store();
    // A lock made now (`-r`) queues each package's bytecode as soon as it is stored, so Python
    // compiles while later wheels are converted.
    let batch = LazyBytecodeBatch::new(&store, &interp);
    let queue_bytecode = |hash: &ContentHash| batch.add(hash);
    let dpl_path = super::install::resolve_lock(
        args.requirements.as_deref(),
        args.lock.as_deref(),
        &args.sources,
        settings,
        &interp,
        Some(&queue_bytecode),
        printer,
    )?;
    let compiled_while_locking = batch.finish(None)?.len();
    let dpl = DplReader::open(&dpl_path)?;
    let venv = dx_py_fs_linux::mounts::absolute(&args.venv)?;
    let trees = settings.cache_dir.join("mounts").join("trees");
    if let Some(project) = project_hash(&dpl, &interp.tag())? {
        let path = trees.join(format!(
            "{}.dxtree",
            tree_key(&project.to_string(), &venv, &interp)
        ));
        if path.is_file() {
            return Ok(path);
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
    let mut report = InstallReport {
        compiled: compiled_while_locking,
        ..InstallReport::default()
    };
    let (packages, updated) = prepare_packages(
        &dpl,
        &interp,
        &store,
        &sources,
        PrepareOptions {
            compile: true,
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
    let dpl = DplReader::open(&dpl_path)?;
    let project =
        project_hash(&dpl, &interp.tag())?.context("The lock still lacks store hashes")?;
    let path = trees.join(format!(
        "{}.dxtree",
        tree_key(&project.to_string(), &venv, &interp)
    ));

    let v = interp.version();
    let pyver = format!("{}.{}", v.major, v.minor);
    let mut spec = TreeSpec {
        packs: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
    };
    for p in &packages {
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
    for (rel, text) in venv_text_files(&interp, &venv, &VenvOptions::default()) {
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
    std::fs::create_dir_all(&trees)
        .with_context(|| format!("Cannot create `{}`", trees.display()))?;
    spec.build_to_file(&store, &path)?;
    printer.verbose(format_args!(
        "Built {} ({} packages, {} stored now, {} bytecode packs compiled)",
        path.display(),
        packages.len(),
        report.store_misses,
        report.compiled
    ));
    Ok(path)
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
