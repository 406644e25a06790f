//! Progress bars for resolution, downloads and conversions, shown only on a terminal (see
//! `Printer`).
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dx_py_core::install::Reporter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pep508_rs::PackageName;

use crate::printer::Printer;
use crate::timeline::Timeline;

/// One bar: packages stored, with bytes downloaded in the message. Phases the library times
/// go to the printer's timeline.
pub(crate) struct BarReporter<'a> {
    bar: ProgressBar,
    bytes: AtomicU64,
    downloads: AtomicU64,
    timeline: &'a Timeline,
}

impl<'a> BarReporter<'a> {
    /// A hidden bar unless the printer allows progress output.
    pub(crate) fn new(printer: &'a Printer, what: &str) -> Self {
        let bar = if printer.show_progress() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} (packages stored: {pos}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        Self {
            bar,
            bytes: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            timeline: printer.timeline(),
        }
    }

    /// How many files were downloaded so far, and their bytes.
    pub(crate) fn downloaded(&self) -> (u64, u64) {
        (
            self.downloads.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Reporter for BarReporter<'_> {
    fn on_download_start(&self, name: &str, _size: Option<u64>) {
        self.bar.set_message(format!("(downloading {name})"));
        self.bar.tick();
    }

    fn on_download_done(&self, _name: &str, bytes: u64) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar
            .set_message(format!("({:.1} MiB downloaded)", total as f64 / 1048576.0));
    }

    fn on_stored(&self, _name: &str) {
        self.bar.inc(1);
    }

    fn on_phase(&self, phase: &'static str, took: Duration) {
        self.timeline.within(phase, took);
    }
}

impl Drop for BarReporter<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A spinner with a changing message, for work whose size is not known (resolution): it names
/// the packages the resolver asks for. Phases the library times go to the printer's timeline.
pub(crate) struct Spinner<'a> {
    bar: ProgressBar,
    /// Packages asked for so far.
    seen: std::sync::Mutex<std::collections::BTreeSet<PackageName>>,
    timeline: &'a Timeline,
}

impl<'a> Spinner<'a> {
    /// A hidden spinner unless the printer allows progress output.
    pub(crate) fn new(printer: &'a Printer, what: &str) -> Self {
        let bar = if printer.show_progress() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(80));
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} ({msg})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        Self {
            bar,
            seen: std::sync::Mutex::default(),
            timeline: printer.timeline(),
        }
    }
}

impl Reporter for Spinner<'_> {
    fn on_resolving(&self, name: &PackageName) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.insert(name.clone()) {
            self.bar
                .set_message(format!("{} packages, at {name}", seen.len()));
        }
    }

    fn on_phase(&self, phase: &'static str, took: Duration) {
        self.timeline.within(phase, took);
    }
}

impl Drop for Spinner<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
