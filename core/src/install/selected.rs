//! The lock of one interpreter, chosen from a universal `dx-py.dpl` (DPL version 2) by lookup,
//! not resolution, and kept in the cache so that the next install of the same lock on the same
//! interpreter only reads it back.
//!
//! ```text
//! {cache}/selected/{blake3(lock key, environment key)}.dpl   a DPL version 1, written atomically
//! ```
//!
//! The lock key is the blake3 of the version 2 file's header, which holds the blake3 of the rest
//! (checked whenever a selection is made), so it names the file's exact content in O(1). The
//! environment key is a blake3 of everything in the interpreter's description that decides the
//! choice: marker values and what its wheel tags are made of. Choosing evaluates each distinct
//! marker of the lock once, checks `requires-python`, and ranks each chosen entry's wheels by the
//! interpreter's tag priority: work linear in the lock's size, with no index and no solver.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::MarkerTree;

use super::InstallError;
use crate::build::LocalMode;
use crate::dpl::{
    DplFileError, DplReader, LocalSource, Lock, LockMeta, LockedPackage, LockedWheel,
    UniversalDplEntry, UniversalDplReader, format_version,
};
use crate::hash::ContentHash;
use crate::names::normalize_name;
use crate::python::Interpreter;
use crate::wheel::WheelFilename;

/// The lock file a project directory holds.
const DPL: &str = "dx-py.dpl";

/// Why a universal lock gives no lock for the interpreter.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    /// The file is unreadable or not a valid DPL.
    #[error(transparent)]
    File(#[from] DplFileError),
    /// The lock's `requires-python` excludes the interpreter.
    #[error(
        "`{}` requires Python {requires}, but the interpreter is {version}; use another interpreter (`--python`) or re-lock",
        path.display()
    )]
    RequiresPython {
        /// The lock file.
        path: PathBuf,
        /// The lock's `requires-python`.
        requires: String,
        /// The interpreter's version.
        version: String,
    },
    /// A marker of the lock does not parse.
    #[error("Invalid marker `{marker}` in `{}`: {reason}; re-create the lock with `dx-py lock`", path.display())]
    Marker {
        /// The lock file.
        path: PathBuf,
        /// The marker as written.
        marker: String,
        /// The parser's message.
        reason: String,
    },
    /// Two entries of one package hold for the interpreter.
    #[error(
        "`{}` gives this interpreter ({environment}) two versions of `{package}`, {versions}: their markers overlap; re-create the lock with `dx-py lock`",
        path.display()
    )]
    Overlapping {
        /// The lock file.
        path: PathBuf,
        /// The package.
        package: String,
        /// The two versions, `A and B` (one string: the error stays small).
        versions: String,
        /// The interpreter's tag.
        environment: String,
    },
    /// None of a package's wheels fits the interpreter.
    #[error(
        "No wheel of `{package}` {version} in `{}` fits this interpreter ({environment}): it lists {count}; re-lock for this interpreter",
        path.display()
    )]
    NoFittingWheel {
        /// The lock file.
        path: PathBuf,
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// How many wheels it lists.
        count: usize,
        /// The interpreter's tag.
        environment: String,
    },
    /// A package the interpreter needs has wheels for other environments only (and an sdist,
    /// which is built only for versions that have no wheel at all).
    #[error(
        "`{package}` {version} in `{}` has no wheel for this interpreter ({environment}), only wheels for other environments and a source distribution (sdists are built for versions without any wheel)",
        path.display()
    )]
    SdistOnly {
        /// The lock file.
        path: PathBuf,
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The interpreter's tag.
        environment: String,
    },
    /// The selection could not be kept in the cache.
    #[error("Failed to write the lock chosen for this interpreter to `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// The DPL version 1 lock to install for `interp` from the lock in `dir` (`dir/dx-py.dpl`):
/// that file when it is already one interpreter's lock, else the selection from the universal
/// lock, made once per lock and interpreter and kept under `cache_dir`.
pub fn selected_lock(
    dir: &Path,
    interp: &Interpreter,
    cache_dir: &Path,
) -> Result<PathBuf, InstallError> {
    selected_lock_at(&dir.join(DPL), interp, cache_dir)
}

