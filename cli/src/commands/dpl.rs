//! `dx-py dpl build | dump | get`.
use std::process::ExitCode;

use anyhow::{Result, bail};
use dx_py_core::dpl::{DplReader, Lock};

use crate::cli::DplCommand;
use crate::printer::Printer;

pub(crate) fn run(cmd: &DplCommand, printer: &Printer) -> Result<ExitCode> {
    match cmd {
        DplCommand::Build { pylock, output } => {
            let lock = Lock::read_pylock(pylock)?;
            lock.write_dpl(output)?;
            printer.info(format_args!(
                "Wrote {} ({})",
                output.display(),
                dx_py_core::plural::count(lock.packages.len(), "package")
            ));
        }
        DplCommand::Dump { dpl, json } => {
            let reader = DplReader::open(dpl)?;
            reader.verify()?;
            if *json {
                printer.out(serde_json::to_string_pretty(&reader.to_json()?)?)?;
            } else {
                printer.out(reader.render_header())?;
                for i in 0..reader.len() {
                    printer.out(reader.render_entry(i)?)?;
                }
            }
        }
        DplCommand::Get { dpl, name } => {
            let reader = DplReader::open(dpl)?;
            match reader.get(name)? {
                Some(entry) => printer.out(reader.render_entry(entry.index() as usize)?)?,
                None => bail!("`{name}` is not in {}", dpl.display()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
