//! Reads DPL bytes as untrusted input: every offset is checked, every entry is checksummed on
//! access, nothing panics.
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::Mmap;

use super::DplFileError;
use super::format::*;
use super::model::{
    LocalSource, Lock, LockMeta, LockedPackage, LockedWheel, last_segment, version_components,
};
use crate::format::bytes::{rec_u32, rec_u64, words_u32};
use crate::hash::ContentHash;
use crate::names::normalize_name;

/// A DPL file that cannot be read, or an answer it cannot give safely.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DplError {
    /// Shorter than its header says.
    #[error("Truncated DPL file: need {needed} bytes, file has {len}")]
    Truncated {
        /// Bytes the file needs.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// Not a DPL file at all.
    #[error("Not a DPL file: expected magic bytes `DXDPL\\0\\r\\n`, got {got:?}")]
    BadMagic {
        /// The first (up to 8) bytes of the file.
        got: Vec<u8>,
    },
    /// Written in another format version.
    #[error(
        "Unsupported DPL format version: expected {expected}, got {got}; re-create the lock with this dx-py"
    )]
    UnsupportedVersion {
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        got: u32,
    },
    /// Uses features this build does not know.
    #[error("DPL file needs unknown features (flags {0:#x}); it was written by a newer dx-py")]
    UnknownFeatures(u32),
    /// The header's checksum does not match.
    #[error("Corrupt DPL header: checksum expected {expected:#018x}, got {got:#018x}")]
    HeaderChecksum {
        /// The checksum stored in the header.
        expected: u64,
        /// The checksum of the bytes present.
        got: u64,
    },
    /// An entry's checksum does not match.
    #[error("Corrupt DPL entry {index}: checksum expected {expected:#018x}, got {got:#018x}")]
    EntryChecksum {
        /// The entry.
        index: u32,
        /// The checksum stored in the entry.
        expected: u64,
        /// The checksum of the bytes present.
        got: u64,
    },
    /// A hash-table bucket fails its check word.
    #[error("Corrupt DPL hash table: bucket {slot} fails its check")]
    BucketChecksum {
        /// The bucket.
        slot: u32,
    },
    /// The whole-file hash does not match (`verify` only).
    #[error("Corrupt DPL file: blake3 of the body expected {expected}, got {got}")]
    BodyChecksum {
        /// The hash stored in the header.
        expected: ContentHash,
        /// The hash of the bytes present.
        got: ContentHash,
    },
    /// A header field is out of range.
    #[error("Corrupt DPL header: {what} is {value}, expected at most {limit}")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The largest value that fits.
        limit: u64,
    },
    /// An entry field is out of range.
    #[error("Corrupt DPL entry {index}: {what} is {value}, expected at most {limit}")]
    EntryOutOfRange {
        /// The entry.
        index: u32,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The largest value that fits.
        limit: u64,
    },
    /// A header field disagrees with the layout.
    #[error("Corrupt DPL header: {what}: expected {expected}, got {got}")]
    BadHeader {
        /// Which field.
        what: &'static str,
        /// The value the layout implies.
        expected: u64,
        /// The value in the file.
        got: u64,
    },
    /// An entry is inconsistent in a way its checksum cannot reveal (a crafted file).
    #[error("Corrupt DPL entry {index}: {what}")]
    BadEntry {
        /// The entry.
        index: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// A string of an entry is not UTF-8.
    #[error("Corrupt DPL entry {index}: the {field} is not UTF-8")]
    NotUtf8 {
        /// The entry.
        index: u32,
        /// Which string.
        field: &'static str,
    },
    /// A project-level string is not UTF-8.
    #[error("Corrupt DPL header: the {field} is not UTF-8")]
    MetaNotUtf8 {
        /// Which string.
        field: &'static str,
    },
    /// The file is structurally readable but not as the builder writes it (`verify` only).
    #[error("Corrupt DPL file: {0}")]
    Inconsistent(&'static str),
}

/// One locked package, borrowed from the file: a small view whose checksum, UTF-8 strings,
/// extras bitmap and dependency indices were checked when it was read, so every accessor is a
/// cheap infallible read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DplEntry<'a> {
    index: u32,
    flags: u32,
    rec: &'a [u8; ENTRY_LEN],
    /// The string blob, checked to be UTF-8 with every string on a char boundary.
    text: &'a [u8],
    /// End offset in `text` of each string.
    ends: [u32; STRING_COUNT],
    deps: &'a [u8],
}

