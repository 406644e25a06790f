//! Editing `pyproject.toml` as `dx-py add` and `dx-py remove` do, through `toml_edit`'s
//! document API so that everything not edited keeps its bytes: comments, key order, quoting,
//! single- or multi-line arrays, trailing commas.
//!
//! Arrays are edited as lists of items, each with the whitespace that leads it, its value, and
//! what ends its line (a comment and the newline after its comma): removing an item removes
//! exactly its own line, comments of other lines stay where they were, and removing what was
//! just added gives back the same bytes.
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Table, TableLike, Value};

use super::error::EditError;
use crate::names::normalize_name;
use crate::requirements::written_name_of;

/// Which list of requirements to edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependencyTarget {
    /// `project.dependencies`.
    Project,
    /// `project.optional-dependencies.<extra>` (`--optional EXTRA`).
    Optional(String),
    /// `dependency-groups.<group>` (`--group G`).
    Group(String),
}

impl DependencyTarget {
    /// The key path, as messages name it (`dependency-groups.dev`).
    pub fn describe(&self) -> String {
        match self {
            Self::Project => "project.dependencies".to_string(),
            Self::Optional(extra) => format!("project.optional-dependencies.{extra}"),
            Self::Group(group) => format!("dependency-groups.{group}"),
        }
    }
}

/// What [`PyprojectEditor::add`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The requirement was added.
    Added,
    /// A requirement on the same package under the same marker was replaced.
    Replaced {
        /// The requirement it replaced, as written.
        previous: String,
    },
}

/// A `pyproject.toml` being edited.
#[derive(Clone, Debug)]
pub struct PyprojectEditor {
    pub(super) path: PathBuf,
    pub(super) doc: DocumentMut,
}

