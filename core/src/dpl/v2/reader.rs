//! Reads DPL version 2 bytes as untrusted input: the header is checked on open, the body's
//! blake3 by [`UniversalDplReader::verify`], and every offset and count before it is used.
use std::path::Path;

use memmap2::Mmap;

use super::*;
use crate::dpl::format::{Checksum, normalized_bytes, u64_at};
use crate::dpl::{DplFileError, DplWheel, LocalSource, UniversalLock, UniversalLockedPackage};
use crate::format::bytes::words_u32;
use crate::hash::ContentHash;

/// A checked view of DPL version 2 bytes (a `Mmap`, a `Vec<u8>`, a slice).
#[derive(Debug)]
pub struct UniversalDplReader<B> {
    bytes: B,
    entry_count: usize,
    marker_count: usize,
    file_count: usize,
    edge_count: usize,
    env_count: usize,
    markers_off: usize,
    entries_off: usize,
    files_off: usize,
    edges_off: usize,
    strings_off: usize,
    file_len: usize,
    requires_python: Option<(u32, u32)>,
    inputs_hash: ContentHash,
    built_directories: bool,
}

/// One entry of a universal lock, borrowed from the file; its strings, marker index, files and
/// edges were checked when it was read, so its accessors cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct UniversalDplEntry<'a> {
    index: u32,
    name: &'a str,
    version: &'a str,
    requires_python: Option<&'a str>,
    index_url: Option<&'a str>,
    marker: Option<u32>,
    /// The entry's file records: its wheels, then its sdist.
    files: &'a [u8],
    wheel_count: usize,
    /// A file record follows the wheels: the sdist, or the local directory.
    has_sdist: bool,
    /// `EF_*` bits of the local source (directory, editable, archive).
    local: u32,
    strings: &'a [u8],
    edges: &'a [u8],
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32_at(b, at).unwrap_or_default()
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64_at(b, at).unwrap_or_default()
}

/// The string at the `(offset, length)` pair stored at `at` of `rec`, checked to lie in
/// `strings` and to be UTF-8.
fn string_in<'a>(
    strings: &'a [u8],
    rec: &[u8],
    at: usize,
    index: u32,
    field: &'static str,
) -> Result<&'a str, DplError> {
    let (off, len) = (le32(rec, at) as usize, le32(rec, at + 4) as usize);
    let bytes = off
        .checked_add(len)
        .and_then(|end| strings.get(off..end))
        .ok_or(DplError::EntryOutOfRange {
            index,
            what: field,
            value: off as u64 + len as u64,
            limit: strings.len() as u64,
        })?;
    std::str::from_utf8(bytes).map_err(|_| DplError::NotUtf8 { index, field })
}

/// One file record, checked.
fn file_at<'a>(strings: &'a [u8], rec: &[u8], index: u32) -> Result<DplWheel<'a>, DplError> {
    let flags = le32(rec, F_FLAGS);
    if flags & !FF_KNOWN != 0 || le32(rec, F_FLAGS + 4) != 0 {
        return Err(DplError::BadEntry {
            index,
            what: "a file record has unknown flags",
        });
    }
    let opt = |bit: u32, at: usize, field| {
        (flags & bit != 0)
            .then(|| string_in(strings, rec, at, index, field))
            .transpose()
    };
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(rec.get(F_SHA256..F_SHA256 + 32).unwrap_or(&[0; 32]));
    Ok(DplWheel {
        filename: string_in(strings, rec, F_NAME, index, "file name")?,
        url: opt(FF_URL, F_URL, "file url")?,
        path: opt(FF_PATH, F_PATH, "file path")?,
        sha256,
        size: (flags & FF_SIZE != 0).then(|| le64(rec, F_SIZE)),
    })
}

