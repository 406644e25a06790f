//! `.dxtree`: the merged directory tree of one venv, built once per package set and memory-mapped
//! by the mount so that mounting costs O(1) whatever the number of files.
//!
//! ```text
//! offset 0     header (128 bytes)        magic, version, counts, section offsets, mtime, blake3
//!        128   packs (40 B × packs)      store hash + object length, indexed by inode records
//!        …     inodes (40 B × inodes)    record of inode n at (n - 1) × 40; root = 1
//!        …     children (u32 × inodes-1) each directory's children, contiguous, sorted by name
//!        …     names                     entry names, in inode order
//!        …     inline                    bytes of synthetic files and rewritten scripts
//! ```
//!
//! Inodes are numbered in one preorder DFS over the name-sorted tree, so the same package set
//! always gives the same numbers. A lookup is a binary search over a directory's children; a
//! `readdir` offset is an index into them. `docs/formats/dxtree.md` has the details.
//!
//! [`TreeData`] pairs a tree with the store its packs live in and serves the bytes of its files;
//! both mount front ends (`fs-linux`, `fs-windows`) wrap it.
mod arriving;
mod builder;
mod format;
mod packs;
mod reader;

pub use arriving::{ArrivingPacks, NotStored};
pub use builder::{PackPlacement, SyntheticFile, TreeBuildError, TreeSpec, write_tree};
pub use format::{FIXED_MTIME, NodeKind};
#[cfg(target_os = "linux")]
pub use packs::PackPages;
#[cfg(target_os = "linux")]
pub use packs::release_unit;
pub use packs::{DataError, TreeData, release_range};
pub use reader::{DataSource, Node, PackRef, Tree, TreeError};

use std::path::Path;

/// A tree file as [`open_tree`] maps it.
pub type MappedTree = Tree<memmap2::Mmap>;

/// Maps a tree file read-only and checks its header: O(1), the records are read on demand.
pub fn open_tree(path: &Path) -> Result<MappedTree, OpenTreeError> {
    // Tree files are published with a temporary file and a rename and never modified in place
    // (see `write_tree`), as `map_immutable` asks.
    let map = crate::sys::map_immutable(path).map_err(|source| OpenTreeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Tree::new(map).map_err(|source| OpenTreeError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

/// Recomputes, in place, the checksum of `.dxtree` bytes that were edited byte by byte: what
/// someone crafting a file would do. For fuzzing and tests of the reader's handling of crafted
/// files only; bytes shorter than a header are left as they are.
#[doc(hidden)]
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= format::HEADER_LEN {
        let sum = reader::checksum(bytes);
        bytes[format::H_CHECKSUM..format::H_CHECKSUM + 32].copy_from_slice(&sum);
    }
}

/// A tree file that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenTreeError {
    /// The file cannot be read.
    #[error("Cannot read the tree file `{path}`")]
    Io {
        /// The tree file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid tree.
    #[error("Invalid tree file `{path}`; rebuild it")]
    Invalid {
        /// The tree file.
        path: std::path::PathBuf,
        /// What is wrong.
        #[source]
        source: TreeError,
    },
}

#[cfg(test)]
mod tests;
