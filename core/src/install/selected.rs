//! The lock one interpreter installs from a project's universal `pylock.toml`: the entries whose
//! markers hold for it, each with its best wheel, as a DPL kept in the cache and keyed by the
//! lock's bytes and the interpreter, so an unchanged project reads the choice instead of making
//! it again.
//!
//! ```text
//! <cache>/selected/<blake3(pylock bytes, lock dir, interpreter)>.dpl
//! ```
//!
//! (Interim: the DPL v2 work replaces this with a lookup in a DPL that carries the markers.)
use std::path::{Path, PathBuf};

use super::{InstallError, read_pylock_for};
use crate::dpl::DplFileError;
use crate::python::Interpreter;

/// The v1 DPL of what `dir/pylock.toml` gives `interp`, made once per lock and interpreter.
pub fn selected_lock(
    dir: &Path,
    interp: &Interpreter,
    cache_dir: &Path,
) -> Result<PathBuf, InstallError> {
    let pylock = dir.join("pylock.toml");
    let bytes = fs_err::read(&pylock).map_err(|source| DplFileError::Read {
        path: pylock.clone(),
        source,
    })?;
    let mut key = blake3::Hasher::new();
    key.update(&bytes);
    // What the choice depends on (markers and tags), not the interpreter's path: a venv's
    // python and the one that made the venv choose alike, so a sync's first run and the next
    // share the DPL (and the store hashes the first records in it).
    let markers = format!("{:?}", interp.marker_env());
    for part in [
        dir.as_os_str().as_encoded_bytes(),
        markers.as_bytes(),
        interp.tag().as_bytes(),
    ] {
        // Length-prefixed, so that no two different inputs hash the same stream.
        key.update(&(part.len() as u64).to_le_bytes());
        key.update(part);
    }
    let path = cache_dir
        .join("selected")
        .join(format!("{}.dpl", key.finalize().to_hex()));
    if path.is_file() {
        return Ok(path);
    }
    let mut lock = read_pylock_for(&pylock, interp)?;
    // The DPL lives in the cache, not beside the lock: local wheels are named from `dir`.
    for p in &mut lock.packages {
        if let Some(local) = p.wheel.path.as_mut() {
            *local = dir.join(&*local).to_string_lossy().into_owned();
        }
    }
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    lock.write_dpl(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpl::DplReader;

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// A lock with a Windows-only entry and an entry whose wheel is a local file.
    fn lock(extra: &str) -> String {
        format!(
            r#"
lock-version = "1.0"
created-by = "a test"

[[packages]]
name = "winonly"
version = "1.0"
marker = "sys_platform == 'win32'"
wheels = [{{ name = "winonly-1.0-py3-none-any.whl", url = "https://files.invalid/winonly-1.0-py3-none-any.whl", hashes = {{ sha256 = "{SHA}" }} }}]

[[packages]]
name = "local"
version = "2.0"
wheels = [{{ name = "local-2.0-py3-none-any.whl", path = "wheels/local-2.0-py3-none-any.whl", hashes = {{ sha256 = "{SHA}" }} }}]
{extra}"#
        )
    }

    #[test]
    fn the_choice_is_made_once_per_lock_and_names_local_wheels_from_the_lock() {
        let temp = tempfile::tempdir().unwrap();
        let (dir, cache) = (temp.path().join("project"), temp.path().join("cache"));
        fs_err::create_dir_all(&dir).unwrap();
        let Ok(interp) = Interpreter::find(None, &cache) else {
            crate::testing::skip("no python3: the selection is not tried");
            return;
        };
        fs_err::write(dir.join("pylock.toml"), lock("")).unwrap();
        let first = selected_lock(&dir, &interp, &cache).unwrap();
        assert!(
            first.starts_with(cache.join("selected")),
            "{}",
            first.display()
        );
        let dpl = DplReader::open(&first).unwrap();
        let entries: Vec<_> = dpl.entries().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 1, "only what holds on this machine");
        assert_eq!(entries[0].name(), "local");
        let local = dir.join("wheels/local-2.0-py3-none-any.whl");
        assert_eq!(
            entries[0].wheel().to_owned().path.as_deref(),
            Some(local.to_str().unwrap())
        );
        drop(dpl);
        // The same lock: the same file, not chosen again (a marker left there shows it).
        fs_err::write(&first, b"left as it was").unwrap();
        assert_eq!(selected_lock(&dir, &interp, &cache).unwrap(), first);
        // Another lock: another choice.
        let extra = format!(
            "\n[[packages]]\nname = \"more\"\nversion = \"1.0\"\nwheels = [{{ name = \"more-1.0-py3-none-any.whl\", url = \"https://files.invalid/more-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{SHA}\" }} }}]\n"
        );
        fs_err::write(dir.join("pylock.toml"), lock(&extra)).unwrap();
        let second = selected_lock(&dir, &interp, &cache).unwrap();
        assert_ne!(second, first);
        assert_eq!(DplReader::open(&second).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_or_broken_lock_is_an_error_naming_it() {
        let temp = tempfile::tempdir().unwrap();
        let cache = temp.path().join("cache");
        let Ok(interp) = Interpreter::find(None, &cache) else {
            crate::testing::skip("no python3: the selection is not tried");
            return;
        };
        let err = selected_lock(temp.path(), &interp, &cache).unwrap_err();
        assert!(err.to_string().contains("pylock.toml"), "{err}");
        fs_err::write(temp.path().join("pylock.toml"), "lock-version = [").unwrap();
        let err = selected_lock(temp.path(), &interp, &cache).unwrap_err();
        assert!(err.to_string().contains("pylock.toml"), "{err}");
    }
}
