//! Core metadata out of distribution files, and the on-disk cache of it.
//!
//! - A wheel's `{name}-{version}.dist-info/METADATA` (through [`super::remote_zip`], from bytes,
//!   a local file or HTTP ranges).
//! - An sdist's `PKG-INFO`, usable only where PEP 643 says its dependencies are static:
//!   `Metadata-Version` 2.2 or later, and `Dynamic` names neither `Requires-Dist` nor
//!   `Requires-Python` (before 2.2, or when either is dynamic, only a build can tell).
//!
//! ```text
//! {cache}/metadata/ab/abcd…   the METADATA (or static PKG-INFO) bytes of the distribution
//!                             file whose sha256 is abcd…; temporaries in {cache}/metadata/
//! ```
//!
//! A file's sha256 names its contents, so an entry never goes stale; entries are parsed again
//! when read, and one that no longer parses is removed and fetched again.
use std::io::Read;
use std::path::{Path, PathBuf};

use super::remote_zip::{self, MAX_MEMBER, Wanted};
use crate::wheel::{MetadataError, WheelMetadata, metadata_headers};

/// How an sdist's archive is packed: the kinds whose `PKG-INFO` can be read here are the kinds
/// that can be built.
pub(super) use crate::build::ArchiveKind as SdistArchive;

/// The top-level `{dir}/PKG-INFO` of an sdist.
pub(super) fn sdist_pkg_info(bytes: &[u8], archive: SdistArchive) -> Result<Vec<u8>, String> {
    match archive {
        SdistArchive::Zip => {
            remote_zip::read_member(&mut { bytes }, Wanted::PkgInfo).map_err(|e| match e {
                remote_zip::MemberError::Zip(z) => z.to_string(),
                remote_zip::MemberError::Read(never) => match never {},
            })
        }
        SdistArchive::TarGz => tar_pkg_info(flate2::read::GzDecoder::new(bytes)),
        SdistArchive::Tar => tar_pkg_info(bytes),
    }
}

fn tar_pkg_info(reader: impl Read) -> Result<Vec<u8>, String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("unreadable tar archive: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?;
        let mut parts = path.components();
        let top = matches!(parts.next(), Some(std::path::Component::Normal(_)));
        let is_pkg_info = parts.next().is_some_and(|c| c.as_os_str() == "PKG-INFO");
        if top && is_pkg_info && parts.next().is_none() {
            let mut out = Vec::new();
            entry
                .take(MAX_MEMBER + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("unreadable tar archive: {e}"))?;
            if out.len() as u64 > MAX_MEMBER {
                return Err(format!("PKG-INFO is larger than {MAX_MEMBER} bytes"));
            }
            return Ok(out);
        }
    }
    Err("no `*/PKG-INFO` in the archive".to_string())
}

/// The metadata of `PKG-INFO` when PEP 643 marks its dependencies static, else `None`.
pub(super) fn static_pkg_info(bytes: &[u8]) -> Result<Option<WheelMetadata>, MetadataError> {
    let metadata = WheelMetadata::parse(bytes)?;
    let version_ok = metadata.metadata_version.as_deref().is_some_and(|v| {
        let mut parts = v.trim().split('.').map(str::parse::<u32>);
        matches!(
            (parts.next(), parts.next()),
            (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (2, 2)
        )
    });
    let dynamic_deps = metadata_headers(bytes)?.iter().any(|(field, value)| {
        field.eq_ignore_ascii_case("Dynamic")
            && (value.eq_ignore_ascii_case("Requires-Dist")
                || value.eq_ignore_ascii_case("Requires-Python"))
    });
    Ok((version_ok && !dynamic_deps).then_some(metadata))
}

/// Core metadata kept by the sha256 of the distribution file it came from.
#[derive(Clone, Debug)]
pub(super) struct MetadataCache {
    dir: Option<PathBuf>,
}

impl MetadataCache {
    pub(super) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn path(dir: &Path, sha256: &str) -> PathBuf {
        dir.join(sha256.get(..2).unwrap_or("xx")).join(sha256)
    }

    /// The cached metadata of the file with `sha256`, if any; an entry that does not parse is
    /// removed.
    pub(super) fn get(&self, sha256: &str) -> Option<WheelMetadata> {
        let path = Self::path(self.dir.as_ref()?, sha256);
        let bytes = fs_err::read(&path).ok()?;
        match WheelMetadata::parse(&bytes) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!("Removing damaged cached metadata `{}`: {e}", path.display());
                let _ = fs_err::remove_file(&path);
                None
            }
        }
    }

    /// Keeps `bytes` (already parsed successfully) as the metadata of the file with `sha256`.
    /// Failing to write only costs a later fetch, so it is a warning.
    pub(super) fn put(&self, sha256: &str, bytes: &[u8]) {
        let Some(dir) = &self.dir else { return };
        let path = Self::path(dir, sha256);
        let written = path
            .parent()
            .map_or(Ok(()), fs_err::create_dir_all)
            // The temporary sits in the root, so that a sweep reads one directory.
            .and_then(|()| crate::atomic::replace_via(dir, &path, bytes));
        if let Err(e) = written {
            tracing::warn!("Could not cache metadata `{}`: {e}", path.display());
        }
    }
}

