//! `pylock.toml` (PEP 751, lock-version 1.x) to and from a [`Lock`].
//!
//! PEP 751 keys map onto the model one to one where both have them. What DPL records and PEP 751
//! has no key for lives in tool tables, which PEP 751 reserves for tools:
//!
//! ```toml
//! [[packages]]
//! name = "requests"
//! # … PEP 751 keys …
//! [packages.tool.dx-py]          # per package
//! store-hash = "<blake3 hex>"    # the .dxpkg in the store, once known
//! extras = ["socks", "use-chardet-on-py3"]   # the package's extras table (bit order)
//! selected-extras = ["socks"]    # the extras selected in this lock
//!
//! [tool.dx-py]                   # per lock
//! environment = "cp311-linux_x86_64"
//! python-version = "3.11.9"
//! inputs-hash = "<blake3 hex>"
//! ```
use std::collections::HashMap;

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use super::model::{Lock, LockMeta, LockedPackage, LockedWheel};
use crate::hash::ContentHash;
use crate::names::normalize_name;

/// The table name dx-py uses under `[tool]` and `[packages.tool]`.
const TOOL: &str = "dx-py";

/// A pylock.toml that cannot be read as a dx-py lock.
#[derive(Debug, thiserror::Error)]
pub enum PylockError {
    /// Not TOML at all.
    #[error("Invalid TOML in pylock.toml")]
    Toml(#[source] toml_edit::TomlError),
    /// A required key is absent.
    #[error("Missing `{key}` in {at}")]
    Missing {
        /// Where (e.g. `packages[2] (numpy)`).
        at: String,
        /// The key.
        key: &'static str,
    },
    /// A key holds the wrong kind of value.
    #[error("`{key}` in {at} must be {expected}")]
    WrongType {
        /// Where.
        at: String,
        /// The key.
        key: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A lock-version this reader does not understand.
    #[error("Unsupported pylock.toml lock-version `{0}`: expected 1.x")]
    UnsupportedLockVersion(String),
    /// A package with no wheel (sdist, VCS, directory or archive only).
    #[error(
        "Package `{0}` has no wheel; dx-py installs wheels only (sdist, VCS, directory and archive sources are not supported)"
    )]
    NoWheel(String),
    /// Several wheels and nothing to choose between them.
    #[error("Package `{package}` has {count} wheels and nothing chose one for this environment")]
    AmbiguousWheel {
        /// The package.
        package: String,
        /// How many wheels it lists.
        count: usize,
    },
    /// A wheel without a sha256 hash.
    #[error(
        "Wheel `{wheel}` of package `{package}` has no sha256 in `hashes`; dx-py checks every wheel against its sha256"
    )]
    MissingSha256 {
        /// The package.
        package: String,
        /// The wheel.
        wheel: String,
    },
    /// A hash that is not 64 hex digits.
    #[error("Invalid {what} `{value}` in {at}: expected 64 hex digits")]
    InvalidHash {
        /// Where.
        at: String,
        /// Which hash.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// Two packages of the same name apply to this environment.
    #[error(
        "Package `{0}` appears twice for this environment; a DPL holds one version of each package"
    )]
    DuplicatePackage(String),
    /// A dependency naming no package of the lock.
    #[error("Package `{package}` depends on `{dependency}`, which the lock does not contain")]
    UnknownDependency {
        /// The package.
        package: String,
        /// The dependency.
        dependency: String,
    },
    /// A selected extra missing from the package's extras table.
    #[error("Selected extra `{extra}` of package `{package}` is not in its `extras` table")]
    UnknownExtra {
        /// The package.
        package: String,
        /// The extra.
        extra: String,
    },
}

/// Choices a pylock.toml reader cannot make alone: a PEP 751 lock may cover many environments,
/// a DPL covers one. Implement this with marker evaluation and wheel-tag ranking for the target
/// interpreter.
pub trait PylockSelector {
    /// Whether the package entry (with its `marker`) belongs to the target environment.
    /// The default keeps every entry.
    fn applies(&mut self, name: &str, version: &str, marker: Option<&str>) -> bool {
        let _ = (name, version, marker);
        true
    }

