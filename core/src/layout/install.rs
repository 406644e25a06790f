//! Pointing a venv at a layout: one `.pth` file in the venv's own `site-packages` plus one
//! symlink per launcher.
//!
//! The venv's `site-packages` stays a real, writable directory that belongs to the venv. The
//! layout, shared by every venv of the same lock, is reached read-only through
//! `_dx_py_layout.pth`, which `site` processes at start-up: it appends the layout's
//! `site-packages` to `sys.path` after the venv's own directory (with `site.addsitedir`, so the
//! layout's own `.pth` files run too). What pip or uv install into the venv lands in the venv and
//! shadows the layout; `pip uninstall` refuses to touch a distribution outside the environment.
//! The same file is the venv's marker: a comment line records which layout and launchers are
//! installed, so pointing a venv at a layout creates one file, not two.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{Installed, LayoutError, ProjectHash};
use crate::python::{PythonVersion, VenvShape};

/// The `.pth` file in the venv's `site-packages` that adds the layout and records it.
pub(crate) const PTH_NAME: &str = "_dx_py_layout.pth";
/// Where venvs of earlier versions kept the marker (their `site-packages` was a symlink).
pub(crate) const LEGACY_MARKER_NAME: &str = ".dx-py-layout";
/// Starts the `.pth` comment line that holds the marker's JSON.
const MARKER_PREFIX: &str = "# dx-py-layout: ";

/// What a venv records about its layout (the JSON on the `.pth` file's marker line).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub(crate) format: u32,
    pub(crate) project_hash: String,
    pub(crate) layout: PathBuf,
    pub(crate) launchers: Vec<String>,
}

/// The shape of a venv for `python` whose interpreter has the layout tag `interpreter_tag`
/// (`Interpreter::tag`): a free-threaded build's ABI ends in `t` (`cp313t-linux_x86_64`, or
/// `cp313td-…` for a debug build), and its venv keeps packages in `lib/python3.13t/`.
fn shape(python: (u8, u8), interpreter_tag: &str) -> VenvShape {
    let version = PythonVersion {
        major: python.0.into(),
        minor: python.1.into(),
        patch: 0,
    };
    let abi = interpreter_tag.split('-').next().unwrap_or_default();
    let flags = abi.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let flags = flags.trim_start_matches(|c: char| c.is_ascii_digit());
    VenvShape::new(version, flags.contains('t'))
}

/// The venv's `site-packages` path for `python` (with the GIL), as [`VenvShape`] spells it.
pub(crate) fn site_packages_path(venv: &Path, python: (u8, u8)) -> PathBuf {
    shape(python, "").site_packages_in(venv)
}

/// `{venv}/lib/pythonX.Y/site-packages/_dx_py_layout.pth`.
pub(crate) fn marker_path(venv: &Path, python: (u8, u8)) -> PathBuf {
    site_packages_path(venv, python).join(PTH_NAME)
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
    interpreter_tag: &str,
    venv: &Path,
) -> Result<Installed, LayoutError> {
    // Directories are created only when an operation finds them missing: in the usual venv they
    // exist, and each avoided `mkdir` + `stat` is time on the warm path.
    let mut lock = VenvLock::open(venv)?;
    let _guard = lock.lock(venv)?;

    let shape = shape(python, interpreter_tag);
    let site_packages = shape.site_packages_in(venv);
    let legacy = own_site_packages(&site_packages)?;

    let bin = shape.bin_dir_in(venv);
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
    for name in &launchers {
        let link = bin.join(name);
        if let Err(e) = point_at(&layout_bin.join(name), &link) {
            tracing::warn!("Skipping launcher `{}`: {e}", link.display());
        }
    }

    let pth = site_packages.join(PTH_NAME);
    let legacy_marker = venv.join(LEGACY_MARKER_NAME);
    let old = read_marker(&pth).or_else(|| legacy.then(|| read_marker(&legacy_marker)).flatten());
    if let Some(old) = old {
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
        format: 2,
        project_hash: hash.to_hex(),
        layout: layout.to_path_buf(),
        launchers: launchers.clone(),
    };
    write_marker(
        &pth,
        pth_text(&marker, &layout.join("site-packages"))?.as_bytes(),
    )?;
    if legacy {
        match std::fs::remove_file(&legacy_marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LayoutError::fs("remove", &legacy_marker)(e));
            }
            _ => {}
        }
    }

    Ok(Installed {
        project_hash: *hash,
        layout: layout.to_path_buf(),
        site_packages,
        launchers,
        hit: true,
    })
}

