//! `dx-py cache prune` end to end: roots recorded by install and lock, what a dead root alone
//! used goes, what a live one uses stays and still verifies, `--dry-run`, `--max-size`, damaged
//! root files and a prune waiting for a running install. (Mounts: tests/tests/mount.rs.)
use std::path::{Path, PathBuf};
use std::time::Duration;

use dx_py_core::hash::ContentHash;
use dx_py_core::layout::{LayoutManifest, ProjectHash};
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, check_site_packages, layout_site_packages, venv_python, wheel_file, write_wheels,
};

/// Wheels for two locks sharing one package: `a.txt` = shared + only-a, `b.txt` = shared +
/// only-b.
fn two_locks(cx: &TestContext) -> PathBuf {
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("shared", "1.0").file("shared.py", b"S = 1\n"),
            WheelBuilder::new("only-a", "1.0").file("only_a.py", b"A = 1\n"),
            WheelBuilder::new("only-b", "1.0").file("only_b.py", b"B = 1\n"),
        ],
    );
    std::fs::write(cx.project().join("a.txt"), "shared==1.0\nonly-a==1.0\n").unwrap();
    std::fs::write(cx.project().join("b.txt"), "shared==1.0\nonly-b==1.0\n").unwrap();
    wheels
}

fn install(cx: &TestContext, reqs: &str, venv: &str, wheels: &Path) {
    cx.run_ok(&[
        "install",
        "-r",
        reqs,
        "--venv",
        venv,
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
    ]);
}

/// The layout directory `venv` uses and the objects its manifest names, by package name.
fn layout_of(venv: &Path) -> (PathBuf, Vec<(String, ContentHash)>) {
    let dir = layout_site_packages(venv).parent().unwrap().to_path_buf();
    let key: ProjectHash = dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
    let manifest = LayoutManifest::read(&dir, &key).unwrap();
    let objects = manifest
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.hash.parse().unwrap()))
        .collect();
    (dir, objects)
}

/// The file of object `h`: its `.dxpkg`, or once it is thin (installed: its bytes are in its
/// unpacked copy) its `.dxthin`.
fn object_path(cx: &TestContext, h: &ContentHash) -> PathBuf {
    let hex = h.to_hex();
    let full = cx
        .cache_dir()
        .join("store")
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(format!("{hex}.dxpkg"));
    if full.exists() {
        full
    } else {
        full.with_extension("dxthin")
    }
}

