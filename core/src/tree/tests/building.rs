//! Building trees: merged packs, namespaces and synthetic files, shared packs, the empty spec, mapping a written file.
use super::*;

#[test]
fn merges_packs_namespaces_and_synthetic_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let a = add_pack(
        &store,
        "a",
        &[
            sp("ns/a/__init__.py", b"A = 1\n"),
            sp("shared.py", b"first\n"),
            E(
                Scheme::Scripts,
                "a-tool",
                EntryKind::File,
                0o755,
                b"#!python\nprint('a')\n",
            ),
            E(Scheme::Headers, "a.h", EntryKind::File, 0o644, b"int a;\n"),
            E(
                Scheme::Data,
                "share/a.txt",
                EntryKind::File,
                0o644,
                b"data\n",
            ),
            E(
                Scheme::SitePackages,
                "ns/a/link.py",
                EntryKind::Symlink,
                0o777,
                b"__init__.py",
            ),
        ],
    );
    let b = add_pack(
        &store,
        "b",
        &[
            sp("ns/b/__init__.py", b"B = 2\n"),
            sp("shared.py", b"second\n"),
            sp("empty.py", b""),
        ],
    );
    let spec = TreeSpec {
        packs: vec![(a, placement()), (b, placement())],
        files: vec![SyntheticFile {
            path: "pyvenv.cfg".into(),
            bytes: b"home = /usr/bin\n".to_vec(),
            mode: 0o644,
        }],
        symlinks: vec![("bin/python".into(), "/usr/bin/python3.11".into())],
    };
    let bytes = spec.build(&store).unwrap();
    assert_eq!(bytes, spec.build(&store).unwrap(), "deterministic");
    let tree = Tree::new(bytes).unwrap();
    tree.verify().unwrap();

    assert_eq!(
        names(&tree, ""),
        ["bin", "include", "lib", "pyvenv.cfg", "share"]
    );
    assert_eq!(names(&tree, &format!("{SP}/ns")), ["a", "b"]);
    assert_eq!(
        file(&tree, &store, &format!("{SP}/ns/a/__init__.py")),
        b"A = 1\n"
    );
    assert_eq!(
        file(&tree, &store, &format!("{SP}/ns/b/__init__.py")),
        b"B = 2\n"
    );
    assert_eq!(
        file(&tree, &store, &format!("{SP}/shared.py")),
        b"second\n",
        "last wins"
    );
    assert_eq!(file(&tree, &store, &format!("{SP}/empty.py")), b"");
    assert_eq!(
        file(&tree, &store, &format!("{SP}/ns/a/link.py")),
        b"__init__.py"
    );
    assert_eq!(
        file(&tree, &store, "include/site/python3.11/demo/a.h"),
        b"int a;\n"
    );
    assert_eq!(file(&tree, &store, "share/a.txt"), b"data\n");
    assert_eq!(file(&tree, &store, "pyvenv.cfg"), b"home = /usr/bin\n");
    assert_eq!(file(&tree, &store, "bin/python"), b"/usr/bin/python3.11");
    let tool = file(&tree, &store, "bin/a-tool");
    assert!(
        tool.starts_with(b"#!/bin/sh\n") && tool.ends_with(b"print('a')\n"),
        "shebang rewritten"
    );

    let node = |p: &str| tree.resolve(p).unwrap().unwrap();
    assert_eq!(node("bin/a-tool").mode, 0o555);
    assert_eq!(node("pyvenv.cfg").mode, 0o444, "write bits dropped");
    assert_eq!(node("bin/python").kind, NodeKind::Symlink);
    assert_eq!(node(&format!("{SP}/ns/a/link.py")).kind, NodeKind::Symlink);
    assert_eq!(node("").nlink, 2 + 4);
    assert_eq!(tree.pack_count(), 2);
    assert!(tree.resolve("lib/nope").unwrap().is_none());
    assert!(
        tree.resolve("pyvenv.cfg/x").unwrap().is_none(),
        "a file has no children"
    );
    // Preorder DFS numbering: root 1, then `bin` and its children, ...
    assert_eq!(node("bin").ino, 2);
    assert_eq!(node("bin/a-tool").ino, 3);
}

#[test]
fn same_pack_twice_shares_one_table_entry_and_skipped_schemes_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let a = add_pack(
        &store,
        "a",
        &[
            sp("a.py", b"1"),
            E(Scheme::Headers, "a.h", EntryKind::File, 0o644, b"h"),
        ],
    );
    let only_sp = PackPlacement {
        site_packages: Some("sp".into()),
        scripts: None,
        headers: None,
        data: None,
    };
    let spec = TreeSpec {
        packs: vec![(a, only_sp.clone()), (a, only_sp)],
        ..TreeSpec::default()
    };
    let tree = Tree::new(spec.build(&store).unwrap()).unwrap();
    tree.verify().unwrap();
    assert_eq!(tree.pack_count(), 1);
    assert_eq!(names(&tree, ""), ["sp"]);
}

#[test]
fn an_empty_spec_is_a_lone_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let tree = Tree::new(TreeSpec::default().build(&store).unwrap()).unwrap();
    tree.verify().unwrap();
    assert_eq!(tree.len(), 1);
    assert!(tree.child(&tree.root().unwrap(), 0).unwrap().is_none());
}

#[test]
fn open_tree_maps_a_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    let spec = TreeSpec {
        files: vec![SyntheticFile {
            path: "x".into(),
            bytes: b"1".to_vec(),
            mode: 0o644,
        }],
        ..TreeSpec::default()
    };
    let path = dir.path().join("trees/t.dxtree");
    spec.build_to_file(&store, &path).unwrap();
    let tree = open_tree(&path).unwrap();
    tree.verify().unwrap();
    assert_eq!(tree.resolve("x").unwrap().unwrap().size, 1);
    // Windows refuses to write to a file while a view of it is mapped.
    drop(tree);
    std::fs::write(&path, b"not a tree").unwrap();
    assert!(matches!(
        open_tree(&path),
        Err(OpenTreeError::Invalid { .. })
    ));
    assert!(matches!(
        open_tree(&dir.path().join("missing")),
        Err(OpenTreeError::Io { .. })
    ));
}