/// The locked wheel of a [`DplEntry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DplWheel<'a> {
    /// The wheel file name.
    pub filename: &'a str,
    /// Its download URL, if any.
    pub url: Option<&'a str>,
    /// Its local path, if any.
    pub path: Option<&'a str>,
    /// The sha256 of the wheel file.
    pub sha256: [u8; 32],
    /// The wheel's size in bytes, if known.
    pub size: Option<u64>,
}

impl DplWheel<'_> {
    /// The sha256 as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.sha256)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> LockedWheel {
        LockedWheel {
            filename: self.filename.to_string(),
            url: self.url.map(str::to_string),
            path: self.path.map(str::to_string),
            sha256: self.sha256,
            size: self.size,
        }
    }
}

impl<'a> DplEntry<'a> {
    fn le64(&self, at: usize) -> u64 {
        rec_u64(self.rec, at)
    }

    fn hash32(&self, at: usize) -> [u8; 32] {
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.rec[at..at + 32]);
        h
    }

    fn string_bytes(&self, s: usize) -> &'a [u8] {
        let start = if s == 0 { 0 } else { self.ends[s - 1] as usize };
        self.text
            .get(start..self.ends[s] as usize)
            .unwrap_or_default()
    }

    fn string(&self, s: usize) -> &'a str {
        // The blob was checked to be UTF-8 with each string on char boundaries when the entry
        // was first read, and the bytes never change; re-checking one short string is cheap and
        // keeps this free of `unsafe` and of panics.
        std::str::from_utf8(self.string_bytes(s)).unwrap_or_default()
    }

    fn optional(&self, s: usize) -> Option<&'a str> {
        (self.flags & STRING_FLAGS[s] != 0).then(|| self.string(s))
    }

    /// Position in the file (entries are sorted by normalized name).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The name as the index spells it.
    pub fn name(&self) -> &'a str {
        self.string(S_NAME)
    }

    /// The PEP 503 normalized name, the lookup key.
    pub fn normalized_name(&self) -> &'a str {
        self.string(S_NORMALIZED)
    }

    /// The full version string.
    pub fn version(&self) -> &'a str {
        self.string(S_VERSION)
    }

    /// First release segment of the version (0 when absent).
    pub fn version_major(&self) -> u64 {
        self.le64(E_MAJOR)
    }

    /// Second release segment (0 when absent).
    pub fn version_minor(&self) -> u64 {
        self.le64(E_MINOR)
    }

    /// Third release segment (0 when absent).
    pub fn version_patch(&self) -> u64 {
        self.le64(E_PATCH)
    }

    /// The environment marker, if the source lock had one.
    pub fn marker(&self) -> Option<&'a str> {
        self.optional(S_MARKER)
    }

    /// The package's `Requires-Python`, if the source lock had one.
    pub fn requires_python(&self) -> Option<&'a str> {
        self.optional(S_REQUIRES_PYTHON)
    }

    /// The index URL the package came from, if recorded.
    pub fn index_url(&self) -> Option<&'a str> {
        self.optional(S_INDEX)
    }

    /// Bit `i` set = extra `i` of [`DplEntry::extras`] is selected.
    pub fn extras_bitmap(&self) -> u64 {
        self.le64(E_EXTRAS_BITMAP)
    }

    /// The wheel to install (for a package built from [`DplEntry::sdist`]: the name of the
    /// wheel built when locking, and the sdist's sha256).
    pub fn wheel(&self) -> DplWheel<'a> {
        let file = self.file();
        match self.flags & (F_SDIST | F_DIRECTORY) {
            0 => file,
            _ => DplWheel {
                url: None,
                path: None,
                size: None,
                ..file
            },
        }
    }

    /// The sdist an install builds the package from, when no wheel is locked.
    pub fn sdist(&self) -> Option<DplWheel<'a>> {
        if self.flags & F_SDIST == 0 {
            return None;
        }
        let file = self.file();
        // Checked when the entry was first read: an sdist entry has a URL or path that ends
        // in a name.
        let filename = file.url.or(file.path).and_then(last_segment)?;
        Some(DplWheel { filename, ..file })
    }

    /// The local source the package is locked as, if any.
    pub fn local(&self) -> Option<LocalSource> {
        if self.flags & F_ARCHIVE != 0 {
            return Some(LocalSource::Archive);
        }
        (self.flags & F_DIRECTORY != 0).then(|| LocalSource::Directory {
            path: self.optional(S_PATH).unwrap_or_default().to_owned(),
            editable: self.flags & F_EDITABLE != 0,
        })
    }

    /// The file the entry's location, size and sha256 describe: the wheel, or the sdist.
    fn file(&self) -> DplWheel<'a> {
        DplWheel {
            filename: self.string(S_FILENAME),
            url: self.optional(S_URL),
            path: self.optional(S_PATH),
            sha256: self.wheel_sha256(),
            size: (self.flags & F_SIZE != 0).then(|| self.le64(E_WHEEL_SIZE)),
        }
    }

    /// The sha256 of the wheel file (without building the whole [`DplWheel`]).
    pub fn wheel_sha256(&self) -> [u8; 32] {
        self.hash32(E_SHA256)
    }

    /// The blake3 of the package's `.dxpkg`, once stored.
    pub fn store_hash(&self) -> Option<ContentHash> {
        (self.flags & F_STORE_HASH != 0).then(|| ContentHash::from_bytes(self.hash32(E_STORE_HASH)))
    }

    /// The package's extras table, in bit order.
    pub fn extras(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let extras = self.string(S_EXTRAS);
        extras.split(EXTRAS_SEP).filter(move |_| !extras.is_empty())
    }

    /// True when `extra` (compared PEP 685-normalized) is in the extras table and selected.
    pub fn has_extra(&self, extra: &str) -> bool {
        let bitmap = self.extras_bitmap();
        self.extras()
            .position(|e| same_name(e, extra))
            .is_some_and(|i| bitmap & (1 << i) != 0)
    }

    /// The selected extras, in table order.
    pub fn selected_extras(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let bitmap = self.extras_bitmap();
        self.extras()
            .enumerate()
            .filter(move |(i, _)| bitmap & (1 << i) != 0)
            .map(|(_, e)| e)
    }

    /// Indices of the entries this package depends on (checked to be in range), ascending.
    pub fn dependencies(&self) -> impl ExactSizeIterator<Item = u32> + use<'a> {
        words_u32(self.deps)
    }

    /// An owned copy, given the normalized names of its dependencies.
    pub fn to_package(&self, dependencies: Vec<String>) -> LockedPackage {
        LockedPackage {
            name: self.name().to_string(),
            version: self.version().to_string(),
            marker: self.marker().map(str::to_string),
            requires_python: self.requires_python().map(str::to_string),
            index_url: self.index_url().map(str::to_string),
            extras: self.extras().map(str::to_string).collect(),
            extras_bitmap: self.extras_bitmap(),
            wheel: self.wheel().to_owned(),
            sdist: self.sdist().map(|s| s.to_owned()),
            local: self.local(),
            store_hash: self.store_hash(),
            dependencies,
        }
    }
}

