//! Packages a mount serves before they are stored. Converting wheels (inflating, checking every
//! file against RECORD, hashing the package) is most of a cold mount; what a tree needs of a
//! package — its entries and where their bytes will lie — is known from the wheel's index alone.
//! So a mount checks each local wheel (sha256 against the lock, every check of
//! [`prepare_wheel`]), builds its tree from the layouts and mounts it, and its server stores the
//! packages afterwards ([`store_planned`]), reads of a package waiting until it is stored.
use std::path::Path;

use super::fetch::{check_sha256, local_wheel, missing_from_read_only, prepare_checked};
use super::{FetchStats, InstallError, Reporter, WheelSources, ensure_stored, store_wheel_bytes};
use crate::dpl::LockedPackage;
use crate::dxpkg::{PackageLayout, Scheme};
use crate::hash::ContentHash;
use crate::store::PackageStore;
use crate::wheel::WheelInfo;

/// A locked package whose local wheel is checked and laid out, not stored yet.
#[derive(Debug, Clone)]
pub struct PlannedPackage {
    /// Its index in the lock's packages.
    pub index: usize,
    /// The key its pack carries in a tree built before it is stored ([`planned_pack_key`]).
    pub key: ContentHash,
    /// Its entries, and where their bytes will lie in the stored object.
    pub layout: PackageLayout,
    /// Its console and GUI script launchers, as `(file name in bin/, bytes)`.
    pub launchers: Vec<(String, Vec<u8>)>,
}

/// The pack key of a package not stored yet, from its wheel's sha256 (hex): the mount and the
/// server that stores the package derive the same one. No store object has it (a store name
/// is the blake3 of a package; this hashes a domain-separated string).
pub fn planned_pack_key(wheel_sha256: &str) -> ContentHash {
    let mut h = blake3::Hasher::new();
    h.update(b"dx-py planned pack\0");
    h.update(wheel_sha256.as_bytes());
    ContentHash::from_bytes(*h.finalize().as_bytes())
}

/// Makes every package of `packages` available to a mount: in the store already, stored now
/// (downloads), or — a local wheel — checked and laid out for the server to store after
/// mounting. `store_hash` is filled for the stored ones; the planned ones are returned.
/// `known` are plans made while locking ([`super::LockOptions::planned`]), used again rather
/// than made twice.
pub fn ensure_stored_or_planned(
    packages: &mut [LockedPackage],
    store: &PackageStore,
    sources: &WheelSources<'_>,
    reporter: &dyn Reporter,
    mut known: Vec<PlannedPackage>,
) -> Result<(FetchStats, Vec<PlannedPackage>), InstallError> {
    let mut local = Vec::new();
    let mut reused = Vec::new();
    for (i, p) in packages.iter_mut().enumerate() {
        // Converted before (by this or another lock): nothing to lay out.
        if let Some(h) = super::fetch::recorded_object(p, store, sources) {
            p.store_hash = Some(h);
            continue;
        }
        let key = planned_pack_key(&p.wheel.sha256_hex());
        if let Some(at) = known.iter().position(|k| k.key == key) {
            let mut plan = known.swap_remove(at);
            plan.index = i;
            reused.push(plan);
        } else if let Some(wheel) = local_wheel(p, sources) {
            local.push((i, wheel));
        }
    }
    let first = local
        .first()
        .map(|(i, _)| *i)
        .or(reused.first().map(|p| p.index));
    if let Some(first) = first
        && !store.is_writable()
    {
        return Err(missing_from_read_only(store, &packages[first]));
    }
    let shared: &[LockedPackage] = packages;
    let slots = crate::parallel::CpuSlots::per_core();
    let planned = crate::parallel::map_largest_first(
        &local,
        8,
        |(i, _)| shared[*i].wheel.size.unwrap_or(0),
        |(i, wheel)| {
            let size = shared[*i].wheel.size.unwrap_or(0);
            slots.run(size, || plan(*i, &shared[*i], wheel))
        },
    )
    .into_iter()
    .chain(reused.into_iter().map(Ok))
    .collect::<Result<Vec<_>, _>>()?;
    // The rest (downloads) is stored now; the planned ones are left out of it.
    let planned_at: std::collections::HashSet<usize> = planned.iter().map(|p| p.index).collect();
    let rest_index: Vec<usize> = (0..packages.len())
        .filter(|i| !planned_at.contains(i))
        .collect();
    let mut rest: Vec<LockedPackage> = rest_index.iter().map(|&i| packages[i].clone()).collect();
    let stats = ensure_stored(&mut rest, store, sources, None, reporter)?;
    for (p, i) in rest.into_iter().zip(rest_index) {
        packages[i].store_hash = p.store_hash;
    }
    Ok((stats, planned))
}

/// Checks the local wheel of `p` and lays its package out.
fn plan(index: usize, p: &LockedPackage, wheel: &Path) -> Result<PlannedPackage, InstallError> {
    let bytes = fs_err::read(wheel)?;
    check_sha256(p, &bytes)?;
    let (mut planned, _) = plan_bytes(&p.wheel.filename, &bytes, &p.wheel.sha256_hex())?;
    planned.index = index;
    Ok(planned)
}

