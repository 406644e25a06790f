//! `dx-py mount`, `dx-py unmount` and the hidden processes they start.
//!
//! `mount` checks everything it can in the foreground (FUSE usable, mount point empty, tree
//! readable), then starts `dx-py __serve-mount` detached, with its log in `{cache}/mounts/`,
//! and returns once the mount is live. The server starts `dx-py __watch-mount`, which unmounts
//! the venv if the server dies (see `dx_py_fs_linux::serve::AutoUnmount::Watcher`).
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use dx_py_core::plural::{count, is_are};
use dx_py_fs_linux::fs::{PackPages, TreeFs};
use dx_py_fs_linux::serve::{AutoUnmount, MountOptions, WatcherCommand};
use dx_py_fs_linux::{daemon, mounts, serve, tree};

use super::mount_after::{AfterMounting, BYTECODE_NONE, BYTECODE_READY, PACKAGES_FAILED};
use super::mount_tree_build::MountTree;
use crate::printer::Printer;
use crate::settings::Settings;

/// How long `mount` waits for the server to bring the mount up.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

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
    pub(crate) sources: crate::cli::SourceArgs,
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

/// `dx-py __serve-mount --tree FILE MOUNTPOINT` (hidden): the server process.
#[derive(Args, Debug)]
pub(crate) struct ServeMountArgs {
    /// The tree file to serve.
    #[arg(long, value_name = "FILE")]
    pub(crate) tree: PathBuf,
    /// Pass `allow_other`.
    #[arg(long)]
    pub(crate) allow_other: bool,
    /// Start no `__watch-mount` watcher.
    #[arg(long)]
    pub(crate) no_auto_unmount: bool,
    /// Request-serving threads.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// See `dx-py mount --keep-pack-cache`.
    #[arg(long)]
    pub(crate) keep_pack_cache: bool,
    /// After mounting, store the packages this lock's tree was laid out from, compile the
    /// bytecode its packages lack and add it to the mount.
    #[arg(long, value_name = "FILE", requires = "python")]
    pub(crate) after_lock: Option<PathBuf>,
    /// The interpreter of that bytecode (and of the venv).
    #[arg(long, value_name = "PYTHON")]
    pub(crate) python: Option<PathBuf>,
    /// The project's lock, given the stored packages' objects if it is still unchanged.
    #[arg(long, value_name = "FILE", requires_all = ["after_lock", "project_lock_hash"])]
    pub(crate) project_lock: Option<PathBuf>,
    /// The blake3 (hex) of the bytes `mount` left in that lock.
    #[arg(long, value_name = "HEX", requires = "project_lock")]
    pub(crate) project_lock_hash: Option<String>,
    /// Where the wheels of the packages stored after mounting are (the lock's directory).
    #[arg(long, value_name = "DIR", requires = "after_lock")]
    pub(crate) lock_dir: Option<PathBuf>,
    /// Find-links directories holding those wheels.
    #[arg(long, value_name = "DIR", requires = "after_lock")]
    pub(crate) find_links: Vec<PathBuf>,
    /// Where to mount.
    pub(crate) mountpoint: PathBuf,
}

/// `dx-py __watch-mount MOUNTPOINT` (hidden): unmounts `MOUNTPOINT` when stdin closes and the
/// mount is dead.
#[derive(Args, Debug)]
pub(crate) struct WatchMountArgs {
    /// The mount point to watch.
    pub(crate) mountpoint: PathBuf,
}

fn options(allow_other: bool, no_auto_unmount: bool, threads: Option<usize>) -> MountOptions {
    let mut opts = MountOptions {
        allow_other,
        ..MountOptions::default()
    };
    if let Some(n) = threads {
        opts.threads = n.max(1);
    }
    if no_auto_unmount {
        opts.auto_unmount = AutoUnmount::Off;
    }
    opts
}

fn state_dir(settings: &Settings) -> PathBuf {
    settings.cache().mounts_dir()
}

pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("Cannot resolve `{}`", path.display()))
}

