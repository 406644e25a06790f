//! Reading `/proc/self/mountinfo`: which file systems are mounted where. The mount code
//! (fs-linux) finds its mounts here, and an install finds that a venv is served by one.
use std::path::{Path, PathBuf};

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
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let source = right.next().unwrap_or("");
            Some(MountEntry {
                mountpoint: path_from_bytes(unescape(mountpoint)),
                fstype: fstype.to_string(),
                source: String::from_utf8_lossy(&unescape(source)).into_owned(),
            })
        })
        .collect()
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// Only Linux has mountinfo; elsewhere this parses test input.
#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every mount visible to this process (none where `/proc/self/mountinfo` does not exist,
/// i.e. off Linux).
pub fn read() -> std::io::Result<Vec<MountEntry>> {
    match fs_err::read_to_string("/proc/self/mountinfo") {
        Ok(text) => Ok(parse_mountinfo(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `path` made absolute as mountinfo spells mount points, without touching its last component
/// (which may be a dead mount, where any `stat` fails): the parent is canonicalized, the name
/// appended.
pub fn mount_point(path: &Path) -> std::io::Result<PathBuf> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if name != ".." => Ok(fs_err::canonicalize(parent)?.join(name)),
        _ => fs_err::canonicalize(&path),
    }
}

/// The dx-py mount at exactly `path` (absolute, as [`mount_point`] makes it), if any (the last
/// one, if stacked).
pub fn dx_py_mount_at(path: &Path) -> std::io::Result<Option<MountEntry>> {
    Ok(read()?
        .into_iter()
        .rev()
        .find(|m| m.is_dx_py() && m.mountpoint == path))
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

    #[cfg(unix)]
    #[test]
    fn mount_points_resolve_the_parent_but_not_the_last_name() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs_err::canonicalize(dir.path()).unwrap().join("real");
        fs_err::create_dir(&real).unwrap();
        fs_err::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        // The last name need not exist (a dead mount answers no stat).
        let got = mount_point(&dir.path().join("link/venv")).unwrap();
        assert_eq!(got, real.join("venv"));
        assert!(mount_point(Path::new("/nonexistent-dx-py/venv")).is_err());
        assert_eq!(dx_py_mount_at(&got).unwrap(), None);
    }

    #[test]
    fn unescape_keeps_plain_backslashes() {
        assert_eq!(unescape("a\\134b"), b"a\\b");
        assert_eq!(unescape("a\\9"), b"a\\9");
        assert_eq!(unescape("end\\04"), b"end\\04");
    }
}
