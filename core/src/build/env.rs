//! Build environments: a set of build requirements resolved by dx-py's own resolver for the
//! build interpreter and installed into a fresh venv through the layout cache.
//!
//! The resolved lock of a set is kept at `{cache}/builds/envs/{inputs hash}.dpl`, the hash being
//! the one `dx-py lock` records (requirements, interpreter, index), so a set seen before is not
//! resolved again: its lock is read and its layout, already cached, becomes the venv's
//! site-packages with one symlink. The environment is bytecode-compiled like any install (the
//! packs are shared). Build requirements must be wheels: a build environment does
//! not build (no recursion through sdists of build tools).
use std::path::Path;

use pep508_rs::Requirement;

use super::BuildCache;
use crate::cache::Cache;
use crate::dpl::{DplReader, LockMeta};
use crate::index::IndexClient;
use crate::install::{
    InstallError, NoReporter, ResolveRequest, SyncContext, SyncOptions, resolve_and_lock,
    sync_venv, try_warm,
};
use crate::layout::LayoutCache;
use crate::python::Interpreter;

/// What making one environment cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnvOutcome {
    /// The requirements were resolved (no lock of this set was kept).
    pub resolved: bool,
    /// The venv got a cached layout (one symlink).
    pub layout_hit: bool,
}

/// What an environment is made from.
pub struct EnvContext<'a> {
    /// The cache (store, layouts).
    pub cache: &'a Cache,
    /// `{cache}/builds`.
    pub builds: &'a BuildCache,
    /// The build interpreter.
    pub interp: &'a Interpreter,
    /// Where build requirements come from.
    pub client: &'a IndexClient,
}

/// Makes `venv` (not existing yet, or a venv made by an earlier call) hold exactly `requires`
/// for `cx.interp`.
pub fn install_env(
    cx: &EnvContext<'_>,
    requires: &[Requirement],
    venv: &Path,
) -> Result<EnvOutcome, InstallError> {
    let mut outcome = EnvOutcome::default();
    let request = ResolveRequest {
        requirements: requires.to_vec(),
        ..ResolveRequest::default()
    };
    let target = cx.interp.target();
    let inputs = request.inputs_hash(&target, cx.client.sources());
    let envs = cx.builds.envs_dir();
    let dpl_path = envs.join(format!("{}.dpl", inputs.to_hex()));
    if !DplReader::open(&dpl_path).is_ok_and(|d| d.is_fresh(&inputs)) {
        let meta = LockMeta {
            inputs_hash: inputs,
            ..LockMeta::default()
        };
        let lock = resolve_and_lock(
            &request,
            &target,
            cx.client,
            meta,
            &crate::install::NoReporter,
            None,
        )?;
        fs_err::create_dir_all(&envs)?;
        lock.write_dpl(&dpl_path)?;
        outcome.resolved = true;
    }
    let dpl = DplReader::open(&dpl_path)?;
    let store = cx.cache.store();
    let layouts = LayoutCache::open(&cx.cache.layouts_dir(), &store)?;
    if try_warm(&dpl, cx.interp, venv, &layouts)?.is_some() {
        outcome.layout_hit = true;
        return Ok(outcome);
    }
    let sync = SyncContext {
        interp: cx.interp,
        venv,
        store: &store,
        layouts: &layouts,
        client: Some(cx.client),
        find_links: &[],
        lock_dir: &envs,
        // Build requirements are wheels: a build environment does not build.
        builder: None,
        // Compiled, through the store's bytecode packs as any install: once per package and
        // interpreter on this machine, shared by every environment (and venv) holding it. Each
        // hook process imports the backend again; with `.pyc` files a setuptools build's two
        // hooks took half the time (docs/design/build.md). Hooks run with `-B`: they never
        // write into the shared layout.
        options: SyncOptions {
            compile_bytecode: true,
        },
        reporter: &NoReporter,
    };
    let (_, updated) = sync_venv(&dpl, &sync)?;
    drop(dpl);
    if let Some(lock) = updated {
        // The store hashes make the next environment of this set the warm path.
        lock.write_dpl(&dpl_path)?;
    }
    Ok(outcome)
}
