use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::format::{H_FLAGS, H_VERSION};
use super::*;
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use crate::hash::ContentHash;
use crate::store::PackageStore;

/// One entry of a synthetic package.
struct E<'a>(Scheme, &'a str, EntryKind, u32, &'a [u8]);

/// A site-packages file with mode 0o644.
fn sp<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E(Scheme::SitePackages, path, EntryKind::File, 0o644, data)
}

/// Writes a package and stores it; returns its hash.
fn add_pack(store: &PackageStore, name: &str, entries: &[E<'_>]) -> ContentHash {
    let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
    for E(scheme, path, kind, mode, data) in entries {
        w.add(*scheme, path, *kind, *mode, data.to_vec());
    }
    store.store(&w.finish().unwrap()).unwrap()
}

const SP: &str = "lib/python3.11/site-packages";

fn placement() -> PackPlacement {
    PackPlacement::venv(&crate::python::VenvShape::posix(3, 11), "demo")
}

/// The bytes of a leaf, read the way the file system does.
fn leaf_bytes<'a>(tree: &'a Tree<Vec<u8>>, store: &PackageStore, node: &Node<'a>) -> Vec<u8> {
    match node.source {
        DataSource::None => Vec::new(),
        DataSource::Inline { .. } => tree.inline_data(node).unwrap().unwrap().to_vec(),
        DataSource::Pack { pack, offset } => {
            let p = store.get(&tree.pack(pack).unwrap().hash).unwrap();
            p.reader().bytes()[offset as usize..(offset + node.size) as usize].to_vec()
        }
    }
}

fn file(tree: &Tree<Vec<u8>>, store: &PackageStore, path: &str) -> Vec<u8> {
    let node = tree
        .resolve(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} missing"));
    assert_ne!(node.kind, NodeKind::Dir, "{path}");
    leaf_bytes(tree, store, &node)
}

