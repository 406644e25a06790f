//! Mounting a [`TreeFs`]: checks that FUSE can work here, the mount options, and the two ways to
//! run the server (blocking in this thread, or on background threads of this process).
//!
//! The mount is read-only (`ro`), named `dx-py` (`fsname`, `subtype`: it shows as `fuse.dx-py`
//! in `/proc/self/mountinfo`) and lets the kernel check permissions (`default_permissions`: no
//! `access` round trips). Root mounts with mount(2) directly; other users go through the setuid
//! `fusermount3`. [`AutoUnmount`] says who cleans up if the server is killed.
use std::path::{Path, PathBuf};
use std::time::Duration;

use fuser::{Config, MountOption, SessionACL};

use crate::fs::TreeFs;
use crate::mounts;

/// How to mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Threads reading requests from the kernel (each with its own cloned `/dev/fuse` fd).
    pub threads: usize,
    /// Let every user read the mount (`allow_other`); non-root users need `user_allow_other`
    /// in `/etc/fuse.conf`.
    pub allow_other: bool,
    /// What unmounts the file system if the server dies (`kill -9`, a crash).
    pub auto_unmount: AutoUnmount,
}

/// Who cleans up the mount when its server dies without unmounting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutoUnmount {
    /// Nobody: a dead mount stays (every access fails with `ENOTCONN`) until the next
    /// `dx-py mount`/`unmount` of that path cleans it up.
    Off,
    /// `fusermount3 -o auto_unmount`: every mount then goes through fusermount3 (a setuid
    /// helper, 20-50 ms here instead of about 1 ms for root's direct mount(2)), and fuser allows
    /// it only with `allow_other`, which non-root users may not have.
    Fusermount,
    /// A watcher process started once the mount is live, whose stdin is a pipe held by the
    /// server: when the server dies the watcher reads EOF and unmounts the dead mount
    /// ([`crate::daemon::watch`] is its body). Off the mount's critical path, no allow_other.
    Watcher(WatcherCommand),
}

/// The program that runs [`crate::daemon::watch`] (e.g. `dx-py __watch-mount MOUNTPOINT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<std::ffi::OsString>,
    /// Extra environment variables.
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

impl Default for MountOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            threads: cores.clamp(2, 8),
            allow_other: false,
            auto_unmount: AutoUnmount::Off,
        }
    }
}

/// Why a mount could not be made, found or removed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// No FUSE device: the kernel module is not loaded, or a container was started without it.
    #[error(
        "`/dev/fuse` does not exist: load the FUSE kernel module (`modprobe fuse`) or start the container with `--device /dev/fuse`; `dx-py install` works without FUSE"
    )]
    NoFuseDevice,
    /// The FUSE device exists but cannot be opened.
    #[error(
        "`/dev/fuse` cannot be opened: {0}; give this user access to it (in a container: `--device /dev/fuse --cap-add SYS_ADMIN`)"
    )]
    FuseDevicePermission(#[source] std::io::Error),
    /// `fusermount3` is needed (unprivileged mounts, its auto-unmount) but not on `PATH`.
    #[error(
        "`fusermount3` is not on PATH; install the `fuse3` package (e.g. `apt-get install fuse3`)"
    )]
    NoFusermount,
    /// `allow_other` was asked for by a user that may not use it.
    #[error("`--allow-other` needs `user_allow_other` in `/etc/fuse.conf` (or running as root)")]
    AllowOtherNotPermitted,
    /// The mount point is not an (empty) directory.
    #[error("Cannot mount on `{path}`: {reason}")]
    BadMountPoint {
        /// The mount point.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something is already mounted there.
    #[error("`{0}` is already mounted; run `dx-py unmount` on it first")]
    AlreadyMounted(PathBuf),
    /// Nothing dx-py mounted is there.
    #[error("`{0}` is not a dx-py mount")]
    NotMounted(PathBuf),
    /// The tree file cannot be served.
    #[error(transparent)]
    Tree(#[from] crate::tree::OpenTreeError),
    /// The kernel or `fusermount3` refused the mount.
    #[error("Cannot mount `{path}`")]
    MountFailed {
        /// The mount point.
        path: PathBuf,
        /// The error from mount(2) or fusermount3.
        #[source]
        source: std::io::Error,
    },
    /// The background server did not bring the mount up.
    #[error("The mount server for `{path}` {what}; its log ends with:\n{log_tail}")]
    ServerFailed {
        /// The mount point.
        path: PathBuf,
        /// What happened (`exited with status 1`, `did not mount within 10s`).
        what: String,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// Neither `fusermount3 -u` nor a lazy unmount worked.
    #[error(
        "Cannot unmount `{path}`: {}",
        crate::mounts::UnmountAttempt::join(attempts)
    )]
    UnmountFailed {
        /// The mount point.
        path: PathBuf,
        /// What each attempt said, in order.
        attempts: Vec<crate::mounts::UnmountAttempt>,
    },
    /// Any other I/O failure; fs-err puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where `name` is on `PATH`, if anywhere.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    which::which(name).ok()
}

fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|text| {
        text.lines()
            .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// What [`preflight`] settled: the options that will really be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// `allow_other` will be passed.
    pub allow_other: bool,
    /// `auto_unmount` will be passed to fusermount3.
    pub fusermount_auto_unmount: bool,
}

/// What this machine offers, as far as mounting goes.
struct Host {
    /// `Ok` when `/dev/fuse` exists (and, as root, opens).
    dev_fuse: std::io::Result<()>,
    root: bool,
    fusermount: bool,
    user_allow_other: bool,
}

impl Host {
    fn probe() -> Self {
        let root = crate::sys::is_root();
        let dev_fuse = std::fs::metadata("/dev/fuse").and_then(|_| {
            // Root mounts directly and needs the device itself; a user goes through the
            // setuid fusermount3, which opens it.
            if root {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/fuse")
                    .map(drop)
            } else {
                Ok(())
            }
        });
        Self {
            dev_fuse,
            root,
            fusermount: find_in_path("fusermount3").is_some(),
            user_allow_other: user_allow_other(),
        }
    }

    fn decide(self, opts: &MountOptions) -> Result<Effective, MountError> {
        match self.dev_fuse {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MountError::NoFuseDevice);
            }
            Err(e) => return Err(MountError::FuseDevicePermission(e)),
            Ok(()) => {}
        }
        let via_fusermount = opts.auto_unmount == AutoUnmount::Fusermount;
        if !self.fusermount && (!self.root || via_fusermount) {
            return Err(MountError::NoFusermount);
        }
        let may_allow_other = self.root || self.user_allow_other;
        if opts.allow_other && !may_allow_other {
            return Err(MountError::AllowOtherNotPermitted);
        }
        // fuser passes auto_unmount only together with allow_other (or allow_root).
        let fusermount_auto_unmount = via_fusermount && may_allow_other;
        if via_fusermount && !fusermount_auto_unmount {
            tracing::warn!(
                "fusermount3's auto-unmount needs `user_allow_other` in /etc/fuse.conf; a killed server will leave a dead mount that the next `dx-py mount`/`unmount` cleans up"
            );
        }
        Ok(Effective {
            allow_other: opts.allow_other,
            fusermount_auto_unmount,
        })
    }
}

/// Checks, before touching the mount point, that a FUSE mount can work here, and says why not:
/// `/dev/fuse` present and (as root) openable, `fusermount3` on PATH when it is needed
/// (unprivileged users, [`AutoUnmount::Fusermount`]), `allow_other` permitted.
pub fn preflight(opts: &MountOptions) -> Result<Effective, MountError> {
    Host::probe().decide(opts)
}

