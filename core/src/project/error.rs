//! Why a project could not be read, selected from or edited: each error names the
//! `pyproject.toml` and the field it concerns.
use std::path::PathBuf;

/// A project that could not be read or whose inputs are not valid.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The file could not be read.
    #[error("Failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not the shape `pyproject.toml` has.
    #[error("Invalid `{}`: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        #[source]
        source: Box<toml_edit::de::Error>,
    },
    /// No `pyproject.toml` with a `[project]` table here or above.
    #[error(
        "No project found in `{}` or any parent directory: create a `pyproject.toml` with a \
         `[project]` table, or name a requirements file with `-r`",
        start.display()
    )]
    NotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// A `pyproject.toml` without `[project]` (given explicitly).
    #[error("`{}` has no `[project]` table", path.display())]
    NoProjectTable {
        /// The file.
        path: PathBuf,
    },
    /// A field whose value is not valid (a requirement, a name, a marker, `requires-python`).
    #[error("Invalid `{field}` in `{}`: `{value}`: {reason}", path.display())]
    InvalidField {
        /// The file.
        path: PathBuf,
        /// The field, e.g. `project.optional-dependencies.cli[2]`.
        field: String,
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Two keys that normalize to one name (`Dev` and `dev` in `[dependency-groups]`).
    #[error(
        "`{first}` and `{second}` in `{table}` of `{}` are the same name once normalized",
        path.display()
    )]
    DuplicateName {
        /// The file.
        path: PathBuf,
        /// The table, e.g. `dependency-groups`.
        table: &'static str,
        /// One spelling.
        first: String,
        /// The other.
        second: String,
    },
    /// `{include-group = "x"}` naming a group that does not exist.
    #[error(
        "Group `{group}` in `{}` includes `{included}`, which is not a group (groups: {})",
        path.display(),
        names(available)
    )]
    UnknownIncludedGroup {
        /// The file.
        path: PathBuf,
        /// The including group.
        group: String,
        /// The name it includes.
        included: String,
        /// The groups there are.
        available: Vec<String>,
    },
    /// Groups that include each other.
    #[error("Dependency groups in `{}` include each other: {}", path.display(), cycle.join(" -> "))]
    GroupCycle {
        /// The file.
        path: PathBuf,
        /// The cycle, first group repeated at the end.
        cycle: Vec<String>,
    },
    /// `--extra X` for an extra the project does not have.
    #[error(
        "Project `{project}` has no extra `{extra}` (extras: {})",
        names(available)
    )]
    UnknownExtra {
        /// The project's name.
        project: String,
        /// The extra asked for.
        extra: String,
        /// The extras there are.
        available: Vec<String>,
    },
    /// `--group G` for a group the project does not have.
    #[error(
        "Project `{project}` has no dependency group `{group}` (groups: {})",
        names(available)
    )]
    UnknownGroup {
        /// The project's name.
        project: String,
        /// The group asked for.
        group: String,
        /// The groups there are.
        available: Vec<String>,
    },
    /// A direct reference to a remote source archive: needs a download and a build.
    #[error(
        "Requirement `{requirement}` in `{}` names a remote source archive, which is not \
         supported yet: name a wheel, or a local path (`name @ file:///abs/path`)",
        path.display()
    )]
    NeedsBuild {
        /// The file.
        path: PathBuf,
        /// The requirement.
        requirement: String,
    },
    /// A direct reference this tool cannot use.
    #[error("Unsupported reference `{requirement}` in `{}`: {reason}", path.display())]
    UnsupportedReference {
        /// The file.
        path: PathBuf,
        /// The requirement.
        requirement: String,
        /// Why.
        reason: &'static str,
    },
    /// A `sources` entry of a kind this tool does not take yet (git, url, index, workspace,
    /// several sources by marker).
    #[error(
        "Unsupported source `{field}` in `{}`: {kind} sources are not supported yet; use \
         `{{ path = \"…\" }}` or name the package from the index",
        path.display()
    )]
    UnsupportedSource {
        /// The file.
        path: PathBuf,
        /// `tool.dx-py.sources.NAME` or `tool.uv.sources.NAME`.
        field: String,
        /// What kind (`git`, `url`, …).
        kind: String,
    },
    /// A `sources` entry that is not a valid path source.
    #[error("Invalid source `{field}` in `{}`: {reason}", path.display())]
    InvalidSource {
        /// The file.
        path: PathBuf,
        /// `tool.dx-py.sources.NAME` or `tool.uv.sources.NAME`.
        field: String,
        /// Why.
        reason: String,
    },
    /// A `sources` entry for a package that no dependency names.
    #[error(
        "Source `{field}` in `{}` is for `{name}`, which no dependency, extra or group names: \
         add `{name}` to the dependencies or remove the entry",
        path.display()
    )]
    SourceWithoutDependency {
        /// The file.
        path: PathBuf,
        /// `tool.dx-py.sources.NAME` or `tool.uv.sources.NAME`.
        field: String,
        /// The package.
        name: String,
    },
    /// One package named with two different local sources.
    #[error(
        "`{name}` has two local sources in `{}`: `{first}` and `{second}`; keep one",
        path.display()
    )]
    ConflictingSources {
        /// The file.
        path: PathBuf,
        /// The package.
        name: String,
        /// Where the first was declared.
        first: String,
        /// Where the second was declared.
        second: String,
    },
    /// Dependencies listed in `project.dynamic`: only a build can tell them.
    #[error(
        "`{field}` of `{}` is dynamic: reading dependencies from a build is not supported yet, \
         list them in `pyproject.toml`",
        path.display()
    )]
    Dynamic {
        /// The file.
        path: PathBuf,
        /// `project.dependencies` or `project.optional-dependencies`.
        field: &'static str,
    },
}

/// A list of names for a message, `none` when empty.
fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why an edit of `pyproject.toml` could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file could not be read.
    #[error("Failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("Failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("Invalid `{}`: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    /// A key on the way to the array is not a table, or the array is not an array.
    #[error("Cannot edit `{field}` in `{}`: it is not {expected}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The key, e.g. `project.optional-dependencies`.
        field: String,
        /// "a table" or "an array".
        expected: &'static str,
    },
    /// `[project]` is missing: there is nothing to add dependencies to.
    #[error("`{}` has no `[project]` table to add dependencies to", path.display())]
    NoProjectTable {
        /// The file.
        path: PathBuf,
    },
    /// Nothing on the package was found where the removal looked.
    #[error("`{name}` is not a dependency in `{looked_in}` of `{}`", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
        /// The package.
        name: String,
        /// Where it looked, e.g. `dependency-groups.dev`.
        looked_in: String,
    },
    /// The requirement to add is not a valid PEP 508 requirement.
    #[error("Invalid requirement `{text}`: {reason}")]
    InvalidRequirement {
        /// As given.
        text: String,
        /// What is wrong.
        reason: String,
    },
}
