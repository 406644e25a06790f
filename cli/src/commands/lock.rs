//! `dx-py lock [-r REQS]… [-o DIR]`: a requirements file of pins is locked as pinned; anything
//! else (ranges, several files, constraints, a project) is resolved.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::Lock;
use dx_py_core::index::SelectError;
use dx_py_core::install::{
    AfterStore, InstallError, LockOptions, PlannedPackage, lock_requirements,
};
use dx_py_core::project::Project;
use dx_py_core::python::Interpreter;
use dx_py_core::requirements::Requirements;

use super::local_builds::LocalBuilds;
use super::resolve::{Flags, Freshness, Inputs, Ready, ensure_lock, lock_universal};
use super::{DPL, PYLOCK};
use crate::cli::{LockArgs, SourceArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

pub(crate) fn run(args: &LockArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    // Locking may store packages: held shared, like install, so `cache clean` waits for it.
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    settings.sweep_after_crashes();
    if args.requirements.is_empty() {
        let cwd = std::env::current_dir().context("Failed to read the current directory")?;
        let project = Project::discover(&cwd)?;
        let venv = project.root.join(super::project::VENV);
        let interp = super::project::venv_interpreter(args.python.as_deref(), &venv, settings)?;
        printer.timeline().mark("python");
        let dir = args
            .output_dir
            .clone()
            .unwrap_or_else(|| project.root.clone());
        return resolve_into(
            Inputs::Project(&project, &args.project),
            &interp,
            args,
            settings,
            &dir,
            printer,
        );
    }
    let interp = settings.interpreter(args.python.as_deref())?;
    printer.timeline().mark("python");
    let local = LocalBuilds {
        interp: &interp,
        resolve: &args.resolve,
        sources: &args.sources,
        settings,
        printer,
    };
    let files = args
        .requirements
        .iter()
        .map(|p| Ok((p.clone(), local.read_requirements(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    if let Some(reqs) = only_pins(&files, &args.resolve)
        .filter(|_| args.python_version.is_none() && !args.universal)
    {
        let start = Instant::now();
        let pinned = lock_and_write(
            reqs,
            &interp,
            &args.sources,
            settings,
            &dir,
            WhileLocking::default(),
            printer,
        );
        match pinned {
            Ok(lock) => {
                printer.info(format_args!(
                    "Locked {} in {} ms: {}, {}",
                    dx_py_core::plural::count(lock.packages.len(), "package"),
                    start.elapsed().as_millis(),
                    dir.join(PYLOCK).display(),
                    dir.join(DPL).display()
                ));
                record_lock_root(settings, &dir);
                printer.timings();
                return Ok(ExitCode::SUCCESS);
            }
            // A pin with only an sdist: the resolver's path builds it.
            Err(e) if !args.resolve.no_build && only_sdist(&e) => {
                printer.verbose("A pinned package has only a source distribution: resolving");
            }
            Err(e) => return Err(e),
        }
    }
    resolve_into(
        Inputs::Files(&files),
        &interp,
        args,
        settings,
        &dir,
        printer,
    )
}

/// Records the lock in `dir` as a root of the cache, so that `cache prune` keeps its objects
/// while the lock is unchanged.
fn record_lock_root(settings: &Settings, dir: &Path) {
    let cache = settings.cache();
    dx_py_core::cache::roots::record_lock(&cache.roots_dir(), &dir.join(DPL), &cache.store());
}

/// Resolves `inputs` into a lock in `dir` (nothing when the lock there is fresh).
fn resolve_into(
    inputs: Inputs<'_>,
    interp: &dx_py_core::python::Interpreter,
    args: &LockArgs,
    settings: &Settings,
    dir: &Path,
    printer: &Printer,
) -> Result<ExitCode> {
    let flags = Flags {
        sources: &args.sources,
        resolve: &args.resolve,
        freshness: Freshness::Update,
        python_version: args.python_version,
    };
    // A project's lock is shared by its developers and CI: it serves every environment.
    let files = match inputs {
        Inputs::Files(files) if !args.universal => files,
        _ => {
            if lock_universal(inputs, interp, flags, settings, dir, printer)?.is_none() {
                printer.info(format_args!(
                    "The lock in `{}` is up to date",
                    dir.display()
                ));
            }
            record_lock_root(settings, dir);
            printer.timings();
            return Ok(ExitCode::SUCCESS);
        }
    };
    let ready = ensure_lock(files, interp, flags, settings, dir, printer)?;
    record_lock_root(settings, dir);
    report_unchanged(&ready, dir, printer);
    printer.timings();
    Ok(ExitCode::SUCCESS)
}

/// The one requirements file, when every requirement in it is pinned with `==` and nothing asks
/// for more than its pins (constraints, overrides, upgrades): it is locked as pinned, each wheel
/// fetched and checked, with no resolution.
pub(crate) fn only_pins<'a>(
    files: &'a [(PathBuf, Requirements)],
    resolve: &crate::cli::ResolveArgs,
) -> Option<&'a Requirements> {
    let [(_, reqs)] = files else {
        return None;
    };
    let nothing_more = resolve.constraint.is_empty()
        && resolve.overrides.is_empty()
        && !resolve.upgrade
        && resolve.upgrade_package.is_empty()
        && !resolve.no_build_isolation
        && resolve.config_settings.is_empty()
        // The pinned path takes wheels: choosing between wheels and sdists is the resolver's.
        && resolve.no_binary.is_empty()
        && resolve.only_binary.is_empty();
    (nothing_more && reqs.pinned().is_ok()).then_some(reqs)
}

/// Whether locking pins failed only because a pin has no wheel, just an sdist.
pub(crate) fn only_sdist(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<InstallError>(),
        Some(InstallError::Select { source, .. })
            if matches!(**source, SelectError::OnlySdist { .. })
    )
}

fn report_unchanged(ready: &Ready, dir: &Path, printer: &Printer) {
    if ready.resolved.is_none() {
        printer.info(format_args!(
            "The lock in `{}` is up to date",
            dir.display()
        ));
    }
}

/// What locking does with the wheels it checks besides locking them.
#[derive(Clone, Copy, Default)]
pub(crate) struct WhileLocking<'a> {
    /// Runs on each package as soon as it is stored (an install unpacks it and queues its
    /// bytecode).
    pub(crate) after_store: Option<AfterStore<'a>>,
    /// Local wheels are laid out here instead of stored (a mount stores them after mounting).
    pub(crate) planned: Option<&'a Mutex<Vec<PlannedPackage>>>,
}

/// Locks `reqs` and writes `pylock.toml` and `dx-py.dpl` into `dir`.
pub(crate) fn lock_and_write(
    reqs: &Requirements,
    interp: &Interpreter,
    args: &SourceArgs,
    settings: &Settings,
    dir: &Path,
    also: WhileLocking<'_>,
    printer: &Printer,
) -> Result<Lock> {
    let sources = settings::sources(args, Some(reqs), interp, settings, printer)?;
    let client = settings::client(settings, sources, args)?;
    let store = settings.store();
    let reporter = crate::reporter::BarReporter::new(printer, "Locking");
    let options = LockOptions {
        interp,
        client: &client,
        store: &store,
        reporter: &reporter,
        after_store: also.after_store,
        planned: also.planned,
    };
    let start = Instant::now();
    printer.timeline().mark("inputs");
    let mut lock = lock_requirements(reqs, &options)?;
    if reqs.built_sources().next().is_some() {
        // Created first: local sources are named relative to the lock's directory.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create `{}`", dir.display()))?;
        dx_py_core::install::name_local_sources(&mut lock, reqs.built_sources(), dir, &store)?;
    }
    printer.timeline().mark("lock (rest)");
    printer.timeline().add_client(client.stats());
    let (downloads, bytes) = reporter.downloaded();
    printer.verbose(format_args!(
        "Locked {} as pinned in {:.1} ms: {downloads} downloaded ({:.1} MiB), each checked and stored",
        dx_py_core::plural::count(lock.packages.len(), "package"),
        start.elapsed().as_secs_f64() * 1e3,
        bytes as f64 / 1048576.0
    ));
    super::resolve::write_lock(&lock, dir)?;
    printer.timeline().mark("write lock");
    Ok(lock)
}
