//! PEP 735 dependency groups: names normalized, `{include-group = "…"}` expanded, unknown
//! groups and cycles refused.
use std::collections::BTreeMap;
use std::path::Path;

use pep508_rs::Requirement;

use super::error::ProjectError;
use super::pyproject::GroupEntry;
use super::{normalized_keys, parse_requirement};

/// Every group's requirements, includes expanded (in order, each included requirement where
/// its `include-group` stands, duplicates dropped), keyed by normalized name.
pub(super) fn expand_groups(
    raw: &BTreeMap<String, Vec<GroupEntry>>,
    path: &Path,
) -> Result<BTreeMap<String, Vec<Requirement>>, ProjectError> {
    let by_name = normalized_keys(raw, "dependency-groups", path)?;
    let mut expanded = BTreeMap::new();
    for name in by_name.keys() {
        let mut stack = Vec::new();
        expand(name, &by_name, path, &mut stack, &mut expanded)?;
    }
    Ok(expanded)
}

/// The raw entries of one group, with the name as written.
type Raw<'a> = BTreeMap<String, (&'a String, &'a Vec<GroupEntry>)>;

fn expand(
    name: &str,
    by_name: &Raw<'_>,
    path: &Path,
    stack: &mut Vec<String>,
    done: &mut BTreeMap<String, Vec<Requirement>>,
) -> Result<Vec<Requirement>, ProjectError> {
    if let Some(requirements) = done.get(name) {
        return Ok(requirements.clone());
    }
    if let Some(start) = stack.iter().position(|s| s == name) {
        let mut cycle = stack[start..].to_vec();
        cycle.push(name.to_string());
        return Err(ProjectError::GroupCycle {
            path: path.to_path_buf(),
            cycle,
        });
    }
    let (written, entries) = by_name[name];
    stack.push(name.to_string());
    let mut out: Vec<Requirement> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let more = match entry {
            GroupEntry::Requirement(text) => {
                let field = format!("dependency-groups.{written}[{i}]");
                vec![parse_requirement(text, &field, path)?]
            }
            GroupEntry::IncludeGroup(included) => {
                let key = crate::names::normalize_name(included);
                if !by_name.contains_key(&key) {
                    return Err(ProjectError::UnknownIncludedGroup {
                        path: path.to_path_buf(),
                        group: written.clone(),
                        included: included.clone(),
                        available: by_name.keys().cloned().collect(),
                    });
                }
                expand(&key, by_name, path, stack, done)?
            }
        };
        for r in more {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    stack.pop();
    done.insert(name.to_string(), out.clone());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(text: &str) -> Result<BTreeMap<String, Vec<String>>, ProjectError> {
        let raw: super::super::pyproject::PyProjectToml = toml_edit::de::from_str(text).unwrap();
        let expanded = expand_groups(
            &raw.dependency_groups.unwrap(),
            Path::new("/p/pyproject.toml"),
        )?;
        Ok(expanded
            .into_iter()
            .map(|(k, v)| (k, v.iter().map(ToString::to_string).collect()))
            .collect())
    }

    #[test]
    fn includes_expand_in_place_and_names_normalize() {
        let g = groups(
            "[dependency-groups]\n\
             Dev = ['pytest', {include-group = 'Lint_Tools'}, 'coverage', {include-group = 'typing'}]\n\
             lint-tools = ['ruff', {include-group = 'typing'}]\n\
             typing = ['mypy>=1']\n",
        )
        .unwrap();
        assert_eq!(g["dev"], ["pytest", "ruff", "mypy>=1", "coverage"]);
        assert_eq!(g["lint-tools"], ["ruff", "mypy>=1"]);
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn refuses_cycles_unknown_groups_duplicates_and_bad_requirements() {
        let e = groups(
            "[dependency-groups]\na = [{include-group = 'b'}]\nb = [{include-group = 'c'}]\n\
             c = [{include-group = 'A'}]\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dependency groups in `/p/pyproject.toml` include each other: a -> b -> c -> a"
        );
        let e = groups("[dependency-groups]\na = [{include-group = 'a'}]\n").unwrap_err();
        assert!(e.to_string().contains("a -> a"), "{e}");
        let e = groups("[dependency-groups]\ndev = [{include-group = 'nope'}]\nlint = []\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Group `dev` in `/p/pyproject.toml` includes `nope`, which is not a group (groups: \
             `dev`, `lint`)"
        );
        let e = groups("[dependency-groups]\nDev = []\ndev = []\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("`Dev` and `dev` in `dependency-groups`"),
            "{e}"
        );
        let e = groups("[dependency-groups]\ndev = ['ok', 'bad>=']\n").unwrap_err();
        assert!(
            e.to_string().contains("Invalid `dependency-groups.dev[1]`"),
            "{e}"
        );
    }
}
