//! A `.dxtree` seen the way Windows asks for it: `\`-separated paths compared without regard to
//! case, symbolic links followed inside the tree (Dokan has no way to serve a link), and file
//! bytes sliced out of the mapped store objects.
//!
//! Nothing here depends on Dokan; the handler maps [`ViewError`] to `NTSTATUS`.
use dx_py_core::store::PackageStore;
use dx_py_core::tree::{DataError, Node, NodeKind, Tree, TreeData, TreeError};

use crate::policy;

/// How many symbolic links one lookup may follow (Linux's limit) before it gives up.
pub const MAX_LINK_HOPS: u32 = 40;

/// A path that cannot be resolved or a file whose bytes cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The last component is absent: `STATUS_OBJECT_NAME_NOT_FOUND`.
    #[error("No such file or directory")]
    NotFound,
    /// A directory on the way is absent or is a file: `STATUS_OBJECT_PATH_NOT_FOUND`.
    #[error("No such directory on the path")]
    PathNotFound,
    /// A component Windows cannot name (a stream, a reserved character): `STATUS_OBJECT_NAME_INVALID`.
    #[error("Invalid file name")]
    InvalidName,
    /// The tree's records are inconsistent.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A file's bytes cannot be served: a missing or changed pack, or a bad record.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// One directory entry as Windows lists it: a link shows under its own name with the
/// attributes of what it points to.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// The name in the directory (valid UTF-8 and a valid Windows name).
    pub name: &'a str,
    /// The node the name resolves to (never a symlink).
    pub node: Node<'a>,
}

/// A read-only venv: a tree and the store its packs live in. Packs are mapped on first read.
#[derive(Debug)]
pub struct TreeView<B> {
    data: TreeData<B>,
}

impl<B: AsRef<[u8]>> TreeView<B> {
    /// Serves `tree` with bytes from `store`; opens no pack yet, so this is O(packs) at most.
    pub fn new(tree: Tree<B>, store: PackageStore) -> Self {
        Self {
            data: TreeData::new(tree, store),
        }
    }

    /// The tree being served.
    pub fn tree(&self) -> &Tree<B> {
        self.data.tree()
    }

    /// Bytes the volume holds: every pack object plus the tree's own file (O(packs)).
    pub fn total_bytes(&self) -> u64 {
        let packs: u64 = (0..self.tree().pack_count())
            .filter_map(|i| self.tree().pack(i).ok())
            .map(|p| p.size)
            .sum();
        packs.saturating_add(self.tree().bytes().len() as u64)
    }

    /// Resolves a Dokan path (`\`, `\Lib\site-packages\six.py`) to a directory or file node,
    /// following symlinks. Exact names are found by binary search; a name that differs only in
    /// case is then looked for among the directory's children.
    pub fn resolve(&self, path: &str) -> Result<Node<'_>, ViewError> {
        let parts = policy::components(path).ok_or(ViewError::InvalidName)?;
        let mut node = self.tree().root()?;
        let mut hops = 0;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if node.kind != NodeKind::Dir {
                return Err(ViewError::PathNotFound);
            }
            let missing = || {
                if last {
                    ViewError::NotFound
                } else {
                    ViewError::PathNotFound
                }
            };
            let child = self.lookup(&node, part)?.ok_or_else(missing)?;
            node = self.follow(child, &mut hops)?.ok_or_else(missing)?;
        }
        Ok(node)
    }

    /// `name` in directory `dir`: exact match first, then ignoring case.
    pub fn lookup(&self, dir: &Node<'_>, name: &str) -> Result<Option<Node<'_>>, ViewError> {
        if let Some(node) = self.tree().lookup(dir, name.as_bytes())? {
            return Ok(Some(node));
        }
        for i in 0..dir.size {
            match self.tree().child(dir, i)? {
                Some(c) if policy::eq_ignore_case(c.name, name) => return Ok(Some(c)),
                Some(_) => {}
                None => break,
            }
        }
        Ok(None)
    }

    /// What `node` stands for: itself, or for a symlink the node its target names inside the
    /// tree. `None` for a dangling link, one whose target is absolute or leaves the tree, or a
    /// chain of more than [`MAX_LINK_HOPS`] links.
    pub fn follow<'a>(
        &'a self,
        node: Node<'a>,
        hops: &mut u32,
    ) -> Result<Option<Node<'a>>, ViewError> {
        let mut node = node;
        while node.kind == NodeKind::Symlink {
            *hops += 1;
            if *hops > MAX_LINK_HOPS {
                return Ok(None);
            }
            let Ok(target) = std::str::from_utf8(self.data(&node)?) else {
                return Ok(None);
            };
            if target.starts_with('/') || target.contains('\\') || target.contains(':') {
                return Ok(None);
            }
            let mut at = self.tree().node(node.parent)?;
            let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                match *part {
                    "." => continue,
                    ".." if at.ino == 1 => return Ok(None),
                    ".." => at = self.tree().node(at.parent)?,
                    name => {
                        if at.kind != NodeKind::Dir {
                            return Ok(None);
                        }
                        let Some(child) = self.tree().lookup(&at, name.as_bytes())? else {
                            return Ok(None);
                        };
                        // Links on the way are followed; the last one is followed by the loop.
                        at = if i + 1 < parts.len() {
                            match self.follow(child, hops)? {
                                Some(n) => n,
                                None => return Ok(None),
                            }
                        } else {
                            child
                        };
                    }
                }
            }
            node = at;
        }
        Ok(Some(node))
    }

    /// The entries of directory `dir` that Windows can show, in name order: names that are not
    /// UTF-8 or not valid on Windows and links that lead nowhere are left out.
    pub fn entries<'a>(
        &'a self,
        dir: &Node<'a>,
    ) -> impl Iterator<Item = Result<Entry<'a>, ViewError>> + 'a {
        let dir = *dir;
        (0..dir.size).filter_map(move |i| {
            let child = match self.tree().child(&dir, i) {
                Ok(Some(c)) => c,
                Ok(None) => return None,
                Err(e) => return Some(Err(e.into())),
            };
            let name = std::str::from_utf8(child.name)
                .ok()
                .filter(|n| policy::windows_name_ok(n))?;
            match self.follow(child, &mut 0) {
                Ok(Some(node)) => Some(Ok(Entry { name, node })),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }

    /// The bytes of a leaf: file contents or symlink target (empty for directories).
    pub fn data(&self, node: &Node<'_>) -> Result<&[u8], ViewError> {
        Ok(self.data.data(node)?)
    }

    /// Copies the bytes of file `node` from `offset` into `buf`; returns how many were copied
    /// (0 at or past the end).
    pub fn read(&self, node: &Node<'_>, offset: u64, buf: &mut [u8]) -> Result<usize, ViewError> {
        let bytes = self.data(node)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
