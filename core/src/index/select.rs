//! Choosing the one wheel of a pinned version that fits an interpreter.
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use super::{DistFilename, IndexFile};
use crate::names::normalize_name;
use crate::wheel::{Tag, WheelFilename};

/// The chosen wheel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedWheel {
    /// The file as listed.
    pub file: IndexFile,
    /// Its parsed name.
    pub filename: WheelFilename,
    /// The tag priority it matched with (lower is better).
    pub priority: usize,
    /// It was yanked: allowed because the requirement pins it exactly (PEP 592), but worth a
    /// warning. A yanked wheel is only chosen when no compatible wheel is unyanked.
    pub yanked: bool,
}

/// Why no wheel could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    /// The pinned version is not valid PEP 440.
    #[error("Invalid version `{version}` for `{name}`: {reason}")]
    InvalidVersion {
        /// The package.
        name: String,
        /// The version given.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// No file has the pinned version.
    #[error(
        "Version `{version}` of `{name}` was not found{}",
        if available.is_empty() {
            "; no versions are available".to_string()
        } else {
            format!("; available versions (newest first): {}", available.join(", "))
        }
    )]
    VersionNotFound {
        /// The package.
        name: String,
        /// The version pinned.
        version: String,
        /// The newest versions there are (at most ten).
        available: Vec<String>,
    },
    /// The version has source distributions but no wheel.
    #[error(
        "Only a source distribution is available for `{name}=={version}` ({}) and building from \
         source is turned off (`--no-build`): pin a version that has wheels, provide a wheel \
         with `--find-links`, or allow builds",
        sdists.join(", ")
    )]
    OnlySdist {
        /// The package.
        name: String,
        /// The version pinned.
        version: String,
        /// The source distribution file names.
        sdists: Vec<String>,
    },
    /// Wheels exist but none matches the interpreter's tags.
    #[error(
        "No wheel of `{name}=={version}` is compatible with this interpreter; the wheels have \
         tags: {}",
        tags.join(", ")
    )]
    NoCompatibleWheel {
        /// The package.
        name: String,
        /// The version pinned.
        version: String,
        /// The distinct tags the wheels have (at most 30).
        tags: Vec<String>,
    },
    /// Wheels match the tags but require another Python.
    #[error(
        "Every compatible wheel of `{name}=={version}` requires Python `{requires_python}`, but \
         the interpreter is Python {python}"
    )]
    RequiresPython {
        /// The package.
        name: String,
        /// The version pinned.
        version: String,
        /// The interpreter version.
        python: String,
        /// The requirement of the first compatible wheel.
        requires_python: String,
    },
}

/// Chooses, among `candidates`, a wheel of project `name` at exactly `version` (compared as
/// PEP 440 versions: `1.0` is `1.0.0`) that `python_version` may install (`requires_python`)
/// and whose tags `tag_priority` accepts, preferring unyanked wheels, then the lowest
/// priority, then the highest build tag, then the earliest candidate.
pub fn select_wheel(
    candidates: &[IndexFile],
    name: &str,
    version: &str,
    tag_priority: impl Fn(&[Tag]) -> Option<usize>,
    python_version: &Version,
) -> Result<SelectedWheel, SelectError> {
    let normalized = normalize_name(name);
    let wanted = Version::from_str(version).map_err(|e| SelectError::InvalidVersion {
        name: name.to_string(),
        version: version.to_string(),
        reason: e.to_string(),
    })?;
    // Requires-Python compares release numbers: a 3.13.0rc1 interpreter satisfies `>=3.13`.
    let python = Version::new(python_version.release().iter().copied());

    let mut available: Vec<Version> = Vec::new();
    let mut sdists = Vec::new();
    let mut tags_seen: Vec<String> = Vec::new();
    let mut python_excluded: Option<String> = None;
    let mut best: Option<(SelectedWheel, Preference)> = None;

    for file in candidates {
        let Some(dist) = DistFilename::parse_for(&file.filename, &normalized) else {
            continue;
        };
        let Some(file_version) = dist.parsed_version() else {
            tracing::debug!("Skipping `{}`: invalid version", file.filename);
            continue;
        };
        if file_version != wanted {
            if !available.contains(&file_version) {
                available.push(file_version);
            }
            continue;
        }
        let wheel = match dist {
            DistFilename::Wheel(w) => w,
            DistFilename::Sdist { .. } => {
                sdists.push(file.filename.clone());
                continue;
            }
        };
        for tag in &wheel.tags {
            let t = tag.to_string();
            if !tags_seen.contains(&t) {
                tags_seen.push(t);
            }
        }
        let Some(priority) = tag_priority(&wheel.tags) else {
            continue;
        };
        if let Some(spec) = &file.requires_python {
            match VersionSpecifiers::from_str(spec) {
                Ok(specs) if !specs.contains(&python) => {
                    python_excluded.get_or_insert_with(|| spec.clone());
                    continue;
                }
                Ok(_) => {}
                // pip ignores a Requires-Python it cannot parse.
                Err(e) => tracing::debug!(
                    "Ignoring invalid Requires-Python `{spec}` of `{}`: {e}",
                    file.filename
                ),
            }
        }
        let key = (
            file.yanked,
            priority,
            std::cmp::Reverse(BuildTag::parse(wheel.build.as_deref())),
        );
        if best.as_ref().is_none_or(|(_, k)| key < *k) {
            best = Some((
                SelectedWheel {
                    file: file.clone(),
                    filename: wheel,
                    priority,
                    yanked: file.yanked,
                },
                key,
            ));
        }
    }

    if let Some((chosen, _)) = best {
        return Ok(chosen);
    }
    let name = name.to_string();
    let version = version.to_string();
    if let Some(requires_python) = python_excluded {
        return Err(SelectError::RequiresPython {
            name,
            version,
            python: python.to_string(),
            requires_python,
        });
    }
    if !tags_seen.is_empty() {
        tags_seen.sort();
        tags_seen.truncate(30);
        return Err(SelectError::NoCompatibleWheel {
            name,
            version,
            tags: tags_seen,
        });
    }
    if !sdists.is_empty() {
        return Err(SelectError::OnlySdist {
            name,
            version,
            sdists,
        });
    }
    available.sort_unstable_by(|a, b| b.cmp(a));
    Err(SelectError::VersionNotFound {
        name,
        version,
        available: available.iter().take(10).map(ToString::to_string).collect(),
    })
}

