//! `pyproject.toml` as written: the tables dx-py reads, as serde structs (kebab-case keys).
//! Everything else in the file is ignored. Values are checked afterwards ([`super::Project`]),
//! so that an error can name the field.
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The parts of `pyproject.toml` that decide a resolution.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct PyProjectToml {
    /// `[project]` (PEP 621).
    pub project: Option<ProjectTable>,
    /// `[dependency-groups]` (PEP 735), in file order of their names' sort.
    pub dependency_groups: Option<BTreeMap<String, Vec<GroupEntry>>>,
    /// `[tool]`: only `[tool.dx-py]` is read.
    pub tool: Option<ToolTable>,
}

/// `[project]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ProjectTable {
    /// The distribution name.
    pub name: String,
    /// The version, unless dynamic.
    pub version: Option<String>,
    /// Runtime requirements (PEP 508).
    pub dependencies: Option<Vec<String>>,
    /// Extras and their requirements.
    pub optional_dependencies: Option<BTreeMap<String, Vec<String>>>,
    /// The Python versions the project supports (PEP 440 specifiers).
    pub requires_python: Option<String>,
    /// Fields a build backend fills in.
    pub dynamic: Option<Vec<String>>,
}

/// `[tool]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ToolTable {
    /// `[tool.dx-py]`.
    #[serde(rename = "dx-py")]
    pub dx_py: Option<DxPyTable>,
    /// `[tool.uv]`: only its `sources`, read when `tool.dx-py.sources` is absent.
    pub uv: Option<UvTable>,
}

/// `[tool.uv]`, of which only `sources` is read (the rest is uv's business).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct UvTable {
    /// `tool.uv.sources`: package name -> source, as `tool.dx-py.sources`.
    pub sources: Option<BTreeMap<String, serde_json::Value>>,
}

/// `[tool.dx-py]`: settings of this tool, named as uv names its own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DxPyTable {
    /// The environments a universal lock covers, as PEP 508 markers (issue #17).
    pub environments: Option<Vec<String>>,
    /// Constraints on any package of the resolution, as with `-c`.
    pub constraint_dependencies: Option<Vec<String>>,
    /// Requirements that replace every requirement on their package, as with `--override`.
    pub override_dependencies: Option<Vec<String>>,
    /// Where packages come from instead of the index (`lib = { path = "../lib" }`), as uv's
    /// `tool.uv.sources`; checked by `sources.rs`.
    pub sources: Option<BTreeMap<String, serde_json::Value>>,
}

/// One entry of a dependency group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEntry {
    /// A PEP 508 requirement.
    Requirement(String),
    /// `{include-group = "name"}`: every requirement of that group.
    IncludeGroup(String),
}

impl<'de> Deserialize<'de> for GroupEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = GroupEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a requirement string or `{include-group = \"name\"}`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<GroupEntry, E> {
                Ok(GroupEntry::Requirement(v.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupEntry, A::Error> {
                let mut included = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "include-group" {
                        return Err(de::Error::custom(format!(
                            "unknown key `{key}` in a dependency group entry: only \
                             `include-group` is allowed"
                        )));
                    }
                    if included.is_some() {
                        return Err(de::Error::duplicate_field("include-group"));
                    }
                    included = Some(map.next_value::<String>()?);
                }
                included
                    .map(GroupEntry::IncludeGroup)
                    .ok_or_else(|| de::Error::missing_field("include-group"))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PyProjectToml, toml_edit::de::Error> {
        toml_edit::de::from_str(text)
    }

    #[test]
    fn reads_the_tables_and_ignores_the_rest() {
        let p = parse(
            r#"
            [build-system]
            requires = ["hatchling"]

            [project]
            name = "demo"
            version = "0.1"
            requires-python = ">=3.9"
            dependencies = ["a", "b>=1"]
            dynamic = ["readme"]
            unknown-key = 1
            [project.optional-dependencies]
            cli = ["click"]

            [dependency-groups]
            dev = ["pytest", {include-group = "lint"}]
            lint = ["ruff"]

            [tool.dx-py]
            environments = ["sys_platform == 'linux'"]
            constraint-dependencies = ["urllib3<2"]
            override-dependencies = ["numpy>=2"]

            [tool.other]
            x = 1
            "#,
        )
        .unwrap();
        let project = p.project.unwrap();
        assert_eq!(project.name, "demo");
        assert_eq!(project.requires_python.as_deref(), Some(">=3.9"));
        assert_eq!(project.optional_dependencies.unwrap()["cli"], ["click"]);
        let groups = p.dependency_groups.unwrap();
        assert_eq!(
            groups["dev"],
            [
                GroupEntry::Requirement("pytest".to_string()),
                GroupEntry::IncludeGroup("lint".to_string())
            ]
        );
        let dx = p.tool.unwrap().dx_py.unwrap();
        assert_eq!(dx.override_dependencies.unwrap(), ["numpy>=2"]);
    }

    #[test]
    fn refuses_malformed_entries_with_their_position() {
        for (text, want) in [
            (
                "[dependency-groups]\ndev = [{include = 'x'}]\n",
                "unknown key `include`",
            ),
            (
                "[dependency-groups]\ndev = [{}]\n",
                "missing field `include-group`",
            ),
            (
                "[dependency-groups]\ndev = [1]\n",
                "a requirement string or",
            ),
            ("[project]\nname = 1\n", "invalid type"),
            ("[project]\nversion = '1'\n", "missing field `name`"),
            (
                "[tool.dx-py]\nenvironment = []\n",
                "unknown field `environment`",
            ),
            ("[project\n", "unclosed table"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("line"), "{text}: {e}");
        }
    }
}
