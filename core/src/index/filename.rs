//! Distribution file names as an index lists them: wheels, and source distributions (which
//! are recognised only so that a missing wheel can be explained).
use std::str::FromStr;

use pep440_rs::Version;

use crate::names::normalize_name;
use crate::wheel::WheelFilename;

/// File name endings of source distributions, longest first.
pub const SDIST_EXTENSIONS: &[&str] = &[".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"];

/// A wheel or source distribution file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistFilename {
    /// `{name}-{version}(-{build})?-{tags}.whl`.
    Wheel(WheelFilename),
    /// `{name}-{version}.tar.gz` and the other [`SDIST_EXTENSIONS`].
    Sdist {
        /// The name part as written.
        name: String,
        /// The version part as written.
        version: String,
    },
}

impl DistFilename {
    /// Parses `filename` as a distribution of the project `normalized_name`; `None` for any
    /// other project, other kinds of file, or a malformed name. Source distribution names are
    /// ambiguous (`foo-bar-1.0.tar.gz`), so the project name decides where the version starts.
    pub fn parse_for(filename: &str, normalized_name: &str) -> Option<Self> {
        if filename.ends_with(".whl") {
            let wheel = WheelFilename::parse(filename).ok()?;
            return (wheel.name.as_ref() == normalized_name).then_some(Self::Wheel(wheel));
        }
        let stem = sdist_stem(filename)?;
        for (i, _) in stem.match_indices('-') {
            let (name, version) = (stem.get(..i)?, stem.get(i + 1..)?);
            if !version.is_empty() && normalize_name(name) == normalized_name {
                return Some(Self::Sdist {
                    name: name.to_string(),
                    version: version.to_string(),
                });
            }
        }
        None
    }

    /// Parses `filename` without knowing the project; a source distribution's version is taken
    /// to start after the last `-`.
    pub fn parse(filename: &str) -> Option<Self> {
        if filename.ends_with(".whl") {
            return WheelFilename::parse(filename).ok().map(Self::Wheel);
        }
        let stem = sdist_stem(filename)?;
        let (name, version) = stem.rsplit_once('-')?;
        (!name.is_empty() && !version.is_empty()).then(|| Self::Sdist {
            name: name.to_string(),
            version: version.to_string(),
        })
    }

    /// The version as written in the file name.
    pub fn version(&self) -> &str {
        match self {
            Self::Wheel(w) => w.version_as_written(),
            Self::Sdist { version, .. } => version,
        }
    }

    /// The version as PEP 440 reads it (a wheel's was parsed with its name); `None` for a
    /// source distribution whose version part is not one.
    pub fn parsed_version(&self) -> Option<Version> {
        match self {
            Self::Wheel(w) => Some(w.version.clone()),
            Self::Sdist { version, .. } => Version::from_str(version).ok(),
        }
    }

    /// The normalized project name.
    pub fn normalized_name(&self) -> String {
        match self {
            Self::Wheel(w) => w.name.to_string(),
            Self::Sdist { name, .. } => normalize_name(name),
        }
    }
}

/// Whether `filename` ends like a wheel or a source distribution.
pub fn is_dist_filename(filename: &str) -> bool {
    filename.ends_with(".whl") || sdist_stem(filename).is_some()
}

fn sdist_stem(filename: &str) -> Option<&str> {
    SDIST_EXTENSIONS
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))
        .filter(|stem| !stem.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_for_a_project() {
        let w = DistFilename::parse_for("Foo_Bar-1.0-py3-none-any.whl", "foo-bar").unwrap();
        assert_eq!(w.version(), "1.0");
        assert!(DistFilename::parse_for("foo_bar-1.0-py3-none-any.whl", "foo").is_none());
        let s = DistFilename::parse_for("foo-bar-1.0.post1.tar.gz", "foo-bar").unwrap();
        assert_eq!(s.version(), "1.0.post1");
        assert_eq!(s.parsed_version(), Version::from_str("1.0post1").ok());
        let s = DistFilename::parse_for("foo-bar-1.0.zip", "foo").unwrap();
        assert_eq!(s.version(), "bar-1.0");
        assert_eq!(s.parsed_version(), None);
        assert!(DistFilename::parse_for("foo-1.0.egg", "foo").is_none());
        assert!(DistFilename::parse_for(".tar.gz", "foo").is_none());
        assert!(DistFilename::parse_for("foo-.tar.gz", "foo").is_none());
    }

    #[test]
    fn parses_without_a_project() {
        let s = DistFilename::parse("foo.bar-2.0.tar.gz").unwrap();
        assert_eq!(s.normalized_name(), "foo-bar");
        assert_eq!(s.version(), "2.0");
        assert!(DistFilename::parse("foo.tar.gz").is_none());
        assert!(is_dist_filename("x-1.tgz"));
        assert!(!is_dist_filename("index.html"));
    }
}
