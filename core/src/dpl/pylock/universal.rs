//! A universal lock as pylock.toml: packages that hold on some environments (`marker`), with
//! every wheel that may serve one of them and the sdist, as PEP 751 describes locks for many
//! environments. Installers choose the entries whose markers hold and the best wheel of each
//! (`install::read_pylock_for`, `dpl::export_for`).
use serde::Serialize;

use super::TOOL;
use super::ser::DirectoryOut;
use super::ser::{DependencyOut, PackageOut, PylockOut, Tool, WheelOut, to_text};
use crate::dpl::model::{LocalSource, LockedWheel};
use crate::hash::ContentHash;

/// A lock for every environment where its `requires-python` (and its environments) hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniversalLock {
    /// The project's `requires-python`.
    pub requires_python: Option<String>,
    /// The environments it is limited to (markers), empty for all.
    pub environments: Vec<String>,
    /// A hash of the inputs it was resolved from.
    pub inputs_hash: ContentHash,
    /// The packages, sorted by name then version.
    pub packages: Vec<UniversalLockedPackage>,
}

/// One package version of a universal lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniversalLockedPackage {
    /// The name as the index spells it.
    pub name: String,
    /// The version.
    pub version: String,
    /// Where it is installed; `None` everywhere the lock is.
    pub marker: Option<String>,
    /// Its own `Requires-Python`.
    pub requires_python: Option<String>,
    /// The index it came from.
    pub index_url: Option<String>,
    /// The packages it depends on that have one entry in the lock.
    pub dependencies: Vec<String>,
    /// Every wheel that may serve some environment of `marker`.
    pub wheels: Vec<LockedWheel>,
    /// The source distribution, when the index has one; for a local archive
    /// ([`LocalSource::Archive`]), that archive (path relative to the lock's directory).
    pub sdist: Option<LockedWheel>,
    /// Local source the entry is locked as (PEP 751 `directory` or `archive`): a directory
    /// entry has no wheels and no sdist; an install builds it.
    pub local: Option<LocalSource>,
}

/// `[tool.dx-py]` of a universal lock.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct LockToolOut {
    environment: &'static str,
    inputs_hash: String,
}

impl UniversalLock {
    /// The `[tool.dx-py] environment` of a universal lock.
    pub const ENVIRONMENT: &'static str = "universal";

    /// The inputs hash a pylock.toml records when it is a universal lock dx-py wrote (so that
    /// an unchanged input is not resolved again); `None` for any other file.
    pub fn recorded_inputs_hash(text: &str) -> Option<ContentHash> {
        let doc: toml_edit::DocumentMut = text.parse().ok()?;
        let ours = doc.get("tool")?.get(TOOL)?;
        if ours.get("environment")?.as_str()? != Self::ENVIRONMENT {
            return None;
        }
        ours.get("inputs-hash")?.as_str()?.parse().ok()
    }

