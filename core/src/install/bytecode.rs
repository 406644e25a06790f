//! Bytecode packs: a package's `.pyc` files for one interpreter, compiled once and kept in the
//! store as an ordinary `.dxpkg` object, so every venv, layout and mount shares them.
//!
//! `{store}/bytecode-v2/{cache_tag}/{package hash}` holds the hex hash of the pack object. The
//! pack's `.pyc` files are unchecked-hash (PEP 552): valid without consulting source mtimes,
//! which read-only trees and mounts cannot keep in step. A pack holds only pycs the package does
//! not ship ([`compile_plan`]), so laying it over the package adds files and replaces none.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{AfterStore, InstallError};
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use crate::hash::ContentHash;
use crate::python::{CompileSession, Interpreter, SessionSource, compile_plan, default_jobs};
use crate::store::{MappedPackage, PackageStore};

/// The directory of the maps from package to pack. Its generation changes with what a pack
/// holds: packs mapped under `bytecode/` (generation 1) could replace a pyc the wheel ships, and
/// are not used again.
const MAPS_DIR: &str = "bytecode-v2";

fn map_path(store: &PackageStore, package: &ContentHash, cache_tag: &str) -> PathBuf {
    store
        .root()
        .join(MAPS_DIR)
        .join(cache_tag)
        .join(package.to_hex())
}

/// The directories where pack records are written, one per interpreter cache tag (their
/// temporary files sit beside the records).
pub(crate) fn bytecode_dirs(store: &PackageStore) -> Vec<PathBuf> {
    std::fs::read_dir(store.root().join(MAPS_DIR))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The bytecode pack of `package` for `cache_tag`, if one was made: in this store, else in its
/// remote tier (then fetched, verified and recorded here, so a fresh machine compiles nothing).
pub fn bytecode_pack(
    store: &PackageStore,
    package: &ContentHash,
    cache_tag: &str,
) -> Option<ContentHash> {
    local_bytecode_pack(store, package, cache_tag)
        .or_else(|| remote_pack(store, package, cache_tag))
}

/// [`bytecode_pack`] in this store only.
pub(crate) fn local_bytecode_pack(
    store: &PackageStore,
    package: &ContentHash,
    cache_tag: &str,
) -> Option<ContentHash> {
    let text = std::fs::read_to_string(map_path(store, package, cache_tag)).ok()?;
    let hash: ContentHash = text.trim().parse().ok()?;
    store.contains(&hash).then_some(hash)
}

/// The remote tier's pack of `package`, stored and recorded here. A pack the remote serves
/// wrong is refused (a warning) and compiled here instead: bytecode can always be made again.
fn remote_pack(
    store: &PackageStore,
    package: &ContentHash,
    cache_tag: &str,
) -> Option<ContentHash> {
    let remote = store.remote()?;
    if !store.is_writable() {
        return None;
    }
    let pack = match remote.fetch_pack(store, package, cache_tag) {
        Ok(pack) => pack?,
        Err(e) => {
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}"));
            tracing::warn!("{e}{}; compiling instead", cause.unwrap_or_default());
            return None;
        }
    };
    let map = map_path(store, package, cache_tag);
    let recorded = fs_err::create_dir_all(map.parent().expect("map paths have a parent"))
        .and_then(|()| crate::atomic::write_new(&map, pack.to_hex().as_bytes(), 0o444));
    if let Err(e) = recorded {
        tracing::debug!("recording the bytecode pack of {package}: {e}");
    }
    Some(pack)
}

/// Returns the bytecode pack of `package` for `interp`, compiling it if needed. `Ok(None)` when
/// the interpreter keeps no bytecode, or the store is read-only and has no pack.
pub fn ensure_bytecode(
    store: &PackageStore,
    package: &ContentHash,
    interp: &Interpreter,
) -> Result<(Option<ContentHash>, bool), InstallError> {
    let mut packs = ensure_bytecode_packs(store, std::slice::from_ref(package), interp, None)?;
    Ok(packs.pop().unwrap_or((None, false)))
}

