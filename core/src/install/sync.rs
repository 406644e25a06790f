//! Making a venv hold exactly a locked set.
//!
//! Warm path (a layout for this set and interpreter exists): compute the project hash from the
//! mapped lock, look it up in the mapped layout index, swap one symlink. Nothing else is read or
//! written. Cold path: bring the packages into the store, compile bytecode once per package and
//! interpreter, build the layout, then link it.
use std::path::{Path, PathBuf};

use super::changes::Previous;
use super::report::PhaseTimer;
use super::{
    InstallError, InstallReport, PrepareOptions, Reporter, WheelSources, prepare_packages,
};
use crate::dpl::{DplReader, Lock};
use crate::hash::ContentHash;
use crate::index::IndexClient;
use crate::layout::{LayoutCache, LayoutPackage, LayoutSpec, ProjectHash};
use crate::python::{ExistingVenv, Interpreter, Venv, VenvOptions, create_venv};
use crate::store::PackageStore;

/// Bytecode packs unpacked at once on the cold path (file creation is kernel time that
/// overlaps, even on two cores).
const UNPACK_WORKERS: usize = 4;

/// Choices for [`sync_venv`].
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Compile `.pyc` files (once per package and interpreter, kept in the store).
    pub compile_bytecode: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            compile_bytecode: true,
        }
    }
}

/// Everything a sync needs.
pub struct SyncContext<'a> {
    /// The venv's interpreter.
    pub interp: &'a Interpreter,
    /// The venv directory (created when missing).
    pub venv: &'a Path,
    /// The package store.
    pub store: &'a PackageStore,
    /// The layout cache.
    pub layouts: &'a LayoutCache<'a>,
    /// Where missing wheels come from, if anywhere.
    pub client: Option<&'a IndexClient>,
    /// Find-links directories searched for wheels the lock names.
    pub find_links: &'a [PathBuf],
    /// The lock file's directory (lock paths are relative to it).
    pub lock_dir: &'a Path,
    /// Builds the packages locked as sdists that the store lacks (`None`: they are an error).
    pub builder: Option<&'a crate::build::Builder<'a>>,
    /// Choices.
    pub options: SyncOptions,
    /// Progress.
    pub reporter: &'a dyn Reporter,
}

/// The warm path alone: when the venv exists for this interpreter and a layout of exactly this
/// set is cached, links it and returns the report; otherwise `None` and nothing is changed.
pub fn try_warm<B: AsRef<[u8]>>(
    dpl: &DplReader<B>,
    interp: &Interpreter,
    venv: &Path,
    layouts: &LayoutCache<'_>,
) -> Result<Option<InstallReport>, InstallError> {
    let mut report = InstallReport {
        packages: dpl.len(),
        ..InstallReport::default()
    };
    let mut timer = PhaseTimer::start();
    let Some(hash) = project_hash(dpl, &interp.tag())? else {
        return Ok(None);
    };
    if layouts.get(&hash).is_none() {
        return Ok(None);
    }
    let mut lock = locked_venv(layouts, venv);
    let _one_at_a_time = lock.as_mut().map(fd_lock::RwLock::write).transpose()?;
    let made =
        ensure_venv(interp, venv, &mut report, &mut timer).map_err(|e| if_mounted(venv, e))?;
    let previous = Previous::read(venv, python_pair(interp), Some(&hash));
    let linked = layouts
        .install_cached(&hash, venv)
        .map_err(|e| if_mounted(venv, e.into()))?;
    if linked.is_none() {
        return Ok(None);
    }
    made.keep();
    report.layout_hit = true;
    report.store_hits = dpl.len();
    report.changes = previous.changes(dpl, &hash);
    timer.mark(&mut report, "link");
    Ok(Some(report))
}

/// The project hash of the locked set for the interpreter `tag`, when every entry has its
/// store hash.
pub fn project_hash<B: AsRef<[u8]>>(
    dpl: &DplReader<B>,
    tag: &str,
) -> Result<Option<ProjectHash>, InstallError> {
    let mut keys = Vec::with_capacity(dpl.len());
    for entry in dpl.entries() {
        let entry = entry?;
        match entry.store_hash() {
            Some(h) => keys.push((entry.name(), entry.version(), h, entry.wheel_sha256())),
            None => return Ok(None),
        }
    }
    Ok(Some(ProjectHash::compute(
        tag,
        keys.iter().map(|(n, v, h, s)| (*n, *v, h, s)),
    )))
}

