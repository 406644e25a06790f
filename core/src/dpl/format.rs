//! Constants, field offsets and the small hash functions shared by the DPL builder and reader.
//!
//! Every integer is little-endian and every structure has alignment 1, so the reader never needs
//! the mapped bytes to be aligned. `docs/formats/dpl.md` gives the reasons behind each choice.

use crate::format::bytes::{self, word, word_padded};
pub(crate) use crate::format::bytes::{put_u32, put_u64};
pub(crate) use crate::format::checksum::Checksum;
use crate::format::checksum::{P1, P2, avalanche, blocks_bytes_words};

/// Magic bytes: `\0` keeps tools from treating the file as text, `\r\n` catches text-mode mangling.
pub(crate) const MAGIC: [u8; 8] = *b"DXDPL\0\r\n";
/// The only format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;

pub(crate) const HEADER_LEN: usize = 192;
pub(crate) const ENTRY_LEN: usize = 168;
// The checksummed part of an entry is whole 32-byte checksum blocks, so the blob that follows it
// in the checksum stream needs no buffering.
const _: () = assert!((ENTRY_LEN - 8).is_multiple_of(32));
pub(crate) const BUCKET_LEN: usize = 12;
/// Longest meta string (environment, python version, requires-python) a file may hold, so that
/// checking the header stays O(1).
pub(crate) const META_STRING_MAX: usize = 1024;
/// Most extras one package can record: one bit each in a `u64`.
pub(crate) const MAX_EXTRAS: usize = 64;

// Header field offsets.
pub(crate) const H_VERSION: usize = 8; // u32
pub(crate) const H_FLAGS: usize = 12; // u32 incompatible-feature flags, must be 0
pub(crate) const H_HEADER_LEN: usize = 16; // u32 = HEADER_LEN
pub(crate) const H_ENTRY_LEN: usize = 20; // u32 = ENTRY_LEN
pub(crate) const H_ENTRY_COUNT: usize = 24; // u32
pub(crate) const H_BUCKET_COUNT: usize = 28; // u32, power of two, > entry count
pub(crate) const H_MAX_PROBE: usize = 32; // u32, 1..=bucket count
pub(crate) const H_DEP_COUNT: usize = 36; // u32, edges in the dependency section
pub(crate) const H_META_FLAGS: usize = 40; // u32, META_* bits
// 44..48 reserved, zero.
pub(crate) const H_BUCKETS_OFF: usize = 48; // u64
pub(crate) const H_ENTRIES_OFF: usize = 56; // u64
pub(crate) const H_DEPS_OFF: usize = 64; // u64
pub(crate) const H_STRINGS_OFF: usize = 72; // u64
pub(crate) const H_STRINGS_LEN: usize = 80; // u64
pub(crate) const H_FILE_LEN: usize = 88; // u64
pub(crate) const H_ENVIRONMENT: usize = 96; // (u32 offset into strings, u32 length)
pub(crate) const H_PYTHON_VERSION: usize = 104; // (u32, u32)
pub(crate) const H_REQUIRES_PYTHON: usize = 112; // (u32, u32)
pub(crate) const H_INPUTS_HASH: usize = 120; // [u8; 32]
pub(crate) const H_BODY_HASH: usize = 152; // [u8; 32] blake3 of bytes[HEADER_LEN..file_len]
pub(crate) const H_CHECKSUM: usize = 184; // u64 over header[..184] and the meta strings

/// `requires-python` of the project is present.
pub(crate) const META_REQUIRES_PYTHON: u32 = 1;

