//! Atomic file publication: write an owned temporary file ([`crate::temp`]) on the target's
//! filesystem, fsync, then rename or link.
use std::io::Write;
use std::path::{Path, PathBuf};

/// The mode a published file gets.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Exactly these bits (store objects: read-only whatever the umask).
    Exact(u32),
    /// 0o666 less the umask, as any file a user's program creates (project files such as
    /// locks; tempfile alone would leave them 0o600).
    Umask,
}

/// A synced, owned temporary file ([`crate::temp`]) holding `bytes` in `dir` (the target's
/// directory unless a caller keeps its temporaries in one place, so that sweeping them reads
/// one directory), for publishing at `path`.
fn temp_in(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    mode: Mode,
) -> std::io::Result<tempfile::NamedTempFile> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = crate::temp::builder();
    #[cfg(unix)]
    if let Mode::Umask = mode {
        use std::os::unix::fs::PermissionsExt;
        // Given to open(2), which takes the umask away.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(naming("create a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(naming("write", path))?;
    if let Mode::Exact(mode) = mode {
        set_mode(tmp.path(), mode)?;
    }
    tmp.as_file().sync_all().map_err(naming("write", path))?;
    Ok(tmp)
}

/// An I/O error with the path it concerns, for the errors fs-err cannot name: writes to a
/// temporary file (through `Write`, or fsync), whose bare `No space left on device` would
/// otherwise reach the user without saying where.
#[derive(Debug, thiserror::Error)]
#[error("Failed to {action} `{}`", path.display())]
struct PathIoError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// A writer whose errors name the file it writes ([`naming`]): for the temporary files that are
/// streamed into, so that a full disk says where, while errors of whatever feeds it stay as
/// they are.
pub(crate) struct Named<'a, W> {
    inner: W,
    path: &'a Path,
}

impl<'a, W: Write> Named<'a, W> {
    /// `inner`, writing the file at `path`.
    pub(crate) fn new(inner: W, path: &'a Path) -> Self {
        Self { inner, path }
    }
}

impl<W: Write> Write for Named<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(naming("write", self.path))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner
            .write_all(buf)
            .map_err(naming("write", self.path))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(naming("write", self.path))
    }
}

/// Wraps an I/O error so that its message names `path`: `Failed to {action} `{path}``, caused by
/// the original error. The kind is kept, so callers can still match on it.
pub(crate) fn naming<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> std::io::Error + 'a {
    move |source| {
        std::io::Error::new(
            source.kind(),
            PathIoError {
                action,
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

/// Publishes `bytes` at `path` unless a file is already there (immutable objects): the existing
/// file wins and is never rewritten. True when this call published the file.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<bool> {
    write_new_via(parent(path), path, bytes, mode)
}

/// [`write_new`] with the temporary file in `tmp_dir` (on the same filesystem as `path`).
pub(crate) fn write_new_via(
    tmp_dir: &Path,
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<bool> {
    persist_new(temp_in(tmp_dir, path, bytes, Mode::Exact(mode))?, path)
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
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

/// Publishes `bytes` at `path`, replacing what is there in one rename (readers see old or new),
/// then (on Unix) fsyncs the directory so that the rename itself is durable. The file's mode
/// is 0o666 less the umask, as for any file the user's programs write.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_via(parent(path), path, bytes)
}

/// [`replace`] with the temporary file in `tmp_dir` (on the same filesystem as `path`).
pub fn replace_via(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_in(tmp_dir, path, bytes, Mode::Umask)?;
    tmp.persist(path)
        .map_err(|e| naming("replace", path)(e.error))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::File::open(dir)?.sync_all()?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the umask lets through of 0o666, found by creating a file the ordinary way.
    #[cfg(unix)]
    fn umask_mode(dir: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.join("probe");
        fs_err::write(&probe, b"").unwrap();
        fs_err::metadata(&probe).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn replaced_files_get_the_umask_mode_and_objects_their_own() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        let lock = dir.path().join("pylock.toml");
        replace(&lock, b"one").unwrap();
        assert_eq!(mode(&lock), umask_mode(dir.path()));
        replace(&lock, b"two").unwrap();
        assert_eq!(fs_err::read(&lock).unwrap(), b"two");
        assert_eq!(mode(&lock), umask_mode(dir.path()));
        let object = dir.path().join("object");
        write_new(&object, b"x", 0o444).unwrap();
        assert_eq!(mode(&object), 0o444);
        // Only the published files are left.
        let mut names: Vec<_> = fs_err::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["object", "probe", "pylock.toml"]);
    }

    #[test]
    fn a_failed_write_names_its_path_and_keeps_its_kind() {
        let full = std::io::Error::from_raw_os_error(28);
        let kind = full.kind();
        let err = naming("write", Path::new("/cache/store/.tmp-x"))(full);
        assert_eq!(err.kind(), kind);
        assert_eq!(err.to_string(), "Failed to write `/cache/store/.tmp-x`");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("os error 28"), "{source}");
        // A directory that does not exist: the error says which.
        let missing = Path::new("/nonexistent-dx-py-dir/f");
        let err = replace(missing, b"x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dx-py-dir"), "{err}");
    }
}
