//! Pointing a venv at a layout: one `site-packages` symlink plus one symlink per launcher.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{Installed, LayoutError, ProjectHash};

/// The venv marker file recording the installed layout and its launchers.
pub(crate) const MARKER_NAME: &str = ".dx-py-layout";

#[cfg(not(windows))]
const BIN_DIR: &str = "bin";
#[cfg(windows)]
const BIN_DIR: &str = "Scripts";

/// `{venv}/.dx-py-layout`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub(crate) format: u32,
    pub(crate) project_hash: String,
    pub(crate) layout: PathBuf,
    pub(crate) launchers: Vec<String>,
}

/// The venv's `site-packages` path for `python`.
pub(crate) fn site_packages_path(venv: &Path, python: (u8, u8)) -> PathBuf {
    if cfg!(windows) {
        venv.join("Lib").join("site-packages")
    } else {
        venv.join("lib")
            .join(format!("python{}.{}", python.0, python.1))
            .join("site-packages")
    }
}

/// Interpreter links and activation scripts belong to the venv, never to a layout.
fn is_protected(name: &str) -> bool {
    name.starts_with("python") || name.starts_with("activate")
}

/// A name for a temporary entry beside `path`, unique across threads and processes.
fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.dx-py-{}-{n}", std::process::id()))
}

pub(crate) fn install(
    layouts_root: &Path,
    layout: &Path,
    hash: &ProjectHash,
    python: (u8, u8),
    venv: &Path,
) -> Result<Installed, LayoutError> {
    fs_err::create_dir_all(venv)?;
    let mut lock = VenvLock::open(venv)?;
    let _guard = lock.lock(venv)?;

    let site_packages = site_packages_path(venv, python);
    if let Some(parent) = site_packages.parent() {
        fs_err::create_dir_all(parent)?;
    }
    point_at(&layout.join("site-packages"), &site_packages, true)?;

    let bin = venv.join(BIN_DIR);
    let layout_bin = layout.join("bin");
    let mut launchers = Vec::new();
    match std::fs::read_dir(&layout_bin) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(LayoutError::fs("read", &layout_bin))?;
                match entry.file_name().into_string() {
                    Ok(name) if !is_protected(&name) => launchers.push(name),
                    Ok(_) => {}
                    Err(name) => {
                        tracing::warn!("Skipping launcher with a non-UTF-8 name {name:?}");
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LayoutError::fs("read", &layout_bin)(e)),
    }
    launchers.sort();
    if !launchers.is_empty() {
        fs_err::create_dir_all(&bin)?;
    }
    for name in &launchers {
        let link = bin.join(name);
        if let Err(e) = point_at(&layout_bin.join(name), &link, false) {
            tracing::warn!("Skipping launcher `{}`: {e}", link.display());
        }
    }

    let marker_path = venv.join(MARKER_NAME);
    if let Some(old) = read_marker(&marker_path) {
        for name in old.launchers {
            if is_protected(&name) || launchers.binary_search(&name).is_ok() {
                continue;
            }
            // Remove only what still points into the layout cache: a file the user put there
            // under the same name stays.
            let link = bin.join(&name);
            if std::fs::read_link(&link).is_ok_and(|t| t.starts_with(layouts_root)) {
                fs_err::remove_file(&link)?;
            }
        }
    }
    let marker = Marker {
        format: 1,
        project_hash: hash.to_hex(),
        layout: layout.to_path_buf(),
        launchers: launchers.clone(),
    };
    write_marker(
        &marker_path,
        &serde_json::to_vec(&marker).unwrap_or_default(),
    )?;

    Ok(Installed {
        project_hash: *hash,
        layout: layout.to_path_buf(),
        site_packages,
        launchers,
        hit: true,
    })
}

/// Writes the marker: straight to its name in a fresh venv (one file created, no rename; the
/// venv lock keeps other installers out, and a torn marker is ignored on the next install),
/// through a temporary name and a rename when one is already there.
fn write_marker(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f.write_all(bytes).map_err(LayoutError::fs("write", path)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let tmp = temp_beside(path);
            fs_err::write(&tmp, bytes)?;
            fs_err::rename(&tmp, path)?;
            Ok(())
        }
        Err(e) => Err(LayoutError::fs("create", path)(e)),
    }
}

pub(crate) fn read_marker(path: &Path) -> Option<Marker> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("Ignoring unreadable venv marker `{}`: {e}", path.display());
            None
        }
    }
}

/// Makes `link` a symlink to `target`, atomically replacing what is there: a file or symlink is
/// replaced by renaming a new symlink over it; a real directory (only when `dir_ok`) is removed
/// if empty, else moved aside and deleted once the symlink is in place.
fn point_at(target: &Path, link: &Path, dir_ok: bool) -> Result<(), LayoutError> {
    match symlink_dir(target, link) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(LayoutError::fs("create the symlink", link)(e)),
    }
    let meta = fs_err::symlink_metadata(link)?;
    if meta.file_type().is_symlink() {
        if std::fs::read_link(link).is_ok_and(|t| t == target) {
            return Ok(());
        }
    } else if meta.is_dir() {
        if !dir_ok {
            return Err(LayoutError::Venv {
                path: link.to_path_buf(),
                reason: "expected a file or a symlink, found a directory".into(),
            });
        }
        // A fresh venv's empty `site-packages`: remove it and link (the venv lock keeps other
        // installers out of the short window without one).
        if std::fs::remove_dir(link).is_ok() {
            return match symlink_dir(target, link) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    replace_with_symlink(target, link)
                }
                other => other.map_err(LayoutError::fs("create the symlink", link)),
            };
        }
        let aside = temp_beside(link);
        fs_err::rename(link, &aside)?;
        let placed = replace_with_symlink(target, link);
        if let Err(e) = remove_tree(&aside) {
            tracing::warn!("Failed to remove `{}`: {e}", aside.display());
        }
        return placed;
    }
    replace_with_symlink(target, link)
}

fn replace_with_symlink(target: &Path, link: &Path) -> Result<(), LayoutError> {
    let tmp = temp_beside(link);
    symlink_dir(target, &tmp).map_err(LayoutError::fs("create the symlink", &tmp))?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LayoutError::fs("replace", link)(e)
    })
}

/// Removes a tree, making directories writable first if needed.
pub(crate) fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    if target.is_dir() {
        junction::create(target, link)
    } else {
        std::os::windows::fs::symlink_file(target, link)
    }
}

/// An exclusive lock on the venv while it is switched, so that concurrent installs into one
/// venv end with one layout's symlink, launchers and marker, not a mix. On unix the venv
/// directory itself is locked (no file to create); elsewhere a lock file inside it.
struct VenvLock(fd_lock::RwLock<std::fs::File>);

impl VenvLock {
    fn open(venv: &Path) -> Result<Self, LayoutError> {
        #[cfg(unix)]
        let file = std::fs::File::open(venv);
        #[cfg(not(unix))]
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(venv.join(".dx-py-layout.lock"));
        Ok(Self(fd_lock::RwLock::new(
            file.map_err(LayoutError::fs("open for locking", venv))?,
        )))
    }

    fn lock(
        &mut self,
        venv: &Path,
    ) -> Result<fd_lock::RwLockWriteGuard<'_, std::fs::File>, LayoutError> {
        self.0.write().map_err(LayoutError::fs("lock", venv))
    }
}