pub(crate) fn run_mount(
    args: &MountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<ExitCode> {
    if args.list {
        return list(settings, printer);
    }
    let settings = &settings.with_store(args.store.as_deref());
    let mut opts = options(args.allow_other, args.no_auto_unmount, None);
    if !args.no_auto_unmount {
        opts.auto_unmount = watcher(&mounts::absolute(&args.venv)?)?;
    }
    let (tree, later) = match &args.tree {
        Some(tree) => (tree.clone(), None),
        None => {
            // `DX_PY_NO_FUSE=1` asks for the layout even where FUSE works (containers that
            // allow /dev/fuse but should not mount, and the fallback's own tests).
            let unusable = match serve::preflight(&opts) {
                _ if std::env::var_os("DX_PY_NO_FUSE")
                    .is_some_and(|v| !v.is_empty() && v != "0") =>
                {
                    Some("DX_PY_NO_FUSE is set".to_string())
                }
                Err(why) => Some(why.to_string()),
                Ok(_) => None,
            };
            if let Some(why) = unusable {
                printer.warn(format_args!(
                    "FUSE is not usable here ({why}); installing the symlink layout of the same lock instead"
                ));
                return fallback_install(args, settings, printer);
            }
            match super::mount_tree_build::tree_for_lock(args, settings, printer)? {
                MountTree::Complete(tree) => (tree, None),
                MountTree::Later {
                    first,
                    later,
                    planned,
                    missing,
                } => {
                    if planned > 0 {
                        printer.info(format_args!(
                            "{} {} stored after mounting (reading one waits for it)",
                            count(planned, "package"),
                            is_are(planned)
                        ));
                    }
                    if missing > 0 {
                        printer.info(format_args!(
                            "The bytecode of {} is compiled after mounting (imports until then compile in memory)",
                            count(missing, "package")
                        ));
                    }
                    (first, Some(later))
                }
            }
        }
    };
    let serving = Serving {
        foreground: args.foreground,
        keep_pack_cache: args.keep_pack_cache,
        wait_bytecode: args.wait_bytecode,
    };
    mount_tree(&tree, &args.venv, &opts, serving, later, settings, printer)
}

/// How the mount's server runs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Serving {
    /// In this process until unmounted, instead of a background server.
    pub(crate) foreground: bool,
    /// Leave served pack bytes in the page cache.
    pub(crate) keep_pack_cache: bool,
    /// Return only once bytecode compiled after mounting is served.
    pub(crate) wait_bytecode: bool,
}

/// How the packs' page cache is used, as `keep_pack_cache` says.
fn pack_pages(keep_pack_cache: bool) -> PackPages {
    if keep_pack_cache {
        PackPages::Keep
    } else {
        PackPages::Release
    }
}

/// The file system over `tree`, its pack cache used as `keep_pack_cache` says.
fn open_fs(tree: &Path, settings: &Settings, keep_pack_cache: bool) -> Result<TreeFs> {
    Ok(TreeFs::open(tree, &settings.store_dir)?.pack_pages(pack_pages(keep_pack_cache)))
}

/// Without FUSE, the venv gets the symlink layout of the same lock.
fn fallback_install(args: &MountArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let install = crate::cli::InstallArgs {
        requirements: args.requirements.clone(),
        lock: args.lock.clone(),
        venv: args.venv.clone(),
        python: args.python.clone(),
        sources: args.sources.clone(),
        link_mode: crate::cli::LinkModeArg::Auto,
        no_compile_bytecode: false,
        store: args.store.clone(),
    };
    super::install::run(&install, settings, printer)
}

/// `dx-py __watch-mount MOUNTPOINT`, run by the server once its mount is live.
fn watcher(mountpoint: &Path) -> Result<AutoUnmount> {
    let exe = std::env::current_exe().context("Cannot find the dx-py executable")?;
    Ok(AutoUnmount::Watcher(WatcherCommand {
        program: exe,
        args: vec!["__watch-mount".into(), mountpoint.as_os_str().to_owned()],
        env: Vec::new(),
    }))
}

