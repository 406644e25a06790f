//! A Python interpreter and what it says about itself: [`Interpreter::find`] locates one
//! (`discovery`, `pyenv`), asks it once with a small script and keeps the answer
//! (`query_cache`).
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::discovery::locate;
use super::query_cache::{cache_file, cache_key, read_cache, write_cache};
use super::tags::TagPriorities;
use crate::index::PipDefaultIndex;

/// The Python program run (with `-I -c`) to learn what an interpreter is; prints one JSON line.
const QUERY_SCRIPT: &str = include_str!("query_interpreter.py");

/// A Python version, `major.minor.patch` (pre-release parts are kept in the marker values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PythonVersion {
    /// `3` for Python 3.
    pub major: u32,
    /// `11` for Python 3.11.
    pub minor: u32,
    /// `7` for Python 3.11.7.
    pub patch: u32,
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Where a venv of this interpreter keeps things, relative to the venv root (`sysconfig`'s
/// `venv` scheme, or `posix_prefix` before Python 3.11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemePaths {
    /// Pure-Python packages, e.g. `lib/python3.11/site-packages`.
    pub purelib: PathBuf,
    /// Platform-specific packages (the same directory on most systems).
    pub platlib: PathBuf,
    /// Console scripts, `bin`.
    pub scripts: PathBuf,
    /// C headers, e.g. `include/python3.11`.
    pub include: PathBuf,
    /// Wheel `.data/data` files, `.`.
    pub data: PathBuf,
}

/// The C library the interpreter is linked against (Linux only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Libc {
    /// GNU libc, e.g. 2.36: `manylinux` wheels up to `manylinux_2_36` run.
    Glibc {
        /// Major version (2).
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// musl libc, e.g. 1.2: `musllinux_1_0` to `musllinux_1_2` wheels run.
    Musl {
        /// Major version (1).
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// Neither was detected (not Linux, or an unknown libc).
    None,
}

/// The PEP 508 marker environment values, as `packaging.markers.default_environment()` gives
/// them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // The field names are the PEP 508 marker names.
pub struct MarkerValues {
    pub implementation_name: String,
    pub implementation_version: String,
    pub os_name: String,
    pub platform_machine: String,
    pub platform_python_implementation: String,
    pub platform_release: String,
    pub platform_system: String,
    pub platform_version: String,
    pub python_full_version: String,
    pub python_version: String,
    pub sys_platform: String,
}

/// What an interpreter said about itself: the raw answer of the query script, as cached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterpreterInfo {
    /// `sys.version_info[:3]`.
    pub version: PythonVersion,
    /// `sys.implementation.name`, e.g. `cpython`.
    pub implementation: String,
    /// `sys.executable`.
    pub executable: PathBuf,
    /// The interpreter binary outside of any venv (`sys._base_executable`, or the binary under
    /// `base_prefix` for venvs of Pythons before 3.11).
    pub base_executable: PathBuf,
    /// `sys.prefix` (the venv root when the interpreter is a venv's).
    pub prefix: PathBuf,
    /// `sys.base_prefix`, the installation the interpreter belongs to.
    pub base_prefix: PathBuf,
    /// `sysconfig.get_platform()`, e.g. `linux-x86_64`.
    pub sysconfig_platform: String,
    /// Install paths of a venv, relative to its root.
    pub scheme: SchemePaths,
    /// `sys.implementation.cache_tag`, e.g. `cpython-311`; `None` means no bytecode caching.
    pub cache_tag: Option<String>,
    /// The C library.
    pub libc: Libc,
    /// PEP 508 marker values.
    pub markers: MarkerValues,
    /// Pointer width in bits (32 or 64).
    pub pointer_bits: u32,
    /// `sys.abiflags`, e.g. `m` before 3.8, `t` for free-threaded builds.
    pub abiflags: String,
    /// `sysconfig.get_config_var('Py_GIL_DISABLED')`: a free-threaded build.
    pub gil_disabled: bool,
    /// A debug build (`Py_DEBUG`), whose CPython ABI tag ends in `d`.
    pub py_debug: bool,
    /// Built with pymalloc (`WITH_PYMALLOC`), which adds `m` to the ABI tag before 3.8.
    pub pymalloc: bool,
    /// `EXT_SUFFIX`, e.g. `.cpython-311-x86_64-linux-gnu.so`; gives the ABI tag of other
    /// implementations.
    pub ext_suffix: Option<String>,
    /// `py_version_nodot`, e.g. `311`.
    pub py_version_nodot: Option<String>,
    /// The index the interpreter's own pip uses when nothing is configured, as pip's model of
    /// its default index says (`None` when this interpreter cannot import pip).
    #[serde(default)]
    pub pip_index_url: Option<String>,
}

