//! `.dxpkg`: one installed wheel, uncompressed, in one memory-mappable file.
//!
//! ```text
//! offset 0     header (64 bytes)        magic, version, counts, section offsets
//!        64    buckets (u32 × buckets)  open-addressing table: entry index + 1, 0 = empty
//!        …     entries (32 B × count)   sorted by (scheme, path)
//!        …     strings                  name, version, dist-info dir, then every path
//!        …     data (8-aligned)         file bytes, in entry order
//! ```
//!
//! The byte layout and the reasons behind it are in `docs/formats/dxpkg.md`. [`DxpkgWriter`] produces
//! a file deterministically; [`DxpkgReader`] reads one as untrusted input.
mod format;
mod reader;
mod writer;

pub use format::{EntryKind, Scheme};
pub(crate) use format::{HEADER_LEN, data_extent};
pub use reader::{DxpkgError, DxpkgReader, FileEntry};
pub use writer::{DxpkgWriter, DxpkgWriterError, PackageLayout, PlannedEntry, PreparedDxpkg};
