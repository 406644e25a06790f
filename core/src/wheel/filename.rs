//! `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl` (the binary distribution format).
use std::fmt;

use crate::names::normalize_name;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelFilename {
    /// Distribution name as written in the file name (escaped, not normalized).
    pub name: String,
    /// Version string as written.
    pub version: String,
    /// Optional build tag.
    pub build: Option<String>,
    /// Every tag triple the compressed tag sets expand to.
    pub tags: Vec<Tag>,
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
        if let Some(b) = build
            && !b.starts_with(|c: char| c.is_ascii_digit())
        {
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
            name: name.to_string(),
            version: version.to_string(),
            build: build.map(str::to_string),
            tags,
        })
    }

    /// The PEP 503-normalized distribution name.
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
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
        assert_eq!(w.name, "numpy");
        assert_eq!(w.version, "2.1.0");
        assert_eq!(w.tags.len(), 2);
        assert_eq!(w.tags[1].to_string(), "cp311-cp311-manylinux2014_x86_64");
        let w = WheelFilename::parse("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.tags.len(), 2);
        let w = WheelFilename::parse("foo_bar-1.0-1-py3-none-any.whl").unwrap();
        assert_eq!(w.build.as_deref(), Some("1"));
        assert_eq!(w.normalized_name(), "foo-bar");
    }

    #[test]
    fn refuses_malformed_names() {
        for bad in [
            "foo.whl",
            "foo-1.0-py3-none.whl",
            "foo-1.0-py3-none-any.zip",
            "foo-1.0-x-py3-none-any.whl",
            "-1.0-py3-none-any.whl",
        ] {
            assert!(WheelFilename::parse(bad).is_err(), "{bad}");
        }
    }
}