/// [`selected_lock`] for a lock file of any name.
pub fn selected_lock_at(
    path: &Path,
    interp: &Interpreter,
    cache_dir: &Path,
) -> Result<PathBuf, InstallError> {
    let map = crate::sys::map_immutable(path).map_err(|source| DplFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |source| DplFileError::Invalid {
        path: path.to_path_buf(),
        source,
    };
    if format_version(&map).map_err(invalid)? != 2 {
        return Ok(path.to_path_buf());
    }
    let reader = UniversalDplReader::from_bytes(map).map_err(invalid)?;
    // Local files are named relative to the lock, and the selection lives in the cache: it is
    // written with them anchored at the lock's directory, which is therefore part of its key.
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut located = reader.key().to_hex().into_bytes();
    located.push(0);
    located.extend_from_slice(base.as_os_str().as_encoded_bytes());
    // A directory installed built (not editable) is a copy of its files: the selection, into
    // which an install records the stored package, is kept per state of those files. (A lock
    // without one says so in its header: no walk.)
    if reader.has_built_directories() {
        for entry in reader.entries() {
            let entry = entry.map_err(invalid)?;
            if let Some((dir, false)) = entry.directory() {
                let state = crate::build::source_fingerprint(&base.join(dir), LocalMode::Wheel)
                    .unwrap_or_default();
                located.push(0);
                located.extend_from_slice(state.as_bytes());
            }
        }
    }
    let dir = crate::cache::Cache::new(cache_dir, None).selected_dir();
    let kept = dir.join(format!(
        "{}.dpl",
        selection_key(&ContentHash::of(&located), interp).to_hex()
    ));
    // The warm path: a selection made before, still intact (O(1) header check).
    if DplReader::open(&kept).is_ok() {
        return Ok(kept);
    }
    let mut lock = select_for(&reader, path, interp)?;
    for p in &mut lock.packages {
        let sdist = p.sdist.as_mut().and_then(|s| s.path.as_mut());
        let directory = match &mut p.local {
            Some(LocalSource::Directory { path, .. }) => Some(path),
            _ => None,
        };
        for local in p
            .wheel
            .path
            .as_mut()
            .into_iter()
            .chain(sdist)
            .chain(directory)
        {
            *local = base.join(&*local).to_string_lossy().into_owned();
        }
    }
    let bytes = lock.dpl_bytes()?;
    let write = |source| SelectionError::Write {
        path: kept.clone(),
        source,
    };
    fs_err::create_dir_all(&dir).map_err(write)?;
    crate::atomic::replace(&kept, &bytes).map_err(write)?;
    Ok(kept)
}

/// The key of a selection: the lock's key and what, in the interpreter's description, decides
/// which entries hold and which wheels fit (not where the interpreter is: a venv's interpreter
/// chooses as its base does).
pub fn selection_key(lock_key: &ContentHash, interp: &Interpreter) -> ContentHash {
    let i = interp.info();
    let decides = serde_json::json!([
        lock_key.to_hex(),
        interp.tag(),
        i.version,
        i.implementation,
        i.sysconfig_platform,
        i.libc,
        i.markers,
        i.pointer_bits,
        i.abiflags,
        i.gil_disabled,
        i.py_debug,
        i.pymalloc,
        i.ext_suffix,
        i.py_version_nodot,
    ]);
    ContentHash::of(decides.to_string().as_bytes())
}

/// The interpreter's priority for each wheel's tags, worked out once per distinct tag triple: a
/// universal lock repeats a few dozen triples over thousands of wheels.
struct TagRanks<'a, 'i> {
    interp: &'i Interpreter,
    known: HashMap<&'a str, Option<usize>>,
}

impl<'a> TagRanks<'a, '_> {
    /// The priority of the wheel `filename` (lower is better), `None` when it does not fit.
    fn of(&mut self, filename: &'a str) -> Option<usize> {
        // `{name}-{version}[-{build}]-{python}-{abi}-{platform}.whl`: the last three parts alone
        // decide the tags.
        let stem = filename.strip_suffix(".whl")?;
        let cut = stem.rmatch_indices('-').nth(2)?.0;
        let interp = self.interp;
        *self.known.entry(&stem[cut + 1..]).or_insert_with(|| {
            let parsed = WheelFilename::parse(filename).ok()?;
            interp.tag_priority(&parsed.tags)
        })
    }
}

/// True unless `requires` (a `requires-python`) and `version` both parse and the version is
/// outside: a lock whose `requires-python` this build cannot read is not refused for it.
pub(crate) fn admits(requires: &str, version: &str) -> bool {
    pep440_rs::VersionSpecifiers::from_str(requires)
        .ok()
        .zip(pep440_rs::Version::from_str(version).ok())
        .is_none_or(|(spec, v)| spec.contains(&v))
}

