//! `pyproject.toml` projects: reading what decides a resolution, choosing the root
//! requirements for a set of extras and groups, hashing those inputs, and editing the file
//! without disturbing its formatting.
//!
//! ```text
//! [project]                 name, version, requires-python, dependencies, dynamic (PEP 621)
//! [project.optional-dependencies]   extras: `--extra X`, `--all-extras`
//! [dependency-groups]       PEP 735 groups: `--group G`, `--all-groups`; `dev` by default
//!                           unless `--no-dev`, as uv does; `{include-group = "…"}` expanded
//! [tool.dx-py]              environments (markers of a universal lock, issue #17),
//!                           constraint-dependencies, override-dependencies (as uv's)
//! [tool.dx-py.sources]      local paths of dependencies (else `[tool.uv.sources]`)
//! ```
//!
//! ```text
//! pyproject.rs  the file as serde structs       groups.rs     dependency groups expanded
//! selection.rs  extras and groups -> roots      hash.rs       the inputs hash of a lock
//! edit.rs       add / remove, formatting kept   error.rs      ProjectError, EditError
//! sources.rs    dependencies on local source    edit_sources.rs  `add ./lib`, `remove lib`
//! ```
//!
//! A project is found by walking up from a directory to the nearest `pyproject.toml` that
//! has a `[project]` table (one without it, e.g. a tool's settings only, is passed over).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::{MarkerTree, Requirement};

mod edit;
mod edit_sources;
mod error;
mod groups;
mod hash;
mod pyproject;
mod selection;
mod sources;

pub use edit::{AddOutcome, DependencyTarget, PyprojectEditor};
pub use error::{EditError, ProjectError};
pub use pyproject::{DxPyTable, GroupEntry, ProjectTable, PyProjectToml, ToolTable, UvTable};
pub use selection::{DevGroup, ExtrasSelection, GroupsSelection};
pub use sources::LocalDependency;

use crate::names::normalize_name;

/// The file name of a project's metadata.
pub const PYPROJECT_TOML: &str = "pyproject.toml";

/// A project's resolution inputs, checked.
#[derive(Clone, Debug)]
pub struct Project {
    /// The project's directory.
    pub root: PathBuf,
    /// Its `pyproject.toml`.
    pub path: PathBuf,
    /// The name as written.
    pub name: String,
    /// The PEP 503-normalized name.
    pub normalized_name: String,
    /// `requires-python`, parsed.
    pub requires_python: Option<VersionSpecifiers>,
    /// `project.dependencies`.
    pub dependencies: Vec<Requirement>,
    /// `project.optional-dependencies`, keyed by normalized extra name.
    pub optional_dependencies: BTreeMap<String, Vec<Requirement>>,
    /// `[dependency-groups]`, includes expanded, keyed by normalized group name.
    pub dependency_groups: BTreeMap<String, Vec<Requirement>>,
    /// `tool.dx-py.environments`, parsed.
    pub environments: Vec<MarkerTree>,
    /// `tool.dx-py.constraint-dependencies`.
    pub constraint_dependencies: Vec<Requirement>,
    /// `tool.dx-py.override-dependencies`.
    pub override_dependencies: Vec<Requirement>,
    /// Dependencies built from local source (`tool.dx-py.sources`, else `tool.uv.sources`, and
    /// `file:` direct references, which the requirement lists then name bare), by name.
    pub local_dependencies: Vec<LocalDependency>,
    /// The file as read (what the inputs hash covers).
    pub pyproject: PyProjectToml,
}

impl Project {
    /// The nearest project at or above `start`.
    pub fn discover(start: &Path) -> Result<Self, ProjectError> {
        for dir in start.ancestors() {
            let path = dir.join(PYPROJECT_TOML);
            if !path.is_file() {
                continue;
            }
            let content = read(&path)?;
            let pyproject = parse_toml(&content, &path)?;
            if pyproject.project.is_some() {
                return Self::from_pyproject(pyproject, &path);
            }
            tracing::debug!("Passing over `{}`: no `[project]` table", path.display());
        }
        Err(ProjectError::NotFound {
            start: start.to_path_buf(),
        })
    }

    /// Reads the project whose `pyproject.toml` is `path`.
    pub fn from_path(path: &Path) -> Result<Self, ProjectError> {
        let content = read(path)?;
        Self::parse_str(&content, path)
    }

    /// Parses `content` as the `pyproject.toml` at `path`.
    pub fn parse_str(content: &str, path: &Path) -> Result<Self, ProjectError> {
        Self::from_pyproject(parse_toml(content, path)?, path)
    }

