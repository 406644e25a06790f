//! `dx-py install [-r REQS | --lock FILE] [--venv PATH]`: make a venv hold exactly a lock.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::{DplFileError, DplReader};
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    InstallReport, LazyBytecodeBatch, SyncContext, SyncOptions, selected_lock_at, sync_venv,
    try_warm, unpack_when_stored,
};
use dx_py_core::layout::{LayoutCache, LinkMode};
use dx_py_core::plural::{count, count_as};
use dx_py_core::python::Interpreter;

use super::lock::WhileLocking;
use super::which_lock::{LockChoice, choose_lock};
use crate::cli::{InstallArgs, LinkModeArg, ResolveArgs, SourceArgs};
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
    printer.timeline().mark("python");

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
    let choice = LockChoice {
        requirements: args.requirements.as_deref(),
        lock: args.lock.as_deref(),
        sources: &args.sources,
        resolve: &args.resolve,
    };
    let dpl_path = choose_lock(
        &choice,
        settings,
        &interp,
        WhileLocking {
            after_store: Some(&stored),
            planned: None,
        },
        printer,
    )?;
    let compiled_while_locking = batch.finish(Some(&unpack))?.len();
    // What is left of compiling the packages stored while locking (it overlapped the lock).
    printer.timeline().mark("bytecode wait");
    let target = Target {
        venv: &args.venv,
        interp: &interp,
        link_mode: args.link_mode,
        compile_bytecode: !args.no_compile_bytecode,
        sources: &args.sources,
        resolve: &args.resolve,
    };
    install_dpl(
        &dpl_path,
        &target,
        compiled_while_locking,
        settings,
        printer,
        start,
    )
}

/// Where and how a lock is installed.
pub(crate) struct Target<'a> {
    /// The venv (created when missing).
    pub(crate) venv: &'a Path,
    /// Its interpreter.
    pub(crate) interp: &'a Interpreter,
    /// How layout files link to the store.
    pub(crate) link_mode: LinkModeArg,
    /// Compile `.pyc` files.
    pub(crate) compile_bytecode: bool,
    /// Where missing wheels come from.
    pub(crate) sources: &'a SourceArgs,
    /// How packages locked as sdists are built (`--no-build` refuses them).
    pub(crate) resolve: &'a ResolveArgs,
}

/// Makes `target.venv` hold the lock at `dpl_path`: the warm path when its layout is cached,
/// else the cold path; then prints what was done. The caller holds the cache lock.
pub(crate) fn install_dpl(
    dpl_path: &Path,
    target: &Target<'_>,
    compiled_while_locking: usize,
    settings: &Settings,
    printer: &Printer,
    start: Instant,
) -> Result<ExitCode> {
    let Target {
        venv,
        interp,
        link_mode,
        compile_bytecode,
        sources,
        resolve,
    } = *target;
    let store = settings.store_with_remote()?;
    let user_lock = dpl_path;
    // Relative wheel paths are relative to the lock the user named, not to a selection from it.
    let lock_dir = dpl_path.parent().map(Path::to_path_buf).unwrap_or_default();
    // A universal lock (DPL version 2): the lock of this interpreter chosen from it, kept in
    // the cache (a lookup after the first time); one interpreter's lock stays as it is.
    let dpl_path = selected_lock_at(dpl_path, interp, &settings.cache_dir)?;
    printer.timeline().mark("select");
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
    layouts.set_link_mode(match link_mode {
        LinkModeArg::Auto | LinkModeArg::Hardlink => LinkMode::Hardlink,
        LinkModeArg::Symlink => LinkMode::Symlink,
        LinkModeArg::Copy => LinkMode::Copy,
    });

    printer.timeline().mark("open lock");
    if let Some(report) = try_warm(&dpl, interp, venv, &layouts)? {
        record_phases(printer, &report);
        printer.timeline().mark("install (rest)");
        print_report(printer, &report, venv, start);
        return Ok(ExitCode::SUCCESS);
    }
    // The same set as the venv's, yet no warm hit: its layout went (a cache clean, a repair).
    let version = interp.version();
    let same_set = dx_py_core::install::project_hash(&dpl, &interp.tag())
        .ok()
        .flatten()
        .zip(dx_py_core::layout::venv_layout(
            venv,
            (version.major as u8, version.minor as u8),
        ))
        .is_some_and(|(hash, used)| hash.to_hex() == used.project_hash);
    if same_set {
        printer.info(
            "The venv's layout is missing or damaged (was the cache cleaned?); rebuilding it",
        );
    }

    let client = match settings::sources(sources, None, interp, settings, printer) {
        Ok(s) => Some(settings::client(settings, s, sources)?),
        Err(e) => {
            tracing::debug!("no package index configured: {e}");
            None
        }
    };
    let find_links: Vec<PathBuf> = sources.find_links.iter().map(PathBuf::from).collect();
    // Packages locked as sdists are built from them (a built-wheel cache hit builds nothing);
    // their build requirements come from the index.
    let cache = settings.cache();
    let builder = match (&client, resolve.no_build) {
        (Some(client), false) => Some(super::builder(
            &cache,
            interp,
            client,
            super::resolve::build_options(resolve)?,
        )),
        _ => None,
    };
    let reporter = crate::reporter::BarReporter::new(printer, "Installing");
    let ctx = SyncContext {
        interp,
        venv,
        store: &store,
        layouts: &layouts,
        client: client.as_ref(),
        find_links: &find_links,
        lock_dir: &lock_dir,
        builder: builder.as_ref(),
        options: SyncOptions { compile_bytecode },
        reporter: &reporter,
    };
    let (mut report, updated) = sync_venv(&dpl, &ctx)?;
    if let Some(builder) = &builder {
        super::resolve::report_builds(&builder.stats(), printer);
    }
    record_phases(printer, &report);
    printer.timeline().mark("install (rest)");
    if let Some(client) = &client {
        printer.timeline().add_client(client.stats());
    }
    report.compiled += compiled_while_locking;
    drop(dpl);
    if let Some(lock) = updated {
        // Record the store hashes so the next install of this lock takes the warm path.
        if let Err(e) = lock.write_dpl(&dpl_path) {
            printer.warn(format_args!("could not update {}: {e}", dpl_path.display()));
        }
        printer.timeline().mark("write lock");
    }
    // The lock is a root of the cache as well as the venv: `cache prune` keeps the objects it
    // names while it is unchanged, even once the venv is gone. (A warm install, above, found
    // its layout: the venv's root already reaches what the lock names.)
    dx_py_core::cache::roots::record_lock(&cache.roots_dir(), user_lock, &store);
    settings.report_remote(printer);
    print_report(printer, &report, venv, start);
    Ok(ExitCode::SUCCESS)
}

/// The install's own phases, as parts of the interval the timeline marks next.
fn record_phases(printer: &Printer, report: &InstallReport) {
    for (phase, took) in &report.phases {
        printer.timeline().within(phase, *took);
    }
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
    // Downloads are counted by the index clients, in the timings below.
    printer.verbose(format_args!(
        "  layout: {}; store: {}, {}; bytecode packs compiled: {}{}",
        if report.layout_hit { "hit" } else { "miss" },
        count(report.store_hits, "hit"),
        count_as(report.store_misses, "miss", "misses"),
        report.compiled,
        report
            .link_mode
            .map(|m| format!("; link mode: {m}"))
            .unwrap_or_default()
    ));
    for change in &report.changes {
        let sign = if change.added { '+' } else { '-' };
        printer.info(format_args!(" {sign} {}=={}", change.name, change.version));
    }
    for note in &report.notes {
        printer.info(note);
    }
    printer.timings();
}
