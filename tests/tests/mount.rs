//! `dx-py mount` end to end: a venv served by FUSE from the store, compared with the symlink
//! layout of the same lock; read-only stores. Tests that mount need `/dev/fuse` and root or
//! `fusermount3` (bind mounts: root), and say what they skip where these are missing.
use std::path::{Path, PathBuf};
use std::process::Command;

use dx_py_core::mount::ServerStatus;
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, assert_printed, assert_success, can_mount, can_run, layout_site_packages, printed,
    root, snapshot, venv_python, write_wheels,
};

/// Unmounts on drop, also when the test fails.
struct Mounted<'a> {
    cx: &'a TestContext,
    venv: PathBuf,
}

/// Runs `dx-py mount VENV -r requirements.txt --find-links WHEELS EXTRA...` in `dir` (the
/// requirements file is there); returns the guard that unmounts `dir/VENV` (made before
/// anything is checked) and the command's output.
fn mount_r<'a>(
    cx: &'a TestContext,
    dir: &Path,
    venv: &str,
    wheels: &Path,
    extra: &[&str],
) -> (Mounted<'a>, std::process::Output) {
    let out = cx
        .dx_py()
        .current_dir(dir)
        .args(["mount", venv, "-r", "requirements.txt", "--find-links"])
        .arg(wheels)
        .args(extra)
        .output()
        .unwrap();
    let mounted = Mounted {
        cx,
        venv: dir.join(venv),
    };
    (mounted, out)
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = self.cx.dx_py().arg("unmount").arg(&self.venv).output();
        let _ = Command::new("umount").arg("-l").arg(&self.venv).output();
    }
}

fn wheels(cx: &TestContext) -> PathBuf {
    write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("ns-alpha", "1.0").file("ns/alpha/__init__.py", b"NAME = 'alpha'\n"),
            WheelBuilder::new("ns-beta", "2.0").file("ns/beta/__init__.py", b"NAME = 'beta'\n"),
            WheelBuilder::new("tool", "0.1")
                .file("tool/__init__.py", b"def main():\n    print('tool ran')\n")
                .file(
                    "tool/data.bin",
                    &(0..=255u8).cycle().take(300_000).collect::<Vec<u8>>(),
                )
                .console_script("tool", "tool:main"),
        ],
    )
}

fn write_requirements(cx: &TestContext) {
    std::fs::write(
        cx.project().join("requirements.txt"),
        "ns-alpha==1.0\nns-beta==2.0\ntool==0.1\n",
    )
    .unwrap();
}

fn lock(cx: &TestContext, wheels: &Path) {
    write_requirements(cx);
    cx.run_ok(&[
        "lock",
        "-r",
        "requirements.txt",
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
    ]);
}

#[test]
fn mounted_venv_matches_the_layout_and_is_read_only() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    // The symlink layout of the same lock, for comparison.
    cx.run_ok(&[
        "install",
        "--venv",
        "linked",
        "--find-links",
        w.to_str().unwrap(),
    ]);
    let out = cx.run_ok(&["mount", "mounted", "--find-links", w.to_str().unwrap()]);
    let _ = out;
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("mounted"),
    };
    let venv = guard.venv.clone();

    let got = venv_python(
        &venv,
        "import ns.alpha, ns.beta, tool, sys\nprint(ns.alpha.NAME, ns.beta.NAME, sys.prefix != sys.base_prefix)",
    );
    assert_eq!(got.trim(), "alpha beta True");
    let run = Command::new(venv.join("bin/tool")).output().unwrap();
    assert_success(&run, "bin/tool");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "tool ran\n");

    // Same site-packages, byte for byte (bytecode included).
    let py = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    let sp = |v: &Path| v.join("lib").join(&py).join("site-packages");
    let linked = snapshot(&layout_site_packages(&cx.project().join("linked")));
    let mounted = snapshot(&sp(&venv));
    assert_eq!(
        linked.keys().collect::<Vec<_>>(),
        mounted.keys().collect::<Vec<_>>()
    );
    assert_eq!(linked, mounted);
    assert!(
        mounted.keys().any(|k| k.ends_with(".pyc")),
        "bytecode is served"
    );

    // Writes of every kind fail with EROFS.
    let erofs = |r: std::io::Result<()>| assert_eq!(r.unwrap_err().raw_os_error(), Some(30));
    erofs(std::fs::write(venv.join("new.txt"), b"x"));
    erofs(std::fs::write(sp(&venv).join("tool/__init__.py"), b"x"));
    erofs(std::fs::rename(
        sp(&venv).join("tool"),
        sp(&venv).join("tool2"),
    ));
    erofs(std::fs::create_dir(venv.join("d")));
    erofs(std::fs::set_permissions(
        venv.join("pyvenv.cfg"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    ));
    erofs(std::fs::remove_file(venv.join("pyvenv.cfg")));
    // An install into it says that it is mounted and how to proceed, not a bare `EROFS`.
    let err = cx.run_err(
        &[
            "install",
            "--venv",
            "mounted",
            "--find-links",
            w.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("served by a dx-py mount")
            && err.contains(&format!("dx-py unmount {}", venv.display())),
        "{err}"
    );
    // A layout of another set, built first (the cold path): the same message, no other change.
    std::fs::write(cx.project().join("one.txt"), "tool==0.1\n").unwrap();
    let err = cx.run_err(
        &[
            "install",
            "--venv",
            "mounted",
            "-r",
            "one.txt",
            "--no-index",
            "--find-links",
            w.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("served by a dx-py mount"), "{err}");

    // 8 concurrent readers see the right bytes.
    let expected =
        std::fs::read(layout_site_packages(&cx.project().join("linked")).join("tool/data.bin"))
            .unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(
                        std::fs::read(sp(&venv).join("tool/data.bin")).unwrap(),
                        expected
                    );
                }
            });
        }
    });

    let listed = cx.run_ok(&["mount", "--list"]);
    assert!(listed.contains(venv.to_str().unwrap()), "{listed}");
    cx.run_ok(&["unmount", venv.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_dir(&venv).unwrap().count(),
        0,
        "unmount leaves the directory empty"
    );
}