fn object_of(objects: &[(String, ContentHash)], name: &str) -> ContentHash {
    objects.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn prune_removes_what_a_deleted_venv_alone_used_and_the_other_venv_still_verifies() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    install(&cx, "a.txt", "va", &wheels);
    install(&cx, "b.txt", "vb", &wheels);
    let (layout_a, objects_a) = layout_of(&cx.project().join("va"));
    let (layout_b, objects_b) = layout_of(&cx.project().join("vb"));
    let only_a = object_of(&objects_a, "only-a");
    let shared = object_of(&objects_a, "shared");
    assert_eq!(shared, object_of(&objects_b, "shared"));
    let unpacked_a = cx.cache_dir().join("store/unpacked").join(only_a.to_hex());
    assert!(unpacked_a.is_dir());

    // Both venvs live: nothing is unreachable.
    let out = cx.run_ok(&["cache", "prune", "--dry-run"]);
    assert!(out.is_empty(), "{out}");

    std::fs::remove_dir_all(cx.project().join("va")).unwrap();
    // A dry run lists the layout and the object only `va` used, and removes nothing.
    let out = cx.run_ok(&["cache", "prune", "--dry-run"]);
    let key_a = layout_a.file_name().unwrap().to_str().unwrap();
    assert!(
        out.contains(&format!("Would remove layout {key_a}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Would remove object {only_a}")),
        "{out}"
    );
    assert!(!out.contains(&shared.to_hex()), "{out}");
    assert!(layout_a.is_dir() && object_path(&cx, &only_a).is_file() && unpacked_a.is_dir());
    let stats = cx.run_ok(&["cache", "stats"]);
    assert!(stats.contains("prune would free"), "{stats}");
    assert!(!stats.contains("prune would free 0 B"), "{stats}");

    // Installs took turns per venv through lock files; prune, alone in the cache, removes them.
    let venv_locks = cx.cache_dir().join("locks/venvs");
    assert!(venv_locks.is_dir());
    let out = cx.run_ok(&["cache", "prune"]);
    assert!(!venv_locks.exists());
    assert!(out.contains(&format!("Removed layout {key_a}")), "{out}");
    // Referrers go first: the layout before the objects it links.
    assert!(
        out.find("Removed layout") < out.find("Removed object"),
        "{out}"
    );
    assert!(!layout_a.exists());
    assert!(!object_path(&cx, &only_a).exists());
    assert!(!object_path(&cx, &only_a).with_extension("dxcv").exists());
    assert!(!unpacked_a.exists());
    // What the live venv uses stays, and still verifies against the wheels' RECORDs.
    assert!(layout_b.is_dir());
    for (_, h) in &objects_b {
        assert!(object_path(&cx, h).is_file(), "{h}");
    }
    let vb = cx.project().join("vb");
    venv_python(
        &vb,
        "import shared, only_b; assert shared.S == only_b.B == 1",
    );
    check_site_packages(
        &layout_site_packages(&vb),
        &[
            wheel_file(&wheels, "shared-"),
            wheel_file(&wheels, "only_b-"),
        ],
        "vb",
    );
    // The dead root's file went with it (left: `vb` and the lock `install -r` wrote, which
    // names b's packages since the second install); a second prune finds nothing.
    assert_eq!(
        std::fs::read_dir(cx.cache_dir().join("roots"))
            .unwrap()
            .count(),
        2
    );
    assert!(cx.run_ok(&["cache", "prune"]).is_empty());
    // The pruned lock installs again from the wheels.
    install(&cx, "a.txt", "va", &wheels);
    venv_python(&cx.project().join("va"), "import only_a");
}

#[test]
fn a_lock_keeps_its_objects_while_it_is_unchanged() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    install(&cx, "a.txt", "va", &wheels);
    let (layout_a, objects_a) = layout_of(&cx.project().join("va"));
    let lockdir = cx.project().join("locked");
    cx.run_ok(&[
        "lock",
        "-r",
        "a.txt",
        "-o",
        lockdir.to_str().unwrap(),
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(cx.project().join("va")).unwrap();
    // The lock `install -r` wrote is gone too: `locked/` alone keeps the objects.
    std::fs::remove_file(cx.project().join("dx-py.dpl")).unwrap();
    cx.run_ok(&["cache", "prune"]);
    // The venv's layout goes; the lock's objects stay.
    assert!(!layout_a.exists());
    for (_, h) in &objects_a {
        assert!(object_path(&cx, h).is_file(), "{h}");
    }
    // A changed lock is a dead root.
    let dpl = lockdir.join("dx-py.dpl");
    let mut bytes = std::fs::read(&dpl).unwrap();
    bytes.push(0);
    std::fs::write(&dpl, bytes).unwrap();
    let out = cx.run_ok(&["cache", "prune"]);
    for (_, h) in &objects_a {
        assert!(!object_path(&cx, h).exists(), "{h}: {out}");
    }
}

#[test]
fn the_lock_an_install_wrote_keeps_its_objects_once_the_venv_is_gone() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    install(&cx, "a.txt", "va", &wheels);
    let (layout_a, objects_a) = layout_of(&cx.project().join("va"));
    std::fs::remove_dir_all(cx.project().join("va")).unwrap();
    let out = cx.run_ok(&["cache", "prune"]);
    assert!(!layout_a.exists(), "{out}");
    for (_, h) in &objects_a {
        assert!(object_path(&cx, h).is_file(), "{h}: {out}");
    }
    // The same lock installs again from the store alone: no wheel is needed.
    cx.run_ok(&[
        "install",
        "--lock",
        "dx-py.dpl",
        "--venv",
        "va",
        "--no-index",
    ]);
    venv_python(&cx.project().join("va"), "import shared, only_a");
    // Without its lock (and its venv), nothing keeps the objects.
    std::fs::remove_dir_all(cx.project().join("va")).unwrap();
    std::fs::remove_file(cx.project().join("dx-py.dpl")).unwrap();
    let out = cx.run_ok(&["cache", "prune"]);
    for (_, h) in &objects_a {
        assert!(!object_path(&cx, h).exists(), "{h}: {out}");
    }
}

