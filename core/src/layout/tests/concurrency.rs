//! Threads and processes building and installing the same layouts at once.
use super::*;

const CHILD_ENV: &str = "DX_PY_LAYOUT_TEST_CHILD";

/// Each worker installs every fixed set (starting at a different one) into its own venvs and
/// into one venv shared by everybody.
fn worker(root: &Path, store: &PackageStore, who: &str) {
    let sets = fixed_sets();
    let cache = LayoutCache::open(&root.join("layouts"), store).unwrap();
    let start: usize = who.bytes().map(usize::from).sum();
    for k in 0..sets.len() * 2 {
        let i = (start + k) % sets.len();
        let spec = spec_of(store, &sets[i]);
        let venv = root.join("venvs").join(format!("{who}-{k}"));
        std::fs::create_dir_all(&venv).unwrap();
        cache.install(&spec, &venv).unwrap();
        assert_venv_is(&venv, &sets[i]);
        cache.install(&spec, &root.join("venvs/shared")).unwrap();
    }
}

/// After the workers: every private venv was checked by its worker; the shared venv holds one
/// whole set; the index holds each layout exactly once; every layout passes the full check.
fn check_after_workers(root: &Path, store: &PackageStore) {
    let sets = fixed_sets();
    let cache = LayoutCache::open(&root.join("layouts"), store).unwrap();
    let shared = root.join("venvs/shared");
    let marker =
        install::read_marker(&venv_site_packages(&shared).join(install::PTH_NAME)).unwrap();
    let which = sets
        .iter()
        .find(|s| spec_of(store, s).project_hash().to_hex() == marker.project_hash)
        .unwrap();
    assert_venv_is(&shared, which);
    let ix = LayoutIndex::new(std::fs::read(root.join("layouts/index.dxlc")).unwrap()).unwrap();
    ix.verify().unwrap();
    let got: Vec<ProjectHash> = ix.entries().map(|e| e.unwrap().project_hash).collect();
    let want: BTreeSet<ProjectHash> = sets
        .iter()
        .map(|s| spec_of(store, s).project_hash())
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    for h in &want {
        assert!(cache.verify_layout(h, VerifyLevel::Full).unwrap().is_ok());
    }
    // No temporary trees left behind.
    for e in std::fs::read_dir(root.join("layouts")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".tmp"), "{name}");
    }
}

#[test]
fn threads_build_and_install_at_once() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.dir.path().join("venvs/shared")).unwrap();
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (fx, barrier) = (&fx, &barrier);
            s.spawn(move || {
                barrier.wait();
                worker(fx.dir.path(), &fx.store, &format!("t{t}"));
            });
        }
    });
    check_after_workers(fx.dir.path(), &fx.store);
}

/// Runs as a child process when `CHILD_ENV` names a root; a no-op in a normal test run.
#[test]
fn concurrent_child() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let (root, who) = spec.split_once('|').unwrap();
    let root = Path::new(root);
    // Wait for the go signal so that the processes really overlap.
    while !root.join("go").exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let store = Fixture::at(root);
    std::thread::scope(|s| {
        for t in 0..2 {
            let store = &store;
            s.spawn(move || worker(root, store, &format!("{who}t{t}")));
        }
    });
}

#[test]
fn processes_build_and_install_at_once() {
    let fx = Fixture::new();
    let root = fx.dir.path();
    std::fs::create_dir_all(root.join("venvs/shared")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "layout::tests::concurrency::concurrent_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|p{i}", root.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(root.join("go"), b"").unwrap();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    }
    check_after_workers(root, &Fixture::at(root));
}

#[test]
fn rebuilds_race_with_installs_of_the_same_layout() {
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(0);
    let spec = spec_of(&fx.store, &pkgs);
    let cache = fx.cache();
    cache.build_layout(&spec).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                assert_eq!(
                    cache.rebuild_layout(&spec).unwrap().outcome,
                    BuildOutcome::Rebuilt
                );
            }
        });
        for t in 0..3 {
            let (cache, spec, fx) = (&cache, &spec, &fx);
            s.spawn(move || {
                for k in 0..10 {
                    cache.install(spec, &fx.venv(&format!("{t}-{k}"))).unwrap();
                }
            });
        }
    });
    for t in 0..3 {
        for k in 0..10 {
            assert_venv_is(&fx.venv(&format!("{t}-{k}")), &pkgs);
        }
    }
    assert_eq!(cache.entries().len(), 1);
    assert!(
        cache
            .verify_layout(&spec.project_hash(), VerifyLevel::Full)
            .unwrap()
            .is_ok()
    );
}
