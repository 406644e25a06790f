//! Human-readable and JSON renderings of a universal DPL, for `dx-py dpl dump | get`.
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::reader::{UniversalDplEntry, UniversalDplReader};
use crate::dpl::{DplError, DplWheel};

fn file_json(w: &DplWheel<'_>) -> Value {
    json!({
        "filename": w.filename,
        "url": w.url,
        "path": w.path,
        "sha256": w.sha256_hex(),
        "size": w.size,
    })
}

impl<B: AsRef<[u8]>> UniversalDplReader<B> {
    /// A few lines describing the file: format, counts, requires-python, inputs hash.
    pub fn render_header(&self) -> Result<String, DplError> {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "DPL format 2 (universal), {}, {}",
            crate::plural::count_as(self.len(), "entry", "entries"),
            crate::plural::count(self.marker_count(), "distinct marker")
        );
        if let Some(rp) = self.requires_python()? {
            let _ = writeln!(out, "requires-python  {rp}");
        }
        for env in self.environments()? {
            let _ = writeln!(out, "environment      {env}");
        }
        let _ = writeln!(out, "inputs hash      {}", self.inputs_hash());
        Ok(out)
    }

    /// A readable multi-line description of `e`: marker, wheels, sdist, dependencies.
    pub fn render_entry(&self, e: &UniversalDplEntry<'_>) -> Result<String, DplError> {
        let mut out = String::new();
        let _ = writeln!(out, "[{}] {} {}", e.index(), e.name(), e.version());
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(out, "    {k:<16} {v}");
        };
        if let Some(m) = e.marker_index() {
            line("marker", self.marker(m)?);
        }
        if let Some(rp) = e.requires_python() {
            line("requires-python", rp);
        }
        if let Some(index) = e.index_url() {
            line("index", index);
        }
        for w in e.wheels() {
            line(
                "wheel",
                &format!("{}  sha256:{}", w.filename, w.sha256_hex()),
            );
        }
        if let Some(s) = e.sdist() {
            line(
                if e.is_archive() { "archive" } else { "sdist" },
                &format!("{}  sha256:{}", s.filename, s.sha256_hex()),
            );
        }
        if let Some((path, editable)) = e.directory() {
            line(
                "directory",
                &format!("{path}{}", if editable { "  (editable)" } else { "" }),
            );
        }
        let deps = e
            .dependencies()
            .map(|d| {
                self.entry(d as usize)
                    .map(|d| format!("{} {}", d.name(), d.version()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !deps.is_empty() {
            line("dependencies", &deps.join(", "));
        }
        Ok(out)
    }

    /// The whole file as JSON: header fields and every entry with its marker and files.
    pub fn to_json(&self) -> Result<Value, DplError> {
        let mut entries = Vec::with_capacity(self.len());
        for e in self.entries() {
            let e = e?;
            entries.push(json!({
                "index": e.index(),
                "name": e.name(),
                "version": e.version(),
                "marker": e.marker_index().map(|m| self.marker(m)).transpose()?,
                "requires_python": e.requires_python(),
                "index_url": e.index_url(),
                "wheels": e.wheels().map(|w| file_json(&w)).collect::<Vec<_>>(),
                "sdist": e.sdist().map(|s| file_json(&s)),
                "archive": e.is_archive(),
                "directory": e.directory().map(|(path, editable)| json!({
                    "path": path,
                    "editable": editable,
                })),
                "dependencies": e.dependencies().collect::<Vec<_>>(),
            }));
        }
        Ok(json!({
            "format_version": 2,
            "requires_python": self.requires_python()?,
            "environments": self.environments()?,
            "inputs_hash": self.inputs_hash().to_hex(),
            "entries": entries,
        }))
    }
}
