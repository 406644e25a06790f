//! What `dx-py mount` and its server process tell each other, as serde values rather than
//! command-line arguments and log lines.
//!
//! - [`ServerSpec`]: one JSON document on the server's stdin (closed after it).
//! - [`ServerStatus`]: one JSON line per state on the server's stdout, a pipe `mount` reads
//!   until the mount is live (or, with `--wait-bytecode`, until a final state). The server also
//!   keeps its latest state in `{cache}/mounts/<key>.status` (same JSON, replaced atomically)
//!   for whoever asks later: `mount` may have returned long before the bytecode is ready.
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::after::AfterMounting;
use crate::cache::Cache;

/// How to serve one mount: everything the server process needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// The tree file to serve (absolute).
    pub tree: PathBuf,
    /// Where to mount (absolute).
    pub mountpoint: PathBuf,
    /// The cache root (absolute).
    pub cache_dir: PathBuf,
    /// The store, when not `{cache}/store` (absolute).
    pub store: Option<PathBuf>,
    /// Request-serving threads.
    pub threads: usize,
    /// Mount with `allow_other`.
    pub allow_other: bool,
    /// Start the watcher that unmounts when the server dies.
    pub auto_unmount: bool,
    /// Leave served pack bytes in the page cache.
    pub keep_pack_cache: bool,
    /// What to complete after mounting, for a first tree.
    pub after: Option<AfterMounting>,
    /// The store's remote tier (`--store-url`): packs not in the store are fetched from it on
    /// their first read.
    #[serde(default)]
    pub store_url: Option<String>,
    /// `(object hex, package)` for the packs not in the store, to name them in the log.
    #[serde(default)]
    pub remote_names: Vec<(String, String)>,
    /// `(package object hex, its bytecode pack hex)`: fetched together on a read of either.
    #[serde(default)]
    pub remote_pairs: Vec<(String, String)>,
}

impl ServerSpec {
    /// The cache the server works in.
    pub fn cache(&self) -> Cache {
        Cache::new(&self.cache_dir, self.store.as_deref())
    }

    /// Reads a spec (one JSON document) from `reader`, e.g. the server's stdin.
    pub fn read_from(reader: impl std::io::Read) -> Result<Self, StatusError> {
        serde_json::from_reader(reader).map_err(StatusError::Json)
    }

    /// Writes the spec to `writer`, in one write (a pipe to the server).
    pub fn write_to(&self, mut writer: impl Write) -> Result<(), StatusError> {
        let bytes = serde_json::to_vec(self).map_err(StatusError::Json)?;
        writer.write_all(&bytes).map_err(StatusError::Io)
    }
}

/// A mount server's state, as it reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ServerStatus {
    /// The mount is live.
    Mounted,
    /// The packages laid out before mounting are stored (reads of them no longer wait).
    PackagesStored {
        /// How many.
        packages: usize,
        /// Milliseconds after mounting.
        after_ms: u64,
    },
    /// Final: the complete tree (every bytecode pack) is served.
    BytecodeReady {
        /// Directories that gained `__pycache__`.
        directories: usize,
        /// Milliseconds after mounting.
        after_ms: u64,
    },
    /// Final: the mount works but without (some) bytecode; imports compile in memory.
    NoBytecode {
        /// Why.
        reason: String,
    },
    /// Final: some packages could not be stored; their files cannot be read.
    PackagesFailed {
        /// Why.
        reason: String,
    },
}

impl ServerStatus {
    /// Whether nothing follows this state.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::BytecodeReady { .. } | Self::NoBytecode { .. } | Self::PackagesFailed { .. }
        )
    }

    /// Writes this state as one JSON line.
    pub fn write_line(&self, mut writer: impl Write) -> Result<(), StatusError> {
        let mut line = serde_json::to_vec(self).map_err(StatusError::Json)?;
        line.push(b'\n');
        writer.write_all(&line).map_err(StatusError::Io)?;
        writer.flush().map_err(StatusError::Io)
    }

    /// Reads the next state from a stream of lines; `None` at its end (the writer exited).
    /// Lines that are not JSON objects are not states and are skipped: a server run inside a
    /// test harness shares stdout with the harness's own lines.
    pub fn read_line(reader: &mut impl BufRead) -> Result<Option<Self>, StatusError> {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(StatusError::Io)? == 0 {
                return Ok(None);
            }
            if line.starts_with('{') {
                break;
            }
            tracing::debug!("not a mount server status: {}", line.trim_end());
        }
        serde_json::from_str(line.trim_end())
            .map(Some)
            .map_err(StatusError::Json)
    }

    /// Replaces the status file at `path` with this state (readers see the old or the new
    /// one). Not fsynced: a status is not worth a journal commit beside a mount being timed,
    /// and after a crash the server it describes is gone anyway.
    pub fn save(&self, path: &Path) -> Result<(), StatusError> {
        let bytes = serde_json::to_vec(self).map_err(StatusError::Json)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = crate::temp::file_in(dir).map_err(StatusError::Io)?;
        tmp.write_all(&bytes).map_err(StatusError::Io)?;
        tmp.persist(path)
            .map(drop)
            .map_err(|e| StatusError::Io(e.error))
    }

    /// The state saved at `path`, if any.
    pub fn load(path: &Path) -> Option<Self> {
        serde_json::from_slice(&fs_err::read(path).ok()?).ok()
    }
}

