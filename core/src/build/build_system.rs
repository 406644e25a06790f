//! A source tree's `[build-system]` (PEP 517/518): its requirements, backend and backend path,
//! with the setuptools legacy default where `pyproject.toml` or the table is absent (as pip and
//! uv do).
use std::path::Path;
use std::str::FromStr;

use pep508_rs::Requirement;

/// The backend pip and uv use for a tree without `build-backend`.
pub const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";
/// What pip and uv require for a tree without `[build-system]`.
pub const LEGACY_REQUIRES: &str = "setuptools>=40.8.0";

/// How to build a source tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildSystem {
    /// `requires`: what the build environment holds.
    pub requires: Vec<Requirement>,
    /// `build-backend`: `module` or `module:object`.
    pub backend: String,
    /// `backend-path`: directories of the tree put first on `sys.path`.
    pub backend_path: Vec<String>,
}

impl BuildSystem {
    /// The setuptools legacy default.
    pub fn legacy() -> Self {
        Self {
            requires: vec![Requirement::from_str(LEGACY_REQUIRES).expect("a valid requirement")],
            backend: LEGACY_BACKEND.to_string(),
            backend_path: Vec::new(),
        }
    }

    /// The build system of the source tree `tree` (its `pyproject.toml`); `Err` holds why the
    /// table is unusable.
    pub fn read(tree: &Path) -> Result<Self, String> {
        let path = tree.join("pyproject.toml");
        let text = match fs_err::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::legacy()),
            Err(e) => return Err(e.to_string()),
        };
        Self::parse(&text)
    }

    /// Whether `pyproject.toml`'s `text` has a `[build-system]` table: uv installs a project
    /// itself only then (without one, only its dependencies).
    pub fn declared(text: &str) -> Result<bool, String> {
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        Ok(doc.contains_key("build-system"))
    }

    /// The build system `pyproject.toml`'s `text` gives.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        let Some(table) = doc.get("build-system") else {
            return Ok(Self::legacy());
        };
        let table = table
            .as_table_like()
            .ok_or("`build-system` is not a table")?;
        // PEP 518: `requires` is mandatory once the table exists.
        let requires = table
            .get("requires")
            .ok_or("the table has no `requires` key")?
            .as_array()
            .ok_or("`requires` is not an array")?
            .iter()
            .map(|v| {
                let s = v.as_str().ok_or("`requires` holds a non-string")?;
                crate::requirements::pep508_guard(s)
                    .and_then(|()| Requirement::from_str(s).map_err(|e| e.to_string()))
                    .map_err(|e| format!("invalid requirement `{s}`: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let backend = match table.get("build-backend") {
            None => LEGACY_BACKEND.to_string(),
            Some(v) => v
                .as_str()
                .ok_or("`build-backend` is not a string")?
                .to_string(),
        };
        let backend_path = match table.get("backend-path") {
            None => Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or("`backend-path` is not an array")?
                .iter()
                .map(|p| p.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("`backend-path` holds a non-string")?,
        };
        Ok(Self {
            requires,
            backend,
            backend_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_table_is_the_legacy_default() {
        let b = BuildSystem::parse("[project]\nname = 'x'\n").unwrap();
        assert_eq!(b, BuildSystem::legacy());
        assert_eq!(b.requires[0].to_string(), "setuptools>=40.8.0");
    }

    #[test]
    fn a_table_without_backend_uses_the_legacy_backend_with_its_requires() {
        let b = BuildSystem::parse("[build-system]\nrequires = ['setuptools', 'wheel']\n").unwrap();
        assert_eq!(b.backend, LEGACY_BACKEND);
        assert_eq!(b.requires.len(), 2);
    }

    #[test]
    fn declared_tells_whether_the_table_exists() {
        assert_eq!(BuildSystem::declared("[project]\nname = 'x'\n"), Ok(false));
        let text = "[build-system]\nrequires = []\n";
        assert_eq!(BuildSystem::declared(text), Ok(true));
        assert!(BuildSystem::declared("[build-system").is_err());
    }

    #[test]
    fn a_full_table() {
        let b = BuildSystem::parse(
            "[build-system]\nrequires = ['flit_core>=3']\nbuild-backend = 'flit_core.buildapi'\n\
             backend-path = ['_build']\n",
        )
        .unwrap();
        assert_eq!(b.backend, "flit_core.buildapi");
        assert_eq!(b.backend_path, ["_build"]);
    }

    #[test]
    fn bad_tables_say_why() {
        let e = BuildSystem::parse("[build-system]\nbuild-backend = 'x'\n").unwrap_err();
        assert!(e.contains("no `requires`"), "{e}");
        let e = BuildSystem::parse("[build-system]\nrequires = ['x >']\n").unwrap_err();
        assert!(e.contains("invalid requirement `x >`"), "{e}");
    }
}
