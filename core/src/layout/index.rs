//! DXLC: the layout index, an open-addressing hash table from project hash to layout, read in
//! place from a memory-mapped file.
//!
//! ```text
//! offset 0    header (64 bytes)             magic `DXLC`, version, capacity, count, checksum
//!        64   slots (128 bytes × capacity)  linear probing from the project hash's first 8 bytes
//! ```
//!
//! The file is never modified in place: a writer encodes a whole new table with [`encode_index`]
//! and renames it over the old one, so a reader's map is always one complete table. The byte
//! layout and the reasons behind it are in `docs/formats/dxlc.md`.
use std::collections::HashSet;

use super::project_hash::ProjectHash;
use crate::format::bytes::{put_u16, put_u32, put_u64, rec_u16, rec_u32, rec_u64};
use crate::store::LinkMode;

/// Magic bytes at offset 0.
pub const MAGIC: [u8; 4] = *b"DXLC";
/// The only format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 64;
/// Slot size in bytes.
pub const ENTRY_LEN: usize = 128;
/// Smallest table: 16 slots, 2 KiB.
pub const MIN_CAPACITY: u32 = 16;
/// Longest interpreter tag kept in an entry; longer tags are cut (the tag there is informational,
/// the project hash already covers the full tag).
pub const MAX_TAG_LEN: usize = 40;

// Header fields (integers little-endian).
const H_VERSION: usize = 4; // u32
const H_FLAGS: usize = 8; // u32, incompatible features; must be 0
const H_ENTRY_LEN: usize = 12; // u32, = ENTRY_LEN
const H_CAPACITY: usize = 16; // u32, power of two >= MIN_CAPACITY
const H_COUNT: usize = 20; // u32, occupied slots, <= capacity / 2
const H_GENERATION: usize = 24; // u64, +1 per publish
const H_WRITTEN_AT: usize = 32; // u64, unix seconds
// 40..56 reserved, zero.
const H_CHECKSUM: usize = 56; // u64 over bytes 0..56

// Slot fields.
const E_HASH: usize = 0; // [u8; 32]
const E_CREATED: usize = 32; // u64, unix seconds
const E_USED: usize = 40; // u64, unix seconds
const E_BYTES: usize = 48; // u64, bytes of the layout's files
const E_PACKAGES: usize = 56; // u32
const E_FILES: usize = 60; // u32
const E_FLAGS: usize = 64; // u16, FLAG_*; 0 = empty slot
const E_LINK_MODE: usize = 66; // u8, 0 hardlink, 1 symlink, 2 copy
const E_PY_MAJOR: usize = 67; // u8
const E_PY_MINOR: usize = 68; // u8
const E_TAG_LEN: usize = 69; // u8, <= MAX_TAG_LEN
// 70..72 reserved, zero.
const E_TAG: usize = 72; // [u8; 40], UTF-8, zero-padded
// 112..120 reserved, zero.
const E_CHECKSUM: usize = 120; // u64 over bytes 0..120

/// Slot flag: the slot holds an entry.
const FLAG_OCCUPIED: u16 = 1;