/// A checked view of DPL bytes (a `Mmap`, a `Vec<u8>`, a slice).
///
/// Opening checks the header (its checksum and that every section fits): O(1) in the number of
/// entries. Each entry is fully checked (checksum, UTF-8, extras, edges) the first time it is read
/// through this reader, which then remembers it in a bitset (one bit per entry, allocated on the
/// first read) so that later reads of it cost only the bounds checks: the bytes cannot change
/// while the reader lives. [`DplReader::verify`] checks everything, always.
#[derive(Debug)]
pub struct DplReader<B> {
    bytes: B,
    entry_count: usize,
    bucket_count: usize,
    max_probe: usize,
    dep_count: usize,
    buckets_off: usize,
    entries_off: usize,
    deps_off: usize,
    strings_off: usize,
    strings_len: usize,
    environment: (usize, usize),
    python_version: (usize, usize),
    requires_python: Option<(usize, usize)>,
    inputs_hash: ContentHash,
    /// Bit `i` set: entry `i` passed every check.
    verified: OnceLock<Box<[AtomicU64]>>,
}

/// `Ok` when a header field holds the value the layout implies, else `BadHeader` naming it.
pub(crate) fn expect_header(what: &'static str, expected: u64, got: u64) -> Result<(), DplError> {
    if expected == got {
        Ok(())
    } else {
        Err(DplError::BadHeader {
            what,
            expected,
            got,
        })
    }
}

fn header_u32(b: &[u8], at: usize) -> u32 {
    u32_at(b, at).unwrap_or_default()
}

fn header_u64(b: &[u8], at: usize) -> u64 {
    u64_at(b, at).unwrap_or_default()
}

fn to_usize(what: &'static str, v: u64) -> Result<usize, DplError> {
    usize::try_from(v).map_err(|_| DplError::OutOfRange {
        what,
        value: v,
        limit: usize::MAX as u64,
    })
}

