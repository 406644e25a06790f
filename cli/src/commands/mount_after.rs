//! What a mount server does once its mount is live ([`super::mount_tree_build::MountTree::Later`]):
//! store the packages the first tree was laid out from (reads of one wait until it is stored,
//! and ask for it first), record their store objects in the lock, compile the bytecode the store
//! lacks, and hand the complete tree's additions to the running mount.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::dpl::{DplReader, Lock};
use dx_py_core::hash::ContentHash;
use dx_py_core::install::{
    BytecodeBatch, WheelSources, local_wheel, planned_pack_key, store_planned,
};
use dx_py_core::plural::count;
use dx_py_fs_linux::fs::{PackPages, TreeFs};
use dx_py_fs_linux::serve;
use dx_py_fs_linux::tree::{self, ArrivingPacks};

use crate::settings::Settings;

/// What a mount server logs when what it completes after mounting is served, or is not
/// (`mount --wait-bytecode` and the benchmarks wait for these).
pub(crate) const BYTECODE_READY: &str = "dx-py: bytecode ready";
pub(crate) const BYTECODE_NONE: &str = "dx-py: no bytecode for this mount";
pub(crate) const PACKAGES_FAILED: &str = "dx-py: packages not stored";

/// A mount that answered a request this recently is in use: the compile waits.
const IN_USE_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);
/// The most each compile worker waits for the mount to be idle, in all.
const HOLD_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The server's inputs for [`super::mount_tree_build::MountTree::Later`].
#[derive(Clone, Debug)]
pub(crate) struct AfterMounting {
    /// The server's own copy of the lock (removed once read).
    pub(crate) lock: PathBuf,
    /// The venv's interpreter (of its bytecode).
    pub(crate) python: PathBuf,
    /// The project's lock and the blake3 (hex) of the bytes `mount` left in it: it is given the
    /// store objects of the packages stored after mounting if it still holds those bytes then.
    pub(crate) project_lock: Option<(PathBuf, String)>,
    /// Where the planned packages' wheels are, as for `install`.
    pub(crate) find_links: Vec<PathBuf>,
    /// The lock's directory (lock paths are relative to it).
    pub(crate) lock_dir: PathBuf,
}

/// A package the first tree was laid out from.
struct Planned {
    slot: u32,
    /// Its index in the lock.
    index: usize,
    wheel: PathBuf,
    /// The object's length as laid out.
    len: u64,
    /// The `(offset, length)` of every file the tree serves from it.
    ranges: Vec<(u64, u64)>,
}

