//! The one owner of user-facing output: results to stdout, messages to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use crate::timeline::Timeline;

/// Writes results and messages, honouring `-q` and `-v`; keeps the command's timeline.
#[derive(Debug)]
pub(crate) struct Printer {
    verbose: u8,
    quiet: bool,
    timeline: Timeline,
}

impl Printer {
    /// A printer whose timeline starts now.
    pub(crate) fn new(verbose: u8, quiet: bool) -> Self {
        Self {
            verbose,
            quiet,
            timeline: Timeline::new(),
        }
    }

    /// Where the command's time went (printed by [`Self::timings`]).
    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// With `-v`: the timeline's phases and what the index clients did.
    pub(crate) fn timings(&self) {
        if self.verbose > 0 && !self.quiet {
            for line in self.timeline.lines() {
                eprintln!("{line}");
            }
        }
    }

    /// A result line on stdout (what scripts parse); errors such as a closed pipe are returned.
    pub(crate) fn out(&self, line: impl std::fmt::Display) -> std::io::Result<()> {
        writeln!(std::io::stdout().lock(), "{line}")
    }

    /// A status message on stderr, hidden by `-q`.
    pub(crate) fn info(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// A detail shown with `-v`.
    pub(crate) fn verbose(&self, line: impl std::fmt::Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{line}");
        }
    }

    /// A warning, always shown unless `-q`.
    pub(crate) fn warn(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("warning: {line}");
        }
    }

    /// An error and its causes.
    pub(crate) fn error(&self, err: &anyhow::Error) {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }

    /// True when progress bars make sense: stderr is a terminal and output is neither quiet nor verbose.
    pub(crate) fn show_progress(&self) -> bool {
        !self.quiet && self.verbose == 0 && std::io::stderr().is_terminal()
    }
}