impl DplReader<Mmap> {
    /// Maps the file at `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, DplFileError> {
        super::open_mapped(path, Self::from_bytes)
    }
}

impl<B: AsRef<[u8]>> DplReader<B> {
    /// Checks the header: magic, version, checksum, and that every section fits the file.
    pub fn from_bytes(bytes: B) -> Result<Self, DplError> {
        let b = bytes.as_ref();
        let len = b.len() as u64;
        let magic_len = b.len().min(8);
        if b[..magic_len] != MAGIC[..magic_len] {
            return Err(DplError::BadMagic {
                got: b[..magic_len].to_vec(),
            });
        }
        let truncated = |needed: usize| DplError::Truncated {
            needed: needed as u64,
            len,
        };
        let version = u32_at(b, H_VERSION).ok_or_else(|| truncated(HEADER_LEN))?;
        if version != VERSION {
            return Err(DplError::UnsupportedVersion {
                expected: VERSION,
                got: version,
            });
        }
        if b.len() < HEADER_LEN {
            return Err(truncated(HEADER_LEN));
        }
        let file_len = header_u64(b, H_FILE_LEN);
        if file_len > len {
            return Err(DplError::Truncated {
                needed: file_len,
                len,
            });
        }

        // The header checksum also covers the meta strings, so find them first.
        let strings_off = to_usize("string section offset", header_u64(b, H_STRINGS_OFF))?;
        let strings_len = to_usize("string section length", header_u64(b, H_STRINGS_LEN))?;
        let meta = |at: usize, what: &'static str| -> Result<(usize, usize), DplError> {
            let off = header_u32(b, at) as usize;
            let n = header_u32(b, at + 4) as usize;
            if n > META_STRING_MAX {
                return Err(DplError::OutOfRange {
                    what,
                    value: n as u64,
                    limit: META_STRING_MAX as u64,
                });
            }
            let end =
                off.checked_add(n)
                    .filter(|&e| e <= strings_len)
                    .ok_or(DplError::OutOfRange {
                        what,
                        value: off as u64,
                        limit: strings_len as u64,
                    })?;
            if strings_off.saturating_add(end) > b.len() {
                return Err(DplError::OutOfRange {
                    what,
                    value: (off as u64).saturating_add(strings_off as u64),
                    limit: len,
                });
            }
            Ok((off, n))
        };
        let environment = meta(H_ENVIRONMENT, "environment string")?;
        let python_version = meta(H_PYTHON_VERSION, "python version string")?;
        let requires_python = meta(H_REQUIRES_PYTHON, "requires-python string")?;
        let mut sum = Checksum::new(HEADER_SEED);
        sum.update(&b[..H_CHECKSUM]);
        for (off, n) in [environment, python_version, requires_python] {
            sum.update(&b[strings_off + off..strings_off + off + n]);
        }
        let sum = sum.finish();
        let stored = header_u64(b, H_CHECKSUM);
        if sum != stored {
            return Err(DplError::HeaderChecksum {
                expected: stored,
                got: sum,
            });
        }

        // The checksum matched: what follows only catches files crafted to be inconsistent.
        let flags = header_u32(b, H_FLAGS);
        if flags != 0 {
            return Err(DplError::UnknownFeatures(flags));
        }
        let expect = expect_header;
        expect(
            "header length",
            HEADER_LEN as u64,
            header_u32(b, H_HEADER_LEN).into(),
        )?;
        expect(
            "entry length",
            ENTRY_LEN as u64,
            header_u32(b, H_ENTRY_LEN).into(),
        )?;
        let entry_count = header_u32(b, H_ENTRY_COUNT) as usize;
        let bucket_count = header_u32(b, H_BUCKET_COUNT) as usize;
        if !bucket_count.is_power_of_two() || bucket_count <= entry_count {
            return Err(DplError::BadHeader {
                what: "bucket count (a power of two above the entry count)",
                expected: buckets_for(entry_count) as u64,
                got: bucket_count as u64,
            });
        }
        let max_probe = header_u32(b, H_MAX_PROBE) as usize;
        if max_probe == 0 || max_probe > bucket_count {
            return Err(DplError::OutOfRange {
                what: "longest probe",
                value: max_probe as u64,
                limit: bucket_count as u64,
            });
        }
        let dep_count = header_u32(b, H_DEP_COUNT) as usize;
        let meta_flags = header_u32(b, H_META_FLAGS);
        if meta_flags & !META_REQUIRES_PYTHON != 0 || header_u32(b, 44) != 0 {
            return Err(DplError::UnknownFeatures(meta_flags));
        }
        let requires_python = if meta_flags & META_REQUIRES_PYTHON != 0 {
            Some(requires_python)
        } else if requires_python.1 != 0 {
            return Err(DplError::BadHeader {
                what: "length of the absent requires-python",
                expected: 0,
                got: requires_python.1 as u64,
            });
        } else {
            None
        };

