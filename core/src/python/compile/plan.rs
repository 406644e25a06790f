//! Which sources of a package dx-py compiles: the one rule that install, layouts and mounts
//! share, since all three take their `.pyc` files from the same bytecode pack.
//!
//! The wheel's RECORD says what a package is. A `.pyc` the wheel ships is one of its files like
//! any other: it is served and linked as shipped (so RECORD's hash for it stays true, and pip
//! can verify and uninstall it), and dx-py never puts a pyc of its own at that path. A source
//! is compiled only when its pyc path for the target interpreter (`importlib.util.
//! cache_from_source`) holds nothing in the package. The bytecode dx-py adds is then only new
//! files beside the package's own, which is what a mount needs to hand over bytecode compiled
//! after mounting (the complete tree must extend the mounted one).
//!
//! A shipped pyc may be timestamp-based: Python then compares it with the source's mtime,
//! and where they differ (a read-only venv cannot rewrite it) compiles that module in memory
//! on import. That costs one module's compile; replacing the file would make the venv
//! disagree with the wheel.
use std::collections::HashSet;

use super::pyc::pyc_path;
use crate::dxpkg::EntryKind;

/// The directory Python keeps bytecode in; sources inside one are not compiled (Python never
/// looks for a pyc of a file in `__pycache__`, and its own `compileall` skips them).
const PYCACHE: &str = "__pycache__";

/// The sources of one package to compile for `cache_tag`, with their pyc paths.
///
/// `files` are every entry of the package's site-packages (paths relative to it, with their
/// kind), sources or not. Returns, in input order, the position of each regular `.py` file to
/// compile and its pyc path (`pkg/__pycache__/mod.{cache_tag}.pyc`). Left out: symlinks, paths
/// that are not sources or not safe (`pyc_path`), sources inside `__pycache__`, and sources
/// whose pyc path the package already holds.
pub fn compile_plan<'a>(
    files: impl IntoIterator<Item = (&'a str, EntryKind)>,
    cache_tag: &str,
) -> Vec<(usize, String)> {
    let files: Vec<(&str, EntryKind)> = files.into_iter().collect();
    // Only paths inside a `__pycache__` can be a pyc path: most packages have none, so the set
    // stays empty and the plan costs one pass.
    let shipped: HashSet<&str> = files
        .iter()
        .map(|&(path, _)| path)
        .filter(|path| path.split('/').any(|c| c == PYCACHE))
        .collect();
    let mut plan = Vec::new();
    for (i, &(path, kind)) in files.iter().enumerate() {
        if kind != EntryKind::File || path.split('/').any(|c| c == PYCACHE) {
            continue;
        }
        let Some(pyc) = pyc_path(path, cache_tag) else {
            continue;
        };
        if shipped.contains(pyc.as_str()) {
            tracing::debug!("`{pyc}` is shipped by the package: not compiling `{path}`");
            continue;
        }
        plan.push((i, pyc));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TAG: &str = "cpython-311";

    #[test]
    fn a_shipped_pyc_for_the_tag_is_kept() {
        let files = [
            ("pkg/__init__.py", EntryKind::File),
            ("pkg/conv.py", EntryKind::File),
            ("pkg/__pycache__/conv.cpython-311.pyc", EntryKind::File),
            // Another interpreter's pyc does not stand in for this one's.
            ("pkg/other.py", EntryKind::File),
            ("pkg/__pycache__/other.cpython-312.pyc", EntryKind::File),
            ("pkg/link.py", EntryKind::Symlink),
            ("pkg/__pycache__/stray.py", EntryKind::File),
            ("pkg/data.txt", EntryKind::File),
        ];
        assert_eq!(
            compile_plan(files, TAG),
            [
                (0, "pkg/__pycache__/__init__.cpython-311.pyc".to_string()),
                (3, "pkg/__pycache__/other.cpython-311.pyc".to_string()),
            ]
        );
    }

    #[test]
    fn a_shipped_symlink_at_the_pyc_path_also_counts() {
        let files = [
            ("m.py", EntryKind::File),
            ("__pycache__/m.cpython-311.pyc", EntryKind::Symlink),
        ];
        assert!(compile_plan(files, TAG).is_empty());
    }

    /// A package's files from a small alphabet, so that sources, shipped pycs for this and
    /// other tags, symlinks and `__pycache__` sources meet often.
    fn package() -> impl Strategy<Value = Vec<(String, EntryKind)>> {
        let dir = prop::sample::select(vec!["", "a/", "a/b/", "c/", "a/__pycache__/"]);
        let stem = prop::sample::select(vec!["__init__", "m", "n.x", "z"]);
        let suffix = prop::sample::select(vec![
            ".py",
            ".py",
            ".txt",
            ".cpython-311.pyc",
            ".cpython-312.pyc",
        ]);
        let path = (dir, any::<bool>(), stem, suffix).prop_map(|(dir, cached, stem, suffix)| {
            // A pyc normally sits in the `__pycache__` beside its source.
            let cache = if cached && suffix.ends_with(".pyc") {
                "__pycache__/"
            } else {
                ""
            };
            format!("{dir}{cache}{stem}{suffix}")
        });
        let kind = prop::sample::select(vec![EntryKind::File, EntryKind::File, EntryKind::Symlink]);
        // A package holds each path once.
        prop::collection::btree_map(path, kind, 0..24).prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        /// Against a naive oracle: every regular `.py` outside `__pycache__` whose pyc path is
        /// not a path of the package, and no other, is compiled; no planned pyc lands on a
        /// file the package has, and no two sources share one.
        #[test]
        fn the_plan_is_the_sources_whose_pyc_is_not_shipped(files in package()) {
            let plan = compile_plan(files.iter().map(|(p, k)| (p.as_str(), *k)), TAG);
            let mut oracle = Vec::new();
            for (i, (path, kind)) in files.iter().enumerate() {
                let Some(stem) = path.strip_suffix(".py") else { continue };
                if *kind != EntryKind::File || path.contains("__pycache__") {
                    continue;
                }
                let (dir, name) = stem.rsplit_once('/').map_or(("", stem), |(d, n)| (d, n));
                let pyc = match dir {
                    "" => format!("__pycache__/{name}.{TAG}.pyc"),
                    dir => format!("{dir}/__pycache__/{name}.{TAG}.pyc"),
                };
                if !files.iter().any(|(p, _)| *p == pyc) {
                    oracle.push((i, pyc));
                }
            }
            prop_assert_eq!(&plan, &oracle);
            let pycs: HashSet<&str> = plan.iter().map(|(_, p)| p.as_str()).collect();
            prop_assert_eq!(pycs.len(), plan.len());
            prop_assert!(files.iter().all(|(p, _)| !pycs.contains(p.as_str())));
        }
    }
}
