//! One memory-mapped store object, checked against its name as it is read.
//!
//! Opening checks the object's index (header, entries, strings: every byte before the file
//! data) and, for an object of one group, all of it. File bytes are checked lazily: the first
//! read that touches a 16 KiB group hashes that group and compares it with its CV (which merged
//! to the object's name before the object was opened, see [`super::groups`]); a bit per group
//! remembers the answer, so the mount verifies only what it serves and every later read of the
//! group is free. [`MappedPackage::forget`] clears the bits of bytes whose pages were handed
//! back to the kernel, so that they are checked again after the next read from disk.
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use blake3::hazmat::ChainingValue;
use memmap2::Mmap;

use super::groups::{GROUP_LEN, group_count, group_cv, group_range};
use super::thin::Thin;
use super::{Damage, StoreError};
use crate::dxpkg::{DxpkgReader, FileEntry};
use crate::hash::ContentHash;

/// A `.dxpkg` object mapped into memory, header and index checked against the object's name.
/// Cheap to share across threads.
///
/// [`MappedPackage::reader`] gives the index (checked) and raw file bytes (not checked): bytes
/// that leave the process go through [`MappedPackage::entry_data`] or [`MappedPackage::check`].
#[derive(Debug)]
pub struct MappedPackage {
    path: PathBuf,
    /// A full object's bytes, or a thin object's file (its index read in place).
    reader: DxpkgReader<Mmap>,
    /// How a thin object's file bytes are found; `None` for a full object.
    thin: Option<Thin>,
    groups: Groups,
}

/// How an object's group CVs were learnt.
#[derive(Debug, Clone)]
pub(crate) enum Cvs {
    /// Trusted CVs (from this process's own hashing of the bytes), and whether this process
    /// wrote the object itself, so that its bytes count as checked.
    Known {
        cvs: Arc<[ChainingValue]>,
        written_here: bool,
    },
    /// CVs read from the sidecar and already checked against the name.
    Sidecar(Vec<ChainingValue>),
    /// None usable: one pass over the object computes them and checks it whole.
    Compute,
}

/// What is known of an object's groups.
#[derive(Debug)]
struct Groups {
    hash: ContentHash,
    /// One CV per group, trusted (they merged to `hash`); empty for an object of one group,
    /// which is checked whole.
    cvs: Arc<[ChainingValue]>,
    /// Bit `g` set: group `g` matched since it was last read from disk.
    checked: Box<[AtomicU64]>,
}

impl Groups {
    /// The groups of the object `hash` of `len` bytes, with `cvs`; `compute` hashes the whole
    /// object (its name and CVs) when `cvs` is [`Cvs::Compute`].
    fn new(
        hash: ContentHash,
        len: u64,
        cvs: Cvs,
        compute: impl FnOnce() -> Result<(ContentHash, Vec<ChainingValue>), Damage>,
    ) -> Result<Self, Damage> {
        let (cvs, all_checked): (Arc<[ChainingValue]>, bool) = match cvs {
            Cvs::Known { cvs, written_here } => (cvs, written_here),
            Cvs::Sidecar(cvs) => (cvs.into(), false),
            Cvs::Compute if len <= GROUP_LEN => (Arc::from([]), false),
            Cvs::Compute => {
                let (name, cvs) = compute()?;
                if name != hash {
                    return Err(Damage::Whole);
                }
                (cvs.into(), true)
            }
        };
        let fill = if all_checked { u64::MAX } else { 0 };
        Ok(Self {
            hash,
            cvs,
            checked: (0..group_count(len).div_ceil(64))
                .map(|_| AtomicU64::new(fill))
                .collect(),
        })
    }

