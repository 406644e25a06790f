//! Checking that a pinned set is closed under its dependencies, as `pip check` reports it.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, Requirement, VersionOrUrl};

use crate::names::PackageName;

/// One distribution of the set, with what its METADATA requires.
#[derive(Debug, Clone)]
pub struct Dist {
    /// Its name.
    pub name: PackageName,
    /// Its version.
    pub version: Version,
    /// Its `Requires-Dist` lines.
    pub requires_dist: Vec<String>,
    /// Extras asked of it at the top level (e.g. `requests[socks]==…` in requirements).
    pub extras: Vec<ExtraName>,
}

/// A dependency the set does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosureProblem {
    /// A requirement names a distribution that is not in the set.
    Missing {
        /// The requiring distribution.
        package: PackageName,
        /// Its version.
        version: Version,
        /// The requirement as written.
        requirement: String,
    },
    /// A requirement's version range excludes the version in the set.
    Conflict {
        /// The requiring distribution.
        package: PackageName,
        /// Its version.
        version: Version,
        /// The requirement as written.
        requirement: String,
        /// The name of the dependency.
        dependency: PackageName,
        /// The version in the set.
        locked: Version,
    },
    /// A `Requires-Dist` line that does not parse.
    Invalid {
        /// The requiring distribution.
        package: PackageName,
        /// The line.
        requirement: String,
        /// The parser's message.
        message: String,
    },
}

impl fmt::Display for ClosureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                package,
                version,
                requirement,
            } => {
                write!(
                    f,
                    "{package} {version} requires {requirement}, which is not in the lock"
                )
            }
            Self::Conflict {
                package,
                version,
                requirement,
                dependency,
                locked,
            } => write!(
                f,
                "{package} {version} has requirement {requirement}, but the lock has {dependency} {locked}"
            ),
            Self::Invalid {
                package,
                requirement,
                message,
            } => {
                write!(
                    f,
                    "{package} has an invalid requirement `{requirement}`: {message}"
                )
            }
        }
    }
}

/// What [`analyze`] found: the problems and, per distribution, the members it depends on.
#[derive(Debug, Clone, Default)]
pub struct Closure {
    /// Sorted; empty when the set is closed.
    pub problems: Vec<ClosureProblem>,
    /// Name -> names of the members it requires on this environment.
    pub dependencies: BTreeMap<PackageName, BTreeSet<PackageName>>,
}

/// Every problem with `dists` on the environment `env`, sorted; empty when the set is closed.
pub fn check_closure(dists: &[Dist], env: &MarkerEnvironment) -> Vec<ClosureProblem> {
    analyze(dists, env).problems
}

