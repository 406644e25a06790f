//! `dx-py install` end to end: real wheels from the registry (fetched once with pip), a real
//! interpreter, and checks made by importing and by `importlib.metadata`.
use std::path::Path;

use dx_py_core::testing::TestIndex;
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, fetch_wheels, install_dir, layout_site_packages, pins_for, venv_python,
    write_wheels,
};

#[test]
fn requests_closure_installs_and_a_second_venv_is_a_layout_hit() {
    let Some(dir) = fetch_wheels("requests", &["requests==2.32.3"]) else {
        dx_py_tests::skip("its wheels could not be downloaded (`python3 -m pip download`)");
        return;
    };
    let cx = TestContext::new();
    let first = install_dir(&cx, &dir, ".venv");
    assert!(first.contains("layout built"), "{first}");
    let venv = cx.project().join(".venv");
    let out = venv_python(
        &venv,
        "import requests, importlib.metadata as m, sys\n\
         assert sys.prefix != sys.base_prefix\n\
         print(requests.__version__)\n\
         print(sorted((d.metadata['Name'].lower(), d.version) for d in m.distributions()))\n\
         print(m.distribution('requests').read_text('INSTALLER'))",
    );
    assert!(out.starts_with("2.32.3\n"), "{out}");
    for name in [
        "certifi",
        "charset-normalizer",
        "idna",
        "requests",
        "urllib3",
    ] {
        assert!(
            out.contains(&format!("('{name}', ")),
            "{name} missing from {out}"
        );
    }
    assert!(out.contains("dx-py"), "{out}");
    // The lock files were written to the project directory.
    assert!(cx.project().join("pylock.toml").is_file());
    assert!(cx.project().join("dx-py.dpl").is_file());

    // Same lock, new venv: a layout hit, and both venvs' `.pth` files add the same layout.
    let second = install_dir(&cx, &dir, "second");
    assert!(second.contains("layout hit"), "{second}");
    let sp = |v: &str| layout_site_packages(&cx.project().join(v));
    assert_eq!(sp(".venv"), sp("second"));
    venv_python(
        &cx.project().join("second"),
        "import requests, urllib3, idna, certifi, charset_normalizer",
    );

    // Bytecode was compiled once into the store and is served to the venv.
    let pycache = sp("second").join("requests/__pycache__");
    assert!(
        std::fs::read_dir(&pycache).unwrap().count() > 5,
        "{}",
        pycache.display()
    );
}

#[test]
fn console_scripts_run_from_the_venv() {
    let Some(dir) = fetch_wheels("pyflakes", &["pyflakes==3.2.0"]) else {
        dx_py_tests::skip("its wheels could not be downloaded (`python3 -m pip download`)");
        return;
    };
    let cx = TestContext::new();
    install_dir(&cx, &dir, ".venv");
    let out = std::process::Command::new(cx.project().join(".venv/bin/pyflakes"))
        .arg("--version")
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "pyflakes --version");
    assert!(String::from_utf8_lossy(&out.stdout).contains("3.2.0"));
    // Called through PATH from elsewhere, as an activated venv does.
    let out = std::process::Command::new("sh")
        .args(["-c", "cd / && pyflakes --version"])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", cx.project().join(".venv/bin").display()),
        )
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "pyflakes via PATH");
}

#[test]
fn numpy_with_compiled_extensions_and_vendored_libs() {
    let Some(dir) = fetch_wheels("numpy", &["numpy==2.2.6"]) else {
        dx_py_tests::skip("its wheels could not be downloaded (`python3 -m pip download`)");
        return;
    };
    let cx = TestContext::new();
    install_dir(&cx, &dir, ".venv");
    let out = venv_python(
        &cx.project().join(".venv"),
        "import numpy, os\n\
         a = numpy.arange(12.0).reshape(3, 4)\n\
         print(numpy.__version__, float((a @ a.T).trace()), numpy.linalg.det(numpy.eye(3)))\n\
         libs = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))), 'numpy.libs')\n\
         print(os.path.isdir(libs))",
    );
    assert!(out.starts_with("2.2.6 "), "{out}");
    assert!(
        out.trim_end().ends_with("True"),
        "realpath must stay inside a complete tree: {out}"
    );
    // The wheel ships `numpy/distutils/__pycache__/conv_template.cpython-311.pyc` (in RECORD):
    // kept as shipped, every other source compiled (tests/tests/mount.rs checks the mount).
    let venv = cx.project().join(".venv");
    let sp = layout_site_packages(&venv);
    let files = dx_py_tests::package_files(&sp, "numpy");
    let wheel = dx_py_tests::wheel_file(&dir, "numpy-");
    let record = dx_py_tests::wheel_record(&wheel);
    let tag = dx_py_tests::cache_tag();
    let (compiled, shipped) = dx_py_tests::check_bytecode(&files, "numpy/", &record, &tag, "venv");
    assert!(compiled > 400, "{compiled} compiled");
    assert_eq!(shipped, usize::from(tag == "cpython-311"));
}

