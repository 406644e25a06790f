//! Thin objects: a store object whose file bytes live only in its unpacked copy
//! (docs/design/store-one-copy.md).
//!
//! ```text
//! ab/cd/{hash}.dxthin
//!   0              the object's bytes [0, data_off): header, buckets, entries, strings
//!   data_off       kept data: the bytes of every kept entry, back to back, in entry order
//!   len - 64       trailer (64 bytes, below)
//! ```
//!
//! The object keeps its name (the blake3 of the full `.dxpkg`) and its sidecar: a reader
//! reassembles any byte range of the full object from the index, the kept data, the unpacked
//! files (each at its data offset) and zeros between them, and checks it against the group CVs
//! as it checks a full object. An entry is *kept* when its unpacked form is not its bytes
//! verbatim: symlinks (a link, or a copy on Windows) and scripts (whose `#!python` is
//! rewritten). Every other file's bytes are its unpacked file's.
//!
//! Trailer, little-endian: magic `DXTHIN\0\n`, version u32 (`1`), flags u32 (`0`), object
//! length u64, index length u64 (the object's `data_off`), kept length u64, 24 zero bytes. The
//! trailer sits at the end so that the file starts with the object's own header and the index
//! is read in place.
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;

use super::Damage;
use crate::dxpkg::{DxpkgReader, EntryKind, FileEntry, Scheme};
use crate::format::bytes::u64_at;

/// The file name extension of a thin object.
pub(crate) const EXTENSION: &str = "dxthin";

const MAGIC: [u8; 8] = *b"DXTHIN\0\n";
const VERSION: u32 = 1;
const TRAILER_LEN: u64 = 64;

/// Why a `.dxthin` file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThinProblem {
    /// Shorter than its trailer.
    #[error("truncated: {0} bytes")]
    Truncated(u64),
    /// The trailer's magic is wrong.
    #[error("bad trailer magic")]
    Magic,
    /// A version or feature this build does not read.
    #[error("version {version} with flags {flags:#x}, expected version {VERSION} without flags")]
    Version {
        /// The trailer's version.
        version: u32,
        /// The trailer's flags.
        flags: u32,
    },
    /// The reserved bytes are not zero.
    #[error("reserved trailer bytes set")]
    Reserved,
    /// The file's length disagrees with the trailer.
    #[error("{got} bytes, the trailer describes {expected}")]
    Length {
        /// Index + kept data + trailer.
        expected: u64,
        /// The file's length.
        got: u64,
    },
    /// The index disagrees with the trailer or describes overlapping files.
    #[error("the index does not match the trailer: {0}")]
    Index(&'static str),
}

/// What the trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    /// The full object's length.
    pub(crate) object_len: u64,
    /// The object's `data_off`: the file's first `index_len` bytes are the object's.
    pub(crate) index_len: u64,
    /// The bytes of kept entries after the index.
    pub(crate) kept_len: u64,
}

impl Trailer {
    /// The trailer at the end of `file`, checked against the file's length.
    pub(crate) fn parse(file: &[u8]) -> Result<Self, ThinProblem> {
        let len = file.len() as u64;
        let at = len
            .checked_sub(TRAILER_LEN)
            .ok_or(ThinProblem::Truncated(len))? as usize;
        let t = &file[at..];
        if t[..8] != MAGIC {
            return Err(ThinProblem::Magic);
        }
        let word = |i: usize| u32::from_le_bytes(t[i..i + 4].try_into().expect("4 bytes"));
        let (version, flags) = (word(8), word(12));
        if version != VERSION || flags != 0 {
            return Err(ThinProblem::Version { version, flags });
        }
        if t[40..64] != [0; 24] {
            return Err(ThinProblem::Reserved);
        }
        let field = |i| u64_at(t, i).map_err(|_| ThinProblem::Truncated(len));
        let trailer = Self {
            object_len: field(16)?,
            index_len: field(24)?,
            kept_len: field(32)?,
        };
        let expected = trailer
            .index_len
            .checked_add(trailer.kept_len)
            .and_then(|n| n.checked_add(TRAILER_LEN))
            .ok_or(ThinProblem::Index("lengths overflow"))?;
        if expected != len {
            return Err(ThinProblem::Length { expected, got: len });
        }
        Ok(trailer)
    }

    pub(crate) fn encode(&self) -> [u8; TRAILER_LEN as usize] {
        let mut out = [0u8; TRAILER_LEN as usize];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.object_len.to_le_bytes());
        out[24..32].copy_from_slice(&self.index_len.to_le_bytes());
        out[32..40].copy_from_slice(&self.kept_len.to_le_bytes());
        out
    }
}

/// True when `entry`'s bytes are kept in the thin file: its unpacked form is not its bytes.
pub(crate) fn is_kept(entry: &FileEntry<'_>) -> bool {
    entry.kind == EntryKind::Symlink || entry.scheme == Scheme::Scripts
}