#[test]
fn max_size_evicts_the_least_recently_used_venv_first() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    install(&cx, "a.txt", "va", &wheels);
    install(&cx, "b.txt", "vb", &wheels);
    let (layout_a, _) = layout_of(&cx.project().join("va"));
    let (layout_b, _) = layout_of(&cx.project().join("vb"));
    // `va`'s layout was last used two days ago.
    let touched = std::process::Command::new("touch")
        .args(["-m", "-d", "2 days ago"])
        .arg(layout_a.join("dx-py-layout.json"))
        .status()
        .unwrap();
    assert!(touched.success());

    // Room enough: nothing goes.
    assert!(
        cx.run_ok(&["cache", "prune", "--max-size", "1T"])
            .is_empty()
    );
    // A bad size is a clear error.
    let err = cx.run_err(&["cache", "prune", "--max-size", "lots"], 2);
    assert!(err.contains("Invalid size `lots`"), "{err}");

    // No room: the downloads go first, then `va` (older) before `vb`, and both are named.
    let out = cx
        .dx_py()
        .args(["cache", "prune", "--max-size", "0"])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "cache prune --max-size 0");
    let said = String::from_utf8_lossy(&out.stdout);
    let key = |l: &Path| l.file_name().unwrap().to_str().unwrap().to_string();
    let at = |what: &str| said.find(what).unwrap_or_else(|| panic!("{what}: {said}"));
    assert!(at(&format!("layout {}", key(&layout_a))) < at(&format!("layout {}", key(&layout_b))));
    assert!(said.contains("evicted"), "{said}");
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("dx-py install"), "{warned}");
    assert!(!layout_a.exists() && !layout_b.exists());
    // Every managed entry went: no objects are left.
    let objects = dx_py_core::store::PackageStore::open(cx.cache_dir().join("store"))
        .objects()
        .unwrap();
    assert!(objects.is_empty(), "{objects:?}");
    // Install brings a stranded venv back.
    install(&cx, "b.txt", "vb", &wheels);
    venv_python(&cx.project().join("vb"), "import only_b");
}

#[test]
fn a_damaged_root_file_is_a_dead_root_with_a_warning() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    install(&cx, "a.txt", "va", &wheels);
    let roots = cx.cache_dir().join("roots");
    std::fs::write(
        roots.join("0123456789abcdef0123456789abcdef"),
        b"{\"version\":1,",
    )
    .unwrap();
    std::fs::write(roots.join("ffff"), b"\xff\x00garbage").unwrap();
    let out = cx.dx_py().args(["cache", "prune"]).output().unwrap();
    dx_py_tests::assert_success(&out, "cache prune");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(said.matches("treating").count(), 2, "{said}");
    assert!(said.contains("not a valid root record"), "{said}");
    // Gone, and the live venv's and its lock's claims are left.
    assert_eq!(std::fs::read_dir(&roots).unwrap().count(), 2);
    venv_python(&cx.project().join("va"), "import only_a");
}

