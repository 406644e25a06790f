//! The content-addressed package store.
//!
//! ```text
//! {store}/
//! ├── ab/cd/abcd….dxpkg        immutable objects, named by the blake3 of their bytes
//! ├── ab/cd/abcd….dxthin       or the object thin: its index, its file bytes in its unpacked
//! │                            copy (docs/design/store-one-copy.md)
//! ├── ab/cd/abcd….dxcv         the object's 16 KiB group hashes, to check it lazily
//! ├── unpacked/abcd…/          one read-only unpacked copy per object, made on first use
//! │   ├── site-packages/…      purelib + platlib
//! │   ├── bin/…                scripts (shebangs rewritten)
//! │   ├── headers/…
//! │   └── data/…
//! ├── wheels/, bytecode/{tag}/  records: which object a wheel or a bytecode pack became
//! └── .tmp-{pid}-{start}-…     an object being written ([`crate::temp`]: named after its owner)
//! ```
//!
//! Objects are written to a temporary file, fsynced, made read-only and linked into place
//! without replacing an existing object, so concurrent writers of the same package end with one
//! intact file and readers never see a partial one. [`PackageStore::store`] knows the name first
//! and writes beside it; [`PackageStore::store_with`] learns the name only once the bytes are
//! written, so its temporary file sits in the root, on the same filesystem. An install writes
//! each object once instead ([`PackageStore::store_with_as`] with [`ObjectForm::Unpacked`]):
//! the stream is split into its unpacked copy and its thin file as it arrives (`split.rs`).
//!
//! Every byte read out of an object is checked against the object's name first, lazily, 16 KiB
//! at a time ([`MappedPackage`], docs/formats/dxcv.md): the writer keeps the blake3 chaining
//! values of each 16 KiB group in a sidecar, a reader checks them against the name once and
//! then each group on the first read that touches it.
//!
//! A store may have a read-only remote tier below it ([`PackageStore::with_remote`],
//! [`crate::remote`]): installs fetch the objects and bytecode packs it lacks from there, each
//! verified against its name before it is written here like any other object.
pub(crate) mod backing;
pub(crate) mod groups;
mod link;
mod mapped;
pub(crate) mod sidecar;
mod split;
mod thin;
mod unpack;
mod unpacked_check;
mod wheels;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use blake3::hazmat::ChainingValue;
use dashmap::DashMap;

use crate::dxpkg::{DxpkgError, DxpkgReader};
use crate::hash::ContentHash;

pub use backing::{BackingError, PackBackings, UnpackedFiles};
#[cfg(target_os = "linux")]
pub(crate) use groups::GROUP_LEN;
pub use link::{LinkMode, link_tree};
pub use mapped::MappedPackage;
pub use thin::{BackingProblem, ThinProblem};
pub use unpack::remove_tree;
pub use unpacked_check::UnpackedDamage;

/// The store's own unpacked copies, below its root.
const UNPACKED_DIR: &str = "unpacked";

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object with this hash.
    #[error("Package `{0}` is not in the store")]
    PackageNotFound(ContentHash),
    /// `store_verified` got bytes whose hash differs from the expected one.
    #[error("Hash mismatch: expected `{expected}`, got `{actual}`")]
    HashMismatch {
        /// The hash the caller expected.
        expected: ContentHash,
        /// The hash of the bytes given.
        actual: ContentHash,
    },
    /// An object (or bytes offered for storing) is not a valid `.dxpkg`.
    #[error("Invalid package object `{path}`")]
    InvalidObject {
        /// The object's path (or `<input>`).
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: DxpkgError,
    },
    /// A thin object's file (docs/design/store-one-copy.md) that cannot be read.
    #[error("Invalid thin package object `{path}`: {problem}")]
    InvalidThin {
        /// The `.dxthin` file.
        path: PathBuf,
        /// What is wrong.
        problem: ThinProblem,
    },
    /// A package entry whose path would leave its directory.
    #[error("Package `{hash}` has an unsafe path `{path}`")]
    UnsafePath {
        /// The package.
        hash: ContentHash,
        /// The offending path.
        path: String,
    },
    /// The store directory cannot be written (a read-only shared store).
    #[error("The store at `{path}` is read-only; cannot add `{what}`")]
    ReadOnly {
        /// The store root.
        path: PathBuf,
        /// What was to be written.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An object's bytes do not match its name: its file was changed after it was stored.
    #[error(
        "Package object `{path}` is damaged: {damage}. Run `dx-py cache verify --repair` (it \
         removes damaged objects and mends what was made from them), then the command again: \
         the package is fetched (or converted) anew"
    )]
    Damaged {
        /// The object.
        hash: ContentHash,
        /// Its file.
        path: PathBuf,
        /// Which bytes.
        damage: Damage,
    },
    /// Any other I/O failure; fs-err puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Which bytes of an object failed their check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The object as a whole (it has one group, or its group hashes had to be recomputed).
    #[error("its bytes do not match its name")]
    Whole,
    /// One 16 KiB group.
    #[error("bytes {start}..{end} do not match its name")]
    Group {
        /// First byte of the group.
        start: u64,
        /// End of the group.
        end: u64,
    },
    /// The unpacked file that holds a file's bytes of a thin object
    /// (docs/design/store-one-copy.md). Boxed: every store error carries a `Damage`.
    #[error("its file `{}` is damaged: {}", .0.path.display(), .0.problem)]
    Backing(Box<BackingDamage>),
}

