//! `dx-py cache stats`: sizes by kind, temporaries, and what prune would free.
use std::path::Path;

use anyhow::Result;
use dx_py_core::cache::Kind;
use dx_py_core::cache::prune::{self, PruneOptions};
use dx_py_core::plural::count_as;
use dx_py_core::store::PackageStore;

use super::is_mounted;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn run(settings: &Settings, printer: &Printer) -> Result<()> {
    let store = PackageStore::open(&settings.store_dir);
    let objects = store.objects()?;
    let object_bytes: u64 = objects
        .iter()
        .filter_map(|h| std::fs::metadata(store.object_file(h)).ok())
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
    Ok(())
}

/// Entries directly under `dir` and the bytes of distinct inodes below it (hardlinks count once).
pub(super) fn dir_stats(dir: &Path) -> (usize, u64) {
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

pub(super) fn human(bytes: u64) -> String {
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