/// Makes sure `site_packages` is the venv's own directory. Venvs of earlier dx-py versions had a
/// symlink into the layout cache there: it is replaced by a directory (true is returned, so the
/// caller also retires the old marker). Anything else in the way is an error.
fn own_site_packages(site_packages: &Path) -> Result<bool, LayoutError> {
    match std::fs::symlink_metadata(site_packages) {
        Ok(meta) if meta.is_dir() => Ok(false),
        Ok(meta) if meta.file_type().is_symlink() => {
            remove_link(site_packages)?;
            fs_err::create_dir(site_packages)?;
            Ok(true)
        }
        Ok(_) => Err(LayoutError::Venv {
            path: site_packages.to_path_buf(),
            reason: "expected the venv's site-packages directory, found a file".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs_err::create_dir_all(site_packages)?;
            Ok(false)
        }
        Err(e) => Err(LayoutError::fs("inspect", site_packages)(e)),
    }
}

#[cfg(unix)]
fn remove_link(link: &Path) -> Result<(), LayoutError> {
    fs_err::remove_file(link).map_err(LayoutError::from)
}

#[cfg(windows)]
fn remove_link(link: &Path) -> Result<(), LayoutError> {
    // A junction is removed as a directory; a file symlink as a file.
    std::fs::remove_dir(link)
        .or_else(|_| std::fs::remove_file(link))
        .map_err(LayoutError::fs("remove", link))
}

/// The `.pth` file: a comment for people, the marker line, and the line `site` executes.
fn pth_text(marker: &Marker, layout_site_packages: &Path) -> Result<String, LayoutError> {
    let dir = layout_site_packages
        .to_str()
        .ok_or_else(|| LayoutError::Venv {
            path: layout_site_packages.to_path_buf(),
            reason: "the layout path is not valid UTF-8, so a `.pth` file cannot name it".into(),
        })?;
    let json = serde_json::to_string(marker).unwrap_or_default();
    Ok(format!(
        "# Added by dx-py: this venv's locked packages live in a layout shared by every venv of the\n\
         # same lock. It comes after this directory on sys.path: what pip or uv install here takes\n\
         # precedence, and nothing done here changes the layout. Do not edit files under it.\n\
         {MARKER_PREFIX}{json}\n\
         import site; site.addsitedir({})\n",
        python_str(dir)
    ))
}

/// `s` as a Python string literal of ASCII characters only (`site` decodes `.pth` files with the
/// locale's encoding before Python 3.13, so non-ASCII characters are written as escapes).
pub(crate) fn python_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('\'');
    out
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

/// Reads a venv's marker: the JSON line of its `.pth` file (or, for venvs of earlier versions,
/// the whole `.dx-py-layout` file). `None` when missing or unreadable (a torn write).
pub(crate) fn read_marker(path: &Path) -> Option<Marker> {
    let bytes = std::fs::read(path).ok()?;
    let json = if path.extension().is_some_and(|e| e == "pth") {
        let text = std::str::from_utf8(&bytes).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(MARKER_PREFIX))?
            .as_bytes()
    } else {
        &bytes[..]
    };
    match serde_json::from_slice(json) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("Ignoring unreadable venv marker `{}`: {e}", path.display());
            None
        }
    }
}

/// Makes `link` a symlink to `target`, atomically replacing a file or symlink there (a
/// directory is refused).
fn point_at(target: &Path, link: &Path) -> Result<(), LayoutError> {
    let mut made = symlink_dir(target, link);
    if let (Err(e), Some(parent)) = (&made, link.parent())
        && e.kind() == std::io::ErrorKind::NotFound
    {
        fs_err::create_dir_all(parent)?;
        made = symlink_dir(target, link);
    }
    match made {
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
        return Err(LayoutError::Venv {
            path: link.to_path_buf(),
            reason: "expected a file or a symlink, found a directory".into(),
        });
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
    /// Opens the lock, creating the venv directory if it does not exist yet.
    fn open(venv: &Path) -> Result<Self, LayoutError> {
        let open = || {
            #[cfg(unix)]
            let file = std::fs::File::open(venv);
            #[cfg(not(unix))]
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(venv.join(".dx-py-layout.lock"));
            file
        };
        let file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs_err::create_dir_all(venv)?;
                open()
            }
            other => other,
        };
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A free-threaded interpreter's layouts go into `lib/python3.13t/site-packages`, where
    /// `create_venv` made the venv's site-packages; other tags keep `lib/python3.13/`.
    #[test]
    fn the_interpreter_tag_says_whether_the_venv_is_free_threaded() {
        let sp = |tag: &str| super::shape((3, 13), tag).site_packages_in(Path::new("v"));
        let plain = Path::new("v").join(if cfg!(windows) {
            "Lib/site-packages"
        } else {
            "lib/python3.13/site-packages"
        });
        let threaded = Path::new("v").join(if cfg!(windows) {
            "Lib/site-packages"
        } else {
            "lib/python3.13t/site-packages"
        });
        assert_eq!(sp("cp313t-linux_x86_64"), threaded);
        assert_eq!(sp("cp313td-manylinux_2_17_x86_64"), threaded);
        assert_eq!(sp("cp313-linux_x86_64"), plain);
        assert_eq!(sp("cp313d-linux_x86_64"), plain);
        assert_eq!(sp("pp310-linux_x86_64"), plain);
        assert_eq!(sp(""), plain);
    }
}