#[test]
fn killed_server_is_recovered() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    cx.run_ok(&[
        "mount",
        "v",
        "--no-auto-unmount",
        "--find-links",
        w.to_str().unwrap(),
    ]);
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("v"),
    };
    let listed = cx.run_ok(&["mount", "--list"]);
    let pid: i32 = listed
        .lines()
        .find(|l| l.starts_with(guard.venv.to_str().unwrap()))
        .and_then(|l| l.rsplit("pid ").next())
        .and_then(|p| p.trim().parse().ok())
        .expect("mount --list shows the server pid");
    // The server is our child's child: this test started it, so it may end it.
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let msg = cx.run_ok(&["unmount", guard.venv.to_str().unwrap()]);
    let _ = msg;
    assert_eq!(std::fs::read_dir(&guard.venv).unwrap().count(), 0);
    // And it can be mounted again.
    cx.run_ok(&["mount", "v", "--find-links", w.to_str().unwrap()]);
    venv_python(&guard.venv, "import tool");
}

/// Unmounting is idempotent for users: after the watcher unmounted the venv of a killed server
/// (or after an unmount), `dx-py unmount` says that it is not mounted and succeeds.
#[test]
fn unmount_after_the_watcher_unmounted_says_so_and_succeeds() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    cx.run_ok(&["mount", "v", "--find-links", w.to_str().unwrap()]);
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("v"),
    };
    let pid = server_pid(&cx, &guard.venv);
    // The server is our child's child: this test started it, so it may end it.
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_for_exit(pid);
    // Longer than the watcher's own wait for a dead mount (30 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(guard.venv.to_str().unwrap())
    };
    while mounted() {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher did not unmount"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for _ in 0..2 {
        let out = cx.dx_py().args(["unmount", "v"]).output().unwrap();
        assert_success(&out, "dx-py unmount of an unmounted venv");
        assert_printed(&out, "is not mounted (already unmounted)");
    }
}

#[test]
fn read_only_bind_mounted_store_works_without_writes() {
    // Bind mounts need root.
    if !can_mount() || !can_run(root()) {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    cx.run_ok(&["install", "--find-links", w.to_str().unwrap()]);
    let store = cx.cache_dir().join("store");
    let ro = cx.temp.path().join("ro-store");
    std::fs::create_dir_all(&ro).unwrap();
    assert_success(
        &Command::new("mount")
            .args(["--bind"])
            .arg(&store)
            .arg(&ro)
            .output()
            .unwrap(),
        "bind",
    );
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).output();
        }
    }
    let _ro_guard = Umount(ro.clone());
    assert_success(
        &Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(&ro)
            .output()
            .unwrap(),
        "remount ro",
    );
    let before = snapshot(&store);

    // Another user's cache, the shared read-only store: install and mount both work.
    let other = cx.temp.path().join("other-cache");
    let run = |args: &[&str]| {
        let out = cx
            .dx_py()
            .env("DX_PY_CACHE_DIR", &other)
            .args(args)
            .output()
            .unwrap();
        assert_success(&out, &format!("dx-py {}", args.join(" ")));
    };
    run(&[
        "install",
        "--venv",
        "ro-venv",
        "--store",
        ro.to_str().unwrap(),
    ]);
    venv_python(&cx.project().join("ro-venv"), "import ns.alpha, tool");
    run(&["mount", "ro-mounted", "--store", ro.to_str().unwrap()]);
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("ro-mounted"),
    };
    venv_python(&guard.venv, "import ns.beta, tool");
    assert_eq!(
        snapshot(&store),
        before,
        "nothing was written into the store"
    );

    // A package the read-only store lacks: a clear error naming it.
    let extra = write_wheels(
        &cx.temp.path().join("more"),
        &[WheelBuilder::new("newcomer", "3.0").file("newcomer.py", b"")],
    );
    std::fs::write(cx.project().join("requirements.txt"), "newcomer==3.0\n").unwrap();
    let refused = |args: &[&str]| {
        let out = cx
            .dx_py()
            .env("DX_PY_CACHE_DIR", &other)
            .args(args)
            .args(["-r", "requirements.txt", "--no-index"])
            .args(["--find-links", extra.to_str().unwrap()])
            .args(["--store", ro.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("read-only") && err.contains("newcomer"),
            "{err}"
        );
    };
    refused(&["install", "--venv", "x"]);
    // The same from `mount`, whose local wheels are otherwise stored after mounting: refused
    // before anything is mounted.
    let _new = Mounted {
        cx: &cx,
        venv: cx.project().join("ro-new"),
    };
    refused(&["mount", "ro-new"]);
    assert!(
        !cx.run_ok(&["mount", "--list"]).contains("ro-new"),
        "mounted anyway"
    );
}

#[test]
fn quick_remounts_survive_and_the_server_stays_quiet() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("cycle"),
    };
    for _ in 0..10 {
        cx.run_ok(&["mount", "cycle", "--find-links", w.to_str().unwrap()]);
        // `isatty()` on every opened file, as Python's `open()` does, must not fill the log.
        venv_python(
            &guard.venv,
            "import tool, ns.alpha\nassert not open(tool.__file__).isatty()",
        );
        let pid = server_pid(&cx, &guard.venv);
        cx.run_ok(&["unmount", "cycle"]);
        assert_eq!(std::fs::read_dir(&guard.venv).unwrap().count(), 0);
        wait_for_exit(pid);
        // The server's last words after an unmount: none (fuser's own unmount at the end finds
        // the mount gone; that is not worth a warning).
        for text in server_logs(&cx) {
            assert!(!text.contains("WARN"), "{text}");
        }
    }
    for text in server_logs(&cx) {
        assert!(!text.contains("Not Implemented"), "{text}");
    }
}