/// Which unpacked file of a thin object is damaged, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingDamage {
    /// The unpacked file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: BackingProblem,
}

impl Damage {
    /// Damage of the unpacked file `path` of a thin object.
    pub(crate) fn backing(path: PathBuf, problem: BackingProblem) -> Self {
        Self::Backing(Box::new(BackingDamage { path, problem }))
    }
}

/// How an object taken into the store is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectForm {
    /// A full `.dxpkg` (an object a mount reads and nothing unpacks).
    Full,
    /// Written once, as its unpacked copy and a thin file, when the store makes thin objects
    /// (an install unpacks it next; docs/design/store-one-copy.md); else full.
    Unpacked,
}

/// The package store rooted at one directory.
#[derive(Debug)]
pub struct PackageStore {
    root: PathBuf,
    unpacked_root: PathBuf,
    mapped: DashMap<ContentHash, Arc<MappedPackage>>,
    /// Group CVs this process computed from bytes it hashed itself (objects it stored, or
    /// offered to store), and whether it published the object: see [`mapped::Cvs::Known`].
    known: DashMap<ContentHash, (Arc<[ChainingValue]>, bool)>,
    /// Unpacked copies this process made (from checked bytes): used without a stat check.
    unpacked_here: dashmap::DashSet<ContentHash>,
    /// The read-only tier below this store that missing objects are fetched from
    /// ([`crate::remote`]).
    remote: Option<Arc<crate::remote::RemoteTier>>,
}

impl PackageStore {
    /// Opens (without creating) the store at `root`; directories are made on first write, so a
    /// read-only store can be opened and read.
    pub fn open(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let unpacked_root = root.join(UNPACKED_DIR);
        Self {
            root,
            unpacked_root,
            mapped: DashMap::new(),
            known: DashMap::new(),
            unpacked_here: dashmap::DashSet::new(),
            remote: None,
        }
    }

    /// Puts `remote` below this store: installs fetch the objects and bytecode this store lacks
    /// from it before they ask wheels or an index.
    #[must_use]
    pub fn with_remote(mut self, remote: Arc<crate::remote::RemoteTier>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The remote tier below this store, if any.
    pub fn remote(&self) -> Option<&crate::remote::RemoteTier> {
        self.remote.as_deref()
    }

    /// Keeps unpacked trees under `dir` instead of `{root}/unpacked`: for a read-only shared
    /// store, unpacked copies go to the user's own cache.
    pub fn with_unpacked_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.unpacked_root = dir.into();
        self
    }

