//! `dx-py lock --universal`, and any lock of a project: one `pylock.toml` for every environment
//! of the inputs' scope.
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dx_py_core::build::Builder;
use dx_py_core::dpl::UniversalDplReader;
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    locked_versions, name_universal_local_sources, resolve_universal_and_lock, universal_scope,
};
use dx_py_core::python::Interpreter;

use super::request::{build_options, request};
use super::{DPL, Flags, Freshness, Inputs, PYLOCK, inputs_source, report_builds};
use crate::commands::local_builds::{LocalBuilds, portable_request, project_locals};
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// Writes `dir/pylock.toml`: a lock of `inputs` for every environment their `requires-python`
/// (else Pythons from the `--python-version` of `flags` on, by default `interp`'s version) and
/// the project's `environments` allow, unless the one there was made from the same inputs (then
/// nothing is resolved and nothing fetched; `None` is returned), and its twin `dir/dx-py.dpl`
/// (DPL version 2), from which installs choose their interpreter's entries. Re-locking prefers,
/// fork by fork, the versions of the lock it replaces.
pub(crate) fn lock_universal(
    inputs: Inputs<'_>,
    interp: &Interpreter,
    flags: Flags<'_>,
    settings: &Settings,
    dir: &Path,
    printer: &Printer,
) -> Result<Option<usize>> {
    let start = Instant::now();
    let path = dir.join(PYLOCK);
    if flags.freshness == Freshness::Frozen {
        if !path.is_file() || !dir.join(DPL).is_file() {
            bail!(
                "No lock in `{}` (`{PYLOCK}` and its twin `{DPL}`) to use with `--frozen`: run `dx-py lock` first",
                dir.display()
            );
        }
        return Ok(None);
    }
    let (source_args, resolve) = (flags.sources, flags.resolve);
    let reqs_for_sources = match &inputs {
        Inputs::Files(files) => files.first().map(|(_, r)| r),
        Inputs::Project(..) => None,
    };
    let sources = settings::sources(source_args, reqs_for_sources, interp, settings, printer)?;
    let mut request = request(&inputs, resolve)?;
    let locals = match &inputs {
        Inputs::Project(project, _) => project_locals(project, &mut request, dir)?,
        Inputs::Files(_) => Vec::new(),
    };
    let environments = match &inputs {
        Inputs::Project(project, _) => project.environments.clone(),
        Inputs::Files(_) => Vec::new(),
    };
    let floor = match flags.python_version {
        Some(v) => v.to_string(),
        None => format!("{}.{}", interp.version().major, interp.version().minor),
    };
    let scope = universal_scope(&request, &floor, &environments).with_context(|| {
        format!(
            "The Python range of the inputs cannot be written as a marker (requires-python `{}`)",
            request
                .requires_python
                .as_ref()
                .map_or_else(|| format!(">={floor}"), ToString::to_string)
        )
    })?;
    let inputs_hash = match &inputs {
        Inputs::Project(..) => request.universal_inputs_hash(&scope, &sources),
        // Requirements files arrive with their local source built: hashed as that source.
        Inputs::Files(files) => {
            portable_request(&request, files, dir)?.universal_inputs_hash(&scope, &sources)
        }
    };
    let upgrading = resolve.upgrade || !resolve.upgrade_package.is_empty();
    let existing = std::fs::read_to_string(&path).ok();
    printer.timeline().mark("inputs");
    // Both files must be of these inputs: a twin that is missing (a checkout without it) or
    // from other inputs is made again, from the same resolution.
    let twin_fresh =
        || UniversalDplReader::open(&dir.join(DPL)).is_ok_and(|r| r.inputs_hash() == inputs_hash);
    if !upgrading
        && existing
            .as_deref()
            .is_some_and(|t| records(t, &inputs_hash))
        && twin_fresh()
    {
        printer.verbose(format_args!(
            "The universal lock `{}` is up to date ({:.1} ms)",
            path.display(),
            start.elapsed().as_secs_f64() * 1e3
        ));
        return Ok(None);
    }
    if flags.freshness == Freshness::Locked {
        bail!(
            "The lock `{}` (or its twin `{DPL}`) is missing or out of date for `{}`, and `--locked` forbids locking again: run `dx-py lock`",
            path.display(),
            inputs_source(&inputs)
        );
    }
    let locked = existing.as_deref().map(locked_versions).unwrap_or_default();
    let client = settings::client(settings, sources, source_args)?;
    let spinner = crate::reporter::Spinner::new(printer, "Resolving for every environment");
    dx_py_core::sys::tune_allocator();
    // Sdist-only versions are lockable where their metadata can be read or prepared; the
    // lock names the sdist, and installs build it.
    let cache = settings.cache();
    let builder = (!resolve.no_build)
        .then(|| build_options(resolve))
        .transpose()?
        .map(|options| Builder::new(&cache, interp, &client, options));
    // Local source: resolved as the wheels built from it, locked as the source.
    let local_builds = LocalBuilds {
        interp,
        resolve,
        sources: source_args,
        settings,
        printer,
    };
    let built = match &inputs {
        Inputs::Project(..) => local_builds.use_project_locals(&locals, &mut request)?,
        Inputs::Files(files) => (files.iter())
            .flat_map(|(_, reqs)| reqs.built_sources())
            .map(|(wheel, from)| (wheel.to_path_buf(), from.clone()))
            .collect(),
    };
    let (mut lock, forks) = resolve_universal_and_lock(
        &request,
        &scope,
        &locked,
        &client,
        inputs_hash,
        builder.as_ref(),
    )?;
    if let Some(stats) = builder.as_ref().map(Builder::stats) {
        report_builds(&stats, printer);
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("Failed to create `{}`", dir.display()))?;
    let built = built.iter().map(|(wheel, from)| (wheel.as_path(), from));
    name_universal_local_sources(&mut lock, built, dir)?;
    // Installs on an older Python are refused by the lock itself, not by a missing entry.
    lock.requires_python
        .get_or_insert_with(|| format!(">={floor}"));
    drop(spinner);
    dx_py_core::atomic::replace(&path, lock.to_pylock_string().as_bytes())
        .with_context(|| format!("Failed to write `{}`", path.display()))?;
    // The binary twin: installs choose their entries from it by lookup (`selected_lock`).
    lock.write_dpl(&dir.join(DPL))?;
    printer.info(format_args!(
        "Locked {} for every environment where `{}` in {} ms ({}): {}",
        dx_py_core::plural::count_as(lock.packages.len(), "package entry", "package entries"),
        scope.try_to_string().unwrap_or_else(|| "true".into()),
        start.elapsed().as_millis(),
        dx_py_core::plural::count(forks, "fork"),
        path.display()
    ));
    for p in &lock.packages {
        printer.verbose(format_args!(
            "  {}=={}{}  ({} wheels{})",
            p.name,
            p.version,
            p.marker
                .as_deref()
                .map(|m| format!(" ; {m}"))
                .unwrap_or_default(),
            p.wheels.len(),
            if p.sdist.is_some() { ", sdist" } else { "" }
        ));
    }
    Ok(Some(lock.packages.len()))
}

/// Whether the lock `text` records `hash` as its inputs hash: the line dx-py writes in
/// `[tool.dx-py]` is searched for rather than the file parsed, because parsing a universal lock
/// (150 KB for 31 packages) costs more than the rest of an unchanged sync. A blake3 digest of
/// these very inputs appears in no other line, and a one-environment lock hashes other inputs.
fn records(text: &str, hash: &ContentHash) -> bool {
    text.contains(&format!("inputs-hash = \"{}\"", hash.to_hex()))
}
