//! `dx-py venv [PATH] [--python PY]`.
use std::process::ExitCode;

use anyhow::Result;
use dx_py_core::python::{ExistingVenv, VenvOptions, create_venv};

use crate::cli::VenvArgs;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) fn run(args: &VenvArgs, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let interp = settings.interpreter(args.python.as_deref())?;
    let options = VenvOptions {
        prompt: args.prompt.clone(),
        system_site_packages: args.system_site_packages,
        existing: if args.clear {
            ExistingVenv::Clear
        } else {
            ExistingVenv::Refuse
        },
        ..VenvOptions::default()
    };
    let venv = create_venv(&interp, &args.path, &options)?;
    printer.info(format_args!(
        "Created venv at {} (Python {}, {})",
        venv.root().display(),
        interp.version(),
        interp.path().display()
    ));
    Ok(ExitCode::SUCCESS)
}
