//! Damaged bytes in each on-disk format dx-py reads, and what the next command makes of them:
//! a clear error that names the file, or a correct result — never a panic, never wrong bytes
//! with exit 0.
//!
//! | file | expected |
//! |---|---|
//! | `dx-py.dpl` | install refuses, naming the lock (or the flip is in bytes install never reads) |
//! | `layouts/index.dxlc` | a miss: install rebuilds the layout and succeeds |
//! | `mounts/trees/*.dxtree` | mount rebuilds the tree (or refuses, naming it) |
//! | `pylock.toml` | install refuses, naming it (or installs exactly the locked wheels) |
//! | `store/wheels/{sha256}` | a record naming another package's object is not followed |
//!
//! Flips inside `.dxpkg` store objects and inside layout files belong here too; they come with
//! verified reads (tests/tests/verified.rs, where the checks that catch them are built).
use std::path::Path;

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, assert_success, check_site_packages, layout_site_packages, snapshot, venv_python,
    venv_site_packages,
};

use super::{Project, Unmount, assert_cache_sound};

/// Two small packages, one with a console script.
fn project(cx: &TestContext) -> Project {
    Project::synthetic(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("alpha", "1.0")
                .file("alpha/__init__.py", b"NAME = 'alpha'\n")
                .file("alpha/data.txt", &b"alpha data\n".repeat(50)),
            WheelBuilder::new("beta", "2.0")
                .file("beta.py", b"def main():\n    print('beta')\n")
                .console_script("beta", "beta:main"),
        ],
        "alpha, beta",
    )
}

/// [`project`], installed into `.venv` from its requirements (which writes both lock files).
fn installed(cx: &TestContext) -> Project {
    let project = project(cx);
    project.write_requirements(&cx.project());
    cx.run_ok(&project.args("install", &[]));
    project
}

/// Writes `bytes` with the byte at `at` flipped (one bit) to `path`, writable first.
fn write_flipped(path: &Path, bytes: &[u8], at: usize) {
    let mut damaged = bytes.to_vec();
    damaged[at] ^= 0x10;
    if path.exists() {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
    }
    std::fs::write(path, damaged).unwrap();
}

/// About `count` positions spread over `len` bytes, first and last included.
fn positions(len: usize, count: usize) -> Vec<usize> {
    let step = (len / count).max(1);
    let mut at: Vec<usize> = (0..len).step_by(step).collect();
    at.push(len - 1);
    at
}

/// `install ARGS --no-index --find-links WHEELS`.
fn install(cx: &TestContext, project: &Project, args: &[&str]) -> std::process::Output {
    cx.dx_py()
        .arg("install")
        .args(args)
        .args(["--no-index", "--find-links"])
        .arg(&project.wheels)
        .output()
        .unwrap()
}

/// The venv's `.pth` file, which names its layout: unchanged means the venv was not touched.
fn marker(venv: &Path) -> Vec<u8> {
    std::fs::read(venv_site_packages(venv).join("_dx_py_layout.pth")).unwrap()
}

/// Asserts a refusal: exit 1, a message naming `file`, no panic.
fn assert_refused(out: &std::process::Output, file: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        stderr.contains(file),
        "{what}: the message names no `{file}`: {stderr}"
    );
}

#[test]
fn a_flipped_byte_in_the_lock_is_refused_or_harmless() {
    let cx = TestContext::new();
    let project = installed(&cx);
    let venv = cx.project().join(".venv");
    let before = marker(&venv);
    let good = std::fs::read(cx.project().join("dx-py.dpl")).unwrap();
    let damaged = cx.project().join("damaged.dpl");
    let (mut refused, mut harmless) = (0, 0);
    for at in positions(good.len(), 96) {
        write_flipped(&damaged, &good, at);
        let out = install(&cx, &project, &["--lock", "damaged.dpl"]);
        let what = format!("lock flipped at byte {at}");
        if out.status.success() {
            // Only bytes no install reads (bucket words, padding) may be harmless, and then
            // the venv must hold exactly the locked wheels.
            check_site_packages(&layout_site_packages(&venv), &project.wheel_files(), &what);
            harmless += 1;
        } else {
            assert_refused(&out, "damaged.dpl", &what);
            assert_eq!(
                marker(&venv),
                before,
                "{what}: a refused install changed the venv"
            );
            refused += 1;
        }
    }
    eprintln!("lock flips: {refused} refused, {harmless} harmless");
    assert!(refused > harmless, "{refused} refused, {harmless} harmless");
    project.check_venv(&venv, "the venv after the lock flips");
    assert_cache_sound(&cx, &cx.cache_dir(), "lock flips");
}