#[test]
fn two_distributions_share_a_namespace_package() {
    let cx = TestContext::new();
    let dir = write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("ns-alpha", "1.0").file("ns/alpha/__init__.py", b"NAME = 'alpha'\n"),
            WheelBuilder::new("ns-beta", "2.0").file("ns/beta/__init__.py", b"NAME = 'beta'\n"),
        ],
    );
    install_dir(&cx, &dir, ".venv");
    let out = venv_python(
        &cx.project().join(".venv"),
        "import ns.alpha, ns.beta, importlib.metadata as m\n\
         print(ns.alpha.NAME, ns.beta.NAME, m.version('ns-alpha'), m.version('ns-beta'))",
    );
    assert_eq!(out.trim(), "alpha beta 1.0 2.0");
}

/// A cold `install -r` compiles each package's bytecode while the lock is still converting the
/// others: every package gets a pack of unchecked-hash pycs that Python uses, counted in `-v`'s
/// report; the same lock in another venv compiles nothing.
#[test]
fn cold_install_compiles_bytecode_while_locking() {
    let cx = TestContext::new();
    let wheels: Vec<WheelBuilder> = (0..4)
        .map(|i| {
            let body = format!("VALUE = {i}\n").repeat(2000);
            WheelBuilder::new(&format!("bc-{i}"), "1.0")
                .file(&format!("bc{i}/__init__.py"), body.as_bytes())
                .file(&format!("bc{i}/data.txt"), b"not python")
        })
        .collect();
    let dir = write_wheels(&cx.temp.path().join("wheels"), &wheels);
    std::fs::write(cx.project().join("requirements.txt"), pins_for(&dir)).unwrap();
    let install = |venv: &str| {
        let out = cx
            .dx_py()
            .args(["install", "-v", "-r", "requirements.txt", "--find-links"])
            .arg(&dir)
            .args(["--venv", venv])
            .output()
            .unwrap();
        dx_py_tests::assert_success(&out, "dx-py install");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = install(".venv");
    assert!(first.contains("bytecode packs compiled: 4"), "{first}");
    let venv = cx.project().join(".venv");
    let sp = layout_site_packages(&venv);
    for i in 0..4 {
        let pycache = sp.join(format!("bc{i}/__pycache__"));
        let pycs: Vec<_> = std::fs::read_dir(&pycache).unwrap().flatten().collect();
        assert_eq!(pycs.len(), 1, "{}", pycache.display());
        // PEP 552 flags: 0b01 = hash-based, unchecked.
        let pyc = std::fs::read(pycs[0].path()).unwrap();
        assert_eq!(pyc[4..8], [1, 0, 0, 0]);
    }
    // Python loads the pycs: a module imported from one reports it as its cached file.
    let out = venv_python(
        &venv,
        "import bc3, os\nprint(bc3.VALUE, os.path.exists(bc3.__cached__))",
    );
    assert_eq!(out.trim(), "3 True");

    let second = install("second");
    assert!(second.contains("layout hit"), "{second}");
    assert!(!second.contains("bytecode packs compiled: 4"), "{second}");
}

#[test]
fn sync_removes_packages_that_left_the_lock() {
    let cx = TestContext::new();
    let wheels = cx.temp.path().join("wheels");
    write_wheels(
        &wheels,
        &[
            WheelBuilder::new("keep", "1.0").file("keep.py", b""),
            WheelBuilder::new("gone", "1.0")
                .file("gone.py", b"")
                .console_script("gone-cli", "gone:main"),
        ],
    );
    let install = |reqs: &str| {
        std::fs::write(cx.project().join("requirements.txt"), reqs).unwrap();
        cx.run_ok(&[
            "install",
            "-r",
            "requirements.txt",
            "--no-index",
            "--find-links",
            wheels.to_str().unwrap(),
        ]);
    };
    install("keep==1.0\ngone==1.0\n");
    let venv = cx.project().join(".venv");
    venv_python(&venv, "import keep, gone");
    assert!(venv.join("bin/gone-cli").exists());
    install("keep==1.0\n");
    let out = venv_python(
        &venv,
        "import importlib.util as u, importlib.metadata as m\n\
         print(u.find_spec('keep') is not None, u.find_spec('gone') is None, sorted(d.metadata['Name'] for d in m.distributions()))",
    );
    assert_eq!(out.trim(), "True True ['keep']");
    assert!(
        !venv.join("bin/gone-cli").exists(),
        "launchers of removed packages go too"
    );
}

#[test]
fn cache_clean_keeps_what_live_venvs_use_and_install_repairs_a_forced_clean() {
    let cx = TestContext::new();
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("fixme", "1.0").file("fixme.py", b"OK = 1\n"),
            WheelBuilder::new("gone", "1.0").file("gone.py", b""),
        ],
    );
    // A venv of another lock that is then deleted: its layout is no longer used.
    std::fs::write(cx.project().join("other.txt"), "gone==1.0\n").unwrap();
    let w = wheels.to_str().unwrap();
    cx.run_ok(&[
        "install",
        "-r",
        "other.txt",
        "--venv",
        "old",
        "--no-index",
        "--find-links",
        w,
    ]);
    std::fs::remove_dir_all(cx.project().join("old")).unwrap();
    install_dir(&cx, &wheels, ".venv");
    let venv = cx.project().join(".venv");
    let layouts = || {
        std::fs::read_dir(cx.cache_dir().join("layouts"))
            .map(|r| r.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    assert_eq!(layouts(), 2);

    // Without --force, what the live venv uses stays, and the output says so.
    let out = cx
        .dx_py()
        .args(["cache", "clean", "--store"])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "cache clean --store");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(venv.to_str().unwrap()), "{said}");
    assert!(said.contains("--force"), "{said}");
    assert_eq!(layouts(), 1);
    venv_python(&venv, "import fixme; assert fixme.OK == 1");
    assert!(install_dir(&cx, &wheels, ".venv").contains("layout hit"));

    // With --force it goes, the venv is named as stranded, and install restores it.
    let out = cx
        .dx_py()
        .args(["cache", "clean", "--layouts", "--force"])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "cache clean --force");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("dx-py install") && said.contains(venv.to_str().unwrap()),
        "{said}"
    );
    let broken = dx_py_tests::run_python(&venv.join("bin/python"), "import fixme");
    assert!(!broken.status.success());
    let msg = install_dir(&cx, &wheels, ".venv");
    assert!(msg.contains("rebuilding"), "{msg}");
    venv_python(&venv, "import fixme; assert fixme.OK == 1");

    // Cleaning everything, forced: the cache is empty but for its lock and the (empty) writer
    // records of running processes; the lock still names
    // the wheels, so install fetches again.
    cx.run_ok(&["cache", "clean", "--all", "--force"]);
    let left: Vec<_> = std::fs::read_dir(cx.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".lock")
        .filter(|n| {
            n != ".writers" || std::fs::read_dir(cx.cache_dir().join(n)).unwrap().count() > 0
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    install_dir(&cx, &wheels, ".venv");
    venv_python(&venv, "import fixme");
}

#[test]
fn index_errors_are_clear() {
    let cx = TestContext::new();
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[WheelBuilder::new("present", "1.0").file("present.py", b"")],
    );
    std::fs::write(wheels.join("sdistonly-1.0.tar.gz"), b"not really").unwrap();
    let index = TestIndex::serve(&wheels).unwrap();
    let url = index.index_url();
    let lock = |reqs: &str, code: i32| {
        std::fs::write(cx.project().join("requirements.txt"), reqs).unwrap();
        cx.run_err(
            &["lock", "-r", "requirements.txt", "--index-url", &url],
            code,
        )
    };
    let err = lock("present==2.0\n", 1);
    assert!(
        err.contains("present") && err.contains("1.0"),
        "absent version lists what exists: {err}"
    );
    // Building is tried (the archive is broken, and named); `--no-build` refuses plainly.
    let err = lock("sdistonly==1.0\n", 1);
    assert!(err.contains("sdistonly-1.0.tar.gz"), "{err}");
    let err = cx.run_err(
        &[
            "lock",
            "-r",
            "requirements.txt",
            "--index-url",
            &url,
            "--no-build",
        ],
        1,
    );
    assert!(
        err.contains("sdistonly") && err.to_lowercase().contains("source distribution"),
        "{err}"
    );
    let err = lock(
        &format!("present==1.0 --hash=sha256:{}\n", "0".repeat(64)),
        1,
    );
    assert!(
        err.to_lowercase().contains("hash mismatch") && err.contains("present"),
        "{err}"
    );
    let err = lock("nosuchthing==1.0\n", 1);
    assert!(err.contains("nosuchthing"), "{err}");
    // Retries, then success.
    index.fail_next(2);
    std::fs::write(cx.project().join("requirements.txt"), "present==1.0\n").unwrap();
    cx.run_ok(&["lock", "-r", "requirements.txt", "--index-url", &url]);
    // An index that is not there: retried, then a clear failure.
    let dead = "http://127.0.0.1:9/simple/";
    let err = cx.run_err(&["lock", "-r", "requirements.txt", "--index-url", dead], 1);
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

/// An install of many packages from one index (a page and a wheel each, fetched by several
/// threads) opens no more connections than the per-host cap of 6: they are reused, not one per
/// request.
#[test]
fn an_install_of_many_packages_reuses_a_few_connections() {
    let cx = TestContext::new();
    let names: Vec<String> = (0..30).map(|i| format!("many{i}")).collect();
    let builders: Vec<WheelBuilder> = names
        .iter()
        .map(|n| WheelBuilder::new(n, "1.0").file(&format!("{n}.py"), b""))
        .collect();
    let wheels = write_wheels(&cx.temp.path().join("wheels"), &builders);
    let index = TestIndex::serve(&wheels).unwrap();
    let pins: String = names.iter().map(|n| format!("{n}==1.0\n")).collect();
    std::fs::write(cx.project().join("requirements.txt"), pins).unwrap();
    cx.run_ok(&[
        "install",
        "-r",
        "requirements.txt",
        "--index-url",
        &index.index_url(),
    ]);
    venv_python(&cx.project().join(".venv"), "import many0, many29");
    assert_eq!(index.requests().len(), 60, "{:?}", index.requests());
    let connections = index.connections();
    assert!(
        (1..=6).contains(&connections),
        "{connections} connections for 60 requests"
    );
}

#[test]
fn local_errors_are_clear_and_corrupt_nothing() {
    let cx = TestContext::new();
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[WheelBuilder::new("solid", "1.0").file("solid.py", b"")],
    );
    install_dir(&cx, &wheels, ".venv");
    let err = cx.run_err(
        &[
            "install",
            "--python",
            "/nonexistent/python3",
            "--venv",
            "other",
            "--lock",
            "dx-py.dpl",
        ],
        1,
    );
    assert!(err.contains("/nonexistent/python3"), "{err}");
    // A truncated DPL: a clear error, and the venv keeps working.
    let dpl = std::fs::read(cx.project().join("dx-py.dpl")).unwrap();
    std::fs::write(cx.project().join("broken.dpl"), &dpl[..dpl.len() / 2]).unwrap();
    let err = cx.run_err(&["install", "--lock", "broken.dpl"], 1);
    assert!(err.to_lowercase().contains("dpl"), "{err}");
    venv_python(&cx.project().join(".venv"), "import solid");
    // No lock at all.
    let empty = TestContext::new();
    let err = empty.run_err(&["install"], 1);
    assert!(err.contains("dx-py lock"), "{err}");
}

