//! Starting a mount's server and the hidden processes: `dx-py __serve-mount` (the server, which
//! reads its [`ServerSpec`] on stdin) and `dx-py __watch-mount` (which unmounts the venv if the
//! server dies, see `dx_py_fs_linux::serve::AutoUnmount::Watcher`).
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dx_py_core::mount::{ServerSpec, ServerStatus};
use dx_py_fs_linux::serve::{self, AutoUnmount, MountOptions, WatcherCommand};
use dx_py_fs_linux::server::{self, Reporter};
use dx_py_fs_linux::{daemon, mounts, tree};

use crate::cli::{MountArgs, WatchMountArgs};
use crate::printer::Printer;
use crate::settings::Settings;

/// How long `mount` waits for the server to bring the mount up.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `spec`: in a background server (returns once the mount is live, or with
/// `--wait-bytecode` once its work after mounting is done) or, with `--foreground`, in this
/// process until it is unmounted.
pub(crate) fn start(
    mut spec: ServerSpec,
    args: &MountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<ExitCode> {
    // Refuse a bad tree, a missing FUSE or a busy mount point here, with the real message,
    // rather than in the server's log.
    tree::open_tree(&spec.tree)?;
    let watcher = watcher(&spec.mountpoint)?;
    let opts = MountOptions {
        allow_other: spec.allow_other,
        auto_unmount: match spec.auto_unmount {
            true => AutoUnmount::Watcher(watcher.clone()),
            false => AutoUnmount::Off,
        },
        ..MountOptions::default()
    };
    serve::preflight(&opts)?;
    let venv = &spec.mountpoint;
    // Not `exists()`: that is false on a dead mount, which `prepare_mountpoint` cleans up.
    if std::fs::symlink_metadata(venv).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        std::fs::create_dir_all(venv)
            .with_context(|| format!("Cannot create `{}`", venv.display()))?;
    }
    spec.mountpoint = serve::prepare_mountpoint(venv)?;
    let venv = spec.mountpoint.clone();
    let cache = settings.cache();
    // A root, so that `cache clean` keeps what the mount serves while it lives.
    dx_py_core::cache::roots::record_mount(&cache.roots_dir(), &venv, &spec.tree);
    let state_dir = cache.mounts_dir();
    if args.foreground {
        printer.info(format_args!(
            "Serving {} (Ctrl-C or `dx-py unmount` to stop)",
            venv.display()
        ));
        server::run(spec, Some(watcher), Reporter::new(&state_dir, &venv, false))?;
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe()
        .context("Cannot find the dx-py executable to start the mount server")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.current_dir("/").arg("__serve-mount");
    let started = Instant::now();
    let completes_later = spec.after.is_some();
    let mut server = daemon::mount_background(cmd, &spec, &state_dir, MOUNT_TIMEOUT)?;
    printer.info(format_args!(
        "Mounted {} in {:.0?} (server pid {}, log {})",
        venv.display(),
        started.elapsed(),
        server.child.id(),
        server.log.display()
    ));
    if completes_later && args.wait_bytecode {
        wait_for_bytecode(&mut server, &state_dir, printer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for the server's final state. No bytecode is a warning (the mount works without);
/// packages the server could not store are an error (the venv is unmounted: some of its files
/// cannot be read), and so is the server exiting first.
fn wait_for_bytecode(
    server: &mut daemon::BackgroundMount,
    state_dir: &Path,
    printer: &Printer,
) -> Result<()> {
    let started = Instant::now();
    match server.wait_final()? {
        ServerStatus::PackagesFailed { reason } => {
            // Asked for a complete venv, leave none that cannot read some of its files.
            let venv = &server.mountpoint;
            if let Err(e) = mounts::unmount(venv) {
                printer.warn(format_args!("could not unmount {}: {e}", venv.display()));
            }
            let _ = server.child.wait();
            daemon::forget(state_dir, venv);
            anyhow::bail!(
                "The mount server could not store every package ({reason}); {} is unmounted",
                venv.display()
            );
        }
        no @ ServerStatus::NoBytecode { .. } => printer.warn(no),
        ready => {
            printer.verbose(&ready);
            printer.info(format_args!(
                "Bytecode served after {:.1?}",
                started.elapsed()
            ));
        }
    }
    Ok(())
}

/// `dx-py __watch-mount MOUNTPOINT`, run by the server once its mount is live.
pub(crate) fn watcher(mountpoint: &Path) -> Result<WatcherCommand> {
    let exe = std::env::current_exe().context("Cannot find the dx-py executable")?;
    Ok(WatcherCommand {
        program: exe,
        args: vec!["__watch-mount".into(), mountpoint.as_os_str().to_owned()],
        env: Vec::new(),
    })
}

/// `dx-py __serve-mount`: serves the spec read on stdin, reporting on stdout.
pub(crate) fn run_serve() -> Result<ExitCode> {
    let spec = ServerSpec::read_from(std::io::stdin().lock())
        .context("The mount server expects its spec (JSON) on stdin")?;
    // Records this process as a writer of its cache (`main` could not: the cache is in the spec).
    dx_py_core::temp::record_writers_in(&spec.cache_dir);
    let reporter = Reporter::new(&spec.cache().mounts_dir(), &spec.mountpoint, true);
    let watcher = watcher(&spec.mountpoint)?;
    server::run(spec, Some(watcher), reporter)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_watch(args: &WatchMountArgs) -> Result<ExitCode> {
    let prewarm = args
        .prewarm_trace
        .clone()
        .zip(args.prewarm_tree.clone())
        .map(|(trace, tree)| daemon::PrewarmFiles { trace, tree });
    daemon::watch(&args.mountpoint, prewarm)?;
    Ok(ExitCode::SUCCESS)
}
