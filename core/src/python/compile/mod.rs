//! Compiling Python sources to unchecked-hash `.pyc` files (PEP 552) with a given interpreter,
//! without the sources being on disk.
//!
//! A venv served read-only (FUSE mount, shared layout) cannot get `__pycache__` written by
//! Python at import time, so the bytecode is made at install time. Unchecked-hash pycs are
//! the kind that stays valid there: their header carries a hash of the source instead of its
//! mtime (which a mount or a hardlinked tree does not preserve), and Python does not re-read the
//! source to check it.
//!
//! One layer per file:
//! - [`worker`]: one interpreter process (`-I -S -B`: no `site`, no environment) and the framing
//!   of its stdin and stdout;
//! - [`session`]: a queue of sources that become known over time, drained by up to one worker per
//!   core, largest source first;
//! - [`batch`]: compiling a known set of sources (or a package tree) at once, and writing pycs;
//! - [`pyc`]: where a source's pyc goes (`importlib.util.cache_from_source`), and which
//!   interpreters can make unchecked-hash pycs;
//! - [`plan`]: which files of a package get a pyc.
//!
//! (Not to be confused with `crate::install::bytecode`, which keeps compiled packages in the
//! store and decides when to compile.)
use std::path::PathBuf;

mod batch;
mod plan;
mod pyc;
mod session;
#[cfg(test)]
mod tests;
mod worker;

pub use batch::{
    compile_dir, compile_each, compile_sources, compile_sources_with, default_jobs, write_pycs,
};
pub use plan::compile_plan;
pub use pyc::Pyc;
pub use session::{CompileSession, SessionSource};
pub use worker::{AnswerError, Answers};

/// Compilation that could not run.
#[derive(Debug, thiserror::Error)]
pub enum BytecodeError {
    /// The interpreter predates unchecked-hash pycs.
    #[error("`{}` is Python {version}: unchecked-hash bytecode needs Python 3.7 or newer", path.display())]
    Unsupported {
        /// The interpreter.
        path: PathBuf,
        /// Its version.
        version: String,
    },
    /// The interpreter does not cache bytecode (`sys.implementation.cache_tag` is `None`).
    #[error("`{}` has no bytecode cache tag, so it reads no `.pyc` files", path.display())]
    NoCacheTag {
        /// The interpreter.
        path: PathBuf,
    },
    /// The worker process could not be started.
    #[error("Failed to start `{}` to compile bytecode", path.display())]
    Spawn {
        /// The interpreter.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
    /// The worker stopped before answering every source.
    #[error("Compiling bytecode with `{}` failed ({status}): {stderr}", path.display())]
    WorkerFailed {
        /// The interpreter.
        path: PathBuf,
        /// How the worker exited.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The worker's answer does not follow the framing.
    #[error("Bytecode worker `{}` answered garbage: {source}", path.display())]
    BadOutput {
        /// The interpreter.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: AnswerError,
    },
    /// A source or its name is longer than the framing allows (4 GiB).
    #[error("Source `{name}` is too large to compile: {len} bytes")]
    TooLarge {
        /// The source's path.
        name: String,
        /// Its length.
        len: usize,
    },
    /// A file of the tree could not be read or a pyc written.
    #[error("Failed to access `{}` while compiling bytecode", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
}