        // Sections follow each other in a fixed order; u64 arithmetic cannot overflow here
        // because every count is a u32 and every size is small.
        let buckets_off = HEADER_LEN as u64;
        let entries_off = buckets_off + bucket_count as u64 * BUCKET_LEN as u64;
        let deps_off = entries_off + entry_count as u64 * ENTRY_LEN as u64;
        let strings_at = deps_off + dep_count as u64 * 4;
        expect(
            "bucket section offset",
            buckets_off,
            header_u64(b, H_BUCKETS_OFF),
        )?;
        expect(
            "entry section offset",
            entries_off,
            header_u64(b, H_ENTRIES_OFF),
        )?;
        expect(
            "dependency section offset",
            deps_off,
            header_u64(b, H_DEPS_OFF),
        )?;
        expect("string section offset", strings_at, strings_off as u64)?;
        let end = strings_at
            .checked_add(strings_len as u64)
            .ok_or(DplError::OutOfRange {
                what: "string section length",
                value: strings_len as u64,
                limit: len,
            })?;
        expect("file length", end, file_len)?;
        expect("bytes after the header's file length", file_len, len)?;

        let reader = Self {
            entry_count,
            bucket_count,
            max_probe,
            dep_count,
            buckets_off: buckets_off as usize,
            entries_off: entries_off as usize,
            deps_off: deps_off as usize,
            strings_off,
            strings_len,
            environment,
            python_version,
            requires_python,
            inputs_hash: ContentHash::from_bytes(hash_at(b, H_INPUTS_HASH).unwrap_or_default()),
            verified: OnceLock::new(),
            bytes,
        };
        for (field, s) in [
            ("environment", Some(environment)),
            ("python version", Some(python_version)),
            ("requires-python", requires_python),
        ] {
            if let Some(s) = s {
                reader.meta_str(s).ok_or(DplError::MetaNotUtf8 { field })?;
            }
        }
        Ok(reader)
    }

    fn meta_str(&self, (off, len): (usize, usize)) -> Option<&str> {
        let at = self.strings_off + off;
        std::str::from_utf8(self.bytes.as_ref().get(at..at + len)?).ok()
    }

    /// The raw bytes this reader reads.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// The format version of the file (the only one this build reads).
    pub fn format_version(&self) -> u32 {
        VERSION
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.entry_count
    }

    /// True when the lock has no packages.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// The environment the lock was made for, e.g. `cp311-linux_x86_64` (empty = unknown).
    pub fn environment(&self) -> &str {
        self.meta_str(self.environment).unwrap_or_default()
    }

    /// The interpreter version the lock was made for (empty = unknown).
    pub fn python_version(&self) -> &str {
        self.meta_str(self.python_version).unwrap_or_default()
    }

    /// The project's `requires-python`, if any.
    pub fn requires_python(&self) -> Option<&str> {
        self.requires_python.and_then(|s| self.meta_str(s))
    }

    /// The hash of the inputs the lock was resolved from (all zeros = unknown).
    pub fn inputs_hash(&self) -> ContentHash {
        self.inputs_hash
    }

    /// True when the lock was made from inputs hashing to `inputs`.
    pub fn is_fresh(&self, inputs: &ContentHash) -> bool {
        self.meta().is_fresh(inputs)
    }

    /// The project-level data as an owned value.
    pub fn meta(&self) -> LockMeta {
        LockMeta {
            environment: self.environment().to_string(),
            python_version: self.python_version().to_string(),
            requires_python: self.requires_python().map(str::to_string),
            inputs_hash: self.inputs_hash,
        }
    }

    /// Bucket `slot`: (entry index + 1 or 0 when empty, name-hash tag), its check verified.
    fn bucket(&self, slot: usize) -> Result<(u32, u32), DplError> {
        let b = self.bytes.as_ref();
        let at = self.buckets_off + slot * BUCKET_LEN;
        let slot32 = slot as u32;
        let bad = || DplError::BucketChecksum { slot: slot32 };
        let bucket: &[u8; BUCKET_LEN] = b
            .get(at..at + BUCKET_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(bad)?;
        let le = |i: usize| rec_u32(bucket, i);
        let (e, tag, check) = (le(0), le(4), le(8));
        if check != bucket_check(slot32, e, tag) {
            return Err(bad());
        }
        Ok((e, tag))
    }

    /// Looks a package up by name (any spelling PEP 503 normalizes alike): a probe of at most
    /// the file's longest probe sequence, no allocation. The entry found is checksummed.
    pub fn get(&self, name: &str) -> Result<Option<DplEntry<'_>>, DplError> {
        // Names are usually passed already normalized: hash and compare their bytes as they
        // are, and normalize on the fly only when that finds nothing and the name needs it.
        let raw = self.probe(hash_normalized(name.as_bytes()), |n| n == name.as_bytes());
        if let Ok(Some(_)) = raw {
            return raw;
        }
        // Not found (or damage met) as spelled: that is the answer if the name is normalized.
        let mut buf = [0u8; NAME_BUF];
        match normalize_into(name, &mut buf) {
            Some(len) => {
                let normalized = buf.get(..len).unwrap_or_default();
                if normalized == name.as_bytes() {
                    return raw;
                }
                self.probe(hash_normalized(normalized), |n| n == normalized)
            }
            None if is_normalized(name) => raw,
            None => self.probe(name_hash(name), |n| {
                normalized_bytes(name).eq(n.iter().copied())
            }),
        }
    }

    /// Follows the probe sequence of `hash` and returns the first entry whose normalized name
    /// satisfies `matches`.
    #[inline]
    fn probe(
        &self,
        hash: u64,
        matches: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<DplEntry<'_>>, DplError> {
        let tag = (hash >> 32) as u32;
        let mask = self.bucket_count - 1;
        let mut slot = (hash as usize) & mask;
        for _ in 0..self.max_probe {
            let (e, t) = self.bucket(slot)?;
            if e == 0 {
                return Ok(None);
            }
            if t == tag {
                let entry = self.entry(e as usize - 1)?;
                if matches(entry.string_bytes(S_NORMALIZED)) {
                    return Ok(Some(entry));
                }
            }
            slot = (slot + 1) & mask;
        }
        Ok(None)
    }

    /// Entry `index` (in normalized-name order), bounds-checked and checksummed.
    #[inline]
    pub fn entry(&self, index: usize) -> Result<DplEntry<'_>, DplError> {
        self.read_entry(index, false)
    }

    fn verified_bits(&self) -> &[AtomicU64] {
        self.verified.get_or_init(|| {
            (0..self.entry_count.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect()
        })
    }

    /// Reads entry `index`; its checksum and contents are checked unless this reader already
    /// checked them (and `recheck` is false).
    #[inline]
    fn read_entry(&self, index: usize, recheck: bool) -> Result<DplEntry<'_>, DplError> {
        let index32 = index as u32;
        let oob = |what, value: u64, limit: u64| DplError::EntryOutOfRange {
            index: index32,
            what,
            value,
            limit,
        };
        if index >= self.entry_count {
            return Err(DplError::OutOfRange {
                what: "entry index",
                value: index as u64,
                limit: self.entry_count.saturating_sub(1) as u64,
            });
        }
        let b = self.bytes.as_ref();
        let at = self.entries_off + index * ENTRY_LEN;
        let rec: &[u8; ENTRY_LEN] = b
            .get(at..at + ENTRY_LEN)
            .and_then(|r| r.try_into().ok())
            .ok_or(DplError::Truncated {
                needed: (at + ENTRY_LEN) as u64,
                len: b.len() as u64,
            })?;
        let le32 = |at: usize| rec_u32(rec, at);
        let le64 = |at: usize| rec_u64(rec, at);

        let deps_start = le32(E_DEPS_START) as usize;
        let deps_end = deps_start + le32(E_DEPS_COUNT) as usize;
        if deps_end > self.dep_count {
            return Err(oob(
                "dependency range end",
                deps_end as u64,
                self.dep_count as u64,
            ));
        }
        let mut lens = [0usize; STRING_COUNT];
        let mut blob_len = 0usize;
        for (len, w) in lens.iter_mut().zip(words_u32(&rec[E_LENS..])) {
            *len = w as usize;
            blob_len += *len;
        }
        let blob_off = le32(E_BLOB_OFF) as usize;
        let blob_end = blob_off + blob_len;
        if blob_end > self.strings_len {
            return Err(oob(
                "string blob end",
                blob_end as u64,
                self.strings_len as u64,
            ));
        }
        let blob = &b[self.strings_off + blob_off..self.strings_off + blob_end];
        let deps = &b[self.deps_off + deps_start * 4..self.deps_off + deps_end * 4];
        let mut ends = [0u32; STRING_COUNT];
        let mut pos = 0;
        for (end, len) in ends.iter_mut().zip(lens) {
            pos += len;
            *end = pos as u32;
        }
        let flags = le32(E_FLAGS);
        let entry = DplEntry {
            index: index32,
            flags,
            rec,
            text: blob,
            ends,
            deps,
        };
        let bits = self.verified_bits();
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let seen = bits
            .get(word)
            .is_some_and(|w| w.load(Ordering::Relaxed) & bit != 0);
        if seen && !recheck {
            return Ok(entry);
        }

        let sum = entry_checksum(
            ENTRY_SEED ^ index as u64,
            &rec[E_CHECKSUM + 8..],
            blob,
            deps,
        );
        let stored = le64(E_CHECKSUM);
        if sum != stored {
            return Err(DplError::EntryChecksum {
                index: index32,
                expected: stored,
                got: sum,
            });
        }

        // The checksum matched: what follows only catches files crafted to be inconsistent.
        let bad = |what| DplError::BadEntry {
            index: index32,
            what,
        };
        if flags & !F_KNOWN != 0 {
            return Err(bad("unknown flags"));
        }
        let text = std::str::from_utf8(blob).map_err(|e| {
            let mut end = 0;
            let field = lens
                .iter()
                .position(|l| {
                    end += l;
                    end > e.valid_up_to()
                })
                .unwrap_or(0);
            DplError::NotUtf8 {
                index: index32,
                field: STRING_NAMES[field],
            }
        })?;
        for s in 0..STRING_COUNT {
            if STRING_FLAGS[s] != 0 && flags & STRING_FLAGS[s] == 0 && lens[s] != 0 {
                return Err(bad("an absent string has a length"));
            }
            if !text.is_char_boundary(ends[s] as usize) {
                return Err(DplError::NotUtf8 {
                    index: index32,
                    field: STRING_NAMES[s],
                });
            }
        }

        let local_rule = match flags & (F_SDIST | F_DIRECTORY | F_EDITABLE | F_ARCHIVE) {
            f if f & F_DIRECTORY != 0 && f & F_SDIST != 0 => {
                Some("a directory entry names an sdist")
            }
            f if f & F_DIRECTORY != 0 && (flags & (F_PATH | F_URL | F_SIZE) != F_PATH) => {
                Some("a directory entry needs a path and no URL or size")
            }
            f if f & F_EDITABLE != 0 && f & F_DIRECTORY == 0 => {
                Some("an editable entry is not a directory")
            }
            f if f & F_ARCHIVE != 0 && (f & F_SDIST == 0 || flags & F_PATH == 0) => {
                Some("an archive entry needs an sdist named by path")
            }
            _ => None,
        };
        if let Some(reason) = local_rule {
            return Err(bad(reason));
        }
        if flags & F_SDIST != 0 {
            let location = [S_URL, S_PATH]
                .into_iter()
                .filter(|&s| flags & STRING_FLAGS[s] != 0)
                .find_map(|s| text.get(ends[s - 1] as usize..ends[s] as usize));
            if location.and_then(last_segment).is_none() {
                return Err(bad("an sdist entry has no URL or path naming a file"));
            }
        }

        let extras_bitmap = le64(E_EXTRAS_BITMAP);
        let extras = text
            .get(ends[S_EXTRAS - 1] as usize..ends[S_EXTRAS] as usize)
            .unwrap_or_default();
        if extras_bitmap != 0 || !extras.is_empty() {
            let extra_count = if extras.is_empty() {
                0
            } else {
                extras.bytes().filter(|&c| c == EXTRAS_SEP as u8).count() + 1
            };
            if extra_count > MAX_EXTRAS
                || (extra_count < MAX_EXTRAS && extras_bitmap >> extra_count != 0)
            {
                return Err(bad(
                    "extras bitmap selects extras the package does not have",
                ));
            }
        }
        for d in words_u32(deps) {
            if d as usize >= self.entry_count {
                return Err(oob(
                    "dependency index",
                    d.into(),
                    self.entry_count.saturating_sub(1) as u64,
                ));
            }
        }
        if let Some(w) = bits.get(word) {
            w.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(entry)
    }

    /// All entries in normalized-name order.
    pub fn entries(&self) -> impl Iterator<Item = Result<DplEntry<'_>, DplError>> {
        (0..self.entry_count).map(|i| self.entry(i))
    }

    /// The whole lock as an owned value (dependencies as normalized names).
    pub fn to_lock(&self) -> Result<Lock, DplError> {
        let entries = self.entries().collect::<Result<Vec<_>, _>>()?;
        let packages = entries
            .iter()
            .map(|e| {
                let deps = e
                    .dependencies()
                    .map(|d| entries[d as usize].normalized_name().to_string())
                    .collect();
                e.to_package(deps)
            })
            .collect();
        Ok(Lock {
            meta: self.meta(),
            packages,
        })
    }

    /// Checks the whole file: the blake3 of the body, every bucket, every entry, and that the
    /// file is laid out exactly as the builder lays it out. O(file size).
    pub fn verify(&self) -> Result<(), DplError> {
        let b = self.bytes.as_ref();
        let expected = ContentHash::from_bytes(hash_at(b, H_BODY_HASH).unwrap_or_default());
        let got = ContentHash::of(b.get(HEADER_LEN..).unwrap_or_default());
        if expected != got {
            return Err(DplError::BodyChecksum { expected, got });
        }
        let inconsistent = DplError::Inconsistent;

        let mut seen = vec![false; self.entry_count];
        for slot in 0..self.bucket_count {
            let (e, _) = self.bucket(slot)?;
            if e != 0 {
                match seen.get_mut(e as usize - 1) {
                    Some(s) if !*s => *s = true,
                    Some(_) => return Err(inconsistent("two buckets hold the same entry")),
                    None => return Err(inconsistent("a bucket points past the entries")),
                }
            }
        }
        if seen.iter().any(|s| !s) {
            return Err(inconsistent("an entry has no bucket"));
        }

        let mut meta_end = 0u64;
        for at in [H_ENVIRONMENT, H_PYTHON_VERSION, H_REQUIRES_PYTHON] {
            if u64::from(header_u32(b, at)) != meta_end {
                return Err(inconsistent("project strings are not laid out in order"));
            }
            meta_end += u64::from(header_u32(b, at + 4));
        }
        let mut blob_at = meta_end;
        let mut dep_at = 0u64;
        let mut prev: Option<&str> = None;
        for i in 0..self.entry_count {
            let e = self.read_entry(i, true)?;
            let rec = &b[self.entries_off + i * ENTRY_LEN..];
            if u32_at(rec, E_BLOB_OFF).map(u64::from) != Some(blob_at) {
                return Err(inconsistent("string blobs are not laid out in order"));
            }
            blob_at += (0..STRING_COUNT)
                .map(|s| u64::from(u32_at(rec, E_LENS + 4 * s).unwrap_or_default()))
                .sum::<u64>();
            if u64::from(u32_at(rec, E_DEPS_START).unwrap_or_default()) != dep_at {
                return Err(inconsistent("dependency lists are not laid out in order"));
            }
            dep_at += e.dependencies().len() as u64;
            if e.normalized_name() != normalize_name(e.name()) {
                return Err(inconsistent("a normalized name does not match its name"));
            }
            if prev.is_some_and(|p| p >= e.normalized_name()) {
                return Err(inconsistent("entries are not sorted by normalized name"));
            }
            prev = Some(e.normalized_name());
            if version_components(e.version()).ok()
                != Some((e.version_major(), e.version_minor(), e.version_patch()))
            {
                return Err(inconsistent("version components do not match the version"));
            }
            let deps: Vec<u32> = e.dependencies().collect();
            if deps.windows(2).any(|w| w[0] >= w[1]) {
                return Err(inconsistent("a dependency list is not sorted"));
            }
            let flags = u32_at(rec, E_FLAGS).unwrap_or_default();
            if (flags & F_STORE_HASH == 0 && hash_at(rec, E_STORE_HASH) != Some([0; 32]))
                || (flags & F_SIZE == 0 && u64_at(rec, E_WHEEL_SIZE) != Some(0))
            {
                return Err(inconsistent("an absent field is not zero"));
            }
            match self.get(e.name())? {
                Some(found) if found.index() == e.index() => {}
                _ => {
                    return Err(inconsistent(
                        "an entry is unreachable through the hash table",
                    ));
                }
            }
        }
        if blob_at != self.strings_len as u64 {
            return Err(inconsistent("the string section has bytes no entry uses"));
        }
        if dep_at != self.dep_count as u64 {
            return Err(inconsistent(
                "the dependency section has edges no entry uses",
            ));
        }
        Ok(())
    }
}
