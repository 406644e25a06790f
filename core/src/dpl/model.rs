//! The in-memory lock: what the DPL builder writes, what the pylock.toml reader produces and
//! what the install pipeline consumes.
use std::str::FromStr;

use pep440_rs::{Version, VersionParseError};

use super::format::{EXTRAS_SEP, MAX_EXTRAS, META_STRING_MAX, same_name};
use crate::hash::ContentHash;
use crate::names::normalize_name;
use crate::wheel::WheelFilename;

/// A whole lock: the environment it was made for and one wheel per package.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// Project-level data.
    pub meta: LockMeta,
    /// The packages; names are unique after PEP 503 normalization.
    pub packages: Vec<LockedPackage>,
}

/// What a lock was made for, and from what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockMeta {
    /// The interpreter and platform the lock targets, e.g. `cp311-linux_x86_64` (empty = unknown).
    pub environment: String,
    /// The full interpreter version, e.g. `3.11.9` (empty = unknown).
    pub python_version: String,
    /// The project's `requires-python`, when it has one.
    pub requires_python: Option<String>,
    /// A hash of everything the lock was resolved from (requirements, index, interpreter), so
    /// that an install can tell a stale lock from a fresh one. All zeros = unknown.
    pub inputs_hash: ContentHash,
}

/// One package as locked: exactly one wheel for the lock's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedPackage {
    /// The distribution name as the index spells it.
    pub name: String,
    /// The full PEP 440 version string.
    pub version: String,
    /// The PEP 508 environment marker under which the package is needed, if any.
    pub marker: Option<String>,
    /// The package's own `Requires-Python`, if known.
    pub requires_python: Option<String>,
    /// The index URL the package was found on, if any.
    pub index_url: Option<String>,
    /// The extras table of this package (at most 64); bit `i` of `extras_bitmap` is `extras[i]`.
    pub extras: Vec<String>,
    /// Which extras of `extras` are selected in this lock.
    pub extras_bitmap: u64,
    /// The wheel to install. For a package built from [`Self::sdist`], its file name is the
    /// wheel the build made when locking (tags, for display), its sha256 the sdist's (what an
    /// install verifies and finds the built package by) and it has no URL, path or size: the
    /// built bytes are not reproducible from one machine to another, the sdist is.
    pub wheel: LockedWheel,
    /// The source distribution an install builds the package from, when no wheel is locked
    /// (PEP 751 `[packages.sdist]`): its file name, URL or path, sha256 and size.
    pub sdist: Option<LockedWheel>,
    /// Local source named by a direct reference (PEP 751 `[packages.directory]` or
    /// `[packages.archive]`), built at install time; `None` for index packages.
    pub local: Option<LocalSource>,
    /// The blake3 hash of the package's `.dxpkg` in the store, once it has been stored.
    pub store_hash: Option<ContentHash>,
    /// Names of the packages in the same lock that this one depends on.
    pub dependencies: Vec<String>,
}

/// Local source a package is locked as (`./p`, `-e ./p`, `name @ file:///p`, `./x.tar.gz`):
/// the lock names the source, not the wheel built from it on one machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalSource {
    /// A project directory, relative to the lock file's directory (PEP 751
    /// `[packages.directory]`). The package's wheel keeps only the built wheel's file name (a
    /// tree has no content hash: its sha256 is all zeros); an install builds the tree.
    Directory {
        /// The directory, relative to the lock's directory (`/`-separated), or absolute.
        path: String,
        /// Installed editable (PEP 660).
        editable: bool,
    },
    /// A source archive named by path: the package's [`LockedPackage::sdist`] is that archive
    /// (path and sha256), written as PEP 751 `[packages.archive]` instead of `sdist`.
    Archive,
}

/// The wheel a package is locked to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedWheel {
    /// The wheel file name, e.g. `idna-3.7-py3-none-any.whl`.
    pub filename: String,
    /// Where to download it, if it comes from a URL.
    pub url: Option<String>,
    /// Where it is on disk, if it is a local file (relative to the lock file's directory).
    pub path: Option<String>,
    /// The sha256 of the wheel file.
    pub sha256: [u8; 32],
    /// The size of the wheel file in bytes, if known.
    pub size: Option<u64>,
}