/// Makes `ctx.venv` hold exactly the set in `dpl`. Returns the report and, when the lock lacked
/// store hashes or recorded stale ones, the corrected lock for the caller to write back.
pub fn sync_venv<B: AsRef<[u8]>>(
    dpl: &DplReader<B>,
    ctx: &SyncContext<'_>,
) -> Result<(InstallReport, Option<Lock>), InstallError> {
    let mut report = InstallReport {
        packages: dpl.len(),
        ..InstallReport::default()
    };
    let mut timer = PhaseTimer::start();
    let version = ctx.interp.version();
    // Refused before the cold path's work, all of which would be for nothing.
    if let Some(venv) = dx_py_mount(ctx.venv) {
        return Err(InstallError::VenvMounted { venv });
    }
    let mut lock = locked_venv(ctx.layouts, ctx.venv);
    let _one_at_a_time = lock.as_mut().map(fd_lock::RwLock::write).transpose()?;
    let made = ensure_venv(ctx.interp, ctx.venv, &mut report, &mut timer)?;
    let tag = ctx.interp.tag();
    let previous = Previous::read(ctx.venv, python_pair(ctx.interp), None);

    // Warm path: every package already has a store hash, so the project hash is known.
    if let Some(hash) = project_hash(dpl, &tag)?
        && ctx.layouts.install_cached(&hash, ctx.venv)?.is_some()
    {
        made.keep();
        report.layout_hit = true;
        report.store_hits = dpl.len();
        report.changes = previous.changes(dpl, &hash);
        timer.mark(&mut report, "link");
        return Ok((report, None));
    }
    timer.mark(&mut report, "lookup");

    // Cold path.
    check_environment(dpl, ctx.interp, &tag)?;
    let sources = WheelSources {
        client: ctx.client,
        find_links: ctx.find_links,
        lock_dir: ctx.lock_dir,
        builder: ctx.builder,
    };
    let unpack = super::unpack_when_stored(ctx.store);
    let (prepared, updated) = prepare_packages(
        dpl,
        ctx.interp,
        ctx.store,
        &sources,
        PrepareOptions {
            compile: ctx.options.compile_bytecode,
            after_store: Some(&unpack),
        },
        ctx.reporter,
        &mut report,
    )?;
    // `prepare_packages` timed its own phases (fetch, bytecode).
    timer.restart();
    // Bytecode packs not unpacked yet (fetched from a remote tier) are unpacked here, several at
    // once: each is thousands of small files, and creating files is most of the time.
    let packs: Vec<Option<ContentHash>> = prepared.iter().map(|p| p.bytecode).collect();
    let mut trees = crate::parallel::map_in_order(&packs, UNPACK_WORKERS, |pack| {
        pack.as_ref()
            .map(|pack| ctx.store.unpacked(pack))
            .transpose()
    })
    .into_iter();
    let mut packages = Vec::with_capacity(prepared.len());
    for p in prepared {
        let extra_trees = match trees.next().transpose()?.flatten() {
            Some(tree) => vec![tree],
            None => Vec::new(),
        };
        packages.push(LayoutPackage {
            name: p.name,
            version: p.version,
            hash: p.hash,
            wheel_sha256: p.wheel_sha256,
            extra_trees,
        });
    }
    timer.mark(&mut report, "unpack");

    let spec = LayoutSpec {
        interpreter_tag: tag,
        python_version: (version.major as u8, version.minor as u8),
        packages,
    };
    let layout = ctx.layouts.build_layout(&spec)?;
    report.link_mode = Some(layout.link_mode);
    timer.mark(&mut report, "layout");
    let installed = ctx.layouts.install(&spec, ctx.venv)?;
    report.changes = previous.changes(dpl, &installed.project_hash);
    made.keep();
    timer.mark(&mut report, "link");

    Ok((report, updated))
}

/// Whether `venv` already uses the layout of exactly the set in the DPL at `dpl` for `interp`,
/// and that layout is still there: then a sync has nothing to do (and writes nothing). A lock
/// without store hashes (fresh from a resolution) is never held yet.
pub fn venv_holds(venv: &Path, dpl: &Path, interp: &Interpreter) -> bool {
    let Ok(reader) = DplReader::open(dpl) else {
        return false;
    };
    let Ok(Some(hash)) = project_hash(&reader, &interp.tag()) else {
        return false;
    };
    crate::layout::venv_layout(venv, python_pair(interp))
        .is_some_and(|used| used.project_hash == hash.to_hex() && used.layout.is_dir())
}

/// Refuses a lock whose wheels do not fit the interpreter (a lock made for CPython 3.11 would
/// otherwise "install" cp311 wheels into a 3.12 venv that then fails at import). Only the cold
/// path asks: a warm hit is keyed by the interpreter's tag, so it was checked when it was built.
fn check_environment<B: AsRef<[u8]>>(
    dpl: &DplReader<B>,
    interp: &Interpreter,
    tag: &str,
) -> Result<(), InstallError> {
    if dpl.environment() == tag {
        return Ok(());
    }
    for entry in dpl.entries() {
        let entry = entry?;
        let filename = entry.wheel().filename;
        // A name that does not parse is refused, with its reason, where the wheel is read.
        let Ok(wheel) = crate::wheel::WheelFilename::parse(filename) else {
            continue;
        };
        if interp.tag_priority(&wheel.tags).is_none() {
            return Err(InstallError::WrongEnvironment {
                locked_for: match dpl.environment() {
                    "" => "another environment".to_owned(),
                    env => env.to_owned(),
                },
                interpreter: tag.to_owned(),
                name: entry.name().to_owned(),
                filename: filename.to_owned(),
            });
        }
    }
    Ok(())
}

