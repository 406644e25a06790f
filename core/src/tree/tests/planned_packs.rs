//! Packs planned before they are stored: served once they arrive, failing reads when they do not.
use super::*;

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
