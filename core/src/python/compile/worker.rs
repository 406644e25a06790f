//! One compile worker: an interpreter process (`python -I -S -B -W ignore -c worker.py`: no
//! `site`, no environment) fed sources on stdin, answering pycs on stdout, in order:
//!
//! ```text
//! request  (repeated): u32 LE name length | name (UTF-8) | u32 LE source length | source
//! answer (one each):   u32 LE pyc length | pyc      or   0xFFFFFFFF (did not compile: skipped)
//! pyc:                 magic (4) | flags = 0b01 (4, LE) | source hash (8) | marshal(code)
//! ```
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::BytecodeError;
use super::session::SessionSource;
use crate::python::interpreter::tail;

/// The worker program run as `python -I -S -B -W ignore -c`.
const WORKER_SCRIPT: &str = include_str!("worker.py");

/// Answer length meaning "skipped".
pub(super) const SKIPPED: u32 = u32::MAX;

/// A worker's answers: source position and the pyc, `None` when the source did not compile.
pub type Answers = Vec<(usize, Option<Vec<u8>>)>;

/// No pyc is larger than this; a longer length means the worker's answer is garbled.
const MAX_PYC_LEN: u32 = 1 << 30;

/// Output of the workers that does not follow the framing, or sources left unanswered.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The output ended (or failed) where an answer's length was due.
    #[error("answer {index}: expected a length")]
    MissingLength {
        /// Position of the answer.
        index: usize,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A pyc length outside what any pyc can have.
    #[error("answer {index}: expected a pyc length of 16 bytes to 1 GiB, got {len}")]
    BadLength {
        /// Position of the answer.
        index: usize,
        /// The length given.
        len: u32,
    },
    /// The output ended inside a pyc.
    #[error("answer {index}: expected {len} bytes")]
    ShortPyc {
        /// Position of the answer.
        index: usize,
        /// The length announced.
        len: u32,
        /// Why the bytes could not be read.
        #[source]
        source: std::io::Error,
    },
    /// Output after the last answer.
    #[error("expected {count} answers, got more")]
    TooMany {
        /// Answers expected.
        count: usize,
    },
    /// Reading after the last answer failed.
    #[error("after {count} answers")]
    ReadFailed {
        /// Answers read.
        count: usize,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The worker process was started without its pipes.
    #[error("the worker's pipes were not opened")]
    NoPipes,
    /// A thread driving a worker panicked.
    #[error("a worker thread panicked")]
    WorkerPanicked,
    /// The workers answered fewer sources than were queued.
    #[error("{queued} sources queued, {answered} answered")]
    Unanswered {
        /// Sources queued.
        queued: usize,
        /// Answers received.
        answered: usize,
    },
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
            source: AnswerError::NoPipes,
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
        Err(source) => Err(BytecodeError::BadOutput {
            path: python.to_path_buf(),
            source,
        }),
    }
}

/// Reads one answer per position received from `in_flight` (in order), then expects the end
/// of output.
pub(super) fn read_answers(
    mut r: impl Read,
    in_flight: impl IntoIterator<Item = usize>,
) -> Result<Answers, AnswerError> {
    let mut answers = Vec::new();
    for i in in_flight {
        let n = answers.len();
        let mut len = [0u8; 4];
        r.read_exact(&mut len)
            .map_err(|source| AnswerError::MissingLength { index: n, source })?;
        let len = u32::from_le_bytes(len);
        if len == SKIPPED {
            answers.push((i, None));
            continue;
        }
        if !(16..=MAX_PYC_LEN).contains(&len) {
            return Err(AnswerError::BadLength { index: n, len });
        }
        let mut pyc = vec![0u8; len as usize];
        r.read_exact(&mut pyc)
            .map_err(|source| AnswerError::ShortPyc {
                index: n,
                len,
                source,
            })?;
        answers.push((i, Some(pyc)));
    }
    let count = answers.len();
    let mut rest = [0u8; 1];
    match r.read(&mut rest) {
        Ok(0) => Ok(answers),
        Ok(_) => Err(AnswerError::TooMany { count }),
        Err(source) => Err(AnswerError::ReadFailed { count, source }),
    }
}
