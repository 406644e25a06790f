//! Locking by resolution, shared by `lock`, `install -r`, `sync`, `add`, `remove` and `run`:
//! what to resolve (requirements files or a project), whether the lock on disk already answers
//! it (then nothing is resolved and nothing is fetched), and writing the new lock.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dx_py_core::build::{BuildStats, Builder};
use dx_py_core::dpl::{DplReader, Lock, LockMeta};
use dx_py_core::install::resolve_and_lock;
use dx_py_core::project::Project;
use dx_py_core::python::{Interpreter, TargetVersion};
use dx_py_core::requirements::Requirements;

mod request;
mod universal;

pub(crate) use universal::lock_universal;

pub(crate) use request::build_options;
use request::{preferences, request};

use super::{DPL, PYLOCK};
use crate::cli::{ProjectArgs, ResolveArgs, SourceArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// What to resolve.
pub(crate) enum Inputs<'a> {
    /// Requirements files (their `-c` files included), each with its path.
    Files(&'a [(PathBuf, Requirements)]),
    /// A project, for a choice of extras and groups.
    Project(&'a Project, &'a ProjectArgs),
}

/// How the lock on disk is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Locked again when the inputs changed.
    Update,
    /// `--locked`: an out-of-date lock is an error.
    Locked,
    /// `--frozen`: the lock is used as it is.
    Frozen,
}

/// A lock ready in `dir`.
pub(crate) struct Ready {
    /// The DPL to install.
    pub(crate) dpl: PathBuf,
    /// The number of packages resolved, when a resolution ran.
    pub(crate) resolved: Option<usize>,
}

/// The options of a locking command.
#[derive(Clone)]
pub(crate) struct Flags<'a> {
    /// Index options.
    pub(crate) sources: &'a SourceArgs,
    /// Resolution options.
    pub(crate) resolve: &'a ResolveArgs,
    /// What to do with the lock on disk.
    pub(crate) freshness: Freshness,
    /// Another Python version to lock for, on this machine's platform.
    pub(crate) python_version: Option<TargetVersion>,
}

