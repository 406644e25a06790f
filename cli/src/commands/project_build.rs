//! The project's own package in its venv: built from its tree (editable unless
//! `--no-editable`) and joined to what its lock gives the interpreter.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dx_py_core::build::{BuildError, BuildSystem, LocalMode};
use dx_py_core::install::JoinedLock;
use dx_py_core::project::Project;
use dx_py_core::python::Interpreter;
use dx_py_core::requirements::BuildKind;

use super::local_builds::{LocalBuilds, LocalSource};
use crate::cli::EnvArgs;
use crate::printer::Printer;
use crate::settings::Settings;

/// The DPL a sync installs: the lock at `lock` plus the project itself, built from its tree
/// (editable unless `--no-editable`), when it declares a `[build-system]`; without one only its
/// dependencies, as uv does. The joined DPL is kept by the build's key (path, build inputs) and
/// the lock's bytes, so an unchanged project builds nothing and reads three small files.
pub(crate) fn with_project(
    project: &Project,
    args: &EnvArgs,
    interp: &Interpreter,
    settings: &Settings,
    lock: &Path,
    printer: &Printer,
) -> Result<PathBuf> {
    let text = std::fs::read_to_string(&project.path)
        .with_context(|| format!("Failed to read `{}`", project.path.display()))?;
    let declared = BuildSystem::declared(&text).map_err(|reason| BuildError::BuildSystem {
        package: project.name.clone(),
        path: project.path.clone(),
        reason,
    })?;
    if !declared {
        printer.verbose(format_args!(
            "`{}` has no `[build-system]`: only its dependencies are installed",
            project.path.display()
        ));
        return Ok(lock.to_path_buf());
    }
    let mode = if args.no_editable {
        LocalMode::Wheel
    } else {
        LocalMode::Editable
    };
    let tree = std::fs::canonicalize(&project.root)
        .with_context(|| format!("Failed to read `{}`", project.root.display()))?;
    let local = LocalBuilds {
        interp,
        resolve: &args.resolve,
        sources: &args.sources,
        settings,
        printer,
    };
    let (builds, key) = local.tree_key(&tree, mode)?;
    let joined = JoinedLock::new(lock, &builds, &key)?;
    if joined.exists() {
        return Ok(joined.path().to_path_buf());
    }
    let source = LocalSource {
        name: Some(&project.name),
        path: &tree,
        kind: BuildKind::Directory,
        mode,
    };
    let wheel = local.wheels(&[source])?.remove(0);
    joined.write(&project.name, &wheel)?;
    Ok(joined.path().to_path_buf())
}