    fn from_pyproject(pyproject: PyProjectToml, path: &Path) -> Result<Self, ProjectError> {
        let table = pyproject
            .project
            .as_ref()
            .ok_or_else(|| ProjectError::NoProjectTable {
                path: path.to_path_buf(),
            })?;
        let invalid = |field: &str, value: &str, reason: String| ProjectError::InvalidField {
            path: path.to_path_buf(),
            field: field.to_string(),
            value: value.to_string(),
            reason,
        };
        pep508_rs::PackageName::new(table.name.clone())
            .map_err(|e| invalid("project.name", &table.name, e.to_string()))?;
        let requires_python = table
            .requires_python
            .as_deref()
            .map(|text| {
                VersionSpecifiers::from_str(text)
                    .map_err(|e| invalid("project.requires-python", text, e.to_string()))
            })
            .transpose()?;
        let list = |field: &str, texts: Option<&Vec<String>>| {
            texts
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, t)| parse_requirement(t, &format!("{field}[{i}]"), path))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut dependencies = list("project.dependencies", table.dependencies.as_ref())?;
        let mut optional_dependencies = BTreeMap::new();
        if let Some(extras) = &table.optional_dependencies {
            for (key, (written, reqs)) in
                normalized_keys(extras, "project.optional-dependencies", path)?
            {
                let field = format!("project.optional-dependencies.{written}");
                optional_dependencies.insert(key, list(&field, Some(reqs))?);
            }
        }
        let mut dependency_groups = match &pyproject.dependency_groups {
            Some(raw) => groups::expand_groups(raw, path)?,
            None => BTreeMap::new(),
        };
        let root = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut lists = vec![("project.dependencies".to_owned(), &mut dependencies)];
        for (extra, reqs) in &mut optional_dependencies {
            lists.push((format!("project.optional-dependencies.{extra}"), reqs));
        }
        for (group, reqs) in &mut dependency_groups {
            lists.push((format!("dependency-groups.{group}"), reqs));
        }
        let local_dependencies = sources::local_dependencies(&pyproject, &root, path, &mut lists)?;
        let tool = pyproject
            .tool
            .as_ref()
            .and_then(|t| t.dx_py.clone())
            .unwrap_or_default();
        let environments = tool
            .environments
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, text)| {
                let field = format!("tool.dx-py.environments[{i}]");
                parse_marker(text).map_err(|reason| invalid(&field, text, reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let constraint_dependencies = list(
            "tool.dx-py.constraint-dependencies",
            tool.constraint_dependencies.as_ref(),
        )?;
        let override_dependencies = list(
            "tool.dx-py.override-dependencies",
            tool.override_dependencies.as_ref(),
        )?;
        Ok(Self {
            root,
            path: path.to_path_buf(),
            normalized_name: normalize_name(&table.name),
            name: table.name.clone(),
            requires_python,
            dependencies,
            optional_dependencies,
            dependency_groups,
            environments,
            constraint_dependencies,
            override_dependencies,
            local_dependencies,
            pyproject,
        })
    }

    /// The fields in `project.dynamic`.
    pub fn dynamic(&self) -> &[String] {
        self.pyproject
            .project
            .as_ref()
            .and_then(|p| p.dynamic.as_deref())
            .unwrap_or_default()
    }
}

fn read(path: &Path) -> Result<String, ProjectError> {
    fs_err::read_to_string(path).map_err(|source| ProjectError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_toml(content: &str, path: &Path) -> Result<PyProjectToml, ProjectError> {
    toml_edit::de::from_str(content).map_err(|source| ProjectError::Toml {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// A PEP 508 requirement of `field`, refused with the field named.
pub(super) fn parse_requirement(
    text: &str,
    field: &str,
    path: &Path,
) -> Result<Requirement, ProjectError> {
    crate::requirements::parse_pep508(text).map_err(|reason| ProjectError::InvalidField {
        path: path.to_path_buf(),
        field: field.to_string(),
        value: text.to_string(),
        reason,
    })
}

/// A marker expression, refused before `pep508_rs` could panic on it (see `pep508_guard`).
fn parse_marker(text: &str) -> Result<MarkerTree, String> {
    crate::requirements::pep508_guard(&format!("placeholder ; {text}"))?;
    MarkerTree::from_str(text).map_err(|e| e.message.to_string())
}

/// The keys of `table` normalized (PEP 503 / PEP 685), each with its spelling and value;
/// two spellings of one name are refused.
pub(super) fn normalized_keys<'a, V>(
    table: &'a BTreeMap<String, V>,
    table_name: &'static str,
    path: &Path,
) -> Result<BTreeMap<String, (&'a String, &'a V)>, ProjectError> {
    let mut out: BTreeMap<String, (&String, &V)> = BTreeMap::new();
    for (key, value) in table {
        let normalized = normalize_name(key);
        if let Some((first, _)) = out.get(&normalized) {
            return Err(ProjectError::DuplicateName {
                path: path.to_path_buf(),
                table: table_name,
                first: (*first).clone(),
                second: key.clone(),
            });
        }
        out.insert(normalized, (key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
