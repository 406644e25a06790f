//! The layout index: misses for deleted layouts, stale views, rebuilding from disk.
use super::*;

#[test]
fn a_layout_deleted_behind_the_index_is_a_miss_then_rebuilt() {
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(1);
    let spec = spec_of(&fx.store, &pkgs);
    let cache = fx.cache();
    let layout = cache.build_layout(&spec).unwrap();
    std::fs::remove_dir_all(&layout.path).unwrap();
    assert!(cache.get(&spec.project_hash()).is_some());
    assert!(
        cache
            .install_cached(&spec.project_hash(), &fx.venv("v"))
            .unwrap()
            .is_none()
    );
    let installed = cache.install(&spec, &fx.venv("v")).unwrap();
    assert!(!installed.hit);
    assert_venv_is(&fx.venv("v"), &pkgs);
    // Quick check failures other than "missing" swap a fresh tree in.
    std::fs::remove_file(layout.path.join("dx-py-layout.json")).unwrap();
    assert_eq!(
        cache.build_layout(&spec).unwrap().outcome,
        BuildOutcome::Rebuilt
    );
    assert_eq!(cache.entries().len(), 1);
}

#[test]
fn a_stale_view_sees_layouts_published_by_others() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let early = fx.cache();
    let late = fx.cache();
    let spec = spec_of(&fx.store, &sets[0]);
    assert!(early.get(&spec.project_hash()).is_none());
    late.build_layout(&spec).unwrap();
    assert!(early.get(&spec.project_hash()).is_some());
}

#[test]
fn rebuild_index_recovers_every_layout_from_disk() {
    let fx = Fixture::new();
    let cache = fx.cache();
    let specs: Vec<_> = fixed_sets().iter().map(|s| spec_of(&fx.store, s)).collect();
    for s in &specs {
        cache.build_layout(s).unwrap();
    }
    std::fs::write(fx.layouts().join("index.dxlc"), b"garbage").unwrap();
    // Junk in the layouts directory is ignored.
    std::fs::create_dir_all(fx.layouts().join("not-a-hash")).unwrap();
    std::fs::create_dir_all(fx.layouts().join("ab".repeat(32))).unwrap();
    assert_eq!(cache.rebuild_index().unwrap(), 3);
    for s in &specs {
        assert!(cache.get(&s.project_hash()).is_some());
    }
}
