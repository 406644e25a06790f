//! Which packages an install added to a venv and which it removed, for the `+ name==version` /
//! `- name==version` lines a user reads (as uv prints them).
//!
//! The venv's marker names the layout it used before; that layout's manifest lists its packages.
//! Nothing is read when the venv already had the same set (the common warm case).
use std::collections::BTreeMap;
use std::path::Path;

use crate::dpl::DplReader;
use crate::layout::{LayoutManifest, ProjectHash, venv_layout};
use crate::names::normalize_name;

/// One package added to or removed from a venv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageChange {
    /// The distribution name as the lock (or the old layout) spells it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Added (`+`) or removed (`-`).
    pub added: bool,
}

/// What the venv held before an install, read before the install replaces it.
#[derive(Debug, Default)]
pub(crate) struct Previous {
    hash: Option<String>,
    /// Normalized name -> (name, version); `None` when the old set is unknown (a venv dx-py did
    /// not make, or whose layout was cleaned away): then everything counts as added.
    packages: Option<BTreeMap<String, (String, String)>>,
}

impl Previous {
    /// Reads `venv`'s previous set unless it is `hash` already.
    pub(crate) fn read(venv: &Path, python: (u8, u8), hash: Option<&ProjectHash>) -> Self {
        let Some(old) = venv_layout(venv, python) else {
            return Self::default();
        };
        if hash.is_some_and(|h| h.to_hex() == old.project_hash) {
            return Self {
                hash: Some(old.project_hash),
                packages: None,
            };
        }
        let manifest = std::fs::read(old.layout.join(crate::layout::MANIFEST_NAME))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LayoutManifest>(&bytes).ok());
        Self {
            hash: Some(old.project_hash),
            packages: manifest.map(|m| {
                m.packages
                    .into_iter()
                    .map(|p| (normalize_name(&p.name), (p.name, p.version)))
                    .collect()
            }),
        }
    }

    /// The changes from this set to the set of `dpl`, now installed under `hash`; sorted by
    /// name, a removal before the addition of the same name.
    pub(crate) fn changes<B: AsRef<[u8]>>(
        self,
        dpl: &DplReader<B>,
        hash: &ProjectHash,
    ) -> Vec<PackageChange> {
        if self.hash.is_some_and(|h| h == hash.to_hex()) {
            return Vec::new();
        }
        let mut old = self.packages.unwrap_or_default();
        let mut out = Vec::new();
        for entry in dpl.entries().flatten() {
            match old.remove(entry.normalized_name()) {
                Some((_, version)) if version == entry.version() => {}
                Some((name, version)) => {
                    out.push(PackageChange {
                        name,
                        version,
                        added: false,
                    });
                    out.push(added(entry.name(), entry.version()));
                }
                None => out.push(added(entry.name(), entry.version())),
            }
        }
        out.extend(old.into_values().map(|(name, version)| PackageChange {
            name,
            version,
            added: false,
        }));
        out.sort_by(|a, b| {
            (normalize_name(&a.name), a.added).cmp(&(normalize_name(&b.name), b.added))
        });
        out
    }
}

fn added(name: &str, version: &str) -> PackageChange {
    PackageChange {
        name: name.to_owned(),
        version: version.to_owned(),
        added: true,
    }
}