/// Version components DPL keeps next to the version string: the first three release segments.
///
/// `2.31` gives `(2, 31, 0)`; the epoch, pre-, post-, dev- and local parts are ignored.
pub fn version_components(version: &str) -> Result<(u64, u64, u64), VersionParseError> {
    let v = Version::from_str(version)?;
    let r = v.release();
    let at = |i: usize| r.get(i).copied().unwrap_or(0);
    Ok((at(0), at(1), at(2)))
}

/// A lock the DPL format cannot hold as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DplBuildError {
    /// A package name is not a valid distribution name.
    #[error(
        "Invalid package name `{0}`: expected ASCII letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit"
    )]
    InvalidName(String),
    /// Two packages have the same normalized name.
    #[error("Package `{0}` is locked twice; a DPL holds one version of each package")]
    DuplicatePackage(String),
    /// A version that PEP 440 does not accept.
    #[error("Invalid version `{version}` of package `{package}`: {source}")]
    InvalidVersion {
        /// The package.
        package: String,
        /// The version string given.
        version: String,
        /// Why PEP 440 refuses it.
        #[source]
        source: VersionParseError,
    },
    /// A wheel file name that is not one.
    #[error("Invalid wheel file name `{filename}` for package `{package}`: {reason}")]
    InvalidWheel {
        /// The package.
        package: String,
        /// The file name given.
        filename: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extra name that is empty or not a valid extra name.
    #[error("Invalid extra `{extra}` of package `{package}`: expected a PEP 685 name")]
    InvalidExtra {
        /// The package.
        package: String,
        /// The extra given.
        extra: String,
    },
    /// A marker that PEP 508 does not accept.
    #[error("Invalid marker `{marker}` of `{package}`: {reason}")]
    InvalidMarker {
        /// The package (or `lock` for the lock's environments).
        package: String,
        /// The marker given.
        marker: String,
        /// The parser's message.
        reason: String,
    },
    /// The same extra twice in a package's extras table.
    #[error("Extra `{extra}` appears twice in the extras of package `{package}`")]
    DuplicateExtra {
        /// The package.
        package: String,
        /// The extra.
        extra: String,
    },
    /// More extras than the 64-bit bitmap can select.
    #[error("Package `{package}` has {count} extras; a DPL records at most 64")]
    TooManyExtras {
        /// The package.
        package: String,
        /// How many were given.
        count: usize,
    },
    /// A bitmap bit with no extra behind it.
    #[error(
        "Extras bitmap {bitmap:#x} of package `{package}` selects extras past the {count} it has"
    )]
    BitmapOutOfRange {
        /// The package.
        package: String,
        /// The bitmap given.
        bitmap: u64,
        /// The number of extras in the table.
        count: usize,
    },
    /// A dependency on a package that is not in the lock.
    #[error("Package `{package}` depends on `{dependency}`, which is not in the lock")]
    UnknownDependency {
        /// The package.
        package: String,
        /// The missing dependency.
        dependency: String,
    },
    /// An sdist entry that breaks the rules of [`LockedPackage::sdist`].
    #[error("Invalid sdist `{filename}` of package `{package}`: {reason}")]
    InvalidSdist {
        /// The package.
        package: String,
        /// The sdist's file name.
        filename: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A local source entry that breaks the rules of [`LocalSource`].
    #[error("Invalid local source of package `{package}`: {reason}")]
    InvalidLocal {
        /// The package.
        package: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string longer than its length field (or, for meta strings, the format's limit).
    #[error("The {field} of `{package}` is {len} bytes long; the limit is {max}")]
    TooLong {
        /// The package (or `lock` for project-level data).
        package: String,
        /// Which string.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A wheel size a `pylock.toml` could not hold.
    #[error("Wheel size {size} of package `{package}` does not fit a TOML integer")]
    SizeTooLarge {
        /// The package.
        package: String,
        /// The size given.
        size: u64,
    },
    /// More packages or edges than the format's `u32` counters hold.
    #[error("Too many {what} for a DPL ({count})")]
    TooMany {
        /// Packages or dependency edges.
        what: &'static str,
        /// How many.
        count: usize,
    },
}

/// True for PEP 508 names: `^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

impl LockedPackage {
    /// The PEP 503 normalized name, the key a DPL looks packages up by.
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    /// True when `extra` (compared PEP 685-normalized) is in the extras table and selected.
    pub fn has_extra(&self, extra: &str) -> bool {
        self.extras
            .iter()
            .position(|e| same_name(e, extra))
            .is_some_and(|i| self.extras_bitmap & (1 << i) != 0)
    }

    /// The selected extras, in table order.
    pub fn selected_extras(&self) -> impl Iterator<Item = &str> {
        self.extras
            .iter()
            .enumerate()
            .filter(|(i, _)| self.extras_bitmap & (1 << i) != 0)
            .map(|(_, e)| e.as_str())
    }

    /// Checks everything about this package that does not involve the rest of the lock.
    pub(crate) fn validate(&self) -> Result<(u64, u64, u64), DplBuildError> {
        if !is_valid_name(&self.name) {
            return Err(DplBuildError::InvalidName(self.name.clone()));
        }
        let package = || self.name.clone();
        let components =
            version_components(&self.version).map_err(|source| DplBuildError::InvalidVersion {
                package: package(),
                version: self.version.clone(),
                source,
            })?;
        WheelFilename::parse(&self.wheel.filename).map_err(|e| DplBuildError::InvalidWheel {
            package: package(),
            filename: self.wheel.filename.clone(),
            reason: e.reason,
        })?;
        if let Some(sdist) = &self.sdist {
            self.validate_sdist(sdist)?;
        }
        self.validate_local()?;
        if self.extras.len() > MAX_EXTRAS {
            return Err(DplBuildError::TooManyExtras {
                package: package(),
                count: self.extras.len(),
            });
        }
        for (i, extra) in self.extras.iter().enumerate() {
            if !is_valid_name(extra) || extra.contains(EXTRAS_SEP) {
                return Err(DplBuildError::InvalidExtra {
                    package: package(),
                    extra: extra.clone(),
                });
            }
            if self.extras[..i].iter().any(|e| same_name(e, extra)) {
                return Err(DplBuildError::DuplicateExtra {
                    package: package(),
                    extra: extra.clone(),
                });
            }
        }
        let allowed = if self.extras.len() == MAX_EXTRAS {
            u64::MAX
        } else {
            (1u64 << self.extras.len()) - 1
        };
        if self.extras_bitmap & !allowed != 0 {
            return Err(DplBuildError::BitmapOutOfRange {
                package: package(),
                bitmap: self.extras_bitmap,
                count: self.extras.len(),
            });
        }
        if let Some(size) = self.wheel.size
            && i64::try_from(size).is_err()
        {
            return Err(DplBuildError::SizeTooLarge {
                package: package(),
                size,
            });
        }
        Ok(components)
    }
}

impl LockedPackage {
    /// The rules a DPL entry relies on to hold an sdist in the wheel's fields: the sdist has a
    /// location whose last segment is its file name (a DPL derives the name from it), the
    /// wheel has no location or size of its own and shares the sdist's sha256.
    fn validate_sdist(&self, sdist: &LockedWheel) -> Result<(), DplBuildError> {
        let bad = |reason| DplBuildError::InvalidSdist {
            package: self.name.clone(),
            filename: sdist.filename.clone(),
            reason,
        };
        match sdist.location().and_then(last_segment) {
            None => return Err(bad("it has neither a URL nor a path")),
            Some(last) if last != sdist.filename => {
                return Err(bad("its URL or path does not end in its file name"));
            }
            Some(_) => {}
        }
        if sdist.size.is_some_and(|s| i64::try_from(s).is_err()) {
            return Err(bad("its size does not fit a TOML integer"));
        }
        if self.wheel.url.is_some() || self.wheel.path.is_some() || self.wheel.size.is_some() {
            return Err(bad(
                "the wheel built from it has a URL, path or size of its own",
            ));
        }
        if self.wheel.sha256 != sdist.sha256 {
            return Err(bad("the wheel built from it does not carry its sha256"));
        }
        Ok(())
    }
}

impl LockedPackage {
    /// The rules of [`LocalSource`]: a directory is the only source (no sdist, a wheel with no
    /// location, size or hash) and names a path; an archive is the package's sdist, by path.
    fn validate_local(&self) -> Result<(), DplBuildError> {
        let bad = |reason| DplBuildError::InvalidLocal {
            package: self.name.clone(),
            reason,
        };
        match &self.local {
            None => Ok(()),
            Some(LocalSource::Directory { path, .. }) => {
                if path.is_empty() {
                    return Err(bad("its directory path is empty"));
                }
                if self.sdist.is_some() {
                    return Err(bad("a directory entry also names an sdist"));
                }
                if self.wheel.url.is_some()
                    || self.wheel.path.is_some()
                    || self.wheel.size.is_some()
                    || self.wheel.sha256 != [0; 32]
                {
                    return Err(bad(
                        "the wheel built from a directory has a URL, path, size or sha256 of its own",
                    ));
                }
                Ok(())
            }
            Some(LocalSource::Archive) => match &self.sdist {
                Some(sdist) if sdist.path.is_some() && sdist.url.is_none() => Ok(()),
                _ => Err(bad("an archive entry needs a local sdist named by path")),
            },
        }
    }

    /// The local directory this package is locked as, with its editable flag.
    pub fn directory(&self) -> Option<(&str, bool)> {
        match &self.local {
            Some(LocalSource::Directory { path, editable }) => Some((path, *editable)),
            _ => None,
        }
    }
}

/// The last `/`- or `\`-separated segment of a URL or path, when not empty (a file's name).
pub(crate) fn last_segment(location: &str) -> Option<&str> {
    location
        .rsplit(['/', '\\'])
        .next()
        .filter(|s| !s.is_empty())
}

impl LockedWheel {
    /// The URL, else the path.
    pub fn location(&self) -> Option<&str> {
        self.url.as_deref().or(self.path.as_deref())
    }

    /// The sha256 as lowercase hex, the form `--hash=sha256:` and pylock.toml use.
    pub fn sha256_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.sha256)
    }
}

impl Default for LockMeta {
    /// Unknown environment, python version and inputs.
    fn default() -> Self {
        Self {
            environment: String::new(),
            python_version: String::new(),
            requires_python: None,
            inputs_hash: ContentHash::from_bytes([0; 32]),
        }
    }
}

impl LockMeta {
    pub(crate) fn validate(&self) -> Result<(), DplBuildError> {
        let fields = [
            ("environment", Some(&self.environment)),
            ("python version", Some(&self.python_version)),
            ("requires-python", self.requires_python.as_ref()),
        ];
        for (field, s) in fields {
            if let Some(s) = s
                && s.len() > META_STRING_MAX
            {
                return Err(DplBuildError::TooLong {
                    package: "lock".to_string(),
                    field,
                    len: s.len(),
                    max: META_STRING_MAX,
                });
            }
        }
        Ok(())
    }

    /// True when the lock was made from inputs hashing to `inputs` (an unknown hash never matches).
    pub fn is_fresh(&self, inputs: &ContentHash) -> bool {
        self.inputs_hash != ContentHash::from_bytes([0; 32]) && &self.inputs_hash == inputs
    }
}

impl Lock {
    /// The package named `name` (PEP 503-normalized comparison): a linear scan, for small locks
    /// and tests. Large locks should be read through a DPL.
    pub fn get(&self, name: &str) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| same_name(&p.name, name))
    }

    /// The form a lock takes after a DPL round trip: packages sorted by normalized name,
    /// dependencies normalized, sorted and deduplicated.
    pub fn canonicalize(&mut self) {
        self.packages
            .sort_by_cached_key(LockedPackage::normalized_name);
        for p in &mut self.packages {
            for d in &mut p.dependencies {
                *d = normalize_name(d);
            }
            p.dependencies.sort();
            p.dependencies.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_pad_with_zero() {
        assert_eq!(version_components("2").unwrap(), (2, 0, 0));
        assert_eq!(version_components("2.31").unwrap(), (2, 31, 0));
        assert_eq!(version_components("1!3.4.5.6rc1.post2").unwrap(), (3, 4, 5));
        assert_eq!(
            version_components("20240101.1").unwrap(),
            (20_240_101, 1, 0)
        );
        assert!(version_components("not a version").is_err());
    }

    #[test]
    fn names_are_checked() {
        for ok in ["a", "A1", "foo-bar", "foo_bar.baz", "x.y"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "é", "a,b", ".a"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