/// The fuser configuration for `opts` (after [`preflight`]).
pub fn config(opts: &MountOptions, eff: &Effective) -> Config {
    let mut mount_options = vec![
        MountOption::RO,
        MountOption::FSName("dx-py".to_string()),
        // As a kernel option (not `Subtype`), so that a direct mount(2) by root carries it too.
        MountOption::CUSTOM("subtype=dx-py".to_string()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
    ];
    if eff.fusermount_auto_unmount {
        mount_options.push(MountOption::AutoUnmount);
    }
    let mut config = Config::default();
    config.mount_options = mount_options;
    config.acl = if eff.allow_other {
        SessionACL::All
    } else if eff.fusermount_auto_unmount {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = opts.threads > 1;
    config
}

/// Makes `mountpoint` ready: an existing empty directory with nothing mounted on it. A dead
/// dx-py mount (its server was killed) is unmounted first. Returns the absolute mount point.
pub fn prepare_mountpoint(mountpoint: &Path) -> Result<PathBuf, MountError> {
    let abs = mounts::absolute(mountpoint)?;
    if mounts::is_dead_mount(&abs) {
        tracing::info!("cleaning up the dead mount at {}", abs.display());
        mounts::unmount(&abs)?;
    }
    if mounts::find_mount(&abs)?.is_some() {
        return Err(MountError::AlreadyMounted(abs));
    }
    let bad = |reason| MountError::BadMountPoint {
        path: abs.clone(),
        reason,
    };
    match std::fs::read_dir(&abs) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(bad("the directory is not empty"));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(bad("it does not exist")),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(bad("it is not a directory"));
        }
        Err(e) => return Err(fs_err::read_dir(&abs).map(|_| ()).err().unwrap_or(e).into()),
    }
    Ok(abs)
}

fn session(
    fs: TreeFs,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<fuser::Session<TreeFs>, MountError> {
    let eff = preflight(opts)?;
    let abs = prepare_mountpoint(mountpoint)?;
    let config = config(opts, &eff);
    fuser::Session::new(fs, &abs, &config).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied
            && source.to_string().contains("user_allow_other")
        {
            return MountError::AllowOtherNotPermitted;
        }
        MountError::MountFailed { path: abs, source }
    })
}

/// Mounts `fs` on `mountpoint` and serves it on this thread (and `opts.threads - 1` more) until
/// it is unmounted.
pub fn serve(fs: TreeFs, mountpoint: &Path, opts: &MountOptions) -> Result<(), MountError> {
    serve_with(fs, mountpoint, opts, |_| {})
}

/// [`serve`], running `mounted` on a thread of its own once the mount is live (for work that
/// changes the mount later and tells the kernel through the [`Notify`] it is given).
pub fn serve_with(
    fs: TreeFs,
    mountpoint: &Path,
    opts: &MountOptions,
    mounted: impl FnOnce(Notify) + Send + 'static,
) -> Result<(), MountError> {
    serve_reporting(fs, mountpoint, opts, || {}, mounted)
}

/// [`serve_with`], calling `live` as soon as the kernel has the mount and the watcher (if any)
/// has started, so that whoever waits for the mount learns it first.
pub fn serve_reporting(
    fs: TreeFs,
    mountpoint: &Path,
    opts: &MountOptions,
    live: impl FnOnce() + Send + 'static,
    mounted: impl FnOnce(Notify) + Send + 'static,
) -> Result<(), MountError> {
    let abs = mounts::absolute(mountpoint)?;
    // The watcher must exist before `live` reports the mount (whoever started this process may
    // kill it at any time after that, and a mount without its watcher would stay dead), and
    // starting it blocks the starting thread until the watcher has exec'd (10-15 ms here): so
    // it starts on a thread of its own, first, beside the mount and the first requests, and
    // `live` waits for it. A watcher whose mount never comes sees this process end
    // and finds nothing to unmount.
    let watcher = {
        let (auto, abs) = (opts.auto_unmount.clone(), abs.clone());
        std::thread::Builder::new()
            .name("watcher-start".into())
            .spawn(move || start_watcher(&auto, &abs))?
    };
    let session = session(fs, &abs, opts)?;
    let notify = Notify(session.notifier());
    // Everything after the mount is made runs beside `session.run` below, which must start at
    // once: until it does, every request waits.
    let started = move || {
        if keep_watcher(watcher, &abs) {
            live();
            tracing::info!("serving {}", abs.display());
            mounted(notify);
        }
    };
    // Detached: it ends with the process, which ends when the mount does.
    std::thread::Builder::new()
        .name("after-mount".into())
        .spawn(started)?;
    session.run()?;
    Ok(())
}

