//! Reads `.dxtree` bytes as untrusted input: every offset is checked, nothing panics.
use crate::hash::ContentHash;

use super::format::*;
use crate::format::bytes::{OutOfRange, i64_at, u16_at, u32_at, u64_at};
use crate::format::checksum::blake3_with_hole;

/// A `.dxtree` that cannot be read, or a request it cannot answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// Shorter (or longer) than its header says.
    #[error("Truncated .dxtree: need {needed} bytes, file has {len}")]
    Truncated {
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// Not a `.dxtree` at all.
    #[error("Not a .dxtree file: bad magic bytes")]
    BadMagic,
    /// Written by another format version.
    #[error("Unsupported .dxtree version: expected {expected}, got {got}")]
    UnsupportedVersion {
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        got: u32,
    },
    /// The checksum in the header does not match the bytes.
    #[error("Corrupt .dxtree: checksum mismatch")]
    ChecksumMismatch,
    /// A structural field is out of range or inconsistent.
    #[error("Corrupt .dxtree: {0}")]
    Corrupt(&'static str),
    /// A field lies outside the file.
    #[error("Corrupt .dxtree")]
    OutOfRange(#[from] OutOfRange),
    /// An inode number outside `1..=inode count`.
    #[error("No inode {ino} in this tree (it has {count})")]
    NoSuchInode {
        /// The inode asked for.
        ino: u64,
        /// Inodes in the tree.
        count: u32,
    },
}

/// Where a leaf's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// No bytes (a directory).
    None,
    /// `size` bytes at absolute `offset` of the object in pack slot `pack`.
    Pack {
        /// Index into the tree's pack table.
        pack: u32,
        /// Absolute offset in the `.dxpkg` file.
        offset: u64,
    },
    /// `size` bytes at `offset` of the tree's inline section.
    Inline {
        /// Offset in the inline section.
        offset: u64,
    },
}

/// One inode record, borrowed from the tree's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    /// Inode number (root = 1).
    pub ino: u64,
    /// Parent inode (the root's parent is itself).
    pub parent: u64,
    /// Entry name in its parent (empty for the root).
    pub name: &'a [u8],
    /// Directory, file or symlink.
    pub kind: NodeKind,
    /// Permission bits.
    pub mode: u32,
    /// Byte length (file, symlink target) or number of children (directory).
    pub size: u64,
    /// Link count.
    pub nlink: u32,
    /// Where the bytes are.
    pub source: DataSource,
    /// Directory only: first index of its children in the children table.
    first_child: u64,
}

/// One entry of the pack table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackRef {
    /// The object's store hash.
    pub hash: ContentHash,
    /// The object's length when the tree was built.
    pub size: u64,
}

/// A checked view of `.dxtree` bytes (a `Mmap`, a `Vec<u8>`, a slice).
#[derive(Debug)]
pub struct Tree<B> {
    bytes: B,
    inode_count: u32,
    pack_count: u32,
    child_count: u32,
    mtime: i64,
    packs_off: usize,
    inodes_off: usize,
    children_off: usize,
    names: (usize, usize),
    inline: (usize, usize),
}

fn to_usize(v: u64) -> Result<usize, TreeError> {
    usize::try_from(v).map_err(|_| TreeError::Corrupt("offset too large"))
}

/// blake3 of `bytes` with the header's checksum field taken as zeros.
pub(crate) fn checksum(bytes: &[u8]) -> [u8; 32] {
    blake3_with_hole(bytes, H_CHECKSUM..HEADER_LEN)
}