/// Mounts `fs` (root only, as CI runs) and unmounts on drop.
struct TempMount(std::path::PathBuf);

impl TempMount {
    fn new(dir: &Path, args: &[&str]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(args)
            .arg(dir)
            .output()
            .unwrap();
        dx_py_tests::assert_success(&out, "mount");
        Self(dir.to_path_buf())
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

#[test]
fn read_only_and_full_cache_dirs_fail_clearly() {
    // Its file systems are tmpfs mounts.
    if !dx_py_tests::can_run(dx_py_tests::root()) {
        return;
    }
    let cx = TestContext::new();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[WheelBuilder::new("bulky", "1.0")
            .file("bulky/__init__.py", b"")
            .file("bulky/blob.bin", &big)],
    );
    std::fs::write(cx.project().join("requirements.txt"), "bulky==1.0\n").unwrap();
    let args = [
        "install",
        "-r",
        "requirements.txt",
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
    ];

    // A read-only cache directory.
    let ro = cx.temp.path().join("ro-cache");
    let _ro = TempMount::new(&ro, &["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"]);
    let out = cx
        .dx_py()
        .env("DX_PY_CACHE_DIR", &ro)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code() != Some(101),
        "{err}"
    );
    assert!(err.to_lowercase().contains("read-only"), "{err}");

