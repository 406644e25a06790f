//! `dx-py unmount [VENV]` and `dx-py mount --list`.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use dx_py_fs_linux::{daemon, mounts};

use crate::cli::UnmountArgs;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) fn run_unmount(
    args: &UnmountArgs,
    settings: &Settings,
    printer: &Printer,
) -> Result<ExitCode> {
    let targets: Vec<PathBuf> = if args.all {
        mounts::list_mounts()?
            .into_iter()
            .map(|m| m.mountpoint)
            .collect()
    } else {
        vec![mounts::absolute(&args.venv)?]
    };
    for target in &targets {
        let unmounted = daemon::unmount_recorded(&settings.cache().mounts_dir(), target)?;
        // Not in use any more: `cache prune` may take its tree now.
        dx_py_core::cache::roots::forget_mount(&settings.cache().roots_dir(), target);
        match unmounted {
            daemon::Unmounted::Now {
                server_had_died,
                server_still_running,
            } => {
                if let Some(pid) = server_still_running {
                    printer.warn(format_args!(
                        "the mount server (pid {pid}) is still running"
                    ));
                }
                let note = if server_had_died {
                    " (its server had died)"
                } else {
                    ""
                };
                printer.info(format_args!("Unmounted {}{note}", target.display()));
            }
            daemon::Unmounted::Already => printer.info(format_args!(
                "{} is not mounted (already unmounted)",
                target.display()
            )),
        }
    }
    if targets.is_empty() {
        printer.info("No dx-py mounts");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list(settings: &Settings, printer: &Printer) -> Result<ExitCode> {
    for m in mounts::list_mounts()? {
        let state = if mounts::is_dead_mount(&m.mountpoint) {
            "dead".to_string()
        } else {
            daemon::recorded_pid(&settings.cache().mounts_dir(), &m.mountpoint)
                .map_or_else(|| "live".to_string(), |pid| format!("pid {pid}"))
        };
        printer.out(format_args!("{}\t{state}", m.mountpoint.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
