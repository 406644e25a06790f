//! `dx-py sync`, `add`, `remove` and `run`: a project's `.venv` made to hold its lock, locking
//! again first when `pyproject.toml` changed. With nothing changed, a sync reads the project, the
//! lock's inputs hash and the venv's marker, and writes nothing.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::project::{DependencyTarget, EditError, Project, PyprojectEditor};
use dx_py_core::python::Interpreter;

use super::install::{Target, install_dpl};
use super::project_build::with_project;
use super::project_local::added_paths;
use super::resolve::{Flags, Freshness, Inputs, lock_universal};
use crate::cli::{EditArgs, EnvArgs, LinkModeArg, ProjectArgs, RunArgs, SyncArgs};
use crate::printer::Printer;
use crate::settings::Settings;

/// The project's venv directory.
pub(crate) const VENV: &str = ".venv";

pub(crate) fn sync(args: &SyncArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let project = project_here()?;
    sync_project(&project, &args.env, &args.project, settings, printer)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(args: &RunArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let project = project_here()?;
    let venv = sync_project(
        &project,
        &args.sync.env,
        &args.sync.project,
        settings,
        printer,
    )?;
    let (program, rest) = args
        .command
        .split_first()
        .context("No command given to run")?;
    let bin = dx_py_core::python::Venv::open(&venv)?.bin_dir();
    let cmd = dx_py_core::python::venv_command(&venv, &bin, program, rest)?;
    // Nothing of this process outlives the exec: its record of temporaries goes now.
    dx_py_core::temp::release_writer();
    let code = dx_py_core::python::run_replacing(cmd)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

pub(crate) fn add(args: &EditArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let project = project_here()?;
    let cwd = std::env::current_dir().context("Failed to read the current directory")?;
    // Local paths first: their names come from building them.
    let paths = added_paths(args, &project, &cwd, settings, printer)?;
    edit(
        &project,
        args,
        settings,
        printer,
        |editor, i, target| match &paths[i] {
            Some(added) => {
                editor.add(&added.name, target)?;
                editor.add_source(&added.name, &added.written, added.editable)
            }
            None => editor.add(&args.packages[i], target).map(|_| ()),
        },
    )
}

pub(crate) fn remove(args: &EditArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    if args.editable {
        bail!("`-e` is for `dx-py add`: `remove` takes package names");
    }
    let project = project_here()?;
    edit(&project, args, settings, printer, |editor, i, target| {
        let package = &args.packages[i];
        editor.remove(package, target)?;
        // Its source goes with the last requirement on it.
        editor.remove_source_if_unused(package);
        Ok(())
    })
}

/// Applies `one` to each package of `args` (by index), then locks and syncs (see
/// [`edit_then_sync`]).
fn edit(
    project: &Project,
    args: &EditArgs,
    settings: &Settings,
    printer: &Printer,
    one: impl Fn(&mut PyprojectEditor, usize, &DependencyTarget) -> Result<(), EditError>,
) -> Result<ExitCode> {
    let target = target(args.group.as_deref(), args.optional.as_deref());
    edit_then_sync(
        project,
        &args.env,
        args.no_sync,
        settings,
        printer,
        |editor| {
            for i in 0..args.packages.len() {
                one(editor, i, &target)?;
            }
            Ok(())
        },
    )
}

fn target(group: Option<&str>, optional: Option<&str>) -> DependencyTarget {
    match (group, optional) {
        (Some(g), _) => DependencyTarget::Group(g.to_owned()),
        (None, Some(x)) => DependencyTarget::Optional(x.to_owned()),
        (None, None) => DependencyTarget::Project,
    }
}

/// Edits `pyproject.toml` with `edit`, then locks and (unless `no_sync`) syncs; a failure after
/// the edit puts the file back as it was, so that a requirement that cannot be resolved is not
/// left in the project.
fn edit_then_sync(
    project: &Project,
    args: &EnvArgs,
    no_sync: bool,
    settings: &Settings,
    printer: &Printer,
    edit: impl FnOnce(&mut PyprojectEditor) -> Result<()>,
) -> Result<ExitCode> {
    let original = std::fs::read(&project.path)
        .with_context(|| format!("Failed to read `{}`", project.path.display()))?;
    let mut editor = PyprojectEditor::from_path(&project.path)?;
    edit(&mut editor)?;
    editor.write()?;
    let result = Project::from_path(&project.path)
        .map_err(anyhow::Error::from)
        .and_then(|edited| {
            let selection = ProjectArgs::default();
            if no_sync {
                lock_project(&edited, args, &selection, settings, printer).map(|_| ())
            } else {
                sync_project(&edited, args, &selection, settings, printer).map(|_| ())
            }
        });
    if let Err(e) = result {
        dx_py_core::atomic::replace(&project.path, &original).with_context(|| {
            format!(
                "Failed to restore `{}` after: {e:#}",
                project.path.display()
            )
        })?;
        return Err(e.context(format!("`{}` was left as it was", project.path.display())));
    }
    Ok(ExitCode::SUCCESS)
}

fn project_here() -> Result<Project> {
    let cwd = std::env::current_dir().context("Failed to read the current directory")?;
    Ok(Project::discover(&cwd)?)
}

fn interpreter(args: &EnvArgs, venv: &Path, settings: &Settings) -> Result<Interpreter> {
    venv_interpreter(args.python.as_deref(), venv, settings)
}

/// The interpreter for a project's venv: `python` (`--python`), else the venv's own, else
/// `python3`.
pub(crate) fn venv_interpreter(
    python: Option<&str>,
    venv: &Path,
    settings: &Settings,
) -> Result<Interpreter> {
    let own = match dx_py_core::python::Venv::open(venv) {
        Ok(v) => v.python(),
        Err(_) => PathBuf::new(),
    };
    let request = match python {
        Some(p) => Some(p.to_owned()),
        None if own.is_file() => Some(own.to_string_lossy().into_owned()),
        None => None,
    };
    Ok(settings.interpreter(request.as_deref())?)
}

fn freshness(args: &EnvArgs) -> Freshness {
    if args.lock_mode.frozen {
        Freshness::Frozen
    } else if args.lock_mode.locked {
        Freshness::Locked
    } else {
        Freshness::Update
    }
}

/// Locks the project for every environment (when its lock is not fresh) and returns the path of
/// the DPL of what the lock gives `interp`. The caller holds the cache lock.
fn lock_for(
    project: &Project,
    args: &EnvArgs,
    selection: &ProjectArgs,
    interp: &Interpreter,
    settings: &Settings,
    printer: &Printer,
) -> Result<PathBuf> {
    lock_universal(
        Inputs::Project(project, selection),
        interp,
        Flags {
            sources: &args.sources,
            resolve: &args.resolve,
            freshness: freshness(args),
            python_version: None,
        },
        settings,
        &project.root,
        printer,
    )?;
    let dpl = dx_py_core::install::selected_lock(&project.root, interp, &settings.cache_dir)?;
    printer.timeline().mark("select");
    printer.verbose(format_args!(
        "What the lock gives {} ({}): `{}`",
        interp.path().display(),
        interp.tag(),
        dpl.display()
    ));
    Ok(dpl)
}

fn lock_project(
    project: &Project,
    args: &EnvArgs,
    selection: &ProjectArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<PathBuf> {
    let venv = project.root.join(VENV);
    let interp = interpreter(args, &venv, settings)?;
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    lock_for(project, args, selection, &interp, settings, printer)
}

/// Makes the project's venv hold its lock; returns the venv.
fn sync_project(
    project: &Project,
    args: &EnvArgs,
    selection: &ProjectArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<PathBuf> {
    let start = Instant::now();
    let venv = project.root.join(VENV);
    let interp = interpreter(args, &venv, settings)?;
    let mut cache_lock = CacheLock::open(&settings.cache_dir)?;
    let _shared = cache_lock.shared()?;
    let dpl = lock_for(project, args, selection, &interp, settings, printer)?;
    let dpl = with_project(project, args, &interp, settings, &dpl, printer)?;
    if dx_py_core::install::venv_holds(&venv, &dpl, &interp) {
        printer.verbose(format_args!(
            "`{}` already holds the lock ({:.1} ms)",
            venv.display(),
            start.elapsed().as_secs_f64() * 1e3
        ));
        return Ok(venv);
    }
    settings.sweep_after_crashes();
    let target = Target {
        venv: &venv,
        interp: &interp,
        link_mode: LinkModeArg::Auto,
        compile_bytecode: !args.no_compile_bytecode,
        sources: &args.sources,
        resolve: &args.resolve,
    };
    install_dpl(&dpl, &target, 0, settings, printer, start)?;
    Ok(venv)
}
