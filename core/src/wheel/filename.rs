//! `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl` (the binary distribution format).
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;

use crate::names::PackageName;

/// One compatibility tag triple, e.g. `cp311-cp311-manylinux_2_17_x86_64`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    /// Python tag, e.g. `cp311`, `py3`.
    pub python: String,
    /// ABI tag, e.g. `cp311`, `abi3`, `none`.
    pub abi: String,
    /// Platform tag, e.g. `manylinux_2_17_x86_64`, `any`.
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A wheel file name that is not of the form the spec gives.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid wheel file name `{name}`: {reason}")]
pub struct WheelFilenameError {
    /// The file name given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A parsed wheel file name.
///
/// The name and version are typed (normalized name, PEP 440 version: what comparisons and sorts
/// need); their spelling in the file name is kept too, for what must repeat it byte-exact
/// (the expected `.dist-info` directory, error messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelFilename {
    /// Distribution name, normalized.
    pub name: PackageName,
    /// Version, parsed.
    pub version: Version,
    /// Optional build tag.
    pub build: Option<String>,
    /// Every tag triple the compressed tag sets expand to.
    pub tags: Vec<Tag>,
    /// The name part as written (escaped, not normalized).
    written_name: String,
    /// The version part as written.
    written_version: String,
}

impl WheelFilename {
    /// Parses a file name (not a path).
    pub fn parse(filename: &str) -> Result<Self, WheelFilenameError> {
        let err = |reason| WheelFilenameError {
            name: filename.to_string(),
            reason,
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| err("does not end in `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [n, v, p, a, pl] => (*n, *v, None, *p, *a, *pl),
            [n, v, b, p, a, pl] => (*n, *v, Some(*b), *p, *a, *pl),
            _ => return Err(err("expected 5 or 6 `-`-separated parts")),
        };
        if [name, version, py, abi, plat].iter().any(|s| s.is_empty()) {
            return Err(err("empty part"));
        }
        let typed_name = PackageName::from_str(name)
            .map_err(|_| err("the name part is not a valid package name"))?;
        let typed_version = Version::from_str(version)
            .map_err(|_| err("the version part is not a valid PEP 440 version"))?;
        if build.is_some_and(|b| !b.starts_with(|c: char| c.is_ascii_digit())) {
            return Err(err("build tag must start with a digit"));
        }
        let mut tags = Vec::new();
        for p in py.split('.') {
            for a in abi.split('.') {
                for pl in plat.split('.') {
                    tags.push(Tag {
                        python: p.to_string(),
                        abi: a.to_string(),
                        platform: pl.to_string(),
                    });
                }
            }
        }
        Ok(Self {
            name: typed_name,
            version: typed_version,
            build: build.map(str::to_string),
            tags,
            written_name: name.to_string(),
            written_version: version.to_string(),
        })
    }

    /// The name part exactly as the file name spells it.
    pub fn name_as_written(&self) -> &str {
        &self.written_name
    }

    /// The version part exactly as the file name spells it.
    pub fn version_as_written(&self) -> &str {
        &self.written_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compressed_tag_sets() {
        let w = WheelFilename::parse(
            "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name.as_ref(), "numpy");
        assert_eq!(w.version.to_string(), "2.1.0");
        assert_eq!(w.tags.len(), 2);
        assert_eq!(w.tags[1].to_string(), "cp311-cp311-manylinux2014_x86_64");
        let w = WheelFilename::parse("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.tags.len(), 2);
        let w = WheelFilename::parse("foo_bar-1.0-1-py3-none-any.whl").unwrap();
        assert_eq!(w.build.as_deref(), Some("1"));
        assert_eq!(w.name.as_ref(), "foo-bar");
        assert_eq!(w.name_as_written(), "foo_bar");
        let w = WheelFilename::parse("Foo.Bar-1.0.0-rc1-py3-none-any.whl");
        assert!(
            w.is_err(),
            "a `-` in the version is a sixth part, not a build tag"
        );
        let w = WheelFilename::parse("Foo.Bar-01.0rc1-py3-none-any.whl").unwrap();
        assert_eq!(w.version, Version::from_str("1.0rc1").unwrap());
        assert_eq!(w.version_as_written(), "01.0rc1");
    }

    #[test]
    fn refuses_malformed_names() {
        for bad in [
            "foo.whl",
            "foo-1.0-py3-none.whl",
            "foo-1.0-py3-none-any.zip",
            "foo-1.0-x-py3-none-any.whl",
            "-1.0-py3-none-any.whl",
            "foo!-1.0-py3-none-any.whl",
            "foo-one-py3-none-any.whl",
        ] {
            assert!(WheelFilename::parse(bad).is_err(), "{bad}");
        }
    }
}
