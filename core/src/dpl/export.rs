//! A `pylock.toml` read for another environment (`dx-py export`): the packages whose markers
//! hold there, as a requirements file with every wheel hash the lock lists for each, so that a
//! Linux developer can see, and pip on Windows can install, what a Windows machine gets.
use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{MarkerEnvironment, MarkerTree};

use super::{LocalSource, LockedWheel, PylockDocument, PylockError, PylockSelector};

/// One package the lock gives the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedPackage {
    /// The name as the lock spells it.
    pub name: String,
    /// The version.
    pub version: String,
    /// The sha256 of each wheel the lock lists for it, sorted (of a local archive, the
    /// archive's; none for a directory).
    pub hashes: Vec<String>,
    /// Local source it is locked as: the directory's or archive's path, relative to the lock's
    /// directory as the lock writes it.
    pub path: Option<String>,
    /// A directory installed editable.
    pub editable: bool,
}

/// Why a lock cannot be read for the environment.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Not a valid pylock.toml.
    #[error(transparent)]
    Pylock(#[from] PylockError),
    /// A package's marker does not parse.
    #[error("Invalid marker `{marker}` of package `{package}`: {reason}")]
    Marker {
        /// The package.
        package: String,
        /// The marker as written.
        marker: String,
        /// The parser's message.
        reason: String,
    },
    /// The lock's `requires-python` excludes the environment's Python.
    #[error("The lock requires Python {requires}, which excludes Python {python}")]
    RequiresPython {
        /// The lock's `requires-python`.
        requires: String,
        /// The environment's Python.
        python: String,
    },
}

/// Keeps the entries whose marker holds in `env`, recording every wheel hash of each.
struct ForEnvironment<'a> {
    env: &'a MarkerEnvironment,
    hashes: BTreeMap<String, Vec<String>>,
    bad_marker: Option<(String, String, String)>,
}

impl PylockSelector for ForEnvironment<'_> {
    fn applies(&mut self, name: &str, _version: &str, marker: Option<&str>) -> bool {
        let Some(text) = marker else {
            return true;
        };
        match MarkerTree::from_str(text) {
            Ok(tree) => tree.evaluate(self.env, &[]),
            Err(e) => {
                self.bad_marker
                    .get_or_insert_with(|| (name.to_owned(), text.to_owned(), e.to_string()));
                false
            }
        }
    }

    fn choose_wheel(&mut self, name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        self.hashes.insert(
            name.to_owned(),
            wheels
                .iter()
                .map(|w| data_encoding::HEXLOWER.encode(&w.sha256))
                .collect(),
        );
        Some(0)
    }
}

/// The packages the pylock.toml `text` gives `env`, sorted by name.
pub fn export_for(
    text: &str,
    env: &MarkerEnvironment,
) -> Result<Vec<ExportedPackage>, ExportError> {
    let document = PylockDocument::parse(text)?;
    if let Some(requires) = document.requires_python() {
        let python = &env.python_full_version().version;
        if let Ok(spec) = VersionSpecifiers::from_str(requires)
            && !spec.contains(python)
        {
            return Err(ExportError::RequiresPython {
                requires: requires.to_owned(),
                python: python.to_string(),
            });
        }
    }
    let mut selector = ForEnvironment {
        env,
        hashes: BTreeMap::new(),
        bad_marker: None,
    };
    let read = document.to_lock(&mut selector);
    if let Some((package, marker, reason)) = selector.bad_marker {
        return Err(ExportError::Marker {
            package,
            marker,
            reason,
        });
    }
    let lock = read?;
    let mut packages: Vec<ExportedPackage> = lock
        .packages
        .into_iter()
        .map(|p| {
            let directory = p
                .directory()
                .map(|(path, editable)| (path.to_owned(), editable));
            let archive = (p.local == Some(LocalSource::Archive))
                .then(|| p.sdist.as_ref().and_then(|s| s.path.clone()))
                .flatten();
            let mut hashes = match &directory {
                Some(_) => Vec::new(),
                None => selector
                    .hashes
                    .remove(&p.name)
                    .unwrap_or_else(|| vec![data_encoding::HEXLOWER.encode(&p.wheel.sha256)]),
            };
            hashes.sort();
            hashes.dedup();
            ExportedPackage {
                name: p.name,
                version: p.version,
                hashes,
                editable: directory.as_ref().is_some_and(|(_, e)| *e),
                path: directory.map(|(path, _)| path).or(archive),
            }
        })
        .collect();
    packages.sort_by(|a, b| {
        crate::names::normalize_name(&a.name)
            .cmp(&crate::names::normalize_name(&b.name))
            .then_with(|| {
                Version::from_str(&a.version)
                    .ok()
                    .cmp(&Version::from_str(&b.version).ok())
            })
    });
    Ok(packages)
}

