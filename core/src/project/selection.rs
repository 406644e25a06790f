//! The root requirements of a project for a choice of extras and dependency groups, as uv
//! chooses them: `project.dependencies`, plus the selected extras' requirements, plus the
//! selected groups' (the `dev` group by default, unless `--no-dev`). A requirement on the
//! project itself (`proj[cli]` in an extra or a group) stands for those extras of the project:
//! their requirements are included under its marker.
use std::collections::BTreeSet;

use pep508_rs::{Requirement, VersionOrUrl};

use super::Project;
use super::error::ProjectError;
use crate::names::normalize_name;
use crate::requirements::{DirectReferenceKind, direct_reference_kind};

/// Which extras (`project.optional-dependencies`) to include.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExtrasSelection {
    /// None (the default).
    #[default]
    None,
    /// `--extra X`, as given.
    Some(Vec<String>),
    /// `--all-extras`.
    All,
}

/// Whether the `dev` group is included without being named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DevGroup {
    /// Included when the project has one (uv's default).
    #[default]
    Include,
    /// `--no-dev`: left out unless named with `--group dev`.
    Exclude,
}

/// Which dependency groups to include.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupsSelection {
    /// `--group G`, as given.
    pub groups: Vec<String>,
    /// `--all-groups`.
    pub all: bool,
    /// The `dev` group's default.
    pub dev: DevGroup,
}

/// The name of the group included by default.
const DEV: &str = "dev";

impl Project {
    /// The root requirements for these extras and groups, in order (dependencies, extras,
    /// groups), without duplicates. Unknown extras and groups are refused, naming the choices.
    pub fn requirements(
        &self,
        extras: &ExtrasSelection,
        groups: &GroupsSelection,
    ) -> Result<Vec<Requirement>, ProjectError> {
        let dynamic = |field: &str| self.dynamic().iter().any(|d| d == field);
        if dynamic("dependencies") {
            return Err(ProjectError::Dynamic {
                path: self.path.clone(),
                field: "project.dependencies",
            });
        }
        if *extras != ExtrasSelection::None && dynamic("optional-dependencies") {
            return Err(ProjectError::Dynamic {
                path: self.path.clone(),
                field: "project.optional-dependencies",
            });
        }
        let extras = self.selected_extras(extras)?;
        let groups = self.selected_groups(groups)?;
        let mut out = Vec::new();
        let mut seen_extras = BTreeSet::new();
        self.push_all(&self.dependencies, None, &mut seen_extras, &mut out)?;
        for extra in extras {
            self.push_extra(&extra, None, &mut seen_extras, &mut out)?;
        }
        for group in groups {
            // Groups of the project itself may name its extras too: each is expanded once
            // per group, under the marker it is named with.
            let mut seen = seen_extras.clone();
            self.push_all(&self.dependency_groups[&group], None, &mut seen, &mut out)?;
        }
        for requirement in &out {
            self.check_direct_reference(requirement)?;
        }
        Ok(out)
    }

    /// A direct reference must be a wheel until builds arrive (issue #16).
    fn check_direct_reference(&self, requirement: &Requirement) -> Result<(), ProjectError> {
        let Some(VersionOrUrl::Url(url)) = &requirement.version_or_url else {
            return Ok(());
        };
        match direct_reference_kind(url) {
            DirectReferenceKind::Wheel => Ok(()),
            DirectReferenceKind::SourceArchive | DirectReferenceKind::Directory => {
                Err(ProjectError::NeedsBuild {
                    path: self.path.clone(),
                    requirement: requirement.to_string(),
                })
            }
            DirectReferenceKind::Unsupported(reason) => Err(ProjectError::UnsupportedReference {
                path: self.path.clone(),
                requirement: requirement.to_string(),
                reason,
            }),
        }
    }

    fn selected_extras(&self, selection: &ExtrasSelection) -> Result<Vec<String>, ProjectError> {
        match selection {
            ExtrasSelection::None => Ok(Vec::new()),
            ExtrasSelection::All => Ok(self.optional_dependencies.keys().cloned().collect()),
            ExtrasSelection::Some(names) => names
                .iter()
                .map(|name| {
                    let key = normalize_name(name);
                    if self.optional_dependencies.contains_key(&key) {
                        Ok(key)
                    } else {
                        Err(self.unknown_extra(name))
                    }
                })
                .collect(),
        }
    }

    fn unknown_extra(&self, name: &str) -> ProjectError {
        ProjectError::UnknownExtra {
            project: self.name.clone(),
            extra: name.to_string(),
            available: self.optional_dependencies.keys().cloned().collect(),
        }
    }

    fn selected_groups(&self, selection: &GroupsSelection) -> Result<Vec<String>, ProjectError> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |name: String| {
            if !out.contains(&name) {
                out.push(name);
            }
        };
        let named: Vec<String> = selection
            .groups
            .iter()
            .map(|name| {
                let key = normalize_name(name);
                if self.dependency_groups.contains_key(&key) {
                    Ok(key)
                } else {
                    Err(ProjectError::UnknownGroup {
                        project: self.name.clone(),
                        group: name.clone(),
                        available: self.dependency_groups.keys().cloned().collect(),
                    })
                }
            })
            .collect::<Result<_, _>>()?;
        let include_dev = selection.dev == DevGroup::Include;
        if include_dev && self.dependency_groups.contains_key(DEV) {
            add(DEV.to_string());
        }
        if selection.all {
            for name in self.dependency_groups.keys() {
                if name != DEV || include_dev {
                    add(name.clone());
                }
            }
        }
        for name in named {
            add(name);
        }
        Ok(out)
    }

    /// Adds `requirements`, each under `marker` (the marker of the self-reference that led
    /// here), expanding references to the project itself.
    fn push_all(
        &self,
        requirements: &[Requirement],
        marker: Option<&pep508_rs::MarkerTree>,
        seen_extras: &mut BTreeSet<String>,
        out: &mut Vec<Requirement>,
    ) -> Result<(), ProjectError> {
        for requirement in requirements {
            let mut requirement = requirement.clone();
            if let Some(marker) = marker {
                requirement.marker.and(marker.clone());
            }
            if normalize_name(requirement.name.as_ref()) != self.normalized_name {
                if !out.contains(&requirement) {
                    out.push(requirement);
                }
                continue;
            }
            // `proj[a,b]`: the project's own extras. Its dependencies are already in.
            for extra in &requirement.extras {
                let key = normalize_name(extra.as_ref());
                if !self.optional_dependencies.contains_key(&key) {
                    return Err(self.unknown_extra(extra.as_ref()));
                }
                self.push_extra(&key, Some(&requirement.marker), seen_extras, out)?;
            }
        }
        Ok(())
    }

    fn push_extra(
        &self,
        extra: &str,
        marker: Option<&pep508_rs::MarkerTree>,
        seen_extras: &mut BTreeSet<String>,
        out: &mut Vec<Requirement>,
    ) -> Result<(), ProjectError> {
        // An extra that names itself, directly or through another, ends here.
        if !seen_extras.insert(extra.to_string()) {
            return Ok(());
        }
        self.push_all(&self.optional_dependencies[extra], marker, seen_extras, out)
    }
}
