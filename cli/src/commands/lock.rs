//! `dx-py lock -r requirements.txt [-o DIR]`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::Lock;
use dx_py_core::install::{AfterStore, LockOptions, PlannedPackage, lock_requirements};
use dx_py_core::python::Interpreter;
use dx_py_core::requirements::Requirements;

use crate::cli::{LockArgs, SourceArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// File names of the two lock forms.
pub(crate) const PYLOCK: &str = "pylock.toml";
pub(crate) const DPL: &str = "dx-py.dpl";

pub(crate) fn run(args: &LockArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let interp = settings.interpreter(args.python.as_deref())?;
    let reqs = Requirements::from_file(&args.requirements)?;
    // Locking stores packages: held shared, like install, so `cache clean` waits for it.
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    settings.sweep_after_crashes();
    let dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let start = Instant::now();
    let lock = lock_and_write(
        &reqs,
        &interp,
        &args.sources,
        settings,
        &dir,
        WhileLocking::default(),
        printer,
    )?;
    printer.info(format_args!(
        "Locked {} in {} ms: {}, {}",
        dx_py_core::plural::count(lock.packages.len(), "package"),
        start.elapsed().as_millis(),
        dir.join(PYLOCK).display(),
        dir.join(DPL).display()
    ));
    Ok(ExitCode::SUCCESS)
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
    sources: &SourceArgs,
    settings: &Settings,
    dir: &Path,
    also: WhileLocking<'_>,
    printer: &Printer,
) -> Result<Lock> {
    let sources = settings::sources(sources, Some(reqs), interp, settings, printer)?;
    let client = settings::client(settings, sources)?;
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
    let lock = lock_requirements(reqs, &options)?;
    fs_create_dir_all(dir)?;
    lock.write_pylock(&dir.join(PYLOCK))?;
    lock.write_dpl(&dir.join(DPL))?;
    Ok(lock)
}

fn fs_create_dir_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("Failed to create `{}`", dir.display()))
}
