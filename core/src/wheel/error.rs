//! Why a wheel is refused: every error names the wheel file, and the entry when there is one.
use super::entry_points::EntryPointsError;
use super::filename::WheelFilenameError;
use super::metadata::MetadataError;
use super::record::RecordError;
use crate::dxpkg::DxpkgWriterError;

/// A wheel that cannot be converted into a `.dxpkg`.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The file name is not a wheel file name.
    #[error(transparent)]
    Filename(#[from] WheelFilenameError),
    /// The bytes are not a zip archive the reader understands.
    #[error("Cannot open wheel `{wheel}` as a zip archive: {source}")]
    Zip {
        /// The wheel file name.
        wheel: String,
        /// The zip reader's error.
        #[source]
        source: zip::result::ZipError,
    },
    /// The archive as a whole breaks a rule.
    #[error("Refused wheel `{wheel}`: {problem}")]
    Archive {
        /// The wheel file name.
        wheel: String,
        /// What is wrong.
        problem: ArchiveProblem,
    },
    /// One entry of the archive breaks a rule.
    #[error("Refused wheel `{wheel}`, entry `{entry}`: {problem}")]
    Entry {
        /// The wheel file name.
        wheel: String,
        /// The entry's path in the archive (or in RECORD).
        entry: String,
        /// What is wrong.
        problem: EntryProblem,
    },
    /// The checked files do not fit the `.dxpkg` format.
    #[error("Cannot write a .dxpkg for wheel `{wheel}`: {source}")]
    Write {
        /// The wheel file name.
        wheel: String,
        /// The writer's error.
        #[source]
        source: DxpkgWriterError,
    },
}