fn names(tree: &Tree<Vec<u8>>, path: &str) -> Vec<String> {
    let dir = tree.resolve(path).unwrap().unwrap();
    (0..)
        .map_while(|i| tree.child(&dir, i).unwrap())
        .map(|n| String::from_utf8(n.name.to_vec()).unwrap())
        .collect()
}

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
fn bad_specs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let synth = |path: &str| TreeSpec {
        files: vec![SyntheticFile {
            path: path.into(),
            bytes: vec![],
            mode: 0o644,
        }],
        ..TreeSpec::default()
    };
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a//b",
        "a/./b",
        "a/",
        "a\\b",
        "a\0b",
    ] {
        assert!(
            matches!(
                synth(bad).build(&store),
                Err(TreeBuildError::UnsafePath { .. })
            ),
            "{bad:?}"
        );
    }
    let long = "x".repeat(256);
    assert!(matches!(
        synth(&long).build(&store),
        Err(TreeBuildError::UnsafePath { .. })
    ));

    let mut spec = synth("a/b");
    spec.files.push(SyntheticFile {
        path: "a".into(),
        bytes: vec![],
        mode: 0o644,
    });
    assert!(
        matches!(spec.build(&store), Err(TreeBuildError::Conflict { path, .. }) if path == "a")
    );
    let mut spec = synth("a");
    spec.files.push(SyntheticFile {
        path: "a/b".into(),
        bytes: vec![],
        mode: 0o644,
    });
    assert!(
        matches!(spec.build(&store), Err(TreeBuildError::Conflict { path, .. }) if path == "a")
    );

    let escaping = add_pack(
        &store,
        "evil",
        &[E(
            Scheme::SitePackages,
            "pkg/x",
            EntryKind::Symlink,
            0o777,
            b"../../../../etc/passwd",
        )],
    );
    let spec = TreeSpec {
        packs: vec![(escaping, placement())],
        ..TreeSpec::default()
    };
    assert!(matches!(
        spec.build(&store),
        Err(TreeBuildError::EscapingLink { .. })
    ));

    let missing = crate::hash::ContentHash::of(b"nothing");
    let spec = TreeSpec {
        packs: vec![(missing, placement())],
        ..TreeSpec::default()
    };
    let err = spec.build(&store).unwrap_err();
    assert!(err.to_string().contains("is not in the store"), "{err}");
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
fn each_rejection_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let spec = TreeSpec {
        files: vec![SyntheticFile {
            path: "a/b".into(),
            bytes: b"x".to_vec(),
            mode: 0o644,
        }],
        ..TreeSpec::default()
    };
    let bytes = spec.build(&store).unwrap();
    assert_eq!(
        Tree::new(&b"DXTRE"[..]).unwrap_err(),
        TreeError::Truncated {
            needed: 128,
            len: 5
        }
    );
    let mut bad = bytes.clone();
    bad[0] = b'Z';
    assert_eq!(Tree::new(&bad[..]).unwrap_err(), TreeError::BadMagic);
    let mut bad = bytes.clone();
    bad[H_VERSION] = 7;
    assert_eq!(
        Tree::new(&bad[..]).unwrap_err(),
        TreeError::UnsupportedVersion {
            expected: 1,
            got: 7
        }
    );
    let mut bad = bytes.clone();
    bad[H_FLAGS] = 1;
    assert_eq!(
        Tree::new(&bad[..]).unwrap_err(),
        TreeError::Corrupt("unknown feature flags")
    );
    assert!(matches!(
        Tree::new(&bytes[..bytes.len() - 1]).unwrap_err(),
        TreeError::Truncated { .. }
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Tree::new(&longer[..]).unwrap_err(),
        TreeError::Truncated { .. }
    ));
    // A flipped data byte passes the cheap checks but not the checksum.
    let mut bad = bytes.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        Tree::new(&bad[..]).unwrap().verify().unwrap_err(),
        TreeError::ChecksumMismatch
    );
    // Resealed, the edit passes the checksum: what a crafted file does (and a fuzzer needs).
    reseal(&mut bad);
    assert_eq!(Tree::new(&bad[..]).unwrap().verify(), Ok(()));
    assert_eq!(
        Tree::new(&bad[..])
            .unwrap()
            .resolve("a/b")
            .unwrap()
            .map(|n| n.size),
        Some(1)
    );
    let tree = Tree::new(&bytes[..]).unwrap();
    assert_eq!(
        tree.node(0).unwrap_err(),
        TreeError::NoSuchInode { ino: 0, count: 3 }
    );
    assert_eq!(
        tree.node(4).unwrap_err(),
        TreeError::NoSuchInode { ino: 4, count: 3 }
    );
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

/// Random file sets spread over packs and synthetic files.
fn arb_sources() -> impl Strategy<Value = Vec<BTreeMap<String, Vec<u8>>>> {
    // `d`-prefixed components are directories and `f`-prefixed ones files, so no file/dir clash.
    let files = btree_map(
        "(d[a-c]{1,2}/){0,3}f[a-d]{1,3}(\\.py)?",
        vec(any::<u8>(), 0..40),
        0..24,
    );
    vec(files, 1..5)
}

