//! Atomic file publication: write a temporary file beside the target, fsync, then rename or link.
use std::io::Write;
use std::path::Path;

fn temp_beside(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    set_mode(tmp.path(), mode)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Publishes `bytes` at `path` unless a file is already there (immutable objects): the existing
/// file wins and is never rewritten. True when this call published the file.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<bool> {
    persist_new(temp_beside(path, bytes, mode)?, path)
}

/// Links the finished (synced) `tmp` at `path` unless a file is already there: the existing
/// file wins and is never rewritten, and `tmp` is removed either way. True when `tmp` became
/// the file (false: another writer's was there).
pub(crate) fn persist_new(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<bool> {
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(std::io::Error::new(
            e.error.kind(),
            format!("{}: {}", path.display(), e.error),
        )),
    }
}

/// Publishes `bytes` at `path`, replacing what is there in one rename (readers see old or new).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_beside(path, bytes, 0o644)?;
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
