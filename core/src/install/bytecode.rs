//! Bytecode packs: a package's `.pyc` files for one interpreter, compiled once and kept in the
//! store as an ordinary `.dxpkg` object, so every venv, layout and mount shares them.
//!
//! `{store}/bytecode/{cache_tag}/{package hash}` holds the hex hash of the pack object. The pack's
//! `.pyc` files are unchecked-hash (PEP 552): valid without consulting source mtimes, which
//! read-only trees and mounts cannot keep in step.
use std::path::PathBuf;

use super::InstallError;
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use crate::hash::ContentHash;
use crate::python::{Interpreter, compile_sources};
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
    let Some(cache_tag) = interp.info().cache_tag.clone() else {
        return Ok((None, false));
    };
    if let Some(hash) = bytecode_pack(store, package, &cache_tag) {
        return Ok((Some(hash), false));
    }
    if !store.is_writable() {
        tracing::warn!(
            "The read-only store has no bytecode for {package} ({cache_tag}); imports will compile in memory"
        );
        return Ok((None, false));
    }
    let mapped = store.get(package)?;
    let reader = mapped.reader();
    let mut sources = Vec::new();
    for entry in reader.entries() {
        let entry = entry?;
        if entry.scheme == Scheme::SitePackages
            && entry.kind == EntryKind::File
            && entry.path.ends_with(".py")
        {
            sources.push((entry.path, entry.data));
        }
    }
    let pycs = compile_sources(interp, sources)?;
    let mut writer = DxpkgWriter::new(reader.name(), reader.version(), reader.dist_info());
    for (path, bytes) in pycs {
        writer.add(Scheme::SitePackages, &path, EntryKind::File, 0o444, bytes);
    }
    let hash = store.store(&writer.finish()?)?;
    let map = map_path(store, package, &cache_tag);
    fs_err::create_dir_all(map.parent().expect("map paths have a parent"))?;
    crate::atomic::write_new(&map, hash.to_hex().as_bytes(), 0o444)?;
    Ok((Some(hash), true))
}
