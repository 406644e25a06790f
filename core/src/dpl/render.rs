//! Human-readable and JSON renderings of a DPL, for `dx-py dpl dump`.
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::format::HEADER_LEN;
use super::reader::{DplEntry, DplError, DplReader};

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_string()))
}

impl<B: AsRef<[u8]>> DplReader<B> {
    /// A few lines describing the file: format, environment, inputs hash, counts.
    pub fn render_header(&self) -> String {
        let mut out = String::new();
        let unknown = |s: &str| if s.is_empty() { "(unknown)" } else { s }.to_string();
        let _ = writeln!(
            out,
            "DPL format {}, {}, {}",
            self.format_version(),
            crate::plural::count(self.len(), "package"),
            crate::plural::count(self.bytes().len(), "byte")
        );
        let _ = writeln!(out, "environment      {}", unknown(self.environment()));
        let _ = writeln!(out, "python version   {}", unknown(self.python_version()));
        if let Some(rp) = self.requires_python() {
            let _ = writeln!(out, "requires-python  {rp}");
        }
        let _ = writeln!(out, "inputs hash      {}", self.inputs_hash());
        out
    }

    /// A readable multi-line description of entry `index`, dependencies by name.
    pub fn render_entry(&self, index: usize) -> Result<String, DplError> {
        let e = self.entry(index)?;
        let mut out = String::new();
        let _ = writeln!(out, "[{}] {} {}", e.index(), e.name(), e.version());
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(out, "    {k:<16} {v}");
        };
        line("normalized name", e.normalized_name());
        line(
            "version parts",
            &format!(
                "{}.{}.{}",
                e.version_major(),
                e.version_minor(),
                e.version_patch()
            ),
        );
        line("wheel", e.wheel().filename);
        if let Some(url) = e.wheel().url {
            line("url", url);
        }
        if let Some(path) = e.wheel().path {
            line("path", path);
        }
        line("sha256", &e.wheel().sha256_hex());
        if let Some(size) = e.wheel().size {
            line("size", &format!("{size} bytes"));
        }
        line(
            "store hash",
            &e.store_hash()
                .map_or_else(|| "(not stored yet)".to_string(), |h| h.to_hex()),
        );
        if let Some(index) = e.index_url() {
            line("index", index);
        }
        if let Some(marker) = e.marker() {
            line("marker", marker);
        }
        if let Some(rp) = e.requires_python() {
            line("requires-python", rp);
        }
        if e.extras().next().is_some() {
            let extras: Vec<String> = e
                .extras()
                .enumerate()
                .map(|(i, x)| {
                    let on = if e.extras_bitmap() & (1 << i) != 0 {
                        "x"
                    } else {
                        " "
                    };
                    format!("[{on}] {x}")
                })
                .collect();
            line("extras", &extras.join(", "));
        }
        let deps = e
            .dependencies()
            .map(|d| {
                self.entry(d as usize)
                    .map(|t| format!("{} [{d}]", t.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !deps.is_empty() {
            line("dependencies", &deps.join(", "));
        }
        Ok(out)
    }

    /// The whole lock as JSON: project data, then every entry with its DPL fields.
    pub fn to_json(&self) -> Result<Value, DplError> {
        let entries = self.entries().collect::<Result<Vec<_>, _>>()?;
        let packages: Vec<Value> = entries.iter().map(|e| entry_json(e, &entries)).collect();
        Ok(json!({
            "format": "dpl",
            "format_version": self.format_version(),
            "header_len": HEADER_LEN,
            "file_len": self.bytes().len(),
            "environment": self.environment(),
            "python_version": self.python_version(),
            "requires_python": opt(self.requires_python()),
            "inputs_hash": self.inputs_hash().to_hex(),
            "packages": packages,
        }))
    }
}

fn entry_json(e: &DplEntry<'_>, all: &[DplEntry<'_>]) -> Value {
    let deps: Vec<Value> = e
        .dependencies()
        .map(|d| {
            json!({
                "index": d,
                "name": all.get(d as usize).map(|t| t.name()),
            })
        })
        .collect();
    json!({
        "index": e.index(),
        "name": e.name(),
        "normalized_name": e.normalized_name(),
        "version": e.version(),
        "version_major": e.version_major(),
        "version_minor": e.version_minor(),
        "version_patch": e.version_patch(),
        "marker": opt(e.marker()),
        "requires_python": opt(e.requires_python()),
        "index_url": opt(e.index_url()),
        "extras": e.extras().collect::<Vec<_>>(),
        "extras_bitmap": e.extras_bitmap(),
        "selected_extras": e.selected_extras().collect::<Vec<_>>(),
        "wheel": {
            "filename": e.wheel().filename,
            "url": opt(e.wheel().url),
            "path": opt(e.wheel().path),
            "sha256": e.wheel().sha256_hex(),
            "size": e.wheel().size,
        },
        "store_hash": e.store_hash().map(|h| h.to_hex()),
        "dependencies": deps,
    })
}
