//! pyenv without running pyenv: its versions directory and its shims, resolved to the binary a
//! shim would run (`PYENV_VERSION`, `.python-version` files, the global `version` file).
use std::path::{Path, PathBuf};

use super::discovery::is_executable;

/// `$PYENV_ROOT`, else `~/.pyenv`.
pub(super) fn pyenv_root() -> PathBuf {
    if let Some(root) = std::env::var_os("PYENV_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(root);
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".pyenv"),
        |h| PathBuf::from(h).join(".pyenv"),
    )
}

/// Orders pyenv version directory names: plain releases (`3.12.1` -> (true, [3, 12, 1])) above
/// any suffixed build (`3.13.0t`, `3.13.0rc1`: free-threaded or pre-release), then by number.
fn version_key(name: &str) -> (bool, Vec<u32>) {
    let mut parts = Vec::new();
    let mut plain = true;
    for part in name.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.len() != part.len() {
            plain = false;
        }
        parts.push(digits.parse().unwrap_or(0));
        if !plain {
            break;
        }
    }
    (plain, parts)
}

/// The newest `{root}/versions/3.X[.*]/bin/{name}`.
pub(super) fn pyenv_version_binary(root: &Path, minor: u32, name: &str) -> Option<PathBuf> {
    let prefix = format!("3.{minor}");
    let entries = std::fs::read_dir(root.join("versions")).ok()?;
    let mut best: Option<((bool, Vec<u32>), PathBuf)> = None;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(dir_name) = file_name.to_str() else {
            continue;
        };
        let matches = dir_name == prefix
            || dir_name
                .strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with('.') || rest == "t");
        let binary = entry.path().join("bin").join(name);
        if !matches || !is_executable(&binary) {
            continue;
        }
        let key = version_key(dir_name);
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, binary));
        }
    }
    best.map(|(_, path)| path)
}

/// A pyenv shim script and the pyenv root it belongs to.
pub(super) struct PyenvShim {
    root: PathBuf,
    shim_dir: PathBuf,
}

/// Recognizes a pyenv shim (a small shell script that `exec`s `pyenv exec`).
pub(super) fn pyenv_shim(path: &Path) -> Option<PyenvShim> {
    use std::io::Read;
    let mut head = [0u8; 1024];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let text = std::str::from_utf8(head.get(..n)?).ok()?;
    if !text.starts_with("#!") || !text.contains("pyenv\" exec") {
        return None;
    }
    let root = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export PYENV_ROOT="))
        .map(|r| PathBuf::from(r.trim_matches('"')))
        .unwrap_or_else(pyenv_root);
    Some(PyenvShim {
        root,
        shim_dir: path.parent()?.to_path_buf(),
    })
}

impl PyenvShim {
    /// What `pyenv which {name}` would answer: the first active version that has `name`, then
    /// the system one (`PATH` without the shims).
    pub(super) fn resolve(&self, name: &str) -> Option<PathBuf> {
        for version in self.active_versions() {
            if version == "system" {
                continue;
            }
            if let Some(dir) = self.version_dir(&version) {
                let binary = dir.join("bin").join(name);
                if is_executable(&binary) {
                    return Some(binary);
                }
            }
        }
        let shims = [self.shim_dir.clone(), self.root.join("shims")];
        which::which_all(name)
            .into_iter()
            .flatten()
            .filter(|p| !p.parent().is_some_and(|d| shims.iter().any(|s| s == d)))
            .find(|p| pyenv_shim(p).is_none())
    }

    /// `PYENV_VERSION`, else the nearest `.python-version`, else `{root}/version`.
    fn active_versions(&self) -> Vec<String> {
        if let Some(v) = std::env::var("PYENV_VERSION")
            .ok()
            .filter(|v| !v.is_empty())
        {
            return v.split(':').map(str::to_string).collect();
        }
        let mut starts = Vec::new();
        if let Some(dir) = std::env::var_os("PYENV_DIR") {
            starts.push(PathBuf::from(dir));
        }
        if let Ok(cwd) = std::env::current_dir() {
            starts.push(cwd);
        }
        for start in starts {
            for dir in start.ancestors() {
                if let Some(versions) = read_version_file(&dir.join(".python-version")) {
                    return versions;
                }
            }
        }
        read_version_file(&self.root.join("version")).unwrap_or_else(|| vec!["system".into()])
    }

