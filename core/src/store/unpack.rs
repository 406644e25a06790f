//! Unpacking an object into its shared, read-only directory tree.
use std::path::{Component, Path, PathBuf};

use super::{MappedPackage, StoreError};
use crate::dxpkg::{EntryKind, Scheme};
use crate::hash::ContentHash;

/// The subdirectory of an unpacked tree that holds `scheme`.
pub(crate) fn scheme_dir(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::SitePackages => "site-packages",
        Scheme::Scripts => "bin",
        Scheme::Headers => "headers",
        Scheme::Data => "data",
    }
}

/// `path` as a relative path of normal components only, or `None` when it could leave its root.
pub(crate) fn safe_relative(path: &str) -> Option<PathBuf> {
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        match Path::new(part).components().next() {
            Some(Component::Normal(_)) if Path::new(part).components().count() == 1 => {
                out.push(part)
            }
            _ => return None,
        }
    }
    Some(out)
}

/// True when a symlink at `link_path` (relative to its scheme root) pointing at `target` stays
/// inside that root.
pub(crate) fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty()
        || target.starts_with('/')
        || target.contains('\0')
        || target.contains('\\')
    {
        return false;
    }
    let mut depth: Vec<&str> = link_path.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            p => depth.push(p),
        }
    }
    true
}

