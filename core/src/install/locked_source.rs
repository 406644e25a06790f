//! A lock made from requirements naming local source (`./p`, `-e ./p`, `name @ file:///p`,
//! `./x.tar.gz`) names that source as PEP 751 `directory` / `archive` entries, with paths
//! relative to the lock's directory, instead of the wheel built from it in this machine's build
//! cache: such a lock installs on another machine, or after the project moved, by building.
use std::path::{Component, Path, PathBuf};

use crate::dpl::{LocalSource, Lock, LockedWheel, UNKNOWN_VERSION, UniversalLock};
use crate::hash::sha256_hex;
use crate::requirements::{BuildKind, BuildReference};
use crate::store::PackageStore;

/// A local source that cannot be named in a lock.
#[derive(Debug, thiserror::Error)]
pub enum LocalSourceError {
    /// The lock's directory or the source could not be read.
    #[error("Failed to read `{path}` to name it in the lock")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Replaces, in `lock`, each package whose wheel is one of `built` (wheel path, source it was
/// built from) by its source: a directory (path relative to `lock_dir`, editable flag; the
/// wheel keeps only its file name) or an archive (its path, sha256 and size as the sdist).
///
/// A directory entry whose built wheel `store` already holds gets that store hash: an install
/// without a builder (`--no-build`) cannot compute the tree's key, and takes it from the lock.
pub fn name_local_sources<'a>(
    lock: &mut Lock,
    built: impl IntoIterator<Item = (&'a Path, &'a BuildReference)>,
    lock_dir: &Path,
    store: &PackageStore,
) -> Result<(), LocalSourceError> {
    let base = fs_err::canonicalize(lock_dir).map_err(read(lock_dir))?;
    for (wheel, from) in built {
        let Some(source) = &from.path else { continue };
        let Some(p) = lock
            .packages
            .iter_mut()
            .find(|p| p.wheel.path.as_deref().map(Path::new) == Some(wheel))
        else {
            continue;
        };
        let named = named_source(source, from, &base)?;
        let filename = p.wheel.filename.clone();
        let stand_in = |sha256| LockedWheel {
            filename,
            url: None,
            path: None,
            sha256,
            size: None,
        };
        match named {
            Named::Directory(local) => {
                if p.store_hash.is_none() {
                    let bytes = fs_err::read(wheel).map_err(read(wheel))?;
                    p.store_hash = store.wheel_object(&sha256_hex(&bytes), &p.wheel.filename);
                }
                p.wheel = stand_in([0; 32]);
                p.sdist = None;
                p.local = Some(local);
            }
            Named::Archive(archive) => {
                p.wheel = stand_in(archive.sha256);
                p.sdist = Some(archive);
                p.local = Some(LocalSource::Archive);
            }
        }
    }
    Ok(())
}

/// [`name_local_sources`] for a universal lock: each entry whose wheel is one of `built` is
/// locked as its source instead (a directory: no wheels; an archive: the archive as its sdist).
pub fn name_universal_local_sources<'a>(
    lock: &mut UniversalLock,
    built: impl IntoIterator<Item = (&'a Path, &'a BuildReference)>,
    lock_dir: &Path,
) -> Result<(), LocalSourceError> {
    let base = fs_err::canonicalize(lock_dir).map_err(read(lock_dir))?;
    for (wheel, from) in built {
        let Some(source) = &from.path else { continue };
        let is_it = |w: &LockedWheel| w.path.as_deref().map(Path::new) == Some(wheel);
        for p in lock
            .packages
            .iter_mut()
            .filter(|p| p.wheels.iter().any(is_it))
        {
            p.wheels.clear();
            match named_source(source, from, &base)? {
                Named::Directory(local) => {
                    p.sdist = None;
                    p.local = Some(local);
                }
                Named::Archive(archive) => {
                    p.sdist = Some(archive);
                    p.local = Some(LocalSource::Archive);
                }
            }
        }
    }
    Ok(())
}

/// How a lock names a local source.
enum Named {
    /// A directory, relative to the lock.
    Directory(LocalSource),
    /// An archive: its path relative to the lock, sha256 and size.
    Archive(LockedWheel),
}

/// `source` (what `from` names) as a lock whose directory is `base` (canonical) names it.
fn named_source(
    source: &Path,
    from: &BuildReference,
    base: &Path,
) -> Result<Named, LocalSourceError> {
    let canonical = fs_err::canonicalize(source).map_err(read(source))?;
    let path = relative_path(&canonical, base);
    Ok(match from.kind {
        BuildKind::Directory => Named::Directory(LocalSource::Directory {
            path,
            editable: from.editable,
        }),
        BuildKind::Archive => {
            let bytes = fs_err::read(&canonical).map_err(read(&canonical))?;
            let sha256: [u8; 32] = {
                use sha2::Digest;
                sha2::Sha256::digest(&bytes).into()
            };
            let archive_name = canonical
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Named::Archive(LockedWheel {
                filename: archive_name,
                url: None,
                path: Some(path),
                sha256,
                size: Some(bytes.len() as u64),
            })
        }
    })
}

