//! Unpacking an object into its shared, read-only directory tree.
use std::path::{Component, Path, PathBuf};

use super::{MappedPackage, StoreError};
use crate::dxpkg::{EntryKind, FileEntry, Scheme};
use crate::hash::ContentHash;

/// The subdirectory of an unpacked tree that holds `scheme`.
pub(crate) fn scheme_dir(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::SitePackages => "site-packages",
        Scheme::Scripts => "bin",
        Scheme::Headers => "headers",
        Scheme::Data => "data",
    }
}

/// `path` as a relative path of normal components only, or `None` when it could leave its root.
pub(crate) fn safe_relative(path: &str) -> Option<PathBuf> {
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        match Path::new(part).components().next() {
            Some(Component::Normal(_)) if Path::new(part).components().count() == 1 => {
                out.push(part)
            }
            _ => return None,
        }
    }
    Some(out)
}

/// True when a symlink at `link_path` (relative to its scheme root) pointing at `target` stays
/// inside that root.
pub(crate) fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty()
        || target.starts_with('/')
        || target.contains('\0')
        || target.contains('\\')
    {
        return false;
    }
    let mut depth: Vec<&str> = link_path.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            p => depth.push(p),
        }
    }
    true
}

/// Writes every entry of `package` under a temporary directory beside `dest`, then renames it
/// into place. If another process finished first, its tree is kept and ours dropped.
pub(crate) fn unpack(
    package: &MappedPackage,
    hash: &ContentHash,
    dest: &Path,
) -> Result<(), StoreError> {
    let parent = dest.parent().expect("unpacked dirs have a parent");
    fs_err::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-unpack-")
        .tempdir_in(parent)?;
    let unsafe_path = |path: &str| StoreError::UnsafePath {
        hash: *hash,
        path: path.to_string(),
    };
    let reader = package.reader();
    let mut made_dirs = std::collections::HashSet::new();
    for entry in reader.entries() {
        let entry = entry.map_err(|source| StoreError::InvalidObject {
            path: package.path().to_path_buf(),
            source,
        })?;
        let rel = safe_relative(entry.path).ok_or_else(|| unsafe_path(entry.path))?;
        let target = tmp.path().join(scheme_dir(entry.scheme)).join(&rel);
        let dir = target.parent().expect("joined paths have a parent");
        if made_dirs.insert(dir.to_path_buf()) {
            fs_err::create_dir_all(dir)?;
        }
        if entry.kind == EntryKind::Symlink {
            let link = std::str::from_utf8(entry.data).map_err(|_| unsafe_path(entry.path))?;
            if !link_stays_inside(entry.path, link) {
                return Err(unsafe_path(entry.path));
            }
        }
        // Checked against the object's name as it is written: a damaged object unpacks nothing.
        package.entry_data(&entry)?;
        write_entry(&entry, &target)?;
    }
    // Console and GUI script launchers, unless the wheel ships a script of the same name.
    for (name, bytes) in package.launchers()? {
        let rel = safe_relative(&name).ok_or_else(|| unsafe_path(&name))?;
        let bin = tmp.path().join("bin");
        let target = bin.join(rel);
        if target.exists() {
            continue;
        }
        fs_err::create_dir_all(&bin)?;
        create_file(&target, &bytes, 0o555)?;
    }
    let tmp_path = tmp.keep();
    match std::fs::rename(&tmp_path, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            // Another writer published the same tree first; ours is identical, drop it.
            let _ = remove_tree(&tmp_path);
            Ok(())
        }
        Err(e) => {
            let _ = remove_tree(&tmp_path);
            Err(e.into())
        }
    }
}

/// Writes `entry` (its path and link target already checked) at `target`.
fn write_entry(entry: &FileEntry<'_>, target: &Path) -> Result<(), StoreError> {
    match entry.kind {
        EntryKind::File => {
            let data = if entry.scheme == Scheme::Scripts {
                crate::scripts::rewrite_shebang(entry.data)
            } else {
                None
            };
            let exec = entry.mode & 0o111 != 0 || entry.scheme == Scheme::Scripts;
            let mode = if exec { 0o555 } else { 0o444 };
            create_file(target, data.as_deref().unwrap_or(entry.data), mode)?;
        }
        EntryKind::Symlink => {
            // The target was checked to stay inside the package (and to be UTF-8).
            let link = std::str::from_utf8(entry.data).unwrap_or_default();
            #[cfg(unix)]
            std::os::unix::fs::symlink(link, target)?;
            #[cfg(not(unix))]
            {
                let dir = target.parent().expect("joined paths have a parent");
                fs_err::copy(dir.join(link), target)?;
            }
        }
    }
    Ok(())
}

/// Creates `path` (which must not exist yet) holding `bytes` with permission bits `mode`, given
/// at creation: no separate chmod, which costs a path lookup and an inode update per file (a
/// large package unpacks thousands), unless the umask took bits away.
#[cfg(unix)]
fn create_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let with_path = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!("failed to write `{}`: {e}", path.display()),
        )
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(with_path)?;
    file.write_all(bytes).map_err(with_path)?;
    if mode & umask() != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(with_path)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    fs_err::write(path, bytes)?;
    crate::atomic::set_mode(path, mode)
}

/// The process umask, read once (Linux reports it in `/proc/self/status`; reading it with
/// `umask(2)` means setting it, which races other threads). Unknown: all bits, so callers
/// always set the mode themselves.
#[cfg(unix)]
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            })
            .unwrap_or(0o777)
    })
}

/// Removes a tree whose files may be read-only.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    // Read-only files in a writable directory can be unlinked; nothing to chmod on unix.
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "a\0b",
            "a/",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad:?}");
        }
        assert_eq!(safe_relative("a/b.py"), Some(PathBuf::from("a/b.py")));
    }

    #[test]
    fn escaping_links_are_refused() {
        assert!(link_stays_inside("pkg/lib/a.so", "b.so"));
        assert!(link_stays_inside("pkg/lib/a.so", "../other/b.so"));
        assert!(!link_stays_inside("pkg/a.so", "../../etc/passwd"));
        assert!(!link_stays_inside("a.so", "/etc/passwd"));
        assert!(!link_stays_inside("a.so", ".."));
    }
}