/// A Python interpreter: where it is, what it said about itself, and what follows from that
/// (marker environment, supported wheel tags).
#[derive(Clone, Debug)]
pub struct Interpreter {
    path: PathBuf,
    info: InterpreterInfo,
    markers: pep508_rs::MarkerEnvironment,
    pub(super) tags: OnceLock<TagPriorities>,
}

impl PartialEq for Interpreter {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.info == other.info
    }
}

impl Eq for Interpreter {}

/// An interpreter that could not be found or did not answer as expected.
#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    /// No candidate exists for the request.
    #[error(
        "No Python interpreter found for `{request}`: tried {}; install it (e.g. with `pyenv install`) or pass the path of an interpreter",
        tried.join(", ")
    )]
    NotFound {
        /// The request as given (`python3` when none was).
        request: String,
        /// Every name and path looked at, in order.
        tried: Vec<String>,
    },
    /// The interpreter could not be started.
    #[error("Failed to run the Python interpreter `{}`", path.display())]
    Spawn {
        /// The interpreter.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter ran but exited with an error.
    #[error("The Python interpreter `{}` failed to describe itself ({status}): {stderr}", path.display())]
    Failed {
        /// The interpreter.
        path: PathBuf,
        /// How it exited.
        status: std::process::ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// The interpreter's answer was not what the query script prints.
    #[error("The Python interpreter `{}` gave an unexpected answer ({reason}): `{output}`", path.display())]
    BadOutput {
        /// The interpreter.
        path: PathBuf,
        /// What is wrong with the answer.
        #[source]
        reason: QueryAnswerError,
        /// The start of the answer.
        output: String,
    },
    /// The interpreter's path could not be read.
    #[error("Failed to read the Python interpreter path `{}`", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
}
impl Interpreter {
    /// Finds the interpreter for `request` and describes it, from the cache under
    /// `{cache_dir}/interpreters/` when the interpreter file is unchanged.
    ///
    /// `request` is a path (to an interpreter, a venv or an installation directory), `3.X` or
    /// `python3.X` (`python3.X` on `PATH`, then the newest `~/.pyenv/versions/3.X*`), any other
    /// program name on `PATH`, or `None` for `python3` on `PATH`. pyenv shims are resolved to the
    /// interpreter they would run without starting pyenv.
    pub fn find(request: Option<&str>, cache_dir: &Path) -> Result<Self, InterpreterError> {
        let path = locate(request)?;
        Self::from_path_cached(&path, cache_dir)
    }

    /// Describes the interpreter at `path` (no `PATH` search), using the cache when valid.
    pub fn from_path_cached(path: &Path, cache_dir: &Path) -> Result<Self, InterpreterError> {
        Self::from_path_with_cache(path, cache_dir, true)
    }

    /// Asks the interpreter at `path` again and replaces its cached answer.
    fn refreshed(path: &Path, cache_dir: &Path) -> Result<Self, InterpreterError> {
        Self::from_path_with_cache(path, cache_dir, false)
    }

    fn from_path_with_cache(
        path: &Path,
        cache_dir: &Path,
        read: bool,
    ) -> Result<Self, InterpreterError> {
        let key = cache_key(path)?;
        let cache_file = cache_file(cache_dir, &key);
        if read && let Some(interp) = read_cache(&cache_file, &key) {
            tracing::debug!("Interpreter cache hit for `{}`", path.display());
            return Ok(interp);
        }
        let interp = Self::query(path)?;
        write_cache(&cache_file, key, &interp.info);
        Ok(interp)
    }

    /// The index this interpreter's own pip would use with nothing configured: pip's built-in
    /// default as the installed pip reports it, and which interpreter's pip that is. A venv
    /// without pip (what `dx-py venv` makes) defers to the pip of the interpreter it was made
    /// from. Cached answers are used first; only when none has a pip are the interpreters asked
    /// again, since pip may have been installed after they were cached (the interpreter file,
    /// the cache key, does not change when it is).
    pub fn pip_default_index(&self, cache_dir: &Path) -> Option<PipDefaultIndex> {
        let of = |interp: &Self| {
            interp
                .info
                .pip_index_url
                .clone()
                .map(|url| PipDefaultIndex {
                    url,
                    python: interp.path.clone(),
                })
        };
        let base = self.base_executable();
        let has_base = self.is_venv() && base != self.path;
        let ask = |path: &Path, again: bool| {
            let answer = if again {
                Self::refreshed(path, cache_dir)
            } else {
                Self::from_path_cached(path, cache_dir)
            };
            answer
                .inspect_err(|e| {
                    tracing::debug!("No answer about pip from `{}`: {e}", path.display())
                })
                .ok()
                .and_then(|i| of(&i))
        };
        of(self)
            .or_else(|| has_base.then(|| ask(base, false)).flatten())
            .or_else(|| ask(&self.path, true))
            .or_else(|| has_base.then(|| ask(base, true)).flatten())
    }

    /// Runs the interpreter at `path` once and builds the description from its answer, without
    /// the cache.
    pub fn query(path: &Path) -> Result<Self, InterpreterError> {
        let output = Command::new(path)
            .arg("-I")
            .arg("-c")
            .arg(QUERY_SCRIPT)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| InterpreterError::Spawn {
                path: path.to_path_buf(),
                source,
            })?;
        if !output.status.success() {
            return Err(InterpreterError::Failed {
                path: path.to_path_buf(),
                status: output.status,
                stderr: tail(&String::from_utf8_lossy(&output.stderr), 2000),
            });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let bad = |reason: QueryAnswerError| InterpreterError::BadOutput {
            path: path.to_path_buf(),
            reason,
            output: head(&stdout, 500),
        };
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| bad(QueryAnswerError::Empty))?;
        let info: InterpreterInfo =
            serde_json::from_str(line).map_err(|e| bad(QueryAnswerError::Json(e)))?;
        let markers = build_markers(&info.markers).map_err(bad)?;
        Ok(Self::with_markers(path.to_path_buf(), info, markers))
    }

    /// Builds an interpreter from a stored answer (`path` is where it runs from); fails when the
    /// marker versions do not parse.
    pub fn from_info(path: PathBuf, info: InterpreterInfo) -> Result<Self, InterpreterError> {
        let markers =
            build_markers(&info.markers).map_err(|reason| InterpreterError::BadOutput {
                path: path.clone(),
                reason,
                output: String::new(),
            })?;
        Ok(Self::with_markers(path, info, markers))
    }

    fn with_markers(
        path: PathBuf,
        info: InterpreterInfo,
        markers: pep508_rs::MarkerEnvironment,
    ) -> Self {
        Self {
            path,
            info,
            markers,
            tags: OnceLock::new(),
        }
    }

    /// The path the interpreter was found at (a pyenv shim is replaced by the binary it runs).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything the interpreter said about itself.
    pub fn info(&self) -> &InterpreterInfo {
        &self.info
    }

    /// `major.minor.patch`.
    pub fn version(&self) -> PythonVersion {
        self.info.version
    }

    /// The interpreter binary outside of any venv; what a new venv's `bin/python` links to.
    pub fn base_executable(&self) -> &Path {
        &self.info.base_executable
    }

    /// Whether the interpreter is a venv's (`sys.prefix != sys.base_prefix`).
    pub fn is_venv(&self) -> bool {
        self.info.prefix != self.info.base_prefix
    }

    /// The PEP 508 marker environment, for evaluating dependency markers.
    pub fn marker_env(&self) -> pep508_rs::MarkerEnvironment {
        self.markers.clone()
    }
}