// Entry field offsets.
pub(crate) const E_CHECKSUM: usize = 0; // u64 over entry[8..], its string blob and its edges
pub(crate) const E_SHA256: usize = 8; // [u8; 32]
pub(crate) const E_STORE_HASH: usize = 40; // [u8; 32], zero unless F_STORE_HASH
pub(crate) const E_MAJOR: usize = 72; // u64
pub(crate) const E_MINOR: usize = 80; // u64
pub(crate) const E_PATCH: usize = 88; // u64
pub(crate) const E_EXTRAS_BITMAP: usize = 96; // u64
pub(crate) const E_WHEEL_SIZE: usize = 104; // u64, zero unless F_SIZE
pub(crate) const E_FLAGS: usize = 112; // u32, F_* bits
pub(crate) const E_DEPS_START: usize = 116; // u32, first edge in the dependency section
pub(crate) const E_DEPS_COUNT: usize = 120; // u32
pub(crate) const E_BLOB_OFF: usize = 124; // u32, relative to the string section
pub(crate) const E_LENS: usize = 128; // [u32; STRING_COUNT]; the blob's length is their sum

/// The strings of an entry's blob, in blob order.
pub(crate) const STRING_COUNT: usize = 10;
pub(crate) const S_NORMALIZED: usize = 0;
pub(crate) const S_NAME: usize = 1;
pub(crate) const S_VERSION: usize = 2;
pub(crate) const S_FILENAME: usize = 3;
pub(crate) const S_URL: usize = 4;
pub(crate) const S_PATH: usize = 5;
pub(crate) const S_INDEX: usize = 6;
pub(crate) const S_MARKER: usize = 7;
pub(crate) const S_REQUIRES_PYTHON: usize = 8;
pub(crate) const S_EXTRAS: usize = 9;
/// Field names for error messages, indexed like the strings.
pub(crate) const STRING_NAMES: [&str; STRING_COUNT] = [
    "normalized name",
    "name",
    "version",
    "wheel file name",
    "wheel url",
    "wheel path",
    "index",
    "marker",
    "requires-python",
    "extras",
];

// Entry flags.
pub(crate) const F_STORE_HASH: u32 = 1 << 0;
pub(crate) const F_SIZE: u32 = 1 << 1;
pub(crate) const F_URL: u32 = 1 << 2;
pub(crate) const F_PATH: u32 = 1 << 3;
pub(crate) const F_INDEX: u32 = 1 << 4;
pub(crate) const F_MARKER: u32 = 1 << 5;
pub(crate) const F_REQUIRES_PYTHON: u32 = 1 << 6;
/// Built from an sdist: the URL, path, size and sha256 are the sdist's (see `LockedPackage::sdist`).
pub(crate) const F_SDIST: u32 = 1 << 7;
/// A project directory (PEP 751 `[packages.directory]`): the path is the directory's, the
/// entry has no URL or size and its sha256 is zeros (see `LocalSource::Directory`).
pub(crate) const F_DIRECTORY: u32 = 1 << 8;
/// With [`F_DIRECTORY`]: installed editable.
pub(crate) const F_EDITABLE: u32 = 1 << 9;
/// With [`F_SDIST`]: the sdist is a local archive named by path (PEP 751 `[packages.archive]`).
pub(crate) const F_ARCHIVE: u32 = 1 << 10;
pub(crate) const F_KNOWN: u32 = (1 << 11) - 1;
/// The flag that marks each optional string present (0 = always present).
pub(crate) const STRING_FLAGS: [u32; STRING_COUNT] = [
    0,
    0,
    0,
    0,
    F_URL,
    F_PATH,
    F_INDEX,
    F_MARKER,
    F_REQUIRES_PYTHON,
    0,
];

/// Separator between extra names in the extras string (not allowed in an extra name).
pub(crate) const EXTRAS_SEP: char = ',';

/// Seeds keep the header checksum, entry checksums and bucket checks from ever agreeing by accident.
pub(crate) const HEADER_SEED: u64 = 0x4450_4c5f_4845_4144;
pub(crate) const ENTRY_SEED: u64 = 0x4450_4c5f_454e_5452;

pub(crate) fn buckets_for(n: usize) -> usize {
    (n * 2).max(2).next_power_of_two()
}