impl AfterMounting {
    /// Prepares `fs` (served from the tree file `first`, to be mounted on `venv`) for what
    /// arrives after mounting, and returns it with the work to run once it is mounted.
    pub(crate) fn job(
        self,
        fs: TreeFs,
        first: &Path,
        venv: &Path,
        settings: &Settings,
        pages: PackPages,
    ) -> Result<(TreeFs, impl FnOnce(serve::Notify) + Send + 'static)> {
        let lock = DplReader::open(&self.lock)?.to_lock()?;
        // Read: a `cache clean` removing it meanwhile must not matter.
        remove_quietly(&self.lock);
        let planned = self.planned(&lock, fs.tree())?;
        let arriving = Arc::new(ArrivingPacks::new(planned.iter().map(|p| p.slot)));
        let fs = fs.arriving(Arc::clone(&arriving));
        // Dropped unused (an error, a panic), the handle tells the mount to stop waiting.
        let late = fs.expect_bytecode()?;
        let counters = fs.counters();
        let (first, venv, settings) = (first.to_path_buf(), venv.to_path_buf(), settings.clone());
        let job = move |notify: serve::Notify| {
            let started = std::time::Instant::now();
            // The server maps the first tree and `late` holds a copy: the file is not needed.
            remove_quietly(&first);
            // Whatever happens below (a panic included), nothing waits for a package that will
            // not come, and the log gets a last word (`mount --wait-bytecode` waits for one).
            let settle = Settle(&arriving);
            let mut last = LastWord::new(match planned.is_empty() {
                true => BYTECODE_NONE,
                false => PACKAGES_FAILED,
            });
            // Storing and compiling: held shared, like install, so that `cache clean` waits.
            let mut cache_lock = match CacheLock::open(&settings.cache_dir) {
                Ok(lock) => lock,
                Err(e) => return last.fail(format_args!("the cache lock: {e}")),
            };
            let shared = match cache_lock.shared() {
                Ok(guard) => guard,
                Err(e) => return last.fail(format_args!("the cache lock: {e}")),
            };
            settings.sweep_after_crashes();
            let mut lock = lock;
            let store = settings.store();
            let python = self.python.to_string_lossy().into_owned();
            let interp = settings.interpreter(Some(&python));
            // Packages are compiled as they are stored, at a lower priority than the storing
            // (reads may wait for it), and not while the venv is in use (its imports compile
            // in memory and would share the CPUs), up to a few seconds of waiting.
            let in_use = move || counters.idle_for().is_some_and(|idle| idle < IN_USE_WINDOW);
            let batch = match &interp {
                Ok(interp) => BytecodeBatch::start(&store, interp)
                    .map(|b| b.map(|b| b.in_background().hold_while(in_use, HOLD_BUDGET)))
                    .map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            if !planned.is_empty() {
                let compile = batch.as_ref().ok().and_then(Option::as_ref);
                let stored = self.store_all(&mut lock, &planned, &arriving, &settings, compile);
                if let Err(e) = stored {
                    return last.fail(format_args!("{e:#}; their files cannot be read"));
                }
                drop(settle);
                eprintln!(
                    "dx-py: {} stored after {:.2?}",
                    count(planned.len(), "package"),
                    started.elapsed()
                );
                last.stage = BYTECODE_NONE;
            }
            let complete = interp.map_err(anyhow::Error::from).and_then(|interp| {
                let batch = batch?;
                super::mount_tree_build::complete_bytecode(
                    &lock, &settings, &store, &interp, &venv, batch,
                )
            });
            // Built and mapped: what follows changes nothing in the cache.
            drop(shared);
            let arrived = complete.and_then(|complete| -> Result<usize> {
                let data = tree::TreeData::new(complete, store).with_pack_pages(pages);
                let arrived = late.arrive(data)?;
                for dir in &arrived.dirs {
                    if let Err(e) = notify.directory_changed(*dir) {
                        tracing::debug!("invalidating directory {dir}: {e}");
                    }
                }
                for (dir, name) in &arrived.names {
                    if let Err(e) = notify.entry_changed(*dir, name) {
                        tracing::debug!("invalidating an entry of directory {dir}: {e}");
                    }
                }
                Ok(arrived.dirs.len())
            });
            match arrived {
                Ok(n) => last.say(format_args!(
                    "{BYTECODE_READY} after {:.2?}: {n} directories gained bytecode",
                    started.elapsed()
                )),
                Err(e) => last.fail(format_args!("{e:#}; imports compile in memory")),
            }
        };
        Ok((fs, job))
    }

    /// The packages of `lock` the tree names by a planned key, with their pack slots and wheels:
    /// all of them, also those another process has stored since (storing again finds the
    /// object there), or a slot would never be served.
    fn planned(&self, lock: &Lock, tree: &tree::MappedTree) -> Result<Vec<Planned>> {
        let mut slots = HashMap::new();
        for slot in 0..tree.pack_count() {
            let pack = tree.pack(slot)?;
            slots.insert(pack.hash, (slot, pack.size));
        }
        let sources = WheelSources {
            client: None,
            find_links: &self.find_links,
            lock_dir: &self.lock_dir,
        };
        let mut planned = Vec::new();
        for (index, p) in lock.packages.iter().enumerate() {
            let Some(&(slot, len)) = slots.get(&planned_pack_key(&p.wheel.sha256_hex())) else {
                continue;
            };
            let wheel = local_wheel(p, &sources)
                .with_context(|| format!("The wheel of {} is gone", p.wheel.filename))?;
            planned.push(Planned {
                slot,
                index,
                wheel,
                len,
                ranges: Vec::new(),
            });
        }
        let at: HashMap<u32, usize> = planned
            .iter()
            .enumerate()
            .map(|(i, p)| (p.slot, i))
            .collect();
        for ino in 1..=u64::from(tree.len()) {
            if let tree::DataSource::Pack { pack, offset } = tree.node(ino)?.source
                && let Some(&i) = at.get(&pack)
            {
                planned[i].ranges.push((offset, tree.node(ino)?.size));
            }
        }
        // Largest first, so the longest conversion does not start last.
        planned.sort_by_key(|p| std::cmp::Reverse(p.len));
        Ok(planned)
    }

    /// Stores the planned packages on a thread per core, each next one the one a read waits for
    /// if any; then writes their store objects into the server's lock (and the project's, if
    /// it has not changed since the mount wrote it).
    fn store_all(
        &self,
        lock: &mut Lock,
        planned: &[Planned],
        arriving: &ArrivingPacks,
        settings: &Settings,
        compile: Option<&BytecodeBatch<'_>>,
    ) -> Result<()> {
        let store = settings.store();
        let order: Vec<u32> = planned.iter().map(|p| p.slot).collect();
        let by_slot: HashMap<u32, &Planned> = planned.iter().map(|p| (p.slot, p)).collect();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let results: Vec<(usize, Result<ContentHash>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        while let Some(slot) = arriving.next(&order) {
                            let p = by_slot[&slot];
                            let locked = &lock.packages[p.index];
                            let stored = store_planned(&store, locked, &p.wheel, p.len)
                                .map_err(anyhow::Error::from)
                                .and_then(|hash| {
                                    serves_its_files(&store, hash, &p.ranges)?;
                                    Ok(hash)
                                });
                            match &stored {
                                Ok(hash) => {
                                    arriving.stored(slot, *hash);
                                    if let Some(batch) = compile {
                                        batch.add(hash);
                                    }
                                }
                                Err(e) => arriving.failed(slot, format!("{e:#}")),
                            }
                            done.push((p.index, stored));
                        }
                        done
                    })
                })
                .collect();
            let mut all = Vec::new();
            for handle in handles {
                all.extend(
                    handle
                        .join()
                        .map_err(|_| anyhow::anyhow!("A storing thread panicked"))?,
                );
            }
            Ok::<_, anyhow::Error>(all)
        })?;
        if results.len() != planned.len() {
            anyhow::bail!(
                "{} of {} stored",
                results.len(),
                count(planned.len(), "package")
            );
        }
        for (index, stored) in results {
            let p = &mut lock.packages[index];
            p.store_hash =
                Some(stored.with_context(|| format!("Cannot store {}", p.wheel.filename))?);
        }
        if let Some((project, left)) = &self.project_lock {
            update_project_lock(project, left, lock);
        }
        Ok(())
    }
}

