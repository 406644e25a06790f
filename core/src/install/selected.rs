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
