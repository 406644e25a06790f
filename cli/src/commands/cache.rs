//! `dx-py cache clean | stats | dir`.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use dx_py_core::cache::Kind;
use dx_py_core::cache::clean::{self, CleanOptions};
use dx_py_core::cache::prune::{self, PruneOptions, Why};
use dx_py_core::cache::roots::Root;
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::plural::count_as;
use dx_py_core::store::PackageStore;

use crate::cli::{CacheCommand, PruneArgs};
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) fn run(cmd: &CacheCommand, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Dir => {
            printer.out(settings.cache_dir.display())?;
        }
        CacheCommand::Stats => {
            let store = PackageStore::open(&settings.store_dir);
            let objects = store.objects()?;
            let object_bytes: u64 = objects
                .iter()
                .filter_map(|h| std::fs::metadata(store.get_path(h)).ok())
                .map(|m| m.len())
                .sum();
            let cache = settings.cache();
            // A read-only store's unpacked copies live in the cache: both count.
            let unpacked_bytes =
                dir_stats(&cache.store_unpacked_dir()).1 + dir_stats(&cache.own_unpacked_dir()).1;
            printer.out(format_args!("cache:    {}", settings.cache_dir.display()))?;
            printer.out(format_args!(
                "objects:  {} ({})",
                objects.len(),
                human(object_bytes)
            ))?;
            printer.out(format_args!("unpacked: {}", human(unpacked_bytes)))?;
            // Every other directory, as the cache lists them (so that a new one cannot be
            // missed here).
            for (kind, dir) in cache.kinds() {
                match kind {
                    Kind::Store | Kind::Unpacked => {}
                    Kind::Layouts => {
                        let (layouts, bytes) = dir_stats(&dir);
                        printer.out(format_args!("layouts:  {layouts} ({})", human(bytes)))?;
                    }
                    _ => printer.out(format_args!(
                        "{:<9} {}",
                        format!("{kind}:"),
                        human(dir_stats(&dir).1)
                    ))?,
                }
            }
            let temps: Vec<_> = settings
                .temp_dirs()
                .iter()
                .flat_map(|d| dx_py_core::temp::scan(d))
                .collect();
            let stale = temps.iter().filter(|t| t.stale).count();
            printer.out(format_args!(
                "temp:     {} ({}; {} of running processes, {stale} left by interrupted ones)",
                temps.len(),
                human(temps.iter().map(|t| t.bytes).sum()),
                temps.len() - stale,
            ))?;
            // An estimate without the lock: an install running meanwhile may change it.
            let would = prune::prune(
                &cache,
                PruneOptions {
                    dry_run: true,
                    max_size: None,
                },
                &is_mounted,
            )?;
            printer.out(format_args!(
                "prune would free {} ({} unreachable)",
                human(would.freed()),
                count_as(would.removed.len(), "entry", "entries"),
            ))?;
        }
        CacheCommand::Prune(args) => run_prune(args, settings, printer)?,
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
        for d in damage {
            printer.warn(format_args!(
                "unpacked copy of {hash}: {d:?}{}",
                if repair { "; mended" } else { "" }
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

fn run_prune(args: &PruneArgs, settings: &Settings, printer: &Printer) -> Result<()> {
    let mut lock = CacheLock::open(&settings.cache_dir)?;
    let (_shared, _exclusive);
    // Exclusive: installs, locks and mount servers storing packages hold it shared, so what
    // they are writing is never pruned under them. A dry run changes nothing.
    if args.dry_run {
        _shared = lock.shared()?;
    } else {
        _exclusive = lock.exclusive()?;
        dx_py_core::temp::sweep_cache(&settings.cache_dir, &settings.temp_dirs());
    }
    let opts = PruneOptions {
        dry_run: args.dry_run,
        max_size: args.max_size,
    };
    let report = prune::prune(&settings.cache(), opts, &is_mounted)?;
    for (file, e) in &report.corrupt {
        printer.warn(format_args!(
            "{}; treating `{}` as a dead root",
            error_chain(e),
            file.display()
        ));
    }
    if let Some(store) = &report.store_left {
        printer.warn(format_args!(
            "The store `{}` is read-only or shared (`--store`): prune leaves its objects alone; prune the cache that owns it",
            store.display()
        ));
    }
    let verb = if args.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    for r in &report.removed {
        let why = match r.why {
            Why::Unreached => "unreachable",
            Why::Evicted => "evicted",
        };
        printer.out(format_args!(
            "{verb} {} ({why}, {})",
            r.item,
            human(r.bytes)
        ))?;
    }
    for root in &report.stranded {
        printer.warn(format_args!(
            "{} lost what it used to `--max-size`; run `dx-py install` there to restore it",
            root_line(root)
        ));
    }
    if report.still_over > 0 {
        printer.warn(format_args!(
            "The cache is still {} over `--max-size`: the rest is used by live mounts",
            human(report.still_over)
        ));
    }
    printer.info(format_args!(
        "{verb} {} ({}); {} live, {} dead; cache {} -> {}",
        count_as(report.removed.len(), "entry", "entries"),
        human(report.freed()),
        count_as(report.live.len(), "root", "roots"),
        count_as(report.dead.len() + report.corrupt.len(), "root", "roots"),
        human(report.size_before),
        human(report.size_after),
    ));
    Ok(())
}

/// An error with its sources, for a warning line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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

/// Entries directly under `dir` and the bytes of distinct inodes below it (hardlinks count once).
fn dir_stats(dir: &Path) -> (usize, u64) {
    let top = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| !e.file_name().to_string_lossy().starts_with(".tmp"))
                .count()
        })
        .unwrap_or(0);
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            // Temporaries are counted on their own line.
            if e.file_name().to_string_lossy().starts_with(".tmp") {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                #[cfg(unix)]
                let key = {
                    use std::os::unix::fs::MetadataExt;
                    (meta.dev(), meta.ino())
                };
                #[cfg(not(unix))]
                let key = (0u64, bytes);
                if seen.insert(key) {
                    bytes += meta.len();
                }
            }
        }
    }
    (top, bytes)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
