//! Compiling a known set of sources at once: spread over worker processes (one per core, and
//! one per [`MIN_BATCH_BYTES`] of source), largest source first; and writing the pycs.
use std::path::Path;

use super::BytecodeError;
use super::pyc::{Pyc, checked_cache_tag};
use super::session::CompileSession;
use crate::dxpkg::EntryKind;
use crate::python::interpreter::Interpreter;

/// Inputs smaller than this go to one process: a second start-up costs more than it saves.
pub(super) const MIN_BATCH_BYTES: usize = 512 * 1024;

/// Compiles `(path relative to site-packages, source)` pairs with `interp` and returns
/// `(pyc path, pyc bytes)`, e.g. `pkg/__pycache__/mod.cpython-311.pyc`, in input order.
///
/// Only `.py` paths are compiled; absolute paths, paths with `..`, and sources that do not
/// compile (syntax errors, Python 2 files, bad encodings) are skipped without error, as pip does.
/// Large inputs are spread over several processes (one per available core).
pub fn compile_sources<'a>(
    interp: &Interpreter,
    sources: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<(String, Vec<u8>)>, BytecodeError> {
    compile_sources_with(interp, sources, default_jobs())
}

/// [`compile_sources`] with at most `jobs` worker processes (at least one is used).
pub fn compile_sources_with<'a>(
    interp: &Interpreter,
    sources: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    jobs: usize,
) -> Result<Vec<(String, Vec<u8>)>, BytecodeError> {
    let sources: Vec<(&str, &[u8])> = sources.into_iter().collect();
    Ok(compile_each(interp, &sources, jobs)?
        .into_iter()
        .flatten()
        .collect())
}

/// One worker process per available core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Like [`compile_sources_with`], but answers every input: `Some((pyc path, pyc))`, or `None` for
/// an input that is not compiled (not a `.py` path, or a source that does not compile). Callers
/// that compile many packages at once use the positions to give each package its own pycs.
///
/// Sources are handed out largest first to whichever worker is free, so one large file does
/// not leave the other cores idle at the end.
pub fn compile_each(
    interp: &Interpreter,
    sources: &[(&str, &[u8])],
    jobs: usize,
) -> Result<Vec<Option<Pyc>>, BytecodeError> {
    let session = CompileSession::new(interp, jobs)?;
    // Largest first (ties by position, so runs are repeatable). Ids are push positions.
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sources[i].1.len()), i));
    let mut pushed: Vec<(usize, String)> = Vec::with_capacity(sources.len());
    for i in order {
        let (name, bytes) = sources[i];
        if let Some((_, pyc)) = session.push((name.to_string(), bytes.to_vec()))? {
            pushed.push((i, pyc));
        }
    }
    let mut out: Vec<Option<Pyc>> = vec![None; sources.len()];
    for (id, pyc) in session.finish()? {
        if let (Some(bytes), Some((i, path))) = (pyc, pushed.get_mut(id)) {
            out[*i] = Some((std::mem::take(path), bytes));
        }
    }
    Ok(out)
}

/// Compiles the `.py` files under `dir` (an unpacked package tree) that [`compile_plan`] picks:
/// not those in `__pycache__` directories, nor those whose pyc the tree already holds (a
/// wheel's own is kept as shipped). Pyc paths are relative to `dir`; directory symlinks are not
/// followed. Nothing is written: see [`write_pycs`].
///
/// [`compile_plan`]: super::compile_plan
pub fn compile_dir(
    interp: &Interpreter,
    dir: &Path,
) -> Result<Vec<(String, Vec<u8>)>, BytecodeError> {
    let cache_tag = checked_cache_tag(interp)?;
    let mut files = Vec::new();
    collect_files(dir, String::new(), &mut files)?;
    let plan = super::compile_plan(files.iter().map(|(rel, k)| (rel.as_str(), *k)), &cache_tag);
    let sources: Vec<(&str, Vec<u8>)> = plan
        .into_iter()
        .map(|(at, _)| {
            let rel = files[at].0.as_str();
            let path = dir.join(rel);
            fs_err::read(&path)
                .map(|bytes| (rel, bytes))
                .map_err(|source| BytecodeError::Io { path, source })
        })
        .collect::<Result<_, _>>()?;
    compile_sources(interp, sources.iter().map(|(n, s)| (*n, s.as_slice())))
}

/// Writes `pycs` (as returned by [`compile_sources`]) under `dir`, creating `__pycache__`
/// directories as needed.
pub fn write_pycs(dir: &Path, pycs: &[(String, Vec<u8>)]) -> Result<(), BytecodeError> {
    for (rel, bytes) in pycs {
        let path = dir.join(rel);
        let io = |source| BytecodeError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(io)?;
        }
        fs_err::write(&path, bytes).map_err(io)?;
    }
    Ok(())
}

/// Every file under `dir` with its kind, paths relative to the tree's root (`prefix`), in name
/// order. A symlink to a file counts as a file (it is read through); other symlinks as links.
fn collect_files(
    dir: &Path,
    prefix: String,
    out: &mut Vec<(String, EntryKind)>,
) -> Result<(), BytecodeError> {
    let io = |source| BytecodeError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = fs_err::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for entry in entries {
        let Ok(name) = entry.file_name().into_string() else {
            tracing::debug!("Not compiling non-UTF-8 path under `{}`", dir.display());
            continue;
        };
        let file_type = entry.file_type().map_err(io)?;
        let rel = format!("{prefix}{name}");
        if file_type.is_dir() {
            collect_files(&entry.path(), format!("{rel}/"), out)?;
        } else if file_type.is_file() || file_type.is_symlink() && entry.path().is_file() {
            out.push((rel, EntryKind::File));
        } else {
            out.push((rel, EntryKind::Symlink));
        }
    }
    Ok(())
}

/// How many workers to start for `total` source bytes in `count` sources: at most `jobs`, and
/// one per [`MIN_BATCH_BYTES`] (a process start costs more than compiling less than that).
pub(super) fn worker_count(total: usize, count: usize, jobs: usize) -> usize {
    jobs.clamp(1, (total / MIN_BATCH_BYTES).max(1))
        .min(count)
        .max(1)
}
