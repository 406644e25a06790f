//! `pylock.toml` (PEP 751, lock-version 1.x) to and from a [`Lock`].
//!
//! PEP 751 keys map onto the model one to one where both have them. What DPL records and PEP 751
//! has no key for lives in tool tables, which PEP 751 reserves for tools:
//!
//! ```toml
//! [[packages]]
//! name = "requests"
//! # … PEP 751 keys …
//! [packages.tool.dx-py]          # per package
//! store-hash = "<blake3 hex>"    # the .dxpkg in the store, once known
//! extras = ["socks", "use-chardet-on-py3"]   # the package's extras table (bit order)
//! selected-extras = ["socks"]    # the extras selected in this lock
//! built-wheel = "x-1.0-py3-none-any.whl"  # a package locked as its `sdist`: the wheel it built
//!
//! [tool.dx-py]                   # per lock
//! environment = "cp311-linux_x86_64"
//! python-version = "3.11.9"
//! inputs-hash = "<blake3 hex>"
//! ```
//!
//! Both directions go through derived serde structs (`de`, `ser`); the reader ignores keys it
//! does not use, and its errors name the table and the key.
use super::model::{Lock, LockedWheel};

mod de;
mod ser;
mod universal;

pub use de::UNKNOWN_VERSION;
pub use universal::{UniversalLock, UniversalLockedPackage};

/// The table name dx-py uses under `[tool]` and `[packages.tool]`.
const TOOL: &str = "dx-py";

/// A pylock.toml that cannot be read as a dx-py lock.
#[derive(Debug, thiserror::Error)]
pub enum PylockError {
    /// Not TOML at all.
    #[error("Invalid TOML in pylock.toml")]
    Toml(#[source] toml_edit::TomlError),
    /// A required key is absent.
    #[error("Missing `{key}` in {at}")]
    Missing {
        /// Where (e.g. `packages[2] (numpy)`).
        at: String,
        /// The key.
        key: &'static str,
    },
    /// A key holds the wrong kind of value.
    #[error("`{key}` in {at} must be {expected}")]
    WrongType {
        /// Where.
        at: String,
        /// The key.
        key: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A lock-version this reader does not understand.
    #[error("Unsupported pylock.toml lock-version `{0}`: expected 1.x")]
    UnsupportedLockVersion(String),
    /// A package with no wheel, sdist, directory or archive (VCS only).
    #[error(
        "Package `{0}` has no wheel, sdist, directory or archive; dx-py installs wheels and builds sdists and local source (VCS sources are not supported)"
    )]
    NoWheel(String),
    /// An archive named by URL rather than path.
    #[error(
        "Package `{0}` is an archive named by URL; dx-py builds archives named by `path` only (lock the URL's package from an index)"
    )]
    RemoteArchive(String),
    /// Several wheels and nothing to choose between them.
    #[error("Package `{package}` has {count} wheels and nothing chose one for this environment")]
    AmbiguousWheel {
        /// The package.
        package: String,
        /// How many wheels it lists.
        count: usize,
    },
    /// A wheel without a sha256 hash.
    #[error(
        "Wheel `{wheel}` of package `{package}` has no sha256 in `hashes`; dx-py checks every wheel against its sha256"
    )]
    MissingSha256 {
        /// The package.
        package: String,
        /// The wheel.
        wheel: String,
    },
    /// A hash that is not 64 hex digits.
    #[error("Invalid {what} `{value}` in {at}: expected 64 hex digits")]
    InvalidHash {
        /// Where.
        at: String,
        /// Which hash.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// Two packages of the same name apply to this environment.
    #[error(
        "Package `{0}` appears twice for this environment; a DPL holds one version of each package"
    )]
    DuplicatePackage(String),
    /// A dependency naming no package of the lock.
    #[error("Package `{package}` depends on `{dependency}`, which the lock does not contain")]
    UnknownDependency {
        /// The package.
        package: String,
        /// The dependency.
        dependency: String,
    },
    /// A selected extra missing from the package's extras table.
    #[error("Selected extra `{extra}` of package `{package}` is not in its `extras` table")]
    UnknownExtra {
        /// The package.
        package: String,
        /// The extra.
        extra: String,
    },
}

/// Choices a pylock.toml reader cannot make alone: a PEP 751 lock may cover many environments,
/// a DPL covers one. Implement this with marker evaluation and wheel-tag ranking for the target
/// interpreter.
pub trait PylockSelector {
    /// Whether the package entry (with its `marker`) belongs to the target environment.
    /// The default keeps every entry.
    fn applies(&mut self, name: &str, version: &str, marker: Option<&str>) -> bool {
        let _ = (name, version, marker);
        true
    }

    /// Which of several wheels to lock. The default chooses none, which is an error.
    fn choose_wheel(&mut self, name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        let _ = (name, wheels);
        None
    }
}

/// Keeps every package and accepts only packages with exactly one wheel.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSelector;

impl PylockSelector for DefaultSelector {}

/// A pylock.toml parsed but not yet checked: what [`Lock::from_pylock_str_with`] reads, for a
/// caller that looks at the file's `requires-python` before choosing its packages.
pub struct PylockDocument(de::RawLock);

impl PylockDocument {
    /// Parses `text`; fails only when it is not TOML (the keys are checked by [`Self::to_lock`]).
    pub fn parse(text: &str) -> Result<Self, PylockError> {
        de::RawLock::parse(text).map(Self)
    }

    /// The file's `requires-python`, when it has one that is a string.
    pub fn requires_python(&self) -> Option<&str> {
        self.0.requires_python()
    }

    /// The lock: the entries `selector` keeps, each with the wheel it chooses.
    pub fn to_lock(self, selector: &mut dyn PylockSelector) -> Result<Lock, PylockError> {
        self.0.into_lock(selector)
    }
}

impl Lock {
    /// Reads a pylock.toml that lists exactly one wheel per package and one entry per name
    /// (what dx-py writes). For multi-environment locks use [`Lock::from_pylock_str_with`].
    pub fn from_pylock_str(text: &str) -> Result<Self, PylockError> {
        Self::from_pylock_str_with(text, &mut DefaultSelector)
    }

    /// Reads a pylock.toml, asking `selector` which entries apply and which wheel to use.
    pub fn from_pylock_str_with(
        text: &str,
        selector: &mut dyn PylockSelector,
    ) -> Result<Self, PylockError> {
        PylockDocument::parse(text)?.to_lock(selector)
    }

    /// Writes this lock as a pylock.toml (lock-version 1.0), with dx-py's extra data in tool
    /// tables so that reading it back gives the same lock.
    pub fn to_pylock_string(&self) -> String {
        ser::write(self)
    }
}