/// `packages` as a requirements file pip can install with `--require-hashes`, after the
/// `header` comment lines.
pub fn render_requirements(header: &[String], packages: &[ExportedPackage]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for p in packages {
        match &p.path {
            // pip takes a path for what contains a separator or starts with a dot.
            Some(path) => {
                let path = if path.starts_with('.') || path.starts_with('/') {
                    path.clone()
                } else {
                    format!("./{path}")
                };
                out.push_str(&format!("{}{path}", if p.editable { "-e " } else { "" }));
            }
            None => out.push_str(&format!("{}=={}", p.name, p.version)),
        }
        for h in &p.hashes {
            out.push_str(&format!(" \\\n    --hash=sha256:{h}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::Platform;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    /// A universal lock as uv writes one: markers, several wheels, an sdist.
    fn lock() -> String {
        format!(
            r#"lock-version = "1.0"
requires-python = ">=3.9"
created-by = "uv"

[[packages]]
name = "numpy"
version = "1.26.4"
marker = "python_full_version < '3.10'"
sdist = {{ url = "https://files.example/numpy-1.26.4.tar.gz", hashes = {{ sha256 = "{C}" }} }}
wheels = [
    {{ url = "https://files.example/numpy-1.26.4-cp39-cp39-win_amd64.whl", hashes = {{ sha256 = "{A}" }} }},
    {{ url = "https://files.example/numpy-1.26.4-cp39-cp39-manylinux_2_17_x86_64.whl", hashes = {{ sha256 = "{B}" }} }},
]

[[packages]]
name = "numpy"
version = "2.1.0"
marker = "python_full_version >= '3.10'"
wheels = [{{ url = "https://files.example/numpy-2.1.0-cp312-cp312-win_amd64.whl", hashes = {{ sha256 = "{B}" }} }}]

[[packages]]
name = "pywin32"
version = "306"
marker = "sys_platform == 'win32'"
wheels = [{{ url = "https://files.example/pywin32-306-cp39-cp39-win_amd64.whl", hashes = {{ sha256 = "{C}" }} }}]

[[packages]]
name = "idna"
version = "3.7"
wheels = [{{ url = "https://files.example/idna-3.7-py3-none-any.whl", hashes = {{ sha256 = "{A}" }} }}]
"#
        )
    }

    fn export(platform: &str, python: &str) -> Result<String, ExportError> {
        let env = Platform::from_str(platform)
            .unwrap()
            .markers(python.parse().unwrap())
            .unwrap();
        Ok(export_for(&lock(), &env)?
            .iter()
            .map(|p| format!("{}=={} {}", p.name, p.version, p.hashes.len()))
            .collect::<Vec<_>>()
            .join(", "))
    }

    #[test]
    fn entries_by_platform_and_python() {
        assert_eq!(
            export("win32", "3.9").unwrap(),
            "idna==3.7 1, numpy==1.26.4 2, pywin32==306 1"
        );
        assert_eq!(
            export("linux", "3.12").unwrap(),
            "idna==3.7 1, numpy==2.1.0 1"
        );
        assert_eq!(
            export("darwin", "3.10").unwrap(),
            "idna==3.7 1, numpy==2.1.0 1"
        );
    }

    #[test]
    fn a_python_outside_the_lock_is_refused() {
        let err = export("linux", "3.8").unwrap_err();
        assert!(matches!(err, ExportError::RequiresPython { .. }), "{err}");
    }

    #[test]
    fn a_bad_marker_is_named() {
        let text = lock().replace("sys_platform == 'win32'", "sys_platform === ");
        let env = Platform::from_str("linux")
            .unwrap()
            .markers("3.12".parse().unwrap())
            .unwrap();
        let err = export_for(&text, &env).unwrap_err();
        assert!(err.to_string().contains("pywin32"), "{err}");
    }

    #[test]
    fn rendered_with_hashes() {
        let packages = [ExportedPackage {
            name: "idna".into(),
            version: "3.7".into(),
            hashes: vec![A.into(), B.into()],
            path: None,
            editable: false,
        }];
        assert_eq!(
            render_requirements(&["from pylock.toml".into()], &packages),
            format!(
                "# from pylock.toml\nidna==3.7 \\\n    --hash=sha256:{A} \\\n    --hash=sha256:{B}\n"
            )
        );
    }

    #[test]
    fn local_source_is_exported_as_paths_relative_to_the_lock() {
        let text = format!(
            r#"lock-version = "1.0"
created-by = "dx-py"

[[packages]]
name = "lib"
version = "0.1"
directory = {{ path = "../lib", editable = true }}

[[packages]]
name = "tool"
version = "0.2"
marker = "sys_platform == 'win32'"
directory = {{ path = "tools/tool", editable = false }}

[[packages]]
name = "vendored"
version = "1.0"
archive = {{ name = "vendored-1.0.tar.gz", path = "dist/vendored-1.0.tar.gz", hashes = {{ sha256 = "{A}" }} }}
"#
        );
        let for_platform = |platform: &str| {
            let env = Platform::from_str(platform)
                .unwrap()
                .markers("3.12".parse().unwrap())
                .unwrap();
            render_requirements(&[], &export_for(&text, &env).unwrap())
        };
        assert_eq!(
            for_platform("win32"),
            format!(
                "-e ../lib\n./tools/tool\n./dist/vendored-1.0.tar.gz \\\n    --hash=sha256:{A}\n"
            )
        );
        assert_eq!(
            for_platform("linux"),
            format!("-e ../lib\n./dist/vendored-1.0.tar.gz \\\n    --hash=sha256:{A}\n")
        );
    }
}