#[test]
fn without_fuse_mount_falls_back_to_the_layout() {
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    let out = cx
        .dx_py()
        .env("DX_PY_NO_FUSE", "1")
        .args(["mount", "nofuse", "--find-links", w.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&out, "dx-py mount without FUSE");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FUSE is not usable here") && err.contains("DX_PY_NO_FUSE"),
        "{err}"
    );
    let venv = cx.project().join("nofuse");
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(venv.to_str().unwrap())
    );
    assert!(layout_site_packages(&venv).is_dir());
    venv_python(&venv, "import ns.alpha, ns.beta, tool");
}

#[test]
fn mount_after_cache_clean_rebuilds_what_it_needs() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("again"),
    };
    cx.run_ok(&["mount", "again", "--find-links", w.to_str().unwrap()]);
    cx.run_ok(&["unmount", "again"]);
    cx.run_ok(&["cache", "clean", "--all"]);
    assert!(
        !cx.cache_dir().join("mounts/trees").exists(),
        "trees name store objects: cleaned with them"
    );
    cx.run_ok(&["mount", "again", "--find-links", w.to_str().unwrap()]);
    venv_python(&guard.venv, "import tool, ns.beta");
}

#[test]
fn cache_clean_keeps_what_a_live_mount_serves() {
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("live"),
    };
    cx.run_ok(&["mount", "live", "--find-links", w.to_str().unwrap()]);
    let out = cx
        .dx_py()
        .args(["cache", "clean", "--all"])
        .output()
        .unwrap();
    assert_success(&out, "cache clean --all");
    let said = printed(&out);
    assert!(said.contains("mount") && said.contains("live"), "{said}");
    // Every file is still served (the objects the tree names were kept), also after a remount.
    venv_python(&guard.venv, "import tool, ns.alpha, ns.beta");
    cx.run_ok(&["unmount", "live"]);
    cx.run_ok(&["mount", "live", "--find-links", w.to_str().unwrap()]);
    venv_python(&guard.venv, "import tool, ns.beta");
    // Unmounted, it is no longer a root: the next clean removes everything.
    cx.run_ok(&["unmount", "live"]);
    cx.run_ok(&["cache", "clean", "--all"]);
    assert!(!cx.cache_dir().join("mounts/trees").exists());
    assert!(!cx.cache_dir().join("store").exists());
}

/// `cache prune` keeps what a live mount serves, even under `--max-size 0`, and removes it once
/// the venv is unmounted.
#[test]
fn cache_prune_keeps_what_a_live_mount_serves() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    write_requirements(&cx);
    let (guard, out) = mount_r(&cx, &cx.project(), "live", &w, &["--wait-bytecode"]);
    assert_success(&out, "dx-py mount --wait-bytecode");
    let store = dx_py_core::store::PackageStore::open(cx.cache_dir().join("store"));
    let objects = store.objects().unwrap();
    assert!(!objects.is_empty());
    let served = snapshot(&site_packages(&guard.venv));
    for args in [
        &["cache", "prune"][..],
        &["cache", "prune", "--max-size", "0"],
    ] {
        let out = cx.dx_py().args(args).output().unwrap();
        assert_success(&out, &args.join(" "));
        assert_eq!(store.objects().unwrap(), objects, "{}", printed(&out));
        assert_eq!(snapshot(&site_packages(&guard.venv)), served);
    }
    let out = cx
        .dx_py()
        .args(["cache", "prune", "--max-size", "0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("used by live mounts"),
        "{}",
        printed(&out)
    );
    venv_python(&guard.venv, "import tool, ns.alpha, ns.beta");
    // Unmounted, the mount is a dead root: its tree and objects go.
    cx.run_ok(&["unmount", "live"]);
    cx.run_ok(&["cache", "prune"]);
    assert!(store.objects().unwrap().is_empty());
    let trees = std::fs::read_dir(cx.cache_dir().join("mounts/trees"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(trees, 0);
}

/// Files under `root`, counted (directories included); 0 when `root` is missing.
fn count_entries(root: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(root) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            1 + if p.is_dir() && !p.is_symlink() {
                count_entries(&p)
            } else {
                0
            }
        })
        .sum()
}

/// The mount's cold path creates O(packages) files: objects, bytecode packs and the tree, never
/// the unpacked trees layouts link from, which `install -r` does make (the counter-check).
#[test]
fn cold_lock_and_mount_unpack_nothing() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    cx.run_ok(&["mount", "mounted", "--find-links", w.to_str().unwrap()]);
    let _guard = Mounted {
        cx: &cx,
        venv: cx.project().join("mounted"),
    };
    // The bytecode is compiled after mounting: count once it is there too.
    wait_for_bytecode(&cx.project().join("mounted"));
    let store = cx.cache_dir().join("store");
    assert_eq!(count_entries(&store.join("unpacked")), 0);
    // 3 packages: 3 objects + 3 bytecode packs, their fan-out directories, 3 pack maps.
    let created = count_entries(&store);
    assert!(created <= 40, "the store holds {created} entries");

    let other = TestContext::new();
    let w = wheels(&other);
    write_requirements(&other);
    other.run_ok(&[
        "install",
        "-r",
        "requirements.txt",
        "--no-index",
        "--find-links",
        w.to_str().unwrap(),
    ]);
    assert!(count_entries(&other.cache_dir().join("store/unpacked")) > 3);
}

