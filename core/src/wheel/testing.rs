//! Builds valid wheels in memory for tests and benchmarks (cargo feature `testing`).
//!
//! ```
//! # use dx_py_core::wheel::testing::WheelBuilder;
//! let wheel = WheelBuilder::new("demo-pkg", "1.0")
//!     .file("demo_pkg/__init__.py", b"x = 1\n")
//!     .console_script("demo", "demo_pkg:main");
//! let bytes = wheel.build();
//! let converted = dx_py_core::wheel::convert_wheel(&wheel.filename(), &bytes).unwrap();
//! assert_eq!(converted.name, "demo-pkg");
//! ```
//!
//! For a wheel that breaks one rule, take [`WheelBuilder::entries`], change them, and zip them
//! with [`zip_entries`] (after [`with_record`] when RECORD should still be right).
use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::hash::sha256_record;

/// What a [`RawEntry`] is in the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawKind {
    /// A regular file.
    File,
    /// A symlink; the data is its target.
    Symlink,
    /// A directory entry (`path/`); no data.
    Dir,
}

/// One archive entry, written exactly as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// The name in the archive, without the trailing `/` of a directory.
    pub path: String,
    /// File, symlink or directory.
    pub kind: RawKind,
    /// Unix permission bits; the file type is added from `kind` unless bits `0o170000` are set,
    /// which are then written as they are.
    pub mode: u32,
    /// The content, or the target of a symlink.
    pub data: Vec<u8>,
}

impl RawEntry {
    /// A `0o644` file.
    pub fn file(path: &str, data: &[u8]) -> Self {
        Self {
            path: path.to_string(),
            kind: RawKind::File,
            mode: 0o644,
            data: data.to_vec(),
        }
    }

    /// A `0o755` file.
    pub fn executable(path: &str, data: &[u8]) -> Self {
        Self {
            mode: 0o755,
            ..Self::file(path, data)
        }
    }

    /// A symlink to `target`.
    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.to_string(),
            kind: RawKind::Symlink,
            mode: 0o777,
            data: target.as_bytes().to_vec(),
        }
    }

    /// A directory entry.
    pub fn dir(path: &str) -> Self {
        Self {
            path: path.to_string(),
            kind: RawKind::Dir,
            mode: 0o755,
            data: Vec::new(),
        }
    }
}

/// Zips `entries` in the given order, deflated, with a fixed timestamp and unix attributes.
///
/// # Panics
/// When the zip writer refuses an entry (e.g. a name used twice).
pub fn zip_entries(entries: &[RawEntry]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let base = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .system(System::Unix);
    for e in entries {
        // Type bits (a device, a FIFO) need the raw external attributes.
        let opts = if e.mode & 0o170_000 != 0 {
            base.external_attributes(e.mode << 16)
        } else {
            base.unix_permissions(e.mode)
        };
        match e.kind {
            RawKind::File => {
                zip.start_file(e.path.as_str(), opts)
                    .expect("start zip entry");
                zip.write_all(&e.data).expect("write zip entry");
            }
            RawKind::Symlink => zip
                .add_symlink(
                    e.path.as_str(),
                    String::from_utf8_lossy(&e.data).as_ref(),
                    opts,
                )
                .expect("add zip symlink"),
            RawKind::Dir => zip
                .add_directory(format!("{}/", e.path), opts)
                .expect("add zip directory"),
        }
    }
    zip.finish().expect("finish zip").into_inner()
}

/// The RECORD a wheel builder writes for `entries`: every non-directory entry hashed, in order,
/// then `record_path,,`.
pub fn record_for(entries: &[RawEntry], record_path: &str) -> Vec<u8> {
    let mut out = String::new();
    for e in entries.iter().filter(|e| e.kind != RawKind::Dir) {
        out.push_str(&format!(
            "{},sha256={},{}\n",
            e.path,
            sha256_record(&e.data),
            e.data.len()
        ));
    }
    out.push_str(&format!("{record_path},,\n"));
    out.into_bytes()
}