    /// True when objects can be added (the store directory, or its nearest existing ancestor,
    /// is writable).
    pub fn is_writable(&self) -> bool {
        let mut dir = self.root.as_path();
        loop {
            if dir.exists() {
                return is_dir_writable(dir);
            }
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => dir = p,
                _ => return true,
            }
        }
    }

    /// The directories where this store makes temporaries (see [`crate::temp`]): the root
    /// (objects), the unpacked root, and the record directories. The object fan-out is not
    /// among them: objects are written in the root and linked into place.
    pub fn temp_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.unpacked_root.clone()];
        if self.is_writable() {
            dirs.push(self.root.clone());
            dirs.push(self.root.join(wheels::WHEELS_DIR));
            dirs.extend(crate::install::bytecode_dirs(self));
        }
        dirs
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object `hash` lives: `{root}/{hex[0:2]}/{hex[2:4]}/{hex}.dxpkg`.
    pub fn get_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(format!("{hex}.dxpkg"))
    }

    /// Where the group CVs of object `hash` live (docs/formats/dxcv.md).
    pub fn sidecar_path(&self, hash: &ContentHash) -> PathBuf {
        self.get_path(hash).with_extension("dxcv")
    }

    /// True when the object is present (full, or thin with its unpacked copy).
    pub fn contains(&self, hash: &ContentHash) -> bool {
        self.mapped.contains_key(hash) || self.is_stored(&self.get_path(hash), hash)
    }

    /// True when the object `hash`, whose full form is at `path`, is on disk: full, or thin
    /// with its unpacked copy (a writer then stores nothing).
    fn is_stored(&self, path: &Path, hash: &ContentHash) -> bool {
        path.is_file() || (self.thin_path(hash).is_file() && self.thin_copy(hash).is_dir())
    }

    /// Stores `bytes` (a `.dxpkg`) under its blake3 hash; storing an existing object is a no-op.
    pub fn store(&self, bytes: &[u8]) -> Result<ContentHash, StoreError> {
        let (hash, cvs) = groups::hash_groups(bytes);
        self.write_object(&hash, cvs, bytes)?;
        Ok(hash)
    }

    /// Stores `bytes` only if they hash to `expected`; on a mismatch nothing is written.
    pub fn store_verified(&self, bytes: &[u8], expected: &ContentHash) -> Result<(), StoreError> {
        let (actual, cvs) = groups::hash_groups(bytes);
        if actual != *expected {
            return Err(StoreError::HashMismatch {
                expected: *expected,
                actual,
            });
        }
        self.write_object(expected, cvs, bytes)
    }

    /// Stores the `.dxpkg` that `write` streams, hashing it on the way, so the package never
    /// has to sit whole in memory; returns its hash and what `write` returned. Storing an
    /// existing object is a no-op and leaves it untouched.
    ///
    /// The bytes go to a temporary file in the store root (buffered, so small writes are cheap);
    /// an error from `write`, or bytes that are not a valid `.dxpkg`, remove it and store nothing.
    pub fn store_with<T>(
        &self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
    ) -> Result<(ContentHash, T), StoreError> {
        self.store_with_as(ObjectForm::Full, write)
    }

    /// [`PackageStore::store_with`], keeping the object in `form`: written once, as its
    /// unpacked copy and thin file ([`ObjectForm::Unpacked`], when this store makes thin
    /// objects), or as a full `.dxpkg`.
    pub fn store_with_as<T>(
        &self,
        form: ObjectForm,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
    ) -> Result<(ContentHash, T), StoreError> {
        if form == ObjectForm::Unpacked && self.makes_thin() {
            return self.store_once_with(write);
        }
        let read_only = |source| StoreError::ReadOnly {
            path: self.root.clone(),
            what: "a new package".to_string(),
            source,
        };
        let tmp = fs_err::create_dir_all(&self.root)
            .and_then(|()| crate::temp::file_in(&self.root))
            .map_err(|e| classify(e, read_only))?;
        let mut sink = HashingWriter {
            inner: BufWriter::with_capacity(
                STREAM_BUFFER,
                crate::atomic::Named::new(EarlyWriteback::new(tmp.as_file()), tmp.path()),
            ),
            hasher: groups::GroupHasher::default(),
        };
        let value = write(&mut sink)
            .and_then(|value| sink.inner.flush().map(|()| value))
            .map_err(|e| classify(e, read_only))?;
        let hasher = std::mem::take(&mut sink.hasher);
        drop(sink);
        let (hash, cvs) = hasher.finish();
        let path = self.get_path(&hash);
        if self.is_stored(&path, &hash) {
            self.learnt(&hash, cvs, false);
            return Ok((hash, value));
        }
        // The temporary file is new, private (mode 0600, a random name) and only this function
        // writes it, and it has finished writing; the map is dropped before the file is
        // published.
        let map = crate::sys::map_immutable(tmp.path())?;
        DxpkgReader::new(&map[..])
            .and_then(|r| r.validate())
            .map_err(|source| StoreError::InvalidObject {
                path: "<input>".into(),
                source,
            })?;
        drop(map);
        let dir = path.parent().expect("object paths have a parent");
        let read_only = |source| StoreError::ReadOnly {
            path: self.root.clone(),
            what: hash.to_hex(),
            source,
        };
        let published = crate::atomic::set_mode(tmp.path(), 0o444)
            .and_then(|()| {
                let named = crate::atomic::naming("write", tmp.path());
                tmp.as_file().sync_all().map_err(named)
            })
            .and_then(|()| fs_err::create_dir_all(dir))
            .and_then(|()| crate::atomic::persist_new(tmp, &path))
            .map_err(|e| classify(e, read_only))?;
        self.learnt(&hash, cvs, published);
        Ok((hash, value))
    }

    /// [`PackageStore::store_with`] for a store that makes thin objects: the bytes are written
    /// once, as the object's unpacked copy and its thin file ([`split`]), hashed on the way.
    fn store_once_with<T>(
        &self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
    ) -> Result<(ContentHash, T), StoreError> {
        let mut sink = HashingWriter {
            inner: split::SplitSink::new(self.split_tree()?),
            hasher: groups::GroupHasher::default(),
        };
        let value = match write(&mut sink) {
            Ok(value) => value,
            Err(e) => {
                return Err(match sink.inner.problem() {
                    Some(problem) => StoreError::InvalidThin {
                        path: "<input>".into(),
                        problem: problem.clone(),
                    },
                    None => classify(e, |source| self.read_only("a new package", source)),
                });
            }
        };
        let (hash, cvs) = sink.hasher.finish();
        self.publish_split(&hash, cvs, sink.inner.finish()?)?;
        Ok((hash, value))
    }

    /// Stores `bytes` (the object `expected`, for an install that unpacks it next) written
    /// once, as its unpacked copy and thin file, when this store makes thin objects; else as
    /// [`PackageStore::store_verified`]. On a hash mismatch nothing is written.
    pub fn store_verified_unpacked(
        &self,
        bytes: &[u8],
        expected: &ContentHash,
    ) -> Result<(), StoreError> {
        let (actual, cvs) = groups::hash_groups(bytes);
        if actual != *expected {
            return Err(StoreError::HashMismatch {
                expected: *expected,
                actual,
            });
        }
        if !self.makes_thin() || self.is_stored(&self.get_path(expected), expected) {
            return self.write_object(expected, cvs, bytes);
        }
        let mut sink = split::SplitSink::new(self.split_tree()?);
        let split = match sink.write_all(bytes) {
            Ok(()) => sink.finish(),
            Err(e) if sink.problem().is_none() => {
                return Err(classify(e, |source| {
                    self.read_only(&expected.to_hex(), source)
                }));
            }
            // Bytes that cannot be split (non-zero padding) are stored as they are.
            Err(_) => Ok(split::Split::Whole(bytes.to_vec())),
        };
        match split {
            Ok(split::Split::Whole(_)) | Err(StoreError::InvalidThin { .. }) => {
                self.write_object(expected, cvs, bytes)
            }
            Ok(split) => self.publish_split(expected, cvs, split),
            Err(e) => Err(e),
        }
    }

    /// A new temporary directory for an object's unpacked copy, where the copy is renamed to.
    fn split_tree(&self) -> Result<tempfile::TempDir, StoreError> {
        let parent = self.thin_copy_root();
        fs_err::create_dir_all(&parent)
            .and_then(|()| crate::temp::dir_in(&parent))
            .map_err(|e| classify(e, |source| self.read_only("a new package", source)))
    }

    /// The error for a store that refused to take `what`.
    fn read_only(&self, what: &str, source: std::io::Error) -> StoreError {
        StoreError::ReadOnly {
            path: self.root.clone(),
            what: what.to_string(),
            source,
        }
    }

    /// Publishes the object `hash` that a stream became: a whole object as a full `.dxpkg`; a
    /// split one by writing its thin file, then renaming its unpacked copy into place (the
    /// object exists once both do: a thin file without its copy is no object, and its bytes
    /// are the same for every writer). Publishing an object that is there already is a no-op.
    fn publish_split(
        &self,
        hash: &ContentHash,
        cvs: Vec<ChainingValue>,
        split: split::Split,
    ) -> Result<(), StoreError> {
        let (tree, thin) = match split {
            split::Split::Whole(bytes) => return self.write_object(hash, cvs, &bytes),
            split::Split::Thin { tree, thin } => (tree, thin),
        };
        if self.is_stored(&self.get_path(hash), hash) {
            self.learnt(hash, cvs, false);
            return Ok(());
        }
        let read_only = |source| self.read_only(&hash.to_hex(), source);
        let object_len = thin::Trailer::parse(&thin)
            .map(|t| t.object_len)
            .expect("the sink writes a valid trailer");
        let path = self.thin_path(hash);
        let dir = path.parent().expect("object paths have a parent");
        fs_err::create_dir_all(dir).map_err(|e| classify(e, read_only))?;
        // Before the thin file: a reader that finds the object finds its sidecar.
        if cvs.len() >= 2 {
            self.write_sidecar(hash, object_len, &cvs);
        }
        let published = crate::atomic::write_new_via(&self.root, &path, &thin, 0o444)
            .map_err(|e| classify(e, read_only))?;
        let dest = self.thin_copy(hash);
        let tmp = tree.keep();
        let mut renamed = std::fs::rename(&tmp, &dest).map_err(StoreError::from);
        if renamed.is_err() && dest.is_dir() {
            if unpack::changed_since_unpacked(&dest).is_some_and(|c| c.is_empty()) {
                // Another writer's whole copy (its manifest is written last): it is the object's.
                let _ = unpack::remove_tree(&tmp);
                self.learnt(hash, cvs, false);
                return Ok(());
            }
            // A copy without its manifest or with files changed: left by a crash (of prune,
            // or of a writer before the copy was whole) or edited; never trusted. Ours replaces it.
            renamed = self
                .set_aside(&dest, hash)
                .and_then(|()| Ok(std::fs::rename(&tmp, &dest)?));
        }
        if let Err(e) = renamed {
            let _ = unpack::remove_tree(&tmp);
            return Err(match e {
                StoreError::Io(io) => classify(
                    std::io::Error::new(io.kind(), format!("{}: {io}", dest.display())),
                    read_only,
                ),
                other => other,
            });
        }
        // The copy is ours: its bytes were hashed into the name as they were written.
        self.mapped.remove(hash);
        self.unpacked_here.insert(*hash);
        self.known.insert(*hash, (cvs.into(), published));
        Ok(())
    }

    /// Remembers the CVs of `hash`, computed from bytes this process hashed, writes its
    /// sidecar when it lacks one, and (`published`: this process wrote the object) counts the
    /// object's bytes as checked.
    fn learnt(&self, hash: &ContentHash, cvs: Vec<ChainingValue>, published: bool) {
        if !cvs.is_empty()
            && (published || !self.sidecar_path(hash).is_file())
            && let Ok(meta) = fs_err::metadata(self.get_path(hash))
        {
            self.write_sidecar(hash, meta.len(), &cvs);
        }
        self.known.insert(*hash, (cvs.into(), published));
    }

    /// Writes the sidecar of `hash` (replacing a damaged one) through a temporary file and a
    /// rename, not synced: a sidecar torn by a crash fails its check and is recomputed. Best
    /// effort: without it, a reader recomputes the CVs.
    fn write_sidecar(&self, hash: &ContentHash, len: u64, cvs: &[ChainingValue]) {
        let path = self.sidecar_path(hash);
        let written = (|| {
            // In the store's root, like every temporary of the store (swept after a crash).
            let mut tmp = crate::temp::file_in(&self.root)?;
            tmp.write_all(&sidecar::encode(len, cvs))?;
            tmp.persist(&path).map(drop).map_err(|e| e.error)
        })();
        if let Err(e) = written {
            tracing::debug!("cannot write `{}`: {e}", path.display());
        }
    }

    fn write_object(
        &self,
        hash: &ContentHash,
        cvs: Vec<ChainingValue>,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let path = self.get_path(hash);
        if self.is_stored(&path, hash) {
            self.learnt(hash, cvs, false);
            return Ok(());
        }
        DxpkgReader::new(bytes)
            .and_then(|r| r.validate())
            .map_err(|source| StoreError::InvalidObject {
                path: "<input>".into(),
                source,
            })?;
        let dir = path.parent().expect("object paths have a parent");
        let read_only = |source| StoreError::ReadOnly {
            path: self.root.clone(),
            what: hash.to_hex(),
            source,
        };
        // The temporary file goes in the root, like `store_with`'s: leftovers of a crash are
        // then found by reading one directory, not the fan-out.
        let published = fs_err::create_dir_all(dir)
            .and_then(|()| crate::atomic::write_new_via(&self.root, &path, bytes, 0o444))
            .map_err(|e| classify(e, read_only))?;
        self.learnt(hash, cvs, published);
        Ok(())
    }

    /// The mapped object `hash`, opened once per process and shared: the full object, or its
    /// thin form over its unpacked copy (docs/design/store-one-copy.md).
    pub fn get(&self, hash: &ContentHash) -> Result<Arc<MappedPackage>, StoreError> {
        if let Some(p) = self.mapped.get(hash) {
            return Ok(Arc::clone(&p));
        }
        let not_found = |e: &StoreError| matches!(e, StoreError::Io(e) if e.kind() == std::io::ErrorKind::NotFound);
        // The full object first; a missing one may have been made thin meanwhile (which
        // removes it only once the thin file is in place).
        let package = match self.open_mapped(hash, false) {
            Err(e) if not_found(&e) => match self.open_mapped(hash, true) {
                Err(e) if not_found(&e) => return Err(StoreError::PackageNotFound(*hash)),
                other => other?,
            },
            other => other?,
        };
        Ok(Arc::clone(
            self.mapped
                .entry(*hash)
                .or_insert(Arc::new(package))
                .value(),
        ))
    }

    /// Maps the object `hash` (`thin`: its thin form) with the best CVs known: this process's
    /// own, the sidecar's, or (and then the sidecar is written again) computed in one pass.
    fn open_mapped(&self, hash: &ContentHash, thin: bool) -> Result<MappedPackage, StoreError> {
        let (path, unpacked) = if thin {
            let copy = self.thin_copy(hash);
            // Without its copy a thin object is gone (pruned or removed by hand): not found,
            // so that it is fetched again.
            if !copy.is_dir() {
                return Err(std::io::Error::from(std::io::ErrorKind::NotFound).into());
            }
            (self.thin_path(hash), Some(copy))
        } else {
            (self.get_path(hash), None)
        };
        let mut computed = None;
        let package = MappedPackage::open(&path, unpacked.as_deref(), *hash, |len| {
            if let Some(known) = self.known.get(hash) {
                let (cvs, written_here) = known.value().clone();
                return mapped::Cvs::Known { cvs, written_here };
            }
            if groups::group_count(len) < 2 {
                return mapped::Cvs::Compute;
            }
            let problem = match fs_err::read(self.sidecar_path(hash)) {
                Ok(bytes) => match sidecar::decode(&bytes, hash, len) {
                    Ok(cvs) => return mapped::Cvs::Sidecar(cvs),
                    Err(p) => p.to_string(),
                },
                Err(e) => e.to_string(),
            };
            tracing::debug!("no usable sidecar for {hash} ({problem}): checking the whole object");
            computed = Some(len);
            mapped::Cvs::Compute
        })?;
        if let Some(len) = computed
            && self.is_writable()
        {
            self.write_sidecar(hash, len, package.cvs());
        }
        Ok(package)
    }

    /// Where the thin form of object `hash` lives: beside the full object's path, as
    /// `{hex}.dxthin` (docs/design/store-one-copy.md).
    pub fn thin_path(&self, hash: &ContentHash) -> PathBuf {
        self.get_path(hash).with_extension(thin::EXTENSION)
    }

    /// Makes the object `hash` thin: writes its `.dxthin` (index and kept entries) beside it,
    /// checks that its unpacked copy (made now if missing) holds exactly the object's file
    /// bytes, every group against the CVs the full object was checked with (not for a copy this
    /// process unpacked: it wrote the copy from checked bytes), then removes the full object.
    /// Nothing changes when the check fails. A thin object stays thin.
    pub fn make_thin(&self, hash: &ContentHash) -> Result<(), StoreError> {
        let full = self.get(hash)?;
        if full.is_thin() {
            return Ok(());
        }
        let dir = self.unpacked(hash)?;
        if self.is_thin_only(hash) {
            // Unpacking made it thin.
            return Ok(());
        }
        if dir != self.thin_copy(hash) {
            return Err(StoreError::ReadOnly {
                path: self.root.clone(),
                what: format!("{hash}.{}", thin::EXTENSION),
                source: std::io::Error::other("its unpacked copies are kept outside the store"),
            });
        }
        let trusted = self.unpacked_here.contains(hash);
        let path = self.thin_path(hash);
        let bytes = thin::encode(full.reader()).map_err(|problem| StoreError::InvalidThin {
            path: path.clone(),
            problem,
        })?;
        let read_only = |source| StoreError::ReadOnly {
            path: self.root.clone(),
            what: format!("{hash}.{}", thin::EXTENSION),
            source,
        };
        crate::atomic::write_new_via(&self.root, &path, &bytes, 0o444)
            .map_err(|e| classify(e, read_only))?;
        let cvs: Arc<[ChainingValue]> = full.cvs().into();
        if cvs.len() >= 2 && !self.sidecar_path(hash).is_file() {
            self.write_sidecar(hash, full.object_len(), &cvs);
        }
        let checked = MappedPackage::open(&path, Some(&dir), *hash, |_| mapped::Cvs::Known {
            cvs,
            written_here: trusted,
        })
        .and_then(|thin| thin.check(0..thin.object_len()).map(|()| thin));
        let thin = match checked {
            Ok(thin) => thin,
            Err(e) => {
                let _ = fs_err::remove_file(&path);
                return Err(e);
            }
        };
        match fs_err::remove_file(self.get_path(hash)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(classify(e, read_only));
            }
            _ => {}
        }
        self.mapped.insert(*hash, Arc::new(thin));
        Ok(())
    }

    /// Where a thin object's files are: the store's own unpacked copy (never one kept
    /// elsewhere, [`PackageStore::with_unpacked_root`]).
    fn thin_copy(&self, hash: &ContentHash) -> PathBuf {
        self.thin_copy_root().join(hash.to_hex())
    }

    /// Where thin objects' copies are: the store's own unpacked root.
    fn thin_copy_root(&self) -> PathBuf {
        self.root.join(UNPACKED_DIR)
    }

    /// True when this store makes the objects it unpacks thin: on Unix (a mapped file cannot
    /// be removed on Windows), and when its unpacked copies are its own.
    fn makes_thin(&self) -> bool {
        cfg!(unix) && self.unpacked_root == self.root.join(UNPACKED_DIR)
    }

    /// True when the object `hash` is thin and has no full form beside it.
    fn is_thin_only(&self, hash: &ContentHash) -> bool {
        !self.get_path(hash).is_file() && self.thin_path(hash).is_file()
    }

    /// The file that holds the object `hash` on disk: the `.dxpkg`, else its `.dxthin` (whose
    /// file bytes are in its unpacked copy); the `.dxpkg` path when there is neither.
    pub fn object_file(&self, hash: &ContentHash) -> PathBuf {
        let full = self.get_path(hash);
        if !full.is_file() && self.thin_path(hash).is_file() {
            return self.thin_path(hash);
        }
        full
    }

    /// The full `.dxpkg` bytes of the object `hash`, unchecked: the file, or a thin object
    /// reassembled (for copying it elsewhere, e.g. a remote tier, which checks the name).
    pub fn object_bytes(&self, hash: &ContentHash) -> Result<Vec<u8>, StoreError> {
        match fs_err::read(self.get_path(hash)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => return Ok(other?),
        }
        let package = self.get(hash)?;
        let bytes = package.unchecked(0..package.object_len());
        Ok(bytes.map_err(|d| package.damaged(d))?.into_owned())
    }

    /// Re-hashes the object: `Ok(true)` when its bytes still match its name (for a thin
    /// object: its index, kept bytes and unpacked files, reassembled).
    pub fn verify(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        let path = self.get_path(hash);
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.verify_thin(hash);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(ContentHash::of(&bytes) == *hash)
    }

    /// [`PackageStore::verify`] of a thin object: trusting no CV, every byte reassembled.
    fn verify_thin(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        let path = self.thin_path(hash);
        if !path.is_file() {
            return Err(StoreError::PackageNotFound(*hash));
        }
        let dir = self.thin_copy(hash);
        let opened = MappedPackage::open(&path, Some(&dir), *hash, |_| mapped::Cvs::Compute)
            .and_then(|thin| thin.check(0..thin.object_len()));
        match opened {
            Ok(()) => Ok(true),
            Err(StoreError::Damaged { .. } | StoreError::InvalidThin { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object in the store (by file name; unreadable directories are skipped).
    pub fn objects(&self) -> Result<Vec<ContentHash>, StoreError> {
        let mut out = Vec::new();
        let Ok(level1) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for a in level1.flatten() {
            let a_name = a.file_name();
            if a_name.len() != 2 {
                continue;
            }
            let Ok(level2) = std::fs::read_dir(a.path()) else {
                continue;
            };
            for b in level2.flatten() {
                let Ok(files) = std::fs::read_dir(b.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    let name = f.file_name();
                    let Some(stem) = name.to_str().and_then(|n| {
                        n.strip_suffix(".dxpkg")
                            .or_else(|| n.strip_suffix(".dxthin"))
                    }) else {
                        continue;
                    };
                    if let Ok(h) = stem.parse() {
                        out.push(h);
                    }
                }
            }
        }
        // An object being made thin has both files for a moment.
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The read-only unpacked copy of `hash`, made on first use (see the module docs).
    ///
    /// An existing copy is used only while every file's size, mtime and inode are what
    /// unpacking recorded: layouts hardlink its files, so editing a file in a venv edits it, and
    /// a changed copy must not reach new layouts. It is then moved aside (never rewritten: the
    /// layouts that link its inodes keep them) and made again from the checked object.
    pub fn unpacked(&self, hash: &ContentHash) -> Result<PathBuf, StoreError> {
        let dir = self.unpacked_path(hash);
        if self.unpacked_here.contains(hash) {
            return Ok(dir);
        }
        if dir.is_dir() {
            match unpack::changed_since_unpacked(&dir) {
                Some(changed) if changed.is_empty() => return Ok(dir),
                changed => {
                    let what = changed.as_ref().map_or_else(
                        || "it has no manifest".to_string(),
                        |c| format!("{} files changed, e.g. `{}`", c.len(), c[0].display()),
                    );
                    if self.is_thin_only(hash) {
                        // The copy holds the object's bytes: nothing is left to make it again
                        // from. A damaged object, as one whose bytes changed: `cache verify
                        // --repair` removes it, and it is fetched (or converted) again.
                        return Err(StoreError::Damaged {
                            hash: *hash,
                            path: self.thin_path(hash),
                            damage: Damage::backing(
                                dir.join(
                                    changed
                                        .and_then(|c| c.into_iter().next())
                                        .unwrap_or_default(),
                                ),
                                BackingProblem::Changed,
                            ),
                        });
                    }
                    tracing::warn!(
                        "The unpacked copy `{}` was changed since it was made ({what}); \
                         making it again from the store",
                        dir.display()
                    );
                    self.set_aside(&dir, hash)?;
                }
            }
        }
        let package = self.get(hash)?;
        let ours = unpack::unpack(&package, hash, &dir).map_err(|e| match e {
            StoreError::Io(io) => classify(io, |source| StoreError::ReadOnly {
                path: self.root.clone(),
                what: format!("unpacked/{hash}"),
                source,
            }),
            other => other,
        })?;
        if ours {
            self.unpacked_here.insert(*hash);
            if self.makes_thin() && !package.is_thin() {
                // Best effort: a full object serves as well, on more disk.
                if let Err(e) = self.make_thin(hash) {
                    tracing::debug!("keeping {hash} full: {e}");
                }
            }
        }
        Ok(dir)
    }

    /// Moves the unpacked copy `dir` out of the way and removes it: the inodes that layouts
    /// link stay as they are.
    fn set_aside(&self, dir: &Path, hash: &ContentHash) -> Result<(), StoreError> {
        let parent = dir.parent().expect("unpacked dirs have a parent");
        // An owned temporary (see `crate::temp`): left by a crash, it is swept.
        let aside = crate::temp::dir_in(parent)?.keep();
        match std::fs::rename(dir, &aside) {
            Ok(()) => {}
            // Another process set it aside first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_dir(&aside);
                return Ok(());
            }
            Err(e) => {
                return Err(classify(
                    std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())),
                    |source| StoreError::ReadOnly {
                        path: parent.to_path_buf(),
                        what: format!("unpacked/{hash}"),
                        source,
                    },
                ));
            }
        }
        unpack::remove_tree(&aside)?;
        Ok(())
    }

    /// The paths of the unpacked copy of `hash` whose content differs from what the checked
    /// object unpacks to (relative to the copy's root), or `None` when there is no copy. Reads
    /// every file: the full check that `cache verify` runs, where [`PackageStore::unpacked`]
    /// only compares stats.
    pub fn verify_unpacked(&self, hash: &ContentHash) -> Result<Option<Vec<PathBuf>>, StoreError> {
        if !self.unpacked_path(hash).is_dir() {
            return Ok(None);
        }
        let damage = self.check_unpacked(hash)?;
        Ok(Some(
            damage.iter().map(|d| d.path().to_path_buf()).collect(),
        ))
    }

    /// The files of the unpacked copy of `hash` whose size, mtime or inode changed since it was
    /// made (relative to the copy), from one `lstat` each; `None` without a copy or its
    /// manifest. For a thin object these are the object's damaged files.
    pub fn changed_in_copy(&self, hash: &ContentHash) -> Option<Vec<PathBuf>> {
        unpack::changed_since_unpacked(&self.unpacked_path(hash))
    }

    /// Where the unpacked copy of `hash` lives (whether or not it exists yet).
    pub fn unpacked_path(&self, hash: &ContentHash) -> PathBuf {
        self.unpacked_root.join(hash.to_hex())
    }

    /// Links the package's site-packages files into `site_packages` (symlinks, junctions on
    /// Windows, copies when links fail) and says which mode was used.
    pub fn install_to_venv(
        &self,
        hash: &ContentHash,
        site_packages: &Path,
    ) -> Result<LinkMode, StoreError> {
        let src = self.unpacked(hash)?.join("site-packages");
        fs_err::create_dir_all(site_packages)?;
        if !src.is_dir() {
            return Ok(LinkMode::Symlink);
        }
        Ok(link_tree(&src, site_packages)?)
    }
}

/// The name of the thin object whose `.dxthin` file is `thin` and whose unpacked copy is
/// `copy`, from its bytes reassembled, trusting nothing; `None` when it cannot be read. For
/// fuzzing (a forged thin file gets the name that makes it pass its checks) and tests.
#[doc(hidden)]
pub fn thin_object_name(thin: &Path, copy: &Path) -> Option<ContentHash> {
    let map = crate::sys::map_immutable(thin).ok()?;
    let trailer = thin::Trailer::parse(&map).ok()?;
    let reader = DxpkgReader::new_index(map, trailer.object_len).ok()?;
    let thin = thin::Thin::new(&reader, trailer, copy).ok()?;
    thin.hash_groups(&reader).ok().map(|(hash, _)| hash)
}

/// The buffer between [`PackageStore::store_with`]'s writer and its file: large enough that a
/// package of small files costs few system calls; larger writes go straight through.
const STREAM_BUFFER: usize = 256 << 10;

/// Starts writing a new object back to disk every [`WRITEBACK_STEP`] bytes while it is still
/// being written (Linux `sync_file_range`, which does not wait), so the fsync before it is
/// published finds little left to write: on a large package that fsync otherwise waits for the
/// whole object at the end. Durability is unchanged: the fsync still comes before the link.
struct EarlyWriteback<'a> {
    file: &'a std::fs::File,
    written: u64,
    started: u64,
}

