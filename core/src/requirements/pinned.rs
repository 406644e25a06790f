//! The pinned view of a requirements file: every requirement pinned to one version with `==`
//! (or `===`), nothing else to apply (no constraints, no direct references). Such a file needs
//! no resolution: the install path picks one wheel per pin and checks the set is closed, and
//! its inputs hash is the one locks written before resolution arrived recorded.
use std::path::PathBuf;

use pep440_rs::{Operator, Version};
use pep508_rs::MarkerTree;

use super::Requirements;
use super::entry::{RequirementEntry, RequirementSource, settled_marker};
use super::error::{Location, NotPinned};
use crate::names::normalize_name;

/// One requirement pinned to exactly one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRequirement {
    /// The name as written.
    pub name: String,
    /// The PEP 503-normalized name.
    pub normalized: String,
    /// The pinned version in PEP 440 normal form (`1.0-Alpha1` is written `1.0a1`).
    pub version: String,
    /// The pinned version, parsed.
    pub pep440_version: Version,
    /// Extras, normalized, sorted, without duplicates.
    pub extras: Vec<String>,
    /// The environment marker, `None` when the requirement always applies.
    pub marker: Option<MarkerTree>,
    /// Allowed sha256 digests of the distribution file, lowercase hex, sorted, without duplicates.
    pub hashes: Vec<String>,
    /// 1-based line of the requirement in `source`.
    pub line: usize,
    /// The file the requirement was read from.
    pub source: PathBuf,
}

impl PinnedRequirement {
    /// Where the requirement was written.
    pub fn location(&self) -> Location {
        Location {
            path: self.source.clone(),
            line: self.line,
        }
    }

    /// The marker in PEP 508 canonical form, `None` when it always applies.
    pub fn marker_string(&self) -> Option<String> {
        self.marker.as_ref().and_then(settled_marker)
    }
}

/// The version an index requirement is pinned to, if it is (`==V` without a wildcard, `===V`).
pub(super) fn pinned_version(entry: &RequirementEntry) -> Option<&Version> {
    if entry.source != RequirementSource::Index {
        return None;
    }
    match entry.specifiers.iter().collect::<Vec<_>>().as_slice() {
        [only] if matches!(only.operator(), Operator::Equal | Operator::ExactEqual) => {
            Some(only.version())
        }
        _ => None,
    }
}

impl Requirements {
    /// The pins, when every requirement is pinned to one version from an index and there is
    /// nothing that only resolution applies (constraints). Two pins of one package to one
    /// version are merged (extras and hashes joined, markers or-ed), in file order.
    ///
    /// `Err` names the first line that needs resolution.
    pub fn pinned(&self) -> Result<Vec<PinnedRequirement>, NotPinned> {
        if let Some(c) = self.constraints.first() {
            return Err(NotPinned {
                at: c.location.clone(),
                text: c.requirement_text(),
                name: c.name.clone(),
                why: "is a constraint: constraints apply through resolution",
            });
        }
        let mut out: Vec<PinnedRequirement> = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let Some(version) = pinned_version(entry) else {
                let why = match entry.source {
                    RequirementSource::Index => "is not pinned to one version with `==`",
                    RequirementSource::Wheel(_) => "names a wheel file, which resolution reads",
                    RequirementSource::Build(_) => "names source to build",
                };
                return Err(NotPinned {
                    at: entry.location.clone(),
                    text: entry.requirement_text(),
                    name: entry.name.clone(),
                    why,
                });
            };
            let name = entry.name.clone().unwrap_or_default();
            let normalized = normalize_name(&name);
            let same = out
                .iter_mut()
                .find(|e| e.normalized == normalized && &e.pep440_version == version);
            if let Some(existing) = same {
                merge(existing, entry);
                continue;
            }
            out.push(PinnedRequirement {
                normalized,
                name,
                version: version.to_string(),
                pep440_version: version.clone(),
                extras: entry.extras.clone(),
                marker: entry.marker.clone(),
                hashes: entry.hashes.clone(),
                line: entry.location.line,
                source: entry.location.path.clone(),
            });
        }
        Ok(out)
    }
}

/// Joins a second pin of the same version into the first.
fn merge(existing: &mut PinnedRequirement, entry: &RequirementEntry) {
    for x in &entry.extras {
        if !existing.extras.contains(x) {
            existing.extras.push(x.clone());
        }
    }
    existing.extras.sort();
    for x in &entry.hashes {
        if !existing.hashes.contains(x) {
            existing.hashes.push(x.clone());
        }
    }
    existing.hashes.sort();
    existing.marker = match (existing.marker.take(), entry.marker.clone()) {
        (Some(mut a), Some(b)) => {
            a.or(b);
            (!a.is_true()).then_some(a)
        }
        _ => None,
    };
}

/// A length-prefixed field of an inputs hash.
pub(super) fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The inputs hash of a pinned file, byte for byte the one written before resolution arrived
/// (locks recorded it: changing it would make every existing lock stale).
pub(super) fn pinned_inputs_hash(reqs: &Requirements, pins: &[PinnedRequirement]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    field(&mut h, b"dx-py requirements inputs v1");
    index_options(&mut h, reqs);
    let mut entries: Vec<(&str, &str, String, &PinnedRequirement)> = pins
        .iter()
        .map(|e| {
            (
                e.normalized.as_str(),
                e.version.as_str(),
                e.marker_string().unwrap_or_default(),
                e,
            )
        })
        .collect();
    entries.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    h.update(&(entries.len() as u64).to_le_bytes());
    for (name, version, marker, e) in entries {
        field(&mut h, name.as_bytes());
        field(&mut h, version.as_bytes());
        field(&mut h, marker.as_bytes());
        h.update(&(e.extras.len() as u64).to_le_bytes());
        for x in &e.extras {
            field(&mut h, x.as_bytes());
        }
        h.update(&(e.hashes.len() as u64).to_le_bytes());
        for x in &e.hashes {
            field(&mut h, x.as_bytes());
        }
    }
    *h.finalize().as_bytes()
}

/// The index URLs and the two flags both hash versions start with.
pub(super) fn index_options(h: &mut blake3::Hasher, reqs: &Requirements) {
    field(h, reqs.index_url.as_deref().unwrap_or_default().as_bytes());
    let mut extra: Vec<&str> = reqs.extra_index_urls.iter().map(String::as_str).collect();
    extra.sort_unstable();
    extra.dedup();
    h.update(&(extra.len() as u64).to_le_bytes());
    for url in extra {
        field(h, url.as_bytes());
    }
    h.update(&[u8::from(reqs.no_index), u8::from(reqs.require_hashes)]);
}