/// The naive oracle: every directory path and its sorted child names, every file's bytes.
fn oracle(
    sources: &[BTreeMap<String, Vec<u8>>],
) -> (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, Vec<u8>>,
) {
    let mut dirs: BTreeMap<String, BTreeSet<String>> =
        BTreeMap::from([(String::new(), BTreeSet::new())]);
    let mut files = BTreeMap::new();
    for src in sources {
        for (path, data) in src {
            let full = format!("sp/{path}");
            let parts: Vec<&str> = full.split('/').collect();
            for i in 0..parts.len() {
                let parent = parts[..i].join("/");
                dirs.entry(parent).or_default().insert(parts[i].to_string());
                if i + 1 < parts.len() {
                    dirs.entry(parts[..=i].join("/")).or_default();
                }
            }
            files.insert(full, data.clone());
        }
    }
    (dirs, files)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Lookups, readdir and bytes equal a BTreeMap oracle; absent names are absent.
    #[test]
    fn tree_matches_a_naive_oracle(sources in arb_sources(), synthetic_last in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
        let place = PackPlacement { site_packages: Some("sp".into()), scripts: None, headers: None, data: None };
        let mut spec = TreeSpec::default();
        let (packs, synthetic) = if synthetic_last && sources.len() > 1 {
            sources.split_at(sources.len() - 1)
        } else {
            (&sources[..], &[][..])
        };
        for (i, src) in packs.iter().enumerate() {
            let entries: Vec<E<'_>> = src.iter().map(|(p, d)| sp(p, d)).collect();
            spec.packs.push((add_pack(&store, &format!("p{i}"), &entries), place.clone()));
        }
        for src in synthetic {
            for (p, d) in src {
                spec.files.push(SyntheticFile { path: format!("sp/{p}"), bytes: d.clone(), mode: 0o644 });
            }
        }
        let (dirs, files) = oracle(&sources);
        let tree = Tree::new(spec.build(&store).unwrap()).unwrap();
        tree.verify().unwrap();
        prop_assert_eq!(tree.len() as usize, dirs.len() + files.len());
        for (path, children) in &dirs {
            let want: Vec<String> = children.iter().cloned().collect();
            prop_assert_eq!(names(&tree, path), want);
            let node = tree.resolve(path).unwrap().unwrap();
            prop_assert_eq!(node.kind, NodeKind::Dir);
            prop_assert!(tree.lookup(&node, b"zz-absent").unwrap().is_none());
            prop_assert!(tree.lookup(&node, b"").unwrap().is_none());
        }
        for (path, data) in &files {
            prop_assert_eq!(&file(&tree, &store, path), data);
            let node = tree.resolve(path).unwrap().unwrap();
            prop_assert_eq!(tree.node(node.ino).unwrap(), node);
            let parent = tree.node(node.parent).unwrap();
            prop_assert_eq!(tree.lookup(&parent, node.name).unwrap(), Some(node));
        }
    }

    /// Truncations and byte flips give errors (or some answer), never a panic or a hang.
    #[test]
    fn corruption_never_panics(sources in arb_sources(), cut in any::<usize>(), flips in vec((any::<usize>(), any::<u8>()), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
        let mut spec = TreeSpec::default();
        for (i, src) in sources.iter().enumerate() {
            for (p, d) in src {
                spec.files.push(SyntheticFile { path: format!("s{i}/{p}"), bytes: d.clone(), mode: 0o644 });
            }
        }
        let mut bytes = spec.build(&store).unwrap();
        let walk = |tree: &Tree<&[u8]>| {
            let _ = tree.verify();
            for ino in 0..=u64::from(tree.len()) + 1 {
                if let Ok(node) = tree.node(ino) {
                    let _ = tree.inline_data(&node);
                    for i in 0..node.size.min(64) {
                        let _ = tree.child(&node, i);
                    }
                    let _ = tree.lookup(&node, b"fa");
                    let _ = tree.pack(ino as u32);
                }
            }
            for (i, src) in sources.iter().enumerate() {
                for p in src.keys() {
                    let _ = tree.resolve(&format!("s{i}/{p}"));
                }
            }
        };
        let truncated = &bytes[..cut % (bytes.len() + 1)];
        if let Ok(tree) = Tree::new(truncated) {
            walk(&tree);
        }
        for (at, v) in flips {
            let len = bytes.len();
            bytes[at % len] ^= v;
        }
        if let Ok(tree) = Tree::new(&bytes[..]) {
            walk(&tree);
        }
    }
}

/// A tree built from a package's layout before it is stored is the tree built from the stored
/// object but for the pack's key; served with the pack arriving, a read waits for the object and
/// gets its bytes, and a pack that fails to arrive fails its reads without hanging.
#[test]
fn a_planned_pack_is_served_once_it_arrives() {
    use std::collections::HashMap;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let plain = add_pack(&store, "plain", &[sp("plain.py", b"P = 1\n")]);
    let mut w = DxpkgWriter::new("late", "1.0", "late-1.0.dist-info");
    w.add(
        Scheme::SitePackages,
        "late/__init__.py",
        EntryKind::File,
        0o644,
        b"L = 2\n".to_vec(),
    );
    w.add(
        Scheme::SitePackages,
        "late/link.py",
        EntryKind::Symlink,
        0o777,
        b"__init__.py".to_vec(),
    );
    w.add(
        Scheme::Scripts,
        "late-tool",
        EntryKind::File,
        0o755,
        b"#!python\nprint(3)\n".to_vec(),
    );
    w.add_deferred(
        Scheme::SitePackages,
        "late/big.bin",
        EntryKind::File,
        0o644,
        3,
        0,
    );
    let prepared = w.prepare().unwrap();
    let layout = prepared.layout();
    let mut bytes = Vec::new();
    prepared
        .write_with(&mut bytes, |_, out| out.write_all(b"xyz"))
        .unwrap();
    let key = ContentHash::from_bytes([9; 32]);
    let spec = |late| TreeSpec {
        packs: vec![(plain, placement()), (late, placement())],
        files: vec![],
        symlinks: vec![],
    };
    let planned = spec(key)
        .build_with(&store, &HashMap::from([(key, &layout)]))
        .unwrap();
    let stored = store.store(&bytes).unwrap();
    let direct = spec(stored).build(&store).unwrap();
    let (planned_tree, direct_tree) = (
        Tree::new(planned.clone()).unwrap(),
        Tree::new(direct.clone()).unwrap(),
    );
    assert_eq!(planned_tree.pack(1).unwrap().hash, key);
    assert_eq!(
        planned_tree.pack(1).unwrap().size,
        direct_tree.pack(1).unwrap().size
    );
    assert_eq!(planned_tree.len(), direct_tree.len());
    for ino in 1..=u64::from(planned_tree.len()) {
        let (a, b) = (
            planned_tree.node(ino).unwrap(),
            direct_tree.node(ino).unwrap(),
        );
        assert_eq!(
            (a.name, a.kind, a.mode, a.size, a.source),
            (b.name, b.kind, b.mode, b.size, b.source)
        );
    }

    let arriving = Arc::new(ArrivingPacks::new([1]));
    let data = Arc::new(
        TreeData::new(
            Tree::new(planned.clone()).unwrap(),
            PackageStore::open(dir.path()),
        )
        .with_arriving(Arc::clone(&arriving)),
    );
    // The stored pack is served at once; the arriving one waits.
    let node = data
        .tree()
        .resolve(&format!("{SP}/plain.py"))
        .unwrap()
        .unwrap();
    assert_eq!(data.data(&node).unwrap(), b"P = 1\n");
    let reader = {
        let data = Arc::clone(&data);
        std::thread::spawn(move || {
            let node = data
                .tree()
                .resolve(&format!("{SP}/late/big.bin"))
                .unwrap()
                .unwrap();
            data.data(&node).map(<[u8]>::to_vec)
        })
    };
    assert_eq!(arriving.next(&[1]), Some(1));
    arriving.stored(1, stored);
    assert_eq!(reader.join().unwrap().unwrap(), b"xyz");
    let tool = data.tree().resolve("bin/late-tool").unwrap().unwrap();
    assert!(data.data(&tool).unwrap().ends_with(b"print(3)\n"));

    let failing = Arc::new(ArrivingPacks::new([1]));
    let data =
        TreeData::new(Tree::new(planned).unwrap(), store).with_arriving(Arc::clone(&failing));
    failing.failed(1, "RECORD mismatch".into());
    let node = data
        .tree()
        .resolve(&format!("{SP}/late/__init__.py"))
        .unwrap()
        .unwrap();
    let err = data.data(&node).unwrap_err();
    assert!(err.to_string().contains("RECORD mismatch"), "{err}");
    assert!(!err.is_corrupt_tree());
}
