//! Typed errors: bad specs, and each rejection of a damaged tree file.
use super::*;

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
