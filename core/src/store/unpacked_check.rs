//! Checking an unpacked copy against its object, and mending it in place.
//!
//! Layouts hardlink the unpacked copy's files, and root ignores their read-only mode: a user who
//! edits a file Python reports under a layout edits the copy that every layout of that package
//! shares. The object is the truth (checked whole against its name first); the copy must hold
//! exactly what unpacking it writes. Mending rewrites a changed file *in place*, so that every
//! layout linking that inode is mended with it.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::unpack::{self, Content};
use super::{PackageStore, StoreError};
use crate::hash::ContentHash;

/// One way an unpacked copy differs from its object (paths relative to the copy's root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnpackedDamage {
    /// A file or link of the package is missing.
    Missing(PathBuf),
    /// Something is there that the package does not hold.
    Extra(PathBuf),
    /// A file's bytes or mode differ.
    Changed(PathBuf),
    /// A file is a directory or a link, or the other way round, or a link points elsewhere.
    WrongKind(PathBuf),
}

impl UnpackedDamage {
    /// The path concerned, relative to the unpacked copy.
    pub fn path(&self) -> &Path {
        match self {
            Self::Missing(p) | Self::Extra(p) | Self::Changed(p) | Self::WrongKind(p) => p,
        }
    }
}

/// What one path of an unpacked copy holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    File { bytes: Vec<u8>, mode: u32 },
    Link(String),
    Dir,
}

impl PackageStore {
    /// Compares the unpacked copy of `hash` (if there is one) with the object, whose bytes are
    /// checked against its name as they are read. An empty list means the copy is exactly what
    /// unpacking the object writes; a missing copy is not damage (it is made on first use).
    pub fn check_unpacked(&self, hash: &ContentHash) -> Result<Vec<UnpackedDamage>, StoreError> {
        let dir = self.unpacked_path(hash);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let want = self.wanted(hash)?;
        let mut damage = Vec::new();
        let mut seen = std::collections::HashSet::new();
        walk(&dir, Path::new(""), &mut |rel, meta| {
            if rel == Path::new(unpack::MANIFEST) {
                return false;
            }
            seen.insert(rel.to_path_buf());
            let path = dir.join(rel);
            let Some(w) = want.get(rel) else {
                damage.push(UnpackedDamage::Extra(rel.to_path_buf()));
                return false;
            };
            let kind_ok = match w {
                Want::Dir => meta.is_dir(),
                Want::Link(target) => {
                    meta.file_type().is_symlink()
                        && std::fs::read_link(&path).is_ok_and(|t| t == Path::new(target))
                }
                Want::File { .. } => meta.is_file(),
            };
            if !kind_ok {
                damage.push(UnpackedDamage::WrongKind(rel.to_path_buf()));
                return false;
            }
            if let Want::File { bytes, mode } = w
                && (std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice())
                    || !mode_matches(meta, *mode))
            {
                damage.push(UnpackedDamage::Changed(rel.to_path_buf()));
            }
            meta.is_dir()
        })?;
        for rel in want.keys() {
            if !seen.contains(rel) {
                damage.push(UnpackedDamage::Missing(rel.clone()));
            }
        }
        damage.sort_by(|a, b| a.path().cmp(b.path()));
        Ok(damage)
    }

    /// Mends `damage` (from [`PackageStore::check_unpacked`]) in the unpacked copy of `hash`
    /// from the object: changed files are rewritten in place (same inode, so the layouts that
    /// hardlink them are mended too), missing ones created, extra ones removed, wrong kinds
    /// replaced (a new inode: layouts that linked the old one need rebuilding).
    pub fn repair_unpacked(
        &self,
        hash: &ContentHash,
        damage: &[UnpackedDamage],
    ) -> Result<(), StoreError> {
        let dir = self.unpacked_path(hash);
        let want = self.wanted(hash)?;
        // Deepest paths first for removals, shallowest first for creations.
        let mut removals: Vec<&Path> = damage
            .iter()
            .filter(|d| matches!(d, UnpackedDamage::Extra(_) | UnpackedDamage::WrongKind(_)))
            .map(UnpackedDamage::path)
            .collect();
        removals.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for rel in removals {
            remove_any(&dir.join(rel))?;
        }
        let mut fixes: Vec<&Path> = damage
            .iter()
            .filter(|d| !matches!(d, UnpackedDamage::Extra(_)))
            .map(UnpackedDamage::path)
            .collect();
        fixes.sort_by_key(|p| p.components().count());
        for rel in fixes {
            let path = dir.join(rel);
            match want.get(rel) {
                Some(Want::Dir) => fs_err::create_dir_all(&path)?,
                Some(Want::Link(target)) => {
                    #[cfg(unix)]
                    fs_err::os::unix::fs::symlink(target, &path)?;
                    #[cfg(not(unix))]
                    fs_err::copy(path.parent().unwrap_or(&dir).join(target), &path)?;
                }
                Some(Want::File { bytes, mode }) => rewrite_in_place(&path, bytes, *mode)?,
                None => {}
            }
        }
        // The copy's stats changed with the mending: record them, so the copy is used as it is.
        let files = want
            .iter()
            .filter(|(_, w)| matches!(w, Want::File { .. }))
            .map(|(rel, _)| rel.as_path());
        unpack::rewrite_manifest(&dir, files)
    }

    /// Every path the unpacked copy of `hash` must hold (directories included), from the
    /// object's checked bytes: what [`unpack::plan`] writes.
    fn wanted(&self, hash: &ContentHash) -> Result<BTreeMap<PathBuf, Want>, StoreError> {
        let package = self.get(hash)?;
        let mut want = BTreeMap::new();
        for (rel, content) in unpack::plan(&package, hash)? {
            let mut dir = rel.parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                want.insert(d.to_path_buf(), Want::Dir);
                dir = d.parent();
            }
            let w = match content {
                Content::File(bytes, mode) => Want::File {
                    bytes: bytes.into_owned(),
                    mode,
                },
                Content::Symlink(link) => Want::Link(link.to_string()),
            };
            want.insert(rel, w);
        }
        Ok(want)
    }
}

/// Visits every entry below `root` (paths relative to it) in no particular order; `visit`
/// returns whether to descend into a directory.
fn walk(
    root: &Path,
    rel: &Path,
    visit: &mut dyn FnMut(&Path, &std::fs::Metadata) -> bool,
) -> Result<(), StoreError> {
    for e in fs_err::read_dir(root.join(rel))? {
        let e = e?;
        let child = rel.join(e.file_name());
        let meta = fs_err::symlink_metadata(e.path())?;
        if visit(&child, &meta) {
            walk(root, &child, visit)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_matches(meta: &std::fs::Metadata, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777 == mode
}

#[cfg(not(unix))]
fn mode_matches(meta: &std::fs::Metadata, mode: u32) -> bool {
    meta.permissions().readonly() == (mode & 0o200 == 0)
}

/// Writes `bytes` into the existing file at `path` (or a new one), keeping its inode, then gives
/// it `mode`.
fn rewrite_in_place(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    if path.exists() {
        crate::atomic::set_mode(path, 0o644)?;
    }
    fs_err::write(path, bytes)?;
    crate::atomic::set_mode(path, mode)?;
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => super::unpack::remove_tree(path)?,
        Ok(_) => fs_err::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}
