//! Which store object a wheel became: `{store}/wheels/{wheel sha256}` holds the object's hex
//! name. A lock that names a wheel by its sha256 but records no store object (a fresh lock, a
//! `pylock.toml`) then finds the package without reading or converting the wheel again.
//!
//! The record is a hint, checked on use: it must parse and name an object the store has, whose
//! `.dist-info` directory is the wheel's (name and version, the rule every stored wheel passed).
//! A record that names another package's object (damage, or a file copied between stores) is
//! removed and not followed, so the wheel is converted again and recorded right. It is written
//! without an fsync (a torn record after a crash is simply not found), once per wheel.
use std::io::Write;

use super::PackageStore;
use crate::wheel::{WheelFilename, dir_matches};

/// `{store}/wheels`.
pub(super) const WHEELS_DIR: &str = "wheels";
use crate::hash::ContentHash;

impl PackageStore {
    /// The store object the wheel `filename` whose sha256 is `sha256` (64 lowercase hex digits)
    /// was converted into, if it was, the object is still there and it is a package of that
    /// wheel's name and version.
    pub fn wheel_object(&self, sha256: &str, filename: &str) -> Option<ContentHash> {
        if !is_sha256_hex(sha256) {
            return None;
        }
        let record = self.root().join(WHEELS_DIR).join(sha256);
        let text = std::fs::read_to_string(&record).ok()?;
        let hash: ContentHash = text.trim().parse().ok()?;
        if !self.contains(&hash) {
            return None;
        }
        let wheel = WheelFilename::parse(filename).ok()?;
        // O(1): the object's header only. A damaged object fails here or later, when read.
        let dist_info = self.get(&hash).ok()?.reader().dist_info().to_string();
        if !dir_matches(&dist_info, ".dist-info", &wheel) {
            tracing::warn!(
                "The store's record `{}` says `{filename}` became object {hash}, which holds `{dist_info}`; ignoring and removing it",
                record.display()
            );
            // Best effort (a read-only store keeps it): the next conversion records the right one.
            let _ = std::fs::remove_file(&record);
            return None;
        }
        Some(hash)
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
        let p1 = "p-1-py3-none-any.whl";
        assert_eq!(store.wheel_object(&sha, p1), None);
        let object = ContentHash::from_bytes([7; 32]);
        // A record of an object the store lacks is not followed.
        store.record_wheel(&sha, &object);
        assert_eq!(store.wheel_object(&sha, p1), None);
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
        assert_eq!(store.wheel_object(&other, p1), Some(real));
        // The first record wins; garbage and unsafe names are refused.
        store.record_wheel(&other, &object);
        assert_eq!(store.wheel_object(&other, p1), Some(real));
        std::fs::write(store.root().join("wheels").join(&sha), b"not a hash").unwrap();
        assert_eq!(store.wheel_object(&sha, p1), None);
        assert_eq!(store.wheel_object("../../etc/passwd", p1), None);
        store.record_wheel(&"AB".repeat(32), &real);
        assert!(!store.root().join("wheels").join("AB".repeat(32)).exists());
    }

    #[test]
    fn a_record_naming_another_packages_object_is_removed_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let object = |name: &str, version: &str| {
            let mut w = crate::dxpkg::DxpkgWriter::new(
                name,
                version,
                &format!("{name}-{version}.dist-info"),
            );
            w.add(
                crate::dxpkg::Scheme::SitePackages,
                &format!("{name}.py"),
                crate::dxpkg::EntryKind::File,
                0o644,
                b"x".to_vec(),
            );
            store.store(&w.finish().unwrap()).unwrap()
        };
        let (alpha, beta) = (object("alpha", "1.0"), object("beta", "2.0"));
        let sha = "ef".repeat(32);
        // The record says alpha's wheel became beta's object.
        store.record_wheel(&sha, &beta);
        let record = store.root().join("wheels").join(&sha);
        assert!(record.is_file());
        assert_eq!(store.wheel_object(&sha, "alpha-1.0-py3-none-any.whl"), None);
        assert!(!record.exists(), "the wrong record is removed");
        // Another version of the same name is another package too.
        store.record_wheel(&sha, &alpha);
        assert_eq!(store.wheel_object(&sha, "alpha-1.1-py3-none-any.whl"), None);
        // The right record is followed, spelled as wheel names spell it.
        store.record_wheel(&sha, &alpha);
        assert_eq!(
            store.wheel_object(&sha, "Alpha-1.0.0-py3-none-any.whl"),
            Some(alpha)
        );
        assert_eq!(store.wheel_object(&sha, "not a wheel name"), None);
    }
}
