//! Which store object a wheel became: `{store}/wheels/{wheel sha256}` holds the object's hex
//! name. A lock that names a wheel by its sha256 but records no store object (a fresh lock, a
//! `pylock.toml`) then finds the package without reading or converting the wheel again.
//!
//! The record is a hint, checked on use: it must parse and name an object the store has. It is
//! written without an fsync (a torn record after a crash is simply not found), once per wheel.
use std::io::Write;

use super::PackageStore;

/// `{store}/wheels`.
pub(super) const WHEELS_DIR: &str = "wheels";
use crate::hash::ContentHash;

impl PackageStore {
    /// The store object the wheel whose sha256 is `sha256` (64 lowercase hex digits) was
    /// converted into, if it was and the object is still there.
    pub fn wheel_object(&self, sha256: &str) -> Option<ContentHash> {
        if !is_sha256_hex(sha256) {
            return None;
        }
        let text = std::fs::read_to_string(self.root().join(WHEELS_DIR).join(sha256)).ok()?;
        let hash: ContentHash = text.trim().parse().ok()?;
        self.contains(&hash).then_some(hash)
    }

    /// Records that the wheel whose sha256 is `sha256` became `object`. A record already there
    /// is kept; failing to write one (a read-only store) is only a debug line: it is a hint.
    pub fn record_wheel(&self, sha256: &str, object: &ContentHash) {
        if !is_sha256_hex(sha256) {
            return;
        }
        let dir = self.root().join(WHEELS_DIR);
        let write = || -> std::io::Result<()> {
            fs_err::create_dir_all(&dir)?;
            let mut tmp = crate::temp::file_in(&dir)?;
            tmp.write_all(object.to_hex().as_bytes())?;
            match tmp.persist_noclobber(dir.join(sha256)) {
                Ok(_) => Ok(()),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e.error),
            }
        };
        if let Err(e) = write() {
            tracing::debug!("recording wheel {sha256}: {e}");
        }
    }
}

/// 64 lowercase hex digits: a sha256 as locks spell it, and a safe file name.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_wheel_finds_its_object_while_the_object_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let sha = "ab".repeat(32);
        assert_eq!(store.wheel_object(&sha), None);
        let object = ContentHash::from_bytes([7; 32]);
        // A record of an object the store lacks is not followed.
        store.record_wheel(&sha, &object);
        assert_eq!(store.wheel_object(&sha), None);
        let mut w = crate::dxpkg::DxpkgWriter::new("p", "1", "p-1.dist-info");
        w.add(
            crate::dxpkg::Scheme::SitePackages,
            "p.py",
            crate::dxpkg::EntryKind::File,
            0o644,
            b"x".to_vec(),
        );
        let real = store.store(&w.finish().unwrap()).unwrap();
        let other = "cd".repeat(32);
        store.record_wheel(&other, &real);
        assert_eq!(store.wheel_object(&other), Some(real));
        // The first record wins; garbage and unsafe names are refused.
        store.record_wheel(&other, &object);
        assert_eq!(store.wheel_object(&other), Some(real));
        std::fs::write(store.root().join("wheels").join(&sha), b"not a hash").unwrap();
        assert_eq!(store.wheel_object(&sha), None);
        assert_eq!(store.wheel_object("../../etc/passwd"), None);
        store.record_wheel(&"AB".repeat(32), &real);
        assert!(!store.root().join("wheels").join("AB".repeat(32)).exists());
    }
}