impl<'a> UniversalDplEntry<'a> {
    /// Position in the file (entries are sorted by normalized name, version, marker).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The name as the index spells it.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The version.
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The package's own `Requires-Python`.
    pub fn requires_python(&self) -> Option<&'a str> {
        self.requires_python
    }

    /// The index it came from.
    pub fn index_url(&self) -> Option<&'a str> {
        self.index_url
    }

    /// Index of its marker in the lock's marker table; `None` where it holds everywhere the lock
    /// does.
    pub fn marker_index(&self) -> Option<u32> {
        self.marker
    }

    fn file(&self, i: usize) -> Option<DplWheel<'a>> {
        let rec = self.files.get(i * FILE_LEN..(i + 1) * FILE_LEN)?;
        file_at(self.strings, rec, self.index).ok()
    }

    /// How many wheels it lists.
    pub fn wheel_count(&self) -> usize {
        self.wheel_count
    }

    /// Its wheels, in the lock's order.
    pub fn wheels(&self) -> impl ExactSizeIterator<Item = DplWheel<'a>> + '_ {
        // Every record was checked when the entry was read, so none is skipped here.
        (0..self.wheel_count).map(|i| self.file(i).unwrap_or(EMPTY_FILE))
    }

    /// Its source distribution, when the lock has one (for a local archive, that archive).
    pub fn sdist(&self) -> Option<DplWheel<'a>> {
        (self.has_sdist && self.local & EF_DIRECTORY == 0)
            .then(|| self.file(self.wheel_count))
            .flatten()
    }

    /// The local directory it is locked as (path relative to the lock's directory, editable).
    pub fn directory(&self) -> Option<(&'a str, bool)> {
        if self.local & EF_DIRECTORY == 0 {
            return None;
        }
        let path = self.file(self.wheel_count)?.path?;
        Some((path, self.local & EF_EDITABLE != 0))
    }

    /// Whether its sdist is a local source archive named by path.
    pub fn is_archive(&self) -> bool {
        self.local & EF_ARCHIVE != 0
    }

    /// The local source it is locked as, if any.
    pub fn local_source(&self) -> Option<LocalSource> {
        match self.directory() {
            Some((path, editable)) => Some(LocalSource::Directory {
                path: path.to_owned(),
                editable,
            }),
            None => self.is_archive().then_some(LocalSource::Archive),
        }
    }

    /// Indices of the entries it depends on (each checked to be in range), ascending.
    pub fn dependencies(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        words_u32(self.edges)
    }
}

/// Stands in for a record that cannot be read; never returned for a checked entry.
const EMPTY_FILE: DplWheel<'static> = DplWheel {
    filename: "",
    url: None,
    path: None,
    sha256: [0; 32],
    size: None,
};

impl UniversalDplReader<Mmap> {
    /// Maps the file at `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, DplFileError> {
        crate::dpl::open_mapped(path, Self::from_bytes)
    }
}