/// Tells the kernel that something under a running mount changed.
pub struct Notify(fuser::Notifier);

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

impl Notify {
    /// Drops the kernel's cached attributes and listing of directory `ino`, so that the next
    /// `readdir` asks the server again.
    pub fn directory_changed(&self, ino: u64) -> std::io::Result<()> {
        self.0.inval_inode(fuser::INodeNo(ino), 0, 0)
    }

    /// Drops the kernel's cached entry (positive or negative) for `name` in directory `parent`.
    pub fn entry_changed(&self, parent: u64, name: &[u8]) -> std::io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        self.0
            .inval_entry(fuser::INodeNo(parent), std::ffi::OsStr::from_bytes(name))
    }
}

/// Waits for the watcher's start and keeps it for the life of the process: true when the mount
/// may be reported live (whoever started this process may kill it from then on, and the
/// watcher must exist by then). A watcher that could not start would leave a mount nobody
/// cleans up if this process died: it is unmounted, which ends the server, never reported
/// live (`mount` then fails with the server's log).
fn keep_watcher(
    watcher: std::thread::JoinHandle<Result<Option<WatcherGuard>, MountError>>,
    mountpoint: &Path,
) -> bool {
    let failed = match watcher.join() {
        // None wanted.
        Ok(Ok(None)) => return true,
        Ok(Ok(Some(mut guard))) => {
            // The mount exists: the watcher may work through it now (a prewarm). A watcher
            // that has exited already had nothing to do.
            let _ = std::io::Write::write_all(&mut guard.pipe, MOUNT_IS_LIVE);
            // Its pipe must stay open for as long as this process lives, and no longer.
            std::mem::forget(guard);
            return true;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the thread starting the watcher panicked".to_string(),
    };
    tracing::error!("{failed}; unmounting");
    if let Err(e) = mounts::unmount(mountpoint) {
        tracing::error!("{e}");
    }
    false
}

/// What the server writes into its watcher's pipe once the mount is live.
pub(crate) const MOUNT_IS_LIVE: &[u8] = b"m";

/// Keeps a watcher's pipe open: dropping it (or the process dying) wakes the watcher.
#[derive(Debug)]
struct WatcherGuard {
    pipe: std::io::PipeWriter,
    _child: std::process::Child,
}

fn start_watcher(
    auto: &AutoUnmount,
    mountpoint: &Path,
) -> Result<Option<WatcherGuard>, MountError> {
    let AutoUnmount::Watcher(w) = auto else {
        return Ok(None);
    };
    // Both ends are close-on-exec; only the read end is passed on, as the watcher's stdin.
    let (read, write) = std::io::pipe()?;
    let child = std::process::Command::new(&w.program)
        .args(&w.args)
        .envs(w.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(read)
        // Not the server's stdout: that may be the status pipe of the `mount` that started it,
        // which must see its end when the server exits.
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|source| MountError::MountFailed {
            path: mountpoint.to_path_buf(),
            source,
        })?;
    Ok(Some(WatcherGuard {
        pipe: write,
        _child: child,
    }))
}

/// A mount served by threads of this process; dropping it unmounts.
#[derive(Debug)]
pub struct MountedSession {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    watcher: Option<WatcherGuard>,
}

/// Mounts `fs` on `mountpoint` and serves it from background threads of this process. The
/// mount is live when this returns.
pub fn spawn(
    fs: TreeFs,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<MountedSession, MountError> {
    let abs = mounts::absolute(mountpoint)?;
    let session = session(fs, &abs, opts)?.spawn()?;
    let watcher = start_watcher(&opts.auto_unmount, &abs)?;
    Ok(MountedSession {
        session: Some(session),
        mountpoint: abs,
        watcher,
    })
}

impl MountedSession {
    /// The absolute mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Tells the kernel about changes to this mount; `None` once it is unmounted.
    pub fn notify(&self) -> Option<Notify> {
        self.session.as_ref().map(|s| Notify(s.notifier()))
    }

    /// Unmounts and waits for the server threads to finish.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // fuser's own unmount fails on a busy mount (and with auto_unmount only asks fusermount3
        // to do it later); ours falls back to a lazy unmount, after which the threads see ENODEV.
        if mounts::find_mount(&self.mountpoint)?.is_some() {
            mounts::unmount(&self.mountpoint)?;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !session.guard.is_finished() {
            if std::time::Instant::now() > deadline {
                tracing::warn!(
                    "server threads for {} did not stop",
                    self.mountpoint.display()
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        session.join()?;
        self.watcher = None;
        Ok(())
    }
}

impl Drop for MountedSession {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("unmounting {}: {e}", self.mountpoint.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            dev_fuse: Ok(()),
            root: false,
            fusermount: true,
            user_allow_other: false,
        }
    }

    fn err(h: Host, o: &MountOptions) -> String {
        h.decide(o).unwrap_err().to_string()
    }

    #[test]
    fn each_missing_piece_is_named() {
        let opts = MountOptions::default();
        let fm = MountOptions {
            auto_unmount: AutoUnmount::Fusermount,
            ..MountOptions::default()
        };
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = err(
            Host {
                dev_fuse: Err(missing),
                ..host()
            },
            &opts,
        );
        assert!(
            e.contains("`/dev/fuse` does not exist") && e.contains("modprobe fuse"),
            "{e}"
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = err(
            Host {
                dev_fuse: Err(denied),
                ..host()
            },
            &opts,
        );
        assert!(e.contains("cannot be opened"), "{e}");
        let e = err(
            Host {
                fusermount: false,
                ..host()
            },
            &opts,
        );
        assert!(
            e.contains("install the `fuse3` package"),
            "a user always needs it: {e}"
        );
        let e = err(
            Host {
                fusermount: false,
                root: true,
                ..host()
            },
            &fm,
        );
        assert!(
            e.contains("install the `fuse3` package"),
            "root needs it for its auto-unmount: {e}"
        );
        let o = MountOptions {
            allow_other: true,
            ..MountOptions::default()
        };
        let e = err(host(), &o);
        assert!(e.contains("user_allow_other"), "{e}");
    }

    #[test]
    fn what_is_possible_is_used() {
        // Root mounts directly: no fusermount3 needed unless its auto-unmount is asked for.
        let eff = Host {
            fusermount: false,
            root: true,
            ..host()
        }
        .decide(&MountOptions::default())
        .unwrap();
        assert_eq!(
            eff,
            Effective {
                allow_other: false,
                fusermount_auto_unmount: false
            }
        );
        let c = config(
            &MountOptions {
                threads: 3,
                ..MountOptions::default()
            },
            &eff,
        );
        assert_eq!(
            (c.n_threads, c.clone_fd, c.acl),
            (Some(3), true, SessionACL::Owner)
        );
        assert!(c.mount_options.contains(&MountOption::RO));
        assert!(!c.mount_options.contains(&MountOption::AutoUnmount));
        // A user without user_allow_other gets no fusermount3 auto-unmount rather than an error.
        let fm = MountOptions {
            auto_unmount: AutoUnmount::Fusermount,
            ..MountOptions::default()
        };
        assert!(!host().decide(&fm).unwrap().fusermount_auto_unmount);
        let eff = Host {
            user_allow_other: true,
            ..host()
        }
        .decide(&fm)
        .unwrap();
        assert!(eff.fusermount_auto_unmount);
        let c = config(&fm, &eff);
        assert_eq!(c.acl, SessionACL::RootAndOwner);
        assert!(c.mount_options.contains(&MountOption::AutoUnmount));
    }
}
