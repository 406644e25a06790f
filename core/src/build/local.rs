//! Building a local source tree (the project itself, a `./path` requirement) in place:
//! editable with PEP 660's `build_editable`, or built with `build_wheel`.
//!
//! A tree is not content-addressed like an sdist, so its builds are cached by a key of what
//! the wheel depends on:
//!
//! - editable: the tree's absolute path and the files that declare metadata and entry points
//!   (`pyproject.toml`, `setup.py`, `setup.cfg`, as uv's default cache keys). An editable
//!   wheel points at the tree; it holds no source, so a source edit needs no new wheel;
//! - built: the same, plus every file's path, size and modification time (the wheel holds
//!   the sources), skipping what builds and tools write into a tree (`build/`, `*.egg-info`,
//!   `.venv`, VCS directories, caches).
//!
//! `{cache}/builds/local/{key}/` then holds the wheel and its `build.log` (see `cache.rs`).
use std::path::Path;

use pep508_rs::PackageName;

use super::{BuildError, Builder, BuiltWheel, Hook};

/// How a local tree is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalMode {
    /// PEP 660: the wheel points at the tree, so source edits show without reinstalling.
    Editable,
    /// A wheel of the tree as it is now (`--no-editable`).
    Wheel,
}

impl LocalMode {
    fn hook(self) -> Hook {
        match self {
            Self::Editable => Hook::BuildEditable,
            Self::Wheel => Hook::BuildWheel,
        }
    }

    fn requires_hook(self) -> Hook {
        match self {
            Self::Editable => Hook::GetRequiresForBuildEditable,
            Self::Wheel => Hook::GetRequiresForBuildWheel,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Editable => "editable",
            Self::Wheel => "wheel",
        }
    }
}

/// Files whose contents decide an editable wheel (metadata, entry points, package mapping).
const KEY_FILES: [&str; 3] = ["pyproject.toml", "setup.py", "setup.cfg"];

/// Names a built wheel does not depend on: written by builds and tools into the tree.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        ".git"
            | ".hg"
            | ".svn"
            | ".venv"
            | "venv"
            | "__pycache__"
            | "build"
            | "dist"
            | ".tox"
            | ".nox"
            | ".mypy_cache"
            | ".pytest_cache"
            | ".ruff_cache"
    ) || name.ends_with(".egg-info")
}

/// The cache key of the build of the tree at `tree` (absolute) in `mode` by a builder whose
/// own key (interpreter tag, config settings) is `builder_key`.
pub fn local_key(tree: &Path, mode: LocalMode, builder_key: &str) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update(b"dx-py local build v1\0");
    h.update(tree.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(mode.tag().as_bytes());
    h.update(b"\0");
    h.update(builder_key.as_bytes());
    build_inputs(tree, mode, &mut h)?;
    Ok(h.finalize().to_hex()[..32].to_string())
}

/// A digest of what a build of `tree` in `mode` depends on, wherever the tree is and whoever
/// builds it: the metadata files' bytes, and for [`LocalMode::Wheel`] every file's path, size
/// and modification time. What a lock or a selection that names the tree is keyed by.
pub fn source_fingerprint(tree: &Path, mode: LocalMode) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update(mode.tag().as_bytes());
    build_inputs(tree, mode, &mut h)?;
    Ok(h.finalize().to_hex()[..32].to_string())
}

/// The metadata files of `tree` (absent ones as such), then its files when built.
fn build_inputs(tree: &Path, mode: LocalMode, h: &mut blake3::Hasher) -> std::io::Result<()> {
    for name in KEY_FILES {
        h.update(b"\0");
        h.update(name.as_bytes());
        match fs_err::read(tree.join(name)) {
            Ok(bytes) => {
                h.update(&(bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                h.update(b"absent");
            }
            Err(e) => return Err(e),
        }
    }
    if mode == LocalMode::Wheel {
        fingerprint_tree(tree, Path::new(""), h)?;
    }
    Ok(())
}

/// Adds every file under `tree/rel` (sorted, recursively) to `h`: its relative path, size and
/// modification time. Cheaper than reading contents, and what tools like make trust too.
fn fingerprint_tree(tree: &Path, rel: &Path, h: &mut blake3::Hasher) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs_err::read_dir(tree.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        if skipped(&name.to_string_lossy()) {
            continue;
        }
        let path = rel.join(&name);
        let meta = entry.metadata()?;
        if meta.is_dir() {
            fingerprint_tree(tree, &path, h)?;
            continue;
        }
        h.update(path.as_os_str().as_encoded_bytes());
        h.update(b"\0");
        h.update(&meta.len().to_le_bytes());
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(&modified.to_le_bytes());
    }
    Ok(())
}

impl Builder<'_> {
    /// The key of the local tree at `tree` in `mode` for this builder ([`local_key`] of the
    /// canonical path): what an install records the stored package under, so that the next
    /// install of an unchanged tree finds it in the store without the build cache.
    pub fn tree_key(&self, tree: &Path, mode: LocalMode) -> Result<String, BuildError> {
        let tree = fs_err::canonicalize(tree)?;
        Ok(local_key(&tree, mode, &self.key())?)
    }

    /// The wheel of the local tree at `tree` in `mode` (from the cache when its key is
    /// unchanged). `name`, when known, is checked against the wheel's metadata.
    pub fn local(
        &self,
        name: Option<&PackageName>,
        tree: &Path,
        mode: LocalMode,
    ) -> Result<BuiltWheel, BuildError> {
        // Canonical: an editable wheel records the path, and two spellings of one tree are
        // one build.
        let tree = fs_err::canonicalize(tree)?;
        if !tree.join("pyproject.toml").is_file() && !tree.join("setup.py").is_file() {
            // setuptools would build an `UNKNOWN` package of nothing; pip and uv refuse too.
            return Err(BuildError::NotAProject { path: tree });
        }
        let key = local_key(&tree, mode, &self.key())?;
        let label = match name {
            Some(n) => n.to_string(),
            None => tree
                .file_name()
                .map_or_else(|| "project".into(), |n| n.to_string_lossy().into_owned()),
        };
        self.once(format!("l {key}"), || {
            if let Some(built) = self.builds.local_wheel(&key) {
                self.count(|s| s.cached += 1);
                return Ok(built);
            }
            fs_err::create_dir_all(self.builds.root())?;
            let scratch = crate::temp::dir_in(self.builds.root())?;
            let (session, answered) = self.tree_session(
                &label,
                scratch,
                tree.clone(),
                mode.requires_hook(),
                Some(mode.hook()),
            )?;
            let answer = match answered {
                Some(answer) => answer,
                None => {
                    let out = session.scratch.path().join("out");
                    self.runner(&session, &label)
                        .run(mode.hook(), &out, None)
                        .map_err(|e| self.keep_log(e, &label))?
                }
            };
            if answer.missing.is_some() {
                return Err(BuildError::NoEditable {
                    package: label.clone(),
                    path: tree.clone(),
                    backend: session.system.backend.clone(),
                });
            }
            let wheel = answer.wheel.ok_or_else(|| BuildError::BadAnswer {
                package: label.clone(),
                hook: mode.hook().name(),
                reason: "no wheel file name".into(),
            })?;
            self.check_built(&label, &tree.display().to_string(), &wheel, name, None)?;
            let built = self.builds.publish_local(&key, &wheel, &session.log())?;
            self.count(|s| s.built += 1);
            Ok(built)
        })
    }
}

