//! Everything that can stop an install, each naming the package or file it concerns.
use std::path::PathBuf;

use crate::closure::ClosureProblem;

/// A lock or install that failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A requirement that only resolution can satisfy, given to the path that installs pins.
    #[error("{0}: this command installs requirements pinned with `==` only")]
    NotPinned(Box<crate::requirements::NotPinned>),
    /// No wheel fits the pin (absent version, only an sdist, no compatible tags).
    #[error("Cannot lock `{name}=={version}`")]
    Select {
        /// The package.
        name: String,
        /// The pinned version.
        version: String,
        /// Why.
        #[source]
        source: Box<crate::index::SelectError>,
    },
    /// Listing or downloading from a source failed.
    #[error("Failed to get `{name}`")]
    Index {
        /// The package.
        name: String,
        /// The failure.
        #[source]
        source: Box<crate::index::IndexError>,
    },
    /// A wheel's sha256 is not one the requirements or the lock allow.
    #[error("Hash mismatch for `{filename}` ({name}): expected {expected}, got {actual}")]
    HashMismatch {
        /// The package.
        name: String,
        /// The wheel.
        filename: String,
        /// What was allowed.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// A wheel failed validation or conversion.
    #[error("Invalid wheel `{filename}`")]
    Wheel {
        /// The wheel.
        filename: String,
        /// What is wrong.
        #[source]
        source: Box<crate::wheel::WheelError>,
    },
    /// The locked set is not closed under its dependencies.
    #[error("The requirements are not a complete set:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    NotClosed(Vec<ClosureProblem>),
    /// A locked package has no wheel source left (no path, no URL, not in a find-links dir).
    #[error(
        "No source for `{filename}` ({name}): it is not in the store, and the lock gives no URL or path that exists; pass `--find-links` or `--index-url`"
    )]
    NoSource {
        /// The package.
        name: String,
        /// The wheel.
        filename: String,
    },
    /// A package locked as an sdist that is not in the store, with no builder to build it.
    #[error(
        "`{filename}` ({name}) must be built from source: it is not in the store, and building is turned off or no index is configured for its build requirements; pass `--index-url`, or drop `--no-build`"
    )]
    CannotBuild {
        /// The package.
        name: String,
        /// The sdist.
        filename: String,
    },
    /// A package locked as a local directory that is not there.
    #[error(
        "Package `{name}` is locked as the directory `{path}`, which does not exist; run from where the lock's relative paths point, or lock again"
    )]
    MissingDirectory {
        /// The package.
        name: String,
        /// The directory looked for.
        path: PathBuf,
    },
    /// A package stored after mounting is not the one its tree was laid out from.
    #[error(
        "`{filename}` was laid out as a package of {laid_out} bytes but stored as one of {stored}"
    )]
    LayoutChanged {
        /// The wheel's file name.
        filename: String,
        /// The package's length as laid out.
        laid_out: u64,
        /// Its length as stored.
        stored: u64,
    },
    /// A read-only store lacks a package and nothing may be written to it.
    #[error(
        "The read-only store at `{store}` does not contain `{name}` {version}; add it where the store is writable (`dx-py install` with that store), or drop `--store`"
    )]
    MissingFromReadOnlyStore {
        /// The store root.
        store: PathBuf,
        /// The package.
        name: String,
        /// Its version.
        version: String,
    },
    /// The venv is a dx-py mount (read-only): nothing can be installed into it.
    #[error(
        "`{}` is served by a dx-py mount, which is read-only; run `dx-py unmount {}` first to install into it, or install into another venv (`--venv`)",
        venv.display(),
        venv.display()
    )]
    VenvMounted {
        /// The venv (absolute).
        venv: PathBuf,
    },
    /// A locked wheel does not fit the interpreter: the lock was made for another environment.
    #[error(
        "The lock was made for {locked_for}, not for this interpreter ({interpreter}): `{filename}` ({name}) does not fit it; re-lock for this interpreter (`dx-py lock`, or `dx-py install -r` with the requirements)"
    )]
    WrongEnvironment {
        /// The environment the lock records (e.g. `cp311-linux_x86_64`).
        locked_for: String,
        /// The interpreter's environment.
        interpreter: String,
        /// The first package whose wheel does not fit.
        name: String,
        /// Its wheel.
        filename: String,
    },
    /// The requirements could not be resolved (no solution, a package that needs a build, the
    /// index failing).
    #[error(transparent)]
    Resolve(Box<crate::resolve::ResolveError>),
    /// The lock itself is unreadable or corrupt.
    #[error(transparent)]
    Dpl(#[from] crate::dpl::DplFileError),
    /// A universal lock gives no lock for the interpreter.
    #[error(transparent)]
    Selection(Box<super::selected::SelectionError>),
    /// A lock entry could not be read.
    #[error("Corrupt lock entry")]
    DplEntry(#[from] crate::dpl::DplError),
    /// The lock could not be built.
    #[error("Cannot write the lock")]
    DplBuild(#[from] crate::dpl::DplBuildError),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The remote store tier failed (server down, corrupt object, …).
    #[error(transparent)]
    Remote(Box<crate::remote::RemoteError>),
    /// A layout operation failed.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// The venv could not be made or read.
    #[error(transparent)]
    Venv(#[from] crate::python::VenvError),
    /// Compiling bytecode failed.
    #[error(transparent)]
    Bytecode(#[from] crate::python::BytecodeError),
    /// A `.dxpkg` in the store is unreadable.
    #[error("Corrupt package in the store")]
    Dxpkg(#[from] crate::dxpkg::DxpkgError),
    /// Writing a bytecode pack failed.
    #[error("Cannot build a bytecode pack")]
    DxpkgWrite(#[from] crate::dxpkg::DxpkgWriterError),
    /// A source distribution could not be built.
    #[error(transparent)]
    Build(Box<crate::build::BuildError>),
    /// Another I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<super::selected::SelectionError> for InstallError {
    fn from(e: super::selected::SelectionError) -> Self {
        Self::Selection(Box::new(e))
    }
}