/// A layout index that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    /// Shorter than a header.
    #[error("Layout index is truncated: expected at least {expected} bytes, got {got}")]
    Truncated {
        /// Minimum length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// Wrong magic bytes.
    #[error("Not a layout index: expected magic `DXLC`, got {got:?}")]
    BadMagic {
        /// The first four bytes.
        got: [u8; 4],
    },
    /// A version this build does not read.
    #[error("Unsupported layout index version {got}: expected {VERSION}")]
    UnsupportedVersion {
        /// The file's version.
        got: u32,
    },
    /// Incompatible feature flags this build does not know.
    #[error("Layout index uses unknown feature flags {got:#x}: expected 0")]
    UnknownFlags {
        /// The flags.
        got: u32,
    },
    /// A slot size other than [`ENTRY_LEN`].
    #[error("Layout index slot size is {got} bytes: expected {ENTRY_LEN}")]
    EntryLen {
        /// The declared size.
        got: u32,
    },
    /// A capacity that is not a power of two of at least [`MIN_CAPACITY`].
    #[error(
        "Layout index capacity {got} is invalid: expected a power of two of at least {MIN_CAPACITY}"
    )]
    Capacity {
        /// The declared capacity.
        got: u32,
    },
    /// The file length does not match the capacity.
    #[error("Layout index is {got} bytes long: expected {expected} for its capacity")]
    Length {
        /// 64 + 128 × capacity.
        expected: u64,
        /// Actual length.
        got: u64,
    },
    /// More entries than half the slots (or than the table can hold).
    #[error("Layout index claims {count} entries in {capacity} slots: expected at most half full")]
    Overfull {
        /// Declared entries.
        count: u32,
        /// Declared capacity.
        capacity: u32,
    },
    /// The header's checksum does not match its bytes.
    #[error("Layout index header checksum mismatch: expected {expected:#018x}, got {got:#018x}")]
    HeaderChecksum {
        /// Computed from the header bytes.
        expected: u64,
        /// Stored in the header.
        got: u64,
    },
    /// A slot's checksum does not match its bytes.
    #[error(
        "Layout index slot {slot} is corrupt: checksum expected {expected:#018x}, got {got:#018x}"
    )]
    EntryChecksum {
        /// Slot number.
        slot: usize,
        /// Computed from the slot bytes.
        expected: u64,
        /// Stored in the slot.
        got: u64,
    },
    /// A slot field outside its range (checksum fine: written by a newer or buggy writer).
    #[error("Layout index slot {slot} has an invalid {field}: got {got}")]
    EntryField {
        /// Slot number.
        slot: usize,
        /// Field name.
        field: &'static str,
        /// Its value.
        got: u64,
    },
    /// An empty slot with non-zero bytes.
    #[error("Layout index slot {slot} is marked empty but is not zeroed")]
    DirtyEmptySlot {
        /// Slot number.
        slot: usize,
    },
    /// An entry a lookup could not reach (an empty slot lies between its home slot and it).
    #[error("Layout index slot {slot} holds `{hash}` outside its probe chain")]
    Unreachable {
        /// Slot number.
        slot: usize,
        /// The entry's project hash.
        hash: ProjectHash,
    },
    /// The same project hash in two slots.
    #[error("Layout index holds `{0}` more than once")]
    Duplicate(ProjectHash),
    /// The header count disagrees with the occupied slots.
    #[error("Layout index header counts {expected} entries, but {got} slots are occupied")]
    Count {
        /// Header count.
        expected: u32,
        /// Occupied slots.
        got: u32,
    },
    /// More entries than the format's u32 counters allow.
    #[error("Too many layouts for one index: {0}")]
    TooMany(usize),
}

/// The decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutIndexHeader {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Number of slots, a power of two.
    pub capacity: u32,
    /// Number of occupied slots.
    pub count: u32,
    /// Incremented by every publish; tells readers apart two tables with the same entries.
    pub generation: u64,
    /// When the table was written, unix seconds.
    pub written_at: u64,
    /// The stored header checksum.
    pub checksum: u64,
}

/// One layout as the index records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    /// The key; the layout lives at `{layouts}/{project_hash hex}/`.
    pub project_hash: ProjectHash,
    /// When the layout was built, unix seconds.
    pub created: u64,
    /// When the entry was last written, unix seconds (a hit refreshes the layout manifest's
    /// mtime instead, see `docs/formats/dxlc.md`).
    pub used: u64,
    /// Total bytes of the layout's files (shared with the store when linked).
    pub total_bytes: u64,
    /// Number of packages in the set.
    pub package_count: u32,
    /// Number of files (and in-package symlinks) in the layout.
    pub file_count: u32,
    /// The weakest way files were placed: any copy makes it `Copy`, else any symlink `Symlink`.
    pub link_mode: LinkMode,
    /// The interpreter's `(major, minor)`: the venv gets `lib/pythonX.Y/site-packages`.
    pub python_version: (u8, u8),
    tag: [u8; MAX_TAG_LEN],
    tag_len: u8,
}