/// How good a candidate is, smallest best: unyanked first, then tag priority, then the highest
/// build tag.
type Preference = (bool, usize, std::cmp::Reverse<BuildTag>);

/// A wheel build tag: leading digits, then the rest compared as a string; no tag sorts first.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct BuildTag(Option<(u64, String)>);

impl BuildTag {
    fn parse(tag: Option<&str>) -> Self {
        Self(tag.map(|t| {
            let digits = t.bytes().take_while(u8::is_ascii_digit).count();
            let number = t
                .get(..digits)
                .and_then(|d| d.parse().ok())
                .unwrap_or(u64::MAX);
            (number, t.get(digits..).unwrap_or_default().to_string())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str) -> IndexFile {
        IndexFile {
            filename: name.to_string(),
            url: format!("https://h.invalid/{name}"),
            sha256: None,
            ..IndexFile::default()
        }
    }

    /// cp311 on manylinux x86_64: the order a real interpreter would list (best first).
    fn cp311(tags: &[Tag]) -> Option<usize> {
        let supported = [
            "cp311-cp311-manylinux_2_17_x86_64",
            "cp311-abi3-manylinux_2_17_x86_64",
            "cp311-none-any",
            "py3-none-manylinux_2_17_x86_64",
            "py3-none-any",
        ];
        tags.iter()
            .filter_map(|t| supported.iter().position(|s| *s == t.to_string()))
            .min()
    }

    fn py(v: &str) -> Version {
        v.parse().unwrap()
    }

    #[test]
    fn picks_best_tag_of_the_exact_version() {
        let files = [
            file("foo-1.0.tar.gz"),
            file("foo-1.0-py3-none-any.whl"),
            file("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
            file("foo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
            file("foo-1.1-cp311-cp311-manylinux_2_17_x86_64.whl"),
            file("bar-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
        ];
        let s = select_wheel(&files, "Foo", "1.0.0", cp311, &py("3.11.4")).unwrap();
        assert_eq!(
            s.file.filename,
            "foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
        );
        assert_eq!(s.priority, 0);
        assert!(!s.yanked);
    }

    #[test]
    fn ties_keep_the_first_and_build_tags_break_them() {
        let mut a = file("foo-1.0-py3-none-any.whl");
        a.url = "https://first.invalid/a".into();
        let b = file("foo-1.0-py3-none-any.whl");
        let s = select_wheel(&[a.clone(), b], "foo", "1.0", cp311, &py("3.11")).unwrap();
        assert_eq!(s.file.url, "https://first.invalid/a");
        let built = file("foo-1.0-2-py3-none-any.whl");
        let s = select_wheel(&[a, built], "foo", "1.0", cp311, &py("3.11")).unwrap();
        assert_eq!(s.filename.build.as_deref(), Some("2"));
    }

    #[test]
    fn yanked_only_when_nothing_else() {
        let mut y = file("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl");
        y.yanked = true;
        let ok = file("foo-1.0-py3-none-any.whl");
        let s = select_wheel(&[y.clone(), ok], "foo", "1.0", cp311, &py("3.11")).unwrap();
        assert_eq!(s.file.filename, "foo-1.0-py3-none-any.whl");
        let s = select_wheel(&[y], "foo", "1.0", cp311, &py("3.11")).unwrap();
        assert!(s.yanked);
    }

    #[test]
    fn requires_python() {
        let mut new = file("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl");
        new.requires_python = Some(">=3.12".into());
        let mut old = file("foo-1.0-py3-none-any.whl");
        old.requires_python = Some(">=3.8, <4".into());
        let s = select_wheel(&[new.clone(), old], "foo", "1.0", cp311, &py("3.11.2")).unwrap();
        assert_eq!(s.file.filename, "foo-1.0-py3-none-any.whl");
        assert_eq!(
            select_wheel(&[new.clone()], "foo", "1.0", cp311, &py("3.11.2"))
                .unwrap_err()
                .to_string(),
            "Every compatible wheel of `foo==1.0` requires Python `>=3.12`, but the interpreter \
             is Python 3.11.2"
        );
        // A pre-release interpreter counts as its release.
        new.requires_python = Some(">=3.11".into());
        assert!(select_wheel(&[new.clone()], "foo", "1.0", cp311, &py("3.11.0rc1")).is_ok());
        // Unparseable specifiers are ignored.
        new.requires_python = Some("not a spec".into());
        assert!(select_wheel(&[new], "foo", "1.0", cp311, &py("3.11")).is_ok());
    }

    #[test]
    fn errors_say_what_exists() {
        let files = [
            file("foo-0.9-py3-none-any.whl"),
            file("foo-1.0.tar.gz"),
            file("foo-1.0.zip"),
            file("foo-2.0-cp39-cp39-win_amd64.whl"),
            file("foo-2.0-cp39-cp39-macosx_11_0_arm64.whl"),
            file("foo-0.10.tar.gz"),
        ];
        assert_eq!(
            select_wheel(&files, "foo", "3.0", cp311, &py("3.11"))
                .unwrap_err()
                .to_string(),
            "Version `3.0` of `foo` was not found; available versions (newest first): 2.0, 1.0, \
             0.10, 0.9"
        );
        assert_eq!(
            select_wheel(&files, "foo", "1.0", cp311, &py("3.11"))
                .unwrap_err()
                .to_string(),
            "Only a source distribution is available for `foo==1.0` (foo-1.0.tar.gz, foo-1.0.zip) \
             and building from source is turned off (`--no-build`): pin a version that has \
             wheels, provide a wheel with `--find-links`, or allow builds"
        );
        assert_eq!(
            select_wheel(&files, "foo", "2.0", cp311, &py("3.11"))
                .unwrap_err()
                .to_string(),
            "No wheel of `foo==2.0` is compatible with this interpreter; the wheels have tags: \
             cp39-cp39-macosx_11_0_arm64, cp39-cp39-win_amd64"
        );
        assert_eq!(
            select_wheel(&[], "foo", "1.0", cp311, &py("3.11"))
                .unwrap_err()
                .to_string(),
            "Version `1.0` of `foo` was not found; no versions are available"
        );
        assert!(matches!(
            select_wheel(&[], "foo", "1..0", cp311, &py("3.11")),
            Err(SelectError::InvalidVersion { .. })
        ));
    }

    proptest! {
        /// Against a naive oracle: the chosen wheel is compatible, of the right version, and no
        /// other candidate is strictly better.
        #[test]
        fn choice_is_optimal(
            picks in prop::collection::vec((0usize..3, 0usize..6, any::<bool>()), 0..12),
        ) {
            let versions = ["1.0", "1.0.0", "2.0"];
            let tags = [
                "cp311-cp311-manylinux_2_17_x86_64",
                "cp311-abi3-manylinux_2_17_x86_64",
                "py3-none-any",
                "cp39-cp39-win_amd64",
                "py2-none-any",
                "cp311-none-any",
            ];
            let files: Vec<IndexFile> = picks
                .iter()
                .enumerate()
                .map(|(i, &(v, t, yanked))| {
                    let mut f = file(&format!("foo-{}-{}.whl", versions[v], tags[t]));
                    f.url = format!("https://h.invalid/{i}");
                    f.yanked = yanked;
                    f
                })
                .collect();
            let result = select_wheel(&files, "foo", "1", cp311, &py("3.11"));
            let eligible: Vec<(usize, (bool, usize))> = files
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.filename.starts_with("foo-2.0"))
                .filter_map(|(i, f)| {
                    let w = WheelFilename::parse(&f.filename).unwrap();
                    cp311(&w.tags).map(|p| (i, (f.yanked, p)))
                })
                .collect();
            match eligible.iter().min_by_key(|(i, k)| (*k, *i)) {
                None => prop_assert!(result.is_err()),
                Some((i, _)) => {
                    let s = result.unwrap();
                    prop_assert_eq!(&s.file.url, &format!("https://h.invalid/{i}"));
                }
            }
        }
    }
}
