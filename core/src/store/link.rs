//! Linking an unpacked tree into a site-packages directory shared with other packages.
use std::path::Path;

/// How files were placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkMode {
    /// Hard links to the store's files (same inode).
    Hardlink,
    /// Symbolic links (junctions for directories on Windows).
    Symlink,
    /// Full copies: links were impossible.
    Copy,
}

impl std::fmt::Display for LinkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hardlink => "hardlink",
            Self::Symlink => "symlink",
            Self::Copy => "copy",
        })
    }
}

/// Links the entries of `src` into `dst` with symbolic links, one per top-level entry where it
/// can. When a directory already exists in `dst` (a namespace package shared with another
/// distribution), it is turned into a real directory and merged entry by entry. Falls back to
/// copying when symlinks fail; returns the weakest mode used.
pub fn link_tree(src: &Path, dst: &Path) -> std::io::Result<LinkMode> {
    let mut mode = LinkMode::Symlink;
    for entry in fs_err::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let from_is_dir = entry.file_type()?.is_dir();
        match fs_err::symlink_metadata(&to) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if symlink(&from, &to, from_is_dir).is_err() {
                    copy_tree(&from, &to)?;
                    mode = LinkMode::Copy;
                }
            }
            Err(e) => return Err(e),
            Ok(meta) => {
                let to_is_dir = fs_err::metadata(&to).map(|m| m.is_dir()).unwrap_or(false);
                if from_is_dir && to_is_dir {
                    if meta.file_type().is_symlink() {
                        // Another package linked this directory whole: make it real, then merge.
                        let other = fs_err::read_link(&to)?;
                        fs_err::remove_file(&to)?;
                        fs_err::create_dir(&to)?;
                        if link_tree(&other, &to)? == LinkMode::Copy {
                            mode = LinkMode::Copy;
                        }
                    }
                    if link_tree(&from, &to)? == LinkMode::Copy {
                        mode = LinkMode::Copy;
                    }
                } else {
                    // A file both packages ship: the later one wins, as with pip.
                    tracing::warn!(
                        "{} is provided by more than one package; replacing it",
                        to.display()
                    );
                    if meta.is_dir() {
                        fs_err::remove_dir_all(&to)?;
                    } else {
                        fs_err::remove_file(&to)?;
                    }
                    if symlink(&from, &to, from_is_dir).is_err() {
                        copy_tree(&from, &to)?;
                        mode = LinkMode::Copy;
                    }
                }
            }
        }
    }
    Ok(mode)
}

#[cfg(unix)]
fn symlink(from: &Path, to: &Path, _is_dir: bool) -> std::io::Result<()> {
    std::os::unix::fs::symlink(from, to)
}

#[cfg(windows)]
fn symlink(from: &Path, to: &Path, is_dir: bool) -> std::io::Result<()> {
    if is_dir {
        junction::create(from, to)
    } else {
        std::os::windows::fs::symlink_file(from, to)
    }
}

/// Copies a file or a directory tree.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if fs_err::metadata(from)?.is_dir() {
        fs_err::create_dir_all(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs_err::copy(from, to).map(|_| ())
    }
}