/// Drops any entry at `record_path` and appends a RECORD that is right for the rest.
pub fn with_record(mut entries: Vec<RawEntry>, record_path: &str) -> Vec<RawEntry> {
    entries.retain(|e| e.path != record_path);
    let record = record_for(&entries, record_path);
    entries.push(RawEntry::file(record_path, &record));
    entries
}

/// `re.sub(r"[-_.]+", "_", name)`: the wheel file name escape.
fn escape(name: &str) -> String {
    let mut out = String::new();
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('_');
            }
            last_sep = true;
        } else {
            out.push(c);
            last_sep = false;
        }
    }
    out
}

/// A valid wheel, described by its files.
#[derive(Clone, Debug)]
pub struct WheelBuilder {
    name: String,
    version: String,
    build: Option<String>,
    tag: String,
    files: Vec<RawEntry>,
    data: Vec<RawEntry>,
    dist_info_files: Vec<RawEntry>,
    console_scripts: Vec<(String, String)>,
    gui_scripts: Vec<(String, String)>,
    requires_dist: Vec<String>,
    requires_python: Option<String>,
    provides_extra: Vec<String>,
    metadata_name: Option<String>,
    metadata_version: Option<String>,
}

impl WheelBuilder {
    /// A `py3-none-any` wheel of `name` `version` with no files yet.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            build: None,
            tag: "py3-none-any".to_string(),
            files: Vec::new(),
            data: Vec::new(),
            dist_info_files: Vec::new(),
            console_scripts: Vec::new(),
            gui_scripts: Vec::new(),
            requires_dist: Vec::new(),
            requires_python: None,
            provides_extra: Vec::new(),
            metadata_name: None,
            metadata_version: None,
        }
    }

    /// Sets the compressed tag set, e.g. `cp311-cp311-manylinux_2_17_x86_64`.
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.to_string();
        self
    }

    /// Sets a build tag.
    pub fn build_tag(mut self, build: &str) -> Self {
        self.build = Some(build.to_string());
        self
    }

    /// Adds a `0o644` file at the wheel root (site-packages).
    pub fn file(mut self, path: &str, data: &[u8]) -> Self {
        self.files.push(RawEntry::file(path, data));
        self
    }

    /// Adds a `0o755` file at the wheel root.
    pub fn executable(mut self, path: &str, data: &[u8]) -> Self {
        self.files.push(RawEntry::executable(path, data));
        self
    }

    /// Adds a symlink at the wheel root.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.files.push(RawEntry::symlink(path, target));
        self
    }

    /// Adds an entry at the wheel root, as given.
    pub fn raw(mut self, entry: RawEntry) -> Self {
        self.files.push(entry);
        self
    }

    /// Adds `{name}-{version}.data/{scheme}/{path}`; `scheme` is `purelib`, `scripts`, ...
    pub fn data_file(mut self, scheme: &str, path: &str, data: &[u8]) -> Self {
        let mut e = RawEntry::file(&format!("{scheme}/{path}"), data);
        if scheme == "scripts" {
            e.mode = 0o755;
        }
        self.data.push(e);
        self
    }

    /// Adds a file to the `.dist-info` directory (e.g. `LICENSE`).
    pub fn dist_info_file(mut self, path: &str, data: &[u8]) -> Self {
        self.dist_info_files.push(RawEntry::file(path, data));
        self
    }

    /// Adds `name = target` to `[console_scripts]`.
    pub fn console_script(mut self, name: &str, target: &str) -> Self {
        self.console_scripts
            .push((name.to_string(), target.to_string()));
        self
    }

    /// Adds `name = target` to `[gui_scripts]`.
    pub fn gui_script(mut self, name: &str, target: &str) -> Self {
        self.gui_scripts
            .push((name.to_string(), target.to_string()));
        self
    }

    /// Adds a `Requires-Dist`.
    pub fn requires_dist(mut self, requirement: &str) -> Self {
        self.requires_dist.push(requirement.to_string());
        self
    }

    /// Sets `Requires-Python`.
    pub fn requires_python(mut self, spec: &str) -> Self {
        self.requires_python = Some(spec.to_string());
        self
    }

    /// Adds a `Provides-Extra`.
    pub fn provides_extra(mut self, extra: &str) -> Self {
        self.provides_extra.push(extra.to_string());
        self
    }

    /// Writes another `Name` into METADATA than the file name's.
    pub fn metadata_name(mut self, name: &str) -> Self {
        self.metadata_name = Some(name.to_string());
        self
    }

    /// Writes another `Version` into METADATA than the file name's.
    pub fn metadata_version(mut self, version: &str) -> Self {
        self.metadata_version = Some(version.to_string());
        self
    }

    /// `{name}-{version}[-{build}]-{tag}.whl`.
    pub fn filename(&self) -> String {
        match &self.build {
            Some(b) => format!(
                "{}-{}-{b}-{}.whl",
                escape(&self.name),
                self.version,
                self.tag
            ),
            None => format!("{}-{}-{}.whl", escape(&self.name), self.version, self.tag),
        }
    }

    /// `{name}-{version}.dist-info`.
    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", escape(&self.name), self.version)
    }

    /// `{name}-{version}.data`.
    pub fn data_dir(&self) -> String {
        format!("{}-{}.data", escape(&self.name), self.version)
    }

    /// `{dist_info}/RECORD`.
    pub fn record_path(&self) -> String {
        format!("{}/RECORD", self.dist_info())
    }

    /// The METADATA text.
    pub fn metadata_text(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.metadata_name.as_deref().unwrap_or(&self.name),
            self.metadata_version.as_deref().unwrap_or(&self.version),
        );
        if let Some(rp) = &self.requires_python {
            m.push_str(&format!("Requires-Python: {rp}\n"));
        }
        for r in &self.requires_dist {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        for e in &self.provides_extra {
            m.push_str(&format!("Provides-Extra: {e}\n"));
        }
        m.push_str("\nA test package.\n");
        m
    }

    /// Every entry, in archive order, RECORD last and right.
    pub fn entries(&self) -> Vec<RawEntry> {
        let dist_info = self.dist_info();
        let mut out = self.files.clone();
        let data_dir = self.data_dir();
        out.extend(self.data.iter().map(|e| RawEntry {
            path: format!("{data_dir}/{}", e.path),
            ..e.clone()
        }));
        out.extend(self.dist_info_files.iter().map(|e| RawEntry {
            path: format!("{dist_info}/{}", e.path),
            ..e.clone()
        }));
        out.push(RawEntry::file(
            &format!("{dist_info}/METADATA"),
            self.metadata_text().as_bytes(),
        ));
        let wheel = format!(
            "Wheel-Version: 1.0\nGenerator: dx-py-testing\nRoot-Is-Purelib: true\nTag: {}\n",
            self.tag
        );
        out.push(RawEntry::file(
            &format!("{dist_info}/WHEEL"),
            wheel.as_bytes(),
        ));
        if !self.console_scripts.is_empty() || !self.gui_scripts.is_empty() {
            let mut ep = String::new();
            for (section, list) in [
                ("console_scripts", &self.console_scripts),
                ("gui_scripts", &self.gui_scripts),
            ] {
                if !list.is_empty() {
                    ep.push_str(&format!("[{section}]\n"));
                    for (n, t) in list {
                        ep.push_str(&format!("{n} = {t}\n"));
                    }
                    ep.push('\n');
                }
            }
            out.push(RawEntry::file(
                &format!("{dist_info}/entry_points.txt"),
                ep.as_bytes(),
            ));
        }
        with_record(out, &self.record_path())
    }

    /// The wheel's bytes.
    ///
    /// # Panics
    /// When the zip writer refuses an entry (e.g. a file added twice).
    pub fn build(&self) -> Vec<u8> {
        zip_entries(&self.entries())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let w = WheelBuilder::new("Foo.bar-baz", "1.0").build_tag("2");
        assert_eq!(w.filename(), "Foo_bar_baz-1.0-2-py3-none-any.whl");
        assert_eq!(w.dist_info(), "Foo_bar_baz-1.0.dist-info");
        assert_eq!(w.data_dir(), "Foo_bar_baz-1.0.data");
    }
}
