//! Properties over generated file sets: the tree matches a naive oracle, corruption never panics.
use super::*;

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
