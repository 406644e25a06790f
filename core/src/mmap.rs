//! The one place that memory-maps files. Everything else reads mapped bytes through `&[u8]`.
use std::path::Path;

use memmap2::Mmap;

/// Maps the whole file at `path` read-only.
///
/// An empty file is returned as an empty map (mmap of length 0 is an error on Linux).
///
/// # Safety
///
/// The caller must only map files that no process modifies or truncates while the map lives.
/// dx-py maps store objects and index files that are written to a temporary name and renamed into
/// place, never modified afterwards, so a mapped file's bytes never change under the reader.
#[allow(unsafe_code)]
pub unsafe fn map_file(path: &Path) -> std::io::Result<Mmap> {
    let file = fs_err::File::open(path)?;
    // SAFETY: the caller guarantees the file is immutable while mapped (see the function docs).
    unsafe { Mmap::map(file.file()) }
}
