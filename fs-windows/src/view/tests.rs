use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use dx_py_core::hash::ContentHash;
use dx_py_core::store::PackageStore;
use dx_py_core::tree::{NodeKind, PackPlacement, SyntheticFile, Tree, TreeSpec};
use proptest::prelude::*;

use super::*;

/// Stores a package of site-packages `(path, kind, bytes)` entries; returns its hash.
fn add_pack(store: &PackageStore, name: &str, entries: &[(&str, EntryKind, &[u8])]) -> ContentHash {
    let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
    for (path, kind, data) in entries {
        let mode = if *kind == EntryKind::Symlink {
            0o777
        } else {
            0o644
        };
        w.add(Scheme::SitePackages, path, *kind, mode, data.to_vec());
    }
    store.store(&w.finish().unwrap()).unwrap()
}

/// Site-packages at `Lib/site-packages`, scripts in `Scripts`: the Windows venv layout, from the
/// one `VenvShape` that layouts and Linux mounts use too.
fn windows_placement() -> PackPlacement {
    let shape = dx_py_core::python::VenvShape::posix(3, 11).on_windows();
    PackPlacement {
        headers: None,
        ..PackPlacement::venv(&shape, "demo")
    }
}

fn synthetic(path: &str, bytes: &[u8]) -> SyntheticFile {
    SyntheticFile {
        path: path.into(),
        bytes: bytes.to_vec(),
        mode: 0o644,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    view: TreeView<Vec<u8>>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let six = add_pack(
        &store,
        "six",
        &[
            ("six.py", EntryKind::File, b"import sys\n"),
            ("Pkg/__init__.py", EntryKind::File, b"P = 1\n"),
            ("Pkg/sub/mod.py", EntryKind::File, b"M = 2\n"),
            ("Pkg/alias.py", EntryKind::Symlink, b"sub/mod.py"),
            ("Pkg/subdir", EntryKind::Symlink, b"sub"),
            ("Pkg/up.py", EntryKind::Symlink, b"../six.py"),
            ("Pkg/dangling.py", EntryKind::Symlink, b"missing.py"),
        ],
    );
    let spec = TreeSpec {
        packs: vec![(six, windows_placement())],
        files: vec![
            synthetic("pyvenv.cfg", b"home = C:\\Python311\n"),
            synthetic("Lib/site-packages/bad:name.py", b"x"),
            synthetic("Lib/site-packages/trailing.", b"x"),
        ],
        symlinks: vec![
            ("Scripts/python".into(), "/usr/bin/python3.11".into()),
            ("Scripts/loop-a".into(), "loop-b".into()),
            ("Scripts/loop-b".into(), "loop-a".into()),
            ("Scripts/escape".into(), "../../../etc/passwd".into()),
            // Would name `pyvenv.cfg` if `..` stopped at the root instead of leaving the tree.
            ("Scripts/escape-back".into(), "../../pyvenv.cfg".into()),
            ("Scripts/cfg".into(), "../pyvenv.cfg".into()),
        ],
    };
    let tree = Tree::new(spec.build(&store).unwrap()).unwrap();
    Fixture {
        view: TreeView::new(tree, store),
        _dir: dir,
    }
}

fn read_all(view: &TreeView<Vec<u8>>, path: &str) -> Vec<u8> {
    let node = view.resolve(path).unwrap();
    assert_ne!(node.kind, NodeKind::Dir, "{path}");
    let mut buf = vec![0; node.size as usize + 8];
    let n = view.read(&node, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn resolves_windows_paths_ignoring_case() {
    let f = fixture();
    let v = &f.view;
    assert_eq!(v.resolve("\\").unwrap().ino, 1);
    assert_eq!(read_all(v, "\\pyvenv.cfg"), b"home = C:\\Python311\n");
    assert_eq!(read_all(v, "\\Lib\\site-packages\\six.py"), b"import sys\n");
    assert_eq!(read_all(v, "\\LIB\\Site-Packages\\SIX.PY"), b"import sys\n");
    assert_eq!(
        read_all(v, "\\lib\\site-packages\\pkg\\SUB\\mod.py"),
        b"M = 2\n"
    );
    let dir = v.resolve("\\Lib\\site-packages\\Pkg").unwrap();
    assert_eq!(dir.kind, NodeKind::Dir);
    assert_eq!(dir.name, b"Pkg");
}

#[test]
fn missing_names_and_paths_are_told_apart() {
    let f = fixture();
    let v = &f.view;
    assert!(matches!(v.resolve("\\nope.py"), Err(ViewError::NotFound)));
    assert!(matches!(
        v.resolve("\\nope\\x.py"),
        Err(ViewError::PathNotFound)
    ));
    assert!(matches!(
        v.resolve("\\pyvenv.cfg\\x"),
        Err(ViewError::PathNotFound)
    ));
    assert!(matches!(
        v.resolve("\\pyvenv.cfg:Zone.Identifier"),
        Err(ViewError::InvalidName)
    ));
    assert!(matches!(
        v.resolve("\\Lib\\site-packages\\bad:name.py"),
        Err(ViewError::InvalidName)
    ));
}

#[test]
fn links_inside_the_tree_are_followed_and_others_hidden() {
    let f = fixture();
    let v = &f.view;
    let sp = "\\Lib\\site-packages\\Pkg";
    assert_eq!(read_all(v, &format!("{sp}\\alias.py")), b"M = 2\n");
    assert_eq!(read_all(v, &format!("{sp}\\up.py")), b"import sys\n");
    assert_eq!(
        read_all(v, &format!("{sp}\\subdir\\mod.py")),
        b"M = 2\n",
        "through a dir link"
    );
    assert_eq!(
        v.resolve(&format!("{sp}\\subdir")).unwrap().kind,
        NodeKind::Dir
    );
    assert_eq!(read_all(v, "\\Scripts\\cfg"), b"home = C:\\Python311\n");
    for hidden in [
        "\\Scripts\\python",
        "\\Scripts\\loop-a",
        "\\Scripts\\escape",
        "\\Scripts\\escape-back",
    ] {
        assert!(
            matches!(v.resolve(hidden), Err(ViewError::NotFound)),
            "{hidden}"
        );
    }
    assert!(matches!(
        v.resolve(&format!("{sp}\\dangling.py")),
        Err(ViewError::NotFound)
    ));
    assert!(matches!(
        v.resolve(&format!("{sp}\\dangling.py\\x")),
        Err(ViewError::PathNotFound)
    ));
}

#[test]
fn listings_show_what_windows_can_open() {
    let f = fixture();
    let v = &f.view;
    let list = |path: &str| -> Vec<(String, NodeKind)> {
        let dir = v.resolve(path).unwrap();
        v.entries(&dir)
            .map(|e| e.map(|e| (e.name.to_string(), e.node.kind)).unwrap())
            .collect()
    };
    assert_eq!(
        list("\\Lib\\site-packages\\Pkg"),
        [
            ("__init__.py".to_string(), NodeKind::File),
            ("alias.py".into(), NodeKind::File),
            ("sub".into(), NodeKind::Dir),
            ("subdir".into(), NodeKind::Dir),
            ("up.py".into(), NodeKind::File),
        ]
    );
    assert_eq!(list("\\Scripts"), [("cfg".to_string(), NodeKind::File)]);
    let sp: Vec<String> = list("\\Lib\\site-packages")
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(sp.contains(&"six.py".to_string()) && sp.contains(&"Pkg".to_string()));
    assert!(
        !sp.iter().any(|n| n.contains(':') || n.ends_with('.')),
        "{sp:?}"
    );
}

#[test]
fn reads_honour_offsets_and_buffer_sizes() {
    let f = fixture();
    let v = &f.view;
    let node = v.resolve("\\Lib\\site-packages\\six.py").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(v.read(&node, 0, &mut buf).unwrap(), 4);
    assert_eq!(&buf, b"impo");
    assert_eq!(v.read(&node, 7, &mut buf).unwrap(), 4);
    assert_eq!(&buf, b"sys\n");
    assert_eq!(v.read(&node, 9, &mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"s\n");
    assert_eq!(v.read(&node, 11, &mut buf).unwrap(), 0, "at the end");
    assert_eq!(
        v.read(&node, u64::MAX, &mut buf).unwrap(),
        0,
        "far past the end"
    );
    let dir = v.resolve("\\Lib").unwrap();
    assert_eq!(
        v.read(&dir, 0, &mut buf).unwrap(),
        0,
        "directories have no bytes"
    );
}

#[test]
fn a_missing_pack_is_a_store_error_not_a_panic() {
    let f = fixture();
    let tree = Tree::new(f.view.tree().bytes().to_vec()).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let view = TreeView::new(tree, PackageStore::open(empty.path()));
    let node = view.resolve("\\Lib\\site-packages\\six.py").unwrap();
    assert!(matches!(
        view.read(&node, 0, &mut [0; 4]),
        Err(ViewError::Data(DataError::Store(_)))
    ));
    assert_eq!(
        read_all(&view, "\\pyvenv.cfg"),
        b"home = C:\\Python311\n",
        "inline bytes still served"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Every file of a random tree is found under any casing of its path and reads back its
    /// bytes (names are unique ignoring case, as they must be on Windows).
    #[test]
    fn every_file_reads_back_under_any_case(
        files in proptest::collection::btree_map("[a-c]{1,2}(/[a-c]{1,2}){0,2}\\.py", proptest::collection::vec(any::<u8>(), 0..64), 1..12),
        upper in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
        // Directories never end in `.py`, so no path is both a file and a directory.
        let spec = TreeSpec {
            files: files.iter().map(|(p, b)| synthetic(p, b)).collect(),
            ..TreeSpec::default()
        };
        let view = TreeView::new(Tree::new(spec.build(&store).unwrap()).unwrap(), store);
        for (i, (path, bytes)) in files.iter().enumerate() {
            let cased: String = path
                .chars()
                .enumerate()
                .map(|(j, c)| if (upper >> ((i + j) % 64)) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .collect();
            let win = format!("\\{}", cased.replace('/', "\\"));
            prop_assert_eq!(&read_all(&view, &win), bytes);
        }
    }
}
