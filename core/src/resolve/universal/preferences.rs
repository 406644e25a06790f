//! What an existing universal lock asks of each fork: the version it gives the environments of
//! that fork, so that locking again moves nothing the inputs did not ask to move.
//!
//! An entry counts for a fork when its marker meets the fork. When several versions of a name
//! do (the fork spans environments the lock split, as the whole scope does before it forks),
//! the one whose marker covers the fork wins, else the highest: the solve then forks again
//! where the old lock did (a newer version that drops an old Python, requirements that differ
//! by marker), and each side prefers its own version.
use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerTree, PackageName};

use super::super::Upgrade;

/// One entry of an existing universal lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedVersion {
    /// The normalized name.
    pub name: PackageName,
    /// The version locked.
    pub version: Version,
    /// Where the lock installs it (`TRUE`: everywhere in its scope).
    pub marker: MarkerTree,
}

impl LockedVersion {
    /// An entry as a `pylock.toml` writes it (no marker: everywhere); `None` when the name, the
    /// version or the marker does not parse.
    pub fn parse(name: &str, version: &str, marker: Option<&str>) -> Option<Self> {
        Some(Self {
            name: PackageName::from_str(name).ok()?,
            version: Version::from_str(version).ok()?,
            marker: marker
                .map_or(Ok(MarkerTree::TRUE), MarkerTree::from_str)
                .ok()?,
        })
    }
}

/// The versions `locked` prefers in `fork`, leaving out the names `upgrade` frees.
pub(super) fn for_fork(
    locked: &[LockedVersion],
    fork: &MarkerTree,
    upgrade: &Upgrade,
) -> BTreeMap<PackageName, Version> {
    // name -> (covers the fork, version), the best so far.
    let mut best: BTreeMap<&PackageName, (bool, &Version)> = BTreeMap::new();
    for entry in locked {
        let freed = match upgrade {
            Upgrade::None => false,
            Upgrade::All => true,
            Upgrade::Packages(set) => set.contains(&entry.name),
        };
        if freed {
            continue;
        }
        let mut meet = fork.clone();
        meet.and(entry.marker.clone());
        if meet.is_false() {
            continue;
        }
        let mut outside = fork.clone();
        outside.and(entry.marker.negate());
        let candidate = (outside.is_false(), &entry.version);
        let slot = best.entry(&entry.name).or_insert(candidate);
        if candidate > *slot {
            *slot = candidate;
        }
    }
    best.into_iter()
        .map(|(name, (_, version))| (name.clone(), version.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, marker: &str) -> LockedVersion {
        LockedVersion::parse(name, version, Some(marker).filter(|m| !m.is_empty())).unwrap()
    }

    fn prefs(locked: &[LockedVersion], fork: &str, upgrade: &Upgrade) -> Vec<String> {
        for_fork(locked, &MarkerTree::from_str(fork).unwrap(), upgrade)
            .iter()
            .map(|(n, v)| format!("{n}=={v}"))
            .collect()
    }

    #[test]
    fn each_fork_prefers_the_version_of_its_environments() {
        let locked = [
            entry("b", "1.0", "python_full_version < '3.10'"),
            entry("b", "2.0", "python_full_version >= '3.10'"),
            entry("w", "1.0", "sys_platform == 'win32'"),
            entry("c", "1.5", ""),
        ];
        let none = Upgrade::None;
        assert_eq!(
            prefs(&locked, "python_full_version < '3.10'", &none),
            ["b==1.0", "c==1.5", "w==1.0"]
        );
        assert_eq!(
            prefs(&locked, "python_full_version >= '3.11'", &none),
            ["b==2.0", "c==1.5", "w==1.0"]
        );
        // A fork the lock split: the highest, so the solve splits again where it did.
        assert_eq!(
            prefs(&locked, "python_full_version >= '3.8'", &none),
            ["b==2.0", "c==1.5", "w==1.0"]
        );
        // An entry of environments outside the fork does not count.
        assert_eq!(
            prefs(&locked, "sys_platform == 'linux'", &none),
            ["b==2.0", "c==1.5"]
        );
    }

    #[test]
    fn an_upgraded_package_is_free_in_every_fork() {
        let locked = [
            entry("b", "1.0", "python_full_version < '3.10'"),
            entry("b", "2.0", "python_full_version >= '3.10'"),
            entry("c", "1.5", ""),
        ];
        let only_b = Upgrade::Packages([PackageName::from_str("b").unwrap()].into());
        for fork in [
            "python_full_version < '3.10'",
            "python_full_version >= '3.10'",
        ] {
            assert_eq!(prefs(&locked, fork, &only_b), ["c==1.5"]);
            assert!(prefs(&locked, fork, &Upgrade::All).is_empty());
        }
    }
}
