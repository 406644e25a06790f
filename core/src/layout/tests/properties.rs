//! Properties over generated package sets: cold then warm, damaged layouts and a damaged index are rebuilt.
use super::*;

fn arb_pkgs() -> impl Strategy<Value = Vec<Pkg>> {
    // Directories start with `d`, files with `f`, so no path is a file in one package and a
    // directory in another; `ns/` is a namespace shared by packages, `shared.py` a file two
    // packages may both ship, and `tool` a launcher more than one may ship.
    let pkg = (
        btree_map("(d[a-c]/){0,2}f[a-d]\\.py", vec(any::<u8>(), 0..24), 1..6),
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(vec!["tool", "run", "serve"], 0..3),
    );
    vec(pkg, 1..5).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (files, ns, shared, scripts))| {
                let mut p = Pkg::new(&format!("Pkg_{i}"), &[], &scripts);
                for (f, d) in files {
                    p.files.insert(format!("p{i}/{f}"), d);
                }
                if ns {
                    p.files
                        .insert(format!("ns/p{i}/__init__.py"), vec![i as u8]);
                }
                if shared {
                    p.files
                        .insert("shared.py".into(), format!("# from {i}\n").into_bytes());
                }
                p
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The first install builds, the second is a hit; both venvs hold the oracle's tree, and
    /// every file is a hard link of the store's file (shared bytes, realpath in the layout).
    #[test]
    fn cold_then_warm_gives_the_same_tree(pkgs in arb_pkgs()) {
        let fx = Fixture::new();
        let cache = fx.cache();
        let spec = spec_of(&fx.store, &pkgs);
        let hash = spec.project_hash();
        prop_assert!(cache.install_cached(&hash, &fx.venv("a")).unwrap().is_none());
        let cold = cache.install(&spec, &fx.venv("a")).unwrap();
        prop_assert!(!cold.hit);
        let warm = cache.install(&spec, &fx.venv("b")).unwrap();
        prop_assert!(warm.hit);
        prop_assert_eq!(&cold.layout, &warm.layout);
        assert_venv_is(&fx.venv("a"), &pkgs);
        assert_venv_is(&fx.venv("b"), &pkgs);
        // A fresh cache (another process) also hits, through the index file.
        let again = fx.cache();
        prop_assert!(again.install_cached(&hash, &fx.venv("c")).unwrap().is_some());
        assert_venv_is(&fx.venv("c"), &pkgs);
        let report = cache.verify_layout(&hash, VerifyLevel::Full).unwrap();
        prop_assert!(report.is_ok(), "{:?}", report);
        let m = cache.manifest(&hash).unwrap();
        prop_assert_eq!(m.link_mode(), LinkMode::Hardlink);
        prop_assert_eq!(m.links.symlink + m.links.copy, 0);
        let entry = cache.get(&hash).unwrap();
        prop_assert_eq!(entry.package_count as usize, pkgs.len());
        prop_assert_eq!(u64::from(entry.file_count), m.file_count);
        prop_assert_eq!(entry.interpreter_tag(), TAG);
    }

    /// Damage a layout (delete or replace files, directories, the manifest, the whole tree):
    /// the full check notices, and a rebuild restores the identical tree.
    #[test]
    fn damaged_layouts_are_detected_and_rebuilt(
        pkgs in arb_pkgs(),
        damage in vec((0..6u8, any::<prop::sample::Index>()), 1..4),
    ) {
        let fx = Fixture::new();
        let cache = fx.cache();
        let spec = spec_of(&fx.store, &pkgs);
        let hash = spec.project_hash();
        let layout = cache.build_layout(&spec).unwrap();
        prop_assert_eq!(layout.outcome, BuildOutcome::Built);
        let before = layout_snapshot(&layout.path);
        cache.install(&spec, &fx.venv("v")).unwrap();

        for (kind, at) in &damage {
            let files: Vec<PathBuf> = walk_files(&layout.path.join("site-packages"));
            let dirs: Vec<PathBuf> = walk_dirs(&layout.path.join("site-packages"));
            match kind {
                0 if !files.is_empty() => std::fs::remove_file(&files[at.index(files.len())]).unwrap(),
                1 if !files.is_empty() => {
                    // Replace (never write through: the file is the store's inode).
                    let f = &files[at.index(files.len())];
                    let mut data = std::fs::read(f).unwrap();
                    data.push(b'!');
                    std::fs::remove_file(f).unwrap();
                    std::fs::write(f, data).unwrap();
                }
                2 if !dirs.is_empty() => std::fs::remove_dir_all(&dirs[at.index(dirs.len())]).unwrap(),
                3 => { let _ = std::fs::remove_file(layout.path.join("dx-py-layout.json")); }
                4 => { let _ = std::fs::remove_dir_all(layout.path.join("site-packages")); }
                5 => { let _ = std::fs::remove_dir_all(&layout.path); }
                _ => {}
            }
        }
        let damaged = std::fs::symlink_metadata(&layout.path).is_err()
            || !layout.path.join("dx-py-layout.json").is_file()
            || layout_snapshot(&layout.path) != before;
        let report = cache.verify_layout(&hash, VerifyLevel::Full).unwrap();
        prop_assert_eq!(report.is_ok(), !damaged, "{:?}", report);

        let existed = std::fs::symlink_metadata(&layout.path).is_ok();
        let rebuilt = cache.rebuild_layout(&spec).unwrap();
        prop_assert_eq!(rebuilt.outcome, if existed { BuildOutcome::Rebuilt } else { BuildOutcome::Built });
        prop_assert_eq!(layout_snapshot(&layout.path), before);
        prop_assert!(cache.verify_layout(&hash, VerifyLevel::Full).unwrap().is_ok());
        // The venv made before the damage works again without reinstalling.
        assert_venv_is(&fx.venv("v"), &pkgs);
        prop_assert_eq!(cache.entries().len(), 1);
    }

    /// Damage the index (flip bytes, cut it, delete it): lookups miss or stay right, never
    /// panic; the next writer rebuilds it from the layouts on disk, holding each exactly once.
    #[test]
    fn a_damaged_index_is_a_miss_and_gets_rebuilt(
        flips in vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        delete in any::<bool>(),
    ) {
        let fx = Fixture::new();
        let sets = fixed_sets();
        let specs: Vec<LayoutSpec> = sets.iter().map(|s| spec_of(&fx.store, s)).collect();
        {
            let cache = fx.cache();
            for s in &specs {
                cache.build_layout(s).unwrap();
            }
            prop_assert_eq!(cache.entries().len(), specs.len());
        }
        let index = fx.layouts().join("index.dxlc");
        let mut bytes = std::fs::read(&index).unwrap();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        std::fs::write(&index, &bytes).unwrap();
        if delete {
            std::fs::remove_file(&index).unwrap();
        }
        let cache = fx.cache();
        for (s, pkgs) in specs.iter().zip(&sets) {
            let h = s.project_hash();
            if let Some(e) = cache.get(&h) {
                prop_assert_eq!(e.project_hash, h);
                prop_assert_eq!(e.package_count as usize, pkgs.len());
            }
        }
        // The next writer (here, for a new set) notices the damage and rebuilds the index from
        // the layouts on disk: the damaged sets are back without being asked for.
        let extra = spec_of(&fx.store, &[Pkg::new("delta", &[("delta.py", "")], &[])]);
        prop_assert_eq!(cache.build_layout(&extra).unwrap().outcome, BuildOutcome::Built);
        for s in &specs {
            prop_assert!(cache.get(&s.project_hash()).is_some());
            let l = cache.build_layout(s).unwrap();
            prop_assert_eq!(l.outcome, BuildOutcome::Reused);
        }
        let ix = LayoutIndex::new(std::fs::read(&index).unwrap()).unwrap();
        ix.verify().unwrap();
        let got: BTreeSet<ProjectHash> = ix.entries().map(|e| e.unwrap().project_hash).collect();
        let mut want: BTreeSet<ProjectHash> = specs.iter().map(LayoutSpec::project_hash).collect();
        want.insert(extra.project_hash());
        prop_assert_eq!(got, want);
        for (s, pkgs) in specs.iter().zip(&sets) {
            let venv = fx.venv(&s.project_hash().to_hex()[..8]);
            prop_assert!(cache.install_cached(&s.project_hash(), &venv).unwrap().is_some());
            assert_venv_is(&venv, pkgs);
        }
    }
}