    /// `{root}/versions/{version}`, with `python-` stripped or as the newest `{version}.*`.
    fn version_dir(&self, version: &str) -> Option<PathBuf> {
        if version.contains('/') || version == ".." {
            return None;
        }
        let versions = self.root.join("versions");
        let version = if versions.join(version).is_dir() {
            version
        } else {
            version.strip_prefix("python-").unwrap_or(version)
        };
        if versions.join(version).is_dir() {
            return Some(versions.join(version));
        }
        let mut best: Option<((bool, Vec<u32>), PathBuf)> = None;
        for entry in std::fs::read_dir(&versions).ok()?.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name
                .strip_prefix(version)
                .is_some_and(|r| r.starts_with('.'))
            {
                continue;
            }
            let key = version_key(name);
            if key.0 && best.as_ref().is_none_or(|(k, _)| key > *k) {
                best = Some((key, entry.path()));
            }
        }
        best.map(|(_, p)| p)
    }
}

/// The words of a pyenv version file: the first word of each line, comments skipped.
fn read_version_file(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let versions: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| !w.starts_with('#'))
        .map(str::to_string)
        .collect();
    (!versions.is_empty()).then_some(versions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::discovery::locate;

    #[test]
    fn version_keys_order_pyenv_directories() {
        let mut names = vec![
            "3.14.0t",
            "3.9.18",
            "3.13.0",
            "3.10.13",
            "3.14.0rc1",
            "3.13.1",
        ];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(
            names,
            [
                "3.14.0t",
                "3.14.0rc1",
                "3.9.18",
                "3.10.13",
                "3.13.0",
                "3.13.1"
            ]
        );
    }

    #[test]
    fn pyenv_lookup_picks_newest_matching_minor() {
        let root = tempfile::tempdir().unwrap();
        for v in [
            "3.1.5", "3.12.0", "3.12.10", "3.12.9", "3.12.11t", "3.120.1",
        ] {
            let bin = root.path().join("versions").join(v).join("bin");
            fs_err::create_dir_all(&bin).unwrap();
            let exe = bin.join(if v == "3.1.5" {
                "python3.1"
            } else {
                "python3.12"
            });
            fs_err::write(&exe, "").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs_err::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let found = pyenv_version_binary(root.path(), 12, "python3.12").unwrap();
        assert!(
            found.ends_with("3.12.10/bin/python3.12"),
            "{}",
            found.display()
        );
        let found = pyenv_version_binary(root.path(), 1, "python3.1").unwrap();
        assert!(
            found.ends_with("3.1.5/bin/python3.1"),
            "{}",
            found.display()
        );
        assert!(pyenv_version_binary(root.path(), 11, "python3.11").is_none());
    }

    #[test]
    fn pyenv_shim_resolves_without_running_pyenv() {
        let root = tempfile::tempdir().unwrap();
        let shims = root.path().join("shims");
        let bin = root.path().join("versions/3.12.4/bin");
        fs_err::create_dir_all(&shims).unwrap();
        fs_err::create_dir_all(&bin).unwrap();
        let shim = shims.join("python3");
        fs_err::write(
            &shim,
            format!(
                "#!/usr/bin/env bash\nset -e\nexport PYENV_ROOT=\"{}\"\nexec \"{}/libexec/pyenv\" exec \"$program\" \"$@\"\n",
                root.path().display(),
                root.path().display()
            ),
        )
        .unwrap();
        fs_err::write(bin.join("python3"), "").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(bin.join("python3"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        fs_err::write(root.path().join("version"), "# comment\n3.12\n").unwrap();
        let parsed = pyenv_shim(&shim).unwrap();
        assert_eq!(parsed.root, root.path());
        // `3.12` is a prefix: resolved to the newest installed 3.12.x, as pyenv does. The test
        // process may have PYENV_VERSION or a `.python-version` above its directory, so only
        // check the version-file and directory logic directly.
        assert_eq!(
            read_version_file(&root.path().join("version")).unwrap(),
            ["3.12"]
        );
        assert_eq!(
            parsed.version_dir("3.12").unwrap(),
            root.path().join("versions/3.12.4")
        );
        assert_eq!(
            parsed.version_dir("python-3.12.4").unwrap(),
            root.path().join("versions/3.12.4")
        );
        assert!(parsed.version_dir("../etc").is_none());
        assert!(parsed.version_dir("3.13").is_none());

        // Given by path, the shim is resolved too, through `{root}/version` (unless this
        // process has a PYENV_VERSION or `.python-version` of its own, which would win).
        let local = std::env::current_dir()
            .unwrap()
            .ancestors()
            .any(|d| d.join(".python-version").is_file());
        if std::env::var_os("PYENV_VERSION").is_none() && !local {
            assert_eq!(locate(shim.to_str()).unwrap(), bin.join("python3"));
        }
    }
}
