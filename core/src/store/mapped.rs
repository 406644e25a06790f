//! One memory-mapped store object.
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::StoreError;
use crate::dxpkg::{DxpkgReader, FileEntry};

/// A `.dxpkg` object mapped into memory, header already checked. Cheap to share across threads.
#[derive(Debug)]
pub struct MappedPackage {
    path: PathBuf,
    reader: DxpkgReader<Mmap>,
}

impl MappedPackage {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        // SAFETY: store objects are written under a temporary name, made read-only and linked into
        // place; they are never modified afterwards (see `crate::mmap::map_file`).
        #[allow(unsafe_code)]
        let map = unsafe { crate::mmap::map_file(path)? };
        let reader = DxpkgReader::new(map).map_err(|source| StoreError::InvalidObject {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// The object's path in the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The package's reader.
    pub fn reader(&self) -> &DxpkgReader<Mmap> {
        &self.reader
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
}