/// Chooses from the universal lock `reader` (read from `path`) the entries whose markers hold
/// for `interp` and the best wheel of each: the lock to install on it.
pub fn select_for<B: AsRef<[u8]>>(
    reader: &UniversalDplReader<B>,
    path: &Path,
    interp: &Interpreter,
) -> Result<Lock, SelectionError> {
    let invalid = |source| DplFileError::Invalid {
        path: path.to_path_buf(),
        source,
    };
    // Every entry is read below; the body hash makes damage an error rather than a wrong choice.
    reader.verify().map_err(invalid)?;
    let requires_python = reader
        .requires_python()
        .map_err(invalid)?
        .map(str::to_owned);
    let version = interp.version().to_string();
    // Checked first: a lock for other Pythons has no wheel for this one either, and saying which
    // Pythons it is for is the clearer message.
    if let Some(requires) = &requires_python
        && !admits(requires, &version)
    {
        return Err(SelectionError::RequiresPython {
            path: path.to_path_buf(),
            requires: requires.clone(),
            version,
        });
    }
    let env = interp.marker_env();
    let tag = interp.tag();
    // Each distinct marker once.
    let mut holds = Vec::with_capacity(reader.marker_count());
    for m in 0..reader.marker_count() {
        let text = reader.marker(m as u32).map_err(invalid)?;
        let tree = MarkerTree::from_str(text).map_err(|e| SelectionError::Marker {
            path: path.to_path_buf(),
            marker: text.to_owned(),
            reason: e.to_string(),
        })?;
        holds.push(tree.evaluate(&env, &[]));
    }
    let mut ranks = TagRanks {
        interp,
        known: HashMap::new(),
    };
    let mut chosen: Vec<Option<usize>> = vec![None; reader.len()];
    let mut packages: Vec<LockedPackage> = Vec::new();
    for entry in reader.entries() {
        let entry = entry.map_err(invalid)?;
        if !entry.marker_index().is_none_or(|m| holds[m as usize]) {
            continue;
        }
        // Entries are sorted by name, so another version of this package is the one just kept.
        if let Some(last) = packages.last()
            && normalize_name(&last.name) == normalize_name(entry.name())
        {
            return Err(SelectionError::Overlapping {
                path: path.to_path_buf(),
                package: entry.name().to_owned(),
                versions: format!("{} and {}", last.version, entry.version()),
                environment: tag,
            });
        }
        if let Some((dir, editable)) = entry.directory() {
            chosen[entry.index() as usize] = Some(packages.len());
            let local = LocalSource::Directory {
                path: dir.to_owned(),
                editable,
            };
            packages.push(
                chosen_package(reader, &entry, stand_in(&entry, [0; 32]), None, Some(local))
                    .map_err(invalid)?,
            );
            continue;
        }
        let best = entry
            .wheels()
            .enumerate()
            .filter_map(|(i, w)| Some((ranks.of(w.filename)?, i)))
            .min()
            .and_then(|(_, i)| entry.wheels().nth(i));
        // A version with no wheel at all is built from its sdist at install time, as a
        // pylock.toml entry with only an sdist is (`read_pylock_for`).
        let sdist = match (best, entry.sdist()) {
            (None, Some(sdist)) if entry.wheel_count() == 0 => Some(sdist.to_owned()),
            _ => None,
        };
        let wheel = match (&sdist, best) {
            (Some(sdist), _) => Some(stand_in(&entry, sdist.sha256)),
            (None, best) => best.map(|w| w.to_owned()),
        };
        let Some(wheel) = wheel else {
            let (package, version) = (entry.name().to_owned(), entry.version().to_owned());
            return Err(match entry.sdist() {
                Some(_) => SelectionError::SdistOnly {
                    path: path.to_path_buf(),
                    package,
                    version,
                    environment: tag,
                },
                None => SelectionError::NoFittingWheel {
                    path: path.to_path_buf(),
                    package,
                    version,
                    count: entry.wheel_count(),
                    environment: tag,
                },
            });
        };
        chosen[entry.index() as usize] = Some(packages.len());
        let local = entry.is_archive().then_some(LocalSource::Archive);
        packages.push(chosen_package(reader, &entry, wheel, sdist, local).map_err(invalid)?);
    }
    // Dependencies on entries that hold here; one on an entry for other environments is dropped.
    for entry in reader.entries() {
        let entry = entry.map_err(invalid)?;
        let Some(at) = chosen[entry.index() as usize] else {
            continue;
        };
        let deps: Vec<String> = entry
            .dependencies()
            .filter_map(|d| chosen[d as usize])
            .map(|p| normalize_name(&packages[p].name))
            .collect();
        packages[at].dependencies = deps;
    }
    Ok(Lock {
        meta: LockMeta {
            environment: tag,
            python_version: version,
            requires_python,
            inputs_hash: reader.inputs_hash(),
        },
        packages,
    })
}

/// The wheel a package built at install stands for: its name and version (what the store's
/// records are checked against), `sha256` the source's (zero for a tree).
fn stand_in(entry: &UniversalDplEntry<'_>, sha256: [u8; 32]) -> LockedWheel {
    LockedWheel {
        filename: format!(
            "{}-{}-py3-none-any.whl",
            normalize_name(entry.name()).replace('-', "_"),
            entry.version()
        ),
        url: None,
        path: None,
        sha256,
        size: None,
    }
}

/// The one-interpreter entry of `entry` installed as `wheel` (built from `sdist` or `local`
/// when given); dependencies are filled in afterwards.
fn chosen_package<B: AsRef<[u8]>>(
    reader: &UniversalDplReader<B>,
    entry: &UniversalDplEntry<'_>,
    wheel: LockedWheel,
    sdist: Option<LockedWheel>,
    local: Option<LocalSource>,
) -> Result<LockedPackage, crate::dpl::DplError> {
    Ok(LockedPackage {
        name: entry.name().to_owned(),
        version: entry.version().to_owned(),
        marker: match entry.marker_index() {
            Some(m) => Some(reader.marker(m)?.to_owned()),
            None => None,
        },
        requires_python: entry.requires_python().map(str::to_owned),
        index_url: entry.index_url().map(str::to_owned),
        extras: Vec::new(),
        extras_bitmap: 0,
        wheel,
        sdist,
        local,
        store_hash: None,
        dependencies: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