    /// Which of several wheels to lock. The default chooses none, which is an error.
    fn choose_wheel(&mut self, name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        let _ = (name, wheels);
        None
    }
}

/// Keeps every package and accepts only packages with exactly one wheel.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSelector;

impl PylockSelector for DefaultSelector {}

fn tables(item: &Item) -> Option<Vec<&dyn TableLike>> {
    match item {
        Item::ArrayOfTables(a) => Some(a.iter().map(|t| t as &dyn TableLike).collect()),
        Item::Value(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
            .collect(),
        _ => None,
    }
}

/// Reads keys of one table, naming the table in errors.
struct At<'a> {
    table: &'a dyn TableLike,
    at: String,
}

impl<'a> At<'a> {
    fn wrong(&self, key: &'static str, expected: &'static str) -> PylockError {
        PylockError::WrongType {
            at: self.at.clone(),
            key,
            expected,
        }
    }

    fn opt_str(&self, key: &'static str) -> Result<Option<&'a str>, PylockError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a string")),
        }
    }

    fn str(&self, key: &'static str) -> Result<&'a str, PylockError> {
        self.opt_str(key)?.ok_or_else(|| PylockError::Missing {
            at: self.at.clone(),
            key,
        })
    }

    fn opt_tables(&self, key: &'static str) -> Result<Vec<&'a dyn TableLike>, PylockError> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(item) => tables(item).ok_or_else(|| self.wrong(key, "an array of tables")),
        }
    }

    fn opt_table(&self, key: &'static str) -> Result<Option<&'a dyn TableLike>, PylockError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_table_like()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a table")),
        }
    }

    fn opt_strings(&self, key: &'static str) -> Result<Vec<String>, PylockError> {
        let Some(item) = self.table.get(key) else {
            return Ok(Vec::new());
        };
        let array = item
            .as_array()
            .ok_or_else(|| self.wrong(key, "an array of strings"))?;
        array
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| self.wrong(key, "an array of strings"))
    }

    fn opt_hash(&self, key: &'static str) -> Result<Option<[u8; 32]>, PylockError> {
        let Some(s) = self.opt_str(key)? else {
            return Ok(None);
        };
        let lower = s.to_ascii_lowercase();
        lower
            .parse::<ContentHash>()
            .map(|h| Some(*h.as_bytes()))
            .map_err(|_| PylockError::InvalidHash {
                at: self.at.clone(),
                what: key,
                value: s.to_string(),
            })
    }

    fn sub(&self, table: &'a dyn TableLike, at: String) -> At<'a> {
        At { table, at }
    }
}

/// A `[[packages]]` entry as read, before selection.
struct Candidate {
    package: LockedPackage,
    normalized: String,
    /// (normalized name, version) of each dependency reference.
    deps: Vec<(String, String, Option<String>)>,
}

impl Lock {
    /// Reads a pylock.toml that lists exactly one wheel per package and one entry per name
    /// (what dx-py writes). For multi-environment locks use [`Lock::from_pylock_str_with`].
    pub fn from_pylock_str(text: &str) -> Result<Self, PylockError> {
        Self::from_pylock_str_with(text, &mut DefaultSelector)
    }