    /// Checks every group of an object of `len` bytes that `range` touches; `bytes` gives any
    /// range of the object (a slice of a full object, or reassembled from a thin one).
    fn check<'a>(
        &self,
        len: u64,
        range: Range<u64>,
        bytes: impl Fn(Range<u64>) -> Result<Cow<'a, [u8]>, Damage>,
    ) -> Result<(), Damage> {
        let end = range.end.min(len);
        if range.start >= end {
            return Ok(());
        }
        for g in range.start / GROUP_LEN..=(end - 1) / GROUP_LEN {
            let (word, bit) = (&self.checked[(g / 64) as usize], 1u64 << (g % 64));
            // Relaxed: the bit guards no other memory (the mapped bytes never change); a race
            // only makes two threads hash the same group.
            if word.load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            match self.cvs.get(g as usize) {
                Some(cv) => {
                    let r = group_range(g, len);
                    if group_cv(g, &bytes(r.start as u64..r.end as u64)?) != *cv {
                        return Err(Damage::Group {
                            start: r.start as u64,
                            end: r.end as u64,
                        });
                    }
                }
                None if ContentHash::of(&bytes(0..len)?) != self.hash => {
                    return Err(Damage::Whole);
                }
                None => {}
            }
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(())
    }

    fn forget(&self, len: u64, range: Range<u64>) {
        let end = range.end.min(len);
        if range.start >= end {
            return;
        }
        for g in range.start / GROUP_LEN..=(end - 1) / GROUP_LEN {
            self.checked[(g / 64) as usize].fetch_and(!(1u64 << (g % 64)), Ordering::Relaxed);
        }
    }
}

impl MappedPackage {
    /// Maps the object `hash` at `path` and checks its index: a full `.dxpkg`, or with
    /// `unpacked` a thin object (docs/design/store-one-copy.md) whose files are that unpacked
    /// copy's. `cvs` picks the CVs for an object of the length it is given. With [`Cvs::Compute`]
    /// this reads and checks the whole object (an object of one group is checked whole in any
    /// case).
    pub(crate) fn open(
        path: &Path,
        unpacked: Option<&Path>,
        hash: ContentHash,
        cvs: impl FnOnce(u64) -> Cvs,
    ) -> Result<Self, StoreError> {
        // Store objects are written under a temporary name, made read-only and linked into
        // place; they are never modified afterwards.
        let map = crate::sys::map_immutable(path)?;
        let damaged = |damage| StoreError::Damaged {
            hash,
            path: path.to_path_buf(),
            damage,
        };
        let invalid = |source| StoreError::InvalidObject {
            path: path.to_path_buf(),
            source,
        };
        let (reader, thin, groups) = match unpacked {
            None => {
                let len = map.len() as u64;
                let groups =
                    Groups::new(hash, len, cvs(len), || Ok(super::groups::hash_groups(&map)))
                        .map_err(damaged)?;
                // The header first, so that a damaged one is reported as damage, not as a bad
                // format.
                groups
                    .check(len, 0..64, |r| {
                        Ok(Cow::Borrowed(&map[r.start as usize..r.end as usize]))
                    })
                    .map_err(damaged)?;
                (DxpkgReader::new(map).map_err(invalid)?, None, groups)
            }
            Some(dir) => {
                let bad = |problem| StoreError::InvalidThin {
                    path: path.to_path_buf(),
                    problem,
                };
                let trailer = super::thin::Trailer::parse(&map).map_err(bad)?;
                let reader = DxpkgReader::new_index(map, trailer.object_len).map_err(invalid)?;
                let thin = Thin::new(&reader, trailer, dir).map_err(bad)?;
                let len = thin.object_len();
                let groups = Groups::new(hash, len, cvs(len), || thin.hash_groups(&reader))
                    .map_err(damaged)?;
                (reader, Some(thin), groups)
            }
        };
        let package = Self {
            path: path.to_path_buf(),
            reader,
            thin,
            groups,
        };
        // The index names every file and where its bytes lie: checked before anything reads it.
        package.check(0..package.reader.data_offset())?;
        Ok(package)
    }

    /// The object's path in the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The object's name.
    pub fn hash(&self) -> &ContentHash {
        &self.groups.hash
    }

    /// The package's reader: its index is checked; file bytes read through it are not (use
    /// [`MappedPackage::entry_data`]).
    pub fn reader(&self) -> &DxpkgReader<Mmap> {
        &self.reader
    }

    /// The CVs of the object's groups (empty for an object of one group).
    pub(crate) fn cvs(&self) -> &[ChainingValue] {
        &self.groups.cvs
    }

