//! Turning a request (`3.12`, `python3`, a path, a venv) into the path of an interpreter,
//! without running anything: `PATH` through the `which` crate, then pyenv's versions.
use std::path::{Path, PathBuf};

use super::interpreter::InterpreterError;
use super::pyenv::{pyenv_root, pyenv_shim, pyenv_version_binary};

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// A file (or a venv / installation directory).
    Path(PathBuf),
    /// `3.X` or `python3.X`.
    Minor(u32),
    /// A program name looked up on `PATH` (`python3` when nothing was asked).
    Name(String),
}

impl Request {
    fn parse(request: Option<&str>) -> Self {
        let Some(s) = request else {
            return Self::Name("python3".to_string());
        };
        let version = s.strip_prefix("python").unwrap_or(s);
        if version == "3" {
            return Self::Name("python3".to_string());
        }
        if let Some(minor) = version.strip_prefix("3.")
            && !minor.is_empty()
            && minor.len() < 4
            && minor.bytes().all(|b| b.is_ascii_digit())
            && let Ok(minor) = minor.parse()
        {
            return Self::Minor(minor);
        }
        if s.contains('/') || s.contains(std::path::MAIN_SEPARATOR) || s.starts_with('.') {
            return Self::Path(PathBuf::from(s));
        }
        if let Some(rest) = s.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return Self::Path(PathBuf::from(home).join(rest));
        }
        Self::Name(s.to_string())
    }
}

/// Turns a request into the path of an interpreter, without running anything.
pub(super) fn locate(request: Option<&str>) -> Result<PathBuf, InterpreterError> {
    let shown = request.unwrap_or("python3").to_string();
    let mut tried = Vec::new();
    let found = match Request::parse(request) {
        Request::Path(path) => {
            let found = from_directory_or_file(&path);
            match found
                .as_deref()
                .and_then(|p| Some((pyenv_shim(p)?, p.file_name()?)))
            {
                // A shim given by path: its own mtime says nothing about the version it runs.
                Some((shim, name)) => {
                    let name = name.to_string_lossy();
                    let real = shim.resolve(&name);
                    if real.is_none() {
                        tried.push(format!(
                            "pyenv shim `{}` (no active pyenv version provides `{name}`)",
                            path.display()
                        ));
                    }
                    real
                }
                None => {
                    if found.is_none() {
                        tried.push(format!("`{}`", path.display()));
                    }
                    found
                }
            }
        }
        Request::Name(name) => search_path(&name, &mut tried),
        Request::Minor(minor) => {
            let name = format!("python3.{minor}");
            search_path(&name, &mut tried).or_else(|| {
                let root = pyenv_root();
                tried.push(format!(
                    "`{}`",
                    root.join("versions")
                        .join(format!("3.{minor}*"))
                        .join("bin")
                        .join(&name)
                        .display()
                ));
                pyenv_version_binary(&root, minor, &name)
            })
        }
    };
    found.ok_or(InterpreterError::NotFound {
        request: shown,
        tried,
    })
}

/// A file as is; a directory by its `bin/python3` or `bin/python` (a venv or an installation).
fn from_directory_or_file(path: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some(path.to_path_buf());
    }
    ["bin/python3", "bin/python"]
        .iter()
        .map(|name| path.join(name))
        .find(|p| is_executable(p))
}

pub(super) fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The first `name` on `PATH`; pyenv shims are resolved, and skipped when no active pyenv
/// version provides `name` (the shim would fail).
fn search_path(name: &str, tried: &mut Vec<String>) -> Option<PathBuf> {
    tried.push(format!("`{name}` in PATH"));
    for candidate in which::which_all(name).into_iter().flatten() {
        match pyenv_shim(&candidate) {
            None => return Some(candidate),
            Some(shim) => match shim.resolve(name) {
                Some(real) => return Some(real),
                None => tried.push(format!(
                    "pyenv shim `{}` (no active pyenv version provides `{name}`)",
                    candidate.display()
                )),
            },
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(Request::parse(None), Request::Name("python3".into()));
        assert_eq!(Request::parse(Some("3")), Request::Name("python3".into()));
        assert_eq!(Request::parse(Some("3.12")), Request::Minor(12));
        assert_eq!(Request::parse(Some("python3.8")), Request::Minor(8));
        assert_eq!(Request::parse(Some("pypy3")), Request::Name("pypy3".into()));
        assert_eq!(
            Request::parse(Some("./venv/bin/python")),
            Request::Path("./venv/bin/python".into())
        );
        assert_eq!(
            Request::parse(Some("/usr/bin/python3")),
            Request::Path("/usr/bin/python3".into())
        );
        assert_eq!(Request::parse(Some("3.x")), Request::Name("3.x".into()));
    }

    #[test]
    fn missing_interpreter_says_what_was_tried() {
        let err = locate(Some("3.99")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`python3.99` in PATH"), "{msg}");
        assert!(msg.contains("3.99*"), "{msg}");
        assert!(
            msg.starts_with("No Python interpreter found for `3.99`"),
            "{msg}"
        );
        let err = locate(Some("/nonexistent/python")).unwrap_err();
        assert!(err.to_string().contains("`/nonexistent/python`"), "{err}");
    }
}
