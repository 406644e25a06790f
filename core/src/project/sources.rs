//! Dependencies of a project built from local source, as uv users write them:
//!
//! ```text
//! [project]
//! dependencies = ["lib", "tool", "vendored @ file:///abs/vendored-1.0.tar.gz"]
//!
//! [tool.dx-py.sources]            (else [tool.uv.sources], so a uv project syncs unchanged)
//! lib = { path = "../lib", editable = true }
//! tool = { path = "tools/tool" }
//! ```
//!
//! A `sources` entry gives the package named by its key a local directory or source archive
//! (relative to the project); a PEP 508 direct reference to a `file:` directory or archive does
//! the same, not editable. The requirements then name the package alone (with its extras and
//! marker): the caller builds the source and resolves against what it builds, and the lock
//! names the source (`docs/design/project.md`). Other kinds of sources (git, url, index,
//! workspace, several sources by marker) are refused naming the entry, never ignored.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pep508_rs::{Requirement, VersionOrUrl};
use serde_json::Value;

use super::error::ProjectError;
use super::{PyProjectToml, normalized_keys};
use crate::names::normalize_name;
use crate::requirements::{BuildKind, DirectReferenceKind, direct_reference_kind};

/// A dependency built from local source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalDependency {
    /// The PEP 503-normalized name.
    pub name: String,
    /// The directory or archive, absolute (the project's directory joined with what is
    /// written; not resolved further, so that it names the checkout it is read in).
    pub path: PathBuf,
    /// As written (relative to the project, or the `file:` URL's path).
    pub written: String,
    /// A project directory or a source archive.
    pub kind: BuildKind,
    /// Installed editable (PEP 660); only a directory can be.
    pub editable: bool,
    /// Where it was declared, for messages: `tool.dx-py.sources.lib`,
    /// `project.dependencies[2]`.
    pub field: String,
}

/// The `sources` table in force: `tool.dx-py.sources`, else `tool.uv.sources`; with its key
/// path for messages.
fn sources_table(pyproject: &PyProjectToml) -> Option<(&'static str, &BTreeMap<String, Value>)> {
    let tool = pyproject.tool.as_ref()?;
    if let Some(ours) = tool.dx_py.as_ref().and_then(|t| t.sources.as_ref()) {
        return Some(("tool.dx-py.sources", ours));
    }
    let uv = tool.uv.as_ref().and_then(|t| t.sources.as_ref())?;
    Some(("tool.uv.sources", uv))
}

/// The local dependencies of a project at `root` (its `pyproject.toml` at `path`), from its
/// `sources` table and from `file:` direct references in `lists` (each list with its field
/// name); those references are made bare requirements in place. Sorted by name.
pub(super) fn local_dependencies(
    pyproject: &PyProjectToml,
    root: &Path,
    path: &Path,
    lists: &mut [(String, &mut Vec<Requirement>)],
) -> Result<Vec<LocalDependency>, ProjectError> {
    let mut found: BTreeMap<String, LocalDependency> = BTreeMap::new();
    let mut add = |dep: LocalDependency| match found.get(&dep.name) {
        Some(first) if first.path != dep.path || first.editable != dep.editable => {
            Err(ProjectError::ConflictingSources {
                path: path.to_path_buf(),
                name: dep.name.clone(),
                first: first.field.clone(),
                second: dep.field,
            })
        }
        Some(_) => Ok(()),
        None => {
            found.insert(dep.name.clone(), dep);
            Ok(())
        }
    };
    for (field, list) in lists.iter_mut() {
        for (i, requirement) in list.iter_mut().enumerate() {
            if let Some(dep) = direct_local(requirement, &format!("{field}[{i}]"), path)? {
                requirement.version_or_url = None;
                add(dep)?;
            }
        }
    }
    let Some((table, sources)) = sources_table(pyproject) else {
        return Ok(found.into_values().collect());
    };
    for (name, (written, value)) in normalized_keys(sources, table, path)? {
        let field = format!("{table}.{written}");
        let named = lists
            .iter()
            .flat_map(|(_, l)| l.iter())
            .any(|r| normalize_name(r.name.as_ref()) == name);
        if !named {
            return Err(ProjectError::SourceWithoutDependency {
                path: path.to_path_buf(),
                field,
                name: written.clone(),
            });
        }
        add(path_source(&name, value, &field, root, path)?)?;
    }
    Ok(found.into_values().collect())
}

