//! Command-line arguments.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[cfg(target_os = "linux")]
mod mount;
mod project;
mod store;
#[cfg(target_os = "linux")]
pub(crate) use mount::{MountArgs, UnmountArgs, WatchMountArgs};
pub(crate) use project::{
    EditArgs, EnvArgs, LockArgs, PrereleaseArg, ProjectArgs, ResolveArgs, RunArgs, SyncArgs,
};
pub(crate) use store::{CacheCommand, DplCommand, PruneArgs, StoreCommand};

/// A Python package manager whose venvs cost almost nothing.
#[derive(Parser, Debug)]
#[command(name = "dx-py", version, about)]
pub(crate) struct Cli {
    /// Cache root (store and layouts); default: $DX_PY_CACHE_DIR, then the platform cache dir.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Package store location, e.g. a read-only shared store; default: {cache}/store.
    #[arg(long, value_name = "DIR", env = "DX_PY_STORE")]
    pub(crate) store: Option<PathBuf>,
    /// A read-only store below the local one (`http(s)://…`, `s3://bucket/prefix`, `file://…`):
    /// installs and mounts fetch the objects they lack from it, verified, before asking wheels
    /// or the index.
    #[arg(long, global = true, value_name = "URL", env = "DX_PY_STORE_URL")]
    pub(crate) store_url: Option<String>,
    /// More output (per-phase timings, cache hits); repeat for debug logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a venv (like `python -m venv --without-pip`).
    Venv(VenvArgs),
    /// Resolve requirements files or the project's `pyproject.toml`: write `pylock.toml` and
    /// `dx-py.dpl`.
    Lock(LockArgs),
    /// Make a venv hold exactly a locked set (resolving requirements first when needed).
    Install(InstallArgs),
    /// Make the project's `.venv` hold its lock, locking again when `pyproject.toml` changed.
    Sync(SyncArgs),
    /// Add dependencies to `pyproject.toml`, then lock and sync.
    Add(EditArgs),
    /// Remove dependencies from `pyproject.toml`, then lock and sync.
    Remove(EditArgs),
    /// Sync the project, then run a command in its venv.
    Run(RunArgs),
    /// Print the requirements a lock gives another environment (a Python version, a platform).
    Export(ExportArgs),
    /// Build, dump and query binary locks.
    #[command(subcommand)]
    Dpl(DplCommand),
    /// Serve a venv read-only through FUSE, straight from the store.
    #[cfg(target_os = "linux")]
    Mount(MountArgs),
    /// Unmount a venv served by `dx-py mount`.
    #[cfg(target_os = "linux")]
    Unmount(UnmountArgs),
    /// The mount server: reads its spec (JSON) on stdin, reports its state on stdout.
    #[cfg(target_os = "linux")]
    #[command(name = "__serve-mount", hide = true)]
    ServeMount,
    #[cfg(target_os = "linux")]
    #[command(name = "__watch-mount", hide = true)]
    WatchMount(WatchMountArgs),
    /// Inspect and add to the package store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Inspect and clean the cache.
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// `export`: a lock read for another environment.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// The lock (default: the project's `pylock.toml`, else `./pylock.toml`).
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
    /// The Python version (default: the version of `--python`, else of `python3`).
    #[arg(long, value_name = "X.Y[.Z]")]
    pub(crate) python_version: Option<dx_py_core::python::TargetVersion>,
    /// The interpreter whose version to use when `--python-version` is not given.
    #[arg(long, short = 'p', conflicts_with = "python_version")]
    pub(crate) python: Option<String>,
    /// `linux`, `macos` or `windows` (also `darwin`, `win32`), optionally with an architecture
    /// (`aarch64-macos`, `windows-x86_64`); default: this machine's.
    #[arg(long)]
    pub(crate) platform: Option<dx_py_core::python::Platform>,
    /// Write the requirements here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct VenvArgs {
    /// Where to create it.
    #[arg(default_value = ".venv")]
    pub(crate) path: PathBuf,
    /// Interpreter: a path, `3.X`, or `python3.X`; default `python3` on PATH.
    #[arg(long, short = 'p')]
    pub(crate) python: Option<String>,
    /// Prompt shown by the activation scripts.
    #[arg(long)]
    pub(crate) prompt: Option<String>,
    /// Give the venv access to the base interpreter's site-packages.
    #[arg(long)]
    pub(crate) system_site_packages: bool,
    /// Replace a venv already at PATH (without it, an existing venv is refused; an empty
    /// directory is always fine).
    #[arg(long)]
    pub(crate) clear: bool,
}

/// Where wheels come from.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct SourceArgs {
    /// A directory (or page) of wheels, searched before the index; repeatable.
    #[arg(long, short = 'f', value_name = "DIR")]
    pub(crate) find_links: Vec<String>,
    /// The package index (PEP 503/691 simple API); default from DX_PY_INDEX_URL or pip/uv config.
    #[arg(long, short = 'i', value_name = "URL")]
    pub(crate) index_url: Option<String>,
    /// More indexes; repeatable.
    #[arg(long, value_name = "URL")]
    pub(crate) extra_index_url: Vec<String>,
    /// Use only `--find-links` locations.
    #[arg(long)]
    pub(crate) no_index: bool,
    /// Use only what is cached: no network access.
    #[arg(long)]
    pub(crate) offline: bool,
    /// Revalidate every cached index page.
    #[arg(long)]
    pub(crate) refresh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LinkModeArg {
    /// Hardlinks, falling back to symlinks, then copies.
    Auto,
    /// Hardlinks (then copies where impossible).
    Hardlink,
    /// Symlinks (then copies).
    Symlink,
    /// Copies.
    Copy,
}

#[derive(Args, Debug)]
pub(crate) struct InstallArgs {
    /// Requirements to lock (resolving them unless every one is pinned with `==`; reusing
    /// `./dx-py.dpl` when it is fresh) and install.
    #[arg(long, short = 'r', value_name = "FILE", conflicts_with = "lock")]
    pub(crate) requirements: Option<PathBuf>,
    /// A lock to install: `dx-py.dpl` or `pylock.toml` (default: ./dx-py.dpl or ./pylock.toml).
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
    /// The venv (created when missing).
    #[arg(long, default_value = ".venv", value_name = "PATH")]
    pub(crate) venv: PathBuf,
    /// Interpreter for a new venv (default: the venv's own, else `python3`).
    #[arg(long, short = 'p')]
    pub(crate) python: Option<String>,
    #[command(flatten)]
    pub(crate) sources: SourceArgs,
    #[command(flatten)]
    pub(crate) resolve: ResolveArgs,
    /// How layout files link to the store.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) link_mode: LinkModeArg,
    /// Do not compile `.pyc` files.
    #[arg(long)]
    pub(crate) no_compile_bytecode: bool,
    /// Package store location (e.g. a read-only shared store); default: {cache}/store.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
