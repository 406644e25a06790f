//! `dx-py store add | verify | path`.
use std::process::ExitCode;

use std::path::Path;

use anyhow::{Context, Result};
use dx_py_core::dpl::DplReader;
use dx_py_core::hash::ContentHash;
use dx_py_core::plural::{count, is_are};
use dx_py_core::remote::{RemoteTier, push_lock};
use dx_py_core::store::{PackageStore, StoreError};

use crate::cli::StoreCommand;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) fn run(cmd: &StoreCommand, settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    let store = PackageStore::open(&settings.store_dir);
    match cmd {
        StoreCommand::Add { wheels } => {
            settings.sweep_after_crashes();
            for wheel in wheels {
                let bytes = std::fs::read(wheel)
                    .with_context(|| format!("Failed to read `{}`", wheel.display()))?;
                let filename = wheel
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let (hash, info) =
                    dx_py_core::install::store_wheel_bytes(&store, filename, &bytes)?;
                // So that a lock naming this wheel finds its package without converting it.
                store.record_wheel(&dx_py_core::hash::sha256_hex(&bytes), &hash);
                printer.out(format_args!("{hash}  {} {}", info.name, info.version))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Verify { hashes } => {
            let hashes = if hashes.is_empty() {
                store.objects()?
            } else {
                hashes
                    .iter()
                    .map(|h| parse_hash(h))
                    .collect::<Result<_>>()?
            };
            let mut bad = Vec::new();
            for hash in &hashes {
                match store.verify(hash) {
                    Ok(true) => {}
                    Ok(false) => bad.push(*hash),
                    Err(StoreError::PackageNotFound(h)) => {
                        printer.warn(format_args!("{h} is not in the store"));
                        bad.push(h);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            for hash in &bad {
                printer.out(hash)?;
            }
            if bad.is_empty() {
                printer.info(format_args!("{} verified", count(hashes.len(), "object")));
                Ok(ExitCode::SUCCESS)
            } else {
                printer.info(format_args!(
                    "{} of {} {} corrupt or missing",
                    bad.len(),
                    count(hashes.len(), "object"),
                    is_are(bad.len())
                ));
                Ok(ExitCode::from(1))
            }
        }
        StoreCommand::Push { url, lock } => push(&store, url, lock, printer),
        StoreCommand::Path { hash } => {
            let hash = parse_hash(hash)?;
            if !store.contains(&hash) {
                return Err(StoreError::PackageNotFound(hash).into());
            }
            printer.out(store.get_path(&hash).display())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_hash(s: &str) -> Result<ContentHash> {
    s.parse::<ContentHash>()
        .with_context(|| format!("`{s}` is not a store hash"))
}

/// `store push URL --lock FILE`.
fn push(store: &PackageStore, url: &str, lock: &Path, printer: &Printer) -> Result<ExitCode> {
    let dpl = DplReader::open(lock)?;
    let lock = dpl.to_lock()?;
    let options = dx_py_core::index::ClientOptions::default();
    let target = RemoteTier::open(url, &options)?;
    let report = push_lock(store, &lock, &target)?;
    printer.info(format_args!(
        "Pushed {} ({} bytes) and {} to {url}; {} already there",
        count(report.objects, "object"),
        report.bytes,
        count(report.records, "record"),
        report.skipped
    ));
    Ok(ExitCode::SUCCESS)
}