/// The `.dxthin` bytes of the full, checked object `full`; refused when a byte between its
/// files is not zero (the writer pads with zeros; a reader of the thin form reassembles zeros).
pub(crate) fn encode(full: &DxpkgReader<impl AsRef<[u8]>>) -> Result<Vec<u8>, ThinProblem> {
    let bytes = full.bytes();
    let index_len = full.data_offset();
    let mut out = bytes[..index_len as usize].to_vec();
    let mut files = Vec::with_capacity(full.len());
    for entry in full.entries() {
        let entry = entry.map_err(|_| ThinProblem::Index("entry"))?;
        if is_kept(&entry) {
            out.extend_from_slice(entry.data);
        }
        files.push(entry.data_offset..entry.data_offset + entry.len);
    }
    files.sort_by_key(|r| r.start);
    let mut at = index_len;
    for file in files
        .iter()
        .chain([&(bytes.len() as u64..bytes.len() as u64)])
    {
        let gap = bytes
            .get(at as usize..file.start.max(at) as usize)
            .ok_or(ThinProblem::Index("overlapping files"))?;
        if gap.iter().any(|b| *b != 0) {
            return Err(ThinProblem::Index("padding that is not zero"));
        }
        at = at.max(file.end);
    }
    let trailer = Trailer {
        object_len: bytes.len() as u64,
        index_len,
        kept_len: out.len() as u64 - index_len,
    };
    out.extend_from_slice(&trailer.encode());
    Ok(out)
}

/// Where one non-empty entry's bytes come from.
#[derive(Debug)]
enum Source {
    /// The unpacked file of entry `index`.
    File { index: usize },
    /// The thin file, from this offset.
    Kept { at: u64 },
}

/// One non-empty entry's bytes in the object.
#[derive(Debug)]
struct Span {
    start: u64,
    len: u64,
    source: Source,
}

impl Span {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// How a thin object's bytes are found: its spans, sorted by offset, and the unpacked files
/// mapped on first use.
#[derive(Debug)]
pub(crate) struct Thin {
    object_len: u64,
    index_len: u64,
    spans: Vec<Span>,
    /// The unpacked copy's root.
    dir: PathBuf,
    /// One cell per span; only file spans are ever filled.
    maps: Box<[OnceLock<Result<Mmap, Damage>>]>,
}

impl Thin {
    /// The spans of `reader` (an index-only reader over the thin file described by `trailer`),
    /// whose unpacked copy is `dir`. Reads the index (O(files)), no unpacked file.
    pub(crate) fn new(
        reader: &DxpkgReader<Mmap>,
        trailer: Trailer,
        dir: &Path,
    ) -> Result<Self, ThinProblem> {
        if reader.data_offset() != trailer.index_len {
            return Err(ThinProblem::Index("data offset"));
        }
        if reader.data_offset().checked_add(reader.data_len()) != Some(trailer.object_len) {
            return Err(ThinProblem::Index("object length"));
        }
        let mut spans = Vec::with_capacity(reader.len());
        let mut kept = 0u64;
        for (index, entry) in reader.entries().enumerate() {
            let entry = entry.map_err(|_| ThinProblem::Index("entry"))?;
            if entry.len == 0 {
                continue;
            }
            let source = if is_kept(&entry) {
                // Checked: entries of a damaged index may overlap, their lengths sum past u64.
                let at = trailer.index_len + kept;
                kept = kept
                    .checked_add(entry.len)
                    .filter(|k| *k <= trailer.kept_len)
                    .ok_or(ThinProblem::Index("kept length"))?;
                Source::Kept { at }
            } else {
                Source::File { index }
            };
            spans.push(Span {
                start: entry.data_offset,
                len: entry.len,
                source,
            });
        }
        if kept != trailer.kept_len {
            return Err(ThinProblem::Index("kept length"));
        }
        spans.sort_by_key(|s| s.start);
        if spans.windows(2).any(|w| w[0].end() > w[1].start) {
            return Err(ThinProblem::Index("overlapping files"));
        }
        let maps = spans.iter().map(|_| OnceLock::new()).collect();
        Ok(Self {
            object_len: trailer.object_len,
            index_len: trailer.index_len,
            spans,
            dir: dir.to_path_buf(),
            maps,
        })
    }

    /// The full object's length.
    pub(crate) fn object_len(&self) -> u64 {
        self.object_len
    }

    /// Bytes `range` of the object (clamped to its length), unchecked: borrowed when they lie in
    /// the index or in one file, else assembled.
    pub(crate) fn bytes<'a>(
        &'a self,
        reader: &'a DxpkgReader<Mmap>,
        range: Range<u64>,
    ) -> Result<Cow<'a, [u8]>, Damage> {
        let end = range.end.min(self.object_len);
        let start = range.start.min(end);
        if start == end {
            return Ok(Cow::Borrowed(&[]));
        }
        if end <= self.index_len {
            return Ok(Cow::Borrowed(&reader.bytes()[start as usize..end as usize]));
        }
        let k = self.spans.partition_point(|s| s.end() <= start);
        if let Some(span) = self.spans.get(k)
            && span.start <= start
            && end <= span.end()
        {
            let bytes = self.span_bytes(reader, k)?;
            return Ok(Cow::Borrowed(
                &bytes[(start - span.start) as usize..(end - span.start) as usize],
            ));
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        self.read_into(reader, start..end, &mut out)?;
        Ok(Cow::Owned(out))
    }