impl<B: AsRef<[u8]>> UniversalDplReader<B> {
    /// Checks the header: magic, version, checksum, flags, and that the sections lie where the
    /// counts put them, within the file. O(1).
    pub fn from_bytes(bytes: B) -> Result<Self, DplError> {
        let b = bytes.as_ref();
        let len = b.len() as u64;
        let version = format_version(b)?;
        if version != VERSION_2 {
            return Err(DplError::UnsupportedVersion {
                expected: VERSION_2,
                got: version,
            });
        }
        if b.len() < HEADER_LEN {
            return Err(DplError::Truncated {
                needed: HEADER_LEN as u64,
                len,
            });
        }
        let sum = Checksum::new(HEADER_SEED_2)
            .update(&b[..H_CHECKSUM])
            .finish();
        let stored = le64(b, H_CHECKSUM);
        if sum != stored {
            return Err(DplError::HeaderChecksum {
                expected: stored,
                got: sum,
            });
        }
        let flags = le32(b, H_FLAGS);
        if flags != 0 {
            return Err(DplError::UnknownFeatures(flags));
        }
        let file_len = le64(b, H_FILE_LEN);
        if file_len > len {
            return Err(DplError::Truncated {
                needed: file_len,
                len,
            });
        }
        let expect = crate::dpl::reader::expect_header;
        expect(
            "header length",
            HEADER_LEN as u64,
            le32(b, H_HEADER_LEN).into(),
        )?;
        expect(
            "meta flags",
            0,
            (le32(b, H_META_FLAGS) & !META_KNOWN).into(),
        )?;
        expect("reserved header word", 0, le32(b, H_META_FLAGS + 4).into())?;
        let count = |at| u64::from(le32(b, at));
        let (entries, markers, files, edges, envs) = (
            count(H_ENTRY_COUNT),
            count(H_MARKER_COUNT),
            count(H_FILE_COUNT),
            count(H_EDGE_COUNT),
            count(H_ENV_COUNT),
        );
        // Counts are u32, so none of these sums can overflow a u64.
        let markers_off = HEADER_LEN as u64;
        let envs_off = markers_off + markers * MARKER_LEN as u64;
        let entries_off = envs_off + envs * ENV_LEN as u64;
        let files_off = entries_off + entries * ENTRY_LEN as u64;
        let edges_off = files_off + files * FILE_LEN as u64;
        let strings_off = edges_off + edges * EDGE_LEN as u64;
        expect("marker section offset", markers_off, le64(b, H_MARKERS_OFF))?;
        expect("entry section offset", entries_off, le64(b, H_ENTRIES_OFF))?;
        expect("file section offset", files_off, le64(b, H_FILES_OFF))?;
        expect("edge section offset", edges_off, le64(b, H_EDGES_OFF))?;
        expect("string section offset", strings_off, le64(b, H_STRINGS_OFF))?;
        if strings_off > file_len {
            return Err(DplError::OutOfRange {
                what: "section lengths",
                value: strings_off,
                limit: file_len,
            });
        }
        expect(
            "string section length",
            file_len - strings_off,
            le64(b, H_STRINGS_LEN),
        )?;
        let strings_len = file_len - strings_off;
        let requires_python = if le32(b, H_META_FLAGS) & META_REQUIRES_PYTHON != 0 {
            let (off, n) = (le32(b, H_REQUIRES_PYTHON), le32(b, H_REQUIRES_PYTHON + 4));
            if u64::from(off) + u64::from(n) > strings_len {
                return Err(DplError::OutOfRange {
                    what: "requires-python string",
                    value: u64::from(off) + u64::from(n),
                    limit: strings_len,
                });
            }
            Some((off, n))
        } else {
            expect("absent requires-python", 0, le64(b, H_REQUIRES_PYTHON))?;
            None
        };
        let mut inputs = [0u8; 32];
        inputs.copy_from_slice(&b[H_INPUTS_HASH..H_INPUTS_HASH + 32]);
        // Everything fits in the file, so in a usize.
        let us = |v: u64| v as usize;
        Ok(Self {
            entry_count: us(entries),
            marker_count: us(markers),
            file_count: us(files),
            edge_count: us(edges),
            env_count: us(envs),
            markers_off: us(markers_off),
            entries_off: us(entries_off),
            files_off: us(files_off),
            edges_off: us(edges_off),
            strings_off: us(strings_off),
            file_len: us(file_len),
            requires_python,
            inputs_hash: ContentHash::from_bytes(inputs),
            built_directories: le32(b, H_META_FLAGS) & META_BUILT_DIRECTORIES != 0,
            bytes,
        })
    }

    fn b(&self) -> &[u8] {
        // `from_bytes` checked that `file_len` bytes are present.
        let b = self.bytes.as_ref();
        b.get(..self.file_len).unwrap_or(b)
    }

    fn strings(&self) -> &[u8] {
        self.b().get(self.strings_off..).unwrap_or_default()
    }

    /// A key for this exact file, in O(1): the blake3 of its header, which holds the blake3 of
    /// the rest (checked by [`verify`](Self::verify)).
    pub fn key(&self) -> ContentHash {
        ContentHash::of(self.b().get(..HEADER_LEN).unwrap_or_default())
    }

    /// The hash of the inputs the lock was resolved from.
    pub fn inputs_hash(&self) -> ContentHash {
        self.inputs_hash
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entry_count
    }

