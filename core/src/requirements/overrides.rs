//! Overrides files (`--override FILE`): requirements in the same syntax, each of which
//! replaces every requirement on its package, wherever it appears (the root requirements and
//! every package's dependencies), as uv's `--override` does. They let a user fix a wrong
//! upper bound in a dependency's metadata.
use std::path::Path;

use pep508_rs::Requirement;

use super::entry::RequirementEntry;
use super::error::RequirementsError;
use super::parser::{Parser, Role};
use crate::names::normalize_name;

/// The entries of one or more overrides files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// In file order. Each names a package (from an index or a wheel file).
    pub entries: Vec<RequirementEntry>,
}

impl Overrides {
    /// Reads an overrides file and the files it includes with `-r`.
    pub fn from_file(path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        parser.include(path, Role::Overrides, None)?;
        Ok(Self {
            entries: parser.overrides,
        })
    }

    /// Parses `content` as an overrides file read from `path`.
    pub fn parse_str(content: &str, path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        parser.mark_read(path, Role::Overrides);
        parser.parse_content(content, path, Role::Overrides)?;
        Ok(Self {
            entries: parser.overrides,
        })
    }

    /// The overrides as the resolver takes them.
    pub fn to_requirements(&self) -> Result<Vec<Requirement>, RequirementsError> {
        self.entries
            .iter()
            .map(RequirementEntry::to_requirement)
            .collect()
    }
}

/// Applies `overrides` to one requirement: unchanged when no override names its package,
/// else replaced by every override on that package. An override keeps the `extra == "…"` part
/// of the marker it replaces, so that a dependency of an extra stays one of that extra.
pub fn apply_overrides(requirement: &Requirement, overrides: &[Requirement]) -> Vec<Requirement> {
    let name = normalize_name(requirement.name.as_ref());
    let matching: Vec<&Requirement> = overrides
        .iter()
        .filter(|o| normalize_name(o.name.as_ref()) == name)
        .collect();
    if matching.is_empty() {
        return vec![requirement.clone()];
    }
    let extra = requirement.marker.top_level_extra();
    matching
        .into_iter()
        .map(|o| {
            let mut replaced = o.clone();
            if let Some(extra) = &extra {
                replaced
                    .marker
                    .and(pep508_rs::MarkerTree::expression(extra.clone()));
            }
            replaced
        })
        .collect()
}