/// `mount -r` locks the requirements first as `install -r` does (the lock files land in the
/// project), mounts as soon as the packages are stored, and compiles their bytecode afterwards in
/// the server: the venv imports at once (from source until the bytecode is there), the
/// `__pycache__` directories appear in the running mount when it is ready, and a later mount of
/// the same set serves them from the start. Nothing is unpacked.
#[test]
fn mount_r_mounts_first_and_adds_bytecode_when_compiled() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    write_requirements(&cx);
    let mount_here = |venv: &str| {
        let (mounted, out) = mount_r(&cx, &cx.project(), venv, &w, &[]);
        assert_success(&out, "dx-py mount -r");
        (mounted, printed(&out))
    };
    let dpl_time = || {
        let dpl = std::fs::metadata(cx.project().join("dx-py.dpl")).unwrap();
        dpl.modified().unwrap()
    };
    let (first, said) = mount_here("mounted");
    assert!(
        said.contains("The bytecode of 3 packages is compiled after mounting"),
        "{said}"
    );
    // Not even the packages are stored before mounting: the tree is laid out from the wheels.
    assert!(
        said.contains("3 packages are stored after mounting"),
        "{said}"
    );
    assert!(cx.project().join("pylock.toml").is_file());
    // Imports work whether or not the packages and the bytecode have arrived yet.
    let got = venv_python(
        &first.venv,
        "import tool, ns.alpha, ns.beta\nprint(ns.alpha.NAME, ns.beta.NAME)",
    );
    assert_eq!(got.trim(), "alpha beta");
    wait_for_bytecode(&first.venv);
    // The server recorded the stored packages in the lock it was mounted from.
    let locked = dpl_time();
    let loaded_from_pyc = "import tool, os, sys\n\
         print(os.path.exists(tool.__cached__), sys.modules['tool'].__spec__.cached is not None)";
    assert_eq!(
        venv_python(&first.venv, loaded_from_pyc).trim(),
        "True True"
    );
    let verbose = Command::new(first.venv.join("bin/python"))
        .args(["-v", "-c", "import tool"])
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&verbose.stderr).contains("tool/__pycache__/__init__."),
        "tool was not loaded from its .pyc"
    );
    let store = cx.cache_dir().join("store");
    assert_eq!(count_entries(&store.join("unpacked")), 0);

    let (again, said) = mount_here("again");
    assert_eq!(dpl_time(), locked, "the fresh lock was rewritten");
    assert!(!said.contains("after mounting"), "{said}");
    assert!(site_packages(&again.venv).join("tool/__pycache__").is_dir());

    // Another project locking the same requirements afresh: the store knows which objects
    // those wheels became, so nothing is laid out, stored or compiled again.
    let other = cx.temp.path().join("other-project");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        cx.project().join("requirements.txt"),
        other.join("requirements.txt"),
    )
    .unwrap();
    let (third, out) = mount_r(&cx, &other, "venv", &w, &[]);
    assert_success(&out, "dx-py mount -r in another project");
    let said = printed(&out);
    assert!(!said.contains("after mounting"), "{said}");
    assert!(site_packages(&third.venv).join("tool/__pycache__").is_dir());
    assert_eq!(
        venv_python(&third.venv, "import tool, ns.beta; print(ns.beta.NAME)").trim(),
        "beta"
    );
}

/// `--wait-bytecode` returns only once the bytecode compiled after mounting is served.
#[test]
fn mount_wait_bytecode_returns_with_the_bytecode_served() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    write_requirements(&cx);
    let (mounted, out) = mount_r(&cx, &cx.project(), "venv", &w, &["--wait-bytecode"]);
    assert_success(&out, "dx-py mount --wait-bytecode");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Bytecode served after"), "{said}");
    // No waiting here: it is there when the command returns.
    assert!(
        site_packages(&mounted.venv)
            .join("tool/__pycache__")
            .is_dir()
    );
}

/// Unmounting while the server may still be compiling leaves nothing half-done behind: the
/// next mount of the same set serves, compiles what is missing and serves the bytecode.
#[test]
fn a_mount_unmounted_while_compiling_is_completed_by_the_next() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    write_requirements(&cx);
    let fl = w.to_str().unwrap();
    let args = |venv| ["mount", venv, "-r", "requirements.txt", "--find-links", fl];
    cx.run_ok(&args("first"));
    cx.run_ok(&["unmount", "first"]);
    assert_eq!(count_entries(&cx.project().join("first")), 0);
    cx.run_ok(&args("second"));
    let second = Mounted {
        cx: &cx,
        venv: cx.project().join("second"),
    };
    wait_for_bytecode(&second.venv);
    let got = venv_python(
        &second.venv,
        "import tool, os\nprint(os.path.exists(tool.__cached__))",
    );
    assert_eq!(got.trim(), "True");
    // The second server has removed its files by the time it exits.
    let pid = server_pid(&cx, &second.venv);
    cx.run_ok(&["unmount", "second"]);
    wait_for_exit(pid);
    let trees = cx.cache_dir().join("mounts/trees");
    let left: Vec<_> = std::fs::read_dir(&trees)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".first."))
        .collect();
    // The first mount's own files may stay if it was unmounted mid-compile; the second's are
    // removed once used.
    assert!(left.len() <= 2, "{left:?}");
}

