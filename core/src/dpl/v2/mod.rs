//! DPL version 2: the binary twin of a universal lock. Entries carry a marker (an index into a
//! table of distinct markers), every wheel of their version and the sdist; several entries may
//! share a name (versions under disjoint markers).
//!
//! ```text
//! offset 0   header (184 B)               magic, version 2, counts, section offsets,
//!                                         requires-python, inputs hash, body blake3, checksum
//!        184 markers (8 B × markers)      (string offset, length) of each distinct marker
//!        …   environments (4 B × envs)    marker indices: the lock's `environments`
//!        …   entries (64 B × entries)     sorted by (normalized name, version, marker)
//!        …   files (72 B × files)         each entry's wheels, then its sdist, in entry order
//!        …   edges (4 B × edges)          dependencies as entry indices
//!        …   strings                      UTF-8, each distinct string once
//! ```
//!
//! Unlike version 1, whose readers look one package up and so checksum entries one by one,
//! every reader of a version 2 file reads all of it (choosing the entries for an interpreter
//! walks every entry): [`UniversalDplReader::verify`] checks the body's blake3 once, and each
//! read is then a bounds-checked slice. Opening checks only the header, O(1). Layout and
//! reasons: `docs/formats/dpl.md`.
pub(crate) mod builder;
mod reader;
mod render;

pub use reader::{UniversalDplEntry, UniversalDplReader};

use super::DplError;
use super::format::{MAGIC, u32_at};

/// The format version of this twin.
pub(crate) const VERSION_2: u32 = 2;

pub(crate) const HEADER_LEN: usize = 184;
pub(crate) const MARKER_LEN: usize = 8;
pub(crate) const ENV_LEN: usize = 4;
pub(crate) const ENTRY_LEN: usize = 64;
pub(crate) const FILE_LEN: usize = 72;
pub(crate) const EDGE_LEN: usize = 4;

// Header fields.
pub(crate) const H_VERSION: usize = 8; // u32 = 2
pub(crate) const H_FLAGS: usize = 12; // u32 incompatible-feature flags, 0
pub(crate) const H_HEADER_LEN: usize = 16; // u32 = HEADER_LEN
pub(crate) const H_ENTRY_COUNT: usize = 20; // u32
pub(crate) const H_MARKER_COUNT: usize = 24; // u32
pub(crate) const H_FILE_COUNT: usize = 28; // u32
pub(crate) const H_EDGE_COUNT: usize = 32; // u32
pub(crate) const H_ENV_COUNT: usize = 36; // u32
pub(crate) const H_META_FLAGS: usize = 40; // u32, META_* bits
// 44..48 reserved, 0.
pub(crate) const H_MARKERS_OFF: usize = 48; // u64
pub(crate) const H_ENTRIES_OFF: usize = 56; // u64
pub(crate) const H_FILES_OFF: usize = 64; // u64
pub(crate) const H_EDGES_OFF: usize = 72; // u64
pub(crate) const H_STRINGS_OFF: usize = 80; // u64
pub(crate) const H_STRINGS_LEN: usize = 88; // u64
pub(crate) const H_FILE_LEN: usize = 96; // u64
pub(crate) const H_REQUIRES_PYTHON: usize = 104; // (u32 offset, u32 length), strings-relative
pub(crate) const H_INPUTS_HASH: usize = 112; // [u8; 32]
pub(crate) const H_BODY_HASH: usize = 144; // [u8; 32], blake3 of bytes [HEADER_LEN, file_len)
pub(crate) const H_CHECKSUM: usize = 176; // u64 over bytes [0, 176)

pub(crate) const META_REQUIRES_PYTHON: u32 = 1;
/// Some entry is a local directory installed built (not editable): a selection, which records
/// what an install stored, must be keyed by those trees' state (`install::selected_lock`). A
/// flag, so that a lock without one costs that O(1) check and no walk over its entries.
pub(crate) const META_BUILT_DIRECTORIES: u32 = 2;
pub(crate) const META_KNOWN: u32 = META_REQUIRES_PYTHON | META_BUILT_DIRECTORIES;

// Entry fields (strings are (u32 offset, u32 length) pairs, strings-relative).
pub(crate) const E_NAME: usize = 0;
pub(crate) const E_VERSION: usize = 8;
pub(crate) const E_REQUIRES_PYTHON: usize = 16;
pub(crate) const E_INDEX: usize = 24;
pub(crate) const E_MARKER: usize = 32; // u32 marker index, NO_MARKER when none
pub(crate) const E_FLAGS: usize = 36; // u32, EF_* bits
pub(crate) const E_FIRST_FILE: usize = 40; // u32
pub(crate) const E_WHEEL_COUNT: usize = 44; // u32
pub(crate) const E_FIRST_EDGE: usize = 48; // u32
pub(crate) const E_EDGE_COUNT: usize = 52; // u32
// 56..64 reserved, 0.

pub(crate) const EF_REQUIRES_PYTHON: u32 = 1 << 0;
pub(crate) const EF_INDEX: u32 = 1 << 1;
pub(crate) const EF_SDIST: u32 = 1 << 2;
/// The file after the wheels is a local project directory (its `path`), not an sdist.
pub(crate) const EF_DIRECTORY: u32 = 1 << 3;
/// With `EF_DIRECTORY`: installed editable (PEP 660).
pub(crate) const EF_EDITABLE: u32 = 1 << 4;
/// With `EF_SDIST`: the sdist is a local source archive named by path (PEP 751 `archive`).
pub(crate) const EF_ARCHIVE: u32 = 1 << 5;
pub(crate) const EF_KNOWN: u32 = (1 << 6) - 1;

/// The marker index of an entry that holds everywhere the lock does.
pub(crate) const NO_MARKER: u32 = u32::MAX;

// File fields.
pub(crate) const F_NAME: usize = 0;
pub(crate) const F_URL: usize = 8;
pub(crate) const F_PATH: usize = 16;
pub(crate) const F_SHA256: usize = 24; // [u8; 32]
pub(crate) const F_SIZE: usize = 56; // u64
pub(crate) const F_FLAGS: usize = 64; // u32, FF_* bits
// 68..72 reserved, 0.

pub(crate) const FF_URL: u32 = 1 << 0;
pub(crate) const FF_PATH: u32 = 1 << 1;
pub(crate) const FF_SIZE: u32 = 1 << 2;
pub(crate) const FF_KNOWN: u32 = (1 << 3) - 1;

/// Distinct from version 1's seeds, so a header of one version never passes as the other's.
pub(crate) const HEADER_SEED_2: u64 = 0x4450_4c32_4845_4144;

/// The format version of DPL `bytes` (1: one interpreter's lock, 2: a universal lock), from the
/// magic and the version field alone: how a caller picks the reader.
pub fn format_version(bytes: &[u8]) -> Result<u32, DplError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(DplError::BadMagic {
            got: bytes[..magic_len].to_vec(),
        });
    }
    u32_at(bytes, H_VERSION).ok_or(DplError::Truncated {
        needed: (H_VERSION + 4) as u64,
        len: bytes.len() as u64,
    })
}

#[cfg(test)]
pub(crate) mod tests;
