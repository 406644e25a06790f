//! The one owner of user-facing output: results to stdout, messages to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

/// Writes results and messages, honouring `-q` and `-v`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    verbose: u8,
    quiet: bool,
}

impl Printer {
    pub(crate) fn new(verbose: u8, quiet: bool) -> Self {
        Self { verbose, quiet }
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
