//! [`BuildError`]: why a source distribution could not be built or its metadata prepared.
use std::path::PathBuf;
use std::sync::Arc;

use super::UnpackError;

/// A build that failed, naming the package and what to look at.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The sdist could not be unpacked (a broken or malicious archive).
    #[error("Cannot build `{package}`")]
    Unpack {
        /// `name==version`.
        package: String,
        /// What was wrong with the archive.
        #[source]
        source: UnpackError,
    },
    /// `pyproject.toml`'s `[build-system]` is unusable.
    #[error("Cannot build `{package}`: invalid `[build-system]` in `{}`: {reason}", path.display())]
    BuildSystem {
        /// `name==version`.
        package: String,
        /// The `pyproject.toml`.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The build environment could not be resolved or installed.
    #[error("Cannot set up the build environment of `{package}` (requires {requires})")]
    Environment {
        /// `name==version`.
        package: String,
        /// The build requirements, joined.
        requires: String,
        /// Why.
        #[source]
        source: Box<crate::install::InstallError>,
    },
    /// The backend's hook failed: its last lines of output say why.
    #[error(
        "Building `{package}` failed: the backend's `{hook}` exited with {status}; its last \
         output (the whole log is `{}`):\n{tail}",
        log.display()
    )]
    Backend {
        /// `name==version`.
        package: String,
        /// The PEP 517 hook.
        hook: &'static str,
        /// How the process ended.
        status: String,
        /// The last lines the backend printed.
        tail: String,
        /// The whole output, kept.
        log: PathBuf,
    },
    /// The hook ran longer than allowed.
    #[error(
        "Building `{package}` timed out: the backend's `{hook}` ran longer than {seconds} s \
         (the log is `{}`); pass `--build-timeout SECS` (or set `DX_PY_BUILD_TIMEOUT`) to allow more",
        log.display()
    )]
    Timeout {
        /// `name==version`.
        package: String,
        /// The PEP 517 hook.
        hook: &'static str,
        /// The limit.
        seconds: u64,
        /// The output so far, kept.
        log: PathBuf,
    },
    /// The build backend is not installed where the hooks run.
    #[error(
        "Cannot build `{package}`: its build backend `{backend}` is not installed for `{}` \
         ({error}); without build isolation (`--no-build-isolation`) the backend must be \
         installed in the target environment first, else list it in `build-system.requires`",
        python.display()
    )]
    NoBackend {
        /// `name==version` (a tree's name).
        package: String,
        /// The `build-backend`.
        backend: String,
        /// The interpreter that ran the hook.
        python: PathBuf,
        /// Python's import error.
        error: String,
    },
    /// dx-py was interrupted (Ctrl-C, SIGTERM) while the hook ran; the backend was stopped.
    #[error("Building `{package}` was interrupted while the backend's `{hook}` ran")]
    Interrupted {
        /// `name==version`.
        package: String,
        /// The PEP 517 hook.
        hook: &'static str,
    },
    /// The build interpreter could not be started.
    #[error("Cannot run the build interpreter `{}`", python.display())]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The hook's answer is not what PEP 517 promises (no file, wrong name, bad metadata).
    #[error("Building `{package}`: the backend's `{hook}` gave an unusable answer: {reason}")]
    BadAnswer {
        /// `name==version`.
        package: String,
        /// The PEP 517 hook.
        hook: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The built wheel failed the checks every downloaded wheel passes.
    #[error("The wheel built from `{sdist}` is invalid")]
    Wheel {
        /// The sdist's file name.
        sdist: String,
        /// The check that failed.
        #[source]
        source: Box<crate::install::InstallError>,
    },
    /// PEP 660 is optional: the backend of a tree to install editable lacks `build_editable`.
    #[error(
        "Cannot install `{package}` (`{}`) as editable: its build backend `{backend}` has no \
         `build_editable` hook (PEP 660); install it built with `--no-editable`, or use a \
         backend that supports editable installs",
        path.display()
    )]
    NoEditable {
        /// The project's name.
        package: String,
        /// The source tree.
        path: PathBuf,
        /// The `build-backend`.
        backend: String,
    },
    /// A directory to build holds neither `pyproject.toml` nor `setup.py`.
    #[error(
        "Cannot build `{}`: it is not a Python project (neither `pyproject.toml` nor `setup.py` \
         is there)",
        path.display()
    )]
    NotAProject {
        /// The directory.
        path: PathBuf,
    },
    /// A local tree must be built, and builds are turned off.
    #[error(
        "Cannot install `{package}` from `{}`: a local source tree needs a build, and building \
         is turned off (`--no-build`)",
        path.display()
    )]
    BuildsOff {
        /// The project's name.
        package: String,
        /// The source tree.
        path: PathBuf,
    },
    /// The sdist could not be fetched.
    #[error(transparent)]
    Index(Box<crate::index::IndexError>),
    /// A file operation failed (its message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The same build failed earlier in this process.
    #[error(transparent)]
    Earlier(Arc<BuildError>),
}