impl WheelError {
    /// The entry problem, when the error is about one entry.
    pub fn entry_problem(&self) -> Option<&EntryProblem> {
        match self {
            Self::Entry { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The archive problem, when the error is about the whole archive.
    pub fn archive_problem(&self) -> Option<&ArchiveProblem> {
        match self {
            Self::Archive { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// A rule the archive as a whole breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveProblem {
    /// Bytes precede the zip data (a self-extracting or concatenated file).
    #[error("{offset} bytes of other data precede the zip archive")]
    PrefixedData {
        /// Bytes before the archive.
        offset: u64,
    },
    /// More entries than the limit.
    #[error("{count} entries, more than the limit of {limit}")]
    TooManyEntries {
        /// Entries in the central directory.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The declared sizes add up to more than the limit.
    #[error("files add up to {size} bytes uncompressed, more than the limit of {limit}")]
    TotalTooLarge {
        /// Sum of declared sizes.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The central directory holds the same name twice (the name could not be recovered).
    #[error("the central directory lists an entry name twice")]
    DuplicateNames,
    /// No top-level `*.dist-info` directory.
    #[error("no `{expected}` directory")]
    NoDistInfo {
        /// The directory the file name implies.
        expected: String,
    },
    /// More than one top-level `*.dist-info` directory.
    #[error("two .dist-info directories, `{first}` and `{second}`; expected exactly one")]
    MultipleDistInfo {
        /// One.
        first: String,
        /// The other.
        second: String,
    },
    /// The `.dist-info` directory names another distribution or version.
    #[error("`{found}` does not match the file name; expected `{expected}`")]
    DistInfoMismatch {
        /// The directory present.
        found: String,
        /// The directory the file name implies.
        expected: String,
    },
    /// More than one top-level `*.data` directory.
    #[error("two .data directories, `{first}` and `{second}`; expected at most one")]
    MultipleDataDirs {
        /// One.
        first: String,
        /// The other.
        second: String,
    },
    /// The `.data` directory names another distribution or version.
    #[error("`{found}` does not match the file name; expected `{expected}`")]
    DataDirMismatch {
        /// The directory present.
        found: String,
        /// The directory the file name implies.
        expected: String,
    },
}

/// A rule one entry breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryProblem {
    /// The name is not UTF-8.
    #[error("name is not valid UTF-8")]
    NameNotUtf8,
    /// The name is empty.
    #[error("empty name")]
    EmptyName,
    /// The name holds a NUL byte.
    #[error("name contains a NUL byte")]
    Nul,
    /// The name starts with `/`.
    #[error("absolute path")]
    Absolute,
    /// The name holds a `\`, which Windows reads as a separator.
    #[error("name contains a backslash")]
    Backslash,
    /// The name holds a `:` (a drive letter or an NTFS stream on Windows).
    #[error("name contains `:` (a drive or stream name on Windows)")]
    Colon,
    /// `a//b`.
    #[error("name has an empty path component")]
    EmptyComponent,
    /// `a/./b`.
    #[error("name has a `.` component")]
    DotComponent,
    /// `a/../b`.
    #[error("name has a `..` component")]
    ParentDir,
    /// A control character (newline, escape, ...) in the name.
    #[error("name contains a control character")]
    ControlCharacter,
    /// The name appears twice.
    #[error("duplicate entry")]
    Duplicate,
    /// Compressed with a method other than stored or deflate.
    #[error("unsupported compression method {method}; only stored and deflate are read")]
    UnsupportedCompression {
        /// The method, as the zip reader names it.
        method: String,
    },
    /// Encrypted.
    #[error("encrypted entries are not supported")]
    Encrypted,
    /// A device, FIFO or socket.
    #[error("file type {mode:#o} is not a regular file, directory or symlink")]
    UnsupportedFileType {
        /// The unix mode.
        mode: u32,
    },
    /// Unix mode says directory but the name has no trailing `/`.
    #[error("unix mode says directory but the name does not end in `/`")]
    DirectoryWithoutSlash,
    /// Larger than the per-file limit.
    #[error("{size} bytes uncompressed, more than the per-file limit of {limit}")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Compresses suspiciously well (a zip bomb).
    #[error("{size} bytes from {compressed} compressed is a ratio above {limit}:1 (a zip bomb?)")]
    CompressionRatio {
        /// Declared size.
        size: u64,
        /// Compressed size.
        compressed: u64,
        /// The ratio limit.
        limit: u64,
    },
    /// The local header names another file than the central directory.
    #[error("local header names `{local}`, central directory disagrees")]
    LocalHeaderMismatch {
        /// The name in the local header (lossy UTF-8).
        local: String,
    },
    /// The local header is missing or cut off.
    #[error("local header missing or truncated")]
    LocalHeaderMissing,
    /// Decompressing failed (corrupt data, CRC mismatch).
    #[error("cannot read: {0}")]
    Read(String),
    /// More or fewer bytes than the zip header declares.
    #[error("zip header declares {declared} bytes, data has {got}")]
    HeaderSizeMismatch {
        /// Declared size.
        declared: u64,
        /// Bytes decompressed (at most one more than declared).
        got: u64,
    },
    /// A file of the archive that RECORD does not list.
    #[error("not listed in RECORD")]
    NotInRecord,
    /// A RECORD row whose file is not in the archive.
    #[error("listed in RECORD but not in the archive")]
    NotInArchive,
    /// A path listed twice in RECORD.
    #[error("listed twice in RECORD (lines {first} and {second})")]
    DuplicateRecordRow {
        /// First line.
        first: usize,
        /// Second line.
        second: usize,
    },
    /// A RECORD row without a hash for a file that needs one.
    #[error("RECORD line {line} has no hash")]
    MissingHash {
        /// RECORD line.
        line: usize,
    },
    /// A RECORD row without a size for a hashed file.
    #[error("RECORD line {line} has no size")]
    MissingSize {
        /// RECORD line.
        line: usize,
    },
    /// The content's hash differs from RECORD's.
    #[error("{algorithm} mismatch: RECORD says {expected}, content is {got}")]
    HashMismatch {
        /// Algorithm name.
        algorithm: &'static str,
        /// RECORD's digest, urlsafe base64.
        expected: String,
        /// The content's digest, urlsafe base64.
        got: String,
    },
    /// The content's size differs from RECORD's.
    #[error("size mismatch: RECORD says {expected} bytes, content has {got}")]
    SizeMismatch {
        /// RECORD's size.
        expected: u64,
        /// The content's size.
        got: u64,
    },
    /// A required file is absent.
    #[error("required file is missing")]
    Missing,
    /// RECORD cannot be parsed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// METADATA cannot be parsed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// entry_points.txt cannot be parsed.
    #[error(transparent)]
    EntryPoints(#[from] EntryPointsError),
    /// A text file that must be UTF-8 is not.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// WHEEL has no usable `Wheel-Version`.
    #[error("`Wheel-Version` is {0}; this installer reads 1.x")]
    WheelVersion(String),
    /// METADATA's name is another distribution's.
    #[error("METADATA name `{metadata}` does not match the file name's `{filename}`")]
    NameMismatch {
        /// Name in METADATA.
        metadata: String,
        /// Name in the file name.
        filename: String,
    },
    /// METADATA's version differs from the file name's.
    #[error("METADATA version `{metadata}` does not match the file name's `{filename}`")]
    VersionMismatch {
        /// Version in METADATA.
        metadata: String,
        /// Version in the file name.
        filename: String,
    },
    /// A file directly in `.data/`, outside any scheme directory.
    #[error(
        "files in the .data directory must be inside purelib, platlib, scripts, headers or data"
    )]
    NoDataScheme,
    /// A `.data/` subdirectory that is not a known scheme.
    #[error("unknown .data scheme `{0}`; expected purelib, platlib, scripts, headers or data")]
    UnknownDataScheme(String),
    /// A path below something that is a file (`a` and `a/b`).
    #[error("`{file}` is a file in this wheel, so it cannot be a directory")]
    FileAsDirectory {
        /// The file that would have to be a directory (installed path).
        file: String,
    },
    /// Two entries install to the same place.
    #[error("installs to the same path as `{other}`")]
    Collision {
        /// The other entry.
        other: String,
    },
    /// A symlink whose target is not a plain relative path.
    #[error("symlink target `{target}` must be a relative `/`-separated path")]
    SymlinkBadTarget {
        /// The target (lossy UTF-8).
        target: String,
    },
    /// A symlink that leaves its scheme directory.
    #[error("symlink target `{target}` leaves the package")]
    SymlinkEscapes {
        /// The target.
        target: String,
    },
    /// A symlink resolved through another symlink (its meaning would depend on that link).
    #[error("symlink target `{target}` passes through the symlink `{via}`")]
    SymlinkThroughSymlink {
        /// The target.
        target: String,
        /// The symlink it passes through.
        via: String,
    },
    /// A symlink to nothing in the package.
    #[error("symlink target `{target}` is not a file or directory of this package")]
    SymlinkDangling {
        /// The target.
        target: String,
    },
}
