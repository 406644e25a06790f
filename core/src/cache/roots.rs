//! Roots: the venvs, mounts and locks that use the cache, so that cleaning and pruning know
//! what must stay.
//!
//! ```text
//! {cache}/roots/
//! └── {blake3(absolute path)[..32]}   one small JSON file per root (docs/design/cache.md)
//! ```
//!
//! A root file is a claim, checked when read (see [`super::reach`]): a venv is live while its own
//! marker still names the recorded layout, a mount while a dx-py mount is at its path, a lock
//! while the file still has the recorded hash. One file per path means a new install into the
//! same venv replaces its claim instead of growing a log, and a stale claim is one file to
//! remove. Recording reads the file first and writes only when the claim changed, so a warm
//! install repeating itself costs one small read, and one into a new venv one small write.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::ContentHash;

/// The version of the root file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Hex digits of the path's blake3 that name a root file: 128 bits, no collisions in practice.
const NAME_LEN: usize = 32;

/// What a root uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uses {
    /// A venv pointed at the layout with this key (the project hash, in hex).
    Layout(String),
    /// A mount serving the tree with this key (`{key}.dxtree` in the trees directory).
    Tree(String),
    /// A lock file whose bytes hash (blake3) to `hash`, naming these store objects.
    Lock {
        /// blake3 of the lock file's bytes when it was recorded.
        hash: ContentHash,
        /// The store objects its entries name.
        objects: Vec<ContentHash>,
    },
}

/// One root: a path and what it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// The venv, mount point or lock file (absolute).
    pub path: PathBuf,
    /// What it uses.
    pub uses: Uses,
}

impl Root {
    /// `venv`, `mount` or `lock`.
    pub fn kind(&self) -> &'static str {
        match self.uses {
            Uses::Layout(_) => "venv",
            Uses::Tree(_) => "mount",
            Uses::Lock { .. } => "lock",
        }
    }
}

