//! Atomic file publication: write an owned temporary file ([`crate::temp`]) on the target's
//! filesystem, fsync, then rename or link.
use std::io::Write;
use std::path::Path;

/// A synced temporary file holding `bytes` in `dir` (the target's directory unless a caller
/// keeps its temporaries in one place, so that sweeping them reads one directory).
fn temp_in(dir: &Path, bytes: &[u8], mode: u32) -> std::io::Result<tempfile::NamedTempFile> {
    let mut tmp = crate::temp::file_in(dir)?;
    tmp.write_all(bytes)?;
    set_mode(tmp.path(), mode)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Publishes `bytes` at `path` unless a file is already there (immutable objects): the existing
/// file wins and is never rewritten.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_new_via(parent(path), path, bytes, mode)
}

/// [`write_new`] with the temporary file in `tmp_dir` (on the same filesystem as `path`).
pub(crate) fn write_new_via(
    tmp_dir: &Path,
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    persist_new(temp_in(tmp_dir, bytes, mode)?, path)
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Links the finished (synced) `tmp` at `path` unless a file is already there: the existing
/// file wins and is never rewritten, and `tmp` is removed either way.
pub(crate) fn persist_new(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(std::io::Error::new(
            e.error.kind(),
            format!("{}: {}", path.display(), e.error),
        )),
    }
}

/// Publishes `bytes` at `path`, replacing what is there in one rename (readers see old or new).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_via(parent(path), path, bytes)
}

/// [`replace`] with the temporary file in `tmp_dir` (on the same filesystem as `path`).
pub fn replace_via(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_in(tmp_dir, bytes, 0o644)?;
    tmp.persist(path).map_err(|e| {
        std::io::Error::new(e.error.kind(), format!("{}: {}", path.display(), e.error))
    })?;
    Ok(())
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let mut perms = fs_err::metadata(path)?.permissions();
    perms.set_readonly(mode & 0o200 == 0);
    fs_err::set_permissions(path, perms)
}