    /// O(1) lookup of a site-packages file.
    pub fn get_file(&self, path: &str) -> Result<Option<FileEntry<'_>>, StoreError> {
        self.reader
            .get_file(path)
            .map_err(|source| StoreError::InvalidObject {
                path: self.path.clone(),
                source,
            })
    }

    /// The full object's length (for a thin object, more than its file's).
    pub fn object_len(&self) -> u64 {
        self.thin
            .as_ref()
            .map_or(self.reader.bytes().len() as u64, Thin::object_len)
    }

    /// True for a thin object: its file bytes are its unpacked copy's
    /// (docs/design/store-one-copy.md), and [`MappedPackage::reader`] holds only its index.
    pub fn is_thin(&self) -> bool {
        self.thin.is_some()
    }

    /// Bytes `range` of the object (clamped to its length), not checked.
    pub(crate) fn unchecked(&self, range: Range<u64>) -> Result<Cow<'_, [u8]>, Damage> {
        match &self.thin {
            Some(thin) => thin.bytes(&self.reader, range),
            None => {
                let all = self.reader.bytes();
                let end = (range.end.min(all.len() as u64)) as usize;
                Ok(Cow::Borrowed(&all[(range.start as usize).min(end)..end]))
            }
        }
    }

    /// Bytes `range` of the object, not checked, borrowed from a map: `None` when they lie past
    /// its end or, in a thin object, across more than one file (a tree's leaf is one file).
    /// Check them with [`MappedPackage::check`] before they leave the process.
    pub fn unchecked_slice(&self, range: Range<u64>) -> Result<Option<&[u8]>, StoreError> {
        if range.start > range.end || range.end > self.object_len() {
            return Ok(None);
        }
        match self.unchecked(range).map_err(|d| self.damaged(d))? {
            Cow::Borrowed(bytes) => Ok(Some(bytes)),
            Cow::Owned(_) => Ok(None),
        }
    }

    /// Bytes `range` of the object (clamped to its length), checked against its name first:
    /// borrowed from the map (for a thin object, when they lie within one file or the index),
    /// else assembled.
    pub fn read(&self, range: Range<u64>) -> Result<Cow<'_, [u8]>, StoreError> {
        self.check(range.clone())?;
        self.unchecked(range).map_err(|damage| self.damaged(damage))
    }

    pub(crate) fn damaged(&self, damage: Damage) -> StoreError {
        StoreError::Damaged {
            hash: self.groups.hash,
            path: self.path.clone(),
            damage,
        }
    }

    /// Checks every group that bytes `range` of the object touch (what lies past the end is
    /// not there to check).
    pub fn check(&self, range: Range<u64>) -> Result<(), StoreError> {
        self.groups
            .check(self.object_len(), range, |r| self.unchecked(r))
            .map_err(|damage| self.damaged(damage))
    }

    /// True when some group that bytes `range` touch is not checked yet.
    pub fn check_is_needed(&self, range: Range<u64>) -> bool {
        let end = range.end.min(self.object_len());
        range.start < end
            && (range.start / GROUP_LEN..=(end - 1) / GROUP_LEN).any(|g| {
                self.groups.checked[(g / 64) as usize].load(Ordering::Relaxed) & (1 << (g % 64))
                    == 0
            })
    }

    /// The bytes that checking `range` reads: the groups it touches.
    pub fn group_span(&self, range: Range<u64>) -> Range<u64> {
        let len = self.object_len();
        let start = range.start / GROUP_LEN * GROUP_LEN;
        let end = range
            .end
            .div_ceil(GROUP_LEN)
            .saturating_mul(GROUP_LEN)
            .min(len);
        start.min(end)..end
    }

    /// The checked bytes of `entry` (an entry of this package's reader).
    pub fn entry_data<'a>(&'a self, entry: &FileEntry<'a>) -> Result<&'a [u8], StoreError> {
        let range = entry.data_offset..entry.data_offset.saturating_add(entry.len);
        self.check(range.clone())?;
        let Some(thin) = &self.thin else {
            return Ok(entry.data);
        };
        // An entry's bytes lie in the index (never), in the thin file or in one unpacked
        // file: always borrowed.
        match thin
            .bytes(&self.reader, range)
            .map_err(|d| self.damaged(d))?
        {
            Cow::Borrowed(bytes) => Ok(bytes),
            Cow::Owned(_) => Err(self.damaged(Damage::Whole)),
        }
    }

    /// The console and GUI script launchers the package's `entry_points.txt` asks for
    /// ([`crate::scripts::launchers_for`]), from checked bytes.
    pub fn launchers(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let path = format!("{}/entry_points.txt", self.reader.dist_info());
        match self.get_file(&path)? {
            Some(entry) => Ok(crate::scripts::launchers_from(self.entry_data(&entry)?)),
            None => Ok(Vec::new()),
        }
    }

    /// Forgets that the groups touching bytes `range` were checked: their pages were handed
    /// back to the kernel, so the next read of them comes from disk again.
    pub fn forget(&self, range: Range<u64>) {
        self.groups.forget(self.object_len(), range);
    }
}