    /// The object's name and group CVs, from one pass over its reassembled bytes (a window at
    /// a time, never the whole object in memory).
    pub(crate) fn hash_groups(
        &self,
        reader: &DxpkgReader<Mmap>,
    ) -> Result<(crate::hash::ContentHash, Vec<blake3::hazmat::ChainingValue>), Damage> {
        const WINDOW: u64 = 1 << 20;
        let mut hasher = super::groups::GroupHasher::default();
        let mut buf = Vec::with_capacity(WINDOW as usize);
        for at in (0..self.object_len).step_by(WINDOW as usize) {
            buf.clear();
            self.read_into(reader, at..at + WINDOW, &mut buf)?;
            hasher.update(&buf);
        }
        Ok(hasher.finish())
    }

    /// Appends bytes `range` of the object (clamped to its length) to `out`, unchecked.
    pub(crate) fn read_into(
        &self,
        reader: &DxpkgReader<Mmap>,
        range: Range<u64>,
        out: &mut Vec<u8>,
    ) -> Result<(), Damage> {
        let end = range.end.min(self.object_len);
        let mut pos = range.start.min(end);
        if pos < self.index_len {
            let stop = end.min(self.index_len);
            out.extend_from_slice(&reader.bytes()[pos as usize..stop as usize]);
            pos = stop;
        }
        let zeros = |out: &mut Vec<u8>, n: u64| out.resize(out.len() + n as usize, 0);
        let mut k = self.spans.partition_point(|s| s.end() <= pos);
        while pos < end {
            let Some(span) = self.spans.get(k).filter(|s| s.start < end) else {
                zeros(out, end - pos);
                break;
            };
            if pos < span.start {
                zeros(out, span.start - pos);
                pos = span.start;
            }
            let stop = end.min(span.end());
            let bytes = self.span_bytes(reader, k)?;
            out.extend_from_slice(
                &bytes[(pos - span.start) as usize..(stop - span.start) as usize],
            );
            pos = stop;
            k += 1;
        }
        Ok(())
    }

    /// All of span `k`'s bytes: from the thin file, or its unpacked file mapped on first use.
    fn span_bytes<'a>(
        &'a self,
        reader: &'a DxpkgReader<Mmap>,
        k: usize,
    ) -> Result<&'a [u8], Damage> {
        let span = &self.spans[k];
        match span.source {
            // `Thin::new` placed every kept span inside the kept section.
            Source::Kept { at } => Ok(&reader.bytes()[at as usize..(at + span.len) as usize]),
            Source::File { index } => {
                match self.maps[k].get_or_init(|| self.map(reader, index, span.len)) {
                    Ok(map) => Ok(&map[..]),
                    Err(damage) => Err(damage.clone()),
                }
            }
        }
    }

    /// Maps the unpacked file of entry `index`, which must be a regular file of `len` bytes.
    fn map(&self, reader: &DxpkgReader<Mmap>, index: usize, len: u64) -> Result<Mmap, Damage> {
        let entry = reader.entry(index).map_err(|_| Damage::Whole)?;
        let path = super::backing::verbatim_file(&entry)
            .map(|rel| self.dir.join(rel))
            .ok_or_else(|| {
                Damage::backing(self.dir.join(entry.path), BackingProblem::UnsafePath)
            })?;
        let damaged = |problem| Damage::backing(path.clone(), problem);
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| damaged(BackingProblem::from(e)))?;
        if !meta.is_file() {
            return Err(damaged(BackingProblem::NotAFile));
        }
        // Unpacked files are written under a temporary directory that is renamed into place
        // and never modified by dx-py afterwards (`sys::map_immutable`); one changed by hand
        // fails its group check.
        let map = crate::sys::map_immutable(&path).map_err(|e| damaged(BackingProblem::from(e)))?;
        if map.len() as u64 != len {
            return Err(damaged(BackingProblem::Length {
                expected: len,
                got: map.len() as u64,
            }));
        }
        Ok(map)
    }
}

/// Why an unpacked file cannot stand for its entry's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackingProblem {
    /// It is missing.
    #[error("it is missing")]
    Missing,
    /// It cannot be read.
    #[error("it cannot be read ({0})")]
    Unreadable(std::io::ErrorKind),
    /// It is a directory or a link.
    #[error("it is not a regular file")]
    NotAFile,
    /// Its length differs from the entry's.
    #[error("it has {got} bytes, expected {expected}")]
    Length {
        /// The entry's length.
        expected: u64,
        /// The file's.
        got: u64,
    },
    /// Its size, mtime or inode changed since it was unpacked (an edit through a layout).
    #[error("it was changed since it was unpacked")]
    Changed,
    /// The entry's path could leave the unpacked copy.
    #[error("its path is not a plain relative path")]
    UnsafePath,
}

impl From<std::io::Error> for BackingProblem {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::Missing,
            kind => Self::Unreadable(kind),
        }
    }
}