impl LayoutEntry {
    /// An entry with zero counts and times; `interpreter_tag` is cut to [`MAX_TAG_LEN`] bytes.
    pub fn new(project_hash: ProjectHash, interpreter_tag: &str, python_version: (u8, u8)) -> Self {
        let mut end = interpreter_tag.len().min(MAX_TAG_LEN);
        while !interpreter_tag.is_char_boundary(end) {
            end -= 1;
        }
        let mut tag = [0u8; MAX_TAG_LEN];
        tag[..end].copy_from_slice(&interpreter_tag.as_bytes()[..end]);
        Self {
            project_hash,
            created: 0,
            used: 0,
            total_bytes: 0,
            package_count: 0,
            file_count: 0,
            link_mode: LinkMode::Hardlink,
            python_version,
            tag,
            tag_len: end as u8,
        }
    }

    /// The interpreter tag the layout was built for (at most [`MAX_TAG_LEN`] bytes; empty if a
    /// writer stored invalid UTF-8).
    pub fn interpreter_tag(&self) -> &str {
        std::str::from_utf8(&self.tag[..usize::from(self.tag_len)]).unwrap_or("")
    }

    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[E_HASH..E_HASH + 32].copy_from_slice(self.project_hash.as_bytes());
        put_u64(&mut b, E_CREATED, self.created);
        put_u64(&mut b, E_USED, self.used);
        put_u64(&mut b, E_BYTES, self.total_bytes);
        put_u32(&mut b, E_PACKAGES, self.package_count);
        put_u32(&mut b, E_FILES, self.file_count);
        put_u16(&mut b, E_FLAGS, FLAG_OCCUPIED);
        b[E_LINK_MODE] = link_mode_to_u8(self.link_mode);
        b[E_PY_MAJOR] = self.python_version.0;
        b[E_PY_MINOR] = self.python_version.1;
        b[E_TAG_LEN] = self.tag_len;
        b[E_TAG..E_TAG + MAX_TAG_LEN].copy_from_slice(&self.tag);
        let sum = checksum(&b[..E_CHECKSUM]);
        put_u64(&mut b, E_CHECKSUM, sum);
        b
    }

    /// Decodes an occupied slot, checksum first.
    fn decode(slot: usize, b: &[u8; ENTRY_LEN]) -> Result<Self, IndexError> {
        let expected = checksum(&b[..E_CHECKSUM]);
        let got = rec_u64(b, E_CHECKSUM);
        if expected != got {
            return Err(IndexError::EntryChecksum {
                slot,
                expected,
                got,
            });
        }
        let field = |field, got: u64| IndexError::EntryField { slot, field, got };
        let flags = rec_u16(b, E_FLAGS);
        if flags != FLAG_OCCUPIED {
            return Err(field("flags", u64::from(flags)));
        }
        let link_mode = link_mode_from_u8(b[E_LINK_MODE])
            .ok_or_else(|| field("link mode", u64::from(b[E_LINK_MODE])))?;
        let tag_len = b[E_TAG_LEN];
        let mut tag = [0u8; MAX_TAG_LEN];
        tag.copy_from_slice(&b[E_TAG..E_TAG + MAX_TAG_LEN]);
        // The tag's UTF-8 is checked when it is read (`interpreter_tag`), not on every lookup.
        if usize::from(tag_len) > MAX_TAG_LEN {
            return Err(field("interpreter tag length", u64::from(tag_len)));
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[E_HASH..E_HASH + 32]);
        Ok(Self {
            project_hash: ProjectHash::from_bytes(hash),
            created: rec_u64(b, E_CREATED),
            used: rec_u64(b, E_USED),
            total_bytes: rec_u64(b, E_BYTES),
            package_count: rec_u32(b, E_PACKAGES),
            file_count: rec_u32(b, E_FILES),
            link_mode,
            python_version: (b[E_PY_MAJOR], b[E_PY_MINOR]),
            tag,
            tag_len,
        })
    }
}

pub(crate) fn link_mode_to_u8(mode: LinkMode) -> u8 {
    match mode {
        LinkMode::Hardlink => 0,
        LinkMode::Symlink => 1,
        LinkMode::Copy => 2,
    }
}

pub(crate) fn link_mode_from_u8(b: u8) -> Option<LinkMode> {
    match b {
        0 => Some(LinkMode::Hardlink),
        1 => Some(LinkMode::Symlink),
        2 => Some(LinkMode::Copy),
        _ => None,
    }
}

