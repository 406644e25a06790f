//! Bytecode that arrives after mounting. A cold `dx-py mount -r` mounts a tree made before the
//! bytecode packs exist and compiles them in the background; when they are stored, the complete
//! tree (the same files plus the `.pyc` files and their `__pycache__` directories) is handed to
//! the running mount.
//!
//! Inode numbers the kernel already holds must keep meaning the same file, so the complete tree
//! is not served in place of the first: every inode of the first tree stays as it is, and only
//! the entries the complete tree adds (`__pycache__` directories and `.pyc` files, with what is
//! in them) are served from it, under numbers above the first tree's (`base + complete-tree
//! inode`). A first-tree directory that gains entries is *extended*: it is listed from the
//! complete tree and its misses are looked up there. Until the bytecode arrives, a lookup of an
//! absent bytecode name is answered `ENOENT` (which the kernel does not cache) instead of a cached
//! negative entry, so the name can appear later.
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::Mmap;

use crate::tree::{Node, NodeKind, Tree, TreeData, TreeError};

/// Whether a name is one that bytecode adds: a `__pycache__` directory or a `.pyc` file.
pub(crate) fn is_bytecode_name(name: &[u8]) -> bool {
    name == b"__pycache__" || name.ends_with(b".pyc")
}

/// The complete tree, and which first-tree directories it extends.
#[derive(Debug)]
pub(crate) struct Late {
    pub(crate) data: TreeData<Mmap>,
    /// Extended first-tree directory -> the same directory in the complete tree.
    pub(crate) extended: HashMap<u64, u64>,
    /// Complete-tree directory -> the first-tree directory it extends.
    pub(crate) base_of: HashMap<u64, u64>,
}

/// Shared between the mount's [`TreeFs`](crate::fs::TreeFs) and the [`LateBytecode`] handle.
#[derive(Debug, Default)]
pub(crate) struct LateSlot {
    /// Bytecode is still coming: absent bytecode names must not be cached, nor listings.
    pub(crate) expecting: AtomicBool,
    pub(crate) ready: OnceLock<Late>,
}

/// Why the complete tree cannot be served beside the first.
#[derive(Debug, thiserror::Error)]
pub enum LateError {
    /// A tree record could not be read.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The complete tree is not the first one plus bytecode.
    #[error("The complete tree does not extend the mounted one: {0}")]
    Mismatch(String),
    /// [`LateBytecode::arrive`] was called twice.
    #[error("The bytecode has already arrived")]
    AlreadyArrived,
    /// [`TreeFs::expect_bytecode`](crate::fs::TreeFs::expect_bytecode) was called twice.
    #[error("Bytecode is already expected")]
    AlreadyExpected,
}

/// The handle a background compile uses to give its result to a running mount; made (once) by
/// [`TreeFs::expect_bytecode`](crate::fs::TreeFs::expect_bytecode). Dropping it without
/// [`arrive`](Self::arrive) (a failed or panicking compile) ends the wait.
#[derive(Debug)]
pub struct LateBytecode {
    pub(crate) slot: std::sync::Arc<LateSlot>,
    /// A copy of the mounted tree (the server's own is mapped inside the file system).
    pub(crate) first: Tree<Vec<u8>>,
}

/// What [`LateBytecode::arrive`] changed: the kernel's cached view of these is stale.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Arrived {
    /// Extended first-tree directories (their listings and attributes changed).
    pub dirs: Vec<u64>,
    /// (extended directory, added name) pairs (a stale negative entry may be cached).
    pub names: Vec<(u64, Vec<u8>)>,
}

impl LateBytecode {
    /// Serves what `complete` (the tree the mount would have had with its bytecode) adds to the
    /// mounted tree, from now on. `complete` must be the mounted tree plus `__pycache__`
    /// directories and `.pyc` files, or nothing changes ([`LateError::Mismatch`]).
    pub fn arrive(&self, complete: TreeData<Mmap>) -> Result<Arrived, LateError> {
        let (late, arrived) = Late::new(&self.first, complete)?;
        self.slot
            .ready
            .set(late)
            .map_err(|_| LateError::AlreadyArrived)?;
        self.slot.expecting.store(false, Ordering::Release);
        Ok(arrived)
    }
}

impl Drop for LateBytecode {
    fn drop(&mut self) {
        // After `arrive` this changes nothing; otherwise no bytecode is coming after all, and
        // absent bytecode names are cached again like every other absent name.
        self.slot.expecting.store(false, Ordering::Release);
    }
}