/// Python keeps importing while the bytecode arrives: every run sees every module and every
/// listing whole, before, during and after the hand-over, and the last ones load `.pyc` files.
#[test]
fn imports_running_while_the_bytecode_arrives_never_fail() {
    if !can_mount() {
        return;
    }
    const MODULES: usize = 300;
    let cx = TestContext::new();
    let dir = cx.temp.path().join("wheels");
    let mut big = WheelBuilder::new("big", "1.0").file(
        "big/__init__.py",
        format!(
            "import importlib, os\n\
             N = {MODULES}\n\
             def total():\n    \
                 return sum(importlib.import_module(f'big.m{{i}}').VALUE for i in range(N))\n\
             def listed():\n    \
                 return sorted(n for n in os.listdir(os.path.dirname(__file__)) if n.endswith('.py'))\n"
        )
        .as_bytes(),
    );
    let bodies: Vec<String> = (0..MODULES)
        .map(|i| {
            let helpers: String = (0..40)
                .map(|j| {
                    format!("def f{j}(x):\n    return [x * {j} + k for k in range({i} % 7 + 3)]\n")
                })
                .collect();
            format!("{helpers}VALUE = {i}\n")
        })
        .collect();
    for (i, body) in bodies.iter().enumerate() {
        big = big.file(&format!("big/m{i}.py"), body.as_bytes());
    }
    let w = write_wheels(&dir, &[big]);
    std::fs::write(cx.project().join("requirements.txt"), "big==1.0\n").unwrap();
    let (mounted, out) = mount_r(&cx, &cx.project(), "venv", &w, &[]);
    assert_success(&out, "dx-py mount -r");
    let want_total = MODULES * (MODULES - 1) / 2;
    let check = format!(
        "import big\n\
         assert big.total() == {want_total}, big.total()\n\
         assert len(big.listed()) == {MODULES} + 1, big.listed()"
    );
    let pycache = site_packages(&mounted.venv).join("big/__pycache__");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let (mut before, mut after) = (0, 0);
    // Imports until a few runs after the bytecode is served (and at least one before, when
    // the compile is still running: the first runs start right after `mount` returned).
    while after < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no bytecode after 120 s"
        );
        let ready = pycache.is_dir();
        let out = Command::new(mounted.venv.join("bin/python"))
            .args(["-c", &check])
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .env_remove("PYTHONPATH")
            .output()
            .unwrap();
        assert_success(&out, "import while the bytecode arrives");
        if ready {
            after += 1;
        } else {
            before += 1;
        }
    }
    let verbose = Command::new(mounted.venv.join("bin/python"))
        .args(["-v", "-c", "import big; big.total()"])
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    assert_success(&verbose, "python -v");
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    let from_pyc = stderr
        .lines()
        .filter(|l| l.starts_with("# code object from") && l.contains("big/__pycache__/"))
        .count();
    assert_eq!(from_pyc, MODULES + 1, "modules of big loaded from .pyc");
    eprintln!("{before} runs before the bytecode, {after} after");
}