/// Checks `dists` on `env` and collects the dependency edges between its members.
pub fn analyze(dists: &[Dist], env: &MarkerEnvironment) -> Closure {
    let mut dependencies: BTreeMap<PackageName, BTreeSet<PackageName>> = BTreeMap::new();
    let by_name: BTreeMap<&PackageName, &Dist> = dists.iter().map(|d| (&d.name, d)).collect();
    let mut problems = BTreeSet::new();
    let mut parsed: BTreeMap<&PackageName, Vec<(String, Requirement)>> = BTreeMap::new();
    for d in dists {
        let mut reqs = Vec::new();
        for line in &d.requires_dist {
            // The lines come from wheels' METADATA: guarded against what makes pep508_rs panic.
            let parsed = crate::requirements::pep508_guard(line).and_then(|()| {
                Requirement::<pep508_rs::VerbatimUrl>::from_str(line).map_err(|e| e.to_string())
            });
            match parsed {
                Ok(r) => reqs.push((line.clone(), r)),
                Err(message) => {
                    problems.insert(ClosureProblem::Invalid {
                        package: d.name.clone(),
                        requirement: line.clone(),
                        message,
                    });
                }
            }
        }
        parsed.insert(&d.name, reqs);
    }
    // Extras in force per distribution: the top-level ones, plus those other members ask for,
    // until nothing changes (an extra can pull in requirements that ask for more extras).
    let mut extras: BTreeMap<PackageName, BTreeSet<ExtraName>> = dists
        .iter()
        .map(|d| (d.name.clone(), d.extras.iter().cloned().collect()))
        .collect();
    loop {
        let mut changed = false;
        for (name, reqs) in &parsed {
            let active = active_extras(&extras, name);
            for (_, r) in reqs {
                if !r.marker.evaluate(env, &active) {
                    continue;
                }
                let set = extras.entry(r.name.clone()).or_default();
                for e in &r.extras {
                    changed |= set.insert(e.clone());
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (name, reqs) in &parsed {
        let d = by_name[name];
        let active = active_extras(&extras, name);
        for (line, r) in reqs {
            if !r.marker.evaluate(env, &active) {
                continue;
            }
            let dep = &r.name;
            let Some(locked) = by_name.get(dep) else {
                problems.insert(ClosureProblem::Missing {
                    package: d.name.clone(),
                    version: d.version.clone(),
                    requirement: line.clone(),
                });
                continue;
            };
            dependencies
                .entry((*name).clone())
                .or_default()
                .insert(dep.clone());
            if let Some(VersionOrUrl::VersionSpecifier(spec)) = &r.version_or_url
                && !spec.contains(&locked.version)
            {
                problems.insert(ClosureProblem::Conflict {
                    package: d.name.clone(),
                    version: d.version.clone(),
                    requirement: line.clone(),
                    dependency: locked.name.clone(),
                    locked: locked.version.clone(),
                });
            }
        }
    }
    Closure {
        problems: problems.into_iter().collect(),
        dependencies,
    }
}

fn active_extras(
    extras: &BTreeMap<PackageName, BTreeSet<ExtraName>>,
    name: &PackageName,
) -> Vec<ExtraName> {
    extras.get(name).into_iter().flatten().cloned().collect()
}

impl PartialOrd for ClosureProblem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClosureProblem {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> MarkerEnvironment {
        crate::testing::linux_cp311_markers()
    }

    fn dist(name: &str, version: &str, reqs: &[&str]) -> Dist {
        Dist {
            name: PackageName::from_str(name).unwrap(),
            version: Version::from_str(version).unwrap(),
            requires_dist: reqs.iter().map(|s| s.to_string()).collect(),
            extras: vec![],
        }
    }

    /// Requires-Dist lines that make pep508_rs 0.9 panic (found by the `requirements` fuzz
    /// target) are reported as invalid.
    #[test]
    fn requirements_pep508_panics_on_are_invalid() {
        let bad = [
            "idna ; python_version >= \"3.8\" a\u{445}",
            "idna_~",
            "idna[a_]",
        ];
        let problems = check_closure(&[dist("requests", "2.32.3", &bad)], &env());
        assert_eq!(problems.len(), bad.len(), "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| matches!(p, ClosureProblem::Invalid { .. })),
            "{problems:?}"
        );
    }

    #[test]
    fn closed_set_has_no_problems() {
        let set = [
            dist(
                "requests",
                "2.32.3",
                &[
                    "idna<4,>=2.5",
                    "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
                    "colorama; sys_platform == \"win32\"",
                ],
            ),
            dist("idna", "3.7", &[]),
        ];
        assert_eq!(check_closure(&set, &env()), vec![]);
    }

    #[test]
    fn reports_missing_and_conflicting_like_pip_check() {
        let set = [
            dist("requests", "2.32.3", &["idna<3", "urllib3>=1.21"]),
            dist("idna", "3.7", &[]),
        ];
        let problems = check_closure(&set, &env());
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "requests 2.32.3 has requirement idna<3, but the lock has idna 3.7",
                "requests 2.32.3 requires urllib3>=1.21, which is not in the lock",
            ]
        );
    }

    #[test]
    fn extras_pull_in_their_requirements_transitively() {
        let mut top = dist("app", "1", &["lib[fast]>=1"]);
        top.extras = vec![];
        let set = [top, dist("lib", "1.0", &["speedup; extra == 'fast'"])];
        let problems = check_closure(&set, &env());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("speedup"));
    }
}
