//! Reading: the PEP 751 keys dx-py uses, as derived serde structs, then checked into a [`Lock`].
//!
//! Every key is `Option<Field<T>>`: absent, of its type, or of another type. Deserializing so
//! never fails on a well-formed TOML file, and the checks that follow name the table and the
//! key of the first problem (`Missing`, `WrongType`) as the variants of [`PylockError`] say,
//! instead of the deserializer's message. Keys not listed are ignored, as PEP 751 asks of
//! readers (other tools' tables, `sdist`, `upload-time`, …).
use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{PylockError, PylockSelector};
use crate::dpl::model::{LocalSource, Lock, LockMeta, LockedPackage, LockedWheel};
use crate::hash::ContentHash;
use crate::names::normalize_name;

/// A key's value: of the expected type, or of some other type (reported with the key's name).
#[derive(Deserialize)]
#[serde(untagged)]
enum Field<T> {
    Ok(T),
    Wrong(IgnoredAny),
}

/// An optional key of type `T`, described as `expected` in errors.
fn opt<T>(
    field: Option<Field<T>>,
    at: &str,
    key: &'static str,
    expected: &'static str,
) -> Result<Option<T>, PylockError> {
    match field {
        None => Ok(None),
        Some(Field::Ok(v)) => Ok(Some(v)),
        Some(Field::Wrong(_)) => Err(PylockError::WrongType {
            at: at.to_string(),
            key,
            expected,
        }),
    }
}

/// A required key of type `T`.
fn req<T>(
    field: Option<Field<T>>,
    at: &str,
    key: &'static str,
    expected: &'static str,
) -> Result<T, PylockError> {
    opt(field, at, key, expected)?.ok_or_else(|| PylockError::Missing {
        at: at.to_string(),
        key,
    })
}

fn opt_str(field: Option<Field<String>>, at: &str, key: &'static str) -> OptStr {
    opt(field, at, key, "a string")
}

type OptStr = Result<Option<String>, PylockError>;

fn opt_strings(
    field: Option<Field<Vec<String>>>,
    at: &str,
    key: &'static str,
) -> Result<Vec<String>, PylockError> {
    Ok(opt(field, at, key, "an array of strings")?.unwrap_or_default())
}

/// An optional 64-hex-digit hash (either case).
fn opt_hash(
    field: Option<Field<String>>,
    at: &str,
    key: &'static str,
) -> Result<Option<[u8; 32]>, PylockError> {
    let Some(s) = opt_str(field, at, key)? else {
        return Ok(None);
    };
    s.to_ascii_lowercase()
        .parse::<ContentHash>()
        .map(|h| Some(*h.as_bytes()))
        .map_err(|_| PylockError::InvalidHash {
            at: at.to_string(),
            what: key,
            value: s,
        })
}

const TABLES: &str = "an array of tables";

/// `[tool]`, of the file or of a package: only dx-py's own table is read.
#[derive(Deserialize)]
struct Tool<T> {
    #[serde(rename = "dx-py")]
    dx_py: Option<Field<T>>,
}

/// A whole pylock.toml as read, before any check.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawLock {
    lock_version: Option<Field<String>>,
    requires_python: Option<Field<String>>,
    packages: Option<Field<Vec<RawPackage>>>,
    tool: Option<Field<Tool<RawLockTool>>>,
}

/// `[tool.dx-py]`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLockTool {
    environment: Option<Field<String>>,
    python_version: Option<Field<String>>,
    inputs_hash: Option<Field<String>>,
}

/// One `[[packages]]` entry.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPackage {
    name: Option<Field<String>>,
    version: Option<Field<String>>,
    marker: Option<Field<String>>,
    requires_python: Option<Field<String>>,
    index: Option<Field<String>>,
    dependencies: Option<Field<Vec<RawDependency>>>,
    sdist: Option<Field<RawWheel>>,
    wheels: Option<Field<Vec<RawWheel>>>,
    directory: Option<Field<RawDirectory>>,
    archive: Option<Field<RawWheel>>,
    tool: Option<Field<Tool<RawPackageTool>>>,
}

/// The version of a directory entry that names none.
pub const UNKNOWN_VERSION: &str = "0";

/// `[packages.directory]`: a local project tree.
#[derive(Deserialize)]
struct RawDirectory {
    path: Option<Field<String>>,
    editable: Option<Field<bool>>,
}