/// Checks the bytes of the wheel `filename` (whose sha256 is `sha256`) and lays its package out;
/// the plan's `index` is left for the caller to set.
pub(crate) fn plan_bytes(
    filename: &str,
    bytes: &[u8],
    sha256: &str,
) -> Result<(PlannedPackage, WheelInfo), InstallError> {
    let prepared = prepare_checked(filename, bytes)?;
    // From the installed `entry_points.txt`, as a tree of the stored package has them.
    let entry_points = format!("{}/entry_points.txt", prepared.info.dist_info);
    let launchers = prepared
        .inline(Scheme::SitePackages, &entry_points)
        .map(crate::scripts::launchers_from)
        .unwrap_or_default();
    let planned = PlannedPackage {
        index: usize::MAX,
        key: planned_pack_key(sha256),
        layout: prepared.layout(),
        launchers,
    };
    Ok((planned, prepared.info))
}

/// Stores the planned package `p` (locked as `locked`) from its wheel, checked again (the file
/// may have changed since it was planned); returns its store object, whose layout must be the
/// planned one.
pub fn store_planned(
    store: &PackageStore,
    locked: &LockedPackage,
    wheel: &Path,
    expected_len: u64,
) -> Result<ContentHash, InstallError> {
    let bytes = fs_err::read(wheel)?;
    check_sha256(locked, &bytes)?;
    let (hash, _) = store_wheel_bytes(store, &locked.wheel.filename, &bytes)?;
    store.record_wheel(&locked.wheel.sha256_hex(), &hash);
    let len = store.get(&hash)?.object_len();
    if len != expected_len {
        return Err(InstallError::LayoutChanged {
            filename: locked.wheel.filename.clone(),
            laid_out: expected_len,
            stored: len,
        });
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::collection::btree_map;
    use proptest::prelude::*;

    use super::*;
    use crate::hash::sha256_hex;
    use crate::tree::{PackPlacement, Tree, TreeSpec};
    use crate::wheel::testing::WheelBuilder;

    /// A wheel with every kind of entry a tree treats specially: package files, an executable,
    /// a link, `#!python` and other scripts under `.data/scripts`, headers, data files, console
    /// and GUI scripts.
    fn arb_wheel() -> impl Strategy<Value = WheelBuilder> {
        let files = btree_map("[a-z]{1,5}(/[a-z]{1,5}){0,2}\\.py", "[ -~]{0,40}", 1..6);
        let scripts = btree_map("[a-z]{1,6}", (any::<bool>(), "[ -~]{0,20}"), 0..3);
        (files, scripts, any::<bool>(), any::<bool>()).prop_map(|(files, scripts, link, points)| {
            let mut w = WheelBuilder::new("demo", "1.0");
            for (path, text) in &files {
                w = w.file(&format!("demo/{path}"), text.as_bytes());
            }
            w = w.executable("demo/run.sh", b"#!/bin/sh\necho\n");
            if link {
                w = w.symlink("demo/alias.py", "run.sh");
            }
            for (name, (python, body)) in &scripts {
                let shebang = if *python { "#!python" } else { "#!/bin/sh" };
                w = w.data_file("scripts", name, format!("{shebang}\n{body}\n").as_bytes());
            }
            w = w.data_file("headers", "demo.h", b"int x;\n");
            w = w.data_file("data", "share/demo/readme.txt", b"hello\n");
            if points {
                w = w
                    .console_script("demo-cli", "demo.cli:main")
                    .gui_script("demo-gui", "demo:gui");
            }
            w
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The tree built from a wheel's layout before it is stored is the tree built from the
        /// stored package, byte for byte but for the pack's key, and names the same launchers.
        #[test]
        fn a_planned_tree_is_the_stored_tree(w in arb_wheel()) {
            let dir = tempfile::tempdir().unwrap();
            let store = PackageStore::open(dir.path());
            let (bytes, filename) = (w.build(), w.filename());
            let sha256 = sha256_hex(&bytes);
            let (plan, _) = plan_bytes(&filename, &bytes, &sha256).unwrap();
            let (stored, _) = store_wheel_bytes(&store, &filename, &bytes).unwrap();
            let spec = |hash| TreeSpec {
                packs: vec![(hash, PackPlacement::venv(&crate::python::VenvShape::posix(3, 12), "demo"))],
                files: vec![],
                symlinks: vec![],
            };
            let planned_tree = spec(plan.key)
                .build_with(&store, &HashMap::from([(plan.key, &plan.layout)]))
                .unwrap();
            let stored_tree = spec(stored).build(&store).unwrap();
            let (a, b) = (Tree::new(&planned_tree[..]).unwrap(), Tree::new(&stored_tree[..]).unwrap());
            prop_assert_eq!(a.pack(0).unwrap().hash, plan.key);
            prop_assert_eq!(a.pack(0).unwrap().size, b.pack(0).unwrap().size);
            prop_assert_eq!(a.len(), b.len());
            for ino in 1..=u64::from(a.len()) {
                let (x, y) = (a.node(ino).unwrap(), b.node(ino).unwrap());
                prop_assert_eq!((x.name, x.kind, x.mode, x.size, x.source), (y.name, y.kind, y.mode, y.size, y.source));
                prop_assert_eq!(a.inline_data(&x).unwrap(), b.inline_data(&y).unwrap());
            }
            let mapped = store.get(&stored).unwrap();
            prop_assert_eq!(plan.launchers, mapped.launchers().unwrap());
        }
    }
}
