//! The interpreter answers cached as JSON under `{cache}/interpreters/`, keyed by the
//! interpreter's path and the size and modification time of the file it runs, so that a later
//! `find` of the same interpreter reads one small file and starts no process.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::interpreter::{Interpreter, InterpreterError, InterpreterInfo};
use crate::hash::ContentHash;

/// Bumped whenever [`InterpreterInfo`] or the cache entry changes shape, so old entries miss.
/// (2: `pip_index_url` added; answers cached before it would say "no pip" for every interpreter.)
const CACHE_FORMAT: u32 = 2;

/// One interpreter answer in `{cache}/interpreters/{blake3 of key path}.json`.
#[derive(Serialize, Deserialize)]
struct CacheEntry {
    format: u32,
    key: CacheKey,
    info: InterpreterInfo,
}

/// What must not change for a cached answer to stay valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CacheKey {
    /// The interpreter path with its directory canonicalized (the file name is kept, so that a
    /// venv's `bin/python` link is not confused with the interpreter it points to).
    path: PathBuf,
    /// Size of the file the path resolves to.
    size: u64,
    /// Modification time (ns since the epoch) of the file the path resolves to.
    mtime_ns: u64,
    /// Modification time of the path itself when it is a symlink (a re-created venv link).
    link_mtime_ns: Option<u64>,
}

fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(super) fn cache_key(path: &Path) -> Result<CacheKey, InterpreterError> {
    let io = |source| InterpreterError::Io {
        path: path.to_path_buf(),
        source,
    };
    let absolute = std::path::absolute(path).map_err(io)?;
    let key_path = match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => fs_err::canonicalize(parent).map_err(io)?.join(name),
        _ => fs_err::canonicalize(&absolute).map_err(io)?,
    };
    let link = fs_err::symlink_metadata(&key_path).map_err(io)?;
    let target = fs_err::metadata(&key_path).map_err(io)?;
    Ok(CacheKey {
        path: key_path,
        size: target.len(),
        mtime_ns: mtime_ns(&target),
        link_mtime_ns: link.file_type().is_symlink().then(|| mtime_ns(&link)),
    })
}

pub(super) fn read_cache(cache_file: &Path, key: &CacheKey) -> Option<Interpreter> {
    let bytes = std::fs::read(cache_file).ok()?;
    let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    if entry.format != CACHE_FORMAT || entry.key != *key {
        return None;
    }
    Interpreter::from_info(key.path.clone(), entry.info).ok()
}

/// Where the answer for `key` is kept: `{cache}/interpreters/{blake3 of key path}.json`.
pub(super) fn cache_file(cache_dir: &Path, key: &CacheKey) -> PathBuf {
    cache_dir.join("interpreters").join(format!(
        "{}.json",
        ContentHash::of(key.path.as_os_str().as_encoded_bytes())
    ))
}

/// Stores the answer; a cache that cannot be written only costs the next `find` a process.
pub(super) fn write_cache(cache_file: &Path, key: CacheKey, info: &InterpreterInfo) {
    let entry = CacheEntry {
        format: CACHE_FORMAT,
        key,
        info: info.clone(),
    };
    let result = (|| -> std::io::Result<()> {
        let dir = cache_file.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let mut tmp = crate::temp::file_in(dir)?;
        tmp.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
        tmp.persist(cache_file).map_err(|e| e.error)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::debug!(
            "Failed to cache the interpreter answer in `{}`: {e}",
            cache_file.display()
        );
    }
}