/// The header and slot checksum (see `docs/formats/dxlc.md`).
pub(crate) use crate::format::checksum::two_lane as checksum;

/// A layout index read in place from its bytes (a mapped `index.dxlc`).
///
/// [`LayoutIndex::new`] checks the header in O(1); slots are checked when a lookup reads them,
/// and all of them by [`LayoutIndex::verify`].
pub struct LayoutIndex<B> {
    bytes: B,
    header: LayoutIndexHeader,
}

impl<B> std::fmt::Debug for LayoutIndex<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayoutIndex")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<B: AsRef<[u8]>> LayoutIndex<B> {
    /// Checks the header (magic, version, flags, sizes, checksum) and the file length.
    pub fn new(bytes: B) -> Result<Self, IndexError> {
        let b = bytes.as_ref();
        let head: &[u8; HEADER_LEN] =
            b.get(..HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or(IndexError::Truncated {
                    expected: HEADER_LEN,
                    got: b.len(),
                })?;
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&head[..4]);
        if magic != MAGIC {
            return Err(IndexError::BadMagic { got: magic });
        }
        let version = rec_u32(head, H_VERSION);
        if version != VERSION {
            return Err(IndexError::UnsupportedVersion { got: version });
        }
        let stored = rec_u64(head, H_CHECKSUM);
        let computed = checksum(&head[..H_CHECKSUM]);
        if stored != computed {
            return Err(IndexError::HeaderChecksum {
                expected: computed,
                got: stored,
            });
        }
        let flags = rec_u32(head, H_FLAGS);
        if flags != 0 {
            return Err(IndexError::UnknownFlags { got: flags });
        }
        let entry_len = rec_u32(head, H_ENTRY_LEN);
        if entry_len as usize != ENTRY_LEN {
            return Err(IndexError::EntryLen { got: entry_len });
        }
        let capacity = rec_u32(head, H_CAPACITY);
        if !capacity.is_power_of_two() || capacity < MIN_CAPACITY {
            return Err(IndexError::Capacity { got: capacity });
        }
        let expected = HEADER_LEN as u64 + u64::from(capacity) * ENTRY_LEN as u64;
        if b.len() as u64 != expected {
            return Err(IndexError::Length {
                expected,
                got: b.len() as u64,
            });
        }
        let count = rec_u32(head, H_COUNT);
        if u64::from(count) * 2 > u64::from(capacity) {
            return Err(IndexError::Overfull { count, capacity });
        }
        let header = LayoutIndexHeader {
            version,
            capacity,
            count,
            generation: rec_u64(head, H_GENERATION),
            written_at: rec_u64(head, H_WRITTEN_AT),
            checksum: stored,
        };
        Ok(Self { bytes, header })
    }

    /// The decoded header.
    pub fn header(&self) -> &LayoutIndexHeader {
        &self.header
    }

    /// Number of entries (from the header).
    pub fn len(&self) -> usize {
        self.header.count as usize
    }

    /// True when the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    fn slot(&self, i: usize) -> Option<&[u8; ENTRY_LEN]> {
        let start = HEADER_LEN.checked_add(i.checked_mul(ENTRY_LEN)?)?;
        self.bytes
            .as_ref()
            .get(start..start.checked_add(ENTRY_LEN)?)?
            .try_into()
            .ok()
    }

    /// Looks up `hash` in O(1) expected time.
    ///
    /// `Ok(None)` when absent; an error when the matching slot fails its checksum or holds an
    /// invalid field. Damage elsewhere on the probe chain can only turn a hit into a miss (a
    /// damaged key no longer matches, a cleared flag ends the chain early), never into a wrong
    /// answer, so callers treat every error and miss alike: build or rebuild the layout.
    pub fn get(&self, hash: &ProjectHash) -> Result<Option<LayoutEntry>, IndexError> {
        let cap = self.header.capacity as usize;
        let mask = cap - 1;
        let mut i = (hash.slot_seed() as usize) & mask;
        for _ in 0..cap {
            let Some(slot) = self.slot(i) else {
                return Ok(None);
            };
            if rec_u16(slot, E_FLAGS) == 0 {
                return Ok(None);
            }
            if slot[E_HASH..E_HASH + 32] == hash.as_bytes()[..] {
                return LayoutEntry::decode(i, slot).map(Some);
            }
            i = (i + 1) & mask;
        }
        Ok(None)
    }

    /// Every occupied slot, in slot order, each decoded and checked.
    pub fn entries(&self) -> impl Iterator<Item = Result<LayoutEntry, IndexError>> + '_ {
        (0..self.header.capacity as usize).filter_map(move |i| {
            let slot = self.slot(i)?;
            if slot.iter().all(|&b| b == 0) {
                return None;
            }
            if rec_u16(slot, E_FLAGS) == 0 {
                return Some(Err(IndexError::DirtyEmptySlot { slot: i }));
            }
            Some(LayoutEntry::decode(i, slot))
        })
    }

    /// Full check, O(capacity): every slot's checksum and fields, empty slots zeroed, the count,
    /// no duplicates, and every entry reachable from its home slot.
    pub fn verify(&self) -> Result<(), IndexError> {
        let cap = self.header.capacity as usize;
        let mask = cap - 1;
        let mut seen = HashSet::new();
        let mut occupied = 0u32;
        for i in 0..cap {
            let slot = self.slot(i).ok_or(IndexError::Length {
                expected: (HEADER_LEN + cap * ENTRY_LEN) as u64,
                got: self.bytes.as_ref().len() as u64,
            })?;
            if rec_u16(slot, E_FLAGS) == 0 {
                if slot.iter().any(|&b| b != 0) {
                    return Err(IndexError::DirtyEmptySlot { slot: i });
                }
                continue;
            }
            let entry = LayoutEntry::decode(i, slot)?;
            occupied += 1;
            if !seen.insert(entry.project_hash) {
                return Err(IndexError::Duplicate(entry.project_hash));
            }
            let mut j = (entry.project_hash.slot_seed() as usize) & mask;
            while j != i {
                let on_chain = self.slot(j).is_some_and(|s| rec_u16(s, E_FLAGS) != 0);
                if !on_chain {
                    return Err(IndexError::Unreachable {
                        slot: i,
                        hash: entry.project_hash,
                    });
                }
                j = (j + 1) & mask;
            }
        }
        if occupied != self.header.count {
            return Err(IndexError::Count {
                expected: self.header.count,
                got: occupied,
            });
        }
        Ok(())
    }
}

