//! Whole files that can stand in for an object's file bytes: the files of its unpacked copy,
//! while they are still what unpacking wrote.
//!
//! A FUSE mount hands such a file to the kernel (passthrough), which then reads and maps it
//! like a native file: the server sees no read at all. The copy is trusted as layouts trust
//! it, since layouts hardlink the same files: it was written from bytes checked against the
//! object's name, and its manifest (`.dx-unpacked`) records each file's size, mtime and inode.
//! A file whose stat differs from its record (edited through a layout's hardlink, truncated,
//! replaced, removed) is refused here, and its bytes are served from the object instead.
//! Bytes changed on disk without changing the stat are not detected (that takes reading them
//! all: `dx-py cache verify` does).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::unpack::{MANIFEST, Manifest, Stat, safe_relative, scheme_dir};
use super::{MappedPackage, PackageStore};
use crate::dxpkg::{EntryKind, FileEntry};
use crate::hash::ContentHash;

/// The file of an object's unpacked copy that holds `entry`'s bytes verbatim, relative to the
/// copy's root; `None` for entries whose unpacked form differs from their bytes (symlinks,
/// scripts: [`super::thin::is_kept`]) and for unsafe paths (never unpacked). The one rule for
/// whole-file backings: a thin object reads its files' bytes from these files, a mount hands
/// them to the kernel ([`PackBackings`]).
pub(crate) fn verbatim_file(entry: &FileEntry<'_>) -> Option<PathBuf> {
    if super::thin::is_kept(entry) || entry.kind != EntryKind::File {
        return None;
    }
    Some(Path::new(scheme_dir(entry.scheme)).join(safe_relative(entry.path)?))
}

/// The whole-file backings of one object's non-empty files: the files of its unpacked copy
/// that hold them verbatim (`verbatim_file`), by the data offset of the bytes each holds,
/// opened only while their stat is the manifest's ([`UnpackedFiles::open`]).
#[derive(Debug)]
pub struct PackBackings {
    files: UnpackedFiles,
    /// Data offset in the object of a non-empty file → its path in the unpacked copy.
    by_offset: HashMap<u64, PathBuf>,
}

impl PackBackings {
    /// The backing of the object's file whose bytes start at `data_offset` and are `size`
    /// long: `Ok(None)` when that file has none (a script, a link, no such file), an error
    /// when its unpacked file changed since it was written.
    pub fn open(&self, data_offset: u64, size: u64) -> Result<Option<fs_err::File>, BackingError> {
        match self.by_offset.get(&data_offset) {
            Some(rel) => self.files.open(rel, size).map(Some),
            None => Ok(None),
        }
    }
}

/// Why a file of an unpacked copy cannot stand in for the object's bytes.
#[derive(Debug, thiserror::Error)]
pub enum BackingError {
    /// The manifest does not list the file.
    #[error("`{}` is not recorded in its unpacked copy's manifest", path.display())]
    NotRecorded {
        /// The file.
        path: PathBuf,
    },
    /// The file is not the one unpacking wrote, or not as long as the object's file.
    #[error(
        "`{}` changed since it was unpacked ({what}); `dx-py cache verify --repair` mends it",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// What differs: expected vs got.
        what: String,
    },
    /// The file cannot be opened or its stat read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The unpacked copy of one object, with its manifest read: [`UnpackedFiles::open`] opens a
/// file of it that is still what unpacking wrote.
#[derive(Debug)]
pub struct UnpackedFiles {
    root: PathBuf,
    stats: HashMap<PathBuf, Stat>,
}

impl PackageStore {
    /// The unpacked copy of `hash`, or `None` when there is none (or it has no readable
    /// manifest: then nothing of it is trusted). Reads the manifest once: O(files).
    pub fn unpacked_files(&self, hash: &ContentHash) -> Option<UnpackedFiles> {
        let root = self.unpacked_path(hash);
        let bytes = std::fs::read(root.join(MANIFEST)).ok()?;
        let stats = Manifest::decode(&bytes)?.into_iter().collect();
        Some(UnpackedFiles { root, stats })
    }

    /// The whole-file backings of `package` (the object `hash`), or `None` without an unpacked
    /// copy with a readable manifest. O(files).
    pub fn pack_backings(
        &self,
        hash: &ContentHash,
        package: &MappedPackage,
    ) -> Option<PackBackings> {
        let files = self.unpacked_files(hash)?;
        let mut by_offset = HashMap::new();
        for entry in package.reader().entries() {
            let entry = entry.ok()?;
            // `len`, not `data`: a thin object's reader holds only its index.
            if entry.len == 0 {
                continue;
            }
            if let Some(rel) = verbatim_file(&entry) {
                by_offset.insert(entry.data_offset, rel);
            }
        }
        Some(PackBackings { files, by_offset })
    }
}