/// PEP 503 normalization of `name`, one byte at a time, without allocating.
///
/// Equal to `crate::names::normalize_name(name).into_bytes()`: separators and ASCII letters are
/// single bytes and never occur inside a multi-byte UTF-8 sequence, so working on bytes is exact.
pub(crate) fn normalized_bytes(name: &str) -> impl Iterator<Item = u8> + '_ {
    let mut last_sep = false;
    name.bytes().filter_map(move |b| {
        if matches!(b, b'-' | b'_' | b'.') {
            let first = !last_sep;
            last_sep = true;
            first.then_some(b'-')
        } else {
            last_sep = false;
            Some(b.to_ascii_lowercase())
        }
    })
}

/// Longest name [`normalize_into`] handles; longer names are normalized on the fly.
pub(crate) const NAME_BUF: usize = 128;

/// Writes the PEP 503 normalization of `name` into `buf`, returning its length, or `None` when
/// it does not fit.
#[inline]
pub(crate) fn normalize_into(name: &str, buf: &mut [u8; NAME_BUF]) -> Option<usize> {
    if name.len() > NAME_BUF {
        return None;
    }
    let mut n = 0;
    for b in normalized_bytes(name) {
        // The normalization is never longer than the name, so `n` stays below NAME_BUF.
        *buf.get_mut(n)? = b;
        n += 1;
    }
    Some(n)
}

/// True when `a` and `b` are the same name after PEP 503 (or PEP 685, for extras) normalization.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    normalized_bytes(a).eq(normalized_bytes(b))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` equal to `c` (exact: no carries cross bytes).
#[inline(always)]
const fn eq_mask(w: u64, c: u8) -> u64 {
    let v = w ^ (ONES * c as u64);
    !(((v & !HIGHS) + !HIGHS) | v) & HIGHS
}

/// The high bit of every byte of `w` that is an ASCII uppercase letter.
#[inline(always)]
const fn upper_mask(w: u64) -> u64 {
    let x = w & !HIGHS;
    let ge_a = x + ONES * (0x80 - b'A' as u64);
    let gt_z = x + ONES * (0x80 - b'Z' as u64 - 1);
    ge_a & !gt_z & !w & HIGHS
}

/// True when `name` is already PEP 503 normalized: no ASCII uppercase, no `_` or `.`, no `--`.
/// One pass over 8-byte words.
pub(crate) fn is_normalized(name: &str) -> bool {
    let (mut bad, mut prev_dash) = (0u64, 0u64);
    let mut step = |w: u64| {
        let dash = eq_mask(w, b'-');
        bad |= upper_mask(w)
            | eq_mask(w, b'_')
            | eq_mask(w, b'.')
            | (dash & ((dash << 8) | (prev_dash >> 56)));
        prev_dash = dash;
    };
    let mut words = name.as_bytes().chunks_exact(8);
    for w in &mut words {
        step(word(w));
    }
    step(word_padded(words.remainder()));
    bad == 0
}

const NAME_SEED: u64 = 0x4450_4c5f_4e41_4d45;

#[inline(always)]
fn name_mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(P1).rotate_left(29)
}

#[inline(always)]
fn name_finish(h: u64, len: usize) -> u64 {
    avalanche(h ^ (len as u64).wrapping_mul(P2))
}

/// The hash-table key of an already normalized name: its bytes as little-endian 8-byte words
/// (the last one zero-padded) folded by multiply-rotate, then the length. The low bits pick the
/// first slot; the high 32 bits are kept in the bucket as a tag that rejects most non-matches
/// without reading an entry.
#[inline]
pub(crate) fn hash_normalized(bytes: &[u8]) -> u64 {
    let mut h = NAME_SEED;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = name_mix(h, word(w));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        h = name_mix(h, word_padded(rest));
    }
    name_finish(h, bytes.len())
}