    // A cache on a full filesystem: a clear error, and what was stored before stays sound.
    let small = cx.temp.path().join("small-cache");
    let _small = TempMount::new(&small, &["-t", "tmpfs", "-o", "size=2m", "tmpfs"]);
    let ok = write_wheels(
        &cx.temp.path().join("ok"),
        &[WheelBuilder::new("tiny", "1.0").file("tiny.py", b"")],
    );
    let out = cx
        .dx_py()
        .env("DX_PY_CACHE_DIR", &small)
        .args(["store", "add"])
        .arg(ok.join("tiny-1.0-py3-none-any.whl"))
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "store add tiny");
    let out = cx
        .dx_py()
        .env("DX_PY_CACHE_DIR", &small)
        .args(args)
        .args(["--venv", "full"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code() != Some(101),
        "{err}"
    );
    assert!(err.to_lowercase().contains("no space"), "{err}");
    // And says where: a bare `No space left on device` leaves the user guessing which disk.
    assert!(err.contains(small.to_str().unwrap()), "{err}");
    let out = cx
        .dx_py()
        .env("DX_PY_CACHE_DIR", &small)
        .args(["store", "verify"])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "store verify after ENOSPC");
}

/// pip run against `venv` (the test interpreter's pip, pointed at the venv with `--python`).
fn pip(venv: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(dx_py_tests::python())
        .args(["-m", "pip", "--disable-pip-version-check", "--python"])
        .arg(venv.join("bin/python"))
        .args(args)
        .env("PIP_NO_INPUT", "1")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .expect("run pip")
}

