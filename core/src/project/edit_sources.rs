//! Editing the `sources` table of `pyproject.toml` as `dx-py add ./lib` and `dx-py remove lib`
//! do: `lib = { path = "../lib", editable = true }` in `[tool.dx-py.sources]`, or in
//! `[tool.uv.sources]` when a project keeps its sources there (dx-py reads uv's table only
//! when its own is absent, so adding to ours would hide the others). Untouched bytes stay, and
//! tables the edit created go again when the entry is removed.
use toml_edit::{InlineTable, Item, Table, TableLike, Value};

use super::edit::{PyprojectEditor, entry_name, existing_key};
use super::error::EditError;
use crate::names::normalize_name;

/// The tables that may hold sources, ours first.
const TABLES: [&str; 2] = ["dx-py", "uv"];

impl PyprojectEditor {
    /// Makes `name` come from the local `path` (as written, relative to the project),
    /// editable or not, replacing an entry for the same package.
    pub fn add_source(&mut self, name: &str, path: &str, editable: bool) -> Result<(), EditError> {
        let file = self.path.clone();
        let wrong = |field: &str| EditError::WrongType {
            path: file.clone(),
            field: field.to_owned(),
            expected: "a table",
        };
        let owner = if self.sources("dx-py").is_none() && self.sources("uv").is_some() {
            "uv"
        } else {
            "dx-py"
        };
        let root = self.doc.as_table_mut();
        let tool = implicit_child(root, "tool").ok_or_else(|| wrong("tool"))?;
        let owner_table =
            implicit_child(tool, owner).ok_or_else(|| wrong(&format!("tool.{owner}")))?;
        if owner_table.get("sources").is_none() {
            owner_table.insert("sources", Item::Table(Table::new()));
        }
        let sources = owner_table
            .get_mut("sources")
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| wrong(&format!("tool.{owner}.sources")))?;
        let mut entry = InlineTable::new();
        entry.insert("path", Value::from(path));
        if editable {
            entry.insert("editable", Value::from(true));
        }
        let key = existing_key(sources, name);
        match sources.get_mut(&key).and_then(Item::as_value_mut) {
            Some(old) => {
                let decor = old.decor().clone();
                *old = Value::InlineTable(entry);
                *old.decor_mut() = decor;
            }
            None => {
                sources.insert(&key, Item::Value(Value::InlineTable(entry)));
            }
        }
        Ok(())
    }

    /// Removes the source of `name` unless a dependency, extra or group still names it;
    /// whether one was removed. A `sources` table left empty goes, and so do `[tool.dx-py]` and
    /// `[tool]` when nothing is left in them and they were not written as tables.
    pub fn remove_source_if_unused(&mut self, name: &str) -> bool {
        let wanted = normalize_name(name);
        if self.names(&wanted) {
            return false;
        }
        let mut removed = false;
        let root = self.doc.as_table_mut();
        // (`Item::get_mut` would insert what it does not find: tables are asked instead.)
        let Some(tool) = root.get_mut("tool") else {
            return false;
        };
        for owner in TABLES {
            let Some(owner_item) = tool.as_table_like_mut().and_then(|t| t.get_mut(owner)) else {
                continue;
            };
            let Some(sources) = owner_item
                .as_table_like_mut()
                .and_then(|t| t.get_mut("sources"))
                .and_then(Item::as_table_like_mut)
            else {
                continue;
            };
            let key = existing_key(sources, &wanted);
            removed |= sources.remove(&key).is_some();
            if sources.is_empty()
                && let Some(t) = owner_item.as_table_like_mut()
            {
                t.remove("sources");
            }
            if is_empty_implicit(owner_item)
                && let Some(t) = tool.as_table_like_mut()
            {
                t.remove(owner);
            }
        }
        if is_empty_implicit(tool) {
            root.remove("tool");
        }
        removed
    }

    /// The `sources` table of `tool.{owner}`, when there is one.
    fn sources(&self, owner: &str) -> Option<&dyn TableLike> {
        self.doc
            .get("tool")?
            .get(owner)?
            .get("sources")?
            .as_table_like()
    }

    /// Whether a requirement of the dependencies, an extra or a group names `wanted`.
    fn names(&self, wanted: &str) -> bool {
        let project = self.doc.get("project");
        let mut lists: Vec<&Item> = (project.and_then(|p| p.get("dependencies")))
            .into_iter()
            .collect();
        for table in [
            project.and_then(|p| p.get("optional-dependencies")),
            self.doc.get("dependency-groups"),
        ] {
            if let Some(t) = table.and_then(Item::as_table_like) {
                lists.extend(t.iter().map(|(_, v)| v));
            }
        }
        lists
            .iter()
            .filter_map(|l| l.as_array())
            .flat_map(|a| a.iter())
            .filter_map(Value::as_str)
            .any(|text| entry_name(text).as_deref() == Some(wanted))
    }
}

/// The table under `key` in `parent`, created implicit (no header of its own) when missing;
/// `None` when something else is there.
fn implicit_child<'a>(parent: &'a mut dyn TableLike, key: &str) -> Option<&'a mut dyn TableLike> {
    if parent.get(key).is_none() {
        let mut table = Table::new();
        table.set_implicit(true);
        parent.insert(key, Item::Table(table));
    }
    parent.get_mut(key).and_then(Item::as_table_like_mut)
}

/// Whether `item` is an empty table with no header of its own (`[tool]` made only for
/// `[tool.x]`), which is what the editor creates.
fn is_empty_implicit(item: &Item) -> bool {
    item.as_table()
        .is_some_and(|t| t.is_empty() && t.is_implicit())
}