/// The capacity a table of `count` entries gets: a power of two, at most half full.
pub fn capacity_for(count: usize) -> Result<u32, IndexError> {
    let cap = count
        .checked_mul(2)
        .map(|c| c.max(MIN_CAPACITY as usize).next_power_of_two())
        .filter(|&c| c <= 1 << 31)
        .ok_or(IndexError::TooMany(count))?;
    Ok(cap as u32)
}

/// Encodes a complete index holding `entries` (distinct project hashes), in a table of at least
/// `min_capacity` slots; the table doubles as needed to stay at most half full.
pub fn encode_index(
    entries: &[LayoutEntry],
    min_capacity: u32,
    generation: u64,
    written_at: u64,
) -> Result<Vec<u8>, IndexError> {
    let capacity = capacity_for(entries.len())?.max(
        min_capacity
            .max(MIN_CAPACITY)
            .checked_next_power_of_two()
            .ok_or(IndexError::TooMany(entries.len()))?,
    );
    let cap = capacity as usize;
    let mut out = vec![0u8; HEADER_LEN + cap * ENTRY_LEN];
    let mask = cap - 1;
    let mut seen = HashSet::with_capacity(entries.len());
    for e in entries {
        if !seen.insert(e.project_hash) {
            return Err(IndexError::Duplicate(e.project_hash));
        }
        let mut i = (e.project_hash.slot_seed() as usize) & mask;
        // At most half full, so an empty slot is always found.
        while out[HEADER_LEN + i * ENTRY_LEN + E_FLAGS] != 0 {
            i = (i + 1) & mask;
        }
        let at = HEADER_LEN + i * ENTRY_LEN;
        out[at..at + ENTRY_LEN].copy_from_slice(&e.encode());
    }
    let head = &mut out[..HEADER_LEN];
    head[..4].copy_from_slice(&MAGIC);
    put_u32(head, H_VERSION, VERSION);
    put_u32(head, H_ENTRY_LEN, ENTRY_LEN as u32);
    put_u32(head, H_CAPACITY, capacity);
    put_u32(head, H_COUNT, entries.len() as u32);
    put_u64(head, H_GENERATION, generation);
    put_u64(head, H_WRITTEN_AT, written_at);
    let sum = checksum(&head[..H_CHECKSUM]);
    put_u64(head, H_CHECKSUM, sum);
    Ok(out)
}