/// Makes `dir` hold a lock of the requirements `files` for `interp`: the one there when it was
/// made from the same inputs (no resolution, no network), else a new one. (A project's lock is
/// always universal: `lock_universal`.)
pub(crate) fn ensure_lock(
    files: &[(PathBuf, Requirements)],
    interp: &Interpreter,
    flags: Flags<'_>,
    settings: &Settings,
    dir: &Path,
    printer: &Printer,
) -> Result<Ready> {
    let Flags {
        sources,
        resolve,
        freshness,
        python_version,
    } = flags;
    let dpl_path = dir.join(DPL);
    if freshness == Freshness::Frozen {
        if !dpl_path.is_file() && !dir.join(PYLOCK).is_file() {
            bail!(
                "No lock in `{}` to use with `--frozen`: run `dx-py lock` first",
                dir.display()
            );
        }
        return Ok(Ready {
            dpl: dpl_path,
            resolved: None,
        });
    }
    let start = Instant::now();
    let inputs = Inputs::Files(files);
    let source_args = sources;
    let reqs_for_sources = files.first().map(|(_, r)| r);
    let sources = settings::sources(source_args, reqs_for_sources, interp, settings, printer)?;
    let request = request(&inputs, resolve)?;
    let target = match python_version {
        Some(version) => interp.target_for(version)?,
        None => interp.target(),
    };
    let inputs_hash = request.inputs_hash(&target, &sources);
    let upgrading = resolve.upgrade || !resolve.upgrade_package.is_empty();
    let fresh = !upgrading && DplReader::open(&dpl_path).is_ok_and(|d| d.is_fresh(&inputs_hash));
    printer.timeline().mark("inputs");
    if fresh {
        printer.verbose(format_args!(
            "The lock in `{}` is up to date ({:.1} ms)",
            dir.display(),
            start.elapsed().as_secs_f64() * 1e3
        ));
        return Ok(Ready {
            dpl: dpl_path,
            resolved: None,
        });
    }
    if freshness == Freshness::Locked {
        bail!(
            "The lock in `{}` is missing or out of date for `{}`, and `--locked` forbids locking again: run `dx-py lock`",
            dir.display(),
            inputs_source(&inputs)
        );
    }
    let mut request = request;
    request.preferences = preferences(dir);
    let client = settings::client(settings, sources, source_args)?;
    let meta = LockMeta {
        requires_python: request.requires_python.as_ref().map(ToString::to_string),
        inputs_hash,
        ..LockMeta::default()
    };
    let spinner = crate::reporter::Spinner::new(printer, "Resolving");
    // Only here: a resolution allocates tens of thousands of strings, where heaps that grow in
    // large steps pay; other commands (a mount forks a server) are slower with them.
    dx_py_core::sys::tune_allocator();
    printer.timeline().mark("index setup");
    let resolving = Instant::now();
    let cache = settings.cache();
    let builder = (!resolve.no_build)
        .then(|| build_options(resolve))
        .transpose()?
        .map(|options| crate::commands::builder(&cache, interp, &client, options));
    let mut lock = resolve_and_lock(&request, &target, &client, meta, &spinner, builder.as_ref())?;
    if let Inputs::Files(files) = &inputs {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create `{}`", dir.display()))?;
        let built = files.iter().flat_map(|(_, reqs)| reqs.built_sources());
        dx_py_core::install::name_local_sources(&mut lock, built, dir, &settings.store())?;
    }
    drop(spinner);
    if let Some(stats) = builder.as_ref().map(Builder::stats) {
        report_builds(&stats, printer);
    }
    let resolved_in = resolving.elapsed();
    printer.timeline().mark("resolution (rest)");
    printer.timeline().add_client(client.stats());
    write_lock(&lock, dir)?;
    printer.timeline().mark("write lock");
    printer.info(format_args!(
        "Resolved {} in {} ms",
        dx_py_core::plural::count(lock.packages.len(), "package"),
        start.elapsed().as_millis()
    ));
    printer.verbose(format_args!(
        "  for {} (Python {}); resolution {:.1} ms, reading the inputs and writing the lock {:.1} ms",
        lock.meta.environment,
        lock.meta.python_version,
        resolved_in.as_secs_f64() * 1e3,
        (start.elapsed() - resolved_in).as_secs_f64() * 1e3
    ));
    for p in &lock.packages {
        printer.verbose(format_args!(
            "  {}=={}  {}",
            p.name, p.version, p.wheel.filename
        ));
    }
    Ok(Ready {
        dpl: dpl_path,
        resolved: Some(lock.packages.len()),
    })
}

/// What building sdists cost, when anything was built or found built.
pub(crate) fn report_builds(stats: &BuildStats, printer: &Printer) {
    if stats.built > 0 {
        printer.info(format_args!(
            "Built {}",
            dx_py_core::plural::count(stats.built, "source distribution")
        ));
    }
    if stats.built + stats.prepared + stats.cached > 0 {
        printer.verbose(format_args!(
            "  builds: {} built, {} metadata prepared, {} from the cache; build environments: {} resolved, {} layout hits",
            stats.built, stats.prepared, stats.cached, stats.env_resolutions, stats.env_layout_hits
        ));
    }
}

/// Where the inputs come from, for messages.
pub(super) fn inputs_source(inputs: &Inputs<'_>) -> String {
    match inputs {
        Inputs::Files(files) => files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Inputs::Project(project, _) => project.path.display().to_string(),
    }
}

/// Writes `pylock.toml` and `dx-py.dpl` into `dir`.
pub(crate) fn write_lock(lock: &Lock, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("Failed to create `{}`", dir.display()))?;
    lock.write_pylock(&dir.join(PYLOCK))?;
    lock.write_dpl(&dir.join(DPL))?;
    Ok(())
}
