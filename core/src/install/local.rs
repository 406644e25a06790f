//! A lock plus a local wheel (a project built editable or not): the set a project's venv holds.
//!
//! The project's own lock names its dependencies; the project itself is installed from a wheel
//! built from its tree (`crate::build::Builder::local`). The two are joined into one DPL, kept
//! next to the built wheel and named by the lock's bytes:
//!
//! ```text
//! {cache}/builds/local/{key}/
//! ├── proj-0.1-0.editable-py3-none-any.whl
//! ├── build.log
//! └── lock-{blake3(lock bytes)[..16]}.dpl   the lock's packages + the wheel above
//! ```
//!
//! The wheel is then stored and linked like any other: its store hash is part of the layout's
//! key, so the warm path of an unchanged project is one lookup and one symlink. What decides
//! whether this DPL is still right is only the key (path and build inputs) and the lock, both
//! read cheaply: a sync of an unchanged project builds nothing.
use std::path::{Path, PathBuf};

use crate::build::{BuildCache, BuiltWheel};
use crate::dpl::{DplFileError, DplReader, LockedPackage, LockedWheel};
use crate::wheel::WheelFilename;

use super::InstallError;

/// The DPL of a lock joined with a local wheel, kept under the wheel's build entry.
#[derive(Debug)]
pub struct JoinedLock {
    lock: PathBuf,
    bytes: Vec<u8>,
    path: PathBuf,
}

impl JoinedLock {
    /// The joined DPL of the lock at `lock` and the local build `key` (made or not).
    pub fn new(lock: &Path, builds: &BuildCache, key: &str) -> std::io::Result<Self> {
        let bytes = fs_err::read(lock)?;
        let path = builds
            .local_dir(key)
            .join(format!("lock-{}.dpl", &blake3::hash(&bytes).to_hex()[..16]));
        Ok(Self {
            lock: lock.to_path_buf(),
            bytes,
            path,
        })
    }

    /// Where it is (or goes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it was made before: then nothing needs building.
    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// Makes it: the lock's packages (less one of the wheel's name: the local tree wins over
    /// a dependency naming the project) and `wheel` of the project `name` (as it spells it).
    pub fn write(&self, name: &str, wheel: &BuiltWheel) -> Result<(), InstallError> {
        let reader = DplReader::from_bytes(self.bytes.as_slice()).map_err(|source| {
            DplFileError::Invalid {
                path: self.lock.clone(),
                source,
            }
        })?;
        let mut joined = reader.to_lock()?;
        let package = locked_local(name, wheel)?;
        let name = crate::names::normalize_name(&package.name);
        joined
            .packages
            .retain(|p| crate::names::normalize_name(&p.name) != name);
        joined.packages.push(package);
        joined.write_dpl(&self.path)?;
        Ok(())
    }
}

/// The lock entry of the built wheel `wheel` of `name`, versioned by its file name and found by
/// its absolute path.
fn locked_local(name: &str, wheel: &BuiltWheel) -> Result<LockedPackage, InstallError> {
    let parsed = WheelFilename::parse(&wheel.filename).map_err(|e| InstallError::Wheel {
        filename: wheel.filename.clone(),
        source: Box::new(e.into()),
    })?;
    let mut sha256 = [0u8; 32];
    data_encoding::HEXLOWER
        .decode_mut(wheel.sha256.as_bytes(), &mut sha256)
        .map_err(|_| InstallError::HashMismatch {
            name: parsed.name.to_string(),
            filename: wheel.filename.clone(),
            expected: "64 hex digits".to_owned(),
            actual: wheel.sha256.clone(),
        })?;
    Ok(LockedPackage {
        name: name.to_owned(),
        version: parsed.version.to_string(),
        marker: None,
        requires_python: None,
        index_url: None,
        extras: Vec::new(),
        extras_bitmap: 0,
        wheel: LockedWheel {
            filename: wheel.filename.clone(),
            url: None,
            path: Some(wheel.path.to_string_lossy().into_owned()),
            sha256,
            size: Some(wheel.size),
        },
        sdist: None,
        local: None,
        store_hash: None,
        dependencies: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpl::Lock;

    fn wheel_file(dir: &Path, filename: &str, bytes: &[u8]) -> BuiltWheel {
        let path = dir.join(filename);
        fs_err::write(&path, bytes).unwrap();
        BuiltWheel {
            sha256: crate::hash::sha256_hex(bytes),
            size: bytes.len() as u64,
            filename: filename.to_owned(),
            path,
        }
    }

    #[test]
    fn the_joined_lock_adds_the_wheel_replaces_its_name_and_follows_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let builds = BuildCache::new(dir.path().join("builds"));
        fs_err::create_dir_all(builds.local_dir("k")).unwrap();
        let dep = wheel_file(dir.path(), "dep-1.0-py3-none-any.whl", b"dep");
        let stale = wheel_file(dir.path(), "my_proj-0.0-py3-none-any.whl", b"old");
        let mut lock = Lock::default();
        lock.packages.push(locked_local("dep", &dep).unwrap());
        lock.packages.push(locked_local("My.Proj", &stale).unwrap());
        let lock_path = dir.path().join("dx-py.dpl");
        lock.write_dpl(&lock_path).unwrap();

        let joined = JoinedLock::new(&lock_path, &builds, "k").unwrap();
        assert!(!joined.exists());
        let built = wheel_file(
            dir.path(),
            "my_proj-0.1-0.editable-py3-none-any.whl",
            b"new",
        );
        joined.write("my-proj", &built).unwrap();
        assert!(joined.exists());
        let read = DplReader::open(joined.path()).unwrap().to_lock().unwrap();
        let names: Vec<_> = read
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(names, [("dep", "1.0"), ("my-proj", "0.1")]);
        let own = read.get("my-proj").unwrap();
        assert_eq!(
            own.wheel.path.as_deref(),
            Some(&*built.path.to_string_lossy())
        );
        assert_eq!(
            crate::hash::sha256_hex(b"new"),
            data_encoding::HEXLOWER.encode(&own.wheel.sha256)
        );

        // Another lock (the project's dependencies changed) is another joined lock.
        lock.packages.remove(1);
        lock.write_dpl(&lock_path).unwrap();
        let again = JoinedLock::new(&lock_path, &builds, "k").unwrap();
        assert_ne!(again.path(), joined.path());
        assert!(!again.exists());
    }
}
