//! The per-layout manifest `dx-py-layout.json`: what a layout holds, written last into the
//! temporary tree so that its presence means the tree was complete when it was renamed in.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::index::link_mode_from_u8;
use super::{Layout, LayoutEntry, LayoutError, LayoutPackage, LayoutSpec, LinkMode, ProjectHash};
use crate::hash::ContentHash;

/// File name of the manifest inside a layout directory.
pub(crate) const MANIFEST_NAME: &str = "dx-py-layout.json";
/// Manifest format version.
const MANIFEST_FORMAT: u32 = 1;

/// What a layout was built from and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutManifest {
    /// Manifest format version (1).
    pub format: u32,
    /// The layout's key, hex.
    pub project_hash: String,
    /// The interpreter tag the set was hashed with.
    pub interpreter_tag: String,
    /// `(major, minor)` of the interpreter.
    pub python_version: (u8, u8),
    /// The weakest link mode used: `hardlink`, `symlink` or `copy`.
    pub link_mode: String,
    /// How many files were placed each way.
    pub links: LinkCounts,
    /// Files and in-package symlinks.
    pub file_count: u64,
    /// Directories, including the top-level scheme directories.
    pub dir_count: u64,
    /// Bytes of the files.
    pub total_bytes: u64,
    /// Build time, unix seconds.
    pub created: u64,
    /// The packages, in the order they were merged (later wins on a shared file).
    pub packages: Vec<ManifestPackage>,
}

/// Per-mode file counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounts {
    /// Hard links to store files.
    pub hardlink: u64,
    /// Symbolic links to store files (hard links were impossible).
    pub symlink: u64,
    /// Copies (no link was possible).
    pub copy: u64,
    /// Symlinks shipped inside packages, recreated as they are.
    pub package_symlink: u64,
}

impl LinkCounts {
    /// The weakest mode used: any copy makes `Copy`, else any symlink `Symlink`.
    pub fn weakest(&self) -> LinkMode {
        if self.copy > 0 {
            LinkMode::Copy
        } else if self.symlink > 0 {
            LinkMode::Symlink
        } else {
            LinkMode::Hardlink
        }
    }
}

/// One package in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPackage {
    /// Distribution name as given.
    pub name: String,
    /// Version.
    pub version: String,
    /// Store hash, hex.
    pub hash: String,
    /// The wheel's sha256, hex (part of the project hash). Empty in manifests written before
    /// it was recorded: their hash no longer matches, and the layout is rebuilt.
    #[serde(default)]
    pub wheel_sha256: String,
    /// Extra trees merged over the package.
    pub extra_trees: Vec<PathBuf>,
}

pub(crate) fn link_mode_name(mode: LinkMode) -> &'static str {
    match mode {
        LinkMode::Hardlink => "hardlink",
        LinkMode::Symlink => "symlink",
        LinkMode::Copy => "copy",
    }
}

fn link_mode_parse(s: &str) -> Option<LinkMode> {
    (0..3)
        .filter_map(link_mode_from_u8)
        .find(|m| link_mode_name(*m) == s)
}

