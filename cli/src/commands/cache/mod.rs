//! `dx-py cache clean | stats | prune | verify | dir`.
mod prune;
mod stats;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use dx_py_core::cache::clean::{self, CleanOptions};
use dx_py_core::cache::roots::Root;
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::plural::count_as;

use crate::cli::CacheCommand;
use crate::printer::Printer;
use crate::settings::Settings;
use stats::human;

pub(crate) fn run(cmd: &CacheCommand, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Dir => {
            printer.out(settings.cache_dir.display())?;
        }
        CacheCommand::Stats => stats::run(settings, printer)?,
        CacheCommand::Prune(args) => prune::run(args, settings, printer)?,
        CacheCommand::Verify { repair } => return verify(settings, *repair, printer),
        CacheCommand::Clean(args) => {
            let mut lock = CacheLock::open(&settings.cache_dir)?;
            let _guard = lock.exclusive()?;
            // First, while the directories are still there: a store kept by this clean keeps
            // no leftovers either.
            let swept = dx_py_core::temp::sweep_cache(&settings.cache_dir, &settings.temp_dirs());
            if swept.count > 0 {
                printer.info(format_args!(
                    "Removed {} temporaries ({}) left by interrupted processes",
                    swept.count,
                    human(swept.bytes)
                ));
            }
            let opts = CleanOptions {
                store: args.what.store,
                all: args.what.all,
                force: args.force,
            };
            let report = clean::clean(&settings.cache(), opts, &is_mounted)?;
            for (kind, dir) in &report.cleaned {
                printer.info(format_args!("Cleaned {kind} in {}", dir.display()));
            }
            if !report.kept_for.is_empty() {
                printer.info(format_args!(
                    "Kept what {} in use uses (`--force` removes it too):",
                    count_as(
                        report.kept_for.len(),
                        "live venv or mount is",
                        "live venvs and mounts are"
                    )
                ));
                for root in &report.kept_for {
                    printer.info(format_args!("  {}", root_line(root)));
                }
            }
            if !report.stranded.is_empty() {
                printer.warn(format_args!(
                    "{} used what was removed; run `dx-py install` in a venv (or mount again) to restore it:",
                    count_as(report.stranded.len(), "live venv or mount", "live venvs and mounts")
                ));
                for root in &report.stranded {
                    printer.warn(format_args!("  {}", root_line(root)));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(settings: &Settings, repair: bool, printer: &Printer) -> Result<ExitCode> {
    let mut lock = CacheLock::open(&settings.cache_dir)?;
    let (_shared, _exclusive);
    if repair {
        _exclusive = lock.exclusive()?;
    } else {
        _shared = lock.shared()?;
    }
    let report = dx_py_core::cache::verify::verify(&settings.cache(), repair)?;
    for hash in &report.bad_objects {
        printer.warn(format_args!(
            "object {hash} is damaged{}",
            if repair {
                "; removed (the next install fetches it again)"
            } else {
                ""
            }
        ));
    }
    for (hash, damage) in &report.bad_unpacked {
        // A thin object's copy is its data: removed with it, not mended.
        let gone = report.bad_objects.contains(hash);
        for d in damage {
            printer.warn(format_args!(
                "unpacked copy of {hash}: {d:?}{}",
                match (repair, gone) {
                    (false, _) => "",
                    (true, false) => "; mended",
                    (true, true) => "; removed with its object",
                }
            ));
        }
    }
    for (hash, problems) in &report.bad_layouts {
        printer.warn(format_args!(
            "layout {hash}: {problems:?}{}",
            if repair { "; rebuilt" } else { "" }
        ));
    }
    for path in &report.bad_trees {
        printer.warn(format_args!(
            "mount tree {} fails its checksum{}",
            path.display(),
            if repair { "; removed" } else { "" }
        ));
    }
    printer.info(format_args!(
        "Checked {}, {}, {} and {}",
        dx_py_core::plural::count(report.objects, "object"),
        dx_py_core::plural::count_as(report.unpacked, "unpacked copy", "unpacked copies"),
        dx_py_core::plural::count(report.layouts, "layout"),
        dx_py_core::plural::count(report.trees, "mount tree"),
    ));
    if report.is_ok() {
        printer.info("Everything verified");
        Ok(ExitCode::SUCCESS)
    } else if repair {
        printer.info("Repaired what was damaged; `dx-py cache verify` checks again");
        Ok(ExitCode::SUCCESS)
    } else {
        printer.info("Damage found: `dx-py cache verify --repair` mends it from verified objects");
        Ok(ExitCode::from(1))
    }
}

fn root_line(root: &Root) -> String {
    format!("{:<5} {}", root.kind(), root.path.display())
}

/// A live dx-py mount at `path` (never on platforms without the Linux mount).
fn is_mounted(path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        dx_py_fs_linux::mounts::find_mount(path).is_ok_and(|m| m.is_some())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}
