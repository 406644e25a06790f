//! Finding dx-py mounts in `/proc/self/mountinfo`, unmounting them, and recognising dead ones
//! (the server was killed: every access fails with `ENOTCONN`).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve::{MountError, find_in_path};

/// One line of `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// File system type, e.g. `fuse.dx-py`.
    pub fstype: String,
    /// Mount source, e.g. `dx-py`.
    pub source: String,
}

impl MountEntry {
    /// True for mounts made by dx-py: type `fuse.dx-py`, or `fuse` with source `dx-py`.
    pub fn is_dx_py(&self) -> bool {
        self.fstype == "fuse.dx-py" || (self.fstype.starts_with("fuse") && self.source == "dx-py")
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    use std::os::unix::ffi::OsStringExt;
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let source = right.next().unwrap_or("");
            Some(MountEntry {
                mountpoint: PathBuf::from(std::ffi::OsString::from_vec(unescape(mountpoint))),
                fstype: fstype.to_string(),
                source: String::from_utf8_lossy(&unescape(source)).into_owned(),
            })
        })
        .collect()
}

fn mountinfo() -> Result<Vec<MountEntry>, MountError> {
    Ok(parse_mountinfo(&fs_err::read_to_string(
        "/proc/self/mountinfo",
    )?))
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

/// `path` made absolute without touching its last component (which may be a dead mount, where
/// any `stat` fails): the parent is canonicalized, the name appended.
pub fn absolute(path: &Path) -> Result<PathBuf, MountError> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if name != ".." => Ok(fs_err::canonicalize(parent)?.join(name)),
        _ => Ok(fs_err::canonicalize(&path)?),
    }
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
    let run = |lazy: bool| -> Result<(), String> {
        let Some(bin) = &fusermount else {
            return Err("fusermount3 is not on PATH".to_string());
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
            .map_err(|e| format!("fusermount3: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "fusermount3 -u: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    let root = crate::sys::is_root();
    let mut detail = Vec::new();
    for lazy in [false, true] {
        let result = if root {
            crate::sys::umount(&abs, lazy)
                .map_err(|e| format!("umount2({}): {e}", if lazy { "MNT_DETACH" } else { "0" }))
        } else {
            run(lazy)
        };
        match result {
            Ok(()) => return wait_gone(&abs, Duration::from_secs(5)),
            Err(e) => detail.push(e),
        }
    }
    Err(MountError::UnmountFailed {
        path: abs,
        detail: detail.join("; "),
    })
}

/// Waits until no dx-py mount is at `abs` any more.
pub(crate) fn wait_gone(abs: &Path, timeout: Duration) -> Result<(), MountError> {
    let deadline = Instant::now() + timeout;
    while find_mount(abs)?.is_some() {
        if Instant::now() > deadline {
            return Err(MountError::UnmountFailed {
                path: abs.to_path_buf(),
                detail: "still mounted after unmounting".to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
98 22 0:52 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:60 - fuse.dx-py dx-py ro,user_id=0,group_id=0
99 22 0:53 / /mnt/x ro,nosuid master:2 - fuse dx-py ro,user_id=0
garbage line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].mountpoint, PathBuf::from("/tmp/a b"));
        assert_eq!(m[1].fstype, "fuse.dx-py");
        assert!(m[1].is_dx_py() && m[2].is_dx_py() && !m[0].is_dx_py());
    }

    #[test]
    fn unescape_keeps_plain_backslashes() {
        assert_eq!(unescape("a\\134b"), b"a\\b");
        assert_eq!(unescape("a\\9"), b"a\\9");
        assert_eq!(unescape("end\\04"), b"end\\04");
    }
}