#[test]
fn pip_in_one_venv_changes_no_other_venv_nor_the_layout() {
    let (Some(dir), Some(six)) = (
        fetch_wheels("requests", &["requests==2.32.3"]),
        fetch_wheels("six", &["six==1.16.0"]),
    ) else {
        eprintln!("skipping: wheels could not be downloaded");
        return;
    };
    let cx = TestContext::new();
    install_dir(&cx, &dir, "a");
    assert!(install_dir(&cx, &dir, "b").contains("layout hit"));
    let (a, b) = (cx.project().join("a"), cx.project().join("b"));
    let layout = layout_site_packages(&a);
    let before = dx_py_tests::snapshot(&layout);

    // Installing into one venv lands in that venv only.
    let mut args = vec!["install", "--no-index", "--find-links"];
    let six_dir = six.to_string_lossy().into_owned();
    args.extend([six_dir.as_str(), "six==1.16.0"]);
    dx_py_tests::assert_success(&pip(&a, &args), "pip install six");
    venv_python(&a, "import six");
    let out = dx_py_tests::run_python(&b.join("bin/python"), "import six");
    assert!(!out.status.success(), "six leaked into another venv");
    assert!(dx_py_tests::venv_site_packages(&a).join("six.py").is_file());

    // Uninstalling a locked package from one venv is refused by pip: it lies outside the venv.
    let out = pip(&a, &["uninstall", "--yes", "idna"]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("outside environment"), "{said}");
    venv_python(&a, "import idna");
    venv_python(&b, "import idna, requests");

    // What pip installs into a venv shadows the layout's copy, in that venv only.
    std::fs::write(
        dx_py_tests::venv_site_packages(&a).join("certifi.py"),
        "def where(): return 'shadowed'\n",
    )
    .unwrap();
    assert_eq!(
        venv_python(&a, "import certifi; print(certifi.where())").trim(),
        "shadowed"
    );
    assert_ne!(
        venv_python(&b, "import certifi; print(certifi.where())").trim(),
        "shadowed"
    );

    // The shared layout is byte for byte what it was, and the next install is still a hit.
    assert_eq!(dx_py_tests::snapshot(&layout), before);
    assert!(install_dir(&cx, &dir, "c").contains("layout hit"));
    venv_python(&cx.project().join("c"), "import idna, requests, certifi");
}

#[test]
fn an_edited_lock_hash_is_refused_even_when_the_layout_is_cached() {
    let cx = TestContext::new();
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("solid", "1.0").file("solid/__init__.py", b"OK = 1\n"),
            WheelBuilder::new("other", "2.0").file("other.py", b""),
        ],
    );
    std::fs::write(
        cx.project().join("requirements.txt"),
        "solid==1.0\nother==2.0\n",
    )
    .unwrap();
    let w = wheels.to_str().unwrap();
    cx.run_ok(&[
        "install",
        "-r",
        "requirements.txt",
        "--no-index",
        "--find-links",
        w,
    ]);
    // Same lock into a second venv: a layout hit.
    let out = cx
        .dx_py()
        .args([
            "install",
            "--lock",
            "pylock.toml",
            "--venv",
            "b",
            "--no-index",
            "--find-links",
            w,
        ])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, "install --lock");
    assert!(String::from_utf8_lossy(&out.stderr).contains("layout hit"));

    // Someone edits the wheel's sha256 in the lock (its store hash left as it was).
    let pylock = cx.project().join("pylock.toml");
    let text = std::fs::read_to_string(&pylock).unwrap();
    let real = dx_py_core::hash::sha256_hex(
        &std::fs::read(wheels.join("solid-1.0-py3-none-any.whl")).unwrap(),
    );
    assert!(text.contains(&real), "{text}");
    let forged = "0".repeat(64);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&pylock, text.replace(&real, &forged)).unwrap();
    let err = cx.run_err(
        &[
            "install",
            "--lock",
            "pylock.toml",
            "--venv",
            "c",
            "--no-index",
            "--find-links",
            w,
        ],
        1,
    );
    assert!(err.contains("solid"), "{err}");
    assert!(
        err.contains(&forged) || err.to_lowercase().contains("sha256"),
        "{err}"
    );
    // The venvs made before are untouched.
    venv_python(&cx.project().join("b"), "import solid, other");
}

