//! `dx-py dpl build | dump | get`.
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use dx_py_core::dpl::{DplFileError, DplReader, Lock, UniversalDplReader, format_version};

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
            if let Some(reader) = universal(dpl)? {
                reader.verify().map_err(|e| invalid(dpl, e))?;
                if *json {
                    let value = reader.to_json().map_err(|e| invalid(dpl, e))?;
                    printer.out(serde_json::to_string_pretty(&value)?)?;
                } else {
                    printer.out(reader.render_header().map_err(|e| invalid(dpl, e))?)?;
                    for e in reader.entries() {
                        let e = e.map_err(|e| invalid(dpl, e))?;
                        printer.out(reader.render_entry(&e).map_err(|e| invalid(dpl, e))?)?;
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
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
            if let Some(reader) = universal(dpl)? {
                reader.verify().map_err(|e| invalid(dpl, e))?;
                let found = reader.get(name).map_err(|e| invalid(dpl, e))?;
                if found.is_empty() {
                    bail!("`{name}` is not in {}", dpl.display());
                }
                for e in &found {
                    printer.out(reader.render_entry(e).map_err(|e| invalid(dpl, e))?)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let reader = DplReader::open(dpl)?;
            match reader.get(name)? {
                Some(entry) => printer.out(reader.render_entry(entry.index() as usize)?)?,
                None => bail!("`{name}` is not in {}", dpl.display()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The reader of `path` when it is a universal lock (DPL version 2); `None` for anything else,
/// which the version 1 reader then reads or explains.
fn universal(path: &Path) -> Result<Option<UniversalDplReader<Vec<u8>>>, DplFileError> {
    // Dump and get read the whole file anyway: plain bytes rather than a map.
    let bytes = std::fs::read(path).map_err(|source| DplFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if format_version(&bytes) != Ok(2) {
        return Ok(None);
    }
    UniversalDplReader::from_bytes(bytes)
        .map(Some)
        .map_err(|e| invalid(path, e))
}

fn invalid(path: &Path, source: dx_py_core::dpl::DplError) -> DplFileError {
    DplFileError::Invalid {
        path: path.to_path_buf(),
        source,
    }
}