/// The local source a requirement names by a `file:` URL (a directory or an archive).
fn direct_local(
    requirement: &Requirement,
    field: &str,
    path: &Path,
) -> Result<Option<LocalDependency>, ProjectError> {
    let Some(VersionOrUrl::Url(url)) = &requirement.version_or_url else {
        return Ok(None);
    };
    let url = url.to_url();
    let kind = match (url.scheme(), direct_reference_kind(&url)) {
        ("file", DirectReferenceKind::Directory) => BuildKind::Directory,
        ("file", DirectReferenceKind::SourceArchive) => BuildKind::Archive,
        _ => return Ok(None),
    };
    let local = url
        .to_file_path()
        .map_err(|()| ProjectError::InvalidField {
            path: path.to_path_buf(),
            field: field.to_owned(),
            value: requirement.to_string(),
            reason: "the `file:` URL names no local path".to_owned(),
        })?;
    Ok(Some(LocalDependency {
        name: normalize_name(requirement.name.as_ref()),
        written: local.to_string_lossy().into_owned(),
        path: local,
        kind,
        editable: false,
        field: field.to_owned(),
    }))
}

/// The keys a path source may have besides `path`.
const PATH_KEYS: [&str; 2] = ["path", "editable"];

/// Keys that make a source of another kind, as uv names them.
const OTHER_KINDS: [&str; 4] = ["git", "url", "index", "workspace"];