#[test]
fn cache_verify_finds_an_edited_layout_file_and_repair_restores_it_everywhere() {
    let cx = TestContext::new();
    let body = b"VALUE = 'original'\n".repeat(50);
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("edited", "1.0").file("edited/__init__.py", &body),
            WheelBuilder::new("other", "1.0").file("other.py", b"X = 1\n"),
        ],
    );
    let w = wheels.to_str().unwrap();
    std::fs::write(
        cx.project().join("requirements.txt"),
        "edited==1.0\nother==1.0\n",
    )
    .unwrap();
    let install_both = || {
        for venv in ["a", "b"] {
            dx_py_tests::assert_success(&dx_py_tests::install_from(&cx, &wheels, venv), "install");
        }
    };
    install_both();
    cx.run_ok(&["cache", "verify"]);

    // A user (root ignores the read-only mode) edits the file Python reports under the layout.
    let a = cx.project().join("a");
    let file = layout_site_packages(&a).join("edited/__init__.py");
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&file, perms).unwrap();
    std::fs::write(&file, b"VALUE = 'edited'\n").unwrap();
    let b = cx.project().join("b");
    // (Imports still run the compiled, unchecked-hash pyc: the source as the other venv reads it.)
    let source =
        "import edited, pathlib; print(pathlib.Path(edited.__file__).read_text().splitlines()[0])";
    assert_eq!(venv_python(&b, source).trim(), "VALUE = 'edited'");

    // `cache verify` finds it and says how to mend it; nothing is changed by looking. The
    // object is thin (docs/design/store-one-copy.md): the edited file is its data, so the
    // object is damaged.
    let err = cx.run_err(&["cache", "verify"], 1);
    assert!(err.contains("edited/__init__.py"), "{err}");
    assert!(err.contains("damaged"), "{err}");
    assert!(err.contains("--repair"), "{err}");
    // `--repair` removes the object and the layouts made from it; the next install of each
    // venv converts the wheel again: every venv of the lock sees the original again.
    let out = cx
        .dx_py()
        .args(["cache", "verify", "--repair"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("removed with its object"), "{said}");
    cx.run_ok(&["cache", "verify"]);
    install_both();
    for venv in [&a, &b] {
        assert_eq!(venv_python(venv, source).trim(), "VALUE = 'original'");
    }
    cx.run_ok(&["cache", "verify"]);

    // A damaged store object: reported, removed by --repair, fetched again by the next install.
    let objects = cx.cache_dir().join("store");
    let object = walk_files(&objects)
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "dxthin"))
        .unwrap();
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::write(&object, &bytes).unwrap();
    let err = cx.run_err(&["cache", "verify"], 1);
    assert!(err.contains("damaged"), "{err}");
    cx.run_ok(&["cache", "verify", "--repair"]);
    assert!(!object.exists());
    cx.run_ok(&[
        "install",
        "-r",
        "requirements.txt",
        "--venv",
        "c",
        "--no-index",
        "--find-links",
        w,
    ]);
    venv_python(&cx.project().join("c"), "import edited, other");
    cx.run_ok(&["cache", "verify"]);
}

/// Every file below `root`.
fn walk_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_lock_for_another_interpreter_is_refused_unless_its_wheels_fit() {
    let Some(py312) = dx_py_tests::other_python() else {
        dx_py_core::testing::skip("a second CPython (3.12 or 3.10) from pyenv");
        return;
    };
    let cx = TestContext::new();
    let wheels = cx.temp.path().join("wheels");
    let here = dx_py_tests::cache_tag().replace("cpython-", "cp");
    write_wheels(
        &wheels,
        &[
            WheelBuilder::new("pure", "1.0").file("pure.py", b""),
            WheelBuilder::new("native", "1.0")
                .tag(&format!("{here}-{here}-linux_x86_64"))
                .file("native.py", b""),
        ],
    );
    let lock = |reqs: &str| {
        std::fs::write(cx.project().join("requirements.txt"), reqs).unwrap();
        cx.run_ok(&[
            "lock",
            "-r",
            "requirements.txt",
            "--no-index",
            "--find-links",
            wheels.to_str().unwrap(),
        ]);
    };
    let install_312 = || {
        cx.dx_py()
            .args([
                "install",
                "--lock",
                "pylock.toml",
                "--venv",
                "v312",
                "--python",
            ])
            .arg(&py312)
            .output()
            .unwrap()
    };
    // Only pure wheels: the lock fits the other interpreter too.
    lock("pure==1.0\n");
    dx_py_tests::assert_success(&install_312(), "install of a pure lock");
    venv_python(&cx.project().join("v312"), "import pure");
    // A wheel for this interpreter only: refused, naming it and saying to re-lock.
    lock("pure==1.0\nnative==1.0\n");
    let out = install_312();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("native-1.0-") && err.contains("re-lock"),
        "{err}"
    );
    venv_python(&cx.project().join("v312"), "import pure");
}

