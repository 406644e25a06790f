//! Constants and field offsets shared by the `.dxpkg` writer and reader.

/// Magic bytes; the `\r\n` catches text-mode mangling, the NUL stops `file`/editors treating it as text.
pub(crate) const MAGIC: [u8; 8] = *b"DXPKG\0\r\n";
/// The only format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 64;
pub(crate) const ENTRY_LEN: usize = 32;
pub(crate) const DATA_ALIGN: usize = 8;

// Header field offsets (all integers little-endian).
pub(crate) const H_VERSION: usize = 8; // u32
pub(crate) const H_FLAGS: usize = 12; // u32, incompatible-feature flags; must be 0
pub(crate) const H_ENTRY_COUNT: usize = 16; // u32
pub(crate) const H_BUCKET_COUNT: usize = 20; // u32, power of two, > entry count
pub(crate) const H_STRINGS_OFF: usize = 24; // u64
pub(crate) const H_STRINGS_LEN: usize = 32; // u64
pub(crate) const H_DATA_OFF: usize = 40; // u64
pub(crate) const H_DATA_LEN: usize = 48; // u64
pub(crate) const H_NAME_LEN: usize = 56; // u16, name starts at strings[0]
pub(crate) const H_VERSION_LEN: usize = 58; // u16, follows the name
pub(crate) const H_DIST_INFO_LEN: usize = 60; // u16, follows the version
// 62..64 reserved, zero.

// Entry field offsets.
pub(crate) const E_PATH_HASH: usize = 0; // u32, low half of the FNV-1a key hash
pub(crate) const E_PATH_OFF: usize = 4; // u32, into strings
pub(crate) const E_PATH_LEN: usize = 8; // u16
pub(crate) const E_KIND: usize = 10; // u8, EntryKind
pub(crate) const E_SCHEME: usize = 11; // u8, Scheme
pub(crate) const E_MODE: usize = 12; // u32, permission bits
pub(crate) const E_DATA_OFF: usize = 16; // u64, relative to the data section
pub(crate) const E_DATA_LEN: usize = 24; // u64

/// Where a file goes when the package is installed (the wheel's install schemes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Scheme {
    /// `site-packages` (purelib and platlib are the same directory in a venv).
    SitePackages = 0,
    /// `bin/` (`Scripts\` on Windows): `.data/scripts`.
    Scripts = 1,
    /// `include/site/pythonX.Y/<name>/`: `.data/headers`.
    Headers = 2,
    /// The venv root: `.data/data`.
    Data = 3,
}

impl Scheme {
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::SitePackages,
            1 => Self::Scripts,
            2 => Self::Headers,
            3 => Self::Data,
            _ => return None,
        })
    }
}

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A regular file; data is its bytes.
    File = 0,
    /// A symbolic link staying inside the package; data is the relative target.
    Symlink = 1,
}

impl EntryKind {
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::File),
            1 => Some(Self::Symlink),
            _ => None,
        }
    }
}

/// FNV-1a over the scheme byte and the path: tiny, stable across platforms and releases.
pub(crate) fn key_hash(scheme: Scheme, path: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&(scheme as u8)).chain(path) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Bucket count for `n` entries: a power of two with load factor at most 1/2.
pub(crate) fn bucket_count(n: usize) -> usize {
    (n * 2).max(2).next_power_of_two()
}

/// The data section's offset and the package's length, as the header at the start of `bytes`
/// gives them (unchecked: the reader checks them); `None` until the header is whole.
pub(crate) fn data_extent(bytes: &[u8]) -> Option<(u64, u64)> {
    let field = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let (off, len) = (field(H_DATA_OFF)?, field(H_DATA_LEN)?);
    Some((off, off.checked_add(len)?))
}
