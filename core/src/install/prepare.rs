//! Bringing a lock's packages, and their bytecode for one interpreter, into the store: the
//! part of a cold install that layouts and mounts share.
use std::path::{Path, PathBuf};

use super::report::PhaseTimer;
use super::{
    AfterStore, BytecodeBatch, InstallError, InstallReport, Reporter, ensure_stored, existing_packs,
};
use crate::build::Builder;
use crate::dpl::{DplReader, Lock};
use crate::hash::ContentHash;
use crate::index::IndexClient;
use crate::python::Interpreter;
use crate::store::PackageStore;

/// Where wheels missing from the store come from.
#[derive(Clone, Copy)]
pub struct WheelSources<'a> {
    /// The index client, if any source is configured.
    pub client: Option<&'a IndexClient>,
    /// Find-links directories searched by wheel file name.
    pub find_links: &'a [PathBuf],
    /// The lock file's directory (lock paths are relative to it).
    pub lock_dir: &'a Path,
    /// Builds the packages locked as sdists that the store lacks (`None`: they are an error).
    pub builder: Option<&'a Builder<'a>>,
}

/// One locked package, in the store.
#[derive(Debug, Clone)]
pub struct PreparedPackage {
    /// Distribution name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Its store object.
    pub hash: ContentHash,
    /// The sha256 of its wheel, as the lock names it (the store's record of that wheel names
    /// `hash`).
    pub wheel_sha256: [u8; 32],
    /// Its bytecode pack for the interpreter, when compiled.
    pub bytecode: Option<ContentHash>,
}

/// What [`prepare_packages`] does besides storing.
#[derive(Clone, Copy, Default)]
pub struct PrepareOptions<'a> {
    /// Compile bytecode packs for the interpreter.
    pub compile: bool,
    /// Run on each object stored now (packages, then bytecode packs), on the thread that
    /// stored it.
    pub after_store: Option<AfterStore<'a>>,
}

/// Stores every package of `dpl` that the store lacks and compiles missing bytecode packs, as
/// `options` ask. Returns the packages and, when the lock lacked store hashes or recorded stale
/// ones, the corrected lock.
pub fn prepare_packages<B: AsRef<[u8]>>(
    dpl: &DplReader<B>,
    interp: &Interpreter,
    store: &PackageStore,
    sources: &WheelSources<'_>,
    options: PrepareOptions<'_>,
    reporter: &dyn Reporter,
    report: &mut InstallReport,
) -> Result<(Vec<PreparedPackage>, Option<Lock>), InstallError> {
    let mut timer = PhaseTimer::start();
    let mut lock = dpl.to_lock()?;
    let before: Vec<_> = lock.packages.iter().map(|p| p.store_hash).collect();
    // Packages stored now are compiled as they arrive, while later wheels are converted.
    let batch = match options.compile {
        true => BytecodeBatch::start(store, interp)?,
        false => None,
    };
    let stored = |hash: &ContentHash| {
        if let Some(batch) = &batch {
            batch.add(hash);
        }
        if let Some(after_store) = options.after_store {
            after_store(hash);
        }
    };
    let stats = ensure_stored(&mut lock.packages, store, sources, Some(&stored), reporter)?;
    report.store_hits = stats.hits;
    report.store_misses = stats.misses;
    report.downloads = stats.downloads;
    timer.mark(report, "fetch");

    let hashes: Vec<ContentHash> = lock
        .packages
        .iter()
        .map(|p| p.store_hash.expect("ensure_stored filled every store hash"))
        .collect();
    // Packages stored now were queued for compilation as they were stored (and unpacked, when
    // `after_store` does): compilation overlaps the rest of the conversion. Bytecode packs are
    // unpacked as they are stored, after compilation.
    let packs = finish_bytecode(
        batch,
        options.compile,
        store,
        interp,
        &hashes,
        options.after_store,
    )?;
    report.compiled += packs.iter().filter(|(_, compiled)| *compiled).count();
    let packs = packs.into_iter().map(|(pack, _)| pack).collect();
    let packages = prepared_packages(&lock, hashes, packs);
    timer.mark(report, "bytecode");
    let changed = lock.packages.iter().map(|p| p.store_hash).ne(before);
    Ok((packages, changed.then_some(lock)))
}

/// The bytecode packs of the packages `hashes`, each with whether it was compiled now: what
/// `batch` (compiling since the packages were stored) finishes, else, with `compile`, the packs
/// the store has already; none without.
pub fn finish_bytecode(
    batch: Option<BytecodeBatch<'_>>,
    compile: bool,
    store: &PackageStore,
    interp: &Interpreter,
    hashes: &[ContentHash],
    after_store: Option<AfterStore<'_>>,
) -> Result<Vec<(Option<ContentHash>, bool)>, InstallError> {
    Ok(match batch {
        Some(batch) => batch.finish_for(hashes, after_store)?,
        None if compile => existing_packs(store, interp, hashes),
        None => vec![(None, false); hashes.len()],
    })
}

/// The packages of `lock` as prepared: package `i` is the store object `hashes[i]` with the
/// bytecode pack `bytecode[i]` (a layout is built from them, a mount's tree serves them).
pub fn prepared_packages(
    lock: &Lock,
    hashes: Vec<ContentHash>,
    bytecode: Vec<Option<ContentHash>>,
) -> Vec<PreparedPackage> {
    lock.packages
        .iter()
        .zip(hashes)
        .zip(bytecode)
        .map(|((p, hash), bytecode)| PreparedPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            hash,
            wheel_sha256: p.wheel.sha256,
            bytecode,
        })
        .collect()
}
