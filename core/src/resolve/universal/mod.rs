//! Universal resolution: one lock for every environment a project supports.
//!
//! A solve runs for a *fork*: the environments where a marker holds (first the whole scope:
//! the project's `requires-python` and its environments). Inside a fork, markers are not
//! evaluated but intersected with the fork's marker: a requirement that can never hold there
//! is dropped, any other is kept, its marker recorded on the edge. When one package version
//! lists requirements on the same package that differ by marker and by range
//! (`numpy<2; python_version < "3.10"`, `numpy>=2; python_version >= "3.10"`), the solve
//! stops and is run again on each side of the marker (pubgrub 0.4 cannot copy its state, so a
//! fork restarts; the metadata it fetched stays in the source's memory). Each fork prefers
//! the versions an existing lock gives its environments (`preferences`), then the versions
//! earlier forks chose, so shared packages keep one version where they can.
//!
//! Afterwards each package gets the marker under which it is reachable from the requirements
//! in its fork (a fixed point over the edges, cycles included), and the forks are merged: one
//! entry per name and version, its marker the union over the forks that chose it.
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerTree, PackageName};

use super::environment::{Environment, python_range};
use super::solver::{self, SolveError, Solved, SolvedFork};
use super::{Manifest, Package, PackageSource, ResolveError, ResolveOptions, Upgrade};
use crate::index::IndexFile;

mod preferences;

pub use preferences::LockedVersion;

/// More forks than this is a sign of requirements that split on every marker: refused with a
/// message rather than solving for minutes.
const MAX_FORKS: usize = 256;

/// A universal resolution, sorted by name then version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniversalResolution {
    /// One entry per package version chosen by some fork.
    pub packages: Vec<UniversalPackage>,
    /// The markers of the forks solved, in the order solved.
    pub forks: Vec<MarkerTree>,
}

/// One package version of a universal resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniversalPackage {
    /// The normalized name.
    pub name: PackageName,
    /// The version.
    pub version: Version,
    /// Where it is installed, relative to the scope (`TRUE`: wherever the lock is used); the
    /// Python bounds of the scope itself are left out.
    pub marker: MarkerTree,
    /// The extras something asked of it in some fork, sorted.
    pub extras: Vec<ExtraName>,
    /// Its wheels and sdists whose Requires-Python admits the lowest Python it is used with.
    pub files: Vec<IndexFile>,
    /// The packages it depends on in some fork, sorted.
    pub dependencies: Vec<PackageName>,
}

/// Resolves `manifest` for every environment where `scope` holds; `locked` (an existing
/// universal lock's entries) is preferred fork by fork, but for the packages
/// `manifest.upgrade` frees.
pub fn resolve_universal(
    manifest: &Manifest,
    scope: &MarkerTree,
    locked: &[LockedVersion],
    options: &ResolveOptions,
    source: &dyn PackageSource,
) -> Result<UniversalResolution, ResolveError> {
    let mut preferences = manifest.kept_preferences();
    let mut pending = vec![scope.clone()];
    let mut solved: Vec<(MarkerTree, SolvedFork)> = Vec::new();
    let mut tried = 0;
    while let Some(fork) = pending.pop() {
        tried += 1;
        if tried > MAX_FORKS {
            return Err(ResolveError::TooManyForks(MAX_FORKS));
        }
        let mut fork_preferences = preferences.clone();
        fork_preferences.extend(preferences::for_fork(locked, &fork, &manifest.upgrade));
        let fork_manifest = Manifest {
            preferences: fork_preferences,
            upgrade: Upgrade::None,
            ..manifest.clone()
        };
        let env = Environment::Fork { marker: &fork };
        match solver::solve_in(&fork_manifest, env, options, source) {
            Ok(result) => {
                for p in &result.packages {
                    preferences
                        .entry(p.name.clone())
                        .or_insert_with(|| p.version.clone());
                }
                solved.push((fork, result));
            }
            Err(SolveError::Fork(split)) => {
                let (mut inside, mut outside) = (fork.clone(), fork.clone());
                inside.and(split.clone());
                outside.and(split.negate());
                if inside.is_false() || outside.is_false() {
                    // Cannot happen (the split is neither empty nor the whole fork); refused
                    // rather than looping.
                    return Err(in_fork(
                        &fork,
                        scope,
                        ResolveError::NoSolution(format!(
                            "the requirements split on `{}` without narrowing the environments",
                            describe(&split)
                        )),
                    ));
                }
                pending.push(outside);
                pending.push(inside);
            }
            Err(SolveError::Resolve(e)) => return Err(in_fork(&fork, scope, e)),
        }
    }
    Ok(merge(scope, solved))
}

