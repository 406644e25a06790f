//! `cache clean`: removes derived data (and with `store`, the store) except what live venvs and
//! mounts use, unless forced; reports both, so that no venv is stranded silently.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::reach::{Reached, check_roots, reach};
use super::roots::{Root, Uses};
use super::{Cache, Kind, RemoveError};
use crate::hash::ContentHash;
use crate::layout::LayoutCache;

/// What to clean.
#[derive(Clone, Copy, Debug, Default)]
pub struct CleanOptions {
    /// Also the store: objects, unpacked copies, records.
    pub store: bool,
    /// Everything: the store, downloads, metadata, index pages, interpreter facts, roots.
    pub all: bool,
    /// Also what live venvs and mounts use (they need `dx-py install` / a remount afterwards).
    pub force: bool,
}

/// What a clean did.
#[derive(Debug, Default)]
pub struct CleanReport {
    /// The directories (or, when something was kept, the directories partly) cleaned.
    pub cleaned: Vec<(Kind, PathBuf)>,
    /// Live roots whose layouts, trees and objects were kept.
    pub kept_for: Vec<Root>,
    /// Live roots that used something removed (only with `force`).
    pub stranded: Vec<Root>,
}

/// A cache clean that failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// Removing a path failed.
    #[error(transparent)]
    Remove(#[from] RemoveError),
    /// Rebuilding the layout index over the kept layouts failed.
    #[error(transparent)]
    Layouts(#[from] crate::layout::LayoutError),
}

/// Cleans `cache` as `opts` ask. Call under the cache's exclusive lock.
pub fn clean(
    cache: &Cache,
    opts: CleanOptions,
    is_mounted: &dyn Fn(&Path) -> bool,
) -> Result<CleanReport, CleanError> {
    let roots = check_roots(cache, is_mounted);
    // Venvs and mounts only: a lock that is not installed anywhere protects its objects from
    // `cache prune`, not from a clean, which is asked to remove what nothing runs from.
    let live: Vec<Root> = roots
        .live_roots()
        .into_iter()
        .filter(|r| !matches!(r.uses, Uses::Lock { .. }))
        .collect();
    let mut report = CleanReport::default();
    let keep = if opts.force {
        report.stranded = live.clone();
        Reached::default()
    } else {
        report.kept_for = live.clone();
        reach(cache, &live)
    };

    clean_layouts(cache, &keep, &mut report)?;
    clean_trees(cache, &keep, &mut report)?;
    if opts.store || opts.all {
        clean_store(cache, &keep, &mut report)?;
    }
    if opts.all {
        // Through `Cache::kinds`, so that a new kind of downloaded data is removed too.
        for (kind, dir) in cache
            .kinds()
            .into_iter()
            .filter(|(k, _)| k.is_refetchable())
        {
            remove_all(&dir)?;
            report.cleaned.push((kind, dir));
        }
    }
    // Dead and unreadable claims go; with `force` the live ones too, since what they use is gone.
    let files = roots.dead.iter().map(|(f, _)| f);
    let files = files.chain(roots.corrupt.iter().map(|(f, _)| f));
    let live_files = roots
        .live
        .iter()
        .filter(|(_, r)| opts.force && live.contains(r))
        .map(|(f, _)| f);
    for file in files.chain(live_files) {
        super::remove_any(file)?;
    }
    // No install runs now (exclusive cache lock): the next one into a venv makes its own.
    super::remove_venv_locks(cache)?;
    if opts.all && opts.force {
        // Locks' claims too: nothing they name is left.
        remove_all(&cache.roots_dir())?;
    } else if opts.all {
        // Gone when nothing is left in it.
        let _ = std::fs::remove_dir(cache.roots_dir());
    }
    Ok(report)
}

fn clean_layouts(
    cache: &Cache,
    keep: &Reached,
    report: &mut CleanReport,
) -> Result<(), CleanError> {
    let dir = cache.layouts_dir();
    report.cleaned.push((Kind::Layouts, dir.clone()));
    if keep.layouts.is_empty() {
        return remove_all(&dir);
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if keep.layouts.contains(&name) {
            continue;
        }
        // Layout trees, temporaries and the index go; the index is rebuilt over what stays.
        super::remove_any(&e.path())?;
    }
    let store = cache.store();
    let layouts = LayoutCache::open(&dir, &store)?;
    layouts.rebuild_index()?;
    Ok(())
}

fn clean_trees(cache: &Cache, keep: &Reached, report: &mut CleanReport) -> Result<(), CleanError> {
    let dir = cache.trees_dir();
    report.cleaned.push((Kind::Trees, dir.clone()));
    if keep.tree_keys.is_empty() {
        return remove_all(&dir);
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        if !super::roots::tree_key(&path).is_some_and(|k| keep.tree_keys.contains(&k)) {
            super::remove_any(&path)?;
        }
    }
    Ok(())
}

fn clean_store(cache: &Cache, keep: &Reached, report: &mut CleanReport) -> Result<(), CleanError> {
    let unpacked = cache.own_unpacked_dir();
    report
        .cleaned
        .push((Kind::Store, cache.store_dir().to_path_buf()));
    report.cleaned.push((Kind::Unpacked, unpacked.clone()));
    if keep.objects.is_empty() {
        remove_all(cache.store_dir())?;
        return remove_all(&unpacked);
    }
    let kept_hex: BTreeSet<String> = keep.objects.iter().map(ContentHash::to_hex).collect();
    // Objects in the fan-out `ab/cd/{hash}.dxpkg` (and their sidecars), unpacked copies named
    // by hash; records and maps are hints checked on use, so they may stay.
    let store = cache.store_dir();
    for level1 in read_dir_paths(store) {
        let name = file_name(&level1);
        if name.len() != 2 || !level1.is_dir() {
            continue;
        }
        for level2 in read_dir_paths(&level1) {
            for object in read_dir_paths(&level2) {
                let stem = file_name(&object);
                let hex = stem.split('.').next().unwrap_or_default();
                if !kept_hex.contains(hex) {
                    super::remove_any(&object)?;
                }
            }
        }
    }
    for dir in [cache.store_unpacked_dir(), unpacked] {
        for copy in read_dir_paths(&dir) {
            if !kept_hex.contains(&file_name(&copy)) {
                super::remove_any(&copy)?;
            }
        }
    }
    Ok(())
}

fn read_dir_paths(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes a directory tree (read-only unpacked copies included); a missing one is fine.
fn remove_all(dir: &Path) -> Result<(), CleanError> {
    Ok(super::remove_any(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--all` removes every kind of downloaded or derived data that `Cache` names, the
    /// metadata and page caches included; without it they stay.
    #[test]
    fn all_removes_every_refetchable_kind() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path(), None);
        let refetchable: Vec<(Kind, PathBuf)> = cache
            .kinds()
            .into_iter()
            .filter(|(k, _)| k.is_refetchable())
            .collect();
        let kinds: Vec<Kind> = refetchable.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                Kind::Downloads,
                Kind::Metadata,
                Kind::Pages,
                Kind::Interpreters,
                Kind::Selected
            ]
        );
        for (_, dir) in &refetchable {
            fs_err::create_dir_all(dir.join("ab")).unwrap();
            fs_err::write(dir.join("ab/entry"), b"x").unwrap();
        }
        let report = clean(&cache, CleanOptions::default(), &|_| false).unwrap();
        assert!(refetchable.iter().all(|(_, d)| d.join("ab/entry").exists()));
        assert!(report.cleaned.iter().all(|(k, _)| !k.is_refetchable()));
        let all = CleanOptions {
            all: true,
            ..CleanOptions::default()
        };
        let report = clean(&cache, all, &|_| false).unwrap();
        for (kind, dir) in &refetchable {
            assert!(!dir.exists(), "{kind}");
            assert!(report.cleaned.contains(&(*kind, dir.clone())), "{kind}");
        }
    }
}