#[test]
fn a_damaged_layout_index_is_a_miss_and_install_rebuilds() {
    let cx = TestContext::new();
    let project = installed(&cx);
    let index = cx.cache_dir().join("layouts/index.dxlc");
    let good = std::fs::read(&index).unwrap();
    let mut noticed = 0;
    for (i, at) in positions(good.len(), 48).into_iter().enumerate() {
        write_flipped(&index, &good, at);
        let venv = format!("v{i}");
        let out = install(&cx, &project, &["--venv", &venv]);
        let what = format!("index flipped at byte {at}");
        assert_success(&out, &what);
        noticed += usize::from(String::from_utf8_lossy(&out.stderr).contains("index.dxlc"));
        check_site_packages(
            &layout_site_packages(&cx.project().join(&venv)),
            &project.wheel_files(),
            &what,
        );
    }
    // Flips in the header and in the used slot are noticed; the rest of the index is empty
    // slots, which no lookup of this lock reads.
    assert!(noticed > 0, "no flip was noticed");
    project.check_venv(&cx.project().join("v0"), "v0");
    assert_cache_sound(&cx, &cx.cache_dir(), "index flips");
}

#[test]
fn a_damaged_mount_tree_is_rebuilt() {
    if !dx_py_tests::can_mount() {
        return;
    }
    let cx = TestContext::new();
    let project = project(&cx);
    project.write_requirements(&cx.project());
    // The installed layout is what the mount must serve.
    cx.run_ok(&project.args("install", &["--venv", "installed"]));
    let expected = snapshot(&layout_site_packages(&cx.project().join("installed")));
    let venv = cx.project().join("served");
    let wheels = project.wheels.to_str().unwrap();
    let mount = ["mount", "served", "--wait-bytecode", "--find-links", wheels];
    let guard = Unmount {
        cx: &cx,
        venv: venv.clone(),
    };
    cx.run_ok(&mount);
    super::unmount(&cx, &venv);
    // The complete tree of this lock and venv, which every later mount of it maps.
    let trees: Vec<_> = std::fs::read_dir(cx.cache_dir().join("mounts/trees"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".dxtree") && !name.contains(".first.")
        })
        .collect();
    assert_eq!(trees.len(), 1, "{trees:?}");
    let tree = &trees[0];
    let good = std::fs::read(tree).unwrap();
    let name = tree.file_name().unwrap().to_string_lossy().into_owned();
    let mut rebuilt = 0;
    for at in positions(good.len(), 24) {
        write_flipped(tree, &good, at);
        let out = cx.dx_py().args(mount).output().unwrap();
        let what = format!("tree flipped at byte {at}");
        if out.status.success() {
            let served = snapshot(&venv_site_packages(&venv));
            super::unmount(&cx, &venv);
            assert!(served == expected, "{what}: the mount serves other files");
            rebuilt += usize::from(String::from_utf8_lossy(&out.stderr).contains(&name));
            // Rebuilt from the lock and the store, byte for byte.
            assert!(std::fs::read(tree).unwrap() == good, "{what}: not rebuilt");
        } else {
            assert_refused(&out, &name, &what);
        }
    }
    drop(guard);
    assert!(rebuilt > 0, "no damaged tree was rebuilt");
    assert_cache_sound(&cx, &cx.cache_dir(), "tree flips");
}