/// Serves `tree` on `venv`: in the background (returns once the mount is live) or, with
/// `serving.foreground`, in this process until it is unmounted; `later` is bytecode the server
/// compiles once the mount is live.
pub(crate) fn mount_tree(
    tree: &Path,
    venv: &Path,
    opts: &MountOptions,
    serving: Serving,
    later: Option<AfterMounting>,
    settings: &Settings,
    printer: &Printer,
) -> Result<ExitCode> {
    let tree = absolute(tree)?;
    // Refuse a bad tree, a missing FUSE or a busy mount point here, with the real message,
    // rather than in the server's log.
    tree::open_tree(&tree)?;
    serve::preflight(opts)?;
    // Not `exists()`: that is false on a dead mount, which `prepare_mountpoint` cleans up.
    if std::fs::symlink_metadata(venv).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        fs_err_create_dir_all(venv)?;
    }
    let venv = serve::prepare_mountpoint(venv)?;
    // A root, so that `cache clean` keeps what the mount serves while it lives.
    dx_py_core::cache::roots::record_mount(&settings.cache().roots_dir(), &venv, &tree);
    if serving.foreground {
        let fs = open_fs(&tree, settings, serving.keep_pack_cache)?;
        printer.info(format_args!(
            "Serving {} (Ctrl-C or `dx-py unmount` to stop)",
            venv.display()
        ));
        match later {
            Some(later) => {
                let pages = pack_pages(serving.keep_pack_cache);
                let (fs, job) = later.job(fs, &tree, &venv, settings, pages)?;
                serve::serve_with(fs, &venv, opts, job)?;
            }
            None => serve::serve(fs, &venv, opts)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe()
        .context("Cannot find the dx-py executable to start the mount server")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.current_dir("/")
        .arg("--cache-dir")
        .arg(absolute(&settings.cache_dir)?)
        .arg("--store")
        .arg(absolute(&settings.store_dir)?)
        .arg("__serve-mount")
        .arg("--tree")
        .arg(&tree)
        .arg("--threads")
        .arg(opts.threads.to_string());
    if opts.allow_other {
        cmd.arg("--allow-other");
    }
    if opts.auto_unmount == AutoUnmount::Off {
        cmd.arg("--no-auto-unmount");
    }
    if serving.keep_pack_cache {
        cmd.arg("--keep-pack-cache");
    }
    if let Some(later) = &later {
        cmd.arg("--after-lock")
            .arg(absolute(&later.lock)?)
            .arg("--python")
            .arg(&later.python)
            .arg("--lock-dir")
            .arg(&later.lock_dir);
        if let Some((project, hash)) = &later.project_lock {
            cmd.arg("--project-lock")
                .arg(project)
                .arg("--project-lock-hash")
                .arg(hash);
        }
        for dir in &later.find_links {
            cmd.arg("--find-links").arg(dir);
        }
    }
    cmd.arg(&venv);
    let started = std::time::Instant::now();
    let mut server = daemon::mount_background(cmd, &venv, &state_dir(settings), MOUNT_TIMEOUT)?;
    printer.info(format_args!(
        "Mounted {} in {:.0?} (server pid {}, log {})",
        venv.display(),
        started.elapsed(),
        server.child.id(),
        server.log.display()
    ));
    if later.is_some() && serving.wait_bytecode {
        wait_for_bytecode(&mut server, &state_dir(settings), printer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits until `server` logs whether the bytecode it compiles after mounting is served. Its
/// absence is a warning (the mount works without); packages the server could not store are an
/// error (the venv is unmounted: some of its files cannot be read), and so is the server
/// exiting first.
fn wait_for_bytecode(
    server: &mut daemon::BackgroundMount,
    state_dir: &Path,
    printer: &Printer,
) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.starts_with(BYTECODE_READY)) {
            printer.verbose(format_args!("{line}"));
            printer.info(format_args!(
                "Bytecode served after {:.1?}",
                started.elapsed()
            ));
            return Ok(());
        }
        if let Some(line) = log.lines().find(|l| l.starts_with(PACKAGES_FAILED)) {
            // Asked for a complete venv, leave none that cannot read some of its files.
            let venv = &server.mountpoint;
            if let Err(e) = mounts::unmount(venv) {
                printer.warn(format_args!("could not unmount {}: {e}", venv.display()));
            }
            let _ = server.child.wait();
            daemon::forget(state_dir, venv);
            anyhow::bail!(
                "The mount server could not store every package ({}); {} is unmounted",
                line.trim_start_matches("dx-py: "),
                venv.display()
            );
        }
        if let Some(line) = log.lines().find(|l| l.starts_with(BYTECODE_NONE)) {
            printer.warn(format_args!("{}", line.trim_start_matches("dx-py: ")));
            return Ok(());
        }
        if let Some(status) = server.child.try_wait()? {
            anyhow::bail!(
                "The mount server exited ({status}) before its bytecode was ready; see {}",
                server.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn fs_err_create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("Cannot create `{}`", path.display()))
}

pub(crate) fn run_unmount(
    args: &UnmountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<ExitCode> {
    let targets: Vec<PathBuf> = if args.all {
        mounts::list_mounts()?
            .into_iter()
            .map(|m| m.mountpoint)
            .collect()
    } else {
        vec![mounts::absolute(&args.venv)?]
    };
    for target in &targets {
        match daemon::unmount_recorded(&state_dir(settings), target)? {
            daemon::Unmounted::Now {
                server_had_died,
                server_still_running,
            } => {
                if let Some(pid) = server_still_running {
                    printer.warn(format_args!(
                        "the mount server (pid {pid}) is still running"
                    ));
                }
                let note = if server_had_died {
                    " (its server had died)"
                } else {
                    ""
                };
                printer.info(format_args!("Unmounted {}{note}", target.display()));
            }
            daemon::Unmounted::Already => printer.info(format_args!(
                "{} is not mounted (already unmounted)",
                target.display()
            )),
        }
    }
    if targets.is_empty() {
        printer.info("No dx-py mounts");
    }
    Ok(ExitCode::SUCCESS)
}

fn list(settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    for m in mounts::list_mounts()? {
        let state = if mounts::is_dead_mount(&m.mountpoint) {
            "dead".to_string()
        } else {
            daemon::recorded_pid(&state_dir(settings), &m.mountpoint)
                .map_or_else(|| "live".to_string(), |pid| format!("pid {pid}"))
        };
        printer.out(format_args!("{}\t{state}", m.mountpoint.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_serve(args: &ServeMountArgs, settings: &Settings) -> Result<ExitCode> {
    let mut opts = options(args.allow_other, args.no_auto_unmount, args.threads);
    if !args.no_auto_unmount {
        opts.auto_unmount = watcher(&mounts::absolute(&args.mountpoint)?)?;
    }
    let fs = open_fs(&args.tree, settings, args.keep_pack_cache)?;
    match (&args.after_lock, &args.python) {
        (Some(lock), Some(python)) => {
            let later = AfterMounting {
                lock: lock.clone(),
                python: python.clone(),
                project_lock: args
                    .project_lock
                    .clone()
                    .zip(args.project_lock_hash.clone()),
                find_links: args.find_links.clone(),
                lock_dir: args.lock_dir.clone().unwrap_or_default(),
            };
            let venv = mounts::absolute(&args.mountpoint)?;
            let pages = pack_pages(args.keep_pack_cache);
            let (fs, job) = later.job(fs, &args.tree, &venv, settings, pages)?;
            serve::serve_with(fs, &args.mountpoint, &opts, job)?;
        }
        _ => serve::serve(fs, &args.mountpoint, &opts)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_watch(args: &WatchMountArgs) -> Result<ExitCode> {
    daemon::watch(&args.mountpoint)?;
    Ok(ExitCode::SUCCESS)
}
