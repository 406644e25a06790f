//! What a lock or an install targets: a Python version on a platform, as wheel tags
//! ([`TagTarget`]) and PEP 508 marker values. An [`Interpreter`] gives its own; this machine's
//! platform with another Python version ([`Interpreter::target_for`]) needs no interpreter of
//! that version, so `lock --python-version 3.9` works on a machine without Python 3.9.
use std::fmt;
use std::str::FromStr;

use super::interpreter::{Interpreter, InterpreterError, QueryAnswerError, build_markers};
use super::tags::{TagTarget, TargetAbi, TargetPlatform};
use crate::wheel::Tag;

/// A Python version a target names: `3.9` or `3.9.18`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TargetVersion {
    /// `3`.
    pub major: u32,
    /// `9` for Python 3.9.
    pub minor: u32,
    /// The patch level when given; markers then compare `python_full_version` against it.
    pub patch: Option<u32>,
}

/// A Python version that is not `X.Y` or `X.Y.Z`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid Python version `{0}`: expected `X.Y` or `X.Y.Z`, e.g. `3.12` or `3.12.4`")]
pub struct TargetVersionError(pub String);

impl FromStr for TargetVersion {
    type Err = TargetVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TargetVersionError(s.to_string());
        let parts: Vec<u32> = s
            .split('.')
            .map(|p| {
                // Digits only: `+`, `-`, spaces and pre-release parts are refused.
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                p.parse().map_err(|_| bad())
            })
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [major, minor] => Ok(Self {
                major,
                minor,
                patch: None,
            }),
            [major, minor, patch] => Ok(Self {
                major,
                minor,
                patch: Some(patch),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for TargetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

/// A Python version on a platform: the wheel tags it accepts and the marker values its
/// dependencies are evaluated with.
#[derive(Clone, Debug)]
pub struct Target {
    /// What wheel tags depend on.
    pub tags: TagTarget,
    /// PEP 508 marker values (`python_version`, `python_full_version`, `sys_platform`, …).
    pub markers: pep508_rs::MarkerEnvironment,
}

impl Target {
    /// Every tag a wheel may carry to be installable on this target, best first.
    pub fn supported_tags(&self) -> Vec<Tag> {
        self.tags.supported_tags()
    }
}

impl Interpreter {
    /// This interpreter's tag target: its implementation, version, ABI and platform.
    pub fn tag_target(&self) -> TagTarget {
        let info = self.info();
        let cpython = || TargetAbi::CPython {
            free_threaded: info.gil_disabled,
            debug: info.py_debug,
            pymalloc: info.pymalloc,
        };
        let abi = if info.implementation == "cpython" {
            cpython()
        } else {
            TargetAbi::from_ext_suffix(info.ext_suffix.as_deref()).unwrap_or_else(cpython)
        };
        TagTarget {
            implementation: info.implementation.clone(),
            python: (info.version.major, info.version.minor),
            abi,
            platform: TargetPlatform::from_sysconfig(
                &info.sysconfig_platform,
                info.pointer_bits,
                info.libc,
            ),
        }
    }

    /// This interpreter's target: its tags and marker values.
    pub fn target(&self) -> Target {
        Target {
            tags: self.tag_target(),
            markers: self.marker_env(),
        }
    }

    /// This machine's platform (as this interpreter sees it: architecture, C library, OS) with
    /// Python `version` of the same implementation, without running that version.
    ///
    /// The ABI is a normal build's (no debug build, pymalloc before 3.8); a free-threaded
    /// interpreter gives a free-threaded target from 3.13 on. Marker values other than the
    /// versions are this interpreter's; `python_full_version` is `X.Y.0` when no patch level is
    /// given. Other implementations than CPython get no ABI-specific tags (their ABI names their
    /// own release, which a Python version does not give).
    pub fn target_for(&self, version: TargetVersion) -> Result<Target, InterpreterError> {
        let info = self.info();
        let abi = if info.implementation == "cpython" {
            TargetAbi::CPython {
                free_threaded: info.gil_disabled && (version.major, version.minor) >= (3, 13),
                debug: false,
                pymalloc: true,
            }
        } else {
            TargetAbi::Other(None)
        };
        let tags = TagTarget {
            abi,
            python: (version.major, version.minor),
            ..self.tag_target()
        };
        let mut values = info.markers.clone();
        let full = format!(
            "{}.{}.{}",
            version.major,
            version.minor,
            version.patch.unwrap_or(0)
        );
        values.python_version = format!("{}.{}", version.major, version.minor);
        if info.implementation == "cpython" {
            values.implementation_version.clone_from(&full);
        }
        values.python_full_version = full;
        let markers = build_markers(&values).map_err(|reason: QueryAnswerError| {
            InterpreterError::BadOutput {
                path: self.path().to_path_buf(),
                reason,
                output: String::new(),
            }
        })?;
        Ok(Target { tags, markers })
    }

    /// The platform tags, best first (see [`TargetPlatform::tags`]).
    pub fn platform_tags(&self) -> Vec<String> {
        self.tag_target().platform.tags()
    }

    /// Every tag a wheel may carry to be installable here, best first, as
    /// `packaging.tags.sys_tags()` orders them.
    pub fn supported_tags(&self) -> Vec<Tag> {
        self.tag_target().supported_tags()
    }

    /// The rank of the best of a wheel's `tags` (lower is better), or `None` when the wheel does
    /// not run here. O(1) per tag: the table is built on first use and kept.
    pub fn tag_priority(&self, tags: &[Tag]) -> Option<usize> {
        self.tags
            .get_or_init(|| super::tags::TagPriorities::new(&self.tag_target()))
            .priority(tags)
    }

    /// A short key for layouts built for this interpreter, e.g. `cp311-linux_x86_64`,
    /// `cp313t-linux_x86_64`: the interpreter's ABI and its generic platform.
    pub fn tag(&self) -> String {
        self.tag_target().key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::interpreter::tests::pyenv_python;
    use crate::python::tags::tests::fake;
    use crate::python::{Libc, TagPriorities};

    fn strings(tags: &[Tag]) -> Vec<String> {
        tags.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn versions_parse_and_refuse_garbage() {
        let v: TargetVersion = "3.9".parse().unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 9, None));
        let v: TargetVersion = "3.12.4".parse().unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 12, Some(4)));
        assert_eq!(v.to_string(), "3.12.4");
        for bad in [
            "",
            "3",
            "3.",
            "3.x",
            "3.9.1.2",
            "3.13t",
            "+3.9",
            " 3.9",
            "3.99999999999",
        ] {
            assert_eq!(
                bad.parse::<TargetVersion>(),
                Err(TargetVersionError(bad.to_string())),
                "{bad}"
            );
        }
    }

    /// A target written by hand, with no interpreter anywhere: CPython 3.9 on glibc 2.17.
    #[test]
    fn a_target_needs_no_interpreter() {
        let target = TagTarget {
            implementation: "cpython".into(),
            python: (3, 9),
            abi: TargetAbi::CPython {
                free_threaded: false,
                debug: false,
                pymalloc: true,
            },
            platform: TargetPlatform::Linux {
                arch: "aarch64".into(),
                libc: Libc::Glibc {
                    major: 2,
                    minor: 17,
                },
            },
        };
        let tags = strings(&target.supported_tags());
        assert_eq!(
            tags[..4],
            [
                "cp39-cp39-manylinux_2_17_aarch64",
                "cp39-cp39-manylinux2014_aarch64",
                "cp39-cp39-linux_aarch64",
                "cp39-abi3-manylinux_2_17_aarch64",
            ]
        );
        assert_eq!(tags.last().unwrap(), "py30-none-any");
        assert_eq!(target.key(), "cp39-linux_aarch64");
        let ranks = TagPriorities::new(&target);
        let wheel = |s: &str| {
            let [python, abi, platform]: [&str; 3] =
                s.split('-').collect::<Vec<_>>().try_into().unwrap();
            vec![Tag {
                python: python.into(),
                abi: abi.into(),
                platform: platform.into(),
            }]
        };
        assert_eq!(
            ranks.priority(&wheel("cp39-cp39-manylinux2014_aarch64")),
            Some(1)
        );
        assert_eq!(
            ranks.priority(&wheel("cp39-cp39-manylinux_2_28_aarch64")),
            None
        );
        assert_eq!(
            ranks.priority(&wheel("cp39-cp39-manylinux2014_x86_64")),
            None
        );
    }

    /// Another version on this interpreter's platform equals an interpreter of that version
    /// on the same platform, for tags and markers alike.
    #[test]
    fn target_for_another_version_matches_that_version() {
        let glibc = Libc::Glibc {
            major: 2,
            minor: 31,
        };
        let t312 = fake(12, glibc, |_| {});
        let t39 = fake(9, glibc, |_| {});
        let target = t312.target_for("3.9.0".parse().unwrap()).unwrap();
        assert_eq!(target.tags, t39.tag_target());
        assert_eq!(target.supported_tags(), t39.supported_tags());
        assert_eq!(target.markers, t39.marker_env());
        let no_patch = t312.target_for("3.9".parse().unwrap()).unwrap();
        assert_eq!(no_patch.markers.python_full_version().to_string(), "3.9.0");
        assert_eq!(no_patch.markers.python_version().to_string(), "3.9");

        // Free-threading exists from 3.13 on.
        let ft = fake(13, Libc::None, |i| i.gil_disabled = true);
        let older = ft.target_for("3.12".parse().unwrap()).unwrap();
        assert_eq!(older.tags.key(), "cp312-linux_x86_64");
        let newer = ft.target_for("3.14".parse().unwrap()).unwrap();
        assert_eq!(newer.tags.key(), "cp314t-linux_x86_64");
    }

    /// With real interpreters: 3.12's view of 3.9 is what 3.9 itself says (tags compared
    /// against `packaging` in `tags.rs`), down to every marker value.
    #[test]
    fn target_for_matches_a_real_interpreter() {
        let (Some(p312), Some(p39)) = (pyenv_python(12), pyenv_python(9)) else {
            eprintln!("skipped: no pyenv Python 3.12 and 3.9");
            return;
        };
        let cache = tempfile::tempdir().unwrap();
        let i312 = Interpreter::find(p312.to_str(), cache.path()).unwrap();
        let i39 = Interpreter::find(p39.to_str(), cache.path()).unwrap();
        let version = i39.version().to_string().parse().unwrap();
        let target = i312.target_for(version).unwrap();
        assert_eq!(
            strings(&target.supported_tags()),
            strings(&i39.supported_tags())
        );
        assert_eq!(target.markers, i39.marker_env());
    }
}
