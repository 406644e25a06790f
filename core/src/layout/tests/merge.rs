//! How packages merge into one layout: namespace packages, overlapping files, conflicts, extra trees.
use super::*;

#[test]
fn namespace_packages_merge_into_real_directories() {
    let fx = Fixture::new();
    let one = Pkg::new("google-one", &[("google/one/__init__.py", "1")], &[]);
    let two = Pkg::new("google-two", &[("google/two/__init__.py", "2")], &[]);
    let spec = spec_of(&fx.store, &[one.clone(), two.clone()]);
    let cache = fx.cache();
    let layout = cache.build_layout(&spec).unwrap();
    let google = layout.site_packages().join("google");
    let meta = std::fs::symlink_metadata(&google).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert!(google.join("one/__init__.py").is_file());
    assert!(google.join("two/__init__.py").is_file());
    assert_eq!(snapshot(&layout.site_packages()), oracle(&[one, two]));
}

#[test]
fn a_file_in_two_packages_goes_to_the_later_one_whatever_the_input_order() {
    let fx = Fixture::new();
    let a = Pkg::new("aaa", &[("same.py", "from a")], &[]);
    let z = Pkg::new("zzz", &[("same.py", "from z")], &[]);
    let cache = fx.cache();
    let one = cache
        .build_layout(&spec_of(&fx.store, &[a.clone(), z.clone()]))
        .unwrap();
    assert_eq!(
        std::fs::read(one.site_packages().join("same.py")).unwrap(),
        b"from z"
    );
    let two = cache
        .build_layout(&spec_of(&fx.store, &[z.clone(), a.clone()]))
        .unwrap();
    assert_eq!(two.outcome, BuildOutcome::Reused);
    assert_eq!(one.path, two.path);
    // Built from scratch in the other order, the tree is the same.
    let other = LayoutCache::open(&fx.dir.path().join("other"), &fx.store).unwrap();
    let three = other.build_layout(&spec_of(&fx.store, &[z, a])).unwrap();
    assert_eq!(three.outcome, BuildOutcome::Built);
    assert_eq!(
        std::fs::read(three.site_packages().join("same.py")).unwrap(),
        b"from z"
    );
}

#[test]
fn a_file_against_a_directory_is_a_conflict() {
    let fx = Fixture::new();
    let a = Pkg::new("aaa", &[("thing", "file")], &[]);
    let b = Pkg::new("bbb", &[("thing/inner.py", "dir")], &[]);
    let err = fx
        .cache()
        .build_layout(&spec_of(&fx.store, &[a, b]))
        .unwrap_err();
    assert!(
        matches!(&err, LayoutError::Conflict { path, dir_package, file_package }
            if path == Path::new("site-packages/thing") && dir_package == "bbb" && file_package == "aaa"),
        "{err}"
    );
    // Nothing half-built is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(fx.layouts())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|n| n == "index.lock" || n == "index.dxlc"),
        "{leftovers:?}"
    );
}

#[test]
fn extra_trees_are_merged_over_their_package() {
    let fx = Fixture::new();
    let p = Pkg::new("demo", &[("demo/__init__.py", "x = 1\n")], &[]);
    let mut spec = spec_of(&fx.store, std::slice::from_ref(&p));
    let extra = fx.dir.path().join("bytecode");
    std::fs::create_dir_all(extra.join("site-packages/demo/__pycache__")).unwrap();
    std::fs::write(
        extra.join("site-packages/demo/__pycache__/__init__.cpython-311.pyc"),
        b"pyc",
    )
    .unwrap();
    spec.packages[0].extra_trees.push(extra.clone());
    let cache = fx.cache();
    let layout = cache.build_layout(&spec).unwrap();
    assert_eq!(
        std::fs::read(
            layout
                .site_packages()
                .join("demo/__pycache__/__init__.cpython-311.pyc")
        )
        .unwrap(),
        b"pyc"
    );
    assert!(
        cache
            .verify_layout(&spec.project_hash(), VerifyLevel::Full)
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        cache
            .manifest(&spec.project_hash())
            .unwrap()
            .to_spec()
            .packages[0]
            .extra_trees,
        vec![extra]
    );
    // A missing extra tree is an error, not a silently smaller layout.
    spec.packages[0].extra_trees = vec![fx.dir.path().join("nope")];
    spec.interpreter_tag = "cp311-other".into();
    assert!(cache.build_layout(&spec).is_err());
}