/// `e`, naming the fork it happened in when that is not the whole scope.
fn in_fork(fork: &MarkerTree, scope: &MarkerTree, e: ResolveError) -> ResolveError {
    if fork == scope {
        return e;
    }
    ResolveError::InFork {
        marker: describe(&relative(fork, scope)),
        source: Box::new(e),
    }
}

/// A marker as a lock or a message writes it.
pub(super) fn describe(marker: &MarkerTree) -> String {
    marker.try_to_string().unwrap_or_else(|| "true".to_string())
}

/// `marker` as seen from inside `scope`: `TRUE` when it covers all of it, else without the
/// Python bounds the scope holds anyway.
fn relative(marker: &MarkerTree, scope: &MarkerTree) -> MarkerTree {
    if marker == scope {
        return MarkerTree::TRUE;
    }
    let python = python_range(scope);
    match python.bounding_range() {
        Some((lower, upper)) => marker.clone().simplify_python_versions(lower, upper),
        None => marker
            .clone()
            .simplify_python_versions(Bound::Unbounded, Bound::Unbounded),
    }
}

/// For each package of a fork, the marker under which the requirements reach it: the union
/// over its nodes (the package, and each extra of it), each reached as
/// `reach(node) ∨= reach(parent) ∧ edge`.
fn reachability(fork: &SolvedFork) -> BTreeMap<PackageName, MarkerTree> {
    let mut reach: BTreeMap<&Package, MarkerTree> = fork
        .graph
        .keys()
        .map(|node| (node, MarkerTree::FALSE))
        .collect();
    for (node, marker) in &fork.root {
        if let Some(slot) = reach.get_mut(node) {
            slot.or(marker.clone());
        }
    }
    // Markers only grow, and there are finitely many: this ends.
    let mut changed = true;
    while changed {
        changed = false;
        for (node, out) in &fork.graph {
            let from = reach.get(node).cloned().unwrap_or(MarkerTree::FALSE);
            if from.is_false() {
                continue;
            }
            for (dependency, edge) in out {
                let mut through = from.clone();
                through.and(edge.clone());
                if let Some(slot) = reach.get_mut(dependency) {
                    let mut grown = slot.clone();
                    grown.or(through);
                    if grown != *slot {
                        *slot = grown;
                        changed = true;
                    }
                }
            }
        }
    }
    let mut by_name: BTreeMap<PackageName, MarkerTree> = BTreeMap::new();
    for (node, marker) in reach {
        if let Some(name) = node.name() {
            by_name
                .entry(name.clone())
                .or_insert(MarkerTree::FALSE)
                .or(marker);
        }
    }
    by_name
}

/// One entry per name and version over all forks.
fn merge(scope: &MarkerTree, solved: Vec<(MarkerTree, SolvedFork)>) -> UniversalResolution {
    struct Entry {
        marker: MarkerTree,
        extras: BTreeSet<ExtraName>,
        files: Vec<IndexFile>,
        dependencies: BTreeSet<PackageName>,
    }
    let mut entries: BTreeMap<(PackageName, Version), Entry> = BTreeMap::new();
    let mut forks = Vec::with_capacity(solved.len());
    for (fork, result) in solved {
        let reach = reachability(&result);
        for Solved {
            name,
            version,
            extras,
            files,
            dependencies,
            ..
        } in result.packages
        {
            let marker = reach.get(&name).cloned().unwrap_or(MarkerTree::FALSE);
            if marker.is_false() {
                continue;
            }
            let entry = entries.entry((name, version)).or_insert_with(|| Entry {
                marker: MarkerTree::FALSE,
                extras: BTreeSet::new(),
                files,
                dependencies: BTreeSet::new(),
            });
            entry.marker.or(marker);
            entry.extras.extend(extras);
            entry.dependencies.extend(dependencies.into_keys());
        }
        forks.push(fork);
    }
    let packages = entries
        .into_iter()
        .map(|((name, version), e)| UniversalPackage {
            name,
            version,
            marker: relative(&e.marker, scope),
            extras: e.extras.into_iter().collect(),
            files: e.files,
            dependencies: e.dependencies.into_iter().collect(),
        })
        .collect();
    UniversalResolution { packages, forks }
}

#[cfg(test)]
mod tests;
