//! The server's work after mounting a first tree: store the packages it was laid out from,
//! each next one the one a read waits for, on a small worker pool, and give the project's lock
//! their store objects if nobody changed it meanwhile (compare-and-swap on its bytes).
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::MountPlanError;
use super::spec::reason_of;
use crate::dpl::{DplReader, Lock};
use crate::hash::ContentHash;
use crate::install::{BytecodeBatch, WheelSources, local_wheel, planned_pack_key, store_planned};
use crate::store::PackageStore;
use crate::tree::{ArrivingPacks, DataSource, MappedTree};

/// What the server completes after mounting a first tree (part of its
/// [`super::ServerSpec`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterMounting {
    /// The server's own copy of the lock (removed once read).
    pub lock: PathBuf,
    /// The venv's interpreter (of its bytecode).
    pub python: PathBuf,
    /// The project's lock, given the stored packages' objects if it still holds what `mount`
    /// left in it.
    pub project_lock: Option<ProjectLock>,
    /// Where the planned packages' wheels are, as for `install`.
    pub find_links: Vec<PathBuf>,
    /// The lock's directory (lock paths are relative to it).
    pub lock_dir: PathBuf,
}

/// A project's lock and the bytes a mount left in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectLock {
    /// The lock file.
    pub path: PathBuf,
    /// The blake3 (hex) of the bytes `mount` left there.
    pub left: String,
}

/// A package the first tree was laid out from.
#[derive(Debug)]
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

/// The lock and the planned packages of a mounted first tree, read by [`AfterMounting::read`].
#[derive(Debug)]
pub struct PendingWork {
    after: AfterMounting,
    lock: Lock,
    /// Largest first, so that the longest conversion does not start last.
    planned: Vec<Planned>,
}

impl AfterMounting {
    /// Reads the server's lock (and removes the file: a `cache clean` removing it meanwhile
    /// must not matter) and which of the packs of `tree` are the planned packages.
    pub fn read(self, tree: &MappedTree) -> Result<PendingWork, MountPlanError> {
        let dpl = DplReader::open(&self.lock).map_err(crate::install::InstallError::from)?;
        let lock = dpl.to_lock().map_err(|source| MountPlanError::Lock {
            path: self.lock.clone(),
            source,
        })?;
        drop(dpl);
        if let Err(e) = fs_err::remove_file(&self.lock) {
            tracing::debug!("{e}");
        }
        let planned = self.planned(&lock, tree)?;
        Ok(PendingWork {
            after: self,
            lock,
            planned,
        })
    }

    /// The packages of `lock` the tree names by a planned key, with their pack slots and wheels:
    /// all of them, also those another process has stored since (storing again finds the
    /// object there), or a slot would never be served.
    fn planned(&self, lock: &Lock, tree: &MappedTree) -> Result<Vec<Planned>, MountPlanError> {
        let mut slots = HashMap::new();
        for slot in 0..tree.pack_count() {
            let pack = tree.pack(slot)?;
            slots.insert(pack.hash, (slot, pack.size));
        }
        let sources = WheelSources {
            client: None,
            find_links: &self.find_links,
            lock_dir: &self.lock_dir,
            builder: None,
        };
        let mut planned = Vec::new();
        for (index, p) in lock.packages.iter().enumerate() {
            let Some(&(slot, len)) = slots.get(&planned_pack_key(&p.wheel.sha256_hex())) else {
                continue;
            };
            let wheel = local_wheel(p, &sources).ok_or_else(|| MountPlanError::WheelGone {
                wheel: p.wheel.filename.clone(),
            })?;
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
            if let DataSource::Pack { pack, offset } = tree.node(ino)?.source
                && let Some(&i) = at.get(&pack)
            {
                planned[i].ranges.push((offset, tree.node(ino)?.size));
            }
        }
        planned.sort_by_key(|p| std::cmp::Reverse(p.len));
        Ok(planned)
    }
}