impl Late {
    /// `complete` served beside `first`: walks both trees together (each directory's children
    /// are sorted by name) to find the directories `complete` extends, and checks that it only
    /// adds bytecode.
    fn new(first: &Tree<Vec<u8>>, data: TreeData<Mmap>) -> Result<(Self, Arrived), LateError> {
        let (mut extended, mut base_of) = (HashMap::new(), HashMap::new());
        let mut arrived = Arrived::default();
        let full = data.tree();
        let mut stack = vec![(first.root()?, full.root()?)];
        // Each first-tree directory is visited once; a damaged tree could make the walk cycle.
        let mut budget = first.len();
        while let Some((a, b)) = stack.pop() {
            budget = budget
                .checked_sub(1)
                .ok_or(TreeError::Corrupt("directories visited more than once"))?;
            let a_children = children(first, &a)?;
            let b_children = children(full, &b)?;
            let mut a_iter = a_children.iter().peekable();
            let mut added = Vec::new();
            for bc in &b_children {
                match a_iter.peek() {
                    Some(ac) if ac.name == bc.name => {
                        if ac.kind != bc.kind || ac.mode != bc.mode {
                            return Err(mismatch(first, ac, "changed kind or mode"));
                        }
                        if ac.kind != NodeKind::Dir && ac.size != bc.size {
                            return Err(mismatch(first, ac, "changed size"));
                        }
                        if ac.kind == NodeKind::Dir {
                            stack.push((**ac, *bc));
                        }
                        a_iter.next();
                    }
                    Some(ac) if ac.name < bc.name => {
                        return Err(mismatch(first, ac, "missing from the complete tree"));
                    }
                    _ if is_bytecode_name(bc.name) => added.push(bc.name.to_vec()),
                    _ => return Err(mismatch(full, bc, "added but is not bytecode")),
                }
            }
            if let Some(ac) = a_iter.next() {
                return Err(mismatch(first, ac, "missing from the complete tree"));
            }
            if !added.is_empty() {
                extended.insert(a.ino, b.ino);
                base_of.insert(b.ino, a.ino);
                arrived.dirs.push(a.ino);
                arrived
                    .names
                    .extend(added.into_iter().map(|name| (a.ino, name)));
            }
        }
        let late = Self {
            data,
            extended,
            base_of,
        };
        Ok((late, arrived))
    }
}

/// The children of directory `dir`, in name order.
fn children<'a, B: AsRef<[u8]>>(
    tree: &'a Tree<B>,
    dir: &Node<'a>,
) -> Result<Vec<Node<'a>>, TreeError> {
    let mut out = Vec::new();
    while let Some(child) = tree.child(dir, out.len() as u64)? {
        out.push(child);
    }
    Ok(out)
}

