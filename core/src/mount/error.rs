//! [`MountPlanError`]: why a mount's tree could not be planned, built or completed.
use std::path::PathBuf;

use crate::hash::ContentHash;

/// Why a mount's tree could not be planned, built or completed after mounting.
#[derive(Debug, thiserror::Error)]
pub enum MountPlanError {
    /// Bringing packages or bytecode into the store failed.
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    /// The remote store tier failed while the tree was planned from it.
    #[error(transparent)]
    Remote(#[from] Box<crate::remote::RemoteError>),
    /// The lock is damaged.
    #[error("Invalid lock `{}`", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::dpl::DplError,
    },
    /// A lock could not be written.
    #[error("Cannot write the lock")]
    LockBuild(#[from] crate::dpl::DplBuildError),
    /// A package lacks a store object where the plan needs one.
    #[error(
        "The lock entry of `{package}` has no store object; run `dx-py install` or `dx-py mount` with its wheels at hand"
    )]
    NotStored {
        /// The package.
        package: String,
    },
    /// A planned package's wheel is no longer where it was found.
    #[error("The wheel `{wheel}` of a package stored after mounting is gone; mount again")]
    WheelGone {
        /// Its file name.
        wheel: String,
    },
    /// A package stored after mounting does not hold a file where the tree laid out before it
    /// expects one.
    #[error(
        "Package `{hash}` has no file of {len} bytes at offset {offset}, where the tree laid out before it was stored expects one"
    )]
    NotAsLaidOut {
        /// The stored object.
        hash: ContentHash,
        /// The expected file's offset in it.
        offset: u64,
        /// The expected file's length.
        len: u64,
    },
    /// A planned package could not be stored.
    #[error("Cannot store `{wheel}`")]
    Store {
        /// Its wheel's file name.
        wheel: String,
        /// Why.
        #[source]
        source: Box<MountPlanError>,
    },
    /// A worker storing packages stopped early (it panicked).
    #[error("{stored} of {planned} packages stored: a storing thread stopped")]
    Unfinished {
        /// Stored.
        stored: usize,
        /// Planned.
        planned: usize,
    },
    /// The store refused a read.
    #[error(transparent)]
    Stored(#[from] crate::store::StoreError),
    /// A stored package is damaged.
    #[error("Corrupt package in the store")]
    Package(#[from] crate::dxpkg::DxpkgError),
    /// A tree could not be built or written.
    #[error(transparent)]
    Build(#[from] crate::tree::TreeBuildError),
    /// A tree could not be opened.
    #[error(transparent)]
    Open(#[from] crate::tree::OpenTreeError),
    /// A tree is damaged.
    #[error(transparent)]
    Tree(#[from] crate::tree::TreeError),
    /// A file could not be read or written.
    #[error("Cannot {action} `{}`", path.display())]
    Io {
        /// `read`, `write`, `create`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl MountPlanError {
    /// An I/O error on `path` while doing `action`.
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