impl UnpackedFiles {
    /// The copy's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens file `rel` of the copy (`site-packages/pkg/mod.py`) when it is the file unpacking
    /// wrote, of `size` bytes: its stat, read from the opened descriptor (so it describes what
    /// will be read), is the manifest's record.
    pub fn open(&self, rel: &Path, size: u64) -> Result<fs_err::File, BackingError> {
        let path = self.root.join(rel);
        let Some(want) = self.stats.get(rel) else {
            return Err(BackingError::NotRecorded { path });
        };
        let file = fs_err::File::open(&path)?;
        let meta = file.metadata()?;
        let got = Stat::of(&meta);
        let what = if !meta.is_file() {
            Some("not a regular file".to_string())
        } else if got != *want {
            Some(format!("expected {want:?}, got {got:?}"))
        } else if meta.len() != size {
            Some(format!("expected {size} bytes, got {}", meta.len()))
        } else {
            None
        };
        match what {
            Some(what) => Err(BackingError::Changed { path, what }),
            None => Ok(file),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
    use crate::testing::noise;

    fn unpacked_store() -> (tempfile::TempDir, PackageStore, ContentHash) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let mut w = DxpkgWriter::new("alpha", "1.0", "alpha-1.0.dist-info");
        let sp = Scheme::SitePackages;
        w.add(
            sp,
            "alpha/__init__.py",
            EntryKind::File,
            0o644,
            b"A = 1\n".to_vec(),
        );
        w.add(
            sp,
            "alpha/big.bin",
            EntryKind::File,
            0o644,
            noise(40_000, 3),
        );
        let hash = store.store(&w.finish().unwrap()).unwrap();
        store.unpacked(&hash).unwrap();
        (dir, store, hash)
    }

    #[test]
    fn a_file_as_unpacked_opens_with_its_bytes() {
        let (_dir, store, hash) = unpacked_store();
        let files = store.unpacked_files(&hash).unwrap();
        let mut f = files
            .open(Path::new("site-packages/alpha/__init__.py"), 6)
            .unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut f, &mut got).unwrap();
        assert_eq!(got, "A = 1\n");
    }

    #[test]
    fn no_copy_or_no_manifest_is_none() {
        let (_dir, store, hash) = unpacked_store();
        assert!(
            store
                .unpacked_files(&ContentHash::from_bytes([7; 32]))
                .is_none()
        );
        let manifest = store.unpacked_path(&hash).join(MANIFEST);
        crate::atomic::set_mode(&manifest, 0o644).unwrap();
        std::fs::write(&manifest, b"DXUNPACK garbage").unwrap();
        assert!(store.unpacked_files(&hash).is_none());
    }

    #[test]
    fn changed_replaced_wrong_size_and_unrecorded_files_are_refused() {
        let (_dir, store, hash) = unpacked_store();
        let files = store.unpacked_files(&hash).unwrap();
        let root = files.root().to_path_buf();
        let big = Path::new("site-packages/alpha/big.bin");
        // The size the tree expects differs.
        assert!(matches!(
            files.open(big, 39_999),
            Err(BackingError::Changed { .. })
        ));
        // Edited in place (through a layout's hardlink): same size, new mtime.
        std::thread::sleep(std::time::Duration::from_millis(10));
        let init = root.join("site-packages/alpha/__init__.py");
        crate::atomic::set_mode(&init, 0o644).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&init)
            .unwrap()
            .write_all(b"A = 2\n")
            .unwrap();
        let err = files
            .open(Path::new("site-packages/alpha/__init__.py"), 6)
            .unwrap_err();
        assert!(
            err.to_string().contains("changed since it was unpacked"),
            "{err}"
        );
        // Replaced by another file of the same size (a new inode).
        let path = root.join(big);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            files.open(big, 40_000),
            Err(BackingError::Changed { .. })
        ));
        // Removed, and never recorded.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(files.open(big, 40_000), Err(BackingError::Io(_))));
        assert!(matches!(
            files.open(Path::new("site-packages/alpha/other.py"), 1),
            Err(BackingError::NotRecorded { .. })
        ));
    }
}