/// Checks that every `(offset, length)` the tree serves from the stored object `hash` is one of
/// its files: the tree was laid out before the object existed, and no read may straddle or
/// miss a file (which file sits where follows from the deterministic layout).
fn serves_its_files(
    store: &dx_py_core::store::PackageStore,
    hash: ContentHash,
    ranges: &[(u64, u64)],
) -> Result<()> {
    let package = store.get(&hash)?;
    let mut files = std::collections::HashSet::new();
    for entry in package.reader().entries() {
        let entry = entry?;
        files.insert((entry.data_offset, entry.data.len() as u64));
    }
    match ranges.iter().find(|r| !files.contains(r)) {
        None => Ok(()),
        Some((offset, len)) => anyhow::bail!(
            "Package `{hash}` has no file of {len} bytes at offset {offset}, where the tree laid out before it was stored expects one"
        ),
    }
}

/// Writes `lock` to `project` if the file still holds the bytes whose blake3 (hex) is `left`.
/// Returns whether it did. Compare and write are two steps: a lock another command writes in
/// between (microseconds) is overwritten.
fn update_project_lock(project: &Path, left: &str, lock: &Lock) -> bool {
    let unchanged =
        std::fs::read(project).is_ok_and(|now| blake3::hash(&now).to_hex().as_str() == left);
    if !unchanged {
        return false;
    }
    match lock.write_dpl(project) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("could not update {}: {e}", project.display());
            false
        }
    }
}

/// The last line a server's work after mounting logs: said once, or (an early return, a panic)
/// said for it when dropped. Not a tracing record: the log says it whatever the log level.
struct LastWord {
    /// The line a failure now starts with: packages not stored, or no bytecode.
    stage: &'static str,
    said: bool,
}