    /// True when the lock has no entries.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// The lock's `requires-python`.
    pub fn requires_python(&self) -> Result<Option<&str>, DplError> {
        let Some((off, n)) = self.requires_python else {
            return Ok(None);
        };
        let bytes = self
            .strings()
            .get(off as usize..off as usize + n as usize)
            .unwrap_or_default();
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| DplError::MetaNotUtf8 {
                field: "requires-python",
            })
    }

    /// The number of distinct markers.
    pub fn marker_count(&self) -> usize {
        self.marker_count
    }

    /// Marker `i` of the marker table.
    pub fn marker(&self, i: u32) -> Result<&str, DplError> {
        let i = i as usize;
        if i >= self.marker_count {
            return Err(DplError::OutOfRange {
                what: "marker index",
                value: i as u64,
                limit: self.marker_count as u64,
            });
        }
        let at = self.markers_off + i * MARKER_LEN;
        let rec = self.b().get(at..at + MARKER_LEN).unwrap_or_default();
        string_in(self.strings(), rec, 0, u32::MAX, "marker")
    }

    /// The lock's `environments` markers.
    pub fn environments(&self) -> Result<Vec<&str>, DplError> {
        let at = self.markers_off + self.marker_count * MARKER_LEN;
        let words = self
            .b()
            .get(at..at + self.env_count * ENV_LEN)
            .unwrap_or_default();
        words_u32(words).map(|i| self.marker(i)).collect()
    }

    /// Entry `i`, checked.
    pub fn entry(&self, i: usize) -> Result<UniversalDplEntry<'_>, DplError> {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        if i >= self.entry_count {
            return Err(DplError::OutOfRange {
                what: "entry index",
                value: i as u64,
                limit: self.entry_count as u64,
            });
        }
        let b = self.b();
        let strings = self.strings();
        let at = self.entries_off + i * ENTRY_LEN;
        let rec = b.get(at..at + ENTRY_LEN).unwrap_or_default();
        let flags = le32(rec, E_FLAGS);
        if flags & !EF_KNOWN != 0 || le64(rec, ENTRY_LEN - 8) != 0 {
            return Err(DplError::BadEntry {
                index,
                what: "unknown flags or a reserved field set",
            });
        }
        let opt = |bit: u32, at: usize, field| {
            (flags & bit != 0)
                .then(|| string_in(strings, rec, at, index, field))
                .transpose()
        };
        let marker = match le32(rec, E_MARKER) {
            NO_MARKER => None,
            m if (m as usize) < self.marker_count => Some(m),
            m => {
                return Err(DplError::EntryOutOfRange {
                    index,
                    what: "marker index",
                    value: m.into(),
                    limit: self.marker_count as u64,
                });
            }
        };
        let range = |first: usize, n: u64, total: usize, what| {
            let end = (first as u64).saturating_add(n);
            if end > total as u64 {
                return Err(DplError::EntryOutOfRange {
                    index,
                    what,
                    value: end,
                    limit: total as u64,
                });
            }
            Ok(first..end as usize)
        };
        let wheel_count = le32(rec, E_WHEEL_COUNT) as usize;
        let local = flags & (EF_DIRECTORY | EF_EDITABLE | EF_ARCHIVE);
        // A directory takes the sdist's place; editable only with a directory, an archive only
        // with an sdist.
        let consistent = match (flags & EF_SDIST != 0, local & EF_DIRECTORY != 0) {
            (true, true) => false,
            (sdist, directory) => {
                (directory || local & EF_EDITABLE == 0) && (sdist || local & EF_ARCHIVE == 0)
            }
        };
        if !consistent {
            return Err(DplError::BadEntry {
                index,
                what: "inconsistent local source flags",
            });
        }
        let has_sdist = flags & (EF_SDIST | EF_DIRECTORY) != 0;
        let files = range(
            le32(rec, E_FIRST_FILE) as usize,
            wheel_count as u64 + u64::from(has_sdist),
            self.file_count,
            "files",
        )?;
        let files = b
            .get(self.files_off + files.start * FILE_LEN..self.files_off + files.end * FILE_LEN)
            .unwrap_or_default();
        for rec in files.chunks_exact(FILE_LEN) {
            file_at(strings, rec, index)?;
        }
        let edges = range(
            le32(rec, E_FIRST_EDGE) as usize,
            le32(rec, E_EDGE_COUNT).into(),
            self.edge_count,
            "dependency edges",
        )?;
        let edges = b
            .get(self.edges_off + edges.start * EDGE_LEN..self.edges_off + edges.end * EDGE_LEN)
            .unwrap_or_default();
        if let Some(bad) = words_u32(edges).find(|&e| e as usize >= self.entry_count) {
            return Err(DplError::EntryOutOfRange {
                index,
                what: "dependency",
                value: bad.into(),
                limit: self.entry_count as u64,
            });
        }
        Ok(UniversalDplEntry {
            index,
            name: string_in(strings, rec, E_NAME, index, "name")?,
            version: string_in(strings, rec, E_VERSION, index, "version")?,
            requires_python: opt(EF_REQUIRES_PYTHON, E_REQUIRES_PYTHON, "requires-python")?,
            index_url: opt(EF_INDEX, E_INDEX, "index")?,
            marker,
            files,
            wheel_count,
            has_sdist,
            local,
            strings,
            edges,
        })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = Result<UniversalDplEntry<'_>, DplError>> {
        (0..self.entry_count).map(|i| self.entry(i))
    }

    /// The entries named `name` (any spelling of it), by binary search over the sorted entries.
    pub fn get(&self, name: &str) -> Result<Vec<UniversalDplEntry<'_>>, DplError> {
        let key =
            |e: &UniversalDplEntry<'_>| normalized_bytes(e.name()).cmp(normalized_bytes(name));
        let (mut lo, mut hi) = (0, self.entry_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(&self.entry(mid)?).is_lt() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut found = Vec::new();
        for i in lo..self.entry_count {
            let e = self.entry(i)?;
            if !key(&e).is_eq() {
                break;
            }
            found.push(e);
        }
        Ok(found)
    }

    /// Checks the whole file: the body's blake3, then that every marker and entry reads, that
    /// entries are sorted (lookups rely on it) and that their files and edges tile their sections
    /// in entry order, as the builder lays them out.
    pub fn verify(&self) -> Result<(), DplError> {
        let b = self.b();
        let got = ContentHash::of(b.get(HEADER_LEN..).unwrap_or_default());
        let mut stored = [0u8; 32];
        stored.copy_from_slice(&b[H_BODY_HASH..H_BODY_HASH + 32]);
        let expected = ContentHash::from_bytes(stored);
        if got != expected {
            return Err(DplError::BodyChecksum { expected, got });
        }
        self.requires_python()?;
        for i in 0..self.marker_count {
            self.marker(i as u32)?;
        }
        self.environments()?;
        let (mut next_file, mut next_edge) = (0, 0);
        let mut previous: Option<UniversalDplEntry<'_>> = None;
        for i in 0..self.entry_count {
            let e = self.entry(i)?;
            let at = self.entries_off + i * ENTRY_LEN;
            let rec = b.get(at..at + ENTRY_LEN).unwrap_or_default();
            if le32(rec, E_FIRST_FILE) as usize != next_file
                || le32(rec, E_FIRST_EDGE) as usize != next_edge
            {
                return Err(DplError::Inconsistent(
                    "entries' files or edges are not laid out in entry order",
                ));
            }
            next_file += e.wheel_count + usize::from(e.has_sdist);
            next_edge += e.edges.len() / EDGE_LEN;
            if let Some(p) = previous
                && normalized_bytes(p.name())
                    .cmp(normalized_bytes(e.name()))
                    .is_gt()
            {
                return Err(DplError::Inconsistent("entries are not sorted by name"));
            }
            previous = Some(e);
        }
        let built = (0..self.entry_count)
            .filter_map(|i| self.entry(i).ok())
            .any(|e| matches!(e.directory(), Some((_, false))));
        if built != self.built_directories {
            return Err(DplError::Inconsistent(
                "the header's built-directories flag does not match the entries",
            ));
        }
        if next_file != self.file_count || next_edge != self.edge_count {
            return Err(DplError::Inconsistent("files or edges that no entry owns"));
        }
        Ok(())
    }

    /// Whether some entry is a local directory installed built, not editable (a header flag,
    /// checked against the entries by [`Self::verify`]).
    pub fn has_built_directories(&self) -> bool {
        self.built_directories
    }

    /// The whole lock, owned (dependencies by name, each name once).
    pub fn to_universal_lock(&self) -> Result<UniversalLock, DplError> {
        let entries = self.entries().collect::<Result<Vec<_>, _>>()?;
        let mut packages = Vec::with_capacity(entries.len());
        for e in &entries {
            let mut dependencies: Vec<String> = Vec::new();
            for d in e.dependencies() {
                let name = entries[d as usize].name();
                if !dependencies.iter().any(|n| n == name) {
                    dependencies.push(name.to_owned());
                }
            }
            packages.push(UniversalLockedPackage {
                name: e.name().to_owned(),
                version: e.version().to_owned(),
                marker: e
                    .marker_index()
                    .map(|m| self.marker(m).map(str::to_owned))
                    .transpose()?,
                requires_python: e.requires_python().map(str::to_owned),
                index_url: e.index_url().map(str::to_owned),
                dependencies,
                wheels: e.wheels().map(|w| w.to_owned()).collect(),
                sdist: e.sdist().map(|w| w.to_owned()),
                local: e.local_source(),
            });
        }
        Ok(UniversalLock {
            requires_python: self.requires_python()?.map(str::to_owned),
            environments: self
                .environments()?
                .into_iter()
                .map(str::to_owned)
                .collect(),
            inputs_hash: self.inputs_hash,
            packages,
        })
    }
}