/// [`hash_normalized`] of the PEP 503 normalization of `name`, computed on the fly.
pub(crate) fn name_hash(name: &str) -> u64 {
    let mut h = NAME_SEED;
    let (mut w, mut k, mut len) = (0u64, 0u32, 0usize);
    for b in normalized_bytes(name) {
        w |= u64::from(b) << (8 * k);
        k += 1;
        len += 1;
        if k == 8 {
            h = name_mix(h, w);
            (w, k) = (0, 0);
        }
    }
    if k > 0 {
        h = name_mix(h, w);
    }
    name_finish(h, len)
}

/// A bijective 32-bit mixer (the usual multiply-xorshift finalizer).
const fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// The check word of a bucket. For a fixed slot it is a bijection of the entry field (and of the
/// tag field), so changing either alone always changes the check.
pub(crate) const fn bucket_check(slot: u32, entry_plus_one: u32, tag: u32) -> u32 {
    mix32(entry_plus_one ^ mix32(tag ^ mix32(slot ^ 0x6470_6c21)))
}

/// The checksum of an entry: its fixed part after the checksum field (whole 32-byte blocks, as
/// asserted above), its string blob, then its dependency edges as 32-bit words; no copying.
#[inline]
pub(crate) fn entry_checksum(seed: u64, fixed: &[u8], blob: &[u8], deps: &[u8]) -> u64 {
    blocks_bytes_words(seed, fixed, blob, deps)
}

// The DPL reader names its own error for each field it cannot read (the header, an entry, a
// bucket), so its reads answer `None` rather than the toolkit's generic error.

/// Reads a `u32` at `at`; `None` when out of range.
#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes::u32_at(b, at).ok()
}

/// Reads a `u64` at `at`; `None` when out of range.
#[inline]
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes::u64_at(b, at).ok()
}

/// Reads 32 bytes at `at`; `None` when out of range.
#[inline]
pub(crate) fn hash_at(b: &[u8], at: usize) -> Option<[u8; 32]> {
    bytes::array_at(b, at).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::normalize_name;
    use proptest::prelude::*;

    proptest! {
        /// On-the-fly normalization agrees with the allocating one.
        #[test]
        fn normalized_bytes_matches_normalize_name(name in "[a-zA-Z0-9._ -]{0,24}|\\PC{0,12}") {
            let fly: Vec<u8> = normalized_bytes(&name).collect();
            prop_assert_eq!(&fly, &normalize_name(&name).into_bytes());
            let mut buf = [0u8; NAME_BUF];
            if let Some(n) = normalize_into(&name, &mut buf) {
                prop_assert_eq!(&buf[..n], &fly[..]);
            }
        }

        /// Names that normalize alike hash alike.
        #[test]
        fn spellings_hash_alike(name in "[a-z0-9]{1,6}([-_.][a-z0-9]{1,6}){0,3}") {
            let shouted = name.to_ascii_uppercase().replace('-', "_.").replace('.', "--");
            prop_assert!(same_name(&name, &shouted));
            prop_assert_eq!(name_hash(&name), name_hash(&shouted));
        }

        /// The on-the-fly name hash equals the hash of the normalized bytes, and the fast path
        /// is taken exactly for normalized names.
        #[test]
        fn name_hash_matches_normalized(name in "[a-zA-Z0-9._-]{0,40}|\\PC{0,12}") {
            let normalized = normalize_name(&name);
            prop_assert_eq!(name_hash(&name), hash_normalized(normalized.as_bytes()));
            prop_assert_eq!(is_normalized(&name), normalized == name);
            if normalized == name {
                prop_assert_eq!(hash_normalized(name.as_bytes()), name_hash(&name));
            }
        }

        /// A bucket's check changes whenever its entry or its tag changes alone.
        #[test]
        fn bucket_check_is_injective(slot in any::<u32>(), e in any::<u32>(), t in any::<u32>(), d in 1u32..) {
            prop_assert_ne!(bucket_check(slot, e, t), bucket_check(slot, e ^ d, t));
            prop_assert_ne!(bucket_check(slot, e, t), bucket_check(slot, e, t ^ d));
        }
    }
}
