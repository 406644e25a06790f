//! Getting locked wheels into the store: local paths, find-links, then the index; verified by
//! sha256, converted, stored. Work items run on a few threads since downloads wait on the network.

use std::path::PathBuf;
use std::str::FromStr;

use pep508_rs::PackageName;

use super::{InstallError, Reporter, WheelSources};
use crate::build::LocalMode;
use crate::dpl::{LockedPackage, LockedWheel};
use crate::hash::{ContentHash, sha256_hex};
use crate::index::IndexFile;
use crate::store::{ObjectForm, PackageStore};
use crate::wheel::{ConvertLimits, PreparedWheel, WheelInfo, WheelWriteError, prepare_wheel};

/// Checks and converts wheel bytes and streams the package into the store, each file
/// decompressed straight into the store's temporary file (only the metadata files, scripts and
/// symlinks are held decompressed);
/// returns the object's hash and what the wheel says about itself. Nothing is stored unless
/// every check passes, including the RECORD hashes checked as the files stream.
pub fn store_wheel_bytes(
    store: &PackageStore,
    filename: &str,
    bytes: &[u8],
) -> Result<(ContentHash, WheelInfo), InstallError> {
    store_wheel_bytes_as(store, filename, bytes, ObjectForm::Full)
}

/// [`store_wheel_bytes`], keeping the package in `form` ([`form_for`]).
pub fn store_wheel_bytes_as(
    store: &PackageStore,
    filename: &str,
    bytes: &[u8],
    form: ObjectForm,
) -> Result<(ContentHash, WheelInfo), InstallError> {
    let prepared = prepare_checked(filename, bytes)?;
    let (name, version) = (prepared.info.name.clone(), prepared.info.version.clone());
    // Refused before anything is attempted: a shared read-only store must see no write at all
    // (not even a temporary file that fails), and the error should say what is missing.
    if !store.is_writable() {
        return Err(InstallError::MissingFromReadOnlyStore {
            store: store.root().to_path_buf(),
            name,
            version,
        });
    }
    // The store sees only I/O errors; a file that fails its check mid-stream fails the write
    // (so the temporary file is dropped) and is reported from here.
    let mut bad_file = None;
    let stored = store.store_with_as(form, |w| {
        prepared.write_to(w).map_err(|e| match e {
            WheelWriteError::Io(e) => e,
            WheelWriteError::Wheel(e) => {
                bad_file = Some(*e);
                std::io::Error::other("a wheel file failed its check")
            }
        })
    });
    if let Some(e) = bad_file {
        return Err(wheel_error(filename, e));
    }
    match stored {
        Ok(stored) => Ok(stored),
        Err(crate::store::StoreError::ReadOnly { path, .. }) => {
            Err(InstallError::MissingFromReadOnlyStore {
                store: path,
                name,
                version,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// What [`ensure_stored`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FetchStats {
    /// Already in the store.
    pub hits: usize,
    /// Converted now.
    pub misses: usize,
    /// Downloaded from an index (the rest came from local files).
    pub downloads: usize,
    /// Fetched from the store's remote tier (not counted in `misses`).
    pub remote: usize,
}

/// Run on each package right after it is stored, on the thread that stored it (an install
/// unpacks there, so that unpacking one package overlaps converting the next).
pub type AfterStore<'a> = &'a (dyn Fn(&ContentHash) + Sync);

/// How a package stored now is kept: an install, which unpacks what it stores (its
/// `after_store`), writes it once as its unpacked copy; a mount, which reads it and unpacks
/// nothing (no `after_store`), keeps it full (docs/design/store-one-copy.md).
pub fn form_for(after_store: Option<AfterStore<'_>>) -> ObjectForm {
    match after_store {
        Some(_) => ObjectForm::Unpacked,
        None => ObjectForm::Full,
    }
}

/// The work installs run as their [`AfterStore`]: unpack the package's read-only tree for the
/// layout. A failure is left for the layout build, which unpacks again and reports it.
pub fn unpack_when_stored(store: &PackageStore) -> impl Fn(&ContentHash) + Sync + '_ {
    move |hash| {
        let _ = store.unpacked(hash);
    }
}

/// The store object `p`'s wheel became, by the store's own record of that wheel's sha256 (for
/// a package locked as an sdist: of the sdist's sha256 built by `sources.builder`).
///
/// The lock's sha256 is the truth and its store hash only a hint: a lock whose sha256 was
/// edited finds no record (then the wheel itself is fetched and checked against it), and a stale
/// store hash is replaced by the recorded one.
pub(crate) fn recorded_object(
    p: &LockedPackage,
    store: &PackageStore,
    sources: &WheelSources<'_>,
) -> Option<ContentHash> {
    let key = match (&p.sdist, p.directory()) {
        // A tree has no content hash: its key (path and build inputs) stands for one. Without
        // a builder (`--no-build`) the key is unknown: the stored package the lock names is
        // taken as it is, since nothing could be built in its place.
        (_, Some((path, editable))) => match sources.builder {
            Some(builder) => {
                let tree = sources.lock_dir.join(path);
                builder.tree_key(&tree, tree_mode(editable)).ok()?
            }
            None => return p.store_hash.filter(|h| store.contains(h)),
        },
        (None, None) => p.wheel.sha256_hex(),
        (Some(_), None) => sources.builder?.store_key(&p.wheel.sha256_hex()),
    };
    let found = store.wheel_object(&key, &p.wheel.filename);
    if let (Some(found), Some(said)) = (found, p.store_hash)
        && found != said
    {
        tracing::debug!(
            "{}: the lock names store object {said}, the store recorded {found} for its wheel",
            p.name
        );
    }
    found
}

/// Makes sure every package of `packages` is in the store, filling in `store_hash` where it was
/// missing or stale. Wheels come from the lock's path (relative to the lock's directory), a
/// find-links directory, or the lock's URL; `after_store` runs on each one stored now.
pub fn ensure_stored(
    packages: &mut [LockedPackage],
    store: &PackageStore,
    sources: &WheelSources<'_>,
    after_store: Option<AfterStore<'_>>,
    reporter: &dyn Reporter,
) -> Result<FetchStats, InstallError> {
    let mut stats = FetchStats::default();
    let mut todo = Vec::new();
    for (i, p) in packages.iter_mut().enumerate() {
        match recorded_object(p, store, sources) {
            Some(h) => {
                p.store_hash = Some(h);
                stats.hits += 1;
            }
            None => todo.push(i),
        }
    }
    // The store's remote tier first, before any wheel or index is asked.
    let asked = todo.len();
    let todo = crate::remote::fetch_missing(store, packages, todo, after_store)?;
    stats.remote = asked - todo.len();
    if todo.is_empty() {
        return Ok(stats);
    }
    if !store.is_writable() {
        return Err(missing_from_read_only(store, &packages[todo[0]]));
    }
    let shared: &[LockedPackage] = packages;
    let cx = Fetching {
        store,
        sources,
        after_store,
        reporter,
        slots: crate::parallel::CpuSlots::per_core(),
    };
    // Builds first: they take longest (the builder bounds how many run at once).
    let size = |p: &LockedPackage| match (&p.sdist, &p.local) {
        (None, None) => p.wheel.size.unwrap_or(0),
        _ => u64::MAX,
    };
    let results = crate::parallel::map_largest_first(
        &todo,
        8,
        |&i| size(&shared[i]),
        |&i| fetch_one(&shared[i], &cx),
    );
    for (&i, r) in todo.iter().zip(results) {
        let (hash, downloaded) = r?;
        stats.misses += 1;
        stats.downloads += usize::from(downloaded);
        packages[i].store_hash = Some(hash);
    }
    Ok(stats)
}

/// What every package fetched by one [`ensure_stored`] shares.
struct Fetching<'a> {
    store: &'a PackageStore,
    sources: &'a WheelSources<'a>,
    after_store: Option<AfterStore<'a>>,
    reporter: &'a dyn Reporter,
    slots: crate::parallel::CpuSlots,
}

impl Fetching<'_> {
    /// Stores `p`'s wheel `filename` (`bytes`, checked against the lock already), records it
    /// under each of `records` (sha256-like keys the next install looks it up by) and hands it
    /// on, in a CPU slot.
    fn store_bytes(
        &self,
        p: &LockedPackage,
        filename: &str,
        bytes: &[u8],
        records: &[&str],
    ) -> Result<ContentHash, InstallError> {
        self.slots.run(bytes.len() as u64, || {
            let (hash, _) =
                store_wheel_bytes_as(self.store, filename, bytes, form_for(self.after_store))?;
            for key in records {
                self.store.record_wheel(key, &hash);
            }
            self.reporter.on_stored(&p.name);
            if let Some(after_store) = self.after_store {
                after_store(&hash);
            }
            Ok(hash)
        })
    }
}

fn fetch_one(p: &LockedPackage, cx: &Fetching<'_>) -> Result<(ContentHash, bool), InstallError> {
    if let Some((path, editable)) = p.directory() {
        return build_tree(p, path, editable, cx);
    }
    if let Some(sdist) = &p.sdist {
        return build_one(p, sdist, cx);
    }
    let (sources, reporter) = (cx.sources, cx.reporter);
    let client = sources.client;
    let filename = &p.wheel.filename;
    let expected = p.wheel.sha256_hex();
    let local = local_wheel(p, sources);
    let (bytes, downloaded) = if let Some(path) = local {
        (fs_err::read(&path)?, false)
    } else if let (Some(url), Some(client)) = (p.wheel.url.as_deref(), client) {
        reporter.on_download_start(&p.name, p.wheel.size);
        let bytes =
            client
                .download(url, Some(&expected))
                .map_err(|source| InstallError::Index {
                    name: p.name.clone(),
                    source: Box::new(source),
                })?;
        reporter.on_download_done(&p.name, bytes.len() as u64);
        (bytes, true)
    } else {
        return Err(InstallError::NoSource {
            name: p.name.clone(),
            filename: filename.clone(),
        });
    };
    check_sha256(p, &bytes)?;
    let hash = cx.store_bytes(p, filename, &bytes, &[&expected])?;
    if p.store_hash.is_some_and(|h| h != hash) {
        tracing::warn!(
            "{filename} converts to a different store object than the lock records; using the new one"
        );
    }
    Ok((hash, downloaded))
}

/// Builds `p` from its locked `sdist` (nothing is built when the built-wheel cache has it),
/// then stores the wheel and records it under the sdist's build key, so that the next install
/// of the lock finds it in the store.
fn build_one(
    p: &LockedPackage,
    sdist: &LockedWheel,
    cx: &Fetching<'_>,
) -> Result<(ContentHash, bool), InstallError> {
    let sources = cx.sources;
    let cannot = || InstallError::CannotBuild {
        name: p.name.clone(),
        filename: sdist.filename.clone(),
    };
    let builder = sources.builder.ok_or_else(cannot)?;
    let url = match (&sdist.path, &sdist.url) {
        (Some(path), _) => {
            let path = std::path::absolute(sources.lock_dir.join(path))?;
            url::Url::from_file_path(&path)
                .map_or_else(|()| path.to_string_lossy().into_owned(), String::from)
        }
        (None, Some(url)) => url.clone(),
        (None, None) => return Err(cannot()),
    };
    let file = IndexFile {
        filename: sdist.filename.clone(),
        url,
        sha256: Some(sdist.sha256_hex()),
        size: sdist.size,
        ..IndexFile::default()
    };
    // The lock's names passed `is_valid_name`, which PEP 508 names satisfy.
    let name = PackageName::from_str(&p.name).map_err(|_| cannot())?;
    let built = builder
        .wheel(&name, &p.version, &file)
        .map_err(|e| InstallError::Build(Box::new(e)))?;
    let bytes = fs_err::read(&built.path)?;
    let key = builder.store_key(&sdist.sha256_hex());
    let hash = cx.store_bytes(p, &built.filename, &bytes, &[&built.sha256, &key])?;
    Ok((hash, false))
}

/// How a locked directory is built.
fn tree_mode(editable: bool) -> LocalMode {
    if editable {
        LocalMode::Editable
    } else {
        LocalMode::Wheel
    }
}

/// Builds `p` from its locked directory `path` (relative to the lock's directory; nothing is
/// built when the local build cache has the tree's key), then stores the wheel and records it
/// under the tree's key, so that the next install of an unchanged tree finds it in the store.
fn build_tree(
    p: &LockedPackage,
    path: &str,
    editable: bool,
    cx: &Fetching<'_>,
) -> Result<(ContentHash, bool), InstallError> {
    let builder = cx
        .sources
        .builder
        .ok_or_else(|| InstallError::CannotBuild {
            name: p.name.clone(),
            filename: path.to_owned(),
        })?;
    let tree = cx.sources.lock_dir.join(path);
    if !tree.is_dir() {
        return Err(InstallError::MissingDirectory {
            name: p.name.clone(),
            path: tree,
        });
    }
    let build = |e| InstallError::Build(Box::new(e));
    let name = PackageName::from_str(&p.name).ok();
    let mode = tree_mode(editable);
    let built = builder.local(name.as_ref(), &tree, mode).map_err(build)?;
    let key = builder.tree_key(&tree, mode).map_err(build)?;
    let bytes = fs_err::read(&built.path)?;
    let hash = cx.store_bytes(p, &built.filename, &bytes, &[&built.sha256, &key])?;
    Ok((hash, false))
}

/// The local file of `p`'s wheel: the lock's path (relative to the lock's directory), else the
/// first find-links directory that has the file name.
pub fn local_wheel(p: &LockedPackage, sources: &WheelSources<'_>) -> Option<PathBuf> {
    // A package locked as an sdist has no wheel file anywhere: it is built.
    if p.sdist.is_some() || p.local.is_some() {
        return None;
    }
    p.wheel
        .path
        .as_deref()
        .map(|path| sources.lock_dir.join(path))
        .into_iter()
        .chain(sources.find_links.iter().map(|d| d.join(&p.wheel.filename)))
        .find(|candidate| candidate.is_file())
}

/// The error for a package `store` lacks and cannot take.
pub(crate) fn missing_from_read_only(store: &PackageStore, p: &LockedPackage) -> InstallError {
    InstallError::MissingFromReadOnlyStore {
        store: store.root().to_path_buf(),
        name: p.name.clone(),
        version: p.version.clone(),
    }
}

/// Checks the wheel `filename` as untrusted input (default limits) and lays its package out,
/// writing nothing: what storing, planning and reading a wheel's metadata all start with.
pub(crate) fn prepare_checked<'a>(
    filename: &str,
    bytes: &'a [u8],
) -> Result<PreparedWheel<'a>, InstallError> {
    prepare_wheel(filename, bytes, &ConvertLimits::default())
        .map_err(|source| wheel_error(filename, source))
}