/// [`ensure_bytecode`] for many packages at once: the sources of every package that lacks a
/// pack are compiled in one session of worker processes, so the cores stay busy across
/// package boundaries and each worker starts once per install, not once per package. Returns,
/// per package in order, its pack and whether it was compiled now; `after_store` runs on each
/// pack stored now, on the thread that stored it.
pub fn ensure_bytecode_packs(
    store: &PackageStore,
    packages: &[ContentHash],
    interp: &Interpreter,
    after_store: Option<AfterStore<'_>>,
) -> Result<Vec<(Option<ContentHash>, bool)>, InstallError> {
    match BytecodeBatch::start(store, interp)? {
        Some(batch) => batch.finish_for(packages, after_store),
        None => Ok(existing_packs(store, interp, packages)),
    }
}

/// The packs `packages` already have, when none can be made (the interpreter keeps no bytecode,
/// or the store is read-only: then a missing pack is worth a warning).
pub fn existing_packs(
    store: &PackageStore,
    interp: &Interpreter,
    packages: &[ContentHash],
) -> Vec<(Option<ContentHash>, bool)> {
    let tag = interp.info().cache_tag.as_deref();
    let packs = packages.iter().map(|p| {
        let pack = tag.and_then(|tag| bytecode_pack(store, p, tag));
        if let (None, Some(tag)) = (pack, tag) {
            tracing::warn!(
                "The read-only store has no bytecode for {p} ({tag}); imports will compile in memory"
            );
        }
        (pack, false)
    });
    packs.collect()
}

/// A source of a stored package, read from its map when a worker sends it.
struct PackageSource {
    package: Arc<MappedPackage>,
    index: usize,
}

impl SessionSource for PackageSource {
    fn name(&self) -> &str {
        // The entry was read once already: the map does not change.
        self.package
            .reader()
            .entry(self.index)
            .map_or("", |e| e.path)
    }

    fn bytes(&self) -> &[u8] {
        // Checked when queued (its groups stay checked); a thin package's bytes are its
        // unpacked file's, which `entry_data` maps.
        self.package
            .reader()
            .entry(self.index)
            .ok()
            .and_then(|e| self.package.entry_data(&e).ok())
            .unwrap_or_default()
    }
}

/// A package whose sources are queued: its map and, per source, the answer's id and pyc path.
struct Queued {
    package: ContentHash,
    map: Arc<MappedPackage>,
    pycs: Vec<(usize, String)>,
}

/// Bytecode packs compiled for packages as they arrive: [`add`](Self::add) queues a package's
/// sources at once (an install calls it as each package is stored, so Python compiles while
/// later wheels are converted), [`finish`](Self::finish) waits and stores one pack per package.
pub struct BytecodeBatch<'a> {
    store: &'a PackageStore,
    cache_tag: String,
    session: CompileSession<PackageSource>,
    queued: Mutex<Vec<Queued>>,
    /// Packages `add` has taken on (queued, or being queued).
    claimed: Mutex<std::collections::HashSet<ContentHash>>,
    /// The first failure of `add`, reported by `finish`.
    failed: Mutex<Option<InstallError>>,
}

impl<'a> BytecodeBatch<'a> {
    /// A batch for `interp`'s bytecode; `None` when there is none to make: the interpreter
    /// keeps no bytecode, or the store is read-only (imports then compile in memory).
    pub fn start(
        store: &'a PackageStore,
        interp: &Interpreter,
    ) -> Result<Option<Self>, InstallError> {
        let Some(cache_tag) = interp.info().cache_tag.clone() else {
            return Ok(None);
        };
        if !store.is_writable() {
            return Ok(None);
        }
        Ok(Some(Self {
            store,
            cache_tag,
            session: CompileSession::new(interp, default_jobs())?,
            queued: Mutex::new(Vec::new()),
            claimed: Mutex::new(std::collections::HashSet::new()),
            failed: Mutex::new(None),
        }))
    }

    /// Compiles at a lower priority (see [`CompileSession::in_background`]).
    #[must_use]
    pub fn in_background(mut self) -> Self {
        self.session = self.session.in_background();
        self
    }

    /// Holds the compiling back while `busy()` (see [`CompileSession::hold_while`]).
    #[must_use]
    pub fn hold_while(
        mut self,
        busy: impl Fn() -> bool + Send + Sync + 'static,
        budget: std::time::Duration,
    ) -> Self {
        self.session = self.session.hold_while(busy, budget);
        self
    }

