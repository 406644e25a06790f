//! One install at a time per venv. An install that makes a venv removes it again when it fails
//! (so no half-made venv is taken for a real one); without this lock a second install into the
//! same path could adopt that venv in between and be left with nothing.
//!
//! The lock of a venv is the empty file `{cache}/locks/venvs/{blake3(path)[..32]}`, one per venv
//! path (never shared: an install that builds an sdist installs its build environment while it
//! holds its own venv's lock, and a shared file would make it wait for itself). `cache prune`,
//! which runs while no install does (the cache lock), removes them.
use std::fs::File;
use std::path::Path;

/// The (unlocked) lock of the venv at `venv`; lock it with `.write()` for the install.
pub(crate) fn venv_lock(cache_dir: &Path, venv: &Path) -> std::io::Result<fd_lock::RwLock<File>> {
    let path = std::path::absolute(venv).unwrap_or_else(|_| venv.to_path_buf());
    let mut name = crate::hash::ContentHash::of(path.as_os_str().as_encoded_bytes()).to_hex();
    name.truncate(32);
    let dir = venv_locks_dir(cache_dir);
    let file = dir.join(name);
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&file)
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs_err::create_dir_all(&dir)?;
            open()?
        }
        other => other?,
    };
    Ok(fd_lock::RwLock::new(file))
}

/// Where the venvs' lock files are.
pub fn venv_locks_dir(cache_dir: &Path) -> std::path::PathBuf {
    cache_dir.join("locks").join("venvs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_venv_one_file_another_venv_another() {
        let cache = tempfile::tempdir().unwrap();
        let mut a = venv_lock(cache.path(), Path::new("/x/venv")).unwrap();
        let guard = a.write().unwrap();
        // The same venv: the same file, which is held.
        let mut again = venv_lock(cache.path(), Path::new("/x/venv")).unwrap();
        assert!(again.try_write().is_err(), "the same venv waits");
        drop(guard);
        assert!(again.try_write().is_ok());
        let _held = again.write().unwrap();
        let mut other = venv_lock(cache.path(), Path::new("/x/other")).unwrap();
        assert!(other.try_write().is_ok(), "another venv does not wait");
    }
}