#[test]
fn prune_waits_for_a_running_install() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    install(&cx, "a.txt", "va", &wheels);
    std::fs::remove_dir_all(cx.project().join("va")).unwrap();
    // An install holds the cache lock shared for as long as it runs.
    let mut lock = dx_py_core::cache_lock::CacheLock::open(&cx.cache_dir()).unwrap();
    let held = lock.shared().unwrap();
    let mut prune = cx
        .dx_py()
        .args(["cache", "prune"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let waited = prune.try_wait().unwrap().is_none();
    drop(held);
    let out = prune.wait_with_output().unwrap();
    assert!(waited, "prune did not wait for the install's lock");
    dx_py_tests::assert_success(&out, "cache prune");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removed layout"));
}

#[test]
fn a_shared_store_is_left_alone_with_a_message() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    let shared = cx.temp.path().join("shared-store");
    let out = cx
        .dx_py()
        .arg("--store")
        .arg(&shared)
        .args(["install", "-r", "a.txt", "--venv", "va", "--no-index"])
        .arg("--find-links")
        .arg(&wheels)
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "install --store");
    let (layout, objects) = layout_of(&cx.project().join("va"));
    std::fs::remove_dir_all(cx.project().join("va")).unwrap();
    let out = cx
        .dx_py()
        .arg("--store")
        .arg(&shared)
        .args(["cache", "prune"])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "cache prune --store");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("leaves its objects alone"), "{said}");
    // The cache's own layout goes; the shared store's objects stay.
    assert!(!layout.exists());
    let store = dx_py_core::store::PackageStore::open(&shared);
    for (_, h) in &objects {
        assert!(store.contains(h), "{h}");
    }
}

/// A mount recorded moments ago (its mount still being made) keeps its tree; once the grace is
/// over and nothing is mounted there, the tree goes.
#[test]
fn a_mount_being_made_keeps_its_tree_for_a_grace_period() {
    let cx = TestContext::new();
    let trees = cx.cache_dir().join("mounts/trees");
    std::fs::create_dir_all(&trees).unwrap();
    let tree = trees.join("0123abcd.dxtree");
    std::fs::write(&tree, b"a tree").unwrap();
    let roots = cx.cache_dir().join("roots");
    let mountpoint = cx.project().join("starting");
    dx_py_core::cache::roots::record_mount(&roots, &mountpoint, &tree);
    assert!(cx.run_ok(&["cache", "prune"]).is_empty());
    assert!(tree.is_file());
    let file = roots.join(dx_py_core::cache::roots::file_name(&mountpoint));
    let touched = std::process::Command::new("touch")
        .args(["-m", "-d", "2 minutes ago"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(touched.success());
    let out = cx.run_ok(&["cache", "prune"]);
    assert!(out.contains("Removed tree 0123abcd"), "{out}");
    assert!(!tree.exists() && !file.exists());
}

/// A project's universal lock is a lock root: after `dx-py lock`, the objects its wheels became
/// stay when the venv that installed them is gone; the selections made from it go at every
/// prune (the next sync makes its own again) and count in `cache stats`.
#[test]
fn a_universal_lock_keeps_its_objects_and_selections_are_made_again() {
    let cx = TestContext::new();
    let wheels = two_locks(&cx);
    std::fs::write(
        cx.project().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"0.1\"\nrequires-python = \">=3.9\"\n\
         dependencies = [\"shared\", \"only-a\"]\n",
    )
    .unwrap();
    let offline = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--no-index", "--find-links", wheels.to_str().unwrap()]);
        cx.run_ok(&all)
    };
    offline(&["sync"]);
    let venv = cx.project().join(".venv");
    let (layout, objects) = layout_of(&venv);
    let selected = cx.cache_dir().join("selected");
    assert_eq!(std::fs::read_dir(&selected).unwrap().count(), 1);
    let stats = cx.run_ok(&["cache", "stats"]);
    assert!(stats.contains("selected"), "{stats}");
    offline(&["lock"]);
    std::fs::remove_dir_all(&venv).unwrap();
    cx.run_ok(&["cache", "prune"]);
    assert!(!layout.exists(), "the venv's layout goes");
    for (name, h) in &objects {
        assert!(object_path(&cx, h).is_file(), "{name}: kept by the lock");
    }
    assert_eq!(std::fs::read_dir(&selected).unwrap().count(), 0);
    offline(&["sync"]);
    venv_python(&venv, "import shared, only_a");
    // `cache clean --all` takes the selections with the rest.
    cx.run_ok(&["cache", "clean", "--all", "--force"]);
    assert!(!selected.exists());
}
