//! The built-wheel cache: wheels built from sdists, by the sdist's sha256 and a key naming the
//! interpreter (and the config settings), and the metadata prepared without a build.
//!
//! ```text
//! {cache}/builds/
//! ├── driver-{hash}.py                     the PEP 517 driver (driver.rs)
//! ├── envs/{inputs hash}.dpl               the lock of one set of build requirements (env.rs)
//! ├── wheels/{sha[0:2]}/{sha}/{key}/       one published build: the wheel and its build.log
//! ├── metadata/{sha[0:2]}/{sha}/{key}      METADATA from prepare_metadata_for_build_wheel
//! ├── local/{key}/                         a local project's wheel (editable or built) and
//! │                                        build.log; `key` from local.rs (path, files, mode)
//! ├── logs/{name}-{version}.log            the log of the last failed build of a version
//! └── .tmp-{owner}-…                       builds in progress (scratch dirs, publications)
//! ```
//!
//! A build is published by renaming a finished directory into place: a reader sees a whole
//! entry or none, and a build stopped half-way (failure, Ctrl-C, kill) leaves only an owned
//! temporary that the next command sweeps (`crate::temp`). An entry is never rewritten: when two
//! processes build the same sdist, the first rename wins and the other uses it.
use std::path::{Path, PathBuf};

/// A wheel in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltWheel {
    /// Its path in the cache.
    pub path: PathBuf,
    /// Its file name.
    pub filename: String,
    /// Its sha256, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

impl BuiltWheel {
    fn read(path: PathBuf) -> std::io::Result<Self> {
        let bytes = fs_err::read(&path)?;
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            sha256: crate::hash::sha256_hex(&bytes),
            size: bytes.len() as u64,
            filename,
            path,
        })
    }
}

/// `{cache}/builds`.
#[derive(Clone, Debug)]
pub struct BuildCache {
    root: PathBuf,
}

impl BuildCache {
    /// The build cache at `root` (`Cache::builds_dir`).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `{cache}/builds`: the driver and every temporary live here.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the locks of build requirement sets are kept.
    pub fn envs_dir(&self) -> PathBuf {
        self.root.join("envs")
    }

    /// The kept log of a failed build of `package` (`name-version`).
    pub fn failed_log(&self, package: &str) -> PathBuf {
        self.root.join("logs").join(format!("{package}.log"))
    }

    fn fanned(&self, kind: &str, sha256: &str) -> PathBuf {
        self.root
            .join(kind)
            .join(sha256.get(..2).unwrap_or("xx"))
            .join(sha256)
    }

    /// The entry directory of the build of the sdist `sha256` under `key`.
    fn wheel_dir(&self, sha256: &str, key: &str) -> PathBuf {
        self.fanned("wheels", sha256).join(key)
    }

    /// The wheel built from the sdist `sha256` under `key`, if published.
    pub fn wheel(&self, sha256: &str, key: &str) -> Option<BuiltWheel> {
        Self::wheel_in(&self.wheel_dir(sha256, key))
    }

    /// The entry directory of the local project build `key` (see `local.rs`).
    pub fn local_dir(&self, key: &str) -> PathBuf {
        self.root.join("local").join(key)
    }

    /// The wheel of the local project build `key`, if published.
    pub fn local_wheel(&self, key: &str) -> Option<BuiltWheel> {
        Self::wheel_in(&self.local_dir(key))
    }

    /// Publishes `wheel` (with its `log`) as the local project build `key`; the first
    /// publication wins.
    pub fn publish_local(
        &self,
        key: &str,
        wheel: &Path,
        log: &Path,
    ) -> std::io::Result<BuiltWheel> {
        self.publish_into(&self.local_dir(key), wheel, log)
    }

    fn wheel_in(dir: &Path) -> Option<BuiltWheel> {
        let found = fs_err::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))?;
        BuiltWheel::read(found).ok()
    }

    /// Publishes `wheel` (with the build's `log`) as the build of the sdist `sha256` under
    /// `key`, unless another process published one first (then that one is returned).
    pub fn publish_wheel(
        &self,
        sha256: &str,
        key: &str,
        wheel: &Path,
        log: &Path,
    ) -> std::io::Result<BuiltWheel> {
        self.publish_into(&self.wheel_dir(sha256, key), wheel, log)
    }

    /// Publishes `wheel` and `log` as the entry `dir` by renaming a finished temporary.
    fn publish_into(&self, dir: &Path, wheel: &Path, log: &Path) -> std::io::Result<BuiltWheel> {
        if let Some(parent) = dir.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let tmp = crate::temp::dir_in(&self.root)?;
        let name = wheel.file_name().unwrap_or_default();
        fs_err::copy(wheel, tmp.path().join(name))?;
        fs_err::File::open(tmp.path().join(name))?.sync_all()?;
        if log.is_file() {
            fs_err::copy(log, tmp.path().join("build.log"))?;
        }
        match std::fs::rename(tmp.path(), dir) {
            Ok(()) => {
                // Renamed away: nothing left for the guard to remove.
                let _ = tmp.keep();
            }
            // Another build of the same sdist was published first: it wins.
            Err(_) if dir.is_dir() => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("Failed to publish `{}`: {e}", dir.display()),
                ));
            }
        }
        Self::wheel_in(dir)
            .ok_or_else(|| std::io::Error::other(format!("`{}` holds no wheel", dir.display())))
    }

    /// The METADATA prepared for the sdist `sha256` under `key`, if kept.
    pub fn metadata(&self, sha256: &str, key: &str) -> Option<Vec<u8>> {
        fs_err::read(self.fanned("metadata", sha256).join(key)).ok()
    }

    /// Keeps `bytes` as the METADATA of the sdist `sha256` under `key`.
    pub fn put_metadata(&self, sha256: &str, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.fanned("metadata", sha256);
        fs_err::create_dir_all(&dir)?;
        crate::atomic::write_new_via(&self.root, &dir.join(key), bytes, 0o644)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_is_whole_and_first_wins() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::new(dir.path().join("builds"));
        fs_err::create_dir_all(cache.root()).unwrap();
        let sha = "ab".repeat(32);
        assert_eq!(cache.wheel(&sha, "k"), None);
        let w = dir.path().join("p-1-py3-none-any.whl");
        let log = dir.path().join("log");
        std::fs::write(&w, b"first").unwrap();
        std::fs::write(&log, b"built").unwrap();
        let first = cache.publish_wheel(&sha, "k", &w, &log).unwrap();
        assert_eq!(first.sha256, crate::hash::sha256_hex(b"first"));
        std::fs::write(&w, b"second").unwrap();
        let again = cache.publish_wheel(&sha, "k", &w, &log).unwrap();
        assert_eq!(again, first);
        // No temporaries are left behind.
        let left: Vec<_> = std::fs::read_dir(cache.root())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        cache.put_metadata(&sha, "k", b"Name: p\n").unwrap();
        assert_eq!(cache.metadata(&sha, "k").unwrap(), b"Name: p\n");
    }
}
