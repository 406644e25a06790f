//! Finding dx-py mounts in `/proc/self/mountinfo`, unmounting them, and recognising dead ones
//! (the server was killed: every access fails with `ENOTCONN`).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve::{MountError, find_in_path};

pub use dx_py_core::mountinfo::{MountEntry, parse_mountinfo};

fn mountinfo() -> Result<Vec<MountEntry>, MountError> {
    Ok(dx_py_core::mountinfo::read()?)
}

/// Every dx-py mount visible to this process.
pub fn list_mounts() -> Result<Vec<MountEntry>, MountError> {
    Ok(mountinfo()?
        .into_iter()
        .filter(MountEntry::is_dx_py)
        .collect())
}

/// The dx-py mount at exactly `path` (absolute), if any (the last one, if stacked).
pub fn find_mount(path: &Path) -> Result<Option<MountEntry>, MountError> {
    Ok(list_mounts()?
        .into_iter()
        .rev()
        .find(|m| m.mountpoint == path))
}

/// `path` as mountinfo spells a mount point there (see [`dx_py_core::mountinfo::mount_point`]).
pub fn absolute(path: &Path) -> Result<PathBuf, MountError> {
    Ok(dx_py_core::mountinfo::mount_point(path)?)
}

/// True when `path` is a FUSE mount whose server is gone: `statfs` (or `stat`) fails with
/// `ENOTCONN`. `stat` alone is not enough: the kernel answers it from its attribute cache for
/// as long as the TTL given by the dead server.
pub fn is_dead_mount(path: &Path) -> bool {
    let enotconn = |e: std::io::Error| e.raw_os_error() == Some(libc::ENOTCONN);
    std::fs::metadata(path).err().is_some_and(enotconn)
        || crate::sys::statvfs(path).err().is_some_and(enotconn)
}

/// Unmounts the dx-py mount at `path`. Root calls umount2 itself, others run `fusermount3 -u`;
/// if that fails (the mount is busy) it falls back to a lazy unmount (`MNT_DETACH`,
/// `fusermount3 -u -z`), which detaches it now and frees it when the last open file closes.
/// Waits until it is gone from mountinfo. The server process notices and exits by itself;
/// nothing is killed.
pub fn unmount(path: &Path) -> Result<(), MountError> {
    let abs = absolute(path)?;
    if find_mount(&abs)?.is_none() {
        return Err(MountError::NotMounted(abs));
    }
    let fusermount = find_in_path("fusermount3");
    let run = |lazy: bool| -> Result<(), UnmountAttempt> {
        let Some(bin) = &fusermount else {
            return Err(UnmountAttempt::NoFusermount);
        };
        let mut cmd = Command::new(bin);
        cmd.arg("-u");
        if lazy {
            cmd.arg("-z");
        }
        let out = cmd
            .arg("--")
            .arg(&abs)
            .output()
            .map_err(UnmountAttempt::Spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(UnmountAttempt::Fusermount {
                lazy,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    };
    let root = crate::sys::is_root();
    let mut attempts = Vec::new();
    for lazy in [false, true] {
        let result = if root {
            crate::sys::umount(&abs, lazy).map_err(|source| UnmountAttempt::Umount { lazy, source })
        } else {
            run(lazy)
        };
        match result {
            Ok(()) => return wait_gone(&abs, Duration::from_secs(5)),
            Err(e) => attempts.push(e),
        }
    }
    Err(MountError::UnmountFailed {
        path: abs,
        attempts,
    })
}

/// One way of unmounting that did not work.
#[derive(Debug, thiserror::Error)]
pub enum UnmountAttempt {
    /// Not root, and no `fusermount3` to ask.
    #[error("fusermount3 is not on PATH")]
    NoFusermount,
    /// `fusermount3` could not be started.
    #[error("fusermount3: {0}")]
    Spawn(#[source] std::io::Error),
    /// `fusermount3 -u` (with `lazy`, `-z`) failed; its standard error.
    #[error("fusermount3 -u{}: {stderr}", if *lazy { " -z" } else { "" })]
    Fusermount {
        /// Whether it was the lazy unmount.
        lazy: bool,
        /// What it printed.
        stderr: String,
    },
    /// `umount2` failed (as root).
    #[error("umount2({}): {source}", if *lazy { "MNT_DETACH" } else { "0" })]
    Umount {
        /// Whether it was the lazy unmount (`MNT_DETACH`).
        lazy: bool,
        /// The error from the kernel.
        #[source]
        source: std::io::Error,
    },
    /// The unmount call succeeded, but the mount stayed.
    #[error("still mounted after unmounting")]
    StillMounted,
}

impl UnmountAttempt {
    /// The attempts for an error message, in order.
    pub(crate) fn join(attempts: &[Self]) -> String {
        attempts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Waits until no dx-py mount is at `abs` any more.
pub fn wait_gone(abs: &Path, timeout: Duration) -> Result<(), MountError> {
    let deadline = Instant::now() + timeout;
    while find_mount(abs)?.is_some() {
        if Instant::now() > deadline {
            return Err(MountError::UnmountFailed {
                path: abs.to_path_buf(),
                attempts: vec![UnmountAttempt::StillMounted],
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