impl LastWord {
    fn new(stage: &'static str) -> Self {
        Self { stage, said: false }
    }

    fn say(&mut self, line: std::fmt::Arguments<'_>) {
        eprintln!("{line}");
        self.said = true;
    }

    fn fail(&mut self, why: std::fmt::Arguments<'_>) {
        let stage = self.stage;
        self.say(format_args!("{stage} ({why})"));
    }
}

impl Drop for LastWord {
    fn drop(&mut self) {
        if !self.said {
            let stage = self.stage;
            self.say(format_args!(
                "{stage} (the server's work after mounting stopped)"
            ));
        }
    }
}

/// Fails every package not stored yet when dropped.
struct Settle<'a>(&'a ArrivingPacks);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.0.fail_unsettled("the server stopped storing packages");
    }
}

/// Removes a file this process no longer needs; failing to is not worth more than a debug line.
pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::debug!("removing {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However the storing ends (here: the guard dropped before anything was stored, as on an
    /// early return or a panic), no read waits for a package that will not come.
    #[test]
    fn a_storer_that_stops_fails_every_waiting_read() {
        let arriving = Arc::new(ArrivingPacks::new([0, 1]));
        arriving.stored(1, ContentHash::from_bytes([3; 32]));
        let reader = {
            let arriving = Arc::clone(&arriving);
            std::thread::spawn(move || arriving.wait(0))
        };
        drop(Settle(&arriving));
        assert!(reader.join().unwrap().is_err());
        assert_eq!(
            arriving.wait(1).unwrap(),
            Some(ContentHash::from_bytes([3; 32]))
        );
    }

    /// A stored package is served only where the tree's ranges are its files.
    #[test]
    fn a_stored_package_must_hold_the_files_the_tree_expects() {
        use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
        let dir = tempfile::tempdir().unwrap();
        let store = dx_py_core::store::PackageStore::open(dir.path());
        let mut w = DxpkgWriter::new("p", "1", "p-1.dist-info");
        w.add(
            Scheme::SitePackages,
            "p/a.py",
            EntryKind::File,
            0o644,
            b"A = 1\n".to_vec(),
        );
        w.add(
            Scheme::SitePackages,
            "p/b.py",
            EntryKind::File,
            0o644,
            b"B = 22\n".to_vec(),
        );
        let prepared = w.prepare().unwrap();
        let ranges: Vec<(u64, u64)> = prepared
            .layout()
            .entries
            .iter()
            .map(|(e, _)| (e.data_offset, e.len))
            .collect();
        let mut bytes = Vec::new();
        prepared.write_to(&mut bytes).unwrap();
        let hash = store.store(&bytes).unwrap();
        serves_its_files(&store, hash, &ranges).unwrap();
        let (offset, len) = ranges[1];
        let err = serves_its_files(&store, hash, &[(offset, len + 1)]).unwrap_err();
        assert!(err.to_string().contains("no file of"), "{err}");
        assert!(serves_its_files(&store, hash, &[(offset + 8, len)]).is_err());
    }

    /// The project's lock gains the stored packages only while it holds what `mount` left.
    #[test]
    fn the_project_lock_is_updated_only_if_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dx-py.dpl");
        let lock = Lock {
            meta: dx_py_core::dpl::LockMeta {
                environment: "cp312-cp312-manylinux_2_39_x86_64".into(),
                python_version: "3.12.1".into(),
                requires_python: None,
                inputs_hash: ContentHash::from_bytes([1; 32]),
            },
            packages: Vec::new(),
        };
        let left = b"what mount left";
        std::fs::write(&path, left).unwrap();
        let hash = blake3::hash(left).to_hex().to_string();
        std::fs::write(&path, b"another set's lock").unwrap();
        assert!(!update_project_lock(&path, &hash, &lock));
        assert_eq!(std::fs::read(&path).unwrap(), b"another set's lock");
        std::fs::write(&path, left).unwrap();
        assert!(update_project_lock(&path, &hash, &lock));
        assert_eq!(std::fs::read(&path).unwrap(), lock.dpl_bytes().unwrap());
        assert!(!update_project_lock(
            &dir.path().join("gone.dpl"),
            &hash,
            &lock
        ));
    }
}
