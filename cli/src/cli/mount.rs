//! The arguments of `dx-py mount`, `dx-py unmount` and the hidden processes they start.
use std::path::PathBuf;

use clap::Args;

/// `dx-py mount [VENV]`. The venv works when it returns; bytecode the store lacks is compiled
/// by the server afterwards and appears in the mount when it is ready.
#[derive(Args, Debug)]
pub(crate) struct MountArgs {
    /// The venv directory to serve; made if missing, must be empty.
    #[arg(default_value = ".venv")]
    pub(crate) venv: PathBuf,
    /// Serve this prebuilt `.dxtree` file.
    #[arg(long, value_name = "FILE")]
    pub(crate) tree: Option<PathBuf>,
    /// Serve in this process until unmounted, instead of in a background server.
    #[arg(long)]
    pub(crate) foreground: bool,
    /// Let other users read the mount (needs `user_allow_other` in /etc/fuse.conf unless root).
    #[arg(long)]
    pub(crate) allow_other: bool,
    /// Start no watcher that unmounts if the server dies (a killed server then leaves a dead
    /// mount until the next `mount`/`unmount`).
    #[arg(long)]
    pub(crate) no_auto_unmount: bool,
    /// Leave the packs' bytes in the page cache after serving them. By default the server hands
    /// them back once the kernel holds them as the mounted file's cache (hot bytes cached once);
    /// keeping them makes a remount's first imports faster at the cost of that memory.
    #[arg(long)]
    pub(crate) keep_pack_cache: bool,
    /// Return only once the packages stored and the bytecode compiled after mounting are served
    /// (by default `mount` returns as soon as the venv works, and they follow). A package that
    /// then fails its checks (a file whose bytes differ from RECORD) fails the command and the
    /// venv is unmounted; without this flag its files fail to read and the server's log says why.
    #[arg(long, conflicts_with = "foreground")]
    pub(crate) wait_bytecode: bool,
    /// The lock to serve: `dx-py.dpl` or `pylock.toml` (default: ./dx-py.dpl or ./pylock.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "tree")]
    pub(crate) lock: Option<PathBuf>,
    /// Pinned requirements to lock first, as `install -r` does (./dx-py.dpl is reused when it
    /// matches them). Bytecode the store lacks is compiled by the server after mounting and
    /// served once it is ready.
    #[arg(long, short = 'r', value_name = "FILE", conflicts_with_all = ["tree", "lock"])]
    pub(crate) requirements: Option<PathBuf>,
    /// Interpreter of the served venv (default `python3`).
    #[arg(long, short = 'p')]
    pub(crate) python: Option<String>,
    /// Package store (e.g. a read-only shared store); default: {cache}/store.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) sources: super::SourceArgs,
    #[command(flatten)]
    pub(crate) resolve: super::ResolveArgs,
    /// List the dx-py mounts instead, with their server pids.
    #[arg(long, conflicts_with_all = ["tree", "foreground", "allow_other", "no_auto_unmount"])]
    pub(crate) list: bool,
}

/// `dx-py unmount [VENV]`.
#[derive(Args, Debug)]
pub(crate) struct UnmountArgs {
    /// The mounted venv.
    #[arg(default_value = ".venv")]
    pub(crate) venv: PathBuf,
    /// Unmount every dx-py mount.
    #[arg(long)]
    pub(crate) all: bool,
}

/// `dx-py __watch-mount MOUNTPOINT` (hidden): unmounts `MOUNTPOINT` when stdin closes and the
/// mount is dead.
#[derive(Args, Debug)]
pub(crate) struct WatchMountArgs {
    /// The mount point to watch.
    pub(crate) mountpoint: PathBuf,
    /// A trace to replay through the mount once it is live (with `--prewarm-tree`).
    #[arg(long, requires = "prewarm_tree")]
    pub(crate) prewarm_trace: Option<PathBuf>,
    /// The tree file the mount serves, which the trace names inodes of.
    #[arg(long, requires = "prewarm_trace")]
    pub(crate) prewarm_tree: Option<PathBuf>,
}
