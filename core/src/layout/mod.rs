//! The layout cache: ready `site-packages` trees, one per exact package set, so that installing a
//! set seen before is one symlink.
//!
//! ```text
//! {layouts}/
//! ├── index.dxlc                 DXLC hash table: project hash -> entry (read lock-free, mmap'd)
//! ├── index.lock                 writers hold an exclusive lock on it while publishing
//! ├── .tmp-…/                    a layout or index being built (same filesystem, renamed in)
//! └── <project-hash hex>/        one layout
//!     ├── site-packages/…        hardlinks of the store's unpacked files (symlinks, copies)
//!     ├── bin/…                  scripts and launchers
//!     ├── headers/… data/…       only when some package has them
//!     └── dx-py-layout.json      manifest: packages, link mode, counts; written last
//! ```
//!
//! A venv using a layout keeps its own, writable `site-packages`; the layout is added after it
//! on `sys.path` (so nothing done in one venv changes another):
//!
//! ```text
//! {venv}/lib/pythonX.Y/site-packages/                   the venv's own (pip, uv install here)
//! {venv}/lib/pythonX.Y/site-packages/_dx_py_layout.pth  adds {layouts}/<hash>/site-packages;
//!                                                       marker: which layout and launchers
//! {venv}/bin/<script>                -> {layouts}/<hash>/bin/<script>
//! ```
//!
//! [`LayoutCache`] builds, installs, verifies and repairs layouts; [`LayoutIndex`] reads the
//! index format. The byte layout and the concurrency design are in `docs/formats/dxlc.md`.
use std::path::PathBuf;

use crate::hash::ContentHash;
use crate::store::StoreError;

mod build;
mod cache;
mod index;
mod install;
mod manifest;
mod project_hash;
#[cfg(all(test, unix))]
mod tests;
mod verify;

pub use cache::LayoutCache;
/// For fuzzing and tests: recomputes the checksums of edited DXLC bytes.
#[doc(hidden)]
pub use index::reseal as reseal_index;
pub use index::{
    ENTRY_LEN, HEADER_LEN, IndexError, LayoutEntry, LayoutIndex, LayoutIndexHeader, MAGIC,
    MAX_TAG_LEN, MIN_CAPACITY, VERSION, capacity_for, encode_index,
};
pub(crate) use manifest::MANIFEST_NAME;
pub use manifest::{LayoutManifest, LinkCounts, ManifestPackage};
pub use project_hash::{ProjectHash, ProjectHashError};
pub use verify::{LayoutProblem, VerifyLevel, VerifyReport};

/// How a layout's files were placed (shared with the store's venv installs).
pub use crate::store::LinkMode;

/// The exact package set a layout is built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutSpec {
    /// The interpreter's wheel tag, e.g. `cp311-linux_x86_64`; part of the project hash.
    pub interpreter_tag: String,
    /// `(major, minor)`: venvs get `lib/pythonX.Y/site-packages`.
    pub python_version: (u8, u8),
    /// The packages; their order does not matter.
    pub packages: Vec<LayoutPackage>,
}

/// One package of a [`LayoutSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutPackage {
    /// Distribution name (any spelling; compared PEP 503-normalized).
    pub name: String,
    /// Exact version string.
    pub version: String,
    /// The package's store object.
    pub hash: ContentHash,
    /// The sha256 of the wheel the lock names, checked against the store's record of which
    /// object that wheel became (zero where no wheel is involved, e.g. tests).
    pub wheel_sha256: [u8; 32],
    /// More trees of the unpacked shape (`site-packages/…`, `bin/…`) merged over the package's
    /// own, e.g. bytecode compiled for the interpreter. They must depend only on the package and
    /// the interpreter, since they are not part of the project hash.
    pub extra_trees: Vec<PathBuf>,
}

impl LayoutSpec {
    /// The key of this set's layout.
    pub fn project_hash(&self) -> ProjectHash {
        ProjectHash::compute(
            &self.interpreter_tag,
            self.packages.iter().map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    &p.hash,
                    &p.wheel_sha256,
                )
            }),
        )
    }
}