impl<B: AsRef<[u8]>> Tree<B> {
    /// Checks the header and that the sections tile the file exactly: O(1) in the number of
    /// inodes. Records are checked when read; [`Tree::verify`] checks everything.
    pub fn new(bytes: B) -> Result<Self, TreeError> {
        let b = bytes.as_ref();
        let len = b.len() as u64;
        if b.len() < HEADER_LEN {
            if b.len() >= MAGIC.len() && b[..MAGIC.len()] != MAGIC {
                return Err(TreeError::BadMagic);
            }
            return Err(TreeError::Truncated {
                needed: HEADER_LEN as u64,
                len,
            });
        }
        if b[..MAGIC.len()] != MAGIC {
            return Err(TreeError::BadMagic);
        }
        let version = u32_at(b, H_VERSION)?;
        if version != VERSION {
            return Err(TreeError::UnsupportedVersion {
                expected: VERSION,
                got: version,
            });
        }
        if u32_at(b, H_FLAGS)? != 0 {
            return Err(TreeError::Corrupt("unknown feature flags"));
        }
        let inode_count = u32_at(b, H_INODE_COUNT)?;
        let pack_count = u32_at(b, H_PACK_COUNT)?;
        let child_count = u32_at(b, H_CHILD_COUNT)?;
        if inode_count == 0 {
            return Err(TreeError::Corrupt("no root inode"));
        }
        if child_count != inode_count - 1 {
            return Err(TreeError::Corrupt("child count is not inode count - 1"));
        }
        let mtime = i64_at(b, H_MTIME)?;
        let field = |at| -> Result<usize, TreeError> { to_usize(u64_at(b, at)?) };
        let packs_off = field(H_PACKS_OFF)?;
        let inodes_off = field(H_INODES_OFF)?;
        let children_off = field(H_CHILDREN_OFF)?;
        let names_off = field(H_NAMES_OFF)?;
        let names_len = field(H_NAMES_LEN)?;
        let inline_off = field(H_INLINE_OFF)?;
        let inline_len = field(H_INLINE_LEN)?;
        // Sections follow each other in a fixed order with no gaps.
        let section = |off: usize, count: u32, each: usize, what| {
            off.checked_add(count as usize * each)
                .ok_or(TreeError::Corrupt(what))
        };
        if packs_off != HEADER_LEN {
            return Err(TreeError::Corrupt("pack table offset"));
        }
        if inodes_off != section(packs_off, pack_count, PACK_LEN, "pack table size")? {
            return Err(TreeError::Corrupt("inode table offset"));
        }
        if children_off != section(inodes_off, inode_count, INODE_LEN, "inode table size")? {
            return Err(TreeError::Corrupt("children table offset"));
        }
        if names_off != section(children_off, child_count, CHILD_LEN, "children table size")? {
            return Err(TreeError::Corrupt("names offset"));
        }
        let names_end = names_off
            .checked_add(names_len)
            .ok_or(TreeError::Corrupt("names size"))?;
        if inline_off != names_end {
            return Err(TreeError::Corrupt("inline data offset"));
        }
        let end = inline_off
            .checked_add(inline_len)
            .ok_or(TreeError::Corrupt("inline data size"))?;
        if end as u64 != len {
            return Err(TreeError::Truncated {
                needed: end as u64,
                len,
            });
        }
        Ok(Self {
            bytes,
            inode_count,
            pack_count,
            child_count,
            mtime,
            packs_off,
            inodes_off,
            children_off,
            names: (names_off, names_len),
            inline: (inline_off, inline_len),
        })
    }

    /// The raw bytes this tree reads.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// Number of inodes (the root included); inode numbers are `1..=len`.
    pub fn len(&self) -> u32 {
        self.inode_count
    }

    /// Always false: a tree has at least its root.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The modification time of every inode, seconds since the epoch.
    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    /// Number of entries in the pack table.
    pub fn pack_count(&self) -> u32 {
        self.pack_count
    }