#[test]
fn a_garbage_or_flipped_pylock_is_refused_or_installs_exactly_the_lock() {
    let cx = TestContext::new();
    let project = installed(&cx);
    let venv = cx.project().join(".venv");
    let before = marker(&venv);
    let good = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    let bad = cx.project().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let lock = bad.join("pylock.toml");
    let garbage: [(&str, Vec<u8>); 6] = [
        ("binary", (0..=255u8).cycle().take(3000).collect()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        (
            "newer",
            good.replace("lock-version = \"1.0\"", "lock-version = \"9.0\"")
                .into_bytes(),
        ),
        (
            "bad sha256",
            good.replacen("sha256 = \"", "sha256 = \"zz", 1)
                .into_bytes(),
        ),
        (
            "wheels not a table",
            good.replace("[[packages.wheels]]", "[[packages.wheelz]]")
                .into_bytes(),
        ),
    ];
    for (what, bytes) in garbage {
        std::fs::write(&lock, bytes).unwrap();
        let out = install(&cx, &project, &["--lock", "bad/pylock.toml"]);
        assert_refused(&out, "pylock.toml", what);
        assert_eq!(
            marker(&venv),
            before,
            "{what}: a refused install changed the venv"
        );
    }
    let (mut refused, mut installed) = (0, 0);
    for at in positions(good.len(), 64) {
        write_flipped(&lock, good.as_bytes(), at);
        let out = install(
            &cx,
            &project,
            &["--lock", "bad/pylock.toml", "--venv", "flipped"],
        );
        let what = format!("pylock.toml flipped at byte {at}");
        if out.status.success() {
            // A flip in bytes that do not change the locked wheels (a comment, `created-by`,
            // a file size).
            let flipped = cx.project().join("flipped");
            check_site_packages(
                &layout_site_packages(&flipped),
                &project.wheel_files(),
                &what,
            );
            installed += 1;
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            refused += 1;
        }
    }
    eprintln!("pylock flips: {refused} refused, {installed} installed");
    assert!(refused > 0);
    project.check_venv(&venv, "the venv after the pylock flips");
}

#[test]
fn a_wheel_record_naming_another_object_is_not_followed() {
    let cx = TestContext::new();
    let project = installed(&cx);
    let records = cx.cache_dir().join("store/wheels");
    let sha = |prefix: &str| {
        let wheel = dx_py_tests::wheel_file(&project.wheels, prefix);
        dx_py_core::hash::sha256_hex(&std::fs::read(wheel).unwrap())
    };
    let (alpha, beta) = (records.join(sha("alpha-")), records.join(sha("beta-")));
    let alpha_object = std::fs::read_to_string(&alpha).unwrap();
    // alpha's wheel "became" beta's object.
    let misdirect = || {
        std::fs::set_permissions(&alpha, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        std::fs::copy(&beta, &alpha).unwrap();
    };

    // Locking again (another project) reads the record for the wheel it downloads.
    misdirect();
    let other = cx.temp.path().join("other");
    project.write_requirements(&other);
    let out = cx
        .dx_py()
        .current_dir(&other)
        .args(project.args("install", &[]))
        .output()
        .unwrap();
    assert_success(&out, "install -r with a misdirected record");
    project.check_venv(&other.join(".venv"), "relocked");
    assert_eq!(
        std::fs::read_to_string(&alpha).unwrap(),
        alpha_object,
        "record repaired"
    );

    // A lock without store hashes, and no layout to hit: the install looks every wheel up.
    misdirect();
    let good = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    let bare: String = good
        .lines()
        .filter(|l| !l.starts_with("store-hash") && !l.starts_with("[packages.tool.dx-py]"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!bare.contains("store-hash"), "{bare}");
    let bare_dir = cx.temp.path().join("bare");
    std::fs::create_dir_all(&bare_dir).unwrap();
    std::fs::write(bare_dir.join("pylock.toml"), bare).unwrap();
    std::fs::remove_dir_all(cx.cache_dir().join("layouts")).unwrap();
    let out = cx
        .dx_py()
        .current_dir(&bare_dir)
        .args([
            "install",
            "--lock",
            "pylock.toml",
            "--no-index",
            "--find-links",
        ])
        .arg(&project.wheels)
        .output()
        .unwrap();
    assert_success(&out, "install of a lock without store hashes");
    project.check_venv(&bare_dir.join(".venv"), "from the bare lock");
    venv_python(
        &bare_dir.join(".venv"),
        "import alpha; assert alpha.NAME == 'alpha'",
    );
    assert_cache_sound(&cx, &cx.cache_dir(), "misdirected records");
}