/// Recomputes, in place, the header checksum and the checksum of every slot whose flags are set
/// in DXLC bytes that were edited byte by byte: what someone crafting a file would do. For
/// fuzzing and tests of the reader's handling of crafted files only.
#[doc(hidden)]
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let (head, slots) = bytes.split_at_mut(HEADER_LEN);
    let sum = checksum(&head[..H_CHECKSUM]);
    put_u64(head, H_CHECKSUM, sum);
    for slot in slots.chunks_exact_mut(ENTRY_LEN) {
        if slot[E_FLAGS..E_FLAGS + 2] != [0, 0] {
            let sum = checksum(&slot[..E_CHECKSUM]);
            put_u64(slot, E_CHECKSUM, sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn entry(seed: [u8; 32], n: u32) -> LayoutEntry {
        let mut e = LayoutEntry::new(ProjectHash::from_bytes(seed), "cp311-linux_x86_64", (3, 11));
        e.created = u64::from(n) * 3;
        e.used = u64::from(n) * 5;
        e.total_bytes = u64::from(n) * 1000;
        e.package_count = n;
        e.file_count = n.wrapping_mul(7);
        e.link_mode = link_mode_from_u8((n % 3) as u8).unwrap();
        e
    }

    fn arb_entries() -> impl Strategy<Value = BTreeMap<[u8; 32], u32>> {
        btree_map(any::<[u8; 32]>(), any::<u32>(), 0..64)
    }

    fn build(map: &BTreeMap<[u8; 32], u32>) -> (Vec<LayoutEntry>, Vec<u8>) {
        let entries: Vec<_> = map.iter().map(|(k, v)| entry(*k, *v)).collect();
        let bytes = encode_index(&entries, 0, 9, 1234).unwrap();
        (entries, bytes)
    }

    #[test]
    fn header_fixture() {
        let bytes = encode_index(&[], 0, 7, 42).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 16 * ENTRY_LEN);
        assert_eq!(&bytes[0..4], b"DXLC"); // magic
        assert_eq!(&bytes[4..8], &[1, 0, 0, 0]); // version 1
        assert_eq!(&bytes[8..12], &[0, 0, 0, 0]); // no feature flags
        assert_eq!(&bytes[12..16], &[128, 0, 0, 0]); // slot size
        assert_eq!(&bytes[16..20], &[16, 0, 0, 0]); // capacity
        assert_eq!(&bytes[20..24], &[0, 0, 0, 0]); // count
        assert_eq!(&bytes[24..32], &[7, 0, 0, 0, 0, 0, 0, 0]); // generation
        assert_eq!(&bytes[32..40], &[42, 0, 0, 0, 0, 0, 0, 0]); // written at
        assert!(bytes[40..56].iter().all(|&b| b == 0)); // reserved
        let ix = LayoutIndex::new(&bytes[..]).unwrap();
        assert_eq!(ix.header().generation, 7);
        assert!(ix.is_empty());
        ix.verify().unwrap();
    }

    #[test]
    fn each_rejection_is_typed() {
        let good = encode_index(&[entry([1; 32], 1)], 0, 1, 1).unwrap();
        let reseal = |mut b: Vec<u8>| {
            let sum = checksum(&b[..H_CHECKSUM]);
            put_u64(&mut b, H_CHECKSUM, sum);
            b
        };
        let with = |at: usize, val: &[u8]| {
            let mut b = good.clone();
            b[at..at + val.len()].copy_from_slice(val);
            reseal(b)
        };
        let err = |b: &[u8]| LayoutIndex::new(b).unwrap_err();
        assert_eq!(
            err(&good[..10]),
            IndexError::Truncated {
                expected: 64,
                got: 10
            }
        );
        assert_eq!(
            err(&with(0, b"DXLX")),
            IndexError::BadMagic { got: *b"DXLX" }
        );
        assert_eq!(
            err(&with(H_VERSION, &2u32.to_le_bytes())),
            IndexError::UnsupportedVersion { got: 2 }
        );
        assert_eq!(
            err(&with(H_VERSION, &0u32.to_le_bytes())),
            IndexError::UnsupportedVersion { got: 0 }
        );
        assert_eq!(
            err(&with(H_FLAGS, &4u32.to_le_bytes())),
            IndexError::UnknownFlags { got: 4 }
        );
        assert_eq!(
            err(&with(H_ENTRY_LEN, &64u32.to_le_bytes())),
            IndexError::EntryLen { got: 64 }
        );
        assert_eq!(
            err(&with(H_CAPACITY, &24u32.to_le_bytes())),
            IndexError::Capacity { got: 24 }
        );
        assert_eq!(
            err(&with(H_CAPACITY, &32u32.to_le_bytes())),
            IndexError::Length {
                expected: 64 + 32 * 128,
                got: good.len() as u64
            }
        );
        assert_eq!(
            err(&with(H_COUNT, &9u32.to_le_bytes())),
            IndexError::Overfull {
                count: 9,
                capacity: 16
            }
        );
        let mut flipped = good.clone();
        flipped[H_GENERATION] ^= 1;
        assert!(matches!(err(&flipped), IndexError::HeaderChecksum { .. }));
        assert!(matches!(
            err(&good[..good.len() - 1]),
            IndexError::Length { .. }
        ));
        // Count disagreeing with the slots is caught by verify.
        let ix_bytes = with(H_COUNT, &2u32.to_le_bytes());
        let ix = LayoutIndex::new(&ix_bytes[..]).unwrap();
        assert_eq!(
            ix.verify().unwrap_err(),
            IndexError::Count {
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn a_valid_checksum_with_a_bad_field_is_refused() {
        let e = entry([3; 32], 1);
        let mut bytes = encode_index(&[e], 0, 1, 1).unwrap();
        let ix = LayoutIndex::new(&bytes[..]).unwrap();
        let slot = (0..16)
            .find(|&i| ix.slot(i).unwrap()[E_FLAGS] != 0)
            .unwrap();
        let at = HEADER_LEN + slot * ENTRY_LEN;
        bytes[at + E_LINK_MODE] = 9;
        let sum = checksum(&bytes[at..at + E_CHECKSUM]);
        bytes[at + E_CHECKSUM..at + ENTRY_LEN].copy_from_slice(&sum.to_le_bytes());
        let ix = LayoutIndex::new(&bytes[..]).unwrap();
        assert_eq!(
            ix.get(&e.project_hash).unwrap_err(),
            IndexError::EntryField {
                slot,
                field: "link mode",
                got: 9
            }
        );
    }

    #[test]
    fn reseal_makes_edits_pass_every_checksum() {
        let e = entry([3; 32], 1);
        let mut bytes = encode_index(&[e], 0, 1, 1).unwrap();
        let slot = (0..16)
            .find(|&i| bytes[HEADER_LEN + i * ENTRY_LEN + E_FLAGS] != 0)
            .unwrap();
        let at = HEADER_LEN + slot * ENTRY_LEN;
        bytes[H_GENERATION] = 9;
        bytes[at + E_FILES] = 77;
        reseal(&mut bytes);
        let ix = LayoutIndex::new(&bytes[..]).unwrap();
        assert_eq!(ix.header().generation, 9);
        assert_eq!(ix.get(&e.project_hash).unwrap().unwrap().file_count, 77);
        ix.verify().unwrap();
        // Too short for a header: left alone.
        let mut short = bytes[..10].to_vec();
        reseal(&mut short);
        assert_eq!(short, bytes[..10]);
    }

    #[test]
    fn long_tags_are_cut_at_a_char_boundary() {
        let tag = format!("{}é", "x".repeat(39));
        let e = LayoutEntry::new(ProjectHash::from_bytes([0; 32]), &tag, (3, 12));
        assert_eq!(e.interpreter_tag(), "x".repeat(39));
    }

    #[test]
    fn the_table_grows_and_honours_min_capacity() {
        let entries: Vec<_> = (0..9u8).map(|i| entry([i; 32], 1)).collect();
        let ix_bytes = encode_index(&entries, 0, 1, 1).unwrap();
        assert_eq!(
            LayoutIndex::new(&ix_bytes[..]).unwrap().header().capacity,
            32
        );
        let ix_bytes = encode_index(&entries[..2], 100, 1, 1).unwrap();
        assert_eq!(
            LayoutIndex::new(&ix_bytes[..]).unwrap().header().capacity,
            128
        );
        assert_eq!(
            encode_index(&[entries[0], entries[0]], 0, 1, 1).unwrap_err(),
            IndexError::Duplicate(entries[0].project_hash)
        );
    }

    #[test]
    fn single_word_damage_always_changes_the_checksum() {
        let base: Vec<u8> = (0..120u8).collect();
        let sum = checksum(&base);
        for word in 0..15 {
            for bit in 0..64 {
                let mut b = base.clone();
                b[word * 8 + bit / 8] ^= 1 << (bit % 8);
                assert_ne!(checksum(&b), sum, "word {word} bit {bit}");
            }
        }
    }

    proptest! {
        /// The property the format relies on, for slot- and header-sized inputs: any change
        /// within one aligned 8-byte word changes the checksum.
        #[test]
        fn any_damage_within_one_word_is_caught(
            base in vec(any::<u8>(), 120),
            header in any::<bool>(),
            word in any::<prop::sample::Index>(),
            mask in 1..=u64::MAX,
        ) {
            let len = if header { H_CHECKSUM } else { E_CHECKSUM };
            let base = &base[..len];
            let w = word.index(len / 8);
            let mut damaged = base.to_vec();
            for (i, m) in mask.to_le_bytes().iter().enumerate() {
                damaged[w * 8 + i] ^= m;
            }
            prop_assert_ne!(checksum(&damaged), checksum(base));
        }

        /// Oracle: a BTreeMap. Every key present is found with its fields; absent keys miss.
        #[test]
        fn lookups_match_a_map(map in arb_entries(), absent in vec(any::<[u8; 32]>(), 0..16)) {
            let (entries, bytes) = build(&map);
            let ix = LayoutIndex::new(&bytes[..]).unwrap();
            ix.verify().unwrap();
            prop_assert_eq!(ix.len(), map.len());
            for e in &entries {
                prop_assert_eq!(ix.get(&e.project_hash).unwrap(), Some(*e));
            }
            for k in absent {
                if !map.contains_key(&k) {
                    prop_assert_eq!(ix.get(&ProjectHash::from_bytes(k)).unwrap(), None);
                }
            }
            let listed: Vec<_> = ix.entries().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(listed.len(), entries.len());
        }

        /// A flipped byte or a cut never panics; a lookup never returns a wrong entry, and a
        /// flip inside the slot holding the key makes that key's lookup a miss or an error.
        #[test]
        fn corruption_is_detected_or_harmless(
            map in arb_entries().prop_filter("non-empty", |m| !m.is_empty()),
            at in any::<prop::sample::Index>(),
            flip in 1..=255u8,
            cut in any::<prop::sample::Index>(),
        ) {
            let (entries, bytes) = build(&map);
            let mut damaged = bytes.clone();
            let pos = at.index(damaged.len());
            damaged[pos] ^= flip;
            if let Ok(ix) = LayoutIndex::new(&damaged[..]) {
                prop_assert!(pos >= HEADER_LEN, "header damage must be caught");
                for e in &entries {
                    if let Ok(Some(found)) = ix.get(&e.project_hash) {
                        prop_assert_eq!(found, *e);
                    }
                }
                let slot = (pos - HEADER_LEN) / ENTRY_LEN;
                let clean = LayoutIndex::new(&bytes[..]).unwrap();
                if let Some(hit) = entries.iter().find(|e| {
                    clean.slot(slot).unwrap()[E_HASH..E_HASH + 32] == e.project_hash.as_bytes()[..]
                }) {
                    prop_assert!(!matches!(ix.get(&hit.project_hash), Ok(Some(_))));
                }
                prop_assert!(ix.verify().is_err());
            }
            let short = &bytes[..cut.index(bytes.len())];
            prop_assert!(LayoutIndex::new(short).is_err());
        }
    }
}
