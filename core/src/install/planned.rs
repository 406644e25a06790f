//! Packages a mount serves before they are stored. Converting wheels (inflating, checking every
//! file against RECORD, hashing the package) is most of a cold mount; what a tree needs of a
//! package — its entries and where their bytes will lie — is known from the wheel's index alone.
//! So a mount checks each local wheel (sha256 against the lock, every check of
//! [`prepare_wheel`]), builds its tree from the layouts and mounts it, and its server stores the
//! packages afterwards ([`store_planned`]), reads of a package waiting until it is stored.
use std::path::{Path, PathBuf};

use super::fetch::{check_sha256, local_wheel, missing_from_read_only};
use super::{FetchStats, InstallError, Reporter, WheelSources, ensure_stored, store_wheel_bytes};
use crate::dpl::LockedPackage;
use crate::dxpkg::PackageLayout;
use crate::hash::ContentHash;
use crate::store::PackageStore;
use crate::wheel::{ConvertLimits, WheelInfo, prepare_wheel};

/// A locked package whose local wheel is checked and laid out, not stored yet.
#[derive(Debug, Clone)]
pub struct PlannedPackage {
    /// Its index in the lock's packages.
    pub index: usize,
    /// The wheel file the server stores it from.
    pub wheel: PathBuf,
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
    for (i, p) in packages.iter().enumerate() {
        let stored = p.store_hash.is_some_and(|h| store.contains(&h));
        if stored {
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
    let mut rest: Vec<LockedPackage> = Vec::new();
    let mut rest_index = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        if !planned.iter().any(|pl| pl.index == i) {
            rest.push(p.clone());
            rest_index.push(i);
        }
    }
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
    let (mut planned, _) = plan_bytes(&p.wheel.filename, &bytes, &p.wheel.sha256_hex(), wheel)?;
    planned.index = index;
    Ok(planned)
}

/// Checks the bytes of the wheel `filename` (at `wheel`, whose sha256 is `sha256`) and lays its
/// package out; the plan's `index` is left for the caller to set.
pub(crate) fn plan_bytes(
    filename: &str,
    bytes: &[u8],
    sha256: &str,
    wheel: &Path,
) -> Result<(PlannedPackage, WheelInfo), InstallError> {
    let prepared = prepare_wheel(filename, bytes, &ConvertLimits::default()).map_err(|source| {
        InstallError::Wheel {
            filename: filename.to_string(),
            source: Box::new(source),
        }
    })?;
    let planned = PlannedPackage {
        index: usize::MAX,
        wheel: wheel.to_path_buf(),
        key: planned_pack_key(sha256),
        layout: prepared.layout(),
        launchers: crate::scripts::launchers(&prepared.info.entry_points),
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
    let len = store.get(&hash)?.reader().bytes().len() as u64;
    if len != expected_len {
        return Err(InstallError::LayoutChanged {
            filename: locked.wheel.filename.clone(),
            laid_out: expected_len,
            stored: len,
        });
    }
    Ok(hash)
}
