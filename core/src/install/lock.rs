//! Locking pinned requirements: one wheel per pin for the interpreter, verified and stored, and
//! a check that the set is closed under its dependencies.
use std::str::FromStr;

use pep508_rs::ExtraName;

use super::{InstallError, Reporter};
use crate::closure::{Dist, analyze};
use crate::dpl::{Lock, LockMeta, LockedPackage, LockedWheel};
use crate::hash::{ContentHash, sha256_hex};
use crate::index::{IndexClient, IndexFile, select_wheel};
use crate::names::normalize_name;
use crate::python::Interpreter;
use crate::requirements::{PinnedRequirement, Requirements};
use crate::store::PackageStore;
use crate::wheel::{WheelFilename, WheelMetadata};

/// What locking needs besides the requirements.
pub struct LockOptions<'a> {
    /// The interpreter the lock is for.
    pub interp: &'a Interpreter,
    /// Where wheels come from.
    pub client: &'a IndexClient,
    /// Where converted packages go.
    pub store: &'a PackageStore,
    /// Progress.
    pub reporter: &'a dyn Reporter,
    /// Run on each package right after it is stored (see [`super::AfterStore`]).
    pub after_store: Option<super::AfterStore<'a>>,
    /// When given, local wheels are checked and laid out into it instead of stored (a mount
    /// stores them after mounting; see [`super::PlannedPackage`]); their `store_hash` is `None`.
    pub planned: Option<&'a std::sync::Mutex<Vec<super::PlannedPackage>>>,
}

/// The hash a lock records of its inputs: the requirements and the interpreter they were locked
/// for. A lock whose recorded hash differs is stale.
pub fn inputs_hash(reqs: &Requirements, interp: &Interpreter) -> ContentHash {
    let mut h = blake3::Hasher::new();
    h.update(b"dx-py lock inputs v1\0");
    h.update(&reqs.inputs_hash());
    h.update(interp.tag().as_bytes());
    h.update(b"\0");
    h.update(interp.version().to_string().as_bytes());
    ContentHash::from_bytes(*h.finalize().as_bytes())
}

struct Locked {
    package: LockedPackage,
    /// The wheel's file name, for its typed name and version.
    filename: WheelFilename,
    metadata: WheelMetadata,
    extras: Vec<String>,
}

/// Locks `reqs` for `opts.interp`: picks, downloads, verifies and stores one wheel per pin
/// whose marker applies, and refuses a set that is not closed (every problem listed).
pub fn lock_requirements(
    reqs: &Requirements,
    opts: &LockOptions<'_>,
) -> Result<Lock, InstallError> {
    let env = opts.interp.marker_env();
    let pins = reqs
        .pinned()
        .map_err(|e| InstallError::NotPinned(Box::new(e)))?;
    let applicable: Vec<&PinnedRequirement> = pins
        .iter()
        .filter(|r| r.marker.as_ref().is_none_or(|m| m.evaluate(&env, &[])))
        .collect();
    let mut timer = super::report::PhaseTimer::start();
    let selected = crate::parallel::map_in_order(&applicable, 8, |req| select_one(req, opts))
        .into_iter()
        .collect::<Result<Vec<IndexFile>, InstallError>>()?;
    timer.report(opts.reporter, "index pages");
    let picks: Vec<(&PinnedRequirement, IndexFile)> =
        applicable.iter().copied().zip(selected).collect();
    let slots = crate::parallel::CpuSlots::per_core();
    let locked = crate::parallel::map_largest_first(
        &picks,
        8,
        |(_, file)| file.size.unwrap_or(0),
        |(req, file)| lock_one(req, file, opts, &slots),
    )
    .into_iter()
    .collect::<Result<Vec<Locked>, InstallError>>()?;
    // Downloads and conversions overlap (each wheel is stored as soon as it arrives): one
    // phase, its wall time.
    timer.report(opts.reporter, "download+store");

    let dists: Vec<Dist> = locked
        .iter()
        .map(|l| Dist {
            name: l.filename.name.clone(),
            version: l.filename.version.clone(),
            requires_dist: l.metadata.requires_dist.clone(),
            // Extras that are not PEP 685 names select nothing, as a marker cannot name them.
            extras: l
                .extras
                .iter()
                .filter_map(|e| ExtraName::from_str(e).ok())
                .collect(),
        })
        .collect();
    let closure = analyze(&dists, &env);
    if !closure.problems.is_empty() {
        return Err(InstallError::NotClosed(closure.problems));
    }
    let mut packages = Vec::with_capacity(locked.len());
    for Locked {
        mut package,
        filename,
        ..
    } in locked
    {
        if let Some(deps) = closure.dependencies.get(&filename.name) {
            package.dependencies = deps.iter().map(ToString::to_string).collect();
        }
        packages.push(package);
    }
    let mut lock = Lock {
        meta: LockMeta {
            environment: opts.interp.tag(),
            python_version: opts.interp.version().to_string(),
            requires_python: None,
            inputs_hash: inputs_hash(reqs, opts.interp),
        },
        packages,
    };
    lock.canonicalize();
    timer.report(opts.reporter, "closure");
    Ok(lock)
}