impl PyprojectEditor {
    /// Reads `path` for editing.
    pub fn from_path(path: &Path) -> Result<Self, EditError> {
        let content = fs_err::read_to_string(path).map_err(|source| EditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_str(&content, path)
    }

    /// Parses `content` as the `pyproject.toml` at `path`.
    pub fn parse_str(content: &str, path: &Path) -> Result<Self, EditError> {
        let doc = content
            .parse::<DocumentMut>()
            .map_err(|source| EditError::Toml {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Replaces the file with the edited document (atomically).
    pub fn write(&self) -> Result<(), EditError> {
        crate::atomic::replace(&self.path, self.doc.to_string().as_bytes()).map_err(|source| {
            EditError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Adds `requirement` (PEP 508) to `target`, creating the tables and the array when they
    /// are missing. A requirement on the same package under the same marker is replaced in
    /// place; otherwise the new one goes where it keeps a sorted list sorted, else last.
    pub fn add(
        &mut self,
        requirement: &str,
        target: &DependencyTarget,
    ) -> Result<AddOutcome, EditError> {
        let requirement = requirement.trim();
        let parsed = crate::requirements::parse_pep508(requirement).map_err(|reason| {
            EditError::InvalidRequirement {
                text: requirement.to_string(),
                reason,
            }
        })?;
        let name = normalize_name(parsed.name.as_ref());
        let array = self.array(target, true)?.expect("created when missing");
        let same = array.iter().position(|v| {
            v.as_str().is_some_and(|text| {
                entry_name(text).as_deref() == Some(name.as_str())
                    && crate::requirements::parse_pep508(text)
                        .is_ok_and(|r| r.marker == parsed.marker)
            })
        });
        if let Some(i) = same {
            let old = array.get(i).expect("found above");
            let previous = old.as_str().unwrap_or_default().to_string();
            let mut value = Value::from(requirement);
            *value.decor_mut() = old.decor().clone();
            array.replace_formatted(i, value);
            return Ok(AddOutcome::Replaced { previous });
        }
        let mut layout = Layout::read(array);
        let position = layout.sorted_position(&name);
        layout.insert(position, Value::from(requirement));
        layout.write(array);
        Ok(AddOutcome::Added)
    }

    /// Removes every requirement on the package `name` from `target` and returns how many
    /// there were. Nothing found is an error naming where it looked. An array left empty stays.
    pub fn remove(&mut self, name: &str, target: &DependencyTarget) -> Result<usize, EditError> {
        let wanted = normalize_name(name);
        let path = self.path.clone();
        let not_found = || EditError::NotFound {
            path: path.clone(),
            name: name.to_string(),
            looked_in: target.describe(),
        };
        let Some(array) = self.array(target, false)? else {
            return Err(not_found());
        };
        let mut layout = Layout::read(array);
        let before = layout.items.len();
        let mut i = 0;
        while i < layout.items.len() {
            let text = layout.items[i].value.as_str();
            if text.and_then(entry_name).as_deref() == Some(wanted.as_str()) {
                layout.remove(i);
            } else {
                i += 1;
            }
        }
        let removed = before - layout.items.len();
        if removed == 0 {
            return Err(not_found());
        }
        layout.write(array);
        Ok(removed)
    }

    /// The array of `target`; missing tables and the array are created when `create`.
    fn array(
        &mut self,
        target: &DependencyTarget,
        create: bool,
    ) -> Result<Option<&mut Array>, EditError> {
        let path = self.path.clone();
        let wrong = |field: &str, expected| EditError::WrongType {
            path: path.clone(),
            field: field.to_string(),
            expected,
        };
        let root = self.doc.as_table_mut();
        let (table, key): (&mut dyn TableLike, String) = match target {
            DependencyTarget::Project | DependencyTarget::Optional(_) => {
                let project = match root.get_mut("project") {
                    None => return Err(EditError::NoProjectTable { path }),
                    Some(item) => item
                        .as_table_like_mut()
                        .ok_or_else(|| wrong("project", "a table"))?,
                };
                match target {
                    DependencyTarget::Optional(extra) => {
                        let Some(extras) = child_table(project, "optional-dependencies", create)
                        else {
                            return Ok(None);
                        };
                        let extras = extras
                            .ok_or_else(|| wrong("project.optional-dependencies", "a table"))?;
                        let key = existing_key(extras, extra);
                        (extras, key)
                    }
                    _ => (project, "dependencies".to_string()),
                }
            }
            DependencyTarget::Group(group) => {
                let Some(groups) = child_table(root, "dependency-groups", create) else {
                    return Ok(None);
                };
                let groups = groups.ok_or_else(|| wrong("dependency-groups", "a table"))?;
                let key = existing_key(groups, group);
                (groups, key)
            }
        };
        if table.get(&key).is_none() {
            if !create {
                return Ok(None);
            }
            table.insert(&key, Item::Value(Value::Array(new_array())));
        }
        let described = target.describe();
        table
            .get_mut(&key)
            .and_then(Item::as_array_mut)
            .map(Some)
            .ok_or_else(|| wrong(&described, "an array"))
    }
}

impl std::fmt::Display for PyprojectEditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.doc)
    }
}

/// The table under `key` in `parent`: `None` when it is missing and not created, `Some(None)`
/// when it is not a table.
fn child_table<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
    create: bool,
) -> Option<Option<&'a mut dyn TableLike>> {
    if parent.get(key).is_none() {
        if !create {
            return None;
        }
        parent.insert(key, Item::Table(Table::new()));
    }
    Some(parent.get_mut(key).and_then(Item::as_table_like_mut))
}

/// The key in `table` that normalizes like `name` (so `--group Dev` edits `dev`), else `name`.
pub(super) fn existing_key(table: &dyn TableLike, name: &str) -> String {
    let wanted = normalize_name(name);
    table
        .iter()
        .map(|(k, _)| k)
        .find(|k| normalize_name(k) == wanted)
        .unwrap_or(name)
        .to_string()
}

/// The normalized package name of an array entry written as a requirement.
pub(super) fn entry_name(text: &str) -> Option<String> {
    written_name_of(text.trim()).map(normalize_name)
}

/// A new array, written one requirement per line with a trailing comma (as uv writes them).
fn new_array() -> Array {
    let mut array = Array::new();
    array.set_trailing_comma(true);
    array.set_trailing("\n");
    array
}

/// One array item: the whitespace (and comment lines) before it on its own line(s), the value,
/// and what ends its line after the comma (a comment, the newline).
struct ArrayItem {
    lead: String,
    value: Value,
    tail: String,
}

/// An array as items. toml_edit keeps the text between values as the next value's prefix;
/// here the part up to the first newline belongs to the line before.
struct Layout {
    /// What ends the `[` line.
    open_tail: String,
    items: Vec<ArrayItem>,
    /// What stands before `]` on its own line.
    close: String,
}

/// `" # c\n    "` -> (`" # c\n"`, `"    "`); without a newline, all of it is the second part.
fn split_line_end(s: &str) -> (&str, &str) {
    match s.find('\n') {
        Some(i) => s.split_at(i + 1),
        None => ("", s),
    }
}

/// The indentation at the end of a lead (after its last newline).
fn indentation(lead: &str) -> &str {
    lead.rsplit('\n').next().unwrap_or_default()
}

impl Layout {
    fn read(array: &Array) -> Self {
        let mut open_tail = String::new();
        let mut items: Vec<ArrayItem> = Vec::with_capacity(array.len());
        for (i, v) in array.iter().enumerate() {
            // A value without decor is displayed with toml_edit's default: none before the
            // first, one space before the others.
            let default = if i == 0 { "" } else { " " };
            let prefix = v
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or(default);
            let (head, rest) = split_line_end(prefix);
            match items.last_mut() {
                Some(previous) => previous.tail = head.to_string(),
                None => open_tail = head.to_string(),
            }
            let mut value = v.clone();
            value.decor_mut().set_prefix("");
            items.push(ArrayItem {
                lead: rest.to_string(),
                value,
                tail: String::new(),
            });
        }
        let mut trailing = array.trailing().as_str().unwrap_or_default().to_string();
        // Without a trailing comma, what follows the last value is its suffix, not the
        // array's trailing text: both print in the same place, keep it as the trailing.
        if !array.trailing_comma()
            && let Some(last) = items.last_mut()
        {
            let suffix = last
                .value
                .decor()
                .suffix()
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string();
            last.value.decor_mut().set_suffix("");
            trailing.insert_str(0, &suffix);
        }
        let trailing = trailing.as_str();
        let close = match items.last_mut() {
            Some(last) => {
                let (head, rest) = split_line_end(trailing);
                last.tail = head.to_string();
                rest.to_string()
            }
            None => trailing.to_string(),
        };
        Self {
            open_tail,
            items,
            close,
        }
    }

    fn write(self, array: &mut Array) {
        array.clear();
        let mut carry = self.open_tail;
        for item in self.items {
            let mut value = item.value;
            value
                .decor_mut()
                .set_prefix(format!("{carry}{}", item.lead));
            array.push_formatted(value);
            carry = item.tail;
        }
        array.set_trailing(format!("{carry}{}", self.close));
    }

    fn multiline(&self) -> bool {
        self.open_tail.contains('\n') || self.items.iter().any(|i| i.tail.contains('\n'))
    }

    /// Where `name` goes: its place when the entries are sorted by name, else the end.
    fn sorted_position(&self, name: &str) -> usize {
        let names: Option<Vec<String>> = self
            .items
            .iter()
            .map(|i| i.value.as_str().and_then(entry_name))
            .collect();
        match names {
            Some(names) if names.is_sorted() => names.partition_point(|n| n.as_str() <= name),
            _ => self.items.len(),
        }
    }

    fn insert(&mut self, position: usize, mut value: Value) {
        value.decor_mut().set_prefix("");
        let multiline = self.multiline();
        let tail = if multiline { "\n" } else { "" }.to_string();
        let separator = |items: &[ArrayItem], at: usize| -> String {
            match items.get(at) {
                Some(item) if multiline => indentation(&item.lead).to_string(),
                Some(_) => " ".to_string(),
                None => String::new(),
            }
        };
        if self.items.is_empty() {
            // An empty array written over several lines (`[\n]`, or one just created): the
            // item goes on a line of its own.
            let (head, rest) = split_line_end(&self.close);
            if !head.is_empty() {
                self.open_tail = head.to_string();
                self.close = rest.to_string();
                self.items.push(ArrayItem {
                    lead: "    ".to_string(),
                    value,
                    tail: "\n".to_string(),
                });
                return;
            }
        }
        let lead = if position == 0 {
            // The new first item takes the first item's lead (the indentation, or the space-less
            // start of a one-line array); the old first gets a separator's.
            let second = if self.items.len() > 1 { 1 } else { 0 };
            let sep = separator(&self.items, second);
            match self.items.first_mut() {
                Some(first) => std::mem::replace(&mut first.lead, sep),
                None => String::new(),
            }
        } else {
            separator(&self.items, position - 1)
        };
        self.items.insert(position, ArrayItem { lead, value, tail });
    }

    fn remove(&mut self, position: usize) {
        let removed = self.items.remove(position);
        // The new first item takes the lead of the one removed (undoing `insert` at 0).
        if position == 0
            && let Some(first) = self.items.first_mut()
            && first.lead.trim().is_empty()
        {
            first.lead = removed.lead;
        }
    }
}