    /// This lock as pylock.toml text.
    pub fn to_pylock_string(&self) -> String {
        to_text(&PylockOut {
            lock_version: "1.0",
            requires_python: self.requires_python.as_deref(),
            environments: self.environments.iter().map(String::as_str).collect(),
            created_by: TOOL,
            packages: self
                .packages
                .iter()
                .map(|p| PackageOut {
                    name: &p.name,
                    version: &p.version,
                    marker: p.marker.as_deref(),
                    requires_python: p.requires_python.as_deref(),
                    index: p.index_url.as_deref(),
                    dependencies: (p.dependencies.iter())
                        .map(|name| DependencyOut { name })
                        .collect(),
                    sdist: (p.sdist.as_ref())
                        .filter(|_| p.local.is_none())
                        .map(WheelOut::of),
                    wheels: p.wheels.iter().map(WheelOut::of).collect(),
                    directory: match &p.local {
                        Some(LocalSource::Directory { path, editable }) => Some(DirectoryOut {
                            path,
                            editable: *editable,
                        }),
                        _ => None,
                    },
                    archive: (p.sdist.as_ref())
                        .filter(|_| p.local == Some(LocalSource::Archive))
                        .map(WheelOut::of),
                    tool: None,
                })
                .collect(),
            tool: Tool {
                dx_py: LockToolOut {
                    environment: Self::ENVIRONMENT,
                    inputs_hash: self.inputs_hash.to_hex(),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::dpl::export_for;
    use crate::python::Platform;

    fn file(name: &str, byte: u8) -> LockedWheel {
        LockedWheel {
            filename: name.to_owned(),
            url: Some(format!("https://files.example/{name}")),
            path: None,
            sha256: [byte; 32],
            size: Some(100),
        }
    }

    fn package(
        name: &str,
        version: &str,
        marker: Option<&str>,
        wheels: &[&str],
    ) -> UniversalLockedPackage {
        UniversalLockedPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            marker: marker.map(str::to_owned),
            requires_python: None,
            index_url: None,
            dependencies: Vec::new(),
            wheels: (wheels.iter().zip(10u8..))
                .map(|(w, byte)| file(w, byte))
                .collect(),
            sdist: None,
            local: None,
        }
    }

    fn lock() -> UniversalLock {
        let mut numpy = package(
            "numpy",
            "1.26.4",
            Some("python_full_version < '3.10'"),
            &[
                "numpy-1.26.4-cp39-cp39-win_amd64.whl",
                "numpy-1.26.4-cp39-cp39-manylinux_2_17_x86_64.whl",
            ],
        );
        numpy.sdist = Some(file("numpy-1.26.4.tar.gz", 2));
        UniversalLock {
            requires_python: Some(">=3.9".into()),
            environments: Vec::new(),
            inputs_hash: ContentHash::from_bytes([7; 32]),
            packages: vec![
                package("app", "1.0", None, &["app-1.0-py3-none-any.whl"]),
                numpy,
                package(
                    "numpy",
                    "2.1.0",
                    Some("python_full_version >= '3.10'"),
                    &["numpy-2.1.0-cp312-cp312-win_amd64.whl"],
                ),
                package(
                    "pywin32",
                    "306",
                    Some("sys_platform == 'win32'"),
                    &["pywin32-306-cp39-cp39-win_amd64.whl"],
                ),
            ],
        }
    }

    fn installs(text: &str, platform: &str, python: &str) -> Vec<String> {
        let env = Platform::from_str(platform)
            .unwrap()
            .markers(python.parse().unwrap())
            .unwrap();
        export_for(text, &env)
            .unwrap()
            .into_iter()
            .map(|p| format!("{}=={} {}", p.name, p.version, p.hashes.len()))
            .collect()
    }

    #[test]
    fn written_with_markers_wheels_and_sdist() {
        let text = lock().to_pylock_string();
        assert!(
            text.contains("marker = \"sys_platform == 'win32'\""),
            "{text}"
        );
        assert!(text.contains("sdist = {"), "{text}");
        assert!(text.contains("[[packages.wheels]]"), "{text}");
        assert!(text.contains("environment = \"universal\""), "{text}");
        assert!(text.contains("requires-python = \">=3.9\""), "{text}");
    }

    #[test]
    fn the_inputs_hash_is_read_back_from_universal_locks_only() {
        let lock = lock();
        let text = lock.to_pylock_string();
        assert_eq!(
            UniversalLock::recorded_inputs_hash(&text),
            Some(lock.inputs_hash)
        );
        let one = text.replace(
            "environment = \"universal\"",
            "environment = \"cp312-linux_x86_64\"",
        );
        assert_eq!(UniversalLock::recorded_inputs_hash(&one), None);
        assert_eq!(UniversalLock::recorded_inputs_hash("not toml ["), None);
    }

    #[test]
    fn read_back_for_each_environment() {
        let text = lock().to_pylock_string();
        assert_eq!(
            installs(&text, "win32", "3.9"),
            ["app==1.0 1", "numpy==1.26.4 2", "pywin32==306 1"]
        );
        assert_eq!(
            installs(&text, "linux", "3.12"),
            ["app==1.0 1", "numpy==2.1.0 1"]
        );
    }
}