/// One `sources` entry, checked to be a path source.
fn path_source(
    name: &str,
    value: &Value,
    field: &str,
    root: &Path,
    path: &Path,
) -> Result<LocalDependency, ProjectError> {
    let unsupported = |kind: &str| ProjectError::UnsupportedSource {
        path: path.to_path_buf(),
        field: field.to_owned(),
        kind: kind.to_owned(),
    };
    let invalid = |reason: String| ProjectError::InvalidSource {
        path: path.to_path_buf(),
        field: field.to_owned(),
        reason,
    };
    let table = match value {
        Value::Object(table) => table,
        Value::Array(_) => return Err(unsupported("several (by marker)")),
        _ => {
            return Err(invalid(
                "expected a table such as `{ path = \"../lib\" }`".into(),
            ));
        }
    };
    if let Some(kind) = OTHER_KINDS.iter().find(|k| table.contains_key(**k)) {
        return Err(unsupported(kind));
    }
    if let Some(key) = table.keys().find(|k| !PATH_KEYS.contains(&k.as_str())) {
        return Err(match key.as_str() {
            "marker" | "extra" | "group" => unsupported(&format!("`{key}`-limited")),
            _ => invalid(format!(
                "unknown key `{key}` (a path source has `path` and `editable`)"
            )),
        });
    }
    let written = match table.get("path") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(_) => return Err(invalid("`path` must be a non-empty string".into())),
        None => return Err(invalid("no `path`".into())),
    };
    let editable = match table.get("editable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("`editable` must be true or false".into())),
    };
    let local = root.join(&written);
    let kind = match url::Url::from_file_path(std::path::absolute(&local).unwrap_or_default())
        .map(|u| direct_reference_kind(&u))
    {
        Ok(DirectReferenceKind::Directory) => BuildKind::Directory,
        Ok(DirectReferenceKind::SourceArchive) => BuildKind::Archive,
        Ok(DirectReferenceKind::Wheel) => return Err(unsupported("wheel-file path")),
        _ => return Err(invalid(format!("`{written}` is not a local path"))),
    };
    if editable && kind == BuildKind::Archive {
        return Err(invalid(format!(
            "`{written}` is a source archive, which cannot be installed editable"
        )));
    }
    Ok(LocalDependency {
        name: name.to_owned(),
        path: local,
        written,
        kind,
        editable,
        field: field.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;

    const PATH: &str = "/p/app/pyproject.toml";

    fn parse(text: &str) -> Result<Project, String> {
        Project::parse_str(text, Path::new(PATH)).map_err(|e| e.to_string())
    }

    fn with_sources(deps: &str, sources: &str) -> Result<Project, String> {
        parse(&format!(
            "[project]\nname = 'app'\ndependencies = [{deps}]\n\
             [dependency-groups]\ndev = ['devlib']\n\n{sources}"
        ))
    }

    #[test]
    fn path_sources_name_directories_and_archives() {
        let p = with_sources(
            "'lib>=1', 'tool[x]; sys_platform == \"linux\"', 'requests'",
            "[tool.dx-py.sources]\nlib = { path = '../lib', editable = true }\n\
             Tool = { path = 'vendor/tool-1.0.tar.gz' }\ndevlib = { path = '/abs/devlib' }\n",
        )
        .unwrap();
        let got: Vec<_> = (p.local_dependencies.iter())
            .map(|d| (d.name.as_str(), d.path.clone(), d.kind, d.editable))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "devlib",
                    PathBuf::from("/abs/devlib"),
                    BuildKind::Directory,
                    false
                ),
                (
                    "lib",
                    PathBuf::from("/p/app/../lib"),
                    BuildKind::Directory,
                    true
                ),
                (
                    "tool",
                    PathBuf::from("/p/app/vendor/tool-1.0.tar.gz"),
                    BuildKind::Archive,
                    false
                ),
            ]
        );
        assert_eq!(p.local_dependencies[2].field, "tool.dx-py.sources.Tool");
        // The requirements themselves are unchanged.
        assert_eq!(p.dependencies[0].to_string(), "lib>=1");
    }

    #[test]
    fn uv_sources_are_read_when_ours_are_absent() {
        let uv = "[tool.uv.sources]\nlib = { path = '../lib', editable = true }\n";
        let p = with_sources("'lib'", uv).unwrap();
        assert_eq!(p.local_dependencies[0].field, "tool.uv.sources.lib");
        assert!(p.local_dependencies[0].editable);
        // Ours win, wholly: uv's table is not merged in.
        let both = format!("{uv}[tool.dx-py.sources]\nlib = {{ path = '../other' }}\n");
        let p = with_sources("'lib'", &both).unwrap();
        assert_eq!(
            p.local_dependencies[0].path,
            PathBuf::from("/p/app/../other")
        );
        assert!(!p.local_dependencies[0].editable);
        // Other `tool.uv` keys are uv's business.
        let p = with_sources("'lib'", "[tool.uv]\ndev-dependencies = []\n").unwrap();
        assert!(p.local_dependencies.is_empty());
    }

    #[test]
    fn bad_entries_are_refused_naming_them() {
        for (deps, sources, want) in [
            (
                "'lib'",
                "[tool.dx-py.sources]\nother = { path = '../o' }\n",
                "Source `tool.dx-py.sources.other` in `/p/app/pyproject.toml` is for `other`, which no dependency",
            ),
            (
                "'lib'",
                "[tool.uv.sources]\nlib = { git = 'https://h.invalid/lib.git' }\n",
                "Unsupported source `tool.uv.sources.lib` in `/p/app/pyproject.toml`: git sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { url = 'https://h.invalid/lib.tar.gz' }\n",
                "url sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { index = 'internal' }\n",
                "index sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.uv.sources]\nlib = { workspace = true }\n",
                "workspace sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.uv.sources]\nlib = [{ path = 'a', marker = 'sys_platform == \"linux\"' }]\n",
                "several (by marker) sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 'a', marker = 'sys_platform == \"linux\"' }\n",
                "`marker`-limited sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 'a', edtable = true }\n",
                "Invalid source `tool.dx-py.sources.lib` in `/p/app/pyproject.toml`: unknown key `edtable`",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { editable = true }\n",
                "no `path`",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 3 }\n",
                "`path` must be",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 'a', editable = 'yes' }\n",
                "`editable` must be true or false",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = '../lib'\n",
                "expected a table",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 'l-1.0.tar.gz', editable = true }\n",
                "cannot be installed editable",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 'lib-1.0-py3-none-any.whl' }\n",
                "wheel-file path sources are not supported yet",
            ),
            (
                "'lib'",
                "[tool.dx-py.sources]\nlib = { path = 'a' }\nLib = { path = 'b' }\n",
                "are the same name once normalized",
            ),
            (
                "'lib @ file:///abs/lib'",
                "[tool.dx-py.sources]\nlib = { path = 'other' }\n",
                "`lib` has two local sources in `/p/app/pyproject.toml`: `project.dependencies[0]` and `tool.dx-py.sources.lib`",
            ),
        ] {
            let e = with_sources(deps, sources).unwrap_err();
            assert!(e.contains(want), "{sources}: {e}");
        }
    }

    #[test]
    fn local_dependencies_count_in_the_inputs_hash() {
        let a = with_sources("'lib'", "").unwrap().inputs_hash();
        let b = with_sources("'lib'", "[tool.dx-py.sources]\nlib = { path = '../lib' }\n")
            .unwrap()
            .inputs_hash();
        let c = with_sources(
            "'lib'",
            "[tool.dx-py.sources]\nlib = { path = '../lib', editable = true }\n",
        )
        .unwrap()
        .inputs_hash();
        assert_ne!(a, b);
        assert_ne!(b, c);
    }
}