    /// Queues the sources of `package` unless it has a pack or is queued already. A failure is
    /// kept for [`finish`](Self::finish), so this can run where errors cannot be returned.
    pub fn add(&self, package: &ContentHash) {
        // Claimed under the lock, queued outside it: queueing a large package takes a while,
        // and the thread that stores the next one (a mount's reads may wait for it) must not
        // wait behind it.
        if !lock(&self.claimed).insert(*package)
            || bytecode_pack(self.store, package, &self.cache_tag).is_some()
        {
            return;
        }
        match self.queue(package) {
            Ok(q) => lock(&self.queued).push(q),
            Err(e) => {
                lock(&self.failed).get_or_insert(e);
            }
        }
    }

    fn queue(&self, package: &ContentHash) -> Result<Queued, InstallError> {
        let map = self.store.get(package)?;
        let reader = map.reader();
        // (entry index, path, kind) of every site-packages entry: the plan needs them all to
        // see which pycs the package ships.
        let mut files = Vec::new();
        for (index, entry) in reader.entries().enumerate() {
            let entry = entry?;
            if entry.scheme == Scheme::SitePackages {
                files.push((index, entry.path, entry.kind));
            }
        }
        let plan = compile_plan(files.iter().map(|&(_, p, k)| (p, k)), &self.cache_tag);
        let mut pycs = Vec::with_capacity(plan.len());
        for (at, _) in plan {
            // The compiled bytes reach every venv of the package: compile checked sources.
            let entry = reader.entry(files[at].0)?;
            map.entry_data(&entry)?;
            let source = PackageSource {
                package: Arc::clone(&map),
                index: files[at].0,
            };
            if let Some(answer) = self.session.push(source)? {
                pycs.push(answer);
            }
        }
        Ok(Queued {
            package: *package,
            map,
            pycs,
        })
    }

    /// Queues `packages` (those not queued yet), finishes, and returns for each of them, in
    /// order, its pack and whether it was compiled now.
    pub fn finish_for(
        self,
        packages: &[ContentHash],
        after_store: Option<AfterStore<'_>>,
    ) -> Result<Vec<(Option<ContentHash>, bool)>, InstallError> {
        for package in packages {
            self.add(package);
        }
        let (store, tag) = (self.store, self.cache_tag.clone());
        let compiled = self.finish(after_store)?;
        Ok(packages
            .iter()
            .map(|p| match compiled.get(p) {
                Some(pack) => (Some(*pack), true),
                None => (bytecode_pack(store, p, &tag), false),
            })
            .collect())
    }

    /// Waits for the compilation, stores one pack per queued package and returns them (package
    /// -> pack). `after_store` runs on each pack stored, on the thread that stored it.
    pub fn finish(
        self,
        after_store: Option<AfterStore<'_>>,
    ) -> Result<HashMap<ContentHash, ContentHash>, InstallError> {
        let Self {
            store,
            cache_tag,
            session,
            queued,
            claimed: _,
            failed,
        } = self;
        if let Some(e) = into_inner(failed) {
            // Dropped unfinished, the session compiles nothing more of what waits.
            drop(session);
            return Err(e);
        }
        let mut answers: HashMap<usize, Option<Vec<u8>>> = session.finish()?.into_iter().collect();

        // Each package's pycs become one pack; packs are stored on a few threads, since each
        // ends in an fsync that would otherwise wait alone.
        let mut packs = Vec::new();
        for q in into_inner(queued) {
            let reader = q.map.reader();
            let mut writer = DxpkgWriter::new(reader.name(), reader.version(), reader.dist_info());
            for (id, path) in q.pycs {
                if let Some(Some(bytes)) = answers.remove(&id) {
                    writer.add(Scheme::SitePackages, &path, EntryKind::File, 0o444, bytes);
                }
            }
            let pack = writer.prepare()?;
            packs.push((q.package, pack.len(), Mutex::new(Some(pack))));
        }
        let stored = crate::parallel::map_largest_first(
            &packs,
            PACK_THREADS,
            |(_, len, _)| *len,
            |(package, _, pack)| -> Result<ContentHash, InstallError> {
                // Each pack is taken exactly once: the lock only moves it to its thread.
                let pack = lock(pack).take().expect("each pack is stored once");
                let form = super::fetch::form_for(after_store);
                let (hash, ()) = store.store_with_as(form, |w| pack.write_to(w))?;
                let map = map_path(store, package, &cache_tag);
                fs_err::create_dir_all(map.parent().expect("map paths have a parent"))?;
                crate::atomic::write_new(&map, hash.to_hex().as_bytes(), 0o444)?;
                if let Some(after_store) = after_store {
                    after_store(&hash);
                }
                Ok(hash)
            },
        );
        let mut compiled = HashMap::with_capacity(packs.len());
        for ((package, _, _), hash) in packs.iter().zip(stored) {
            compiled.insert(*package, hash?);
        }
        Ok(compiled)
    }
}

