//! What an install did and how long each phase took, and the hooks a front end uses to show
//! progress.
use std::time::{Duration, Instant};

use pep508_rs::PackageName;

use crate::store::LinkMode;

/// Progress callbacks; the CLI implements them with progress bars. All methods default to no-ops.
pub trait Reporter: Send + Sync {
    /// A wheel download starts (`size` when the index gave one).
    fn on_download_start(&self, _name: &str, _size: Option<u64>) {}
    /// A wheel download finished.
    fn on_download_done(&self, _name: &str, _bytes: u64) {}
    /// A package was converted into the store.
    fn on_stored(&self, _name: &str) {}
    /// The resolver asks for the files of `name` for the first time.
    fn on_resolving(&self, _name: &PackageName) {}
    /// A phase of the work ended after `took` (wall time: work done in parallel is one phase).
    fn on_phase(&self, _phase: &'static str, _took: Duration) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}

/// The outcome of one install, for `-v` output and tests.
#[derive(Debug, Default, Clone)]
pub struct InstallReport {
    /// True when the venv was served by an existing layout.
    pub layout_hit: bool,
    /// Packages already in the store.
    pub store_hits: usize,
    /// Packages converted into the store during this install.
    pub store_misses: usize,
    /// Wheels downloaded from an index.
    pub downloads: usize,
    /// Bytecode packs compiled during this install.
    pub compiled: usize,
    /// How the layout's files are linked, when one was built.
    pub link_mode: Option<LinkMode>,
    /// Packages in the installed set.
    pub packages: usize,
    /// Whether the venv had to be created.
    pub venv_created: bool,
    /// Time per phase, in order.
    pub phases: Vec<(&'static str, Duration)>,
    /// Packages added to and removed from the venv, sorted by name.
    pub changes: Vec<super::PackageChange>,
    /// Notes worth showing the user (e.g. a layout that was repaired).
    pub notes: Vec<String>,
}

/// Times consecutive phases.
#[derive(Debug)]
pub(crate) struct PhaseTimer {
    last: Instant,
}

impl PhaseTimer {
    pub(crate) fn start() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    /// Records the time since the previous mark as `phase`.
    pub(crate) fn mark(&mut self, report: &mut InstallReport, phase: &'static str) {
        let now = Instant::now();
        report.phases.push((phase, now - self.last));
        self.last = now;
    }

    /// Starts the next phase now: the time since the previous mark was recorded elsewhere
    /// (by a callee's own timer), and counting it again would count it twice.
    pub(crate) fn restart(&mut self) {
        self.last = Instant::now();
    }

    /// The time since the previous mark, reported to `reporter` as `phase`.
    pub(crate) fn report(&mut self, reporter: &dyn Reporter, phase: &'static str) {
        let now = Instant::now();
        reporter.on_phase(phase, now - self.last);
        self.last = now;
    }
}
