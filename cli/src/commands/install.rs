//! `dx-py install [-r REQS | --lock FILE] [--venv PATH]`: make a venv hold exactly a lock.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::{DplFileError, DplReader};
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    InstallReport, LazyBytecodeBatch, SyncContext, SyncOptions, inputs_hash, sync_venv, try_warm,
    unpack_when_stored,
};
use dx_py_core::layout::{LayoutCache, LinkMode};
use dx_py_core::plural::{count, count_as};
use dx_py_core::python::Interpreter;
use dx_py_core::requirements::Requirements;

use super::lock::{DPL, PYLOCK, WhileLocking, lock_and_write};
use crate::cli::{InstallArgs, LinkModeArg, SourceArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

pub(crate) fn run(args: &InstallArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let start = Instant::now();
    let settings = &settings.with_store(args.store.as_deref());
    let venv_python = args.venv.join("bin").join("python");
    let request = match &args.python {
        Some(p) => Some(p.clone()),
        None if venv_python.exists() => Some(venv_python.to_string_lossy().into_owned()),
        None => None,
    };
    let interp = settings.interpreter(request.as_deref())?;
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    settings.sweep_after_crashes();

    // A lock made now hands each package on as it is stored: its tree is unpacked and its
    // sources compiled while later wheels are still being converted.
    let store = settings.store();
    let batch = LazyBytecodeBatch::new(&store, &interp);
    let unpack = unpack_when_stored(&store);
    let stored = |hash: &ContentHash| {
        if !args.no_compile_bytecode {
            batch.add(hash);
        }
        unpack(hash);
    };
    let dpl_path = resolve_lock(
        args.requirements.as_deref(),
        args.lock.as_deref(),
        &args.sources,
        settings,
        &interp,
        WhileLocking {
            after_store: Some(&stored),
            planned: None,
        },
        printer,
    )?;
    let compiled_while_locking = batch.finish(Some(&unpack))?.len();
    let dpl = DplReader::open(&dpl_path)?;
    // Both paths below read every entry (each checked on its first read); reading them here
    // first makes a damaged one an error that names the lock file.
    if let Some(Err(source)) = dpl.entries().find(Result::is_err) {
        return Err(DplFileError::Invalid {
            path: dpl_path,
            source,
        }
        .into());
    }
    let mut layouts = LayoutCache::open(&settings.layouts_dir(), &store)?;
    layouts.record_roots_in(settings.cache().roots_dir());
    layouts.set_link_mode(match args.link_mode {
        LinkModeArg::Auto | LinkModeArg::Hardlink => LinkMode::Hardlink,
        LinkModeArg::Symlink => LinkMode::Symlink,
        LinkModeArg::Copy => LinkMode::Copy,
    });

    if let Some(report) = try_warm(&dpl, &interp, &args.venv, &layouts)? {
        print_report(printer, &report, &args.venv, start);
        return Ok(ExitCode::SUCCESS);
    }
    let version = interp.version();
    if dx_py_core::layout::venv_layout(&args.venv, (version.major as u8, version.minor as u8))
        .is_some()
    {
        printer.info(
            "The venv's layout is missing or damaged (was the cache cleaned?); rebuilding it",
        );
    }

    let sources = settings::sources(&args.sources, None, &interp, settings, printer);
    let client = match sources {
        Ok(s) => Some(settings::client(settings, s)?),
        Err(e) => {
            tracing::debug!("no package index configured: {e}");
            None
        }
    };
    let find_links: Vec<PathBuf> = args.sources.find_links.iter().map(PathBuf::from).collect();
    let lock_dir = dpl_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let reporter = crate::reporter::BarReporter::new(printer, "Installing");
    let ctx = SyncContext {
        interp: &interp,
        venv: &args.venv,
        store: &store,
        layouts: &layouts,
        client: client.as_ref(),
        find_links: &find_links,
        lock_dir: &lock_dir,
        options: SyncOptions {
            compile_bytecode: !args.no_compile_bytecode,
        },
        reporter: &reporter,
    };
    let (mut report, updated) = sync_venv(&dpl, &ctx)?;
    report.compiled += compiled_while_locking;
    drop(dpl);
    if let Some(lock) = updated {
        // Record the store hashes so the next install of this lock takes the warm path.
        if let Err(e) = lock.write_dpl(&dpl_path) {
            printer.warn(format_args!("could not update {}: {e}", dpl_path.display()));
        }
    }
    print_report(printer, &report, &args.venv, start);
    Ok(ExitCode::SUCCESS)
}

/// Which DPL to install: fresh for `-r`, else `--lock`, else `./dx-py.dpl` or `./pylock.toml`.
pub(crate) fn resolve_lock(
    requirements: Option<&Path>,
    lock: Option<&Path>,
    sources: &SourceArgs,
    settings: &Settings,
    interp: &Interpreter,
    also: WhileLocking<'_>,
    printer: &Printer,
) -> Result<PathBuf> {
    if let Some(reqs_path) = requirements {
        let reqs = Requirements::from_file(reqs_path)?;
        let dpl_path = PathBuf::from(DPL);
        let inputs = inputs_hash(&reqs, interp);
        if DplReader::open(&dpl_path).is_ok_and(|d| d.is_fresh(&inputs)) {
            return Ok(dpl_path);
        }
        printer.verbose("Locking (no fresh dx-py.dpl for these requirements)");
        lock_and_write(
            &reqs,
            interp,
            sources,
            settings,
            Path::new("."),
            also,
            printer,
        )?;
        return Ok(dpl_path);
    }
    let given = lock.map(Path::to_path_buf);
    let (dpl_path, pylock_path) = match &given {
        Some(p) if p.extension().is_some_and(|e| e == "dpl") => return Ok(p.clone()),
        Some(p) => (p.with_file_name(DPL), p.clone()),
        None => (PathBuf::from(DPL), PathBuf::from(PYLOCK)),
    };
    let dpl_time = modified(&dpl_path);
    let pylock_time = modified(&pylock_path);
    // A DPL made from a multi-environment pylock.toml holds one interpreter's choice: another
    // interpreter chooses again.
    let same_interpreter =
        || DplReader::open(&dpl_path).is_ok_and(|d| d.environment() == interp.tag());
    match (dpl_time, pylock_time) {
        (Some(d), Some(p)) if d >= p && same_interpreter() => Ok(dpl_path),
        (_, Some(_)) => {
            printer.verbose(format_args!(
                "Rebuilding {} from {}",
                dpl_path.display(),
                pylock_path.display()
            ));
            let lock = dx_py_core::install::read_pylock_for(&pylock_path, interp)?;
            lock.write_dpl(&dpl_path)
                .with_context(|| format!("Failed to write `{}`", dpl_path.display()))?;
            Ok(dpl_path)
        }
        (Some(_), None) if given.is_none() => Ok(dpl_path),
        _ => bail!(
            "No lock found: `{}` does not exist; pass `-r requirements.txt` or run `dx-py lock -r requirements.txt`",
            pylock_path.display()
        ),
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn print_report(printer: &Printer, report: &InstallReport, venv: &Path, start: Instant) {
    let elapsed = start.elapsed();
    let how = if report.layout_hit {
        "layout hit"
    } else {
        "layout built"
    };
    printer.info(format_args!(
        "Installed {} into {} in {:.1} ms ({how})",
        count(report.packages, "package"),
        venv.display(),
        elapsed.as_secs_f64() * 1e3
    ));
    printer.verbose(format_args!(
        "  layout: {}; store: {}, {}; downloads: {}; bytecode packs compiled: {}{}",
        if report.layout_hit { "hit" } else { "miss" },
        count(report.store_hits, "hit"),
        count_as(report.store_misses, "miss", "misses"),
        report.downloads,
        report.compiled,
        report
            .link_mode
            .map(|m| format!("; link mode: {m}"))
            .unwrap_or_default()
    ));
    for (phase, took) in &report.phases {
        printer.verbose(format_args!(
            "  {phase:<9} {:>8.2} ms",
            took.as_secs_f64() * 1e3
        ));
    }
    for change in &report.changes {
        let sign = if change.added { '+' } else { '-' };
        printer.info(format_args!(" {sign} {}=={}", change.name, change.version));
    }
    for note in &report.notes {
        printer.info(note);
    }
}