/// The wheel of `req` that suits the interpreter best.
fn select_one(req: &PinnedRequirement, opts: &LockOptions<'_>) -> Result<IndexFile, InstallError> {
    let index_err = |source| InstallError::Index {
        name: req.name.clone(),
        source: Box::new(source),
    };
    let files = opts.client.wheels(&req.normalized).map_err(index_err)?;
    let python_version = pep440_rs::Version::from_str(&opts.interp.version().to_string())
        .expect("x.y.z is a valid version");
    let selected = select_wheel(
        &files,
        &req.name,
        &req.version,
        |t| opts.interp.tag_priority(t),
        &python_version,
    )
    .map_err(|source| InstallError::Select {
        name: req.name.clone(),
        version: req.version.clone(),
        source: Box::new(source),
    })?;
    if selected.yanked {
        tracing::warn!(
            "{} {} is yanked; installing it because it is pinned",
            req.name,
            req.version
        );
    }
    Ok(selected.file)
}

/// Downloads, checks and stores the wheel `file` picked for `req`.
fn lock_one(
    req: &PinnedRequirement,
    file: &IndexFile,
    opts: &LockOptions<'_>,
    slots: &crate::parallel::CpuSlots,
) -> Result<Locked, InstallError> {
    let index_err = |source| InstallError::Index {
        name: req.name.clone(),
        source: Box::new(source),
    };
    opts.reporter.on_download_start(&req.name, file.size);
    let bytes = opts
        .client
        .download(&file.url, file.sha256.as_deref())
        .map_err(index_err)?;
    opts.reporter
        .on_download_done(&req.name, bytes.len() as u64);
    let actual = sha256_hex(&bytes);
    if !req.hashes.is_empty() && !req.hashes.contains(&actual) {
        return Err(InstallError::HashMismatch {
            name: req.name.clone(),
            filename: file.filename.clone(),
            expected: req.hashes.join(" or "),
            actual,
        });
    }
    let local = file.url.starts_with("file://");
    let known = opts.store.wheel_object(&actual, &file.filename);
    let (store_hash, converted) = match (known, opts.planned) {
        // Converted before: checked again (and read for its metadata), not converted again.
        (Some(hash), _) => {
            let info = slots.run(bytes.len() as u64, || {
                super::fetch::prepare_checked(&file.filename, &bytes).map(|p| p.info)
            })?;
            (Some(hash), info)
        }
        // A mount serves a local wheel from its layout and stores it after mounting.
        (None, Some(plans)) if local => {
            let plan = slots.run(bytes.len() as u64, || {
                super::planned::plan_bytes(&file.filename, &bytes, &actual)
            })?;
            let info = plan.1;
            plans.lock().unwrap_or_else(|e| e.into_inner()).push(plan.0);
            (None, info)
        }
        _ => {
            let (hash, info) = slots.run(bytes.len() as u64, || {
                let form = super::fetch::form_for(opts.after_store);
                let stored =
                    super::fetch::store_wheel_bytes_as(opts.store, &file.filename, &bytes, form)?;
                opts.store.record_wheel(&actual, &stored.0);
                opts.reporter.on_stored(&req.name);
                if let Some(after_store) = opts.after_store {
                    after_store(&stored.0);
                }
                Ok::<_, InstallError>(stored)
            })?;
            (Some(hash), info)
        }
    };

    // Checked with the wheel above; parsed again for its typed name and version.
    let parsed = WheelFilename::parse(&file.filename).map_err(|e| InstallError::Wheel {
        filename: file.filename.clone(),
        source: Box::new(e.into()),
    })?;
    let mut extras: Vec<String> = converted
        .metadata
        .provides_extra
        .iter()
        .map(|e| normalize_name(e))
        .collect();
    extras.dedup();
    extras.truncate(64);
    let mut extras_bitmap = 0u64;
    for wanted in &req.extras {
        if let Some(i) = extras.iter().position(|e| *e == normalize_name(wanted)) {
            extras_bitmap |= 1 << i;
        }
    }
    let (url, path) = match file.url.strip_prefix("file://") {
        Some(_) => {
            let p = url::Url::parse(&file.url)
                .ok()
                .and_then(|u| u.to_file_path().ok());
            (None, p.map(|p| p.to_string_lossy().into_owned()))
        }
        None => (Some(file.url.clone()), None),
    };
    let mut sha256 = [0u8; 32];
    data_encoding::HEXLOWER
        .decode_mut(actual.as_bytes(), &mut sha256)
        .expect("64 hex digits");
    Ok(Locked {
        package: LockedPackage {
            name: converted.name.clone(),
            version: converted.version.clone(),
            marker: req.marker_string(),
            requires_python: converted.metadata.requires_python.clone(),
            index_url: None,
            extras,
            extras_bitmap,
            wheel: LockedWheel {
                filename: file.filename.clone(),
                url,
                path,
                sha256,
                size: Some(bytes.len() as u64),
            },
            sdist: None,
            local: None,
            store_hash,
            dependencies: Vec::new(),
        },
        filename: parsed,
        metadata: converted.metadata,
        extras: req.extras.clone(),
    })
}