/// What one path of an unpacked tree holds.
pub(crate) enum Content<'a> {
    /// A regular file: its bytes and permission bits.
    File(std::borrow::Cow<'a, [u8]>, u32),
    /// A symlink and its (checked) target.
    Symlink(&'a str),
}

/// Every path of the unpacked tree of `package` (relative to the tree's root) and what it
/// holds, from bytes checked against the object's name: the files in entry order, then the
/// console and GUI script launchers the package does not ship itself.
pub(crate) fn plan<'a>(
    package: &'a MappedPackage,
    hash: &ContentHash,
) -> Result<Vec<(PathBuf, Content<'a>)>, StoreError> {
    let unsafe_path = |path: &str| StoreError::UnsafePath {
        hash: *hash,
        path: path.to_string(),
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for entry in package.reader().entries() {
        let entry = entry.map_err(|source| StoreError::InvalidObject {
            path: package.path().to_path_buf(),
            source,
        })?;
        let rel = safe_relative(entry.path).ok_or_else(|| unsafe_path(entry.path))?;
        let rel = Path::new(scheme_dir(entry.scheme)).join(rel);
        // Checked against the object's name before anything is written: a damaged object
        // unpacks nothing.
        let data = package.entry_data(&entry)?;
        let content = match entry.kind {
            EntryKind::File => {
                let rewritten = (entry.scheme == Scheme::Scripts)
                    .then(|| crate::scripts::rewrite_shebang(data))
                    .flatten();
                let exec = entry.mode & 0o111 != 0 || entry.scheme == Scheme::Scripts;
                let bytes = rewritten.map_or(std::borrow::Cow::Borrowed(data), Into::into);
                Content::File(bytes, if exec { 0o555 } else { 0o444 })
            }
            EntryKind::Symlink => {
                let link = std::str::from_utf8(data).map_err(|_| unsafe_path(entry.path))?;
                if !link_stays_inside(entry.path, link) {
                    return Err(unsafe_path(entry.path));
                }
                Content::Symlink(link)
            }
        };
        seen.insert(rel.clone());
        out.push((rel, content));
    }
    // Console and GUI script launchers, unless the wheel ships a script of the same name.
    for (name, bytes) in package.launchers()? {
        let rel = Path::new("bin").join(safe_relative(&name).ok_or_else(|| unsafe_path(&name))?);
        if seen.insert(rel.clone()) {
            out.push((rel, Content::File(bytes.into(), 0o555)));
        }
    }
    Ok(out)
}

/// Writes every entry of `package` under a temporary directory beside `dest`, records each
/// file's stat in its manifest ([`MANIFEST`]), then renames it into place. If another process
/// finished first, its tree is kept and ours dropped. True when the tree at `dest` is ours.
pub(crate) fn unpack(
    package: &MappedPackage,
    hash: &ContentHash,
    dest: &Path,
) -> Result<bool, StoreError> {
    let parent = dest.parent().expect("unpacked dirs have a parent");
    fs_err::create_dir_all(parent)?;
    let planned = plan(package, hash)?;
    let tmp = crate::temp::dir_in(parent)?;
    let mut made_dirs = std::collections::HashSet::new();
    let mut manifest = Manifest::default();
    for (rel, content) in planned {
        let target = tmp.path().join(&rel);
        let dir = target.parent().expect("joined paths have a parent");
        if made_dirs.insert(dir.to_path_buf()) {
            fs_err::create_dir_all(dir)?;
        }
        match content {
            Content::File(bytes, mode) => {
                let meta = create_file(&target, &bytes, mode)?;
                manifest.push(&rel, &meta);
            }
            Content::Symlink(link) => write_symlink(link, &target)?,
        }
    }
    // Not synced, like the files it describes: a torn manifest reads as none, and the copy is
    // made again.
    create_file(&tmp.path().join(MANIFEST), &manifest.encode(), 0o444)?;
    let tmp_path = tmp.keep();
    match std::fs::rename(&tmp_path, dest) {
        Ok(()) => Ok(true),
        Err(_) if dest.is_dir() => {
            // Another writer published the same tree first; ours is identical, drop it.
            let _ = remove_tree(&tmp_path);
            Ok(false)
        }
        Err(e) => {
            let _ = remove_tree(&tmp_path);
            Err(e.into())
        }
    }
}

/// The file in an unpacked tree (beside its scheme directories, so no layout links it) that
/// records each regular file's size, mtime and inode as unpacking left them.
pub(crate) const MANIFEST: &str = ".dx-unpacked";

/// Paths of the unpacked tree at `root` whose stat differs from its manifest (a file edited
/// through a layout's hardlink, replaced or removed), or `None` when the tree has no readable
/// manifest. One `lstat` per file: cheap next to building a layout, which stats them too.
pub(crate) fn changed_since_unpacked(root: &Path) -> Option<Vec<PathBuf>> {
    let bytes = std::fs::read(root.join(MANIFEST)).ok()?;
    let records = Manifest::decode(&bytes)?;
    Some(
        records
            .into_iter()
            .filter(|(rel, want)| {
                std::fs::symlink_metadata(root.join(rel))
                    .map_or(true, |meta| Stat::of(&meta) != *want)
            })
            .map(|(rel, _)| rel)
            .collect(),
    )
}

/// Records the stat of every regular file of the unpacked tree at `root` (paths relative to
/// it) in its manifest again, after the tree was mended in place.
pub(crate) fn rewrite_manifest<'a>(
    root: &Path,
    files: impl IntoIterator<Item = &'a Path>,
) -> Result<(), StoreError> {
    let mut manifest = Manifest::default();
    for rel in files {
        manifest.push(rel, &fs_err::symlink_metadata(root.join(rel))?);
    }
    let path = root.join(MANIFEST);
    if path.exists() {
        crate::atomic::set_mode(&path, 0o644)?;
    }
    fs_err::write(&path, manifest.encode())?;
    crate::atomic::set_mode(&path, 0o444)?;
    Ok(())
}

/// What the manifest records of a file: what an edit, a replacement or a truncation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    size: u64,
    mtime_ns: i64,
    ino: u64,
}

impl Stat {
    #[cfg(unix)]
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        Self {
            size: meta.len(),
            mtime_ns,
            ino: 0,
        }
    }
}

/// The manifest's records; encoded as `DXUNPACK` + version (u32) + count (u32), then per file
/// size (u64), mtime_ns (i64), inode (u64), path length (u32), path (UTF-8), little-endian.
#[derive(Default)]
pub(crate) struct Manifest(Vec<(PathBuf, Stat)>);

const MANIFEST_MAGIC: &[u8; 8] = b"DXUNPACK";

impl Manifest {
    pub(super) fn push(&mut self, rel: &Path, meta: &std::fs::Metadata) {
        self.0.push((rel.to_path_buf(), Stat::of(meta)));
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = MANIFEST_MAGIC.to_vec();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
        for (rel, st) in &self.0 {
            let path = rel.to_string_lossy();
            out.extend_from_slice(&st.size.to_le_bytes());
            out.extend_from_slice(&st.mtime_ns.to_le_bytes());
            out.extend_from_slice(&st.ino.to_le_bytes());
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
        }
        out
    }

