//! `dx-py cache clean | stats | dir`.
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::store::PackageStore;

use crate::cli::CacheCommand;
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
            let (layouts, layout_bytes) = dir_stats(&settings.layouts_dir());
            let (_, unpacked_bytes) = dir_stats(&settings.store_dir.join("unpacked"));
            printer.out(format_args!("cache:    {}", settings.cache_dir.display()))?;
            printer.out(format_args!(
                "objects:  {} ({})",
                objects.len(),
                human(object_bytes)
            ))?;
            printer.out(format_args!("unpacked: {}", human(unpacked_bytes)))?;
            printer.out(format_args!(
                "layouts:  {layouts} ({})",
                human(layout_bytes)
            ))?;
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
        }
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
            let layouts = settings.layouts_dir();
            remove(&layouts)
                .with_context(|| format!("Failed to remove `{}`", layouts.display()))?;
            printer.info(format_args!("Removed layouts in {}", layouts.display()));
            // Mount trees are derived like layouts and name store objects: they go too.
            let trees = settings.trees_dir();
            remove(&trees).with_context(|| format!("Failed to remove `{}`", trees.display()))?;
            if args.store || args.all {
                let store = &settings.store_dir;
                remove(store).with_context(|| format!("Failed to remove `{}`", store.display()))?;
                printer.info(format_args!("Removed store in {}", store.display()));
            }
            if args.all {
                let dir = settings.cache_dir.join("interpreters");
                remove(&dir).with_context(|| format!("Failed to remove `{}`", dir.display()))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
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
