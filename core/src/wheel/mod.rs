//! Wheels: file names and tags, and (as untrusted input) their validation and conversion into
//! `.dxpkg`.
mod filename;

pub use filename::{Tag, WheelFilename, WheelFilenameError};
