//! Checking a layout: a cheap check on every cache hit, a full one on demand.
use std::path::{Path, PathBuf};

use super::build::{self, Kind};
use super::manifest::MANIFEST_NAME;
use super::{LayoutError, LayoutManifest, LinkMode, ProjectHash};
use crate::store::PackageStore;

/// How thoroughly to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyLevel {
    /// The layout directory, its manifest (parsed, naming this hash) and `site-packages` exist.
    Quick,
    /// Also every file of every package: present, same inode as the store's file when hard
    /// linked, pointing at it when symlinked, same size when copied.
    Full,
}

/// One thing wrong with a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutProblem {
    /// The layout directory is missing.
    MissingLayout,
    /// The manifest is missing or unreadable.
    BadManifest(String),
    /// `site-packages/` is missing or not a directory.
    MissingSitePackages,
    /// A package's sources cannot be read, so its files were not checked.
    SourceUnavailable {
        /// Package name.
        package: String,
        /// Why.
        reason: String,
    },
    /// A planned path is absent (paths are relative to the layout directory).
    Missing(PathBuf),
    /// A path has the wrong type (file vs directory vs symlink).
    WrongType(PathBuf),
    /// A file's size differs from its source.
    WrongSize {
        /// The file.
        path: PathBuf,
        /// The source's size.
        expected: u64,
        /// The layout file's size.
        got: u64,
    },
    /// A file of a hard-linked layout is no longer the store's inode.
    WrongInode(PathBuf),
    /// A symlink points somewhere else than its source.
    WrongLink(PathBuf),
    /// The tree holds a different number of files than the manifest says.
    FileCount {
        /// The manifest's count.
        expected: u64,
        /// Files planned from the sources now.
        got: u64,
    },
}

/// The result of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Everything found wrong; empty when the layout is healthy.
    pub problems: Vec<LayoutProblem>,
    /// Paths checked (directories and files).
    pub checked: u64,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The cheap check; returns the manifest when the layout looks whole.
pub(crate) fn quick(dir: &Path, hash: &ProjectHash) -> Result<LayoutManifest, LayoutProblem> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        _ => return Err(LayoutProblem::MissingLayout),
    }
    let manifest = LayoutManifest::read(dir, hash).map_err(|e| {
        LayoutProblem::BadManifest(format!("{}: {e}", dir.join(MANIFEST_NAME).display()))
    })?;
    match std::fs::symlink_metadata(dir.join("site-packages")) {
        Ok(m) if m.is_dir() => Ok(manifest),
        _ => Err(LayoutProblem::MissingSitePackages),
    }
}

/// The cheapest check, two `stat`s, used on every cache hit: the manifest and `site-packages/`
/// exist. Returns the manifest's metadata (its mtime records the last use).
pub(crate) fn looks_whole(dir: &Path) -> Option<std::fs::Metadata> {
    let manifest = std::fs::symlink_metadata(dir.join(MANIFEST_NAME))
        .ok()
        .filter(std::fs::Metadata::is_file)?;
    std::fs::symlink_metadata(dir.join("site-packages"))
        .is_ok_and(|m| m.is_dir())
        .then_some(manifest)
}

pub(crate) fn verify(
    store: &PackageStore,
    dir: &Path,
    hash: &ProjectHash,
    level: VerifyLevel,
) -> Result<VerifyReport, LayoutError> {
    let mut report = VerifyReport::default();
    let manifest = match quick(dir, hash) {
        Ok(m) => m,
        Err(p) => {
            report.problems.push(p);
            return Ok(report);
        }
    };
    report.checked = 2;
    if level == VerifyLevel::Quick {
        return Ok(report);
    }
    let spec = manifest.to_spec();
    let ordered = build::ordered_packages(&spec);
    let names: Vec<String> = ordered.iter().map(|p| p.name.clone()).collect();
    let sources = match build::sources(store, &ordered) {
        Ok(s) => s,
        Err(e) => {
            report.problems.push(LayoutProblem::SourceUnavailable {
                package: match &e {
                    LayoutError::Store { name, .. } => name.clone(),
                    _ => String::new(),
                },
                reason: e.to_string(),
            });
            return Ok(report);
        }
    };
    let plan = build::plan(&sources, &names)?;
    let planned_files = plan.values().filter(|i| i.kind != Kind::Dir).count() as u64;
    if planned_files != manifest.file_count {
        report.problems.push(LayoutProblem::FileCount {
            expected: manifest.file_count,
            got: planned_files,
        });
    }
    let all_hardlinked = manifest.link_mode() == LinkMode::Hardlink;
    for (rel, item) in &plan {
        report.checked += 1;
        if let Some(p) = check_one(dir, rel, item, all_hardlinked) {
            report.problems.push(p);
        }
    }
    Ok(report)
}

fn check_one(
    dir: &Path,
    rel: &Path,
    item: &build::Item,
    all_hardlinked: bool,
) -> Option<LayoutProblem> {
    let path = dir.join(rel);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Some(LayoutProblem::Missing(rel.to_path_buf()));
    };
    let wrong_type = || Some(LayoutProblem::WrongType(rel.to_path_buf()));
    match item.kind {
        Kind::Dir => (!meta.is_dir()).then(|| LayoutProblem::WrongType(rel.to_path_buf())),
        Kind::Symlink => {
            if !meta.file_type().is_symlink() {
                return wrong_type();
            }
            let same = std::fs::read_link(&path).ok() == std::fs::read_link(&item.src).ok();
            (!same).then(|| LayoutProblem::WrongLink(rel.to_path_buf()))
        }
        Kind::File if meta.file_type().is_symlink() => {
            let same = std::fs::read_link(&path).is_ok_and(|t| t == item.src);
            (!same).then(|| LayoutProblem::WrongLink(rel.to_path_buf()))
        }
        Kind::File if !meta.is_file() => wrong_type(),
        Kind::File => {
            let Ok(src) = std::fs::metadata(&item.src) else {
                return Some(LayoutProblem::Missing(rel.to_path_buf()));
            };
            if same_inode(&meta, &src) {
                return None;
            }
            if meta.len() != src.len() {
                return Some(LayoutProblem::WrongSize {
                    path: rel.to_path_buf(),
                    expected: src.len(),
                    got: meta.len(),
                });
            }
            all_hardlinked.then(|| LayoutProblem::WrongInode(rel.to_path_buf()))
        }
    }
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    false
}
