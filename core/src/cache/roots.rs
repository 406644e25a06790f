//! Roots: the venvs and mounts that use the cache, so that cleaning (and later pruning) knows
//! what must stay.
//!
//! Every install and mount appends one JSON line to `{cache}/roots/log`:
//! `{"venv": PATH, "layout": HASH}` or `{"mount": PATH, "tree": PATH}`. Appending to a file
//! that exists creates no directory entry, and an `O_APPEND` write of one short line is atomic
//! among concurrent writers, so recording costs a warm install one `open` + `write` and no
//! lock. The log is a list of claims, checked when read: a venv is live while its own marker
//! (the `.pth` file) still names a layout, whatever the log says; a mount while its mount point
//! is a dx-py mount. Later lines for the same path win. `compact` rewrites the log with the live
//! roots only (under the cache's exclusive lock).
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `{cache}/roots/log`.
const LOG_NAME: &str = "log";

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Venv { venv: PathBuf, layout: String },
    Mount { mount: PathBuf, tree: PathBuf },
}

/// A venv or mount that uses the cache, as checked now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// A venv whose marker names a layout (the hex project hash, as the marker has it).
    Venv {
        /// The venv directory.
        path: PathBuf,
        /// The layout directory its `.pth` file adds.
        layout: PathBuf,
    },
    /// A live dx-py mount serving `tree`.
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The `.dxtree` file it was mounted with.
        tree: PathBuf,
    },
}

impl Root {
    /// The venv or mount point.
    pub fn path(&self) -> &Path {
        match self {
            Root::Venv { path, .. } | Root::Mount { path, .. } => path,
        }
    }
}

/// Records that `venv` now uses the layout `project_hash` (hex). A cache whose roots cannot be
/// written (read-only) only gets a debug line: roots protect against cleaning, they do not
/// make an install.
pub fn record_venv(roots_dir: &Path, venv: &Path, project_hash: &str) {
    append(
        roots_dir,
        &Line::Venv {
            venv: absolute(venv),
            layout: project_hash.to_string(),
        },
    );
}

/// Records that a mount at `mountpoint` serves `tree`.
pub fn record_mount(roots_dir: &Path, mountpoint: &Path, tree: &Path) {
    append(
        roots_dir,
        &Line::Mount {
            mount: absolute(mountpoint),
            tree: absolute(tree),
        },
    );
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn append(roots_dir: &Path, line: &Line) {
    let mut text = serde_json::to_string(line).unwrap_or_default();
    text.push('\n');
    let path = roots_dir.join(LOG_NAME);
    let open = || {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(roots_dir).and_then(|()| open())
        }
        other => other,
    };
    // One write call: appends of a short line do not interleave with other writers'.
    if let Err(e) = file.and_then(|mut f| f.write_all(text.as_bytes())) {
        tracing::debug!("Not recording root in `{}`: {e}", path.display());
    }
}

/// The roots that are live now. `layout_of(venv)` reads a venv's marker (its layout directory),
/// `is_mounted(path)` says whether a dx-py mount is at `path`; both are asked once per path.
pub fn live_roots(
    roots_dir: &Path,
    layout_of: impl Fn(&Path) -> Option<PathBuf>,
    is_mounted: impl Fn(&Path) -> bool,
) -> Vec<Root> {
    let Ok(text) = std::fs::read_to_string(roots_dir.join(LOG_NAME)) else {
        return Vec::new();
    };
    // The last claim per path wins; lines torn by a crash or written by others are skipped.
    let mut last: BTreeMap<PathBuf, Line> = BTreeMap::new();
    for line in text.lines() {
        if let Ok(claim) = serde_json::from_str::<Line>(line) {
            let path = match &claim {
                Line::Venv { venv, .. } => venv.clone(),
                Line::Mount { mount, .. } => mount.clone(),
            };
            last.insert(path, claim);
        }
    }
    last.into_values()
        .filter_map(|line| match line {
            // What the venv's own marker says now is the truth, not the log.
            Line::Venv { venv, .. } => {
                layout_of(&venv).map(|layout| Root::Venv { path: venv, layout })
            }
            Line::Mount { mount, tree } => {
                is_mounted(&mount).then_some(Root::Mount { path: mount, tree })
            }
        })
        .collect()
}

/// Rewrites the log with `live` only. Call under the cache's exclusive lock: an append racing
/// with the rewrite would be lost (the install holding a shared lock cannot run meanwhile).
pub fn compact(roots_dir: &Path, live: &[Root]) -> std::io::Result<()> {
    let mut text = String::new();
    for root in live {
        let line = match root {
            Root::Venv { path, layout } => Line::Venv {
                venv: path.clone(),
                layout: layout
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            },
            Root::Mount { path, tree } => Line::Mount {
                mount: path.clone(),
                tree: tree.clone(),
            },
        };
        text.push_str(&serde_json::to_string(&line).unwrap_or_default());
        text.push('\n');
    }
    if text.is_empty() && !roots_dir.join(LOG_NAME).exists() {
        return Ok(());
    }
    fs_err::create_dir_all(roots_dir)?;
    crate::atomic::replace(&roots_dir.join(LOG_NAME), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_claim_per_path_wins_and_only_live_roots_are_returned() {
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("roots");
        let (a, b, m) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("m"),
        );
        record_venv(&roots, &a, "11");
        record_venv(&roots, &b, "22");
        record_venv(&roots, &a, "33");
        record_mount(&roots, &m, Path::new("/t/x.dxtree"));
        // A torn line from a crash is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(roots.join(LOG_NAME))
            .unwrap()
            .write_all(b"{\"venv\": \"/x\", \"lay")
            .unwrap();
        let layout_of = |p: &Path| (p == a).then(|| PathBuf::from("/layouts/33"));
        let live = live_roots(&roots, layout_of, |p| p == m);
        assert_eq!(
            live,
            vec![
                Root::Venv {
                    path: a.clone(),
                    layout: PathBuf::from("/layouts/33")
                },
                Root::Mount {
                    path: m.clone(),
                    tree: PathBuf::from("/t/x.dxtree")
                },
            ]
        );
        compact(&roots, &live).unwrap();
        let text = std::fs::read_to_string(roots.join(LOG_NAME)).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(live_roots(&roots, layout_of, |p| p == m), live);
        // Nothing is live: the log empties.
        compact(&roots, &[]).unwrap();
        assert!(live_roots(&roots, |_| Some(PathBuf::new()), |_| true).is_empty());
    }

    #[test]
    fn concurrent_appends_never_tear_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("roots");
        std::thread::scope(|s| {
            for t in 0..8 {
                let roots = &roots;
                s.spawn(move || {
                    for i in 0..200 {
                        record_venv(roots, Path::new(&format!("/v/{t}/{i}")), "ab");
                    }
                });
            }
        });
        let text = std::fs::read_to_string(roots.join(LOG_NAME)).unwrap();
        assert_eq!(text.lines().count(), 1600);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<Line>(l).is_ok())
        );
    }

    #[test]
    fn an_unwritable_roots_dir_is_not_an_error() {
        record_venv(Path::new("/proc/nonexistent/roots"), Path::new("/v"), "ab");
        assert!(live_roots(Path::new("/proc/nonexistent/roots"), |_| None, |_| false).is_empty());
    }
}
