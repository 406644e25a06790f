//! Bytecode packs: a package's `.pyc` files for one interpreter, compiled once and kept in the
//! store as an ordinary `.dxpkg` object, so every venv, layout and mount shares them.
//!
//! `{store}/bytecode/{cache_tag}/{package hash}` holds the hex hash of the pack object. The pack's
//! `.pyc` files are unchecked-hash (PEP 552): valid without consulting source mtimes, which
//! read-only trees and mounts cannot keep in step.
use std::path::PathBuf;
use std::sync::Mutex;

use super::{AfterStore, InstallError};
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use crate::hash::ContentHash;
use crate::python::{Interpreter, compile_each, default_jobs};
use crate::store::PackageStore;

fn map_path(store: &PackageStore, package: &ContentHash, cache_tag: &str) -> PathBuf {
    store
        .root()
        .join("bytecode")
        .join(cache_tag)
        .join(package.to_hex())
}

/// The bytecode pack of `package` for `cache_tag`, if one was made.
pub fn bytecode_pack(
    store: &PackageStore,
    package: &ContentHash,
    cache_tag: &str,
) -> Option<ContentHash> {
    let text = std::fs::read_to_string(map_path(store, package, cache_tag)).ok()?;
    let hash: ContentHash = text.trim().parse().ok()?;
    store.contains(&hash).then_some(hash)
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
    let Some(cache_tag) = interp.info().cache_tag.clone() else {
        return Ok(vec![(None, false); packages.len()]);
    };
    let mut out: Vec<(Option<ContentHash>, bool)> = Vec::with_capacity(packages.len());
    let mut todo = Vec::new();
    for package in packages {
        let pack = bytecode_pack(store, package, &cache_tag);
        if pack.is_none() && !todo.contains(package) {
            todo.push(*package);
        }
        out.push((pack, false));
    }
    if todo.is_empty() {
        return Ok(out);
    }
    if !store.is_writable() {
        for package in &todo {
            tracing::warn!(
                "The read-only store has no bytecode for {package} ({cache_tag}); imports will compile in memory"
            );
        }
        return Ok(out);
    }

    let mapped = todo
        .iter()
        .map(|package| store.get(package))
        .collect::<Result<Vec<_>, _>>()?;
    // Every package's sources in one list; `ends[k]` is where package k's sources stop.
    let mut sources: Vec<(&str, &[u8])> = Vec::new();
    let mut ends = Vec::with_capacity(mapped.len());
    for m in &mapped {
        for entry in m.reader().entries() {
            let entry = entry?;
            if entry.scheme == Scheme::SitePackages
                && entry.kind == EntryKind::File
                && entry.path.ends_with(".py")
            {
                sources.push((entry.path, entry.data));
            }
        }
        ends.push(sources.len());
    }
    let mut pycs = compile_each(interp, &sources, default_jobs())?.into_iter();

    // Each package's pycs become one pack; packs are stored on a few threads, since each ends
    // in an fsync that would otherwise wait alone.
    let mut packs = Vec::with_capacity(todo.len());
    let mut start = 0;
    for ((package, m), end) in todo.iter().zip(&mapped).zip(ends) {
        let reader = m.reader();
        let mut writer = DxpkgWriter::new(reader.name(), reader.version(), reader.dist_info());
        for (path, bytes) in pycs.by_ref().take(end - start).flatten() {
            writer.add(Scheme::SitePackages, &path, EntryKind::File, 0o444, bytes);
        }
        start = end;
        let pack = writer.prepare()?;
        packs.push((*package, pack.len(), Mutex::new(Some(pack))));
    }
    let stored = crate::parallel::map_largest_first(
        &packs,
        PACK_THREADS,
        |(_, len, _)| *len,
        |(package, _, pack)| -> Result<ContentHash, InstallError> {
            // Each pack is taken exactly once: the lock only moves it to its thread.
            let pack = pack.lock().ok().and_then(|mut p| p.take());
            let pack = pack.expect("each pack is stored once");
            let (hash, ()) = store.store_with(|w| pack.write_to(w))?;
            let map = map_path(store, package, &cache_tag);
            fs_err::create_dir_all(map.parent().expect("map paths have a parent"))?;
            crate::atomic::write_new(&map, hash.to_hex().as_bytes(), 0o444)?;
            if let Some(after_store) = after_store {
                after_store(&hash);
            }
            Ok(hash)
        },
    );
    for ((package, _, _), hash) in packs.iter().zip(stored) {
        let hash = hash?;
        for (slot, p) in out.iter_mut().zip(packages) {
            if p == package {
                *slot = (Some(hash), true);
            }
        }
    }
    Ok(out)
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

    /// Several packages compiled in one session each get a pack of exactly their own pycs,
    /// a package named twice is compiled once, and a second call compiles nothing.
    #[test]
    fn one_session_gives_each_package_its_own_pack() {
        let Some(python) = pyenv_python(11) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let interp = Interpreter::find(python.to_str(), &dir.path().join("interp")).unwrap();
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
