//! DPL (`dx-py.dpl`): the binary lock, read in O(1) from a memory-mapped file, and its
//! human-readable twin `pylock.toml` (PEP 751).
//!
//! ```text
//! offset 0   header (192 B)             magic, version, counts, section offsets, environment,
//!                                       inputs hash, whole-body blake3, header checksum
//!        192 buckets (12 B × buckets)   open addressing on the PEP 503 name: entry + 1, tag, check
//!        …   entries (168 B × count)    sorted by normalized name; fixed fields + checksum
//!        …   dependencies (u32 × edges) each entry's edges, as entry indices
//!        …   strings                    project strings, then one UTF-8 blob per entry
//! ```
//!
//! The byte layout and the reasons behind it are in `docs/formats/dpl.md`. [`Lock`] is the
//! in-memory model shared by [`DplBuilder`], the pylock.toml reader and writer, and the installer;
//! [`DplReader`] reads a file as untrusted input: opening checks the header in O(1), every entry is
//! checksummed when first read, and [`DplReader::verify`] checks the whole file.
use std::path::{Path, PathBuf};

mod builder;
mod export;
mod format;
mod model;
mod pylock;
mod reader;
mod render;
pub(crate) mod v2;

pub use builder::DplBuilder;
pub use export::{ExportError, ExportedPackage, export_for, render_requirements};
pub(crate) use model::last_segment;
pub use model::{
    DplBuildError, LocalSource, Lock, LockMeta, LockedPackage, LockedWheel, version_components,
};
pub use pylock::{
    DefaultSelector, PylockDocument, PylockError, PylockSelector, UNKNOWN_VERSION, UniversalLock,
    UniversalLockedPackage,
};
pub use reader::{DplEntry, DplError, DplReader, DplWheel};
pub use v2::{UniversalDplEntry, UniversalDplReader, format_version};

/// A DPL (or pylock.toml) file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DplFileError {
    /// The file could not be read or mapped.
    #[error("Failed to read lock file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("Failed to write lock file `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid DPL; re-create it with `dx-py lock`.
    #[error("Lock file `{}` is not a valid DPL lock; re-create it with `dx-py lock`", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: DplError,
    },
    /// The lock cannot be written as a DPL.
    #[error("Cannot write lock file `{}`", path.display())]
    Build {
        /// The file.
        path: PathBuf,
        /// What the format cannot hold.
        #[source]
        source: DplBuildError,
    },
    /// The pylock.toml cannot be read.
    #[error("Lock file `{}` is not a usable pylock.toml", path.display())]
    Pylock {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: PylockError,
    },
}

/// Recomputes, in place, every checksum and hash of a DPL file that was edited byte by byte:
/// what someone crafting a file would do. For fuzzing and tests of the reader's handling of
/// crafted files only; a file too damaged to locate its parts is left partly unsealed.
#[doc(hidden)]
pub fn reseal(bytes: &mut [u8]) {
    use format::*;
    if format_version(bytes) == Ok(v2::VERSION_2) {
        v2::builder::seal(bytes);
        return;
    }
    let u32f = |b: &[u8], at| u32_at(b, at).map(|v| v as usize);
    let u64f = |b: &[u8], at| u64_at(b, at).and_then(|v| usize::try_from(v).ok());
    let (Some(n), Some(entries), Some(deps), Some(strings)) = (
        u32f(bytes, H_ENTRY_COUNT),
        u64f(bytes, H_ENTRIES_OFF),
        u64f(bytes, H_DEPS_OFF),
        u64f(bytes, H_STRINGS_OFF),
    ) else {
        return;
    };
    for i in 0..n.min(bytes.len() / ENTRY_LEN) {
        let sum = (|| {
            let at = entries.checked_add(i.checked_mul(ENTRY_LEN)?)?;
            let rec = bytes.get(at..at.checked_add(ENTRY_LEN)?)?;
            let blob_len = (0..STRING_COUNT)
                .map(|s| u32f(rec, E_LENS + 4 * s))
                .sum::<Option<usize>>()?;
            let blob = strings.checked_add(u32f(rec, E_BLOB_OFF)?)?;
            let blob = bytes.get(blob..blob.checked_add(blob_len)?)?;
            let d = deps.checked_add(4 * u32f(rec, E_DEPS_START)?)?;
            let d = bytes.get(d..d.checked_add(4 * u32f(rec, E_DEPS_COUNT)?)?)?;
            Some((
                at,
                entry_checksum(ENTRY_SEED ^ i as u64, rec.get(8..)?, blob, d),
            ))
        })();
        if let Some((at, c)) = sum {
            put_u64(bytes, at, c);
        }
    }
    let Some(body) = bytes.get(HEADER_LEN..).map(blake3::hash) else {
        return;
    };
    bytes[H_BODY_HASH..H_BODY_HASH + 32].copy_from_slice(body.as_bytes());
    let mut c = Checksum::new(HEADER_SEED);
    c.update(&bytes[..H_CHECKSUM]);
    for at in [H_ENVIRONMENT, H_PYTHON_VERSION, H_REQUIRES_PYTHON] {
        let range = (|| {
            let off = strings.checked_add(u32f(bytes, at)?)?;
            Some(off..off.checked_add(u32f(bytes, at + 4)?)?)
        })();
        match range.and_then(|r| bytes.get(r)) {
            Some(s) => c.update(s),
            None => return,
        };
    }
    put_u64(bytes, H_CHECKSUM, c.finish());
}

/// Maps the DPL at `path` and opens it with `open` (a reader's `from_bytes`), naming the path in
/// any error. DPL files are written to a temporary name and renamed into place, never modified in
/// place, so the mapped bytes do not change while the reader lives.
pub(crate) fn open_mapped<R>(
    path: &Path,
    open: impl FnOnce(memmap2::Mmap) -> Result<R, DplError>,
) -> Result<R, DplFileError> {
    let map = crate::sys::map_immutable(path).map_err(|source| DplFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    open(map).map_err(|source| DplFileError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes DPL bytes that `build` makes to `path` atomically, naming the path in any error.
pub(crate) fn write_built(
    path: &Path,
    build: impl FnOnce() -> Result<Vec<u8>, DplBuildError>,
) -> Result<(), DplFileError> {
    let bytes = build().map_err(|source| DplFileError::Build {
        path: path.to_path_buf(),
        source,
    })?;
    crate::atomic::replace(path, &bytes).map_err(|source| DplFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl Lock {
    /// This lock as DPL bytes (what [`write_dpl`](Self::write_dpl) writes).
    pub fn dpl_bytes(&self) -> Result<Vec<u8>, DplBuildError> {
        DplBuilder::from_lock(self).to_bytes()
    }

    /// Writes this lock as a DPL file at `path`, atomically.
    pub fn write_dpl(&self, path: &Path) -> Result<(), DplFileError> {
        DplBuilder::from_lock(self).write(path)
    }

    /// Reads the pylock.toml at `path` (see [`Lock::from_pylock_str`]).
    pub fn read_pylock(path: &Path) -> Result<Self, DplFileError> {
        let text = fs_err::read_to_string(path).map_err(|source| DplFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pylock_str(&text).map_err(|source| DplFileError::Pylock {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes this lock as a pylock.toml at `path`, atomically.
    pub fn write_pylock(&self, path: &Path) -> Result<(), DplFileError> {
        crate::atomic::replace(path, self.to_pylock_string().as_bytes()).map_err(|source| {
            DplFileError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests;
