//! Bytecode that arrives after mounting. A cold `dx-py mount -r` mounts a tree made before the
//! bytecode packs exist and compiles them in the background; when they are stored, the full tree
//! (the same files plus the `__pycache__` directories) is handed to the running mount.
//!
//! Inode numbers the kernel already holds must keep meaning the same file, so the full tree is
//! not served in place of the first: every inode of the first tree stays as it is, and only the
//! `__pycache__` directories that the full tree adds (and the files in them) are served from the
//! full tree, under numbers above the first tree's (`base + full-tree inode`). Until the
//! bytecode arrives, a lookup of an absent `__pycache__` is answered `ENOENT` (which the kernel
//! does not cache) instead of a cached negative entry, so the names appear once it is there.
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::Mmap;

use crate::tree::{Node, NodeKind, Tree, TreeData, TreeError};

/// The name every added directory has.
pub(crate) const PYCACHE: &[u8] = b"__pycache__";

/// The full tree, and where its added `__pycache__` directories hang in the first tree.
#[derive(Debug)]
pub(crate) struct Late {
    pub(crate) data: TreeData<Mmap>,
    /// First-tree directory -> the full tree's `__pycache__` inside it (full-tree inode).
    pub(crate) gained: HashMap<u64, u64>,
    /// Full-tree directory holding an added `__pycache__` -> the same directory in the first tree.
    pub(crate) base_of: HashMap<u64, u64>,
}

/// Shared between the mount's [`TreeFs`](crate::fs::TreeFs) and the [`LateBytecode`] handle.
#[derive(Debug, Default)]
pub(crate) struct LateSlot {
    /// Bytecode is still coming: absent `__pycache__` names must not be cached.
    pub(crate) expecting: AtomicBool,
    pub(crate) ready: OnceLock<Late>,
}

/// Why the full tree cannot be served alongside the first.
#[derive(Debug, thiserror::Error)]
pub enum LateError {
    /// A tree record could not be read.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// [`LateBytecode::arrive`] was called twice.
    #[error("the bytecode has already arrived")]
    AlreadyArrived,
}

/// The handle a background compile uses to give its result to a running mount; made by
/// [`TreeFs::expect_bytecode`](crate::fs::TreeFs::expect_bytecode).
#[derive(Debug, Clone)]
pub struct LateBytecode {
    pub(crate) slot: std::sync::Arc<LateSlot>,
    /// The first tree's inode count: full-tree inode `n` is served as `base + n`.
    pub(crate) base: u64,
}

impl LateBytecode {
    /// Serves the `__pycache__` directories of `full` (the tree the mount would have had with
    /// its bytecode) from now on. Returns the first-tree directories that gained one; their
    /// cached listings are stale (see [`crate::serve::Notify`]).
    pub fn arrive(&self, first: &Tree<Mmap>, full: TreeData<Mmap>) -> Result<Vec<u64>, LateError> {
        let late = Late::new(first, full)?;
        let dirs = late.gained.keys().copied().collect();
        self.slot
            .ready
            .set(late)
            .map_err(|_| LateError::AlreadyArrived)?;
        self.slot.expecting.store(false, Ordering::Release);
        Ok(dirs)
    }

    /// No bytecode is coming after all (the compile failed): absent `__pycache__` names are
    /// cached again like every other absent name.
    pub fn abandon(&self) {
        self.slot.expecting.store(false, Ordering::Release);
    }

    /// The number the kernel knows full-tree inode `ino` by.
    pub fn served_ino(&self, ino: u64) -> u64 {
        self.base + ino
    }
}

impl Late {
    /// `full` served beside `first`: finds the `__pycache__` directories `full` has where
    /// `first` has none.
    fn new(first: &Tree<Mmap>, data: TreeData<Mmap>) -> Result<Self, TreeError> {
        let (mut gained, mut base_of) = (HashMap::new(), HashMap::new());
        let full = data.tree();
        for ino in 1..=u64::from(full.len()) {
            let node = full.node(ino)?;
            if node.kind != NodeKind::Dir || node.name != PYCACHE || node.ino == node.parent {
                continue;
            }
            let Some(dir) = same_dir(first, full, node.parent)? else {
                continue;
            };
            if first.lookup(&dir, PYCACHE)?.is_none() {
                gained.insert(dir.ino, node.ino);
                base_of.insert(node.parent, dir.ino);
            }
        }
        Ok(Self {
            data,
            gained,
            base_of,
        })
    }
}

/// The directory of `first` at the path full-tree directory `ino` has.
fn same_dir<'a>(
    first: &'a Tree<Mmap>,
    full: &Tree<Mmap>,
    ino: u64,
) -> Result<Option<Node<'a>>, TreeError> {
    let mut names = Vec::new();
    let mut node = full.node(ino)?;
    while node.ino != node.parent {
        names.push(node.name);
        if names.len() > 4096 {
            return Err(TreeError::Corrupt("parent chain does not reach the root"));
        }
        node = full.node(node.parent)?;
    }
    let mut dir = first.root()?;
    for name in names.iter().rev() {
        match first.lookup(&dir, name)? {
            Some(next) if next.kind == NodeKind::Dir => dir = next,
            _ => return Ok(None),
        }
    }
    Ok(Some(dir))
}