/// A [`BytecodeBatch`] started when the first package is added, so that a run which stores
/// nothing (a warm install, a fresh lock) starts nothing and touches nothing.
pub struct LazyBytecodeBatch<'a> {
    store: &'a PackageStore,
    interp: &'a Interpreter,
    batch: std::sync::OnceLock<Option<BytecodeBatch<'a>>>,
    /// Why the batch could not start, reported by `finish`.
    failed: Mutex<Option<InstallError>>,
}

impl<'a> LazyBytecodeBatch<'a> {
    /// A batch for `interp` in `store`, not started yet.
    pub fn new(store: &'a PackageStore, interp: &'a Interpreter) -> Self {
        Self {
            store,
            interp,
            batch: std::sync::OnceLock::new(),
            failed: Mutex::new(None),
        }
    }

    /// [`BytecodeBatch::add`], starting the batch first if needed.
    pub fn add(&self, package: &ContentHash) {
        let batch =
            self.batch
                .get_or_init(|| match BytecodeBatch::start(self.store, self.interp) {
                    Ok(batch) => batch,
                    Err(e) => {
                        lock(&self.failed).get_or_insert(e);
                        None
                    }
                });
        if let Some(batch) = batch {
            batch.add(package);
        }
    }

    /// [`BytecodeBatch::finish`]; nothing compiled when nothing was added.
    pub fn finish(
        self,
        after_store: Option<AfterStore<'_>>,
    ) -> Result<HashMap<ContentHash, ContentHash>, InstallError> {
        if let Some(e) = into_inner(self.failed) {
            return Err(e);
        }
        match self.batch.into_inner().flatten() {
            Some(batch) => batch.finish(after_store),
            None => Ok(HashMap::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Threads storing bytecode packs.
const PACK_THREADS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::store_wheel_bytes;
    use crate::python::interpreter::tests::pyenv_python;
    use crate::wheel::testing::WheelBuilder;

    fn pack_paths(store: &PackageStore, pack: &ContentHash) -> Vec<String> {
        let mapped = store.get(pack).unwrap();
        mapped
            .reader()
            .entries()
            .map(|e| e.unwrap().path.to_string())
            .collect()
    }

    /// A temporary directory with a store in it and Python 3.11, when pyenv has it.
    fn fixture() -> Option<(tempfile::TempDir, PackageStore, Interpreter)> {
        let python = pyenv_python(11)?;
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let interp = Interpreter::find(python.to_str(), &dir.path().join("interp")).unwrap();
        Some((dir, store, interp))
    }

    /// A wheel that ships a pyc for the interpreter's tag: the plan leaves its source out, the
    /// pack does not hold that path, and the layout (package and pack merged, as an install
    /// makes it) holds the shipped bytes, so every file satisfies the RECORD in it (as pip
    /// checks), while the other sources get pycs.
    #[test]
    fn a_shipped_pyc_stays_as_shipped_in_the_pack_and_the_layout() {
        use crate::layout::{LayoutCache, LayoutPackage, LayoutSpec};
        use crate::wheel::{RecordHashAlgorithm, parse_record};
        let Some((dir, store, interp)) = fixture() else {
            return;
        };
        // Not even a valid pyc: whatever the wheel ships is served as it is.
        let shipped = b"shipped pyc bytes";
        let wheel = WheelBuilder::new("ships", "1")
            .file("ships/__init__.py", b"A = 1\n")
            .file("ships/conv.py", b"C = 2\n")
            .file("ships/__pycache__/conv.cpython-311.pyc", shipped)
            // Another interpreter's pyc does not stand in for this one's.
            .file("ships/other.py", b"O = 3\n")
            .file("ships/__pycache__/other.cpython-312.pyc", b"for 3.12");
        let (hash, _) = store_wheel_bytes(&store, &wheel.filename(), &wheel.build()).unwrap();
        let (pack, compiled) = ensure_bytecode(&store, &hash, &interp).unwrap();
        assert!(compiled);
        let pack = pack.unwrap();
        assert_eq!(
            pack_paths(&store, &pack),
            [
                "ships/__pycache__/__init__.cpython-311.pyc",
                "ships/__pycache__/other.cpython-311.pyc"
            ]
        );

        let spec = LayoutSpec {
            interpreter_tag: "cp311-linux_x86_64".into(),
            python_version: (3, 11),
            packages: vec![LayoutPackage {
                name: "ships".into(),
                version: "1".into(),
                hash,
                wheel_sha256: [0; 32],
                extra_trees: vec![store.unpacked(&pack).unwrap()],
            }],
        };
        let cache = LayoutCache::open(&dir.path().join("layouts"), &store).unwrap();
        let sp = cache.build_layout(&spec).unwrap().site_packages();
        assert_eq!(
            std::fs::read(sp.join("ships/__pycache__/conv.cpython-311.pyc")).unwrap(),
            shipped
        );
        let record = std::fs::read(sp.join(wheel.record_path())).unwrap();
        let rows = parse_record(&record).unwrap();
        let mut hashed = 0;
        for row in &rows {
            let Some(h) = &row.hash else { continue };
            assert_eq!(h.algorithm, RecordHashAlgorithm::Sha256);
            let bytes = std::fs::read(sp.join(&row.path)).unwrap();
            assert_eq!(h.digest, h.algorithm.digest(&bytes), "{}", row.path);
            hashed += 1;
        }
        assert!(
            rows.iter()
                .any(|r| r.path == "ships/__pycache__/conv.cpython-311.pyc" && r.hash.is_some())
        );
        assert!(hashed >= 5, "{hashed} hashed rows");
        let compiled_pyc =
            std::fs::read(sp.join("ships/__pycache__/other.cpython-311.pyc")).unwrap();
        assert_eq!(&compiled_pyc[4..8], &[1, 0, 0, 0], "unchecked-hash");
    }

    /// Several packages compiled in one session each get a pack of exactly their own pycs,
    /// a package named twice is compiled once, and a second call compiles nothing.
    #[test]
    fn one_session_gives_each_package_its_own_pack() {
        let Some((_dir, store, interp)) = fixture() else {
            return;
        };
        let wheels = [
            WheelBuilder::new("alpha", "1")
                .file("alpha/__init__.py", b"A = 1\n")
                .file("alpha/sub.py", b"def f():\n    return 2\n"),
            WheelBuilder::new("beta", "1")
                .file("beta.py", b"B = 2\n")
                .file("beta_broken.py", b"def (:\n")
                .file("beta_data.txt", b"not python"),
            WheelBuilder::new("gamma", "1").file("gamma.txt", b"no sources at all"),
        ];
        let hashes: Vec<ContentHash> = wheels
            .iter()
            .map(|w| {
                store_wheel_bytes(&store, &w.filename(), &w.build())
                    .unwrap()
                    .0
            })
            .collect();
        let asked = [hashes[0], hashes[1], hashes[0], hashes[2]];
        let packs = ensure_bytecode_packs(&store, &asked, &interp, None).unwrap();
        assert_eq!(packs.len(), 4);
        assert!(
            packs
                .iter()
                .all(|(pack, compiled)| pack.is_some() && *compiled)
        );
        assert_eq!(packs[0], packs[2], "the same package gets the same pack");
        assert_eq!(
            pack_paths(&store, &packs[0].0.unwrap()),
            [
                "alpha/__pycache__/__init__.cpython-311.pyc",
                "alpha/__pycache__/sub.cpython-311.pyc"
            ]
        );
        assert_eq!(
            pack_paths(&store, &packs[1].0.unwrap()),
            ["__pycache__/beta.cpython-311.pyc"],
            "the broken source is skipped, the data file ignored"
        );
        assert!(pack_paths(&store, &packs[3].0.unwrap()).is_empty());

        let again = ensure_bytecode_packs(&store, &asked, &interp, None).unwrap();
        assert!(again.iter().all(|(_, compiled)| !compiled));
        let same: Vec<_> = again.iter().map(|(p, _)| *p).collect();
        assert_eq!(same, packs.iter().map(|(p, _)| *p).collect::<Vec<_>>());
        assert_eq!(
            ensure_bytecode(&store, &hashes[1], &interp).unwrap(),
            (packs[1].0, false)
        );
    }
}
