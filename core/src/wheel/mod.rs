//! Wheels: file names and tags, and (as untrusted input) their validation and conversion into
//! `.dxpkg`.
//!
//! ```text
//! demo-1.0-py3-none-any.whl              ->  .dxpkg entries (scheme, path)
//! ├── demo/__init__.py                       SitePackages demo/__init__.py
//! ├── demo-1.0.data/purelib/demo/x.py        SitePackages demo/x.py
//! ├── demo-1.0.data/scripts/demo-tool        Scripts      demo-tool            (0o755)
//! ├── demo-1.0.data/headers/demo.h           Headers      demo.h
//! ├── demo-1.0.data/data/share/demo.1        Data         share/demo.1
//! └── demo-1.0.dist-info/                    SitePackages demo-1.0.dist-info/…
//!     ├── METADATA, WHEEL, entry_points.txt  kept as they are
//!     ├── RECORD                             rewritten for the installed layout
//!     └── (INSTALLER)                        added: `dx-py\n`
//! ```
//!
//! [`convert_wheel`] checks everything [`validate_wheel`] lists; the rules and their reasons are
//! in `docs/formats/dxpkg.md`. [`prepare_wheel`] checks all but the file contents and lays the
//! package out; [`PreparedWheel::write_to`] then streams each remaining file from the archive
//! into the package, checking its RECORD size and sha256 as it goes (a mismatch fails the write).
mod convert;
mod entry_points;
mod error;
mod filename;
mod metadata;
mod record;
mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod validate;

pub use convert::{
    ConvertedWheel, INSTALLER, PreparedWheel, WheelInfo, WheelWriteError, convert_validated,
    convert_wheel, convert_wheel_with_limits, prepare_validated, prepare_wheel,
};
pub use entry_points::{EntryPoint, EntryPoints, EntryPointsError};
pub use error::{ArchiveProblem, EntryProblem, WheelError};
pub use filename::{Tag, WheelFilename, WheelFilenameError};
pub(crate) use metadata::headers as metadata_headers;
pub use metadata::{MetadataError, WheelMetadata};
pub use record::{
    RecordEntry, RecordError, RecordHash, RecordHashAlgorithm, parse_record, write_record,
};
pub(crate) use validate::dir_matches;
pub use validate::{ConvertLimits, ValidatedWheel, WheelFile, validate_wheel};