/// The pid of the mount server of `venv`, from its `{key}.pid` record (pid, then mount point).
fn server_pid(cx: &TestContext, venv: &Path) -> u32 {
    let venv = std::path::absolute(venv).unwrap();
    let records = std::fs::read_dir(cx.cache_dir().join("mounts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap());
    let record = records
        .filter(|r| r.lines().nth(1) == venv.to_str())
        .last()
        .expect("a server pid record for the venv");
    record.lines().next().unwrap().parse().unwrap()
}

/// Unmounts `venv` with the binary and waits until its server has exited (and written its
/// last log lines).
fn unmount_and_wait(cx: &TestContext, venv: &Path) {
    let pid = server_pid(cx, venv);
    cx.run_ok(&["unmount", venv.to_str().unwrap()]);
    wait_for_exit(pid);
}

/// Waits (up to 10 s) until process `pid` has exited (gone, or a zombie).
fn wait_for_exit(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let gone = status.is_empty() || status.lines().any(|l| l.starts_with("State:\tZ"));
        if gone {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server {pid} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The text of every mount server log in `cx`'s cache.
fn server_logs(cx: &TestContext) -> Vec<String> {
    std::fs::read_dir(cx.cache_dir().join("mounts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

/// The latest state of every mount server in `cx`'s cache (`{cache}/mounts/*.status`).
fn server_statuses(cx: &TestContext) -> Vec<ServerStatus> {
    std::fs::read_dir(cx.cache_dir().join("mounts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "status"))
        .filter_map(|e| ServerStatus::load(&e.path()))
        .collect()
}

/// The site-packages directory of a mounted venv.
fn site_packages(venv: &Path) -> PathBuf {
    let lib = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    lib.join("site-packages")
}

/// Waits until the bytecode a mount compiles after mounting is served (an absent
/// `__pycache__` is not cached meanwhile, so each look asks the server).
fn wait_for_bytecode(venv: &Path) {
    let pycache = site_packages(venv).join("tool/__pycache__");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !pycache.is_dir() {
        assert!(
            std::time::Instant::now() < deadline,
            "no bytecode in {} after 120 s",
            venv.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `--keep-pack-cache` changes only what stays cached, not what is served.
#[test]
fn keep_pack_cache_serves_the_same_bytes() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = wheels(&cx);
    lock(&cx, &w);
    let fl = w.to_str().unwrap();
    cx.run_ok(&["mount", "released", "--find-links", fl]);
    let _released = Mounted {
        cx: &cx,
        venv: cx.project().join("released"),
    };
    // The first mount compiles the bytecode after mounting; the second then serves the same
    // packs (two compiles at once could each store their own, and marshal output may differ).
    wait_for_bytecode(&cx.project().join("released"));
    cx.run_ok(&["mount", "kept", "--keep-pack-cache", "--find-links", fl]);
    let _kept = Mounted {
        cx: &cx,
        venv: cx.project().join("kept"),
    };
    let released = snapshot(&cx.project().join("released/lib"));
    let kept = snapshot(&cx.project().join("kept/lib"));
    assert!(released.keys().any(|k| k.ends_with("tool/data.bin")));
    assert_eq!(released, kept);
    let got = venv_python(
        &cx.project().join("kept"),
        "import tool, ns.alpha; print('ok')",
    );
    assert_eq!(got.trim(), "ok");
}

/// A wheel whose file differs from its RECORD is found only as the server stores it after
/// mounting: its files fail with `EIO` (never wrong bytes) while the other packages work, the
/// server logs why, and `--wait-bytecode` fails naming it and leaves no mount behind.
#[test]
fn a_package_failing_its_record_after_mounting_is_never_served() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let dir = cx.temp.path().join("wheels");
    write_wheels(
        &dir,
        &[WheelBuilder::new("good", "1.0").file("good.py", b"OK = 1\n")],
    );
    let bad = WheelBuilder::new("bad", "1.0").file("bad/__init__.py", b"X = 1\n");
    let mut entries = bad.entries();
    let init = entries
        .iter_mut()
        .find(|e| e.path == "bad/__init__.py")
        .unwrap();
    init.data = b"X = 2\n".to_vec();
    std::fs::write(
        dir.join(bad.filename()),
        dx_py_core::wheel::testing::zip_entries(&entries),
    )
    .unwrap();
    std::fs::write(
        cx.project().join("requirements.txt"),
        "good==1.0\nbad==1.0\n",
    )
    .unwrap();

    let (_waited, out) = mount_r(&cx, &cx.project(), "waited", &dir, &["--wait-bytecode"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("could not store every package"), "{said}");
    assert!(said.contains("bad-1.0"), "{said}");
    assert_eq!(
        count_entries(&cx.project().join("waited")),
        0,
        "left mounted"
    );

    let (mounted, out) = mount_r(&cx, &cx.project(), "venv", &dir, &[]);
    assert_success(&out, "dx-py mount -r");
    assert_eq!(
        venv_python(&mounted.venv, "import good; print(good.OK)").trim(),
        "1"
    );
    let err = std::fs::read(site_packages(&mounted.venv).join("bad/__init__.py")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO expected: {err}");
    let statuses = server_statuses(&cx);
    assert!(
        statuses.iter().any(
            |s| matches!(s, ServerStatus::PackagesFailed { reason } if reason.contains("bad-1.0"))
        ),
        "{statuses:?}"
    );
}

/// Why this machine cannot mount (the mount tests need root and `/dev/fuse`), or `None`.
fn fuse_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .unwrap_or("?");
    if uid != "0" {
        return Some(format!("not root (uid {uid})"));
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".to_string());
    }
    None
}

/// Waits (up to 10 minutes) until the mount server says how its bytecode ended: `Ok` when it is
/// served, its final state and the logs otherwise.
fn server_bytecode_outcome(cx: &TestContext) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let statuses = server_statuses(cx);
        if statuses
            .iter()
            .any(|s| matches!(s, ServerStatus::BytecodeReady { .. }))
        {
            return Ok(());
        }
        if let Some(last) = statuses.iter().find(|s| s.is_final()) {
            return Err(format!("{last}\n{}", server_logs(cx).join("\n---\n")));
        }
        if std::time::Instant::now() > deadline {
            let logs = server_logs(cx).join("\n---\n");
            return Err(format!("no word on the bytecode after 10 minutes:\n{logs}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// numpy's wheel ships `numpy/distutils/__pycache__/conv_template.cpython-311.pyc` in its
/// RECORD. One rule for install, layouts and mounts keeps that file as shipped (sha256 as in
/// RECORD) and compiles every other source. A cold `mount -r` therefore gets all of numpy's
/// bytecode after mounting (the complete tree only adds files to the mounted one), and an
/// install of the same lock from the same cache holds exactly the files the mount serves.
#[test]
fn numpy_keeps_its_shipped_pyc_in_installs_and_cold_mounts() {
    let Some(wheels) = dx_py_tests::fetch_wheels("numpy", &["numpy==2.2.6"]) else {
        eprintln!("skipping: wheels could not be downloaded");
        return;
    };
    let wheel = dx_py_tests::wheel_file(&wheels, "numpy-");
    let record = dx_py_tests::wheel_record(&wheel);
    let shipped_pyc = "numpy/distutils/__pycache__/conv_template.cpython-311.pyc";
    assert!(record.contains_key(shipped_pyc), "the wheel ships no pyc");
    let tag = dx_py_tests::cache_tag();
    if tag != "cpython-311" {
        eprintln!("note: the test python is {tag}: the shipped pyc is another interpreter's");
    }
    let cx = TestContext::new();
    // `mount -r` reads the requirements `install_dir` writes (all of the wheels, pinned).
    std::fs::write(
        cx.project().join("requirements.txt"),
        dx_py_tests::pins_for(&wheels),
    )
    .unwrap();
    let numpy_files = |venv: &Path| dx_py_tests::package_files(&site_packages(venv), "numpy");

    // Cold: nothing in the cache, so the server stores numpy and compiles it after mounting.
    let mounted = match fuse_unavailable() {
        Some(why) => {
            eprintln!("skipping the mount half: {why}");
            None
        }
        None => {
            let (mounted, out) = mount_r(&cx, &cx.project(), "mnt", &wheels, &["--no-index"]);
            assert_success(&out, "dx-py mount -r numpy");
            let said = printed(&out);
            assert!(said.contains("compiled after mounting"), "{said}");
            if let Err(logs) = server_bytecode_outcome(&cx) {
                panic!("the mount got no bytecode:\n{logs}");
            }
            Some(mounted)
        }
    };

    // The same lock installed from the same cache (from its bytecode packs when the mount
    // made them, else compiled now).
    dx_py_tests::install_dir(&cx, &wheels, ".venv");
    let installed =
        dx_py_tests::package_files(&layout_site_packages(&cx.project().join(".venv")), "numpy");
    let (compiled, shipped) =
        dx_py_tests::check_bytecode(&installed, "numpy/", &record, &tag, "installed venv");
    let sources = installed.keys().filter(|p| p.ends_with(".py")).count();
    assert_eq!(compiled + shipped, sources);
    if tag == "cpython-311" {
        assert_eq!(shipped, 1, "the wheel's own conv_template pyc");
    }
    eprintln!(
        "installed venv: {sources} numpy sources, {compiled} compiled pycs, {shipped} shipped"
    );

    if let Some(mounted) = &mounted {
        let served = numpy_files(&mounted.venv);
        let counted = dx_py_tests::check_bytecode(&served, "numpy/", &record, &tag, "mount");
        eprintln!(
            "mount: {} compiled pycs served, {} shipped",
            counted.0, counted.1
        );
        assert_eq!(counted, (compiled, shipped));
        assert_eq!(
            served.keys().collect::<Vec<_>>(),
            installed.keys().collect::<Vec<_>>(),
            "the mount and the venv list different files under numpy/"
        );
        let differ: Vec<&String> = served
            .iter()
            .filter(|(path, bytes)| installed[*path] != **bytes)
            .map(|(path, _)| path)
            .collect();
        assert!(
            differ.is_empty(),
            "the mount and the venv differ: {differ:?}"
        );
    }
}

/// The log of the server that served `venv` (each mount of it starts it afresh).
fn server_log_of(cx: &TestContext, venv: &Path) -> String {
    let serving = format!("serving {}", std::path::absolute(venv).unwrap().display());
    server_logs(cx)
        .into_iter()
        .find(|l| l.contains(&serving))
        .expect("the server's log")
}

/// The `passthrough` count of the `requests:` line a mount server logs as it exits
/// (`DX_PY_LOG=info`), from the log of the server that served `venv`.
fn passthrough_opens(cx: &TestContext, venv: &Path) -> u64 {
    let log = server_log_of(cx, venv);
    let line = log
        .lines()
        .rfind(|l| l.contains("requests:"))
        .unwrap_or_else(|| panic!("no request counts in {log}"));
    let count = line.split("(passthrough ").nth(1).unwrap();
    count[..count.find(')').unwrap()].parse().unwrap()
}

/// The test wheels, locked and installed into `linked` (which leaves every package's unpacked
/// copy, the backing of passthrough).
fn locked_and_installed(cx: &TestContext) -> PathBuf {
    let w = wheels(cx);
    lock(cx, &w);
    cx.run_ok(&[
        "install",
        "--venv",
        "linked",
        "--find-links",
        w.to_str().unwrap(),
    ]);
    w
}

/// Files whose package has an unpacked copy (`install` leaves them) are opened with FUSE
/// passthrough to it: their bytes are RECORD's and Python imports them. A copy changed since it
/// was unpacked (here through the layout's hardlink) is never served: that copy was the thin
/// object's only bytes, so the file's reads fail. `DX_PY_MOUNT_PASSTHROUGH=0` serves everything through the server,
/// with the same bytes. Where the kernel cannot pass through, both mounts are the fallback.
#[test]
fn passthrough_serves_record_bytes_and_never_a_changed_copy() {
    if !can_mount() {
        return;
    }
    use sha2::Digest;
    let cx = TestContext::new();
    let w = locked_and_installed(&cx);
    let fl = w.to_str().unwrap();
    let records: Vec<_> = std::fs::read_dir(&w)
        .unwrap()
        .flatten()
        .map(|e| dx_py_tests::wheel_record(&e.path()))
        .collect();
    for (venv, passthrough) in [("passed", "1"), ("served", "0")] {
        let out = cx
            .dx_py()
            .args(["mount", venv, "--find-links", fl])
            .env("DX_PY_LOG", "info")
            .env("DX_PY_MOUNT_PASSTHROUGH", passthrough)
            .output()
            .unwrap();
        let guard = Mounted {
            cx: &cx,
            venv: cx.project().join(venv),
        };
        assert_success(&out, "mount");
        let sp = site_packages(&guard.venv);
        for record in &records {
            for (path, digest) in record {
                let bytes = std::fs::read(sp.join(path)).unwrap();
                assert_eq!(
                    sha2::Sha256::digest(&bytes).as_slice(),
                    digest.as_slice(),
                    "{venv}: `{path}` differs from RECORD"
                );
            }
        }
        let got = venv_python(
            &guard.venv,
            "import ns.alpha, ns.beta, tool; print(ns.alpha.NAME, ns.beta.NAME, len(open(tool.__file__.replace('__init__.py', 'data.bin'), 'rb').read()))",
        );
        assert_eq!(got.trim(), "alpha beta 300000", "{venv}");
        unmount_and_wait(&cx, &guard.venv);
        let passed = passthrough_opens(&cx, &guard.venv);
        if passthrough == "1" && dx_py_core::testing::fuse_passthrough() {
            assert!(passed > 0, "{venv}: no file was passed through");
        } else {
            assert_eq!(passed, 0, "{venv}");
        }
    }
    // An edit through the layout's hardlink (same size, new mtime) changes the unpacked copy,
    // which is the thin object's only copy of those bytes (docs/design/store-one-copy.md): the
    // object is damaged, and the mount refuses the file rather than serve it changed.
    let edited = layout_site_packages(&cx.project().join("linked")).join("ns/alpha/__init__.py");
    assert!(
        std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(&edited).unwrap()) >= 2,
        "the layout hardlinks the unpacked copy"
    );
    std::fs::set_permissions(&edited, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&edited, b"NAME = 'ALPHA'\n").unwrap();
    let out = cx
        .dx_py()
        .args(["mount", "damaged", "--find-links", fl])
        .output()
        .unwrap();
    let guard = Mounted {
        cx: &cx,
        venv: cx.project().join("damaged"),
    };
    if out.status.success() {
        let read = std::fs::read(site_packages(&guard.venv).join("ns/alpha/__init__.py"));
        assert!(read.is_err(), "the edited file was served: {read:?}");
    } else {
        // Refused before mounting: for the damaged object, not for anything else.
        assert_printed(&out, "is damaged");
    }
}

/// A mount records what the import after it asks (`{cache}/mounts/trees/<tree>.trace`) and
/// the next mount of the same tree replays it beside the import; a trace that is damaged, or a
/// cache where none can be written, changes nothing but that; `cache prune` removes the trace
/// with its tree.
#[test]
fn the_next_mount_is_prewarmed_from_the_last_ones_trace() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = locked_and_installed(&cx);
    let fl = w.to_str().unwrap();
    let traces = || -> Vec<PathBuf> {
        std::fs::read_dir(cx.cache_dir().join("mounts/trees"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "trace"))
            .collect()
    };
    // `replayed`: wait for the replay's log line before unmounting (it runs beside the import,
    // waited for by nothing, and an unmount ends it wherever it is).
    let mount_and_import = |what: &str, replayed: bool| {
        let out = cx
            .dx_py()
            .args(["mount", "served", "--find-links", fl])
            .env("DX_PY_LOG", "info")
            .output()
            .unwrap();
        let guard = Mounted {
            cx: &cx,
            venv: cx.project().join("served"),
        };
        assert_success(&out, what);
        let got = venv_python(
            &guard.venv,
            "import ns.alpha, ns.beta, tool; print(ns.alpha.NAME, ns.beta.NAME)",
        );
        assert_eq!(got.trim(), "alpha beta", "{what}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while replayed
            && !server_logs(&cx).iter().any(|l| l.contains("prewarmed:"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        unmount_and_wait(&cx, &guard.venv);
        server_log_of(&cx, &guard.venv)
    };
    let log = mount_and_import("the first mount", false);
    assert!(!log.contains("prewarmed:"), "nothing to replay yet: {log}");
    let [trace] = &traces()[..] else {
        panic!("one trace: {:?}", traces())
    };
    let trace = trace.clone();
    let log = mount_and_import("the second mount", true);
    let line = log
        .lines()
        .rfind(|l| l.contains("prewarmed:"))
        .unwrap_or_else(|| panic!("no replay: {log}"));
    assert!(!line.contains(" 0 names looked up"), "{line}");
    // Each mount's log starts afresh. A broken trace is a debug line (no warning; fuser's own
    // warning at exit, when the unmount came first, shows at this log level).
    let quiet = |log: &str| {
        !log.lines()
            .any(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains("trace"))
    };
    for (what, bytes) in [
        (
            "a truncated trace",
            std::fs::read(&trace).unwrap()[..60].to_vec(),
        ),
        ("a garbage trace", b"not a trace".repeat(20)),
    ] {
        std::fs::write(&trace, bytes).unwrap();
        let log = mount_and_import(what, false);
        assert!(!log.contains("prewarmed:") && quiet(&log), "{what}: {log}");
    }
    // No place to write a trace: mounts all the same.
    std::fs::remove_file(&trace).unwrap();
    std::fs::create_dir(&trace).unwrap();
    let log = mount_and_import("no place to write", false);
    assert!(trace.is_dir());
    assert!(quiet(&log), "{log}");
    // The trace lives beside its tree: `cache prune` removes both once no mount uses the tree.
    std::fs::remove_dir(&trace).unwrap();
    mount_and_import("a last mount", false);
    assert!(trace.is_file());
    let tree = trace.with_extension("dxtree");
    assert!(tree.is_file(), "{}", tree.display());
    let out = cx.run_ok(&["cache", "prune"]);
    assert!(!tree.exists() && !trace.exists(), "{out}");
}

/// A server killed (`kill -9`) while the next mount's trace is being replayed ends like any
/// killed server: its process goes, the watcher unmounts the dead mount. (Replayed by the
/// server itself, a replay thread waiting for an answer the killed server had already read
/// would keep the process from exiting, and the mount would hang every access.)
#[test]
fn a_server_killed_during_its_prewarm_goes_and_its_mount_is_unmounted() {
    if !can_mount() {
        return;
    }
    let cx = TestContext::new();
    let w = locked_and_installed(&cx);
    let fl = w.to_str().unwrap();
    let venv = cx.project().join("served");
    let mount = || {
        let out = cx
            .dx_py()
            .args(["mount", "served", "--find-links", fl])
            .env("DX_PY_LOG", "info")
            .output()
            .unwrap();
        assert_success(&out, "mount");
    };
    mount();
    {
        let guard = Mounted {
            cx: &cx,
            venv: venv.clone(),
        };
        venv_python(&guard.venv, "import ns.alpha, ns.beta, tool");
        unmount_and_wait(&cx, &guard.venv);
    }
    for round in 0..3 {
        mount();
        let guard = Mounted {
            cx: &cx,
            venv: venv.clone(),
        };
        let pid = server_pid(&cx, &guard.venv);
        // The server is our child's child: this test started it, so it may end it. Right
        // after `mount` returned, the replay is running (or about to).
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        let gone = || !std::path::Path::new(&format!("/proc/{pid}")).exists();
        let mounted = || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .contains(guard.venv.to_str().unwrap())
        };
        while !gone() || mounted() {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: server gone {}, still mounted {}",
                gone(),
                mounted()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
