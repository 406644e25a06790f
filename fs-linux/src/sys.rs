//! The few system calls std does not wrap. Each `unsafe` block is one libc call with no
//! memory-safety preconditions beyond valid arguments.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The effective user and group ids of this process.
pub(crate) fn ids() -> (u32, u32) {
    // SAFETY: geteuid/getegid take no arguments, cannot fail and touch no memory of ours.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// True when running as root.
pub(crate) fn is_root() -> bool {
    ids().0 == 0
}

/// Makes the child start a new session: no controlling terminal, its own process group, so
/// closing the terminal or Ctrl-C in it does not reach the server.
pub(crate) fn detach_on_spawn(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls setsid, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `umount2(path, 0)`, or with `detach` `MNT_DETACH`: detach the mount now and free it when
/// the last user is gone. Needs CAP_SYS_ADMIN.
pub(crate) fn umount(path: &Path, detach: bool) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL byte")
    })?;
    let flags = if detach { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `statvfs(path)`: asks the file system itself (FUSE never answers it from a cache), so a
/// mount whose server is gone fails with `ENOTCONN`.
pub(crate) fn statvfs(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL byte")
    })?;
    let mut out = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `out` points at writable memory of the right type; the
    // result is not read.
    let rc = unsafe { libc::statvfs(c.as_ptr(), out.as_mut_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