impl Builder<'_> {
    /// The wheel built from the local source archive at `path` (`./x-1.0.tar.gz`): cached by
    /// the archive's sha256 like an index sdist, so the same file is built once wherever it
    /// comes from. `name`, when known, is checked against the wheel's metadata.
    pub fn archive(
        &self,
        name: Option<&PackageName>,
        path: &Path,
    ) -> Result<BuiltWheel, BuildError> {
        let path = fs_err::canonicalize(path)?;
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = crate::index::IndexFile {
            url: url::Url::from_file_path(&path)
                .map_or_else(|()| path.display().to_string(), String::from),
            filename: filename.clone(),
            ..crate::index::IndexFile::default()
        };
        let sha256 = self.sha256(&file)?;
        let key = self.key();
        let label = name.map_or_else(|| filename.clone(), ToString::to_string);
        self.once(format!("w {sha256} {key}"), || {
            if let Some(built) = self.cached_wheel(&sha256, &key) {
                self.count(|s| s.cached += 1);
                return Ok(built);
            }
            let (session, answer) =
                self.run_in_session(&label, &file, &sha256, Hook::BuildWheel)?;
            let wheel = answer.wheel.ok_or_else(|| BuildError::BadAnswer {
                package: label.clone(),
                hook: Hook::BuildWheel.name(),
                reason: "no wheel file name".into(),
            })?;
            self.check_built(&label, &filename, &wheel, name, None)?;
            let built = self.publish_built(&sha256, &key, &wheel, &session.log())?;
            self.count(|s| s.built += 1);
            Ok(built)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), "[project]\nname = 'p'\n").unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/__init__.py"), "x = 1\n").unwrap();
        dir
    }

    #[test]
    fn an_editable_key_ignores_sources_but_not_metadata_or_path() {
        let dir = tree();
        let key = |d: &Path| local_key(d, LocalMode::Editable, "cp311").unwrap();
        let first = key(dir.path());
        std::fs::write(dir.path().join("p/__init__.py"), "x = 2\n").unwrap();
        std::fs::write(dir.path().join("p/new.py"), "").unwrap();
        assert_eq!(
            key(dir.path()),
            first,
            "a source edit needs no new editable wheel"
        );
        std::fs::write(dir.path().join("setup.cfg"), "[metadata]\n").unwrap();
        let with_cfg = key(dir.path());
        assert_ne!(with_cfg, first, "setup.cfg can declare metadata");
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[project]\nname = 'p'\nversion = '2'\n",
        )
        .unwrap();
        assert_ne!(key(dir.path()), with_cfg);
        let other = tree();
        assert_ne!(
            key(other.path()),
            key(dir.path()),
            "the path is in the wheel"
        );
        assert_ne!(
            local_key(dir.path(), LocalMode::Editable, "cp312").unwrap(),
            key(dir.path())
        );
    }

    #[test]
    fn a_built_key_follows_sources_but_not_build_output() {
        let dir = tree();
        let key = || local_key(dir.path(), LocalMode::Wheel, "cp311").unwrap();
        let first = key();
        assert_ne!(
            first,
            local_key(dir.path(), LocalMode::Editable, "cp311").unwrap()
        );
        for skipped in ["build", "p.egg-info", ".venv", "__pycache__", ".git"] {
            std::fs::create_dir_all(dir.path().join(skipped)).unwrap();
            std::fs::write(dir.path().join(skipped).join("f"), "x").unwrap();
        }
        assert_eq!(
            key(),
            first,
            "build output and tool directories do not count"
        );
        std::fs::write(dir.path().join("p/__init__.py"), "x = 22\n").unwrap();
        assert_ne!(key(), first, "the wheel holds the sources");
    }
}