    /// The records, or `None` for anything but a well-formed manifest of version 1.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<(PathBuf, Stat)>> {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let s = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(s)
        };
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        if take(8)? != MANIFEST_MAGIC || take(4)? != 1u32.to_le_bytes() {
            return None;
        }
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut out = Vec::with_capacity(count.min(1 << 20) as usize);
        for _ in 0..count {
            let size = u64_of(take(8)?);
            let mtime_ns = u64_of(take(8)?) as i64;
            let ino = u64_of(take(8)?);
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let path = std::str::from_utf8(take(len)?).ok()?;
            out.push((
                safe_relative(path)?,
                Stat {
                    size,
                    mtime_ns,
                    ino,
                },
            ));
        }
        (at == bytes.len()).then_some(out)
    }
}

/// Creates the (checked) symlink `link` at `target`; a copy of what it names where symlinks
/// are not available.
pub(super) fn write_symlink(link: &str, target: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    std::os::unix::fs::symlink(link, target)?;
    #[cfg(not(unix))]
    {
        let dir = target.parent().expect("joined paths have a parent");
        fs_err::copy(dir.join(link), target)?;
    }
    Ok(())
}

/// Creates `path` (which must not exist yet) holding `bytes` with permission bits `mode`
/// ([`create_new`]). Returns the file's metadata once written (`fstat`: no second path lookup).
#[cfg(unix)]
pub(super) fn create_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<std::fs::Metadata> {
    use std::io::Write;
    let mut file = create_new(path, mode)?;
    file.write_all(bytes).map_err(naming(path))?;
    file.metadata().map_err(naming(path))
}

/// The error `e` met writing `path`, naming it.
#[cfg(unix)]
fn naming(path: &Path) -> impl Fn(std::io::Error) -> std::io::Error + '_ {
    move |e| {
        std::io::Error::new(
            e.kind(),
            format!("failed to write `{}`: {e}", path.display()),
        )
    }
}

/// Creates `path` (which must not exist yet) with permission bits `mode`, given at creation:
/// no separate chmod, which costs a path lookup and an inode update per file (a large package
/// unpacks thousands), unless the umask took bits away.
#[cfg(unix)]
pub(super) fn create_new(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(naming(path))?;
    if mode & umask() != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(naming(path))?;
    }
    Ok(file)
}

/// Creates `path` (which must not exist yet) for writing. The mode is not applied: only
/// writing objects once ([`super::split`]) uses this, and Windows stores keep their objects
/// full (docs/design/store-one-copy.md).
#[cfg(not(unix))]
pub(super) fn create_new(path: &Path, _mode: u32) -> std::io::Result<std::fs::File> {
    Ok(fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .into_parts()
        .0)
}

#[cfg(not(unix))]
pub(super) fn create_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<std::fs::Metadata> {
    fs_err::write(path, bytes)?;
    crate::atomic::set_mode(path, mode)?;
    fs_err::metadata(path)
}

/// The process umask, read once (Linux reports it in `/proc/self/status`; reading it with
/// `umask(2)` means setting it, which races other threads). Unknown: all bits, so callers
/// always set the mode themselves.
#[cfg(unix)]
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            })
            .unwrap_or(0o777)
    })
}

/// Removes a tree whose files may be read-only.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    // Read-only files in a writable directory can be unlinked; nothing to chmod on unix.
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "a\0b",
            "a/",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad:?}");
        }
        assert_eq!(safe_relative("a/b.py"), Some(PathBuf::from("a/b.py")));
    }

    #[test]
    fn escaping_links_are_refused() {
        assert!(link_stays_inside("pkg/lib/a.so", "b.so"));
        assert!(link_stays_inside("pkg/lib/a.so", "../other/b.so"));
        assert!(!link_stays_inside("pkg/a.so", "../../etc/passwd"));
        assert!(!link_stays_inside("a.so", "/etc/passwd"));
        assert!(!link_stays_inside("a.so", ".."));
    }
}