fn python_pair(interp: &Interpreter) -> (u8, u8) {
    let v = interp.version();
    (v.major as u8, v.minor as u8)
}

/// The venv's absolute path when a dx-py mount serves it (an unreadable mount table: no).
fn dx_py_mount(venv: &Path) -> Option<PathBuf> {
    let abs = crate::mountinfo::mount_point(venv).ok()?;
    crate::mountinfo::dx_py_mount_at(&abs).ok()??;
    Some(abs)
}

/// `err`, or [`InstallError::VenvMounted`] when a dx-py mount serves `venv` (which refuses
/// every write: that is why it failed). The warm path learns it from a failure rather than by
/// reading the mount table on every install.
fn if_mounted(venv: &Path, err: InstallError) -> InstallError {
    match dx_py_mount(venv) {
        Some(venv) => InstallError::VenvMounted { venv },
        None => err,
    }
}

/// The lock that makes installs into `venv` take turns (`super::venv_lock`), kept beside the
/// layouts in the cache. `None` where the cache takes no new file (read-only): a warm install
/// from such a cache still works, only without that protection.
fn locked_venv(layouts: &LayoutCache<'_>, venv: &Path) -> Option<fd_lock::RwLock<std::fs::File>> {
    let cache_dir = layouts.root().parent().unwrap_or(layouts.root());
    super::venv_lock::venv_lock(cache_dir, venv)
        .inspect_err(|e| tracing::debug!("No lock for `{}`: {e}", venv.display()))
        .ok()
}

/// Creates the venv unless one for the interpreter's `X.Y` is already there. What it makes where there was nothing
/// (no directory, or an empty one) is undone unless the install keeps it ([`MadeVenv::keep`]).
fn ensure_venv<'a>(
    interp: &Interpreter,
    venv: &'a Path,
    report: &mut InstallReport,
    timer: &mut PhaseTimer,
) -> Result<MadeVenv<'a>, InstallError> {
    let want = interp.version();
    let same = Venv::open(venv)
        .is_ok_and(|v| (v.version().major, v.version().minor) == (want.major, want.minor));
    if same {
        return Ok(MadeVenv(None));
    }
    let before = match std::fs::read_dir(venv) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Before::Absent),
        // Not empty: a venv of another Python, replaced; the old one is gone whatever happens.
        Ok(mut entries) => entries.next().is_none().then_some(Before::Empty),
        Err(_) => None,
    };
    let made = MadeVenv(before.map(|before| {
        // A Ctrl-C exits from the signal watcher, where no `Drop` of this thread runs.
        let owned = venv.to_path_buf();
        let guard = crate::interrupt::undo_on_interrupt(move || undo_venv(&owned, before));
        (venv, before, guard)
    }));
    let opts = VenvOptions {
        // Making the venv match the lock replaces one of another Python.
        existing: ExistingVenv::Clear,
        ..VenvOptions::default()
    };
    create_venv(interp, venv, &opts)?;
    report.venv_created = true;
    timer.mark(report, "venv");
    Ok(made)
}

/// What was at a venv's path before this install made the venv there.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// Nothing: the directory is removed again.
    Absent,
    /// An empty directory (a user's `mkdir`, a mount point): it is emptied again.
    Empty,
}

/// A venv this install made: removed again when dropped before [`MadeVenv::keep`], so that an
/// install that fails (a missing wheel, a full disk, a panic) leaves no half-made venv that the
/// next command takes for a real one. `None` when nothing is to be undone.
#[must_use]
struct MadeVenv<'a>(Option<(&'a Path, Before, crate::interrupt::UndoOnInterrupt)>);

impl MadeVenv<'_> {
    /// The install finished: the venv stays.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for MadeVenv<'_> {
    fn drop(&mut self) {
        if let Some((venv, before, interrupt)) = self.0.take() {
            if crate::interrupt::is_stopping() {
                // The signal watcher undoes it (this thread may be failing because of the
                // interruption): keep it registered, do not race it.
                std::mem::forget(interrupt);
                return;
            }
            undo_venv(venv, before);
        }
    }
}

/// Puts `venv` back as it was `before` this install made a venv there.
fn undo_venv(venv: &Path, before: Before) {
    let undone = match before {
        Before::Absent => fs_err::remove_dir_all(venv),
        Before::Empty => fs_err::read_dir(venv).and_then(|entries| {
            entries.into_iter().try_for_each(|e| {
                let e = e?;
                if e.file_type()?.is_dir() {
                    fs_err::remove_dir_all(e.path())
                } else {
                    fs_err::remove_file(e.path())
                }
            })
        }),
    };
    match undone {
        Ok(()) => tracing::debug!("removed the venv {} left unfinished", venv.display()),
        Err(e) => tracing::warn!("could not remove the unfinished venv: {e}"),
    }
}
