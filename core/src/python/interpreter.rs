//! Finding a Python interpreter and asking it, once, what it is.
//!
//! The answer is cached as JSON under `{cache}/interpreters/`, keyed by the interpreter's path
//! and the size and modification time of the file it runs, so that a later `find` of the same
//! interpreter reads one small file and starts no process.
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::tags::TagPriorities;
use crate::hash::ContentHash;
use crate::index::PipDefaultIndex;

/// The Python program run (with `-I -c`) to learn what an interpreter is; prints one JSON line.
const QUERY_SCRIPT: &str = include_str!("query_interpreter.py");

/// Bumped whenever [`InterpreterInfo`] or the cache entry changes shape, so old entries miss.
/// (2: `pip_index_url` added; answers cached before it would say "no pip" for every interpreter.)
const CACHE_FORMAT: u32 = 2;

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

/// One interpreter answer in `{cache}/interpreters/{blake3 of key path}.json`.
#[derive(Serialize, Deserialize)]
struct CacheEntry {
    format: u32,
    key: CacheKey,
    info: InterpreterInfo,
}

/// What must not change for a cached answer to stay valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CacheKey {
    /// The interpreter path with its directory canonicalized (the file name is kept, so that a
    /// venv's `bin/python` link is not confused with the interpreter it points to).
    path: PathBuf,
    /// Size of the file the path resolves to.
    size: u64,
    /// Modification time (ns since the epoch) of the file the path resolves to.
    mtime_ns: u64,
    /// Modification time of the path itself when it is a symlink (a re-created venv link).
    link_mtime_ns: Option<u64>,
}

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
        let cache_file = cache_dir.join("interpreters").join(format!(
            "{}.json",
            ContentHash::of(key.path.as_os_str().as_encoded_bytes())
        ));
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

fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let start = s.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    format!("…{}", &s[start..])
}

fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn cache_key(path: &Path) -> Result<CacheKey, InterpreterError> {
    let io = |source| InterpreterError::Io {
        path: path.to_path_buf(),
        source,
    };
    let absolute = std::path::absolute(path).map_err(io)?;
    let key_path = match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => fs_err::canonicalize(parent).map_err(io)?.join(name),
        _ => fs_err::canonicalize(&absolute).map_err(io)?,
    };
    let link = fs_err::symlink_metadata(&key_path).map_err(io)?;
    let target = fs_err::metadata(&key_path).map_err(io)?;
    Ok(CacheKey {
        path: key_path,
        size: target.len(),
        mtime_ns: mtime_ns(&target),
        link_mtime_ns: link.file_type().is_symlink().then(|| mtime_ns(&link)),
    })
}

fn read_cache(cache_file: &Path, key: &CacheKey) -> Option<Interpreter> {
    let bytes = std::fs::read(cache_file).ok()?;
    let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    if entry.format != CACHE_FORMAT || entry.key != *key {
        return None;
    }
    Interpreter::from_info(key.path.clone(), entry.info).ok()
}

/// Stores the answer; a cache that cannot be written only costs the next `find` a process.
fn write_cache(cache_file: &Path, key: CacheKey, info: &InterpreterInfo) {
    let entry = CacheEntry {
        format: CACHE_FORMAT,
        key,
        info: info.clone(),
    };
    let result = (|| -> std::io::Result<()> {
        let dir = cache_file.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let mut tmp = crate::temp::file_in(dir)?;
        tmp.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
        tmp.persist(cache_file).map_err(|e| e.error)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::debug!(
            "Failed to cache the interpreter answer in `{}`: {e}",
            cache_file.display()
        );
    }
}

/// Turns a request into the path of an interpreter, without running anything.
fn locate(request: Option<&str>) -> Result<PathBuf, InterpreterError> {
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

fn is_executable(path: &Path) -> bool {
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

/// `$PYENV_ROOT`, else `~/.pyenv`.
fn pyenv_root() -> PathBuf {
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
fn pyenv_version_binary(root: &Path, minor: u32, name: &str) -> Option<PathBuf> {
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
struct PyenvShim {
    root: PathBuf,
    shim_dir: PathBuf,
}

/// Recognizes a pyenv shim (a small shell script that `exec`s `pyenv exec`).
fn pyenv_shim(path: &Path) -> Option<PyenvShim> {
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
    fn resolve(&self, name: &str) -> Option<PathBuf> {
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
pub(crate) mod tests {
    use super::*;

    /// An interpreter from the machine's pyenv, `3.{minor}`, when installed.
    pub(crate) fn pyenv_python(minor: u32) -> Option<PathBuf> {
        pyenv_version_binary(&pyenv_root(), minor, &format!("python3.{minor}"))
    }

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
