//! The remote store tier: a read-only copy of store objects somewhere else (a static web
//! server or CDN, an S3 bucket, a directory), below the local store. An install asks it for the
//! objects the local store lacks before any wheel or index is asked; `dx-py store push`
//! publishes a lock's objects to it. See docs/design/store-remote.md.
//!
//! ```text
//! {remote}/
//! ├── ab/cd/abcd….dxpkg          objects, the local store's fan-out and names
//! ├── wheels/{wheel sha256}       the object that wheel became (hex), as in the local store
//! └── bytecode-v2/{tag}/{object}  the object's bytecode pack for one interpreter (hex)
//! ```
//!
//! The remote is trusted for nothing: an object is blake3-verified against its name before the
//! local store takes it ([`PackageStore::store_verified`]), and a wheel record is checked as
//! the local store checks its own (the object must hold that wheel's `.dist-info`). Records are
//! small and written after the objects they name, so a reader that finds a record finds its
//! object.
//!
//! Every call blocks and may come from any thread: an install asks from its worker threads, and
//! a mount (later) from the FUSE thread of the first read of a package.
mod dir;
mod fetch;
mod http;
mod lazy;
mod push;
mod s3;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::{DashMap, DashSet};

use crate::hash::ContentHash;
use crate::index::ClientOptions;
use crate::store::StoreError;

pub use fetch::fetch_missing;
pub use lazy::{FetchFailed, RemoteIndex};
pub use push::{PushReport, push_lock};

/// A failure of the remote tier, naming the URL (and object) concerned.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The store URL cannot be used.
    #[error(
        "Invalid store URL `{url}`: {reason}; use `http://…`, `https://…`, `s3://bucket/prefix`, \
         `file://…` or a directory"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An HTTP request failed (after retries).
    #[error("Failed to fetch `{url}` from the remote store")]
    Http {
        /// The URL.
        url: String,
        /// The failure.
        #[source]
        source: Box<crate::index::IndexError>,
    },
    /// An S3 request failed (after retries).
    #[error("S3 request for `{url}` failed")]
    S3 {
        /// The object's `s3://` URL.
        url: String,
        /// The failure.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The S3 client could not be set up.
    #[error(
        "Cannot use the S3 store `{url}`: check AWS_REGION, AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY and (for a local server) AWS_ENDPOINT_URL and AWS_ALLOW_HTTP"
    )]
    S3Setup {
        /// The store URL.
        url: String,
        /// The failure.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A file of a directory store could not be read or written.
    #[error("Cannot access `{url}` in the remote store")]
    Io {
        /// The file.
        url: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The remote served bytes that do not hash to the object's name: refused, nothing stored.
    #[error(
        "Object `{hash}` from `{url}` is corrupt: its bytes hash to `{actual}`; nothing was \
         stored. Push it again (`dx-py store push`) or drop `--store-url`"
    )]
    Corrupt {
        /// The object asked for.
        hash: ContentHash,
        /// Where it came from.
        url: String,
        /// What the bytes hash to.
        actual: ContentHash,
    },
    /// The remote served an object whose bytes match its name but the local store refused it.
    #[error("Object `{hash}` from `{url}` cannot be stored")]
    Store {
        /// The object.
        hash: ContentHash,
        /// Where it came from.
        url: String,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
    /// An object's sidecar (its group CVs) does not describe the object named.
    #[error("Sidecar `{url}` of object `{hash}` in the remote store is damaged: {why}")]
    BadSidecar {
        /// The object.
        hash: ContentHash,
        /// The sidecar.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// An object's index, read by ranges, cannot be used (its groups matched the object's
    /// name, so the object itself is malformed, or the server answered other ranges).
    #[error("Object `{hash}` at `{url}` cannot be read by ranges: {why}")]
    BadIndex {
        /// The object.
        hash: ContentHash,
        /// Where it is.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// A record file (`wheels/…`, `bytecode-v2/…`) does not hold an object's hex name.
    #[error("Record `{url}` in the remote store is damaged: expected an object's hex name")]
    BadRecord {
        /// The record.
        url: String,
    },
    /// `store push` to a tier that cannot be written.
    #[error(
        "Cannot push to `{url}`: HTTP stores are read-only; push to the directory the server serves, or to `s3://`"
    )]
    ReadOnly {
        /// The URL.
        url: String,
    },
    /// `store push` of a lock whose package the local store does not have.
    #[error(
        "`{name}` {version} of the lock is not in the local store: run `dx-py install` with this \
         lock first, then push"
    )]
    NotStored {
        /// The package.
        name: String,
        /// Its version.
        version: String,
    },
}

/// What a tier fetched, for `-v` and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoteStats {
    /// Objects (packages and bytecode packs) fetched and stored.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Locked packages the remote does not have (taken the ordinary way), by name.
    pub missing: Vec<String>,
}

/// One remote tier, opened from its URL; shared between threads.
pub struct RemoteTier {
    url: String,
    backend: Backend,
    /// Objects being fetched: a second asker of the same object waits for the first, then
    /// finds it in the local store (nothing is fetched twice).
    in_flight: DashMap<ContentHash, Arc<std::sync::Mutex<()>>>,
    /// Record keys the remote answered 404 for: not asked again by this process.
    absent: DashSet<String>,
    /// Objects reads asked for, with their last failure (for the backoff).
    reads: DashMap<ContentHash, lazy::ReadSlot>,
    /// Package names of objects, for the log lines of failed reads.
    labels: DashMap<ContentHash, String>,
    /// A package's object and its bytecode pack, both ways: fetched together for a read.
    siblings: DashMap<ContentHash, ContentHash>,
    objects: AtomicU64,
    bytes: AtomicU64,
    missing: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for RemoteTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTier")
            .field("url", &self.url)
            .finish()
    }
}

