//! Arguments of resolution and of the project commands (`lock`, `sync`, `add`, `remove`, `run`).
use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::SourceArgs;

/// How to resolve.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ResolveArgs {
    /// Constraints: versions limited for packages something requires; repeatable.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) constraint: Vec<PathBuf>,
    /// Overrides: each replaces every requirement on its package; repeatable.
    #[arg(long = "override", value_name = "FILE")]
    pub(crate) overrides: Vec<PathBuf>,
    /// When pre-releases may be chosen.
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) prerelease: Option<PrereleaseArg>,
    /// Resolve again from scratch, ignoring the versions of the existing lock.
    #[arg(long, short = 'U')]
    pub(crate) upgrade: bool,
    /// Let this package move from its locked version; repeatable.
    #[arg(long, short = 'P', value_name = "PACKAGE")]
    pub(crate) upgrade_package: Vec<String>,
    /// Never build from source: a package with only a source distribution is an error.
    #[arg(long)]
    pub(crate) no_build: bool,
    /// Build source distributions with the target interpreter's environment instead of a fresh
    /// one holding their build requirements.
    #[arg(long)]
    pub(crate) no_build_isolation: bool,
    /// A setting passed to every build backend; repeatable.
    #[arg(long, short = 'C', value_name = "KEY=VALUE", value_parser = key_value)]
    pub(crate) config_settings: Vec<String>,
    /// The longest one build backend hook may run, in seconds (default 1800; also
    /// `DX_PY_BUILD_TIMEOUT`).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) build_timeout: Option<u64>,
    /// Ignore the wheels of this package and build it from its source distribution; `:all:`
    /// for every package; repeatable.
    #[arg(long, value_name = "PACKAGE", conflicts_with = "no_build")]
    pub(crate) no_binary: Vec<String>,
    /// Never build this package from source: only its wheels are candidates; `:all:` for every
    /// package; repeatable.
    #[arg(long, value_name = "PACKAGE")]
    pub(crate) only_binary: Vec<String>,
}

/// Accepts `KEY=VALUE`.
fn key_value(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_string()),
        _ => Err(format!("expected `KEY=VALUE`, got `{s}`")),
    }
}

/// `--prerelease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PrereleaseArg {
    /// Any version, pre-release or not.
    Allow,
    /// Never a pre-release.
    Disallow,
    /// Final releases first; a package's pre-releases when a requirement names one or when
    /// nothing else fits (the default).
    IfNecessaryOrExplicit,
}

/// Which parts of a project to lock and install.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ProjectArgs {
    /// Include this optional dependency group (`[project.optional-dependencies]`); repeatable.
    #[arg(long, value_name = "EXTRA", conflicts_with = "all_extras")]
    pub(crate) extra: Vec<String>,
    /// Include every optional dependency group.
    #[arg(long)]
    pub(crate) all_extras: bool,
    /// Include this dependency group (`[dependency-groups]`); repeatable.
    #[arg(long, value_name = "GROUP", conflicts_with = "all_groups")]
    pub(crate) group: Vec<String>,
    /// Include every dependency group.
    #[arg(long)]
    pub(crate) all_groups: bool,
    /// Leave out the `dev` group (included by default).
    #[arg(long)]
    pub(crate) no_dev: bool,
}

/// How a project command treats its lock.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct LockModeArgs {
    /// Fail if the lock is missing or out of date instead of locking again.
    #[arg(long, conflicts_with = "frozen")]
    pub(crate) locked: bool,
    /// Use the lock as it is, without checking it against `pyproject.toml`.
    #[arg(long)]
    pub(crate) frozen: bool,
}

#[derive(Args, Debug)]
pub(crate) struct LockArgs {
    /// Requirements files to resolve (without any: the `pyproject.toml` project of the current
    /// directory); repeatable.
    #[arg(long, short = 'r', value_name = "FILE")]
    pub(crate) requirements: Vec<PathBuf>,
    /// Directory for `pylock.toml` and `dx-py.dpl` (default: the project's directory, else the
    /// current directory).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) output_dir: Option<PathBuf>,
    /// Interpreter to lock for.
    #[arg(long, short = 'p')]
    pub(crate) python: Option<String>,
    /// Lock for this Python version on this machine's platform instead of the interpreter's own
    /// (no interpreter of that version is needed).
    #[arg(long, value_name = "X.Y[.Z]")]
    pub(crate) python_version: Option<dx_py_core::python::TargetVersion>,
    /// One `pylock.toml` for every platform and every Python of `requires-python` (else from
    /// `--python-version`, else the interpreter's version, on), within the project's
    /// `[tool.dx-py] environments`: entries carry markers and every wheel. Installs choose from
    /// it for their interpreter.
    #[arg(long)]
    pub(crate) universal: bool,
    #[command(flatten)]
    pub(crate) resolve: ResolveArgs,
    #[command(flatten)]
    pub(crate) project: ProjectArgs,
    #[command(flatten)]
    pub(crate) sources: SourceArgs,
}

/// `sync`: the project's venv made to hold its lock.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) env: EnvArgs,
    #[command(flatten)]
    pub(crate) project: ProjectArgs,
}

/// How the project's venv is made to hold its lock (`sync`, `run`, `add`, `remove`).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct EnvArgs {
    /// Interpreter for the project's venv (default: the venv's own, else `python3`).
    #[arg(long, short = 'p')]
    pub(crate) python: Option<String>,
    #[command(flatten)]
    pub(crate) lock_mode: LockModeArgs,
    #[command(flatten)]
    pub(crate) resolve: ResolveArgs,
    #[command(flatten)]
    pub(crate) sources: SourceArgs,
    /// Do not compile `.pyc` files.
    #[arg(long)]
    pub(crate) no_compile_bytecode: bool,
    /// Install the project itself built (`build_wheel`), not editable: source edits then need
    /// another sync.
    #[arg(long)]
    pub(crate) no_editable: bool,
}

/// `add` and `remove`: which dependencies of `pyproject.toml` to edit.
#[derive(Args, Debug)]
pub(crate) struct EditArgs {
    /// Packages: requirements to add (e.g. `requests`, `'flask>=3'`), local directories or
    /// source archives to add (`./lib`, `../dist/x-1.0.tar.gz`), or names to remove.
    #[arg(required = true, value_name = "PACKAGE")]
    pub(crate) packages: Vec<String>,
    /// Edit this dependency group instead of `[project] dependencies`.
    #[arg(long, conflicts_with = "optional")]
    pub(crate) group: Option<String>,
    /// Edit this optional dependency group (an extra).
    #[arg(long, value_name = "EXTRA")]
    pub(crate) optional: Option<String>,
    /// Only edit `pyproject.toml` and lock; do not sync the venv.
    #[arg(long)]
    pub(crate) no_sync: bool,
    /// `add`: install the local directories given editable (`add -e ../lib`).
    #[arg(long, short = 'e')]
    pub(crate) editable: bool,
    #[command(flatten)]
    pub(crate) env: EnvArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) sync: SyncArgs,
    /// The command and its arguments, run with the project's venv active.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<OsString>,
}