/// How the local source `from` (at `source`) counts in a lock's inputs hash: its path relative
/// to `lock_dir`, whether editable, and for a directory the digest of its metadata files
/// (`pyproject.toml`, `setup.py`, `setup.cfg`: what declares its dependencies), for an archive
/// its sha256. Neither absolute paths nor source files count, so the lock stays fresh in another
/// checkout and after a source edit (an install sees those: build.md).
pub fn local_fingerprint(
    source: &Path,
    from: &BuildReference,
    lock_dir: &Path,
) -> Result<String, LocalSourceError> {
    let base = fs_err::canonicalize(lock_dir).map_err(read(lock_dir))?;
    let canonical = fs_err::canonicalize(source).map_err(read(source))?;
    let digest = match from.kind {
        BuildKind::Directory => {
            crate::build::source_fingerprint(&canonical, crate::build::LocalMode::Editable)
                .map_err(read(&canonical))?
        }
        BuildKind::Archive => sha256_hex(&fs_err::read(&canonical).map_err(read(&canonical))?),
    };
    Ok(format!(
        "{} {} {digest}",
        relative_path(&canonical, &base),
        if from.editable { "editable" } else { "built" }
    ))
}

/// The error of reading `path`.
fn read(path: &Path) -> impl FnOnce(std::io::Error) -> LocalSourceError {
    let path = path.to_path_buf();
    move |source| LocalSourceError::Read { path, source }
}

/// Gives each directory entry of `lock` that names no version ([`UNKNOWN_VERSION`], as uv
/// writes them) the static `[project] version` of its tree's `pyproject.toml`, read relative to
/// `lock_dir`; a tree without one (a dynamic version) keeps the stand-in. Its wheel's stand-in
/// name follows.
pub fn directory_versions(lock: &mut Lock, lock_dir: &Path) {
    for p in &mut lock.packages {
        let Some((path, _)) = p.directory() else {
            continue;
        };
        if p.version != UNKNOWN_VERSION {
            continue;
        }
        let Some(version) = static_version(&lock_dir.join(path).join("pyproject.toml")) else {
            continue;
        };
        let stem = crate::names::normalize_name(&p.name).replace('-', "_");
        if p.wheel.filename == format!("{stem}-{UNKNOWN_VERSION}-py3-none-any.whl") {
            p.wheel.filename = format!("{stem}-{version}-py3-none-any.whl");
        }
        p.version = version;
    }
}

/// `[project] version` of the `pyproject.toml` at `path`, when it is there and valid.
fn static_version(path: &Path) -> Option<String> {
    let text = fs_err::read_to_string(path).ok()?;
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    let version = doc.get("project")?.get("version")?.as_str()?;
    crate::dpl::version_components(version).ok()?;
    Some(version.to_owned())
}

/// `target` relative to `base` (both canonical), `/`-separated as PEP 751 writes paths; an
/// absolute path when they share no root (another drive).
pub fn relative_path(target: &Path, base: &Path) -> String {
    let t: Vec<Component<'_>> = target.components().collect();
    let b: Vec<Component<'_>> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return target.to_string_lossy().into_owned();
    }
    let ups = std::iter::repeat_n("..".to_owned(), b.len() - common);
    let downs = t[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let parts: Vec<String> = ups.chain(downs).collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_lock() {
        let rel = |t: &str, b: &str| relative_path(Path::new(t), Path::new(b));
        assert_eq!(rel("/a/b/lib", "/a/b"), "lib");
        assert_eq!(rel("/a/b", "/a/b"), ".");
        assert_eq!(rel("/a/lib", "/a/b/c"), "../../lib");
        assert_eq!(rel("/x/y.tar.gz", "/a"), "../x/y.tar.gz");
    }

    proptest::proptest! {
        /// Joining the lock's directory with the relative path and resolving `..` gives the
        /// target back.
        #[test]
        fn relative_paths_lead_back(
            target in proptest::collection::vec("[a-c]{1,2}", 0..5),
            base in proptest::collection::vec("[a-c]{1,2}", 0..5),
        ) {
            let abs = |parts: &[String]| {
                let mut p = PathBuf::from("/");
                p.extend(parts);
                p
            };
            let (t, b) = (abs(&target), abs(&base));
            let rel = relative_path(&t, &b);
            let mut back = b.clone();
            for part in rel.split('/') {
                match part {
                    ".." => { back.pop(); }
                    "." => {}
                    p => back.push(p),
                }
            }
            proptest::prop_assert_eq!(back, t);
        }
    }
}