impl PendingWork {
    /// The pack slots of the packages to store.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.planned.iter().map(|p| p.slot)
    }

    /// How many packages are to be stored.
    pub fn planned(&self) -> usize {
        self.planned.len()
    }

    /// The lock (with the stored packages' objects once [`Self::store_all`] returned).
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// The venv's interpreter.
    pub fn python(&self) -> &Path {
        &self.after.python
    }

    /// Stores the planned packages on a thread per core (at most 4), each next one the one a
    /// read waits for, if any; tells `arriving` of each (and hands it to `compile`); then writes
    /// their store objects into the lock and into the project's lock, if that still holds what
    /// `mount` left there.
    pub fn store_all(
        &mut self,
        store: &PackageStore,
        arriving: &ArrivingPacks,
        compile: Option<&BytecodeBatch<'_>>,
    ) -> Result<(), MountPlanError> {
        let order: Vec<u32> = self.planned.iter().map(|p| p.slot).collect();
        let by_slot: HashMap<u32, &Planned> = self.planned.iter().map(|p| (p.slot, p)).collect();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let lock = &self.lock;
        let store_one = |p: &Planned| -> Result<ContentHash, MountPlanError> {
            let hash = store_planned(store, &lock.packages[p.index], &p.wheel, p.len)?;
            serves_its_files(store, hash, &p.ranges)?;
            Ok(hash)
        };
        let results: Vec<(usize, Result<ContentHash, MountPlanError>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut done = Vec::new();
                            while let Some(slot) = arriving.next(&order) {
                                let p = by_slot[&slot];
                                let stored = store_one(p);
                                match &stored {
                                    Ok(hash) => {
                                        arriving.stored(slot, *hash);
                                        if let Some(batch) = compile {
                                            batch.add(hash);
                                        }
                                    }
                                    Err(e) => arriving.failed(slot, reason_of(e)),
                                }
                                done.push((p.index, stored));
                            }
                            done
                        })
                    })
                    .collect();
                // A worker that panicked stored less: counted below.
                handles
                    .into_iter()
                    .filter_map(|h| h.join().ok())
                    .flatten()
                    .collect()
            });
        if results.len() != self.planned.len() {
            return Err(MountPlanError::Unfinished {
                stored: results.len(),
                planned: self.planned.len(),
            });
        }
        for (index, stored) in results {
            let p = &mut self.lock.packages[index];
            let hash = stored.map_err(|e| MountPlanError::Store {
                wheel: p.wheel.filename.clone(),
                source: Box::new(e),
            })?;
            p.store_hash = Some(hash);
        }
        if let Some(project) = &self.after.project_lock {
            update_project_lock(&project.path, &project.left, &self.lock);
        }
        Ok(())
    }
}

/// Checks that every `(offset, length)` the tree serves from the stored object `hash` is one of
/// its files: the tree was laid out before the object existed, and no read may straddle or
/// miss a file (which file sits where follows from the deterministic layout).
fn serves_its_files(
    store: &PackageStore,
    hash: ContentHash,
    ranges: &[(u64, u64)],
) -> Result<(), MountPlanError> {
    let package = store.get(&hash)?;
    let mut files = HashSet::new();
    for entry in package.reader().entries() {
        let entry = entry?;
        files.insert((entry.data_offset, entry.len));
    }
    match ranges.iter().find(|r| !files.contains(r)) {
        None => Ok(()),
        Some(&(offset, len)) => Err(MountPlanError::NotAsLaidOut { hash, offset, len }),
    }
}

/// Writes `lock` to `project` if the file still holds the bytes whose blake3 (hex) is `left`.
/// Returns whether it did. Compare and write are two steps: a lock another command writes in
/// between (microseconds) is overwritten.
pub fn update_project_lock(project: &Path, left: &str, lock: &Lock) -> bool {
    let unchanged =
        fs_err::read(project).is_ok_and(|now| blake3::hash(&now).to_hex().as_str() == left);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};

    /// A stored package is served only where the tree's ranges are its files.
    #[test]
    fn a_stored_package_must_hold_the_files_the_tree_expects() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
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
            meta: crate::dpl::LockMeta {
                environment: "cp312-cp312-manylinux_2_39_x86_64".into(),
                python_version: "3.12.1".into(),
                requires_python: None,
                inputs_hash: ContentHash::from_bytes([1; 32]),
            },
            packages: Vec::new(),
        };
        let left = b"what mount left";
        fs_err::write(&path, left).unwrap();
        let hash = blake3::hash(left).to_hex().to_string();
        fs_err::write(&path, b"another set's lock").unwrap();
        assert!(!update_project_lock(&path, &hash, &lock));
        assert_eq!(fs_err::read(&path).unwrap(), b"another set's lock");
        fs_err::write(&path, left).unwrap();
        assert!(update_project_lock(&path, &hash, &lock));
        assert_eq!(fs_err::read(&path).unwrap(), lock.dpl_bytes().unwrap());
        assert!(!update_project_lock(
            &dir.path().join("gone.dpl"),
            &hash,
            &lock
        ));
    }
}