/// A root file that cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum RootFileError {
    /// Not JSON of the expected shape.
    #[error("Root file `{}` is not a valid root record", path.display())]
    Syntax {
        /// The root file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Written by another version of dx-py.
    #[error("Root file `{}` has format version {got}, expected {expected}", path.display())]
    Version {
        /// The root file.
        path: PathBuf,
        /// What this build reads.
        expected: u32,
        /// What the file says.
        got: u32,
    },
    /// A hash that is not 64 hex digits, or a key that could not name a file.
    #[error("Root file `{}` has an invalid {what} `{value}`", path.display())]
    Value {
        /// The root file.
        path: PathBuf,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// Reading the file failed.
    #[error("Failed to read root file `{}`", path.display())]
    Read {
        /// The root file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The serialized form: `{"version":1,"kind":"venv","path":…,"layout":…}`.
#[derive(Serialize, Deserialize)]
struct Wire {
    version: u32,
    path: PathBuf,
    #[serde(flatten)]
    uses: WireUses,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum WireUses {
    Venv { layout: String },
    Mount { tree: String },
    Lock { lock: String, objects: Vec<String> },
}

/// The file name of the root at `path` (absolute).
pub fn file_name(path: &Path) -> String {
    let mut hex = ContentHash::of(path.as_os_str().as_encoded_bytes()).to_hex();
    hex.truncate(NAME_LEN);
    hex
}

/// The bytes of `root`'s file. `None` for a path JSON cannot hold (not UTF-8): such a root
/// is not recorded, which only means pruning does not know it.
pub fn encode(root: &Root) -> Option<Vec<u8>> {
    let uses = match &root.uses {
        Uses::Layout(layout) => WireUses::Venv {
            layout: layout.clone(),
        },
        Uses::Tree(tree) => WireUses::Mount { tree: tree.clone() },
        Uses::Lock { hash, objects } => WireUses::Lock {
            lock: hash.to_hex(),
            objects: objects.iter().map(ContentHash::to_hex).collect(),
        },
    };
    let wire = Wire {
        version: FORMAT_VERSION,
        path: root.path.clone(),
        uses,
    };
    let mut bytes = serde_json::to_vec(&wire).ok()?;
    bytes.push(b'\n');
    Some(bytes)
}

/// Reads a root file's bytes; `file` names it in errors.
pub fn decode(bytes: &[u8], file: &Path) -> Result<Root, RootFileError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|source| RootFileError::Syntax {
        path: file.to_path_buf(),
        source,
    })?;
    if wire.version != FORMAT_VERSION {
        return Err(RootFileError::Version {
            path: file.to_path_buf(),
            expected: FORMAT_VERSION,
            got: wire.version,
        });
    }
    let bad = |what, value: &str| RootFileError::Value {
        path: file.to_path_buf(),
        what,
        value: value.to_string(),
    };
    let hash = |what, value: &str| value.parse::<ContentHash>().map_err(|_| bad(what, value));
    // Keys become file names under the cache: nothing that could leave a directory.
    let key = |what, value: String| {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Err(bad(what, &value))
        } else {
            Ok(value)
        }
    };
    let uses = match wire.uses {
        WireUses::Venv { layout } => Uses::Layout(key("layout key", layout)?),
        WireUses::Mount { tree } => Uses::Tree(key("tree key", tree)?),
        WireUses::Lock { lock, objects } => Uses::Lock {
            hash: hash("lock hash", &lock)?,
            objects: objects
                .iter()
                .map(|o| hash("object hash", o))
                .collect::<Result<_, _>>()?,
        },
    };
    if !wire.path.is_absolute() {
        return Err(bad("path", &wire.path.to_string_lossy()));
    }
    Ok(Root {
        path: wire.path,
        uses,
    })
}

/// Records `root` (its path made absolute) in `roots_dir`, writing only when the claim changed.
/// A cache whose roots cannot be written (read-only) only gets a debug line: roots protect
/// against pruning, they do not make an install.
pub fn record(roots_dir: &Path, root: Root) {
    let root = Root {
        path: std::path::absolute(&root.path).unwrap_or(root.path),
        uses: root.uses,
    };
    let Some(bytes) = encode(&root) else {
        tracing::debug!("Not recording root `{}`: not UTF-8", root.path.display());
        return;
    };
    let file = roots_dir.join(file_name(&root.path));
    let written = match std::fs::read(&file) {
        // The same claim: kept as it is; a mount's is stamped now, since its grace (see
        // `super::reach`) counts from the moment it is made (a new file would cost a create,
        // the dearest file operation here, on every mount).
        Ok(old) if old == bytes => match root.uses {
            Uses::Tree(_) => stamp(&file, std::time::SystemTime::now()),
            _ => return,
        },
        Ok(_) => replace(roots_dir, &file, &bytes),
        Err(_) => create(roots_dir, &file, &bytes),
    };
    if let Err(e) = written {
        tracing::debug!("Not recording root in `{}`: {e}", file.display());
    }
}

/// Writes a new root file in place: one `open` + `write`, no temporary, no rename, no fsync —
/// this is on the path of every install into a new venv. Nothing reads it meanwhile (prune holds
/// the cache lock exclusive, writers hold it shared), and a file torn by a crash reads as a dead
/// root: the worst that follows is a venv to install again after a pruned layout.
fn create(roots_dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
    };
    let mut f = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs_err::create_dir_all(roots_dir)?;
            open()?
        }
        // Another writer made it first: replace theirs, the latest claim wins.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return replace(roots_dir, file, bytes);
        }
        other => other?,
    };
    f.write_all(bytes)
}