fn wheel_error(filename: &str, source: crate::wheel::WheelError) -> InstallError {
    InstallError::Wheel {
        filename: filename.to_string(),
        source: Box::new(source),
    }
}

/// Refuses wheel bytes whose sha256 is not the one `p` locks.
pub(crate) fn check_sha256(p: &LockedPackage, bytes: &[u8]) -> Result<(), InstallError> {
    let (expected, actual) = (p.wheel.sha256_hex(), sha256_hex(bytes));
    if actual != expected {
        return Err(InstallError::HashMismatch {
            name: p.name.clone(),
            filename: p.wheel.filename.clone(),
            expected,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheel::testing::{WheelBuilder, zip_entries};

    fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    /// A file whose bytes differ from RECORD is found only as it streams into the store's
    /// temporary file: the install fails naming it, and nothing is published or left behind.
    #[test]
    fn a_file_failing_its_check_mid_stream_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let w = WheelBuilder::new("p", "1")
            .file("p/a.py", &[b'a'; 600_000])
            .file("p/b.py", b"xyz");
        let mut entries = w.entries();
        assert_eq!(entries[0].path, "p/a.py");
        entries[0].data[500_000] = b'b';
        let err = store_wheel_bytes(&store, &w.filename(), &zip_entries(&entries)).unwrap_err();
        let InstallError::Wheel { source, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            matches!(
                source.entry_problem(),
                Some(crate::wheel::EntryProblem::HashMismatch { .. })
            ),
            "{source}"
        );
        assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());
        let (hash, _) = store_wheel_bytes(&store, &w.filename(), &w.build()).unwrap();
        assert!(store.contains(&hash));
    }
}