/// One `packages.dependencies` reference.
#[derive(Deserialize)]
struct RawDependency {
    name: Option<Field<String>>,
    version: Option<Field<String>>,
}

/// One `[[packages.wheels]]` entry.
#[derive(Deserialize)]
struct RawWheel {
    name: Option<Field<String>>,
    url: Option<Field<String>>,
    path: Option<Field<String>>,
    size: Option<Field<u64>>,
    hashes: Option<Field<RawHashes>>,
}

/// `packages.wheels.hashes`: only sha256 is checked.
#[derive(Deserialize)]
struct RawHashes {
    sha256: Option<Field<String>>,
}

/// `[packages.tool.dx-py]`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPackageTool {
    store_hash: Option<Field<String>>,
    extras: Option<Field<Vec<String>>>,
    selected_extras: Option<Field<Vec<String>>>,
    built_wheel: Option<Field<String>>,
}

/// A `[[packages]]` entry as read, before selection.
struct Candidate {
    package: LockedPackage,
    normalized: String,
    /// (normalized name, name as written, version) of each dependency reference.
    deps: Vec<(String, String, Option<String>)>,
}

impl RawLock {
    /// Parses `text`; fails only when it is not TOML.
    pub(super) fn parse(text: &str) -> Result<Self, PylockError> {
        toml_edit::de::from_str(text).map_err(|e| PylockError::Toml(e.into()))
    }

    /// The top-level `requires-python`, when it is a string.
    pub(super) fn requires_python(&self) -> Option<&str> {
        match &self.requires_python {
            Some(Field::Ok(s)) => Some(s),
            _ => None,
        }
    }

    /// Checks the file and keeps what `selector` chooses.
    pub(super) fn into_lock(self, selector: &mut dyn PylockSelector) -> Result<Lock, PylockError> {
        let top = "the top level";
        let lock_version = req(self.lock_version, top, "lock-version", "a string")?;
        if lock_version.split('.').next() != Some("1") {
            return Err(PylockError::UnsupportedLockVersion(lock_version));
        }
        let mut meta = LockMeta {
            requires_python: opt_str(self.requires_python, top, "requires-python")?,
            ..LockMeta::default()
        };
        let tool = opt(self.tool, top, "tool", "a table")?.and_then(|t| t.dx_py);
        if let Some(ours) = opt(tool, "[tool]", super::TOOL, "a table")? {
            let at = format!("[tool.{}]", super::TOOL);
            meta.environment = opt_str(ours.environment, &at, "environment")?.unwrap_or_default();
            meta.python_version =
                opt_str(ours.python_version, &at, "python-version")?.unwrap_or_default();
            if let Some(h) = opt_hash(ours.inputs_hash, &at, "inputs-hash")? {
                meta.inputs_hash = ContentHash::from_bytes(h);
            }
        }
        let packages = req(self.packages, top, "packages", TABLES)?;

        let mut all: Vec<(String, String)> = Vec::with_capacity(packages.len());
        let mut kept: Vec<Candidate> = Vec::with_capacity(packages.len());
        for (i, raw) in packages.into_iter().enumerate() {
            let name = req(raw.name, &format!("packages[{i}]"), "name", "a string")?;
            let at = format!("packages[{i}] (`{name}`)");
            // PEP 751 makes `version` optional for a directory (uv leaves it out): a stand-in
            // until the tree is read (`install::directory_versions`) or built.
            let version = match (&raw.version, &raw.directory) {
                (None, Some(_)) => UNKNOWN_VERSION.to_owned(),
                _ => req(raw.version, &at, "version", "a string")?,
            };
            let marker = opt_str(raw.marker, &at, "marker")?;
            all.push((normalize_name(&name), version.clone()));
            if !selector.applies(&name, &version, marker.as_deref()) {
                continue;
            }
            let package = PackageParts {
                at,
                name,
                version,
                marker,
                requires_python: raw.requires_python,
                index: raw.index,
                dependencies: raw.dependencies,
                sdist: raw.sdist,
                wheels: raw.wheels,
                directory: raw.directory,
                archive: raw.archive,
                tool: raw.tool,
            };
            kept.push(package.check(selector)?);
        }

        kept.sort_by(|a, b| a.normalized.cmp(&b.normalized));
        for pair in kept.windows(2) {
            if pair[0].normalized == pair[1].normalized {
                return Err(PylockError::DuplicatePackage(pair[1].package.name.clone()));
            }
        }
        // name -> versions, for the kept entries and for every entry of the file.
        let mut kept_versions: HashMap<&str, Vec<&str>> = HashMap::new();
        for k in &kept {
            kept_versions
                .entry(&k.normalized)
                .or_default()
                .push(&k.package.version);
        }
        let mut all_versions: HashMap<&str, Vec<&str>> = HashMap::new();
        for (n, v) in &all {
            all_versions.entry(n).or_default().push(v);
        }
        let mut packages = Vec::with_capacity(kept.len());
        for c in &kept {
            let mut package = c.package.clone();
            for (dep, spelled, version) in &c.deps {
                let matches = |map: &HashMap<&str, Vec<&str>>| {
                    map.get(dep.as_str()).is_some_and(|versions| {
                        versions
                            .iter()
                            .any(|v| version.as_deref().is_none_or(|x| x == *v))
                    })
                };
                if matches(&kept_versions) {
                    package.dependencies.push(dep.clone());
                } else if !matches(&all_versions) {
                    return Err(PylockError::UnknownDependency {
                        package: package.name.clone(),
                        dependency: spelled.clone(),
                    });
                }
                // Otherwise the dependency is locked for another environment only.
            }
            packages.push(package);
        }
        Ok(Lock { meta, packages })
    }
}

