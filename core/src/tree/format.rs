//! Constants and field offsets shared by the `.dxtree` builder and reader.
//!
//! Every integer is little-endian and read through a checked slice, so records need no alignment.
//! `docs/formats/dxtree.md` describes the layout and the reasons behind it.

/// Magic bytes; `\r\n` catches text-mode mangling, the NUL stops tools treating it as text.
pub(crate) const MAGIC: [u8; 8] = *b"DXTRE\0\r\n";
/// The only format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 128;
pub(crate) const PACK_LEN: usize = 40;
pub(crate) const INODE_LEN: usize = 40;
pub(crate) const CHILD_LEN: usize = 4;

// Header field offsets.
pub(crate) const H_VERSION: usize = 8; // u32
pub(crate) const H_FLAGS: usize = 12; // u32, incompatible-feature flags; must be 0
pub(crate) const H_INODE_COUNT: usize = 16; // u32, >= 1 (the root)
pub(crate) const H_PACK_COUNT: usize = 20; // u32
pub(crate) const H_CHILD_COUNT: usize = 24; // u32, = inode count - 1
// 28..32 reserved, zero.
pub(crate) const H_MTIME: usize = 32; // i64, seconds since the epoch, every inode
pub(crate) const H_PACKS_OFF: usize = 40; // u64
pub(crate) const H_INODES_OFF: usize = 48; // u64
pub(crate) const H_CHILDREN_OFF: usize = 56; // u64
pub(crate) const H_NAMES_OFF: usize = 64; // u64
pub(crate) const H_NAMES_LEN: usize = 72; // u64
pub(crate) const H_INLINE_OFF: usize = 80; // u64
pub(crate) const H_INLINE_LEN: usize = 88; // u64
pub(crate) const H_CHECKSUM: usize = 96; // [u8; 32], blake3 of the file with this field zeroed

// Pack record: the store object a file's bytes come from.
pub(crate) const P_HASH: usize = 0; // [u8; 32], blake3 = store name
pub(crate) const P_SIZE: usize = 32; // u64, the object's length in bytes

// Inode record, at `inodes_off + (ino - 1) * INODE_LEN`.
pub(crate) const I_PARENT: usize = 0; // u32, parent inode (the root is its own parent)
pub(crate) const I_NAME_OFF: usize = 4; // u32, into the names section
pub(crate) const I_NAME_LEN: usize = 8; // u16
pub(crate) const I_KIND: usize = 10; // u8, NodeKind
pub(crate) const I_SOURCE: usize = 11; // u8, SOURCE_*
pub(crate) const I_MODE: usize = 12; // u32, permission bits
pub(crate) const I_SIZE: usize = 16; // u64, bytes (file, symlink target) or child count (dir)
pub(crate) const I_OFFSET: usize = 24; // u64, see SOURCE_*; dir: first index in the children table
pub(crate) const I_PACK: usize = 32; // u32, pack index for SOURCE_PACK, else 0
pub(crate) const I_NLINK: usize = 36; // u32, 1 for leaves, 2 + subdirectories for dirs

/// No data (directories).
pub(crate) const SOURCE_NONE: u8 = 0;
/// Bytes at `offset` (absolute, in the object file) of pack `pack`.
pub(crate) const SOURCE_PACK: u8 = 1;
/// Bytes at `offset` of the inline section.
pub(crate) const SOURCE_INLINE: u8 = 2;

/// The mtime, atime and ctime of every inode: 2020-01-01T00:00:00Z. Imports read
/// unchecked-hash bytecode, so only stability matters.
pub const FIXED_MTIME: i64 = 1_577_836_800;

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeKind {
    /// A directory; its children are sorted by name.
    Dir = 1,
    /// A regular file.
    File = 2,
    /// A symbolic link; its data is the target.
    Symlink = 3,
}

impl NodeKind {
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Dir),
            2 => Some(Self::File),
            3 => Some(Self::Symlink),
            _ => None,
        }
    }
}

/// True when `name` can be one directory entry: not empty, not `.`/`..`, no `/` or NUL.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}
