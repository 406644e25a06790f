//! `dx-py export`: the requirements a lock gives another environment.
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use dx_py_core::dpl::{export_for, render_requirements};
use dx_py_core::project::Project;
use dx_py_core::python::{Platform, TargetVersion};

use super::PYLOCK;
use crate::cli::ExportArgs;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) fn run(args: &ExportArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let lock = match &args.lock {
        Some(path) => path.clone(),
        None => {
            let cwd = std::env::current_dir().context("Failed to read the current directory")?;
            match Project::discover(&cwd) {
                Ok(project) => project.root.join(PYLOCK),
                Err(_) => cwd.join(PYLOCK),
            }
        }
    };
    let version = match args.python_version {
        Some(v) => v,
        None => {
            let interp = settings.interpreter(args.python.as_deref())?;
            let v = interp.version();
            TargetVersion {
                major: v.major,
                minor: v.minor,
                patch: Some(v.patch),
            }
        }
    };
    let platform = match args.platform {
        Some(p) => p,
        None => Platform::this_machine()
            .ok_or_else(|| anyhow!("This machine's platform has no name here: give --platform"))?,
    };
    let text = std::fs::read_to_string(&lock)
        .with_context(|| format!("Failed to read `{}`", lock.display()))?;
    let env = platform
        .markers(version)
        .with_context(|| format!("Python {version} on {platform}"))?;
    let packages = export_for(&text, &env).with_context(|| {
        format!(
            "Failed to read `{}` for Python {version} on {platform}",
            lock.display()
        )
    })?;
    let header = [
        format!("Exported by dx-py from {}", lock.display()),
        format!("for CPython {version} on {platform}"),
    ];
    let rendered = render_requirements(&header, &packages);
    match &args.output {
        Some(path) => {
            dx_py_core::atomic::replace(path, rendered.as_bytes())
                .with_context(|| format!("Failed to write `{}`", path.display()))?;
            printer.info(format_args!(
                "Wrote {} ({})",
                path.display(),
                dx_py_core::plural::count(packages.len(), "package")
            ));
        }
        None => printer.out(rendered.trim_end())?,
    }
    Ok(ExitCode::SUCCESS)
}
