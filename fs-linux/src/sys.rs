//! The few system calls std does not wrap, through rustix's safe wrappers (the one `pre_exec`
//! hook std makes unsafe lives in `dx_py_core::sys`).
use std::path::Path;
use std::process::Command;

/// The effective user and group ids of this process.
pub(crate) fn ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// True when running as root.
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Makes the child start a new session: no controlling terminal, its own process group, so
/// closing the terminal or Ctrl-C in it does not reach the server.
pub(crate) fn detach_on_spawn(cmd: &mut Command) {
    dx_py_core::sys::detach_on_spawn(cmd);
}

/// `umount2(path, 0)`, or with `detach` `MNT_DETACH`: detach the mount now and free it when
/// the last user is gone. Needs CAP_SYS_ADMIN.
pub(crate) fn umount(path: &Path, detach: bool) -> std::io::Result<()> {
    use rustix::mount::UnmountFlags;
    let flags = if detach {
        UnmountFlags::DETACH
    } else {
        UnmountFlags::empty()
    };
    Ok(rustix::mount::unmount(path, flags)?)
}

/// `statvfs(path)`: asks the file system itself (FUSE never answers it from a cache), so a
/// mount whose server is gone fails with `ENOTCONN`.
pub(crate) fn statvfs(path: &Path) -> std::io::Result<()> {
    rustix::fs::statvfs(path)?;
    Ok(())
}