/// How [`LayoutCache::build_layout`] obtained a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildOutcome {
    /// Built now and renamed into place.
    Built,
    /// A healthy layout was already there (maybe finished by another process meanwhile).
    Reused,
    /// A damaged layout was replaced by a fresh build.
    Rebuilt,
}

/// A ready layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Its key.
    pub project_hash: ProjectHash,
    /// `{layouts}/{hash hex}`.
    pub path: PathBuf,
    /// The weakest link mode used for its files.
    pub link_mode: LinkMode,
    /// Packages in the set.
    pub package_count: usize,
    /// Files and in-package symlinks in the tree.
    pub file_count: u64,
    /// Bytes of those files.
    pub total_bytes: u64,
    /// Built, reused or rebuilt.
    pub outcome: BuildOutcome,
}

impl Layout {
    /// The layout's `site-packages` directory.
    pub fn site_packages(&self) -> PathBuf {
        self.path.join("site-packages")
    }
}

/// What an install put into a venv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The layout's key.
    pub project_hash: ProjectHash,
    /// The layout directory.
    pub layout: PathBuf,
    /// The venv's own `lib/pythonX.Y/site-packages` directory (it holds the `.pth` file).
    pub site_packages: PathBuf,
    /// Names of the launchers linked into `{venv}/bin`, sorted.
    pub launchers: Vec<String>,
    /// True when the layout was already cached and healthy (no build).
    pub hit: bool,
}

/// A layout operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A file-system call failed; fs-err puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A file-system call on `path` failed.
    #[error("Failed to {action} `{path}`")]
    Fs {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store could not provide a package's unpacked tree.
    #[error("Failed to get the unpacked tree of `{name}` ({hash}) from the store")]
    Store {
        /// Package name.
        name: String,
        /// Store hash.
        hash: ContentHash,
        /// Why (boxed: store errors are large and rare).
        #[source]
        source: Box<StoreError>,
    },
    /// A path is a directory in one package and a file in another.
    #[error(
        "`{path}` is a directory in `{dir_package}` but a file in `{file_package}`; these packages cannot share a layout"
    )]
    Conflict {
        /// The path inside the layout.
        path: PathBuf,
        /// The package with the directory.
        dir_package: String,
        /// The package with the file.
        file_package: String,
    },
    /// Something other than a file, directory or symlink in a package tree.
    #[error("Unsupported file type at `{0}`: expected a file, a directory or a symlink")]
    FileType(PathBuf),
    /// A layout manifest that cannot be read.
    #[error("Invalid layout manifest `{path}`: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The index could not be encoded (too many layouts).
    #[error("Failed to write the layout index `{path}`")]
    Index {
        /// The index file.
        path: PathBuf,
        /// Why.
        #[source]
        source: IndexError,
    },
    /// A venv directory that cannot take a layout.
    #[error("Cannot install into `{path}`: {reason}")]
    Venv {
        /// The offending path inside the venv.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl LayoutError {
    pub(crate) fn fs(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Fs {
            action,
            path,
            source,
        }
    }
}

/// The layout a venv was last pointed at, as its marker records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenvLayout {
    /// The layout's key, in hex as recorded.
    pub project_hash: String,
    /// The layout directory.
    pub layout: PathBuf,
    /// The launchers linked into the venv's `bin/`.
    pub launchers: Vec<String>,
}

/// Reads which layout `venv` (for Python `python`) uses, from the marker line of its
/// `_dx_py_layout.pth` (or the `.dx-py-layout` file of venvs made by earlier versions); `None`
/// when the venv has no readable marker.
pub fn venv_layout(venv: &std::path::Path, python: (u8, u8)) -> Option<VenvLayout> {
    install::read_marker(&install::marker_path(venv, python))
        .or_else(|| install::read_marker(&venv.join(install::LEGACY_MARKER_NAME)))
        .map(|m| VenvLayout {
            project_hash: m.project_hash,
            layout: m.layout,
            launchers: m.launchers,
        })
}
