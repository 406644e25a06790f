//! Compiling Python sources to unchecked-hash `.pyc` files (PEP 552) with a given interpreter,
//! without the sources being on disk.
//!
//! A venv served read-only (FUSE mount, shared layout) cannot get `__pycache__` written by
//! Python at import time, so the bytecode is made at install time. Unchecked-hash pycs are
//! the kind that stays valid there: their header carries a hash of the source instead of its
//! mtime (which a mount or a hardlinked tree does not preserve), and Python does not re-read the
//! source to check it.
//!
//! A few interpreter processes (`-I -S -B`, so no `site` and no environment; one per core) take
//! sources from a shared queue, largest first, streamed to their stdin:
//!
//! ```text
//! request  (repeated): u32 LE name length | name (UTF-8) | u32 LE source length | source
//! answer (one each):   u32 LE pyc length | pyc      or   0xFFFFFFFF (did not compile: skipped)
//! pyc:                 magic (4) | flags = 0b01 (4, LE) | source hash (8) | marshal(code)
//! ```
use super::session::{CompileSession, SessionSource};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::interpreter::Interpreter;
use crate::dxpkg::EntryKind;

/// The worker program run as `python -I -S -B -W ignore -c`.
const WORKER_SCRIPT: &str = include_str!("compile_worker.py");

/// Answer length meaning "skipped".
const SKIPPED: u32 = u32::MAX;

/// A compiled file: its pyc path relative to site-packages and the pyc bytes.
pub type Pyc = (String, Vec<u8>);

/// A worker's answers: source position and the pyc, `None` when the source did not compile.
pub type Answers = Vec<(usize, Option<Vec<u8>>)>;

/// No pyc is larger than this; a longer length means the worker's answer is garbled.
const MAX_PYC_LEN: u32 = 1 << 30;

/// Inputs smaller than this go to one process: a second start-up costs more than it saves.
const MIN_BATCH_BYTES: usize = 512 * 1024;

