//! `dx-py cache prune`: what no live root reaches, removed under the cache lock.
use anyhow::Result;
use dx_py_core::cache::prune::{self, PruneOptions, Why};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::plural::count_as;

use super::stats::human;
use super::{is_mounted, root_line};
use crate::cli::PruneArgs;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn run(args: &PruneArgs, settings: &Settings, printer: &Printer) -> Result<()> {
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