/// A package entry the selector kept, with the keys read before it was asked.
struct PackageParts {
    at: String,
    name: String,
    version: String,
    marker: Option<String>,
    requires_python: Option<Field<String>>,
    index: Option<Field<String>>,
    dependencies: Option<Field<Vec<RawDependency>>>,
    sdist: Option<Field<RawWheel>>,
    wheels: Option<Field<Vec<RawWheel>>>,
    directory: Option<Field<RawDirectory>>,
    archive: Option<Field<RawWheel>>,
    tool: Option<Field<Tool<RawPackageTool>>>,
}

impl PackageParts {
    fn check(self, selector: &mut dyn PylockSelector) -> Result<Candidate, PylockError> {
        let Self {
            at,
            name,
            version,
            marker,
            requires_python,
            index,
            dependencies,
            sdist: raw_sdist,
            wheels: raw_wheels,
            directory,
            archive,
            tool,
        } = self;
        let at = at.as_str();
        let mut deps = Vec::new();
        let raw_deps = opt(dependencies, at, "dependencies", TABLES)?;
        for (j, d) in raw_deps.into_iter().flatten().enumerate() {
            let d_at = format!("{at}.dependencies[{j}]");
            let dep = req(d.name, &d_at, "name", "a string")?;
            let version = opt_str(d.version, &d_at, "version")?;
            deps.push((normalize_name(&dep), dep, version));
        }

        let mut wheels = Vec::new();
        let raw_wheels = opt(raw_wheels, at, "wheels", TABLES)?;
        for (j, w) in raw_wheels.into_iter().flatten().enumerate() {
            let w_at = format!("{at}.wheels[{j}]");
            wheels.push(check_wheel(w, &w_at, &name)?);
        }
        let mut sdist = match opt(raw_sdist, at, "sdist", "a table")? {
            // Read only when there is no wheel to install: then the package is built.
            Some(raw) if wheels.is_empty() => {
                Some(check_wheel(raw, &format!("{at}.sdist"), &name)?)
            }
            _ => None,
        };
        // PEP 751 allows one source kind per package; local source is read when nothing else is.
        let mut local = None;
        if wheels.is_empty() && sdist.is_none() {
            if let Some(dir) = opt(directory, at, "directory", "a table")? {
                let dir_at = format!("{at}.directory");
                local = Some(LocalSource::Directory {
                    path: req(dir.path, &dir_at, "path", "a string")?,
                    editable: opt(dir.editable, &dir_at, "editable", "a boolean")?.unwrap_or(false),
                });
            } else if let Some(raw) = opt(archive, at, "archive", "a table")? {
                let archive_at = format!("{at}.archive");
                let file = check_wheel(raw, &archive_at, &name)?;
                if file.path.is_none() {
                    return Err(PylockError::RemoteArchive(name.clone()));
                }
                sdist = Some(file);
                local = Some(LocalSource::Archive);
            }
        }
        let chosen = match (wheels.len(), &sdist) {
            (0, Some(_)) => None,
            (0, None) if local.is_some() => None,
            (0, None) => return Err(PylockError::NoWheel(name.clone())),
            (1, _) => Some(0),
            (count, _) => Some(
                selector
                    .choose_wheel(&name, &wheels)
                    .filter(|&i| i < count)
                    .ok_or(PylockError::AmbiguousWheel {
                        package: name.clone(),
                        count,
                    })?,
            ),
        };
        let mut built_wheel = None;

        let mut store_hash = None;
        let mut extras = Vec::new();
        let mut extras_bitmap = 0u64;
        let tool = opt(tool, at, "tool", "a table")?.and_then(|t| t.dx_py);
        let tool_at = format!("{at}.tool");
        if let Some(ours) = opt(tool, &tool_at, super::TOOL, "a table")? {
            let ours_at = format!("{tool_at}.{}", super::TOOL);
            store_hash =
                opt_hash(ours.store_hash, &ours_at, "store-hash")?.map(ContentHash::from_bytes);
            extras = opt_strings(ours.extras, &ours_at, "extras")?;
            for selected in opt_strings(ours.selected_extras, &ours_at, "selected-extras")? {
                let bit = extras
                    .iter()
                    .position(|e| crate::dpl::format::same_name(e, &selected))
                    .filter(|&i| i < 64)
                    .ok_or_else(|| PylockError::UnknownExtra {
                        package: name.clone(),
                        extra: selected.clone(),
                    })?;
                extras_bitmap |= 1 << bit;
            }
            built_wheel = opt_str(ours.built_wheel, &ours_at, "built-wheel")?;
        }
        // Another tool's lock does not name the wheel its source builds: a name that stands
        // for it until the build names the real one.
        let stand_in = |built_wheel: Option<String>| {
            built_wheel.unwrap_or_else(|| {
                format!(
                    "{}-{version}-py3-none-any.whl",
                    normalize_name(&name).replace('-', "_")
                )
            })
        };
        let wheel = match (&sdist, &local) {
            (Some(sdist), _) => LockedWheel {
                filename: stand_in(built_wheel),
                url: None,
                path: None,
                sha256: sdist.sha256,
                size: None,
            },
            // A tree has no content hash (`LocalSource::Directory`).
            (None, Some(_)) => LockedWheel {
                filename: stand_in(built_wheel),
                url: None,
                path: None,
                sha256: [0; 32],
                size: None,
            },
            (None, None) => wheels.swap_remove(chosen.unwrap_or_default()),
        };

        Ok(Candidate {
            normalized: normalize_name(&name),
            package: LockedPackage {
                requires_python: opt_str(requires_python, at, "requires-python")?,
                index_url: opt_str(index, at, "index")?,
                name,
                version,
                marker,
                extras,
                extras_bitmap,
                wheel,
                sdist,
                local,
                store_hash,
                dependencies: Vec::new(),
            },
            deps,
        })
    }
}

/// One wheel of package `package`, its file name taken from `url` or `path` when `name` is absent.
fn check_wheel(w: RawWheel, at: &str, package: &str) -> Result<LockedWheel, PylockError> {
    let url = opt_str(w.url, at, "url")?;
    let path = opt_str(w.path, at, "path")?;
    let filename = match opt_str(w.name, at, "name")? {
        Some(n) => n,
        None => url
            .as_deref()
            .or(path.as_deref())
            .and_then(|s| s.rsplit(['/', '\\']).next())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(PylockError::Missing {
                at: at.to_string(),
                key: "name",
            })?,
    };
    let size = opt(w.size, at, "size", "a non-negative integer")?;
    let hashes = req(w.hashes, at, "hashes", "a table")?;
    let sha256 = opt_hash(hashes.sha256, &format!("{at}.hashes"), "sha256")?.ok_or_else(|| {
        PylockError::MissingSha256 {
            package: package.to_string(),
            wheel: filename.clone(),
        }
    })?;
    Ok(LockedWheel {
        filename,
        url,
        path,
        sha256,
        size,
    })
}
