//! The bytes behind a tree: a [`Tree`] together with the store its packs live in, which both
//! mount front ends (FUSE in `fs-linux`, Dokan in `fs-windows`) serve files from.
//!
//! Packs are mapped on the first read that needs them (one `OnceLock` per pack slot), so opening
//! a tree opens no pack at all; a pack whose length differs from the one recorded in the tree is
//! refused rather than served.
use std::sync::{Arc, OnceLock};

use crate::hash::ContentHash;
use crate::store::{MappedPackage, PackageStore, StoreError};

use super::reader::{DataSource, Node, Tree, TreeError};

/// A leaf whose bytes cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The tree's records are inconsistent.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A pack the tree needs cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pack's object is not the one the tree was built from.
    #[error(
        "Package `{hash}` changed since the tree was built: expected {expected} bytes, got {got}"
    )]
    PackChanged {
        /// The object.
        hash: ContentHash,
        /// Its length when the tree was built.
        expected: u64,
        /// Its length now.
        got: u64,
    },
    /// A record points past the end of its pack.
    #[error("File data of inode {ino} lies outside package `{hash}`")]
    OutOfRange {
        /// The inode.
        ino: u64,
        /// The object.
        hash: ContentHash,
    },
}

impl DataError {
    /// True when the tree itself is damaged (a bad record), false when the store is (a missing
    /// or changed pack): the front ends report the two differently.
    pub fn is_corrupt_tree(&self) -> bool {
        matches!(self, Self::Tree(_) | Self::OutOfRange { .. })
    }
}

/// A tree and the store its packs live in: the bytes of every leaf, packs mapped on demand.
#[derive(Debug)]
pub struct TreeData<B> {
    tree: Tree<B>,
    store: PackageStore,
    /// Opened on first read, so that opening a tree opens no pack.
    packs: Vec<OnceLock<Arc<MappedPackage>>>,
}

impl<B: AsRef<[u8]>> TreeData<B> {
    /// Serves `tree` with bytes from `store`; opens no pack yet (O(packs) for the empty slots).
    pub fn new(tree: Tree<B>, store: PackageStore) -> Self {
        let packs = (0..tree.pack_count()).map(|_| OnceLock::new()).collect();
        Self { tree, store, packs }
    }

    /// The tree being served.
    pub fn tree(&self) -> &Tree<B> {
        &self.tree
    }

    /// The mapped object in pack slot `index`, mapped (and its length checked) on first use.
    pub fn pack(&self, index: u32) -> Result<&MappedPackage, DataError> {
        let slot = self
            .packs
            .get(index as usize)
            .ok_or(TreeError::Corrupt("pack index out of range"))?;
        if let Some(p) = slot.get() {
            return Ok(p);
        }
        let want = self.tree.pack(index)?;
        let pkg = self.store.get(&want.hash)?;
        let got = pkg.reader().bytes().len() as u64;
        if got != want.size {
            return Err(DataError::PackChanged {
                hash: want.hash,
                expected: want.size,
                got,
            });
        }
        // A racing thread may have set it first; both hold the same shared map.
        Ok(slot.get_or_init(|| pkg))
    }