/// Compilation that could not run.
#[derive(Debug, thiserror::Error)]
pub enum BytecodeError {
    /// The interpreter predates unchecked-hash pycs.
    #[error("`{}` is Python {version}: unchecked-hash bytecode needs Python 3.7 or newer", path.display())]
    Unsupported {
        /// The interpreter.
        path: PathBuf,
        /// Its version.
        version: String,
    },
    /// The interpreter does not cache bytecode (`sys.implementation.cache_tag` is `None`).
    #[error("`{}` has no bytecode cache tag, so it reads no `.pyc` files", path.display())]
    NoCacheTag {
        /// The interpreter.
        path: PathBuf,
    },
    /// The worker process could not be started.
    #[error("Failed to start `{}` to compile bytecode", path.display())]
    Spawn {
        /// The interpreter.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
    /// The worker stopped before answering every source.
    #[error("Compiling bytecode with `{}` failed ({status}): {stderr}", path.display())]
    WorkerFailed {
        /// The interpreter.
        path: PathBuf,
        /// How the worker exited.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The worker's answer does not follow the framing.
    #[error("Bytecode worker `{}` answered garbage: {reason}", path.display())]
    BadOutput {
        /// The interpreter.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A source or its name is longer than the framing allows (4 GiB).
    #[error("Source `{name}` is too large to compile: {len} bytes")]
    TooLarge {
        /// The source's path.
        name: String,
        /// Its length.
        len: usize,
    },
    /// A file of the tree could not be read or a pyc written.
    #[error("Failed to access `{}` while compiling bytecode", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
}

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

/// The cache tag of an interpreter that can compile unchecked-hash pycs (3.7 or newer).
pub(super) fn checked_cache_tag(interp: &Interpreter) -> Result<String, BytecodeError> {
    let info = interp.info();
    if (info.version.major, info.version.minor) < (3, 7) {
        return Err(BytecodeError::Unsupported {
            path: interp.path().to_path_buf(),
            version: info.version.to_string(),
        });
    }
    info.cache_tag
        .clone()
        .ok_or_else(|| BytecodeError::NoCacheTag {
            path: interp.path().to_path_buf(),
        })
}

/// `pkg/mod.py` -> `pkg/__pycache__/mod.{tag}.pyc` (`importlib.util.cache_from_source`);
/// `None` for non-`.py`, absolute or `..` paths.
pub(super) fn pyc_path(name: &str, cache_tag: &str) -> Option<String> {
    let stem_path = name.strip_suffix(".py")?;
    if name.starts_with('/') || name.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    let (dir, stem) = match stem_path.rsplit_once('/') {
        Some((dir, stem)) => (format!("{dir}/"), stem),
        None => (String::new(), stem_path),
    };
    if stem.is_empty() {
        return None;
    }
    Some(format!("{dir}__pycache__/{stem}.{cache_tag}.pyc"))
}

/// How many workers to start for `total` source bytes in `count` sources: at most `jobs`, and
/// one per [`MIN_BATCH_BYTES`] (a process start costs more than compiling less than that).
pub(super) fn worker_count(total: usize, count: usize, jobs: usize) -> usize {
    jobs.clamp(1, (total / MIN_BATCH_BYTES).max(1))
        .min(count)
        .max(1)
}

/// Runs one worker process over the sources `take` hands out (with their positions), until it
/// hands out no more. Returns the answers by source position; `None` answers are sources that
/// did not compile.
pub(super) fn run_worker<S: SessionSource>(
    python: &Path,
    take: &(dyn Fn() -> Option<(usize, S)> + Sync),
) -> Result<Answers, BytecodeError> {
    let mut child = Command::new(python)
        .args(["-I", "-S", "-B", "-W", "ignore", "-c", WORKER_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BytecodeError::Spawn {
            path: python.to_path_buf(),
            source,
        })?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(BytecodeError::BadOutput {
            path: python.to_path_buf(),
            reason: "the worker's pipes were not opened".to_string(),
        });
    };

    let (answers, stderr_text) = std::thread::scope(|s| {
        // Requests go out from one thread and stderr drains in another, so that no pipe fills
        // up and blocks the worker. The rendezvous channel lets the writer send one request
        // ahead of the answer being read: the worker never waits for the next source, and
        // takes no more than that from the shared queue, which keeps the workers even.
        let (sent, in_flight) = std::sync::mpsc::sync_channel::<usize>(0);
        let writer = s.spawn(move || -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(1 << 16, stdin);
            while let Some((i, item)) = take() {
                let (name, source) = (item.name(), item.bytes());
                // Lengths were checked against u32 by the caller.
                w.write_all(&u32::try_from(name.len()).unwrap_or(0).to_le_bytes())?;
                w.write_all(name.as_bytes())?;
                w.write_all(&u32::try_from(source.len()).unwrap_or(0).to_le_bytes())?;
                w.write_all(source)?;
                w.flush()?;
                if sent.send(i).is_err() {
                    break; // The reader gave up.
                }
            }
            Ok(())
            // Dropping the writer closes stdin: the worker's end of input.
        });
        let errors = s.spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let answers = read_answers(BufReader::with_capacity(1 << 16, stdout), in_flight);
        let _ = writer.join();
        let text = errors.join().unwrap_or_default();
        (answers, text)
    });
    let status = child.wait().map_err(|source| BytecodeError::Spawn {
        path: python.to_path_buf(),
        source,
    })?;
    let stderr_text = String::from_utf8_lossy(&stderr_text);
    let failed = || BytecodeError::WorkerFailed {
        path: python.to_path_buf(),
        status: status.to_string(),
        stderr: tail(&stderr_text, 2000),
    };
    match answers {
        Ok(answers) if status.success() => Ok(answers),
        Ok(_) => Err(failed()),
        // A short answer from a worker that failed is the worker's fault: report its stderr.
        Err(_) if !status.success() => Err(failed()),
        Err(reason) => Err(BytecodeError::BadOutput {
            path: python.to_path_buf(),
            reason,
        }),
    }
}

/// Reads one answer per position received from `in_flight` (in order), then expects the end
/// of output.
fn read_answers(
    mut r: impl Read,
    in_flight: impl IntoIterator<Item = usize>,
) -> Result<Answers, String> {
    let mut answers = Vec::new();
    for i in in_flight {
        let n = answers.len();
        let mut len = [0u8; 4];
        r.read_exact(&mut len)
            .map_err(|e| format!("answer {n}: expected a length, got {e}"))?;
        let len = u32::from_le_bytes(len);
        if len == SKIPPED {
            answers.push((i, None));
            continue;
        }
        if !(16..=MAX_PYC_LEN).contains(&len) {
            return Err(format!(
                "answer {n}: expected a pyc length of 16 bytes to 1 GiB, got {len}"
            ));
        }
        let mut pyc = vec![0u8; len as usize];
        r.read_exact(&mut pyc)
            .map_err(|e| format!("answer {n}: expected {len} bytes, got {e}"))?;
        answers.push((i, Some(pyc)));
    }
    let count = answers.len();
    let mut rest = [0u8; 1];
    match r.read(&mut rest) {
        Ok(0) => Ok(answers),
        Ok(_) => Err(format!("expected {count} answers, got more")),
        Err(e) => Err(format!("after {count} answers: {e}")),
    }
}

fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let start = s.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    format!("…{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::interpreter::tests::pyenv_python;

    fn interp(minor: u32, cache: &Path) -> Option<Interpreter> {
        let python = pyenv_python(minor)?;
        Some(Interpreter::find(python.to_str(), cache).unwrap())
    }

    fn python_out(python: &Path, dir: &Path, code: &str) -> String {
        let out = Command::new(python)
            .args(["-c", code])
            .current_dir(dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPYCACHEPREFIX")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn pyc_paths_follow_cache_from_source() {
        let t = "cpython-311";
        assert_eq!(
            pyc_path("mod.py", t).unwrap(),
            "__pycache__/mod.cpython-311.pyc"
        );
        assert_eq!(
            pyc_path("pkg/sub/__init__.py", t).unwrap(),
            "pkg/sub/__pycache__/__init__.cpython-311.pyc"
        );
        assert_eq!(
            pyc_path("a.b.py", t).unwrap(),
            "__pycache__/a.b.cpython-311.pyc"
        );
        for bad in [
            "mod.txt",
            "/abs/mod.py",
            "../mod.py",
            "pkg/../mod.py",
            "pkg//m.py",
            ".py",
            "pkg/.py",
        ] {
            assert!(pyc_path(bad, t).is_none(), "{bad}");
        }
    }

    #[test]
    fn one_worker_per_half_mebibyte_up_to_jobs() {
        assert_eq!(worker_count(10, 100, 8), 1, "small input: one process");
        assert_eq!(worker_count(MIN_BATCH_BYTES * 3, 100, 8), 3);
        assert_eq!(worker_count(MIN_BATCH_BYTES * 30, 100, 2), 2);
        assert_eq!(
            worker_count(MIN_BATCH_BYTES * 30, 1, 8),
            1,
            "no more than sources"
        );
        assert_eq!(worker_count(MIN_BATCH_BYTES * 30, 100, 0), 1);
    }

    #[test]
    fn garbled_answers_are_errors() {
        let ok = |len: u32, body: usize| {
            let mut v = len.to_le_bytes().to_vec();
            v.extend(std::iter::repeat_n(0u8, body));
            v
        };
        assert_eq!(read_answers(&ok(16, 16)[..], [0]).unwrap().len(), 1);
        assert_eq!(
            read_answers(&SKIPPED.to_le_bytes()[..], [7]).unwrap(),
            [(7, None)]
        );
        assert!(
            read_answers(&ok(16, 15)[..], [0])
                .unwrap_err()
                .contains("expected 16 bytes")
        );
        assert!(
            read_answers(&ok(3, 3)[..], [0])
                .unwrap_err()
                .contains("got 3")
        );
        assert!(
            read_answers(&[1u8, 0][..], [0])
                .unwrap_err()
                .contains("expected a length")
        );
        assert!(
            read_answers(&ok(16, 17)[..], [0])
                .unwrap_err()
                .contains("got more")
        );
        assert!(read_answers(&ok(u32::MAX - 1, 0)[..], [0]).is_err());
    }

    /// Compile source A, then replace the `.py` with source B: importing shows A's behaviour,
    /// so the pyc is used and its hash is not checked against the source.
    #[test]
    fn unchecked_pyc_is_used_without_looking_at_the_source() {
        let cache = tempfile::tempdir().unwrap();
        for minor in [11, 12] {
            let Some(interp) = interp(minor, cache.path()) else {
                continue;
            };
            let dir = tempfile::tempdir().unwrap();
            let a = b"WHO = 'A'\n";
            let pycs = compile_sources(&interp, [("pkg/mod.py", &a[..])]).unwrap();
            assert_eq!(pycs.len(), 1);
            let (path, pyc) = &pycs[0];
            assert_eq!(*path, format!("pkg/__pycache__/mod.cpython-3{minor}.pyc"));
            assert_eq!(&pyc[4..8], &[1, 0, 0, 0], "flags: hash-based, unchecked");

            fs_err::create_dir_all(dir.path().join("pkg")).unwrap();
            fs_err::write(dir.path().join("pkg/__init__.py"), "").unwrap();
            fs_err::write(
                dir.path().join("pkg/mod.py"),
                "WHO = 'B, a longer source'\n",
            )
            .unwrap();
            write_pycs(dir.path(), &pycs).unwrap();
            let python = interp.path();
            let out = python_out(
                python,
                dir.path(),
                "import importlib.util as u, pkg.mod as m; \
                 print(m.WHO); print(u.MAGIC_NUMBER.hex()); print(u.source_hash(b\"WHO = 'A'\\n\").hex())",
            );
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines[0], "A", "3.{minor}: the pyc was not used");
            assert_eq!(lines[1], data_encoding::HEXLOWER.encode(&pyc[..4]));
            assert_eq!(lines[2], data_encoding::HEXLOWER.encode(&pyc[8..16]));
        }
    }

    #[test]
    fn bad_sources_are_skipped_and_order_kept() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(11, cache.path()) else {
            return;
        };
        let sources: Vec<(&str, &[u8])> = vec![
            ("a.py", b"x = 1\n"),
            ("py2.py", b"print 'hello'\n"),
            ("nul.py", b"x = 1\0\n"),
            ("enc.py", b"# -*- coding: nonsense -*-\nx = 1\n"),
            ("warn.py", b"s = '\\d'\n"),
            ("data.txt", b"not python"),
            ("../escape.py", b"x = 1\n"),
            ("b/c.py", b"def f():\n    return 2\n"),
        ];
        let pycs = compile_sources(&interp, sources).unwrap();
        let names: Vec<&str> = pycs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "__pycache__/a.cpython-311.pyc",
                "__pycache__/warn.cpython-311.pyc",
                "b/__pycache__/c.cpython-311.pyc"
            ]
        );
        assert!(
            compile_sources(&interp, std::iter::empty())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parallel_batches_match_one_process() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(11, cache.path()) else {
            return;
        };
        let body: String = (0..2000)
            .map(|i| format!("def f{i}(x):\n    return x + {i}\n"))
            .collect();
        let names: Vec<String> = (0..40).map(|i| format!("m{i}.py")).collect();
        let sources: Vec<(&str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), body.as_bytes()))
            .collect();
        let one = compile_sources_with(&interp, sources.clone(), 1).unwrap();
        let many = compile_sources_with(&interp, sources, 4).unwrap();
        assert_eq!(one.len(), 40);
        assert_eq!(
            one.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            many.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        // marshal output is deterministic for the same interpreter and source.
        assert!(one.iter().zip(&many).all(|(a, b)| a.1 == b.1));
    }

    #[test]
    fn compile_dir_walks_a_tree() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(12, cache.path()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs_err::create_dir_all(d.join("pkg/sub")).unwrap();
        fs_err::create_dir_all(d.join("pkg/__pycache__")).unwrap();
        fs_err::write(d.join("pkg/__init__.py"), "from .sub import v\n").unwrap();
        fs_err::write(d.join("pkg/sub/__init__.py"), "v = 42\n").unwrap();
        fs_err::write(d.join("pkg/__pycache__/junk.py"), "x = 1\n").unwrap();
        fs_err::write(d.join("pkg/data.json"), "{}").unwrap();
        // A pyc the package ships for this interpreter is kept: its source is not compiled.
        fs_err::write(d.join("pkg/shipped.py"), "S = 1\n").unwrap();
        let shipped = d.join("pkg/__pycache__/shipped.cpython-312.pyc");
        fs_err::write(&shipped, "as shipped").unwrap();
        let pycs = compile_dir(&interp, d).unwrap();
        let names: Vec<&str> = pycs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "pkg/__pycache__/__init__.cpython-312.pyc",
                "pkg/sub/__pycache__/__init__.cpython-312.pyc"
            ]
        );
        write_pycs(d, &pycs).unwrap();
        assert_eq!(fs_err::read(&shipped).unwrap(), b"as shipped");
        fs_err::write(d.join("pkg/sub/__init__.py"), "v = 0\n").unwrap();
        assert_eq!(
            python_out(interp.path(), d, "import pkg; print(pkg.v)").trim(),
            "42"
        );
    }

    #[test]
    fn a_dead_worker_is_an_error() {
        let cache = tempfile::tempdir().unwrap();
        let Some(real) = interp(11, cache.path()) else {
            return;
        };
        let fake =
            Interpreter::from_info(PathBuf::from("/bin/false"), real.info().clone()).unwrap();
        let err = compile_sources(&fake, [("a.py", &b"x = 1"[..])]).unwrap_err();
        assert!(matches!(err, BytecodeError::WorkerFailed { .. }), "{err}");
        let missing =
            Interpreter::from_info(PathBuf::from("/nonexistent/python"), real.info().clone())
                .unwrap();
        let err = compile_sources(&missing, [("a.py", &b"x = 1"[..])]).unwrap_err();
        assert!(matches!(err, BytecodeError::Spawn { .. }), "{err}");
        let mut old = real.info().clone();
        old.version.minor = 6;
        let old = Interpreter::from_info(real.path().to_path_buf(), old).unwrap();
        let err = compile_sources(&old, [("a.py", &b"x = 1"[..])]).unwrap_err();
        assert!(matches!(err, BytecodeError::Unsupported { .. }), "{err}");
    }
}
