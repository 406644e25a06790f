//! `dx-py add ./lib`, `add -e ../lib`, `add ./dist/x-1.0.tar.gz`: a local directory or source
//! archive added as a dependency. Its name comes from its metadata (the wheel built from it, as
//! the lock builds it next, so the build is found in the cache then); `pyproject.toml` gets the
//! name in the dependencies and the path, relative to the project, in its `sources` table.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dx_py_core::build::LocalMode;
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::project::Project;
use dx_py_core::requirements::{BuildKind, DirectReferenceKind, direct_reference_kind};
use dx_py_core::wheel::WheelFilename;

use super::local_builds::{LocalBuilds, LocalSource};
use super::project::venv_interpreter;
use crate::cli::EditArgs;
use crate::printer::Printer;
use crate::settings::Settings;

/// A local path given to `add`, with the name its metadata gives.
pub(crate) struct AddedPath {
    /// The package's name, as its metadata spells it.
    pub(crate) name: String,
    /// The path relative to the project's directory (`/`-separated), as the source entry
    /// writes it.
    pub(crate) written: String,
    /// Installed editable.
    pub(crate) editable: bool,
}

/// Whether an argument of `add` names a local path rather than a requirement: it starts with
/// `.` or `/`, or has a path separator and no `@` (a direct reference has one), as uv decides.
pub(crate) fn is_local_path(arg: &str) -> bool {
    arg.starts_with('.')
        || arg.starts_with('/')
        || ((arg.contains('/') || arg.contains('\\')) && !arg.contains('@'))
}

/// Reads the local paths among `args.packages` (relative to `cwd`): each is built (or found
/// built) to learn its name. `-e` with a requirement or an archive is refused.
pub(crate) fn added_paths(
    args: &EditArgs,
    project: &Project,
    cwd: &Path,
    settings: &Settings,
    printer: &Printer,
) -> Result<Vec<Option<AddedPath>>> {
    if args.editable
        && let Some(p) = args.packages.iter().find(|p| !is_local_path(p))
    {
        bail!(
            "`-e` installs local directories editable, and `{p}` is not a path: write `./{p}` for a directory here"
        );
    }
    if !args.packages.iter().any(|p| is_local_path(p)) {
        return Ok(args.packages.iter().map(|_| None).collect());
    }
    let root = canonical(&project.root)?;
    let interp = venv_interpreter(
        args.env.python.as_deref(),
        &project.root.join(super::project::VENV),
        settings,
    )?;
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    let builds = LocalBuilds {
        interp: &interp,
        resolve: &args.env.resolve,
        sources: &args.env.sources,
        settings,
        printer,
    };
    let mut out = Vec::with_capacity(args.packages.len());
    for arg in &args.packages {
        if !is_local_path(arg) {
            out.push(None);
            continue;
        }
        let path = cwd.join(arg);
        if !path.exists() {
            bail!("`{arg}` names `{}`, which does not exist", path.display());
        }
        let path = canonical(&path)?;
        let kind = kind_of(arg, &path)?;
        if args.editable && kind == BuildKind::Archive {
            bail!("`{arg}` is a source archive, which cannot be installed editable: drop `-e`");
        }
        let mode = if args.editable {
            LocalMode::Editable
        } else {
            LocalMode::Wheel
        };
        let source = LocalSource {
            name: None,
            path: &path,
            kind,
            mode,
        };
        let wheel = builds.wheels(&[source])?.remove(0);
        let name = WheelFilename::parse(&wheel.filename)
            .with_context(|| format!("The wheel built from `{arg}`"))?
            .name_as_written()
            .to_string();
        let written = dx_py_core::install::relative_path(&path, &root);
        out.push(Some(AddedPath {
            name,
            written,
            editable: args.editable,
        }));
    }
    Ok(out)
}

/// A directory or a source archive; anything else is refused naming it.
fn kind_of(arg: &str, path: &Path) -> Result<BuildKind> {
    let url = url::Url::from_file_path(path)
        .map_err(|()| anyhow::anyhow!("`{}` is not an absolute path", path.display()))?;
    match direct_reference_kind(&url) {
        _ if path.is_dir() => Ok(BuildKind::Directory),
        DirectReferenceKind::SourceArchive => Ok(BuildKind::Archive),
        DirectReferenceKind::Wheel => bail!(
            "`{arg}` is a wheel file: local wheels are not supported as project sources yet; add a directory or a source archive"
        ),
        _ => bail!("`{arg}` is neither a project directory nor a source archive"),
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("Failed to read `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_told_from_requirements() {
        for path in [
            "./lib",
            "../lib",
            "/abs/lib",
            "libs/one",
            "dist/x-1.0.tar.gz",
            ".\\lib",
        ] {
            assert!(is_local_path(path), "{path}");
        }
        for requirement in [
            "requests",
            "flask>=3",
            "lib @ file:///abs/lib",
            "a[b]; os_name == 'nt'",
        ] {
            assert!(!is_local_path(requirement), "{requirement}");
        }
    }
}