    /// The bytes of a leaf: file contents or symlink target (empty for directories).
    pub fn data(&self, node: &Node<'_>) -> Result<&[u8], DataError> {
        match node.source {
            DataSource::None => Ok(&[]),
            DataSource::Inline { .. } => Ok(self.tree.inline_data(node)?.unwrap_or_default()),
            DataSource::Pack { pack, offset } => {
                let bytes = self.pack(pack)?.reader().bytes();
                usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(node.size).ok())
                    .and_then(|(start, len)| bytes.get(start..start.checked_add(len)?))
                    .ok_or_else(|| DataError::OutOfRange {
                        ino: node.ino,
                        hash: self
                            .tree
                            .pack(pack)
                            .map(|p| p.hash)
                            .unwrap_or(ContentHash::from_bytes([0; 32])),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{H_INODES_OFF, I_OFFSET, INODE_LEN};
    use super::super::{PackPlacement, SyntheticFile, TreeSpec};
    use super::*;
    use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};

    const SP: &str = "lib/python3.11/site-packages";

    fn add_pack(store: &PackageStore, name: &str, files: &[(&str, &[u8])]) -> ContentHash {
        let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
        for (path, data) in files {
            w.add(
                Scheme::SitePackages,
                path,
                EntryKind::File,
                0o644,
                data.to_vec(),
            );
        }
        store.store(&w.finish().unwrap()).unwrap()
    }

    /// A tree of one pack (`a.py`, `b.py`) and one synthetic file, in a fresh store.
    fn fixture() -> (tempfile::TempDir, Vec<u8>, ContentHash) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let hash = add_pack(&store, "a", &[("a.py", b"A = 1\n"), ("b.py", b"B = 2\n")]);
        let spec = TreeSpec {
            packs: vec![(hash, PackPlacement::venv("3.11", "x"))],
            files: vec![SyntheticFile {
                path: "pyvenv.cfg".into(),
                bytes: b"home = /usr\n".to_vec(),
                mode: 0o644,
            }],
            symlinks: Vec::new(),
        };
        let bytes = spec.build(&store).unwrap();
        (dir, bytes, hash)
    }

    fn data_of(d: &TreeData<Vec<u8>>, path: &str) -> Result<Vec<u8>, DataError> {
        let node = d.tree().resolve(path).unwrap().unwrap();
        d.data(&node).map(<[u8]>::to_vec)
    }

    #[test]
    fn serves_pack_inline_and_directory_bytes() {
        let (dir, bytes, _) = fixture();
        let d = TreeData::new(
            Tree::new(bytes).unwrap(),
            PackageStore::open(dir.path().join("store")),
        );
        assert_eq!(data_of(&d, &format!("{SP}/a.py")).unwrap(), b"A = 1\n");
        assert_eq!(data_of(&d, &format!("{SP}/b.py")).unwrap(), b"B = 2\n");
        assert_eq!(data_of(&d, "pyvenv.cfg").unwrap(), b"home = /usr\n");
        assert_eq!(data_of(&d, SP).unwrap(), b"");
        assert!(matches!(d.pack(1), Err(DataError::Tree(_))), "no slot 1");
    }

    #[test]
    fn a_missing_or_changed_pack_is_refused() {
        let (dir, bytes, hash) = fixture();
        let empty = PackageStore::open(dir.path().join("empty"));
        let d = TreeData::new(Tree::new(bytes.clone()).unwrap(), empty);
        let err = data_of(&d, &format!("{SP}/a.py")).unwrap_err();
        assert!(
            matches!(err, DataError::Store(StoreError::PackageNotFound(h)) if h == hash),
            "{err}"
        );
        assert!(!err.is_corrupt_tree());
        assert_eq!(data_of(&d, "pyvenv.cfg").unwrap(), b"home = /usr\n");

        // Another (valid, longer) object under the same name.
        let other = PackageStore::open(dir.path().join("other"));
        let longer = add_pack(&other, "z", &[("z.py", &[b'z'; 100])]);
        let path = other.get_path(&hash);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(other.get_path(&longer), &path).unwrap();
        let d = TreeData::new(Tree::new(bytes).unwrap(), other);
        let err = data_of(&d, &format!("{SP}/a.py")).unwrap_err();
        assert!(
            matches!(err, DataError::PackChanged { hash: h, expected, got } if h == hash && got > expected),
            "{err}"
        );
    }

    #[test]
    fn a_record_past_the_end_of_its_pack_is_out_of_range() {
        let (dir, mut bytes, hash) = fixture();
        let ino = Tree::new(bytes.clone())
            .unwrap()
            .resolve(&format!("{SP}/a.py"))
            .unwrap()
            .unwrap()
            .ino as usize;
        let inodes = u64::from_le_bytes(bytes[H_INODES_OFF..H_INODES_OFF + 8].try_into().unwrap());
        let at = inodes as usize + (ino - 1) * INODE_LEN + I_OFFSET;
        bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let d = TreeData::new(
            Tree::new(bytes).unwrap(),
            PackageStore::open(dir.path().join("store")),
        );
        let err = data_of(&d, &format!("{SP}/a.py")).unwrap_err();
        assert!(
            matches!(err, DataError::OutOfRange { hash: h, .. } if h == hash),
            "{err}"
        );
        assert!(err.is_corrupt_tree());
        assert!(err.to_string().contains("lies outside package"), "{err}");
    }
}
