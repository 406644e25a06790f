//! Writing: a [`Lock`] as derived serde structs, serialized by toml_edit, then laid out.
//!
//! Serde gives the keys, their order and the values; toml_edit's serializer makes every nested
//! table inline, so [`lay_out`] turns the few that PEP 751 files show as sections
//! (`[[packages]]`, `[[packages.wheels]]`, `[packages.tool.dx-py]`, `[tool.dx-py]`) into
//! sections. Dependencies and hashes stay inline, as uv writes them.
use serde::Serialize;
use toml_edit::{DocumentMut, Item};

use super::TOOL;
use crate::dpl::model::{LocalSource, Lock, LockedPackage, LockedWheel};

/// `[tool]`, of the file or of a package, holding dx-py's table only.
#[derive(Serialize)]
pub(super) struct Tool<T> {
    #[serde(rename = "dx-py")]
    pub(super) dx_py: T,
}

/// The whole file, keys in the order they are written; `T` is the lock's `[tool.dx-py]`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct PylockOut<'a, T> {
    pub(super) lock_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) requires_python: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) environments: Vec<&'a str>,
    pub(super) created_by: &'static str,
    pub(super) packages: Vec<PackageOut<'a>>,
    pub(super) tool: Tool<T>,
}

/// `[tool.dx-py]`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct LockToolOut<'a> {
    environment: &'a str,
    python_version: &'a str,
    inputs_hash: String,
}

/// One `[[packages]]` entry: one wheel in a dx-py lock for one environment; every wheel and
/// the sdist in a universal one.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct PackageOut<'a> {
    pub(super) name: &'a str,
    pub(super) version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) marker: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) requires_python: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) index: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) dependencies: Vec<DependencyOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sdist: Option<WheelOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) wheels: Vec<WheelOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) directory: Option<DirectoryOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) archive: Option<WheelOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool: Option<Tool<PackageToolOut<'a>>>,
}

/// `[packages.directory]`.
#[derive(Serialize)]
pub(super) struct DirectoryOut<'a> {
    pub(super) path: &'a str,
    pub(super) editable: bool,
}

/// A `dependencies` reference: the name alone, since a dx-py lock has one version of each.
#[derive(Serialize)]
pub(super) struct DependencyOut<'a> {
    pub(super) name: &'a str,
}

/// `[[packages.wheels]]`.
#[derive(Serialize)]
pub(super) struct WheelOut<'a> {
    pub(super) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) path: Option<&'a str>,
    /// TOML integers are signed; the model refuses larger sizes (`SizeTooLarge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) size: Option<i64>,
    pub(super) hashes: HashesOut,
}

#[derive(Serialize)]
pub(super) struct HashesOut {
    pub(super) sha256: String,
}

/// `[packages.tool.dx-py]`: what DPL records and PEP 751 has no key for.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct PackageToolOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    store_hash: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extras: Vec<&'a str>,
    /// Written whenever the bitmap is not zero (then it lists the selected extras).
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_extras: Option<Vec<&'a str>>,
    /// For a package built from its sdist: the file name of the wheel built when locking.
    #[serde(skip_serializing_if = "Option::is_none")]
    built_wheel: Option<&'a str>,
}

impl<'a> WheelOut<'a> {
    /// A wheel (or an sdist) as PEP 751 lists files.
    pub(super) fn of(w: &'a LockedWheel) -> Self {
        Self {
            name: &w.filename,
            url: w.url.as_deref(),
            path: w.path.as_deref(),
            size: w.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            hashes: HashesOut {
                sha256: w.sha256_hex(),
            },
        }
    }
}