fn mismatch<B: AsRef<[u8]>>(tree: &Tree<B>, node: &Node<'_>, what: &str) -> LateError {
    let mut names = vec![String::from_utf8_lossy(node.name).into_owned()];
    let mut parent = node.parent;
    // Bounded: a damaged tree could loop.
    for _ in 0..4096 {
        match tree.node(parent) {
            Ok(p) if p.ino != p.parent => {
                names.push(String::from_utf8_lossy(p.name).into_owned());
                parent = p.parent;
            }
            _ => break,
        }
    }
    names.reverse();
    LateError::Mismatch(format!("`{}` {what}", names.join("/")))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
    use dx_py_core::install::ensure_bytecode_packs;
    use dx_py_core::python::Interpreter;
    use dx_py_core::store::PackageStore;
    use proptest::prelude::*;

    use crate::fs::TreeFs;
    use crate::tree::{PackPlacement, TreeData, TreeSpec, open_tree, write_tree};

    const SP: &str = "lib/python3.11/site-packages";

    /// Stands for the interpreter's cache tag in generated paths (it is known only at run time).
    const OWN: &str = "OWN-TAG";

    /// A package's site-packages files: sources (some that do not compile), data, and pycs the
    /// wheel ships beside their sources, for the interpreter's tag or another.
    fn package() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
        let dir = prop::sample::select(vec!["", "a/", "a/b/", "c/"]);
        let stem = prop::sample::select(vec!["__init__", "m", "n", "z"]);
        let ext = prop::sample::select(vec![
            ".py".to_string(),
            ".py".to_string(),
            ".txt".to_string(),
            format!(".{OWN}.pyc"),
            format!(".{OWN}.pyc"),
            ".cpython-20.pyc".to_string(),
        ]);
        let file = (dir, stem, ext, 0..40usize).prop_map(|(dir, stem, ext, n)| {
            let data = match ext.as_str() {
                // Every fifth source does not compile: it gets no pyc, shipped or not.
                ".py" if n % 5 == 0 => b"def (:\n".to_vec(),
                ".py" => format!("V = {n}\n").repeat(n + 1).into_bytes(),
                _ => vec![b'x'; n],
            };
            let cache = if ext.ends_with(".pyc") {
                "__pycache__/"
            } else {
                ""
            };
            (format!("{dir}{cache}{stem}{ext}"), data)
        });
        // A package holds each path once.
        prop::collection::vec(file, 1..16).prop_map(|v| v.into_iter().collect())
    }

    /// `pkg/mod.py` -> `pkg/__pycache__/mod.{tag}.pyc`, written out here as the oracle.
    fn pyc_of(source: &str, tag: &str) -> Option<String> {
        let stem = source.strip_suffix(".py")?;
        Some(match stem.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/__pycache__/{name}.{tag}.pyc"),
            None => format!("__pycache__/{stem}.{tag}.pyc"),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A cold `mount -r` of a package that ships pycs: the first tree (laid out from the
        /// package, no bytecode) and the complete one (the stored package and the bytecode pack
        /// the install's batch compiles) differ only by added bytecode, so the running mount
        /// takes the complete tree over; a shipped pyc keeps the package's bytes there.
        #[test]
        fn the_complete_tree_extends_the_first_for_packages_that_ship_pycs(files in package()) {
            let dir = tempfile::tempdir().unwrap();
            let Ok(interp) = Interpreter::find(Some("python3"), &dir.path().join("interp")) else {
                eprintln!("skipping: no python3");
                return Ok(());
            };
            let own = interp.info().cache_tag.clone().unwrap();
            let files: BTreeMap<String, Vec<u8>> =
                files.into_iter().map(|(p, d)| (p.replace(OWN, &own), d)).collect();
            let store_dir = dir.path().join("store");
            let store = PackageStore::open(&store_dir);
            let writer = || {
                let mut w = DxpkgWriter::new("ships", "1", "ships-1.dist-info");
                for (path, data) in &files {
                    w.add(Scheme::SitePackages, path, EntryKind::File, 0o644, data.clone());
                }
                w
            };
            let package = store.store(&writer().finish().unwrap()).unwrap();
            // The first tree of a cold mount serves the package from its layout, before it is
            // stored, under a key of its own.
            let layout = writer().prepare().unwrap().layout();
            let key = dx_py_core::install::planned_pack_key("ships wheel");
            let venv = PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "ships");
            let first = TreeSpec {
                packs: vec![(key, venv.clone())],
                ..TreeSpec::default()
            };
            let first_path = dir.path().join("first.dxtree");
            write_tree(&first_path, &first.build_with(&store, &HashMap::from([(key, &layout)])).unwrap()).unwrap();

            let packs = ensure_bytecode_packs(&store, &[package], &interp, None).unwrap();
            let pack = packs[0].0.unwrap();
            let bytecode = PackPlacement {
                site_packages: Some(SP.to_string()),
                scripts: None,
                headers: None,
                data: None,
            };
            let complete = TreeSpec {
                packs: vec![(package, venv), (pack, bytecode)],
                ..TreeSpec::default()
            };
            let complete_path = dir.path().join("complete.dxtree");
            complete.build_to_file(&store, &complete_path).unwrap();

            let fs = TreeFs::open(&first_path, &store_dir).unwrap();
            let late = fs.expect_bytecode().unwrap();
            let data = TreeData::new(open_tree(&complete_path).unwrap(), PackageStore::open(&store_dir));
            if let Err(e) = late.arrive(data) {
                prop_assert!(false, "{e}");
            }
            let data = TreeData::new(open_tree(&complete_path).unwrap(), PackageStore::open(&store_dir));
            let shipped: Vec<&String> = files.keys().filter(|p| p.ends_with(".pyc")).collect();
            for path in &shipped {
                let node = data.tree().resolve(&format!("{SP}/{path}")).unwrap().unwrap();
                prop_assert_eq!(data.data(&node).unwrap(), files[*path].as_slice(), "{}", path);
            }
            // The pack holds a pyc for every source that compiles and ships none of its own,
            // and nothing else.
            let compiled = store.get(&pack).unwrap();
            let mut in_pack: Vec<String> =
                compiled.reader().entries().map(|e| e.unwrap().path.to_string()).collect();
            in_pack.sort();
            let mut want: Vec<String> = files
                .iter()
                .filter(|(_, data)| !data.starts_with(b"def ("))
                .filter_map(|(path, _)| pyc_of(path, &own))
                .filter(|pyc| !files.contains_key(pyc))
                .collect();
            want.sort();
            prop_assert_eq!(in_pack, want);
        }
    }
}