/// What is wrong with an interpreter's answer to the query script.
#[derive(Debug, thiserror::Error)]
pub enum QueryAnswerError {
    /// It printed nothing.
    #[error("no output")]
    Empty,
    /// Its last line is not the JSON the script prints.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A marker version PEP 440 does not accept.
    #[error("invalid marker version: {0}")]
    MarkerVersion(#[source] pep440_rs::VersionParseError),
}

/// Parses the marker values into the `pep508_rs` environment, accepting `3.13.0+` dev builds.
pub(super) fn build_markers(
    m: &MarkerValues,
) -> Result<pep508_rs::MarkerEnvironment, QueryAnswerError> {
    let trim = |s: &str| s.trim_end_matches('+').to_string();
    let (full, short, implementation) = (
        trim(&m.python_full_version),
        trim(&m.python_version),
        trim(&m.implementation_version),
    );
    pep508_rs::MarkerEnvironment::try_from(pep508_rs::MarkerEnvironmentBuilder {
        implementation_name: &m.implementation_name,
        implementation_version: &implementation,
        os_name: &m.os_name,
        platform_machine: &m.platform_machine,
        platform_python_implementation: &m.platform_python_implementation,
        platform_release: &m.platform_release,
        platform_system: &m.platform_system,
        platform_version: &m.platform_version,
        python_full_version: &full,
        python_version: &short,
        sys_platform: &m.sys_platform,
    })
    .map_err(QueryAnswerError::MarkerVersion)
}

fn head(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The last `max` characters of `s` (trimmed), marked `…` when cut: the end of a child's
/// standard error, where the reason usually is.
pub(super) fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let start = s.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    format!("…{}", &s[start..])
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::python::pyenv::{pyenv_root, pyenv_shim, pyenv_version_binary};

    /// An interpreter from the machine's pyenv, `3.{minor}`, when installed.
    pub(crate) fn pyenv_python(minor: u32) -> Option<PathBuf> {
        pyenv_version_binary(&pyenv_root(), minor, &format!("python3.{minor}"))
    }

    #[test]
    fn finds_and_describes_python3() {
        let cache = tempfile::tempdir().unwrap();
        let Ok(interp) = Interpreter::find(None, cache.path()) else {
            eprintln!("no python3 on PATH, skipping");
            return;
        };
        let info = interp.info();
        assert_eq!(info.version.major, 3);
        assert_eq!(
            info.markers.python_version,
            format!("{}.{}", info.version.major, info.version.minor)
        );
        assert_eq!(
            info.cache_tag.as_deref(),
            Some(&*format!("cpython-3{}", info.version.minor))
        );
        assert!(info.base_executable.is_absolute());
        // The pyenv shim is resolved: the path is the real binary, not a shell script.
        assert!(pyenv_shim(interp.path()).is_none());
        let env = interp.marker_env();
        assert_eq!(env.sys_platform(), info.markers.sys_platform);
        assert_eq!(
            fs_err::read_dir(cache.path().join("interpreters"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn minor_requests_find_that_minor() {
        let cache = tempfile::tempdir().unwrap();
        for minor in [11, 12, 13] {
            if pyenv_python(minor).is_none() {
                continue;
            }
            for request in [format!("3.{minor}"), format!("python3.{minor}")] {
                let interp = Interpreter::find(Some(&request), cache.path()).unwrap();
                assert_eq!(interp.version().minor, minor, "{request}");
                assert!(pyenv_shim(interp.path()).is_none(), "{request}");
            }
        }
    }

    #[test]
    fn venv_interpreter_is_not_confused_with_its_base() {
        let Some(python) = pyenv_python(11) else {
            return;
        };
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("v");
        let status = Command::new(&python)
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(status.success());
        let base = Interpreter::find(Some(python.to_str().unwrap()), cache.path()).unwrap();
        let inner = Interpreter::find(Some(venv.to_str().unwrap()), cache.path()).unwrap();
        assert!(!base.is_venv());
        assert!(inner.is_venv());
        assert_eq!(inner.info().prefix, fs_err::canonicalize(&venv).unwrap());
        assert_eq!(
            fs_err::canonicalize(inner.base_executable()).unwrap(),
            fs_err::canonicalize(&python).unwrap()
        );
    }

    /// A shell script standing in for python that counts its runs, so the test can see whether a
    /// cache hit started a process.
    #[cfg(unix)]
    #[test]
    fn cache_hit_starts_no_process_and_change_invalidates() {
        use std::os::unix::fs::PermissionsExt;
        let Some(python) = pyenv_python(11) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let counter = dir.path().join("runs");
        let wrapper = dir.path().join("python-wrapper");
        let script = format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
            counter.display(),
            python.display()
        );
        fs_err::write(&wrapper, &script).unwrap();
        fs_err::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let runs = || fs_err::read_to_string(&counter).map_or(0, |s| s.lines().count());

        let first = Interpreter::find(Some(wrapper.to_str().unwrap()), &cache).unwrap();
        assert_eq!(runs(), 1);
        let second = Interpreter::find(Some(wrapper.to_str().unwrap()), &cache).unwrap();
        assert_eq!(runs(), 1, "a cache hit must not run python");
        assert_eq!(first, second);

        // A different size (and mtime) is a different interpreter.
        fs_err::write(&wrapper, format!("{script}# changed\n")).unwrap();
        Interpreter::find(Some(wrapper.to_str().unwrap()), &cache).unwrap();
        assert_eq!(runs(), 2);

        // A garbled cache entry is a miss, not an error.
        for entry in fs_err::read_dir(cache.join("interpreters")).unwrap() {
            fs_err::write(entry.unwrap().path(), b"{garbage").unwrap();
        }
        Interpreter::find(Some(wrapper.to_str().unwrap()), &cache).unwrap();
        assert_eq!(runs(), 3);
    }

    /// Fake interpreters (shell scripts printing a stored answer) with and without pip: the
    /// answer with pip gives its URL; a venv without pip defers to its base interpreter's; no
    /// pip anywhere is `None` (then discovery keeps its "No package index" error); and a cached
    /// "no pip" is asked again, since pip may have been installed since.
    #[cfg(unix)]
    #[test]
    fn pip_default_index_comes_from_the_answer_of_pip() {
        use std::os::unix::fs::PermissionsExt;
        let Some(python) = pyenv_python(11) else {
            return;
        };
        let real = Interpreter::query(&python).unwrap().info;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let runs = dir.path().join("runs");
        // Each fake prints `{name}.json`, a file beside it: changing the answer leaves the
        // interpreter file (the cache key) as it was, as installing pip does.
        let fake = |name: &str, pip: Option<&str>, base: Option<&Path>| {
            let exe = dir.path().join(name);
            let mut info = real.clone();
            info.pip_index_url = pip.map(str::to_string);
            if let Some(base) = base {
                info.prefix = dir.path().join("venv");
                info.base_executable = base.to_path_buf();
            }
            fs_err::write(
                dir.path().join(format!("{name}.json")),
                serde_json::to_vec(&info).unwrap(),
            )
            .unwrap();
            let script = format!(
                "#!/bin/sh\necho {name} >> '{}'\ncat '{}.json'\n",
                runs.display(),
                exe.display()
            );
            if fs_err::read_to_string(&exe).ok().as_deref() != Some(script.as_str()) {
                fs_err::write(&exe, script).unwrap();
                fs_err::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            exe
        };
        let runs_of = |name: &str| {
            fs_err::read_to_string(&runs)
                .unwrap_or_default()
                .lines()
                .filter(|l| *l == name)
                .count()
        };
        let url = "https://pip-default.invalid/simple";
        let found = |exe: &Path| {
            Interpreter::from_path_cached(exe, &cache)
                .unwrap()
                .pip_default_index(&cache)
        };

        let with_pip = fake("with-pip", Some(url), None);
        let got = found(&with_pip).unwrap();
        assert_eq!(got.url, url);
        assert_eq!(got.python.file_name().unwrap(), "with-pip");
        assert_eq!(runs_of("with-pip"), 1, "the first answer is the one used");

        let venv = fake("venv-python", None, Some(&with_pip));
        let got = found(&venv).unwrap();
        assert_eq!(got.python.file_name().unwrap(), "with-pip");
        assert_eq!(runs_of("with-pip"), 1, "the base's cached answer is used");

        let no_pip = fake("no-pip", None, None);
        assert_eq!(found(&no_pip), None);
        assert_eq!(
            runs_of("no-pip"),
            2,
            "a cached `no pip` is asked again once"
        );
        let e = crate::index::config::discover(
            &crate::index::SourceOverrides::default(),
            None,
            &crate::index::ConfigEnv::new([("HOME", "/nonexistent")], dir.path()),
            || found(&no_pip),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("No package index is configured"),
            "{e}"
        );

        // pip installed since: the interpreter file is unchanged, the cached answer says no
        // pip, and asking again finds it and caches it.
        fake("no-pip", Some(url), None);
        assert_eq!(found(&no_pip).unwrap().url, url);
        let before = runs_of("no-pip");
        assert_eq!(found(&no_pip).unwrap().url, url);
        assert_eq!(runs_of("no-pip"), before, "the new answer was cached");
    }

    #[cfg(unix)]
    #[test]
    fn bad_answers_are_typed_errors() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("#!/bin/sh\necho not json\n", "invalid JSON"),
            ("#!/bin/sh\nexit 0\n", "no output"),
            ("#!/bin/sh\necho oops >&2\nexit 3\n", "oops"),
        ];
        for (i, (script, expected)) in cases.into_iter().enumerate() {
            let exe = dir.path().join(format!("fake{i}"));
            fs_err::write(&exe, script).unwrap();
            fs_err::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            let err = Interpreter::query(&exe).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    /// The query prints its answer with its own encoder (importing `json` cost a fifth of its
    /// run time): it must write what `json.dumps` writes, for every kind of string a path or a
    /// platform string can hold.
    #[test]
    fn the_query_encodes_json_as_json_dumps_does() {
        let check = r#"
import json
samples = ["", "plain", 'quo"te', "back\\slash", "tab\tnew\nline\x00nul\x7f", "caf\u00e9",
           "\u2603 snow", "\U0001f600 astral", "\udcff lone surrogate", "/usr/lib/python3.12"]
for s in samples:
    assert to_json(s) == json.dumps(s), (s, to_json(s), json.dumps(s))
nested = {"a": None, "b": True, "c": False, "d": 3, "e": {"f": "g", "h": -1}}
assert to_json(nested) == json.dumps(nested), to_json(nested)
print("encoded alike")
"#;
        let out = std::process::Command::new("python3")
            .arg("-I")
            .arg("-c")
            .arg(format!("{QUERY_SCRIPT}\n{check}"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("encoded alike"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