impl<'a> PackageOut<'a> {
    fn of(p: &'a LockedPackage) -> Self {
        let w = &p.wheel;
        let ours = PackageToolOut {
            store_hash: p.store_hash.as_ref().map(|h| h.to_hex()),
            extras: p.extras.iter().map(String::as_str).collect(),
            selected_extras: (p.extras_bitmap != 0).then(|| p.selected_extras().collect()),
            built_wheel: (p.sdist.is_some() || p.local.is_some()).then_some(w.filename.as_str()),
        };
        let has_ours = ours.store_hash.is_some()
            || !ours.extras.is_empty()
            || ours.selected_extras.is_some()
            || ours.built_wheel.is_some();
        Self {
            name: &p.name,
            version: &p.version,
            marker: p.marker.as_deref(),
            requires_python: p.requires_python.as_deref(),
            index: p.index_url.as_deref(),
            dependencies: (p.dependencies.iter())
                .map(|name| DependencyOut { name })
                .collect(),
            // PEP 751: a package installed from its sdist lists no wheel (the one it builds
            // is named in the tool table).
            // A local archive is PEP 751's `archive` (a direct reference), not an index sdist.
            sdist: (p.sdist.as_ref())
                .filter(|_| p.local.is_none())
                .map(WheelOut::of),
            wheels: match (&p.sdist, &p.local) {
                (None, None) => vec![WheelOut::of(w)],
                _ => Vec::new(),
            },
            directory: p
                .directory()
                .map(|(path, editable)| DirectoryOut { path, editable }),
            archive: (p.sdist.as_ref())
                .filter(|_| p.local == Some(LocalSource::Archive))
                .map(WheelOut::of),
            tool: has_ours.then_some(Tool { dx_py: ours }),
        }
    }
}

/// `lock` as pylock.toml text.
pub(super) fn write(lock: &Lock) -> String {
    to_text(&PylockOut {
        lock_version: "1.0",
        requires_python: lock.meta.requires_python.as_deref(),
        environments: Vec::new(),
        created_by: TOOL,
        packages: lock.packages.iter().map(PackageOut::of).collect(),
        tool: Tool {
            dx_py: LockToolOut {
                environment: &lock.meta.environment,
                python_version: &lock.meta.python_version,
                inputs_hash: lock.meta.inputs_hash.to_hex(),
            },
        },
    })
}

/// `out` as pylock.toml text.
pub(super) fn to_text<T: Serialize>(out: &PylockOut<'_, T>) -> String {
    // Strings, i64, arrays and tables with no `None` left in them: nothing toml_edit refuses.
    let mut doc = toml_edit::ser::to_document(out).expect("pylock structs serialize to TOML");
    lay_out(&mut doc);
    doc.to_string()
}

/// Turns the inline tables PEP 751 files show as sections into sections.
pub(super) fn lay_out(doc: &mut DocumentMut) {
    // An empty array of tables prints nothing; PEP 751 requires the key, so `packages = []` stays.
    if doc["packages"].as_array().is_some_and(|a| !a.is_empty()) {
        array_of_tables(&mut doc["packages"]);
        if let Some(packages) = doc["packages"].as_array_of_tables_mut() {
            for package in packages.iter_mut() {
                array_of_tables(&mut package["wheels"]);
                if package.contains_key("tool") {
                    tool_section(&mut package["tool"]);
                }
            }
        }
    }
    tool_section(&mut doc["tool"]);
}

fn array_of_tables(item: &mut Item) {
    let taken = std::mem::take(item);
    *item = match taken.into_array_of_tables() {
        Ok(tables) => Item::ArrayOfTables(tables),
        Err(unchanged) => unchanged,
    };
}

/// `tool = { dx-py = {…} }` becomes an implicit `[tool]` holding the section `[tool.dx-py]`.
fn tool_section(item: &mut Item) {
    let taken = std::mem::take(item);
    *item = match taken.into_table() {
        Ok(mut tool) => {
            tool.set_implicit(true);
            let ours = std::mem::take(&mut tool[TOOL]);
            tool[TOOL] = ours
                .into_table()
                .map_or_else(|unchanged| unchanged, Item::Table);
            Item::Table(tool)
        }
        Err(unchanged) => unchanged,
    };
}
