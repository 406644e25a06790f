//! A directory tier (`file://…` or a path): what `store push` writes for a web server to serve,
//! and readable as a tier itself. Files are published atomically: a temporary file in the
//! directory's root, linked into place without replacing an existing file.
use std::path::{Path, PathBuf};

use super::RemoteError;

pub(super) struct DirTier {
    root: PathBuf,
}

/// Files are readable by everyone (a web server's worker runs as another user), as are the
/// directories made for them.
const FILE_MODE: u32 = 0o644;

impl DirTier {
    pub(super) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |p, c| p.join(c))
    }

    pub(super) fn location(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn io_error(&self, key: &str, source: std::io::Error) -> RemoteError {
        RemoteError::Io {
            url: self.location(key),
            source,
        }
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match fs_err::read(self.path(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(key, e)),
        }
    }

    pub(super) fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match fs_err::File::open(self.path(key)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error(key, e)),
        };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(range.start))
            .and_then(|_| {
                file.take(range.end.saturating_sub(range.start))
                    .read_to_end(&mut bytes)
            })
            .map_err(|e| self.io_error(key, e))?;
        Ok(Some(bytes))
    }

    pub(super) fn exists(&self, key: &str) -> bool {
        self.path(key).is_file()
    }

    pub(super) fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        let path = self.path(key);
        let dir = path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)
            .and_then(|()| crate::atomic::write_new_via(&self.root, &path, bytes, FILE_MODE))
            .map(drop)
            .map_err(|e| self.io_error(key, e))
    }
}