/// How far apart [`EarlyWriteback`] starts writeback.
const WRITEBACK_STEP: u64 = 8 << 20;

impl<'a> EarlyWriteback<'a> {
    fn new(file: &'a std::fs::File) -> Self {
        Self {
            file,
            written: 0,
            started: 0,
        }
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self) {
        // A failure is ignored: the fsync that follows writes everything anyway.
        let _ = crate::sys::start_writeback(self.file, self.started, self.written - self.started);
        self.started = self.written;
    }

    #[cfg(not(target_os = "linux"))]
    fn start_writeback(&mut self) {}
}

impl Write for EarlyWriteback<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hashes every byte on its way to `inner`.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: groups::GroupHasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)?;
        self.hasher.update(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(unix)]
fn is_dir_writable(dir: &Path) -> bool {
    use rustix::fs::{Access, StatVfsMountFlags};
    // access(2) ignores read-only mounts for root only on some kernels; statvfs settles it.
    rustix::fs::access(dir, Access::WRITE_OK).is_ok()
        && !rustix::fs::statvfs(dir).is_ok_and(|st| st.f_flag.contains(StatVfsMountFlags::RDONLY))
}

#[cfg(not(unix))]
fn is_dir_writable(dir: &Path) -> bool {
    fs_err::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

/// Turns permission and read-only-filesystem errors into `ReadOnly`, keeps the rest as `Io`.
fn classify(
    io: std::io::Error,
    read_only: impl FnOnce(std::io::Error) -> StoreError,
) -> StoreError {
    if matches!(
        io.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) || io.raw_os_error() == Some(libc::EROFS)
    {
        read_only(io)
    } else {
        StoreError::Io(io)
    }
}

#[cfg(test)]
mod tests;