impl std::fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mounted => f.write_str("mounted"),
            Self::PackagesStored { packages, after_ms } => {
                write!(f, "{packages} packages stored after {after_ms} ms")
            }
            Self::BytecodeReady {
                directories,
                after_ms,
            } => write!(
                f,
                "bytecode ready after {after_ms} ms: {directories} directories gained bytecode"
            ),
            Self::NoBytecode { reason } => write!(f, "no bytecode for this mount ({reason})"),
            Self::PackagesFailed { reason } => write!(f, "packages not stored ({reason})"),
        }
    }
}

/// `e` and its sources on one line: the `reason` of a status (and what a read of a package
/// that failed to arrive answers in the log).
pub fn reason_of(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}

/// A spec or status that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Not the JSON expected (a server of another dx-py version, or a damaged file).
    #[error("Unreadable mount server message")]
    Json(#[source] serde_json::Error),
    /// The pipe or file failed.
    #[error("Cannot talk to the mount server")]
    Io(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_as_lines_and_files() {
        let states = [
            ServerStatus::Mounted,
            ServerStatus::PackagesStored {
                packages: 2,
                after_ms: 5,
            },
            ServerStatus::BytecodeReady {
                directories: 3,
                after_ms: 9,
            },
            ServerStatus::NoBytecode {
                reason: "no compiler".into(),
            },
            ServerStatus::PackagesFailed {
                reason: "Cannot store `bad-1.0-py3-none-any.whl`".into(),
            },
        ];
        let mut pipe = Vec::new();
        for s in &states {
            s.write_line(&mut pipe).unwrap();
        }
        assert_eq!(
            String::from_utf8_lossy(&pipe).lines().next(),
            Some(r#"{"state":"mounted"}"#)
        );
        let mut reader = std::io::BufReader::new(pipe.as_slice());
        for s in &states {
            assert_eq!(
                ServerStatus::read_line(&mut reader).unwrap().as_ref(),
                Some(s)
            );
        }
        assert!(ServerStatus::read_line(&mut reader).unwrap().is_none());
        // Other lines are skipped; a broken status is an error.
        let noise = b"running 1 test\n{\"state\":\"mounted\"}\n{\"state\":\"ready\"}\n";
        let mut reader = std::io::BufReader::new(noise.as_slice());
        let first = ServerStatus::read_line(&mut reader).unwrap();
        assert_eq!(first, Some(ServerStatus::Mounted));
        assert!(ServerStatus::read_line(&mut reader).is_err());
        let finals: Vec<bool> = states.iter().map(ServerStatus::is_final).collect();
        assert_eq!(finals, [false, false, true, true, true]);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.status");
        assert_eq!(ServerStatus::load(&file), None);
        states[2].save(&file).unwrap();
        assert_eq!(ServerStatus::load(&file), Some(states[2].clone()));
    }

    #[test]
    fn a_spec_round_trips() {
        let spec = ServerSpec {
            tree: "/c/mounts/trees/t.dxtree".into(),
            mountpoint: "/p/.venv".into(),
            cache_dir: "/c".into(),
            store: Some("/shared/store".into()),
            threads: 2,
            allow_other: false,
            auto_unmount: true,
            keep_pack_cache: false,
            after: Some(AfterMounting {
                lock: "/c/mounts/trees/t.first.dpl".into(),
                python: "/usr/bin/python3".into(),
                project_lock: Some(super::super::ProjectLock {
                    path: "/p/dx-py.dpl".into(),
                    left: "ab".repeat(32),
                }),
                find_links: vec!["/wheels".into()],
                lock_dir: "/p".into(),
            }),
            store_url: Some("http://127.0.0.1:9/store".into()),
            remote_names: vec![("ab".repeat(32), "`x 1`".into())],
            remote_pairs: vec![("ab".repeat(32), "cd".repeat(32))],
        };
        let mut bytes = Vec::new();
        spec.write_to(&mut bytes).unwrap();
        assert_eq!(ServerSpec::read_from(bytes.as_slice()).unwrap(), spec);
        assert_eq!(spec.cache().store_dir(), Path::new("/shared/store"));
        assert!(ServerSpec::read_from(&b"--tree x"[..]).is_err());
    }
}
