//! Package store tests, one file per topic; here the package builders and tree walkers they share.

mod integrity;
mod properties;
mod storing;
// Thin objects are made on Unix only (a mapped file cannot be removed on Windows).
#[cfg(unix)]
mod thin;
mod unpacking;
#[cfg(unix)]
mod write_once;

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;
use super::{groups, sidecar, unpack};
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};

fn writer(name: &str, files: &BTreeMap<String, Vec<u8>>) -> DxpkgWriter {
    let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
    for (p, d) in files {
        w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.clone());
    }
    w
}

fn package(name: &str, files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    writer(name, files).finish().unwrap()
}

/// A store at `root` whose unpacked copies are kept elsewhere (as for a shared read-only store),
/// so that its objects stay full when they are unpacked.
#[cfg(unix)]
fn full_store(root: &std::path::Path) -> PackageStore {
    PackageStore::open(root).with_unpacked_root(root.join("own-unpacked"))
}

/// Names of `.tmp-*` entries anywhere under `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    walk_names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect()
}

fn arb_files() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    // Top-level names are prefixed so files never collide with directories of the same name.
    btree_map(
        "(d[a-z]{1,4}/){0,2}f[a-z]{1,6}\\.py",
        vec(any::<u8>(), 0..48),
        1..12,
    )
}

/// Up to `max` files (fewer than), from empty to several 16 KiB groups.
#[cfg(unix)]
fn arb_sized_files(max: usize) -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    btree_map(
        "(d[a-z]{1,3}/){0,2}f[a-z]{1,5}\\.py",
        (0usize..3, any::<u8>()).prop_flat_map(|(size_class, seed)| {
            let max = [64, 20_000, 70_000][size_class];
            (0..max).prop_map(move |n| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect())
        }),
        1..max,
    )
}

fn tree(root: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if std::fs::metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

fn walk_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_names(&e.path()));
        }
    }
    out
}

/// A package of several 16 KiB groups: `big.bin` (100 KiB), `a.py`, `z.bin` (40 KiB).
fn multi_group() -> Vec<u8> {
    let big: Vec<u8> = (0..100u32 << 10).map(|i| (i % 251) as u8).collect();
    let z: Vec<u8> = (0..40u32 << 10).map(|i| (i % 241) as u8).collect();
    package(
        "m",
        &BTreeMap::from([
            ("a.py".into(), b"A = 1\n".to_vec()),
            ("big.bin".into(), big),
            ("z.bin".into(), z),
        ]),
    )
}

#[cfg(unix)]
/// Flips one bit of byte `at` of the (read-only) file at `path`.
fn flip(path: &std::path::Path, at: u64) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

/// Where `path`'s bytes lie in the object `hash`.
fn offset_of(store: &PackageStore, hash: &ContentHash, path: &str) -> u64 {
    let p = store.get(hash).unwrap();
    p.get_file(path).unwrap().unwrap().data_offset + p.reader().data_offset()
}
