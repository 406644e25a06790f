//! `cache verify [--repair]`: checks everything the cache serves or links into venvs, and mends
//! what it can from verified objects.
//!
//! | what | check | repair |
//! |---|---|---|
//! | objects | blake3 of the whole file against its name | removed (with their unpacked copies, layouts and trees): the next install fetches the wheel again |
//! | unpacked copies | every path, kind, mode and byte against the object | rewritten in place (layouts hardlinking the file are mended with it) |
//! | layouts | every planned path present, same inode as its unpacked file (hardlinks), same target (symlinks), same size (copies) | rebuilt from the unpacked copies |
//! | mount trees | the `.dxtree` checksum | removed: the next mount builds it again |
//!
//! Bytecode packs are store objects and checked as such. `store verify` stays the objects-only
//! check.
use std::path::PathBuf;

use super::Cache;
use crate::hash::ContentHash;
use crate::layout::{LayoutCache, LayoutProblem, ProjectHash, VerifyLevel};
use crate::store::{PackageStore, StoreError, UnpackedDamage};

/// What `cache verify` found (and, with repair, mended).
#[derive(Debug, Default)]
pub struct CacheVerifyReport {
    /// Objects checked.
    pub objects: usize,
    /// Objects whose bytes no longer match their name.
    pub bad_objects: Vec<ContentHash>,
    /// Unpacked copies checked.
    pub unpacked: usize,
    /// Unpacked copies that differ from their object, with how.
    pub bad_unpacked: Vec<(ContentHash, Vec<UnpackedDamage>)>,
    /// Layouts checked.
    pub layouts: usize,
    /// Layouts with problems, by project hash.
    pub bad_layouts: Vec<(ProjectHash, Vec<LayoutProblem>)>,
    /// Mount trees checked.
    pub trees: usize,
    /// Mount trees that fail their checksum.
    pub bad_trees: Vec<PathBuf>,
    /// True when everything found was mended.
    pub repaired: bool,
}

impl CacheVerifyReport {
    /// True when nothing was found wrong.
    pub fn is_ok(&self) -> bool {
        self.bad_objects.is_empty()
            && self.bad_unpacked.is_empty()
            && self.bad_layouts.is_empty()
            && self.bad_trees.is_empty()
    }
}

/// A verification that could not run.
#[derive(Debug, thiserror::Error)]
pub enum CacheVerifyError {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A layout operation failed.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// Removing a damaged file failed.
    #[error("Failed to remove `{}`", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Checks `cache` (and mends it, with `repair`). Call under the cache's exclusive lock when
/// repairing, the shared one otherwise.
pub fn verify(cache: &Cache, repair: bool) -> Result<CacheVerifyReport, CacheVerifyError> {
    let store = cache.store();
    let mut report = CacheVerifyReport::default();

    // Objects first: everything else is checked against them.
    let objects = store.objects()?;
    report.objects = objects.len();
    for hash in &objects {
        if !store.verify(hash)? {
            report.bad_objects.push(*hash);
            // A thin object's file bytes are its unpacked copy: the files whose stat changed
            // say which were edited (there is no object left to mend them from).
            let changed = store.changed_in_copy(hash).unwrap_or_default();
            if !changed.is_empty() {
                let damage = changed.into_iter().map(UnpackedDamage::Changed).collect();
                report.bad_unpacked.push((*hash, damage));
            }
        }
    }
    if repair {
        for hash in &report.bad_objects {
            remove_object(&store, hash)?;
        }
    }

    // Unpacked copies of good objects.
    for hash in &objects {
        if report.bad_objects.contains(hash) || !store.unpacked_path(hash).is_dir() {
            continue;
        }
        report.unpacked += 1;
        let damage = store.check_unpacked(hash)?;
        if damage.is_empty() {
            continue;
        }
        if repair {
            store.repair_unpacked(hash, &damage)?;
        }
        report.bad_unpacked.push((*hash, damage));
    }

    // Layouts: after the copies they link are mended, so only what is still wrong shows.
    let layouts = LayoutCache::open(&cache.layouts_dir(), &store)?;
    for entry in layouts.entries() {
        let hash = entry.project_hash;
        report.layouts += 1;
        let uses_bad = layouts.manifest(&hash).is_ok_and(|m| {
            m.packages.iter().any(|p| {
                p.hash
                    .parse::<ContentHash>()
                    .is_ok_and(|h| report.bad_objects.contains(&h))
            })
        });
        let problems = if uses_bad && repair {
            // Its object is gone: the next install builds the layout again.
            remove_dir(&layouts.layout_dir(&hash))?;
            vec![LayoutProblem::SourceUnavailable {
                package: String::new(),
                reason: "one of its objects was damaged and removed".into(),
            }]
        } else {
            let problems = layouts.verify_layout(&hash, VerifyLevel::Full)?.problems;
            if !problems.is_empty() && repair {
                let spec = layouts.manifest(&hash)?.to_spec();
                layouts.rebuild_layout(&spec)?;
            }
            problems
        };
        if !problems.is_empty() {
            report.bad_layouts.push((hash, problems));
        }
    }
    if repair
        && report
            .bad_layouts
            .iter()
            .any(|(h, _)| !layouts.layout_dir(h).exists())
    {
        layouts.rebuild_index()?;
    }

    // Mount trees.
    if let Ok(entries) = std::fs::read_dir(cache.trees_dir()) {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "dxtree") {
                continue;
            }
            report.trees += 1;
            let good = crate::tree::open_tree(&path).is_ok_and(|t| t.verify().is_ok());
            if !good {
                if repair {
                    remove_file(&path)?;
                }
                report.bad_trees.push(path);
            }
        }
    }
    report.repaired = repair;
    Ok(report)
}

/// Removes a damaged object, whatever sits beside it under its name, and its unpacked copy.
fn remove_object(store: &PackageStore, hash: &ContentHash) -> Result<(), CacheVerifyError> {
    let path = store.get_path(hash);
    let hex = hash.to_hex();
    if let Some(dir) = path.parent()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&hex) {
                remove_file(&e.path())?;
            }
        }
    }
    remove_dir(&store.unpacked_path(hash))
}

fn remove_file(path: &std::path::Path) -> Result<(), CacheVerifyError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CacheVerifyError::Remove {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn remove_dir(path: &std::path::Path) -> Result<(), CacheVerifyError> {
    match crate::store::remove_tree(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CacheVerifyError::Remove {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