    /// Reads a pylock.toml, asking `selector` which entries apply and which wheel to use.
    pub fn from_pylock_str_with(
        text: &str,
        selector: &mut dyn PylockSelector,
    ) -> Result<Self, PylockError> {
        let doc: DocumentMut = text.parse().map_err(PylockError::Toml)?;
        let top = At {
            table: doc.as_table(),
            at: "the top level".to_string(),
        };
        let lock_version = top.str("lock-version")?;
        if lock_version.split('.').next() != Some("1") {
            return Err(PylockError::UnsupportedLockVersion(
                lock_version.to_string(),
            ));
        }
        let mut meta = LockMeta {
            requires_python: top.opt_str("requires-python")?.map(str::to_string),
            ..LockMeta::default()
        };
        if let Some(tool) = top.opt_table("tool")? {
            let tool = top.sub(tool, "[tool]".to_string());
            if let Some(ours) = tool.opt_table(TOOL)? {
                let ours = tool.sub(ours, format!("[tool.{TOOL}]"));
                meta.environment = ours.opt_str("environment")?.unwrap_or_default().into();
                meta.python_version = ours.opt_str("python-version")?.unwrap_or_default().into();
                if let Some(h) = ours.opt_hash("inputs-hash")? {
                    meta.inputs_hash = ContentHash::from_bytes(h);
                }
            }
        }
        if top.table.get("packages").is_none() {
            return Err(PylockError::Missing {
                at: top.at,
                key: "packages",
            });
        }

        let mut all: Vec<(String, String)> = Vec::new();
        let mut kept: Vec<Candidate> = Vec::new();
        for (i, table) in top.opt_tables("packages")?.into_iter().enumerate() {
            let at = At {
                table,
                at: format!("packages[{i}]"),
            };
            let name = at.str("name")?;
            let at = At {
                table,
                at: format!("packages[{i}] (`{name}`)"),
            };
            let version = at.str("version")?;
            let marker = at.opt_str("marker")?;
            all.push((normalize_name(name), version.to_string()));
            if !selector.applies(name, version, marker) {
                continue;
            }
            kept.push(read_package(&at, name, version, marker, selector)?);
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

    /// Writes this lock as a pylock.toml (lock-version 1.0), with dx-py's extra data in tool
    /// tables so that reading it back gives the same lock.
    pub fn to_pylock_string(&self) -> String {
        let mut doc = DocumentMut::new();
        doc["lock-version"] = toml_edit::value("1.0");
        if let Some(rp) = &self.meta.requires_python {
            doc["requires-python"] = toml_edit::value(rp.as_str());
        }
        doc["created-by"] = toml_edit::value("dx-py");

        let mut packages = ArrayOfTables::new();
        for p in &self.packages {
            let mut t = Table::new();
            t["name"] = toml_edit::value(p.name.as_str());
            t["version"] = toml_edit::value(p.version.as_str());
            let optional = [
                ("marker", &p.marker),
                ("requires-python", &p.requires_python),
                ("index", &p.index_url),
            ];
            for (key, v) in optional {
                if let Some(v) = v {
                    t[key] = toml_edit::value(v.as_str());
                }
            }
            if !p.dependencies.is_empty() {
                let mut deps = Array::new();
                for d in &p.dependencies {
                    let mut r = InlineTable::new();
                    r.insert("name", d.as_str().into());
                    deps.push(r);
                }
                t["dependencies"] = toml_edit::value(deps);
            }

            let w = &p.wheel;
            let mut wt = Table::new();
            wt["name"] = toml_edit::value(w.filename.as_str());
            for (key, v) in [("url", &w.url), ("path", &w.path)] {
                if let Some(v) = v {
                    wt[key] = toml_edit::value(v.as_str());
                }
            }
            if let Some(size) = w.size {
                wt["size"] = toml_edit::value(i64::try_from(size).unwrap_or(i64::MAX));
            }
            let mut hashes = InlineTable::new();
            hashes.insert("sha256", w.sha256_hex().into());
            wt["hashes"] = toml_edit::value(hashes);
            let mut wheels = ArrayOfTables::new();
            wheels.push(wt);
            t["wheels"] = Item::ArrayOfTables(wheels);

            let mut ours = Table::new();
            if let Some(h) = &p.store_hash {
                ours["store-hash"] = toml_edit::value(h.to_hex());
            }
            if !p.extras.is_empty() {
                ours["extras"] = toml_edit::value(p.extras.iter().collect::<Array>());
            }
            if p.extras_bitmap != 0 {
                ours["selected-extras"] = toml_edit::value(p.selected_extras().collect::<Array>());
            }
            if !ours.is_empty() {
                let mut tool = Table::new();
                tool.set_implicit(true);
                tool[TOOL] = Item::Table(ours);
                t["tool"] = Item::Table(tool);
            }
            packages.push(t);
        }
        doc["packages"] = if packages.is_empty() {
            // An empty array of tables prints nothing; PEP 751 requires the key.
            toml_edit::value(Array::new())
        } else {
            Item::ArrayOfTables(packages)
        };

        let mut ours = Table::new();
        ours["environment"] = toml_edit::value(self.meta.environment.as_str());
        ours["python-version"] = toml_edit::value(self.meta.python_version.as_str());
        ours["inputs-hash"] = toml_edit::value(self.meta.inputs_hash.to_hex());
        let mut tool = Table::new();
        tool.set_implicit(true);
        tool[TOOL] = Item::Table(ours);
        doc["tool"] = Item::Table(tool);
        doc.to_string()
    }
}

fn read_package(
    at: &At<'_>,
    name: &str,
    version: &str,
    marker: Option<&str>,
    selector: &mut dyn PylockSelector,
) -> Result<Candidate, PylockError> {
    let mut deps = Vec::new();
    for (j, d) in at.opt_tables("dependencies")?.into_iter().enumerate() {
        let d = at.sub(d, format!("{}.dependencies[{j}]", at.at));
        let dep = d.str("name")?;
        deps.push((
            normalize_name(dep),
            dep.to_string(),
            d.opt_str("version")?.map(str::to_string),
        ));
    }

    let mut wheels = Vec::new();
    for (j, w) in at.opt_tables("wheels")?.into_iter().enumerate() {
        let w = at.sub(w, format!("{}.wheels[{j}]", at.at));
        let url = w.opt_str("url")?;
        let path = w.opt_str("path")?;
        let filename = match w.opt_str("name")? {
            Some(n) => n,
            None => url
                .or(path)
                .and_then(|s| s.rsplit(['/', '\\']).next())
                .filter(|s| !s.is_empty())
                .ok_or(PylockError::Missing {
                    at: w.at.clone(),
                    key: "name",
                })?,
        };
        let size = match w.table.get("size") {
            None => None,
            Some(item) => Some(
                item.as_integer()
                    .and_then(|i| u64::try_from(i).ok())
                    .ok_or_else(|| w.wrong("size", "a non-negative integer"))?,
            ),
        };
        let hashes = w.opt_table("hashes")?.ok_or(PylockError::Missing {
            at: w.at.clone(),
            key: "hashes",
        })?;
        let hashes = w.sub(hashes, format!("{}.hashes", w.at));
        let sha256 = hashes
            .opt_hash("sha256")?
            .ok_or_else(|| PylockError::MissingSha256 {
                package: name.to_string(),
                wheel: filename.to_string(),
            })?;
        wheels.push(LockedWheel {
            filename: filename.to_string(),
            url: url.map(str::to_string),
            path: path.map(str::to_string),
            sha256,
            size,
        });
    }
    let chosen = match wheels.len() {
        0 => return Err(PylockError::NoWheel(name.to_string())),
        1 => 0,
        count => selector
            .choose_wheel(name, &wheels)
            .filter(|&i| i < count)
            .ok_or(PylockError::AmbiguousWheel {
                package: name.to_string(),
                count,
            })?,
    };
    let wheel = wheels.swap_remove(chosen);

    let mut store_hash = None;
    let mut extras = Vec::new();
    let mut extras_bitmap = 0u64;
    if let Some(tool) = at.opt_table("tool")? {
        let tool = at.sub(tool, format!("{}.tool", at.at));
        if let Some(ours) = tool.opt_table(TOOL)? {
            let ours = tool.sub(ours, format!("{}.tool.{TOOL}", at.at));
            store_hash = ours.opt_hash("store-hash")?.map(ContentHash::from_bytes);
            extras = ours.opt_strings("extras")?;
            for selected in ours.opt_strings("selected-extras")? {
                let bit = extras
                    .iter()
                    .position(|e| super::format::same_name(e, &selected))
                    .filter(|&i| i < 64)
                    .ok_or_else(|| PylockError::UnknownExtra {
                        package: name.to_string(),
                        extra: selected.clone(),
                    })?;
                extras_bitmap |= 1 << bit;
            }
        }
    }

    Ok(Candidate {
        normalized: normalize_name(name),
        package: LockedPackage {
            name: name.to_string(),
            version: version.to_string(),
            marker: marker.map(str::to_string),
            requires_python: at.opt_str("requires-python")?.map(str::to_string),
            index_url: at.opt_str("index")?.map(str::to_string),
            extras,
            extras_bitmap,
            wheel,
            store_hash,
            dependencies: Vec::new(),
        },
        deps,
    })
}