    /// Pack table entry `index`.
    pub fn pack(&self, index: u32) -> Result<PackRef, TreeError> {
        if index >= self.pack_count {
            return Err(TreeError::Corrupt("pack index out of range"));
        }
        let b = self.bytes.as_ref();
        let at = self.packs_off + index as usize * PACK_LEN;
        let hash: [u8; 32] = b
            .get(at + P_HASH..at + P_HASH + 32)
            .and_then(|s| s.try_into().ok())
            .ok_or(TreeError::Corrupt("pack record out of range"))?;
        Ok(PackRef {
            hash: ContentHash::from_bytes(hash),
            size: u64_at(b, at + P_SIZE)?,
        })
    }

    /// The record of inode `ino`, bounds-checked.
    pub fn node(&self, ino: u64) -> Result<Node<'_>, TreeError> {
        if ino == 0 || ino > u64::from(self.inode_count) {
            return Err(TreeError::NoSuchInode {
                ino,
                count: self.inode_count,
            });
        }
        let b = self.bytes.as_ref();
        let at = self.inodes_off + (ino as usize - 1) * INODE_LEN;
        let parent = u64::from(u32_at(b, at + I_PARENT)?);
        let name_off = u32_at(b, at + I_NAME_OFF)? as usize;
        let name_len = usize::from(u16_at(b, at + I_NAME_LEN)?);
        let kind = b
            .get(at + I_KIND)
            .and_then(|&k| NodeKind::from_u8(k))
            .ok_or(TreeError::Corrupt("inode kind"))?;
        let source_tag = *b
            .get(at + I_SOURCE)
            .ok_or(TreeError::Corrupt("field out of range"))?;
        let mode = u32_at(b, at + I_MODE)?;
        let size = u64_at(b, at + I_SIZE)?;
        let offset = u64_at(b, at + I_OFFSET)?;
        let pack = u32_at(b, at + I_PACK)?;
        let nlink = u32_at(b, at + I_NLINK)?;
        if parent == 0 || parent > u64::from(self.inode_count) {
            return Err(TreeError::Corrupt("parent inode out of range"));
        }
        let name_end = name_off
            .checked_add(name_len)
            .filter(|&e| e <= self.names.1)
            .ok_or(TreeError::Corrupt("name out of range"))?;
        let name = &b[self.names.0 + name_off..self.names.0 + name_end];
        let mut first_child = 0;
        let source = match (kind, source_tag) {
            (NodeKind::Dir, SOURCE_NONE) => {
                offset
                    .checked_add(size)
                    .filter(|&e| e <= u64::from(self.child_count))
                    .ok_or(TreeError::Corrupt("children out of range"))?;
                first_child = offset;
                DataSource::None
            }
            (NodeKind::File | NodeKind::Symlink, SOURCE_PACK) => {
                if pack >= self.pack_count {
                    return Err(TreeError::Corrupt("pack index out of range"));
                }
                offset
                    .checked_add(size)
                    .ok_or(TreeError::Corrupt("pack data range"))?;
                DataSource::Pack { pack, offset }
            }
            (NodeKind::File | NodeKind::Symlink, SOURCE_INLINE) => {
                offset
                    .checked_add(size)
                    .filter(|&e| e <= self.inline.1 as u64)
                    .ok_or(TreeError::Corrupt("inline data out of range"))?;
                DataSource::Inline { offset }
            }
            _ => return Err(TreeError::Corrupt("inode data source")),
        };
        Ok(Node {
            ino,
            parent,
            name,
            kind,
            mode,
            size,
            nlink,
            source,
            first_child,
        })
    }

    /// The root directory (inode 1).
    pub fn root(&self) -> Result<Node<'_>, TreeError> {
        self.node(1)
    }

    /// The `index`-th child (in name order) of directory `dir`, or `None` past the end.
    pub fn child(&self, dir: &Node<'_>, index: u64) -> Result<Option<Node<'_>>, TreeError> {
        if dir.kind != NodeKind::Dir || index >= dir.size {
            return Ok(None);
        }
        let at = dir
            .first_child
            .checked_add(index)
            .filter(|&i| i < u64::from(self.child_count))
            .ok_or(TreeError::Corrupt("children out of range"))?;
        let ino = u32_at(
            self.bytes.as_ref(),
            self.children_off + at as usize * CHILD_LEN,
        )?;
        self.node(u64::from(ino)).map(Some)
    }

    /// Looks `name` up in directory `dir` by binary search over its sorted children:
    /// O(log children), no allocation. `None` when absent (or when `dir` is not a directory).
    pub fn lookup(&self, dir: &Node<'_>, name: &[u8]) -> Result<Option<Node<'_>>, TreeError> {
        if dir.kind != NodeKind::Dir {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0u64, dir.size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let child = self
                .child(dir, mid)?
                .ok_or(TreeError::Corrupt("children out of range"))?;
            match child.name.cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some(child)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// Follows a `/`-separated path from the root (no symlinks followed); `""` is the root.
    pub fn resolve(&self, path: &str) -> Result<Option<Node<'_>>, TreeError> {
        let mut node = self.root()?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match self.lookup(&node, part.as_bytes())? {
                Some(n) => node = n,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The bytes of an inline leaf (`None` for pack-backed leaves and directories).
    pub fn inline_data(&self, node: &Node<'_>) -> Result<Option<&[u8]>, TreeError> {
        let DataSource::Inline { offset } = node.source else {
            return Ok(None);
        };
        let start = to_usize(offset)?;
        let end = start
            .checked_add(to_usize(node.size)?)
            .filter(|&e| e <= self.inline.1)
            .ok_or(TreeError::Corrupt("inline data out of range"))?;
        Ok(Some(
            &self.bytes.as_ref()[self.inline.0 + start..self.inline.0 + end],
        ))
    }

    /// Checks the checksum, then every record: names valid, children sorted and pointing back
    /// at their parent, every inode but the root listed exactly once, children numbered after
    /// their parent (so the structure is a tree). O(inodes).
    pub fn verify(&self) -> Result<(), TreeError> {
        let b = self.bytes.as_ref();
        if checksum(b)[..] != b[H_CHECKSUM..H_CHECKSUM + 32] {
            return Err(TreeError::ChecksumMismatch);
        }
        let root = self.root()?;
        if root.kind != NodeKind::Dir || root.parent != 1 || !root.name.is_empty() {
            return Err(TreeError::Corrupt("root is not a nameless directory"));
        }
        let mut seen = vec![false; self.inode_count as usize + 1];
        let mut listed = 0u64;
        for ino in 1..=u64::from(self.inode_count) {
            let node = self.node(ino)?;
            if ino != 1 && !valid_name(node.name) {
                return Err(TreeError::Corrupt("invalid entry name"));
            }
            if node.kind != NodeKind::Dir {
                if node.nlink != 1 {
                    return Err(TreeError::Corrupt("leaf link count"));
                }
                continue;
            }
            let mut prev: Option<&[u8]> = None;
            let mut subdirs = 0u32;
            for i in 0..node.size {
                let child = self
                    .child(&node, i)?
                    .ok_or(TreeError::Corrupt("children out of range"))?;
                if child.parent != ino || child.ino <= ino {
                    return Err(TreeError::Corrupt(
                        "child does not point back at its parent",
                    ));
                }
                if prev.is_some_and(|p| p >= child.name) {
                    return Err(TreeError::Corrupt("children not sorted"));
                }
                let slot = &mut seen[child.ino as usize];
                if std::mem::replace(slot, true) {
                    return Err(TreeError::Corrupt("inode listed twice"));
                }
                subdirs += u32::from(child.kind == NodeKind::Dir);
                prev = Some(child.name);
                listed += 1;
            }
            if node.nlink != subdirs.saturating_add(2) {
                return Err(TreeError::Corrupt("directory link count"));
            }
        }
        if listed != u64::from(self.child_count) {
            return Err(TreeError::Corrupt("some inodes are in no directory"));
        }
        Ok(())
    }
}