impl LayoutManifest {
    /// Reads and checks `{layout_dir}/dx-py-layout.json`; `expected` is the hash the directory
    /// is named after.
    pub fn read(layout_dir: &Path, expected: &ProjectHash) -> Result<Self, LayoutError> {
        let path = layout_dir.join(MANIFEST_NAME);
        let bytes = fs_err::read(&path)?;
        let bad = |reason: String| LayoutError::Manifest {
            path: path.clone(),
            reason,
        };
        let m: Self = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(bad(format!(
                "expected format {MANIFEST_FORMAT}, got {}",
                m.format
            )));
        }
        if m.project_hash != expected.to_hex() {
            return Err(bad(format!(
                "expected project hash `{expected}`, got `{}`",
                m.project_hash
            )));
        }
        if link_mode_parse(&m.link_mode).is_none() {
            return Err(bad(format!(
                "expected link mode `hardlink`, `symlink` or `copy`, got `{}`",
                m.link_mode
            )));
        }
        for p in &m.packages {
            p.hash
                .parse::<ContentHash>()
                .map_err(|e| bad(e.to_string()))?;
        }
        Ok(m)
    }

    /// The link mode (checked by [`LayoutManifest::read`]).
    pub fn link_mode(&self) -> LinkMode {
        link_mode_parse(&self.link_mode).unwrap_or(LinkMode::Copy)
    }

    /// The spec that rebuilds this layout (hashes checked by [`LayoutManifest::read`]).
    pub fn to_spec(&self) -> LayoutSpec {
        LayoutSpec {
            interpreter_tag: self.interpreter_tag.clone(),
            python_version: self.python_version,
            packages: self
                .packages
                .iter()
                .filter_map(|p| {
                    Some(LayoutPackage {
                        name: p.name.clone(),
                        version: p.version.clone(),
                        hash: p.hash.parse().ok()?,
                        wheel_sha256: sha256_from_hex(&p.wheel_sha256)?,
                        extra_trees: p.extra_trees.clone(),
                    })
                })
                .collect(),
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub(crate) fn new(
        hash: &ProjectHash,
        spec: &LayoutSpec,
        ordered: &[&LayoutPackage],
        links: LinkCounts,
        dir_count: u64,
        total_bytes: u64,
        created: u64,
    ) -> Self {
        Self {
            format: MANIFEST_FORMAT,
            project_hash: hash.to_hex(),
            interpreter_tag: spec.interpreter_tag.clone(),
            python_version: spec.python_version,
            link_mode: link_mode_name(links.weakest()).to_string(),
            links,
            file_count: links.hardlink + links.symlink + links.copy + links.package_symlink,
            dir_count,
            total_bytes,
            created,
            packages: ordered
                .iter()
                .map(|p| ManifestPackage {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    hash: p.hash.to_hex(),
                    wheel_sha256: data_encoding::HEXLOWER.encode(&p.wheel_sha256),
                    extra_trees: p.extra_trees.clone(),
                })
                .collect(),
        }
    }

    /// The index entry describing this layout; `used` is set to `used`.
    pub fn to_entry(&self, hash: ProjectHash, used: u64) -> LayoutEntry {
        let mut e = LayoutEntry::new(hash, &self.interpreter_tag, self.python_version);
        e.created = self.created;
        e.used = used;
        e.total_bytes = self.total_bytes;
        e.package_count = u32::try_from(self.packages.len()).unwrap_or(u32::MAX);
        e.file_count = u32::try_from(self.file_count).unwrap_or(u32::MAX);
        e.link_mode = self.link_mode();
        e
    }

    pub(crate) fn to_layout(
        &self,
        hash: ProjectHash,
        path: PathBuf,
        outcome: super::BuildOutcome,
    ) -> Layout {
        Layout {
            project_hash: hash,
            path,
            link_mode: self.link_mode(),
            package_count: self.packages.len(),
            file_count: self.file_count,
            total_bytes: self.total_bytes,
            outcome,
        }
    }
}

/// 64 hex digits as 32 bytes; `None` otherwise (a manifest from before sha256s were recorded).
fn sha256_from_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::index::link_mode_to_u8;

    #[test]
    fn link_mode_codes_and_names_round_trip() {
        for m in [LinkMode::Hardlink, LinkMode::Symlink, LinkMode::Copy] {
            assert_eq!(link_mode_from_u8(link_mode_to_u8(m)), Some(m));
            assert_eq!(link_mode_parse(link_mode_name(m)), Some(m));
        }
        assert_eq!(link_mode_parse("junction"), None);
    }

    #[test]
    fn weakest_mode_wins() {
        let mut c = LinkCounts {
            hardlink: 3,
            ..LinkCounts::default()
        };
        assert_eq!(c.weakest(), LinkMode::Hardlink);
        c.symlink = 1;
        assert_eq!(c.weakest(), LinkMode::Symlink);
        c.copy = 1;
        assert_eq!(c.weakest(), LinkMode::Copy);
    }
}