/// A `.tar.gz` of `(path, contents)` entries, for tests.
#[cfg(test)]
pub(super) fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn pkg_info(version: &str, dynamic: &[&str]) -> String {
        let mut s = format!("Metadata-Version: {version}\nName: foo\nVersion: 1.0\n");
        for d in dynamic {
            s.push_str(&format!("Dynamic: {d}\n"));
        }
        s.push_str("Requires-Dist: bar>=1\n\nlong description\n");
        s
    }

    #[test]
    fn pep_643_static_dependencies() {
        let ok = |v: &str, d: &[&str]| static_pkg_info(pkg_info(v, d).as_bytes()).unwrap();
        let m = ok("2.2", &[]).unwrap();
        assert_eq!(m.requires_dist, ["bar>=1"]);
        assert!(ok("2.4", &["Description", "license"]).is_some());
        assert!(ok("2.10", &[]).is_some());
        assert!(ok("2.1", &[]).is_none());
        assert!(ok("1.0", &[]).is_none());
        assert!(ok("two", &[]).is_none());
        assert!(ok("2.2", &["requires-dist"]).is_none());
        assert!(ok("2.3", &["Requires-Python"]).is_none());
        assert!(static_pkg_info(b"Name: foo\n").is_err());
    }

    #[test]
    fn reads_pkg_info_from_each_archive_kind() {
        let text = pkg_info("2.2", &[]);
        let gz = tar_gz(&[
            ("foo-1.0/setup.py", b""),
            ("foo-1.0/sub/PKG-INFO", b"nested"),
            ("foo-1.0/PKG-INFO", text.as_bytes()),
        ]);
        assert_eq!(
            sdist_pkg_info(&gz, SdistArchive::TarGz).unwrap(),
            text.as_bytes()
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(
            sdist_pkg_info(&plain, SdistArchive::Tar).unwrap(),
            text.as_bytes()
        );
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("foo-1.0/PKG-INFO", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
        let zip = zip.finish().unwrap().into_inner();
        assert_eq!(
            sdist_pkg_info(&zip, SdistArchive::Zip).unwrap(),
            text.as_bytes()
        );
        let e =
            sdist_pkg_info(&tar_gz(&[("foo-1.0/setup.py", b"")]), SdistArchive::TarGz).unwrap_err();
        assert_eq!(e, "no `*/PKG-INFO` in the archive");
        assert!(sdist_pkg_info(b"not gzip", SdistArchive::TarGz).is_err());
        assert_eq!(SdistArchive::of("foo-1.0.TGZ"), Some(SdistArchive::TarGz));
        assert_eq!(SdistArchive::of("foo-1.0.tar.bz2"), None);
    }

    #[test]
    fn cache_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MetadataCache::new(Some(dir.path().to_path_buf()));
        let sha = "ab".repeat(32);
        assert!(cache.get(&sha).is_none());
        cache.put(&sha, b"Name: foo\nVersion: 1.0\n");
        assert_eq!(cache.get(&sha).unwrap().name, "foo");
        let path = MetadataCache::path(dir.path(), &sha);
        fs_err::write(&path, b"garbage").unwrap();
        assert!(cache.get(&sha).is_none());
        assert!(!path.exists());
        // Without a directory nothing is kept.
        let none = MetadataCache::new(None);
        none.put(&sha, b"Name: foo\nVersion: 1.0\n");
        assert!(none.get(&sha).is_none());
    }
}
