//! A cache-wide reader/writer lock: installs hold it shared, `cache clean` exclusive, so cleaning
//! never removes a layout or object out from under a running install.
use std::fs::File;
use std::path::Path;

use fd_lock::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The lock file `{cache}/.lock`.
#[derive(Debug)]
pub struct CacheLock {
    lock: RwLock<File>,
}

impl CacheLock {
    /// Opens (creating) the lock file; does not lock yet.
    pub fn open(cache_dir: &Path) -> std::io::Result<Self> {
        fs_err::create_dir_all(cache_dir)?;
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(cache_dir.join(".lock"))?
            .into_parts()
            .0;
        Ok(Self {
            lock: RwLock::new(file),
        })
    }

    /// Blocks until no cleaner holds the lock.
    pub fn shared(&mut self) -> std::io::Result<RwLockReadGuard<'_, File>> {
        self.lock.read()
    }

    /// Blocks until no install holds the lock.
    pub fn exclusive(&mut self) -> std::io::Result<RwLockWriteGuard<'_, File>> {
        self.lock.write()
    }
}
