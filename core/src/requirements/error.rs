//! Why a requirements file (or one of its lines) was refused: every error names the file and
//! line it concerns.
use std::fmt;
use std::path::PathBuf;

/// Where a line came from: a file and a 1-based line number (the first physical line of a
/// `\`-continued one).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The requirements file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// Why a requirements file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    /// The file could not be read.
    #[error("Failed to read requirements file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a valid requirement.
    #[error("Invalid requirement `{text}` at `{at}`: {reason}")]
    Invalid {
        /// Where.
        at: Location,
        /// The line.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A direct reference this tool cannot use (a VCS URL, an unknown scheme, an editable that is
    /// not a local directory).
    #[error("Unsupported reference `{text}` at `{at}`: {reason}")]
    UnsupportedReference {
        /// Where.
        at: Location,
        /// The requirement as written.
        text: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// A local project or source archive where only something installable as it is can be used
    /// (resolution, until builds arrive).
    #[error(
        "Requirement `{text}` at `{at}` needs a build: building local projects is not supported \
         yet, build a wheel and name the wheel file instead"
    )]
    NeedsBuild {
        /// Where.
        at: Location,
        /// The requirement as written.
        text: String,
    },
    /// A line that is valid in a requirements file but not in the kind of file it is in (a
    /// constraints or an overrides file).
    #[error("`{text}` at `{at}` is not allowed in {kind}: {reason}")]
    NotAllowedHere {
        /// Where.
        at: Location,
        /// The line.
        text: String,
        /// "a constraints file" or "an overrides file".
        kind: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// An option this tool does not honour.
    #[error("Unsupported option `{option}` at `{at}`: {hint}")]
    UnsupportedOption {
        /// Where.
        at: Location,
        /// The option.
        option: String,
        /// Why, and what to do instead.
        hint: &'static str,
    },
    /// An option given without its value.
    #[error("Option `{option}` at `{at}` needs a value")]
    MissingValue {
        /// Where.
        at: Location,
        /// The option.
        option: String,
    },
    /// A malformed `--hash`.
    #[error("Invalid hash `{hash}` at `{at}`: {reason}")]
    InvalidHash {
        /// Where.
        at: Location,
        /// The value given.
        hash: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `-r URL` or `-c URL`.
    #[error(
        "Cannot include `{target}` at `{at}`: only local files can be included, download it first"
    )]
    RemoteInclude {
        /// Where.
        at: Location,
        /// The URL.
        target: String,
    },
    /// The same package pinned to two versions that can apply together.
    #[error(transparent)]
    Conflict(Box<PinConflict>),
    /// Hash-checking mode with a requirement that has no hash.
    #[error(
        "Requirement `{name}` at `{at}` has no `--hash`: in hash-checking mode (`--require-hashes`, \
         or any requirement with a hash) every requirement needs one"
    )]
    MissingHashes {
        /// Where.
        at: Location,
        /// The package name.
        name: String,
    },
}

impl RequirementsError {
    /// Makes [`RequirementsError::Invalid`] for `text` at `at` from a reason.
    pub(super) fn invalid_at<'a>(
        at: &'a Location,
        text: &'a str,
    ) -> impl Fn(String) -> Self + Copy + 'a {
        move |reason| Self::Invalid {
            at: at.clone(),
            text: text.to_string(),
            reason,
        }
    }
}

/// Two pins of one package to different versions that can apply together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "Conflicting pins for `{name}`: `{first_version}` at `{first}` and `{second_version}` at \
     `{second}`"
)]
pub struct PinConflict {
    /// The normalized name.
    pub name: String,
    /// The first pin's location.
    pub first: Location,
    /// The first pin.
    pub first_version: String,
    /// The second pin's location.
    pub second: Location,
    /// The second pin.
    pub second_version: String,
}

/// Why a requirements file is not on the pinned fast path (see
/// [`super::Requirements::pinned`]): the first line that needs resolution.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Requirement `{text}` at `{at}` {why}")]
pub struct NotPinned {
    /// Where.
    pub at: Location,
    /// The requirement as written (in normal form).
    pub text: String,
    /// The package name, when the line names one.
    pub name: Option<String>,
    /// What keeps it off the fast path, e.g. "is not pinned to one version with `==`".
    pub why: &'static str,
}