#[test]
fn an_install_lists_the_packages_it_added_and_removed() {
    let cx = TestContext::new();
    let wheels = cx.temp.path().join("wheels");
    write_wheels(
        &wheels,
        &[
            WheelBuilder::new("Keep_Me", "1.0").file("keep.py", b""),
            WheelBuilder::new("gone", "1.0").file("gone.py", b""),
            WheelBuilder::new("bumped", "1.0").file("bumped.py", b""),
            WheelBuilder::new("bumped", "2.0").file("bumped.py", b""),
        ],
    );
    let install = |reqs: &str| {
        std::fs::write(cx.project().join("requirements.txt"), reqs).unwrap();
        let out = cx
            .dx_py()
            .args([
                "install",
                "-r",
                "requirements.txt",
                "--no-index",
                "--find-links",
            ])
            .arg(&wheels)
            .output()
            .unwrap();
        dx_py_tests::assert_success(&out, "dx-py install");
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with(" + ") || l.starts_with(" - "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        install("keep-me==1.0\ngone==1.0\nbumped==1.0\n"),
        [" + bumped==1.0", " + gone==1.0", " + Keep_Me==1.0"]
    );
    // The same set again: nothing to list.
    assert_eq!(
        install("keep-me==1.0\ngone==1.0\nbumped==1.0\n"),
        [] as [&str; 0]
    );
    assert_eq!(
        install("keep-me==1.0\nbumped==2.0\n"),
        [" - bumped==1.0", " + bumped==2.0", " - gone==1.0"]
    );
    // Back to a set whose layout is cached (the warm path lists changes too).
    assert_eq!(
        install("keep-me==1.0\ngone==1.0\nbumped==1.0\n"),
        [" - bumped==2.0", " + bumped==1.0", " + gone==1.0"]
    );
}

/// A pylock.toml as multi-environment lockers write it: markers per package, several wheels
/// per package, paths relative to the lock.
fn multi_environment_pylock(wheels: &Path, here: &str) -> String {
    let sha = |file: &str| dx_py_core::hash::sha256_hex(&std::fs::read(wheels.join(file)).unwrap());
    let wheel = |file: &str| {
        format!(
            "{{ name = \"{file}\", path = \"wheels/{file}\", hashes = {{ sha256 = \"{}\" }} }}",
            sha(file)
        )
    };
    format!(
        r#"lock-version = "1.0"
requires-python = ">=3.8"
created-by = "hand"

[[packages]]
name = "native"
version = "1.0"
wheels = [
    {},
    {},
    {},
]

[[packages]]
name = "winonly"
version = "1.0"
marker = "sys_platform == 'win32'"
wheels = [{}]

[[packages]]
name = "pure"
version = "1.0"
marker = "python_full_version >= '3.8' and sys_platform != 'win32'"
wheels = [{}]
"#,
        wheel("native-1.0-cp39-cp39-win_amd64.whl"),
        wheel(&format!("native-1.0-{here}-{here}-linux_x86_64.whl")),
        wheel("native-1.0-py3-none-any.whl"),
        wheel("winonly-1.0-py3-none-any.whl"),
        wheel("pure-1.0-py3-none-any.whl"),
    )
}

#[test]
fn a_multi_environment_pylock_installs_by_markers_and_best_wheel() {
    let cx = TestContext::new();
    let wheels = cx.project().join("wheels");
    let here = dx_py_tests::cache_tag().replace("cpython-", "cp");
    write_wheels(
        &wheels,
        &[
            WheelBuilder::new("native", "1.0")
                .tag("cp39-cp39-win_amd64")
                .file("native.py", b"KIND = 'windows'\n"),
            WheelBuilder::new("native", "1.0")
                .tag(&format!("{here}-{here}-linux_x86_64"))
                .file("native.py", b"KIND = 'this interpreter'\n"),
            WheelBuilder::new("native", "1.0").file("native.py", b"KIND = 'pure'\n"),
            WheelBuilder::new("winonly", "1.0").file("winonly.py", b""),
            WheelBuilder::new("pure", "1.0").file("pure.py", b""),
        ],
    );
    std::fs::write(
        cx.project().join("pylock.toml"),
        multi_environment_pylock(&wheels, &here),
    )
    .unwrap();
    cx.run_ok(&["install", "--lock", "pylock.toml"]);
    let venv = cx.project().join(".venv");
    let out = venv_python(
        &venv,
        "import native, pure, importlib.util as u; print(native.KIND, u.find_spec('winonly') is None)",
    );
    assert_eq!(out.trim(), "this interpreter True");

    // Another interpreter chooses again from the same lock: the pure wheel of `native`.
    if let Some(other) = dx_py_tests::other_python() {
        let out = cx
            .dx_py()
            .args([
                "install",
                "--lock",
                "pylock.toml",
                "--venv",
                "other",
                "--python",
            ])
            .arg(&other)
            .output()
            .unwrap();
        dx_py_tests::assert_success(&out, "install with another interpreter");
        let out = venv_python(
            &cx.project().join("other"),
            "import native; print(native.KIND)",
        );
        assert_eq!(out.trim(), "pure");
        // And this one again takes its own wheel (the DPL of the other is not reused).
        cx.run_ok(&["install", "--lock", "pylock.toml"]);
        let out = venv_python(&venv, "import native; print(native.KIND)");
        assert_eq!(out.trim(), "this interpreter");
    }

    // Nothing fits: the error names the package and the interpreter.
    let text = multi_environment_pylock(&wheels, &here).replace(
        &format!("native-1.0-{here}-{here}-linux_x86_64.whl"),
        "native-1.0-cp39-cp39-win_amd64.whl",
    );
    let text = text.replace(
        "    { name = \"native-1.0-py3-none-any.whl\"",
        "    { name = \"native-1.0-cp39-cp39-win_amd64.whl\"",
    );
    std::fs::write(cx.project().join("pylock.toml"), text).unwrap();
    let err = cx.run_err(&["install", "--lock", "pylock.toml"], 1);
    assert!(
        err.contains("No wheel of `native`") && err.contains("re-lock"),
        "{err}"
    );

    // A marker that does not parse is an error naming it.
    let text = multi_environment_pylock(&wheels, &here)
        .replace("sys_platform == 'win32'", "sys_platform === 'win32'");
    std::fs::write(cx.project().join("pylock.toml"), text).unwrap();
    let err = cx.run_err(&["install", "--lock", "pylock.toml"], 1);
    assert!(
        err.contains("Invalid marker") && err.contains("winonly"),
        "{err}"
    );

    // requires-python that excludes the interpreter.
    let text = multi_environment_pylock(&wheels, &here)
        .replace("requires-python = \">=3.8\"", "requires-python = \">=4\"");
    std::fs::write(cx.project().join("pylock.toml"), text).unwrap();
    let err = cx.run_err(&["install", "--lock", "pylock.toml"], 1);
    assert!(err.contains("requires Python >=4"), "{err}");
}

#[test]
fn a_universal_pylock_written_by_uv_installs() {
    let Some(uv) = dx_py_tests::uv() else {
        return;
    };
    let cx = TestContext::new();
    let wheels = cx.project().join("wheels");
    let here = dx_py_tests::cache_tag().replace("cpython-", "cp");
    write_wheels(
        &wheels,
        &[
            WheelBuilder::new("native", "1.0")
                .tag("cp39-cp39-win_amd64")
                .file("native.py", b"KIND = 'windows'\n"),
            WheelBuilder::new("native", "1.0")
                .tag(&format!("{here}-{here}-linux_x86_64"))
                .file("native.py", b"KIND = 'this interpreter'\n"),
            WheelBuilder::new("native", "1.0")
                .tag("py3-none-macosx_11_0_arm64")
                .file("native.py", b"KIND = 'mac'\n"),
            WheelBuilder::new("winonly", "1.0").file("winonly.py", b""),
            WheelBuilder::new("app", "1.0")
                .requires_dist("native")
                .requires_dist("winonly; sys_platform == 'win32'")
                .file("app.py", b""),
        ],
    );
    std::fs::write(cx.project().join("requirements.in"), "app\n").unwrap();
    let python = dx_py_tests::python_executable();
    dx_py_tests::uv_compile_universal(
        &uv,
        &cx.temp.path().join("uv-cache"),
        &cx.project(),
        &["--python".as_ref(), python.as_os_str()],
    );
    let text = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    assert!(text.contains("win32"), "a multi-environment lock:\n{text}");
    cx.run_ok(&["install", "--lock", "pylock.toml"]);
    let out = venv_python(
        &cx.project().join(".venv"),
        "import app, native, importlib.util as u; print(native.KIND, u.find_spec('winonly') is None)",
    );
    assert_eq!(out.trim(), "this interpreter True");
}
