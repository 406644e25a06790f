//! Writing a prepared wheel's package: the files validation left in the archive are
//! decompressed into it in package order through one reused buffer (so they never sit in memory
//! whole), each checked against RECORD's size and sha256 as it goes; a mismatch fails the
//! write, so the caller drops what was written.
//!
//! Reading a large wheel ahead on helper threads (decompressing the next files into buffers
//! while the writer writes) was tried for the install's tail, where the largest wheel converts
//! alone: on two cores it cost more kernel time (fresh buffers) and memory than it saved.
use std::io::{Read, Write};

use super::convert::WheelWriteError;
use super::error::{EntryProblem, WheelError};
use super::record::RecordHashAlgorithm;
use super::validate::{Archive, InArchive};
use crate::dxpkg::PreparedDxpkg;

/// A file whose bytes go from the archive straight into the package.
#[derive(Debug)]
pub(crate) struct DeferredFile {
    pub(crate) archive_path: String,
    pub(crate) at: InArchive,
    /// RECORD's sha256 of the file: the bytes must match it.
    pub(crate) sha256: [u8; 32],
}

/// Bytes decompressed at a time while streaming a file into the package: the buffer is reused
/// for every file, so it stays in cache and memory is never freshly faulted in.
const STREAM_CHUNK: usize = 256 << 10;

/// Writes `package` to `out`, filling its deferred entries (`deferred`, indexed by token) from
/// `archive` through one reused buffer.
pub(crate) fn write_package(
    package: PreparedDxpkg,
    out: impl Write,
    deferred: &[DeferredFile],
    archive: Option<&mut Archive<'_>>,
    wheel: &str,
) -> Result<(), WheelWriteError> {
    let Some(archive) = archive else {
        return package.write_with(out, |token, _| {
            let problem = EntryProblem::Read("no archive to read it from".into());
            Err(entry_error(wheel, &deferred[token], problem).into())
        });
    };
    let mut buf = vec![0; STREAM_CHUNK];
    package.write_with(out, |token, out| {
        let file = &deferred[token];
        stream_file(archive, file, &mut buf, out)
            .map_err(|e| e.map_wheel(|problem| entry_error(wheel, file, problem)))
    })
}

fn entry_error(wheel: &str, file: &DeferredFile, problem: EntryProblem) -> WheelError {
    WheelError::Entry {
        wheel: wheel.to_string(),
        entry: file.archive_path.clone(),
        problem,
    }
}

/// A failure while streaming one file: the destination's, or the file's own.
enum StreamFailure {
    Io(std::io::Error),
    Entry(EntryProblem),
}

impl StreamFailure {
    fn map_wheel(self, wheel: impl FnOnce(EntryProblem) -> WheelError) -> WheelWriteError {
        match self {
            Self::Io(e) => WheelWriteError::Io(e),
            Self::Entry(problem) => WheelWriteError::from(wheel(problem)),
        }
    }
}

/// Decompresses one file into `out` through `buf`, reading at most one byte past its declared
/// size (as validation does), and checks its size and sha256 at the end.
fn stream_file(
    archive: &mut Archive<'_>,
    file: &DeferredFile,
    buf: &mut [u8],
    out: &mut dyn Write,
) -> Result<(), StreamFailure> {
    use sha2::Digest;
    let read_err =
        |e: &dyn std::fmt::Display| StreamFailure::Entry(EntryProblem::Read(e.to_string()));
    let mut entry = archive.by_index(file.at.index).map_err(|e| read_err(&e))?;
    let declared = file.at.size;
    let mut hasher = sha2::Sha256::new();
    let mut got = 0u64;
    while got <= declared {
        let want = usize::try_from(declared.saturating_add(1) - got)
            .map_or(buf.len(), |w| w.min(buf.len()));
        let n = match entry.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(&e)),
        };
        got += n as u64;
        if got > declared {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(StreamFailure::Io)?;
    }
    if got != declared {
        return Err(StreamFailure::Entry(EntryProblem::HeaderSizeMismatch {
            declared,
            got,
        }));
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != file.sha256 {
        let b64 = |d: &[u8]| data_encoding::BASE64URL_NOPAD.encode(d);
        return Err(StreamFailure::Entry(EntryProblem::HashMismatch {
            algorithm: RecordHashAlgorithm::Sha256.name(),
            expected: b64(&file.sha256),
            got: b64(&digest),
        }));
    }
    Ok(())
}