/// Replaces a root file with one rename (readers see the old or the new claim), without fsync
/// for the reason [`create`] gives.
fn replace(roots_dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = crate::temp::file_in(roots_dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Records that `venv` now uses the layout `project_hash` (hex).
pub fn record_venv(roots_dir: &Path, venv: &Path, project_hash: &str) {
    let root = Root {
        path: venv.to_path_buf(),
        uses: Uses::Layout(project_hash.to_string()),
    };
    record(roots_dir, root);
}

/// Records that a mount at `mountpoint` serves the tree file `tree` (`{key}.dxtree`).
pub fn record_mount(roots_dir: &Path, mountpoint: &Path, tree: &Path) {
    if let Some(key) = tree_key(tree) {
        let root = Root {
            path: mountpoint.to_path_buf(),
            uses: Uses::Tree(key),
        };
        record(roots_dir, root);
    }
}

/// Records the lock file `dpl`: the hash of its bytes and the store objects its entries name
/// (or, for entries that name none yet, the objects `store`'s wheel records say their wheels
/// became). A universal lock (DPL version 2) names no objects: every wheel of it that the store
/// holds, for any interpreter, is listed. An unreadable lock is not recorded: `dx-py lock` has
/// just reported on it.
pub fn record_lock(roots_dir: &Path, dpl: &Path, store: &crate::store::PackageStore) {
    let Ok(bytes) = std::fs::read(dpl) else {
        tracing::debug!("Not recording lock `{}`: unreadable", dpl.display());
        return;
    };
    let Some(mut objects) = lock_objects(&bytes, store) else {
        tracing::debug!("Not recording lock `{}`: not a DPL", dpl.display());
        return;
    };
    objects.sort();
    objects.dedup();
    let root = Root {
        path: dpl.to_path_buf(),
        uses: Uses::Lock {
            hash: ContentHash::of(&bytes),
            objects,
        },
    };
    record(roots_dir, root);
}

/// The store objects the DPL `bytes` (version 1 or 2) reaches, or `None` when it is not a DPL.
fn lock_objects(bytes: &[u8], store: &crate::store::PackageStore) -> Option<Vec<ContentHash>> {
    let recorded = |w: crate::dpl::DplWheel<'_>| store.wheel_object(&w.sha256_hex(), w.filename);
    if crate::dpl::format_version(bytes).ok()? == 2 {
        let reader = crate::dpl::UniversalDplReader::from_bytes(bytes).ok()?;
        return Some(
            reader
                .entries()
                .flatten()
                .flat_map(|e| e.wheels().collect::<Vec<_>>())
                .filter_map(recorded)
                .collect(),
        );
    }
    let reader = crate::dpl::DplReader::from_bytes(bytes).ok()?;
    Some(
        reader
            .entries()
            .flatten()
            .filter_map(|e| e.store_hash().or_else(|| recorded(e.wheel())))
            .collect(),
    )
}

/// Sets the modification time of `file`.
fn stamp(file: &Path, when: std::time::SystemTime) -> std::io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(file)?
        .set_modified(when)
}

/// Retires the claim of the mount at `mountpoint` (at unmount): its file is stamped with the
/// epoch, so that the next prune need not wait out the grace a freshly recorded mount gets (see
/// [`super::reach`]), and is kept, so that mounting the same tree there again rewrites nothing.
/// Other kinds of root at that path are left.
pub fn forget_mount(roots_dir: &Path, mountpoint: &Path) {
    let path = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    let file = roots_dir.join(file_name(&path));
    let is_mount = std::fs::read(&file)
        .ok()
        .and_then(|b| decode(&b, &file).ok())
        .is_some_and(|r| matches!(r.uses, Uses::Tree(_)));
    if is_mount && let Err(e) = stamp(&file, std::time::SystemTime::UNIX_EPOCH) {
        tracing::debug!("Not retiring root `{}`: {e}", file.display());
    }
}

/// The key a tree file is named by: `{key}.dxtree`, `{key}.first.dxtree`, `{key}.first.dpl`.
pub fn tree_key(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    Some(name.split('.').next()?.to_string()).filter(|k| !k.is_empty())
}

/// Every root file in `roots_dir`, read: the root, or why the file is not one (a torn or
/// foreign file, which callers treat as dead, with a warning). Temporaries are skipped.
pub fn read_all(roots_dir: &Path) -> Vec<(PathBuf, Result<Root, RootFileError>)> {
    let Ok(entries) = std::fs::read_dir(roots_dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .map(|file| {
            let root = fs_err::read(&file)
                .map_err(|source| RootFileError::Read {
                    path: file.clone(),
                    source,
                })
                .and_then(|bytes| decode(&bytes, &file));
            (file, root)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hash_strategy() -> impl Strategy<Value = ContentHash> {
        any::<[u8; 32]>().prop_map(|b| ContentHash::of(&b))
    }

    fn root_strategy() -> impl Strategy<Value = Root> {
        let key = "[0-9a-z]{1,64}";
        let uses = prop_oneof![
            key.prop_map(Uses::Layout),
            key.prop_map(Uses::Tree),
            (
                hash_strategy(),
                prop::collection::vec(hash_strategy(), 0..8)
            )
                .prop_map(|(hash, objects)| Uses::Lock { hash, objects }),
        ];
        // Any UTF-8 path, quotes, newlines and backslashes included.
        ("/\\PC{0,40}", uses).prop_map(|(path, uses)| Root {
            path: PathBuf::from(path),
            uses,
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_the_identity(root in root_strategy()) {
            let bytes = encode(&root).unwrap();
            prop_assert_eq!(decode(&bytes, Path::new("f")).unwrap(), root);
        }

        /// Damage is an error or another valid root, never a panic.
        #[test]
        fn damaged_files_never_panic(
            root in root_strategy(),
            cut in 0usize..200,
            flip in any::<(usize, u8)>(),
        ) {
            let mut bytes = encode(&root).unwrap();
            let i = flip.0 % bytes.len();
            bytes[i] ^= flip.1;
            let _ = decode(&bytes, Path::new("f"));
            bytes.truncate(cut);
            let _ = decode(&bytes, Path::new("f"));
        }
    }

    #[test]
    fn each_rejection_is_typed() {
        let f = Path::new("f");
        let syntax = decode(b"{\"version\":1", f);
        assert!(
            matches!(syntax, Err(RootFileError::Syntax { .. })),
            "{syntax:?}"
        );
        let version = decode(
            br#"{"version":2,"path":"/v","kind":"venv","layout":"ab"}"#,
            f,
        );
        assert!(
            matches!(version, Err(RootFileError::Version { got: 2, .. })),
            "{version:?}"
        );
        for bad in [
            br#"{"version":1,"path":"/v","kind":"venv","layout":"../x"}"#.as_slice(),
            br#"{"version":1,"path":"/v","kind":"mount","tree":""}"#,
            br#"{"version":1,"path":"/v","kind":"lock","lock":"zz","objects":[]}"#,
            br#"{"version":1,"path":"v","kind":"venv","layout":"ab"}"#,
        ] {
            let got = decode(bad, f);
            assert!(matches!(got, Err(RootFileError::Value { .. })), "{got:?}");
        }
    }

    #[test]
    fn recording_writes_only_when_the_claim_changes() {
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("roots");
        let venv = dir.path().join("v");
        record_venv(&roots, &venv, "11");
        let file = roots.join(file_name(&venv));
        let first = std::fs::metadata(&file).unwrap();
        record_venv(&roots, &venv, "11");
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Same inode: not replaced.
            assert_eq!(std::fs::metadata(&file).unwrap().ino(), first.ino());
        }
        let _ = first;
        record_venv(&roots, &venv, "22");
        record_mount(&roots, &dir.path().join("m"), Path::new("/t/k1.dxtree"));
        std::fs::write(roots.join("garbage"), b"\x00\x01").unwrap();
        let all = read_all(&roots);
        assert_eq!(all.len(), 3);
        let ok: Vec<_> = all.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        assert!(ok.contains(&&Root {
            path: venv.clone(),
            uses: Uses::Layout("22".into())
        }));
        assert!(ok.contains(&&Root {
            path: dir.path().join("m"),
            uses: Uses::Tree("k1".into())
        }));
    }

    #[test]
    fn forgetting_a_mount_leaves_other_kinds_of_root() {
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("roots");
        let (m, v) = (dir.path().join("m"), dir.path().join("v"));
        record_mount(&roots, &m, Path::new("/t/k1.dxtree"));
        record_venv(&roots, &v, "11");
        forget_mount(&roots, &m);
        forget_mount(&roots, &v);
        let modified = |p: &Path| {
            std::fs::metadata(roots.join(file_name(p)))
                .unwrap()
                .modified()
                .unwrap()
        };
        // Both claims stay; only the mount's is retired.
        assert_eq!(read_all(&roots).len(), 2);
        assert_eq!(modified(&m), std::time::SystemTime::UNIX_EPOCH);
        assert_ne!(modified(&v), std::time::SystemTime::UNIX_EPOCH);
        // Mounting the same tree there again stamps it afresh, without a new file.
        record_mount(&roots, &m, Path::new("/t/k1.dxtree"));
        assert!(modified(&m).elapsed().unwrap() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn an_unwritable_roots_dir_is_not_an_error() {
        record_venv(Path::new("/proc/nonexistent/roots"), Path::new("/v"), "ab");
        assert!(read_all(Path::new("/proc/nonexistent/roots")).is_empty());
    }
}
