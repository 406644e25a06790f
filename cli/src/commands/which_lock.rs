//! Which lock `dx-py install` installs: one made now from `-r` (as pinned, or resolved), else
//! `--lock`, else `./dx-py.dpl` or `./pylock.toml` (a DPL rebuilt from the latter when older).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dx_py_core::dpl::DplReader;
use dx_py_core::install::inputs_hash;
use dx_py_core::python::Interpreter;

use super::local_builds::LocalBuilds;
use super::lock::{WhileLocking, lock_and_write, only_pins, only_sdist};
use super::resolve::{Flags, Freshness, ensure_lock};
use super::{DPL, PYLOCK};
use crate::cli::{ResolveArgs, SourceArgs};
use crate::printer::Printer;
use crate::settings::Settings;

/// What the user named: requirements, or a lock, or neither; and how to resolve and fetch.
#[derive(Clone, Copy)]
pub(crate) struct LockChoice<'a> {
    /// `-r`.
    pub(crate) requirements: Option<&'a Path>,
    /// `--lock`.
    pub(crate) lock: Option<&'a Path>,
    /// Index options.
    pub(crate) sources: &'a SourceArgs,
    /// Resolution options.
    pub(crate) resolve: &'a ResolveArgs,
}

/// Which DPL to install: fresh for `-r`, else `--lock`, else `./dx-py.dpl` or `./pylock.toml`.
pub(crate) fn choose_lock(
    choice: &LockChoice<'_>,
    settings: &Settings,
    interp: &Interpreter,
    also: WhileLocking<'_>,
    printer: &Printer,
) -> Result<PathBuf> {
    let LockChoice {
        requirements,
        lock,
        sources,
        resolve,
    } = *choice;
    if let Some(reqs_path) = requirements {
        let local = LocalBuilds {
            interp,
            resolve,
            sources,
            settings,
            printer,
        };
        let files = [(reqs_path.to_path_buf(), local.read_requirements(reqs_path)?)];
        let resolve_with = |printer: &Printer, freshness| {
            let flags = Flags {
                sources,
                resolve,
                freshness,
                python_version: None,
            };
            let ready = ensure_lock(&files, interp, flags, settings, Path::new("."), printer)?;
            Ok(ready.dpl)
        };
        let resolved = |printer: &Printer| resolve_with(printer, Freshness::Update);
        let Some(reqs) = only_pins(&files, resolve) else {
            return resolved(printer);
        };
        let dpl_path = PathBuf::from(DPL);
        let inputs = inputs_hash(reqs, interp);
        let fresh = DplReader::open(&dpl_path).is_ok_and(|d| d.is_fresh(&inputs));
        if fresh {
            printer.timeline().mark("inputs");
            return Ok(dpl_path);
        }
        // Pins of which one has only an sdist were resolved (below) before: when that lock is
        // current, it is the answer, without trying the pinned path again (an index request).
        if !resolve.no_build
            && let Ok(dpl) = resolve_with(printer, Freshness::Locked)
        {
            return Ok(dpl);
        }
        printer.verbose("Locking (no fresh dx-py.dpl for these requirements)");
        let pinned = lock_and_write(
            reqs,
            interp,
            sources,
            settings,
            Path::new("."),
            also,
            printer,
        );
        match pinned {
            Ok(_) => return Ok(dpl_path),
            // A pin with only an sdist: the resolver's path builds it.
            Err(e) if !resolve.no_build && only_sdist(&e) => {
                printer.verbose("A pinned package has only a source distribution: resolving");
                return resolved(printer);
            }
            Err(e) => return Err(e),
        }
    }
    let given = lock.map(Path::to_path_buf);
    let (dpl_path, pylock_path) = match &given {
        Some(p) if p.extension().is_some_and(|e| e == "dpl") => return Ok(p.clone()),
        Some(p) => (p.with_file_name(DPL), p.clone()),
        None => (PathBuf::from(DPL), PathBuf::from(PYLOCK)),
    };
    let dpl_time = modified(&dpl_path);
    let pylock_time = modified(&pylock_path);
    // A DPL made from a multi-environment pylock.toml holds one interpreter's choice: another
    // interpreter chooses again.
    // A universal DPL (version 2, the twin `lock --universal` writes) serves every interpreter.
    let same_interpreter = || {
        universal_dpl(&dpl_path)
            || DplReader::open(&dpl_path).is_ok_and(|d| d.environment() == interp.tag())
    };
    match (dpl_time, pylock_time) {
        (Some(d), Some(p)) if d >= p && same_interpreter() => Ok(dpl_path),
        (_, Some(_)) => {
            printer.verbose(format_args!(
                "Rebuilding {} from {}",
                dpl_path.display(),
                pylock_path.display()
            ));
            let lock = dx_py_core::install::read_pylock_for(&pylock_path, interp)?;
            lock.write_dpl(&dpl_path)
                .with_context(|| format!("Failed to write `{}`", dpl_path.display()))?;
            Ok(dpl_path)
        }
        (Some(_), None) if given.is_none() => Ok(dpl_path),
        _ => bail!(
            "No lock found: `{}` does not exist; pass `-r requirements.txt` or run `dx-py lock -r requirements.txt`",
            pylock_path.display()
        ),
    }
}

/// True when `path` is a DPL version 2 (a universal lock), from its first 12 bytes.
fn universal_dpl(path: &Path) -> bool {
    let mut head = [0u8; 12];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| dx_py_core::dpl::format_version(&head) == Ok(2))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