/// Where a tier's files are, and how they are read and written.
enum Backend {
    Http(Box<http::HttpTier>),
    S3(s3::S3Tier),
    Dir(dir::DirTier),
}

/// The largest object accepted from a remote (a `.dxpkg` is an installed wheel).
const MAX_OBJECT: u64 = 4 << 30;
/// The largest record accepted (a hex name and a newline).
const MAX_RECORD: u64 = 1 << 10;

impl RemoteTier {
    /// Opens the tier at `url`: `http://` / `https://` (through an HTTP client with `options`'
    /// timeouts and retries), `s3://bucket/prefix` (credentials and endpoint from `AWS_*`),
    /// `file://…` or a directory path. Nothing is fetched yet.
    pub fn open(url: &str, options: &ClientOptions) -> Result<Self, RemoteError> {
        let invalid = |reason: &str| RemoteError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let backend = match url.split_once("://") {
            Some(("http" | "https", _)) => Backend::Http(Box::new(
                http::HttpTier::open(url, options).map_err(|e| match e {
                    http::OpenError::Url(reason) => invalid(&reason),
                    http::OpenError::Client(source) => RemoteError::Http {
                        url: url.to_string(),
                        source: Box::new(source),
                    },
                })?,
            )),
            Some(("s3", rest)) => Backend::S3(s3::S3Tier::open(url, rest)?),
            Some(("file", _)) => {
                let path = url::Url::parse(url)
                    .ok()
                    .and_then(|u| u.to_file_path().ok())
                    .ok_or_else(|| invalid("not a local file URL"))?;
                Backend::Dir(dir::DirTier::new(path))
            }
            Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme `{scheme}`"))),
            None if url.is_empty() => return Err(invalid("empty")),
            None => Backend::Dir(dir::DirTier::new(url.into())),
        };
        Ok(Self {
            url: url.to_string(),
            backend,
            in_flight: DashMap::new(),
            absent: DashSet::new(),
            reads: DashMap::new(),
            labels: DashMap::new(),
            siblings: DashMap::new(),
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            missing: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The URL the tier was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What this tier fetched so far.
    pub fn stats(&self) -> RemoteStats {
        RemoteStats {
            objects: self.objects.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            missing: lock(&self.missing).clone(),
        }
    }

    /// Where `key` lives, for messages.
    fn location(&self, key: &str) -> String {
        match &self.backend {
            Backend::Http(t) => t.location(key),
            Backend::S3(t) => t.location(key),
            Backend::Dir(t) => t.location(key),
        }
    }

    /// The file `key` (at most `limit` bytes), `None` when the remote does not have it.
    fn get(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        match &self.backend {
            Backend::Http(t) => t.get(key, limit),
            Backend::S3(t) => t.get(key),
            Backend::Dir(t) => t.get(key),
        }
    }

    /// Bytes `range` of the file `key`, `None` when the remote does not have it.
    fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let limit = range.end.saturating_sub(range.start);
        match &self.backend {
            Backend::Http(t) => t.get_range(key, range, limit),
            Backend::S3(t) => t.get_range(key, range),
            Backend::Dir(t) => t.get_range(key, range),
        }
    }

    /// Refuses tiers that cannot be written (HTTP), before anything is read or sent.
    fn check_writable(&self) -> Result<(), RemoteError> {
        match &self.backend {
            Backend::Http(_) => Err(RemoteError::ReadOnly {
                url: self.url.clone(),
            }),
            Backend::S3(_) | Backend::Dir(_) => Ok(()),
        }
    }

    /// True when the remote has `key` (a writable tier: see [`RemoteTier::check_writable`]).
    fn exists(&self, key: &str) -> Result<bool, RemoteError> {
        match &self.backend {
            Backend::Http(_) => self.check_writable().map(|()| false),
            Backend::S3(t) => t.exists(key),
            Backend::Dir(t) => Ok(t.exists(key)),
        }
    }

    /// Publishes `bytes` at `key` atomically; an existing file is kept.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        match &self.backend {
            Backend::Http(_) => self.check_writable(),
            Backend::S3(t) => t.put(key, bytes),
            Backend::Dir(t) => t.put(key, bytes),
        }
    }
}

/// `ab/cd/abcd….dxpkg`: the object's key, the local store's fan-out.
fn object_key(hash: &ContentHash) -> String {
    let hex = hash.to_hex();
    format!("{}/{}/{hex}.dxpkg", &hex[0..2], &hex[2..4])
}

/// `wheels/{sha256}`: which object a wheel became.
fn wheel_key(sha256: &str) -> String {
    format!("wheels/{sha256}")
}

/// `bytecode-v2/{tag}/{object}`: the object's bytecode pack for one interpreter.
fn pack_key(package: &ContentHash, tag: &str) -> String {
    format!("bytecode-v2/{tag}/{}", package.to_hex())
}

/// A cache tag is a path component of the remote: letters, digits, `-`, `_` and `.` only, and
/// not `.` or `..`.
fn is_safe_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
