//! Universal locks end to end: `dx-py lock --universal` and a project's `dx-py lock` on this
//! Linux machine, read for other platforms and Pythons with `export` (so is one uv wrote),
//! installed by several local interpreters from the same lock, and installed by uv; a project's
//! re-lock keeping each fork's versions.

use dx_py_core::testing::TestIndex;
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, assert_success, venv_python, write_wheels};

/// `app` needs `lib<2` before Python 3.10 and `lib>=2` from it, and `winonly` on Windows.
fn forked_wheels(cx: &TestContext) {
    write_wheels(
        &cx.project().join("wheels"),
        &[
            WheelBuilder::new("app", "1.0")
                .requires_dist("lib<2; python_version < '3.10'")
                .requires_dist("lib>=2; python_version >= '3.10'")
                .requires_dist("winonly; sys_platform == 'win32'")
                .file("app.py", b""),
            WheelBuilder::new("lib", "1.0").file("lib.py", b"V = '1.0'\n"),
            WheelBuilder::new("lib", "2.0").file("lib.py", b"V = '2.0'\n"),
            WheelBuilder::new("winonly", "1.0").file("winonly.py", b""),
        ],
    );
    std::fs::write(cx.project().join("requirements.in"), "app\n").unwrap();
}

/// `dx-py lock --universal` of the forked wheels, from Python 3.9 on.
const LOCK: [&str; 9] = [
    "lock",
    "--universal",
    "-r",
    "requirements.in",
    "--no-index",
    "--find-links",
    "wheels",
    "--python-version",
    "3.9",
];

/// [`forked_wheels`] locked by dx-py for every environment from Python 3.9 on.
fn project(cx: &TestContext) {
    forked_wheels(cx);
    cx.run_ok(&LOCK);
}

/// The `name==version` lines `export` prints for a platform and a Python.
fn exported(cx: &TestContext, platform: &str, python: &str) -> Vec<String> {
    pins(&cx.run_ok(&["export", "--platform", platform, "--python-version", python]))
}

/// The `name==version` lines of an export.
fn pins(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with('#') && !l.trim_start().starts_with("--hash"))
        .map(|l| l.trim_end_matches(" \\").to_owned())
        .collect()
}

#[test]
fn one_lock_serves_every_platform_and_python() {
    let cx = TestContext::new();
    project(&cx);
    let text = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    assert!(text.contains("requires-python = \">=3.9\""), "{text}");
    assert!(
        text.contains("marker = \"sys_platform == 'win32'\""),
        "{text}"
    );
    // Its binary twin: a DPL version 2.
    let dpl = std::fs::read(cx.project().join("dx-py.dpl")).unwrap();
    assert_eq!(dx_py_core::dpl::format_version(&dpl), Ok(2));
    exports_of_the_forked_wheels(&cx);
}

/// What the lock of [`forked_wheels`] gives Windows, macOS and Linux on Pythons 3.9 to 3.13.
fn exports_of_the_forked_wheels(cx: &TestContext) {
    for python in ["3.9", "3.10", "3.11", "3.12", "3.13"] {
        let lib = if python == "3.9" {
            "lib==1.0"
        } else {
            "lib==2.0"
        };
        assert_eq!(
            exported(cx, "win32", python),
            ["app==1.0", lib, "winonly==1.0"],
            "windows, {python}"
        );
        assert_eq!(
            exported(cx, "darwin", python),
            ["app==1.0", lib],
            "macos, {python}"
        );
        assert_eq!(
            exported(cx, "linux", python),
            ["app==1.0", lib],
            "linux, {python}"
        );
    }
}

#[test]
fn an_unchanged_input_is_not_resolved_again() {
    let cx = TestContext::new();
    project(&cx);
    let lock = cx.project().join("pylock.toml");
    let before = std::fs::read(&lock).unwrap();
    let again = LOCK;
    let out = cx.dx_py().args(again).output().unwrap();
    assert_success(&out, "lock again");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is up to date"), "{said}");
    assert_eq!(std::fs::read(&lock).unwrap(), before);
    // Another scope is another input.
    let mut newer = again;
    newer[8] = "3.10";
    let out = cx.dx_py().args(newer).output().unwrap();
    assert_success(&out, "lock for 3.10 on");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("up to date"));
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.contains("requires-python = \">=3.10\""), "{text}");
    assert!(!text.contains("lib-1.0"), "3.9's branch is gone:\n{text}");
}

#[test]
fn two_interpreters_install_from_the_same_lock() {
    let cx = TestContext::new();
    project(&cx);
    let mut pythons = vec![(dx_py_tests::python_executable(), "2.0")];
    if let Some(p) = dx_py_tests::other_python() {
        pythons.push((p, "2.0"));
    }
    match dx_py_tests::pyenv_python("3.9") {
        Some(p) => pythons.push((p, "1.0")),
        None => dx_py_tests::skip("no CPython 3.9 in pyenv: the 3.9 install is not tried"),
    }
    assert!(
        pythons.len() >= 2,
        "two interpreters are needed: {pythons:?}"
    );
    for (i, (python, want)) in pythons.iter().enumerate() {
        let venv = format!("venv-{i}");
        cx.run_ok(&[
            "install",
            "--lock",
            "pylock.toml",
            "--venv",
            &venv,
            "--python",
            python.to_str().unwrap(),
        ]);
        let got = venv_python(
            &cx.project().join(&venv),
            "import app, lib, importlib.util as u; print(lib.V, u.find_spec('winonly') is None)",
        );
        assert_eq!(got.trim(), format!("{want} True"), "{}", python.display());
    }
}

#[test]
fn uv_installs_a_universal_lock_dx_py_wrote() {
    let Some(uv) = dx_py_tests::uv() else {
        return;
    };
    let cx = TestContext::new();
    project(&cx);
    let venv = dx_py_tests::uv_install_pylock(&uv, &cx.temp.path().join("uv-cache"), &cx.project());
    let got = venv_python(&venv, "import app, lib; print(lib.V)");
    assert_eq!(got.trim(), "2.0");
}

/// [`forked_wheels`] locked by uv (`uv pip compile --universal`) from Python 3.9 on.
fn uv_lock(cx: &TestContext, uv: &std::path::Path) {
    forked_wheels(cx);
    dx_py_tests::uv_compile_universal(
        uv,
        &cx.temp.path().join("uv-cache"),
        &cx.project(),
        &["--python-version".as_ref(), "3.9".as_ref()],
    );
}

#[test]
fn a_universal_lock_is_read_for_other_platforms_and_pythons() {
    let Some(uv) = dx_py_tests::uv() else {
        return;
    };
    let cx = TestContext::new();
    uv_lock(&cx, &uv);
    let export = |platform: &str, python: &str| {
        cx.run_ok(&[
            "export",
            "--lock",
            "pylock.toml",
            "--platform",
            platform,
            "--python-version",
            python,
        ])
    };
    let windows = export("win32", "3.9");
    assert_eq!(pins(&windows), ["app==1.0", "lib==1.0", "winonly==1.0"]);
    assert!(windows.contains("--hash=sha256:"), "{windows}");
    assert_eq!(pins(&export("darwin", "3.12")), ["app==1.0", "lib==2.0"]);
    assert_eq!(pins(&export("linux", "3.9")), ["app==1.0", "lib==1.0"]);
    for python in ["3.10", "3.11", "3.13"] {
        assert_eq!(
            pins(&export("aarch64-windows", python)),
            ["app==1.0", "lib==2.0", "winonly==1.0"]
        );
    }
    // Written to a file pip can read with --require-hashes.
    cx.run_ok(&[
        "export",
        "--lock",
        "pylock.toml",
        "--platform",
        "linux",
        "--python-version",
        "3.12",
        "-o",
        "linux.txt",
    ]);
    let written = std::fs::read_to_string(cx.project().join("linux.txt")).unwrap();
    assert_eq!(pins(&written), ["app==1.0", "lib==2.0"]);
}

#[test]
fn an_environment_the_lock_does_not_cover_is_refused() {
    let Some(uv) = dx_py_tests::uv() else {
        return;
    };
    let cx = TestContext::new();
    uv_lock(&cx, &uv);
    let err = cx.run_err(
        &["export", "--lock", "pylock.toml", "--python-version", "3.8"],
        1,
    );
    assert!(err.contains("requires Python >=3.9"), "{err}");
    let err = cx.run_err(
        &["export", "--lock", "pylock.toml", "--platform", "solaris"],
        2,
    );
    assert!(err.contains("Unknown platform `solaris`"), "{err}");
    let err = cx.run_err(&["export", "--lock", "missing.toml"], 1);
    assert!(err.contains("missing.toml"), "{err}");
}

/// The interpreters the install tests use, each with the `lib` version it must get.
fn local_pythons() -> Vec<(std::path::PathBuf, &'static str)> {
    let mut pythons = vec![(dx_py_tests::python_executable(), "2.0")];
    if let Some(p) = dx_py_tests::other_python() {
        pythons.push((p, "2.0"));
    }
    if let Some(p) = dx_py_tests::pyenv_python("3.9") {
        pythons.push((p, "1.0"));
    }
    pythons
}

#[test]
fn the_binary_twin_installs_for_each_interpreter() {
    let cx = TestContext::new();
    project(&cx);
    for (i, (python, want)) in local_pythons().iter().enumerate() {
        let venv = format!("venv-{i}");
        let python = python.to_str().unwrap();
        let args = [
            "install",
            "--lock",
            "dx-py.dpl",
            "--venv",
            &venv,
            "--python",
            python,
        ];
        cx.run_ok(&args);
        let got = venv_python(
            &cx.project().join(&venv),
            "import app, lib, importlib.util as u; print(lib.V, u.find_spec('winonly') is None)",
        );
        assert_eq!(got.trim(), format!("{want} True"), "{python}");
        // Unchanged: the kept selection and the cached layout, nothing else.
        let out = cx.dx_py().args(args).output().unwrap();
        assert_success(&out, "install again");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("layout hit"), "{said}");
    }
    // One selection per interpreter, kept in the cache; the twin is left as it was.
    let selected = std::fs::read_dir(cx.cache_dir().join("selected"))
        .unwrap()
        .count();
    assert_eq!(selected, local_pythons().len());
    let dpl = std::fs::read(cx.project().join("dx-py.dpl")).unwrap();
    assert_eq!(dx_py_core::dpl::format_version(&dpl), Ok(2));
}

#[test]
fn the_binary_twin_chooses_as_the_pylock_reading_does() {
    let cx = TestContext::new();
    project(&cx);
    let dpl = cx.project().join("dx-py.dpl");
    let pylock = cx.project().join("pylock.toml");
    let reader = dx_py_core::dpl::UniversalDplReader::open(&dpl).unwrap();
    for (python, _) in local_pythons() {
        let interp =
            dx_py_core::python::Interpreter::find(python.to_str(), &cx.cache_dir()).unwrap();
        let ours = dx_py_core::install::select_for(&reader, &dpl, &interp).unwrap();
        let oracle = dx_py_core::install::read_pylock_for(&pylock, &interp).unwrap();
        assert_eq!(ours.packages, oracle.packages, "{}", python.display());
        assert_eq!(ours.meta.requires_python, oracle.meta.requires_python);
    }
}

#[test]
fn dump_and_get_show_markers_and_wheels() {
    let cx = TestContext::new();
    project(&cx);
    let json = cx.run_ok(&["dpl", "dump", "--json", "dx-py.dpl"]);
    assert!(json.contains("\"format_version\": 2"), "{json}");
    assert!(json.contains("\"requires_python\": \">=3.9\""), "{json}");
    assert!(
        json.contains("\"marker\": \"sys_platform == 'win32'\""),
        "{json}"
    );
    assert!(json.contains("winonly-1.0-py3-none-any.whl"), "{json}");
    let text = cx.run_ok(&["dpl", "dump", "dx-py.dpl"]);
    assert!(
        text.contains("DPL format 2 (universal), 4 entries"),
        "{text}"
    );
    let lib = cx.run_ok(&["dpl", "get", "dx-py.dpl", "LIB"]);
    assert!(lib.contains("lib 1.0") && lib.contains("lib 2.0"), "{lib}");
    assert!(lib.contains("marker"), "{lib}");
    let err = cx.run_err(&["dpl", "get", "dx-py.dpl", "absent"], 1);
    assert!(err.contains("`absent` is not in"), "{err}");
}

/// A project needing `app` (see [`forked_wheels`]) from Python 3.9 on.
fn forked_project(cx: &TestContext) {
    forked_wheels(cx);
    std::fs::write(
        cx.project().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"0.1\"\nrequires-python = \">=3.9\"\n\
         dependencies = [\"app\"]\n",
    )
    .unwrap();
}

/// `dx-py ARGS --no-index --find-links wheels`.
fn offline<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--no-index", "--find-links", "wheels"]);
    all
}

#[test]
fn a_project_locks_for_every_environment_and_two_pythons_sync_from_it() {
    let cx = TestContext::new();
    forked_project(&cx);
    cx.run_ok(&offline(&["lock"]));
    let lock = cx.project().join("pylock.toml");
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(
        text.contains("marker = \"sys_platform == 'win32'\""),
        "{text}"
    );
    exports_of_the_forked_wheels(&cx);
    let mut synced = 0;
    for (minor, want) in [("3.11", "2.0"), ("3.12", "2.0"), ("3.9", "1.0")] {
        let Some(python) = dx_py_tests::pyenv_python(minor) else {
            dx_py_tests::skip(format!(
                "no CPython {minor} in pyenv: its sync is not tried"
            ));
            continue;
        };
        let _ = std::fs::remove_dir_all(cx.project().join(".venv"));
        let out = cx
            .dx_py()
            .args(offline(&[
                "sync",
                "-v",
                "--python",
                python.to_str().unwrap(),
            ]))
            .output()
            .unwrap();
        assert_success(&out, &format!("sync with {minor}"));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("is up to date"), "not locked again:\n{said}");
        let got = venv_python(
            &cx.project().join(".venv"),
            "import app, lib, sys, importlib.util as u; \
             print(lib.V, u.find_spec('winonly') is None, sys.version_info[:2])",
        );
        let (major, minor) = minor.split_once('.').unwrap();
        assert_eq!(got.trim(), format!("{want} True ({major}, {minor})"));
        synced += 1;
    }
    assert!(synced >= 2, "two interpreters are needed");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), text);
}

#[test]
fn locked_frozen_and_an_unchanged_project() {
    let cx = TestContext::new();
    forked_project(&cx);
    cx.run_ok(&offline(&["sync"]));
    // The index options before the command: after it they would be the command's.
    let out = cx
        .dx_py()
        .args(offline(&["run"]))
        .args(["python", "-c", "import app"])
        .output()
        .unwrap();
    assert_success(&out, "run");
    assert_eq!(
        dx_py_tests::printed(&out),
        "",
        "nothing to say when nothing changed"
    );
    cx.run_ok(&offline(&["sync", "--locked"]));
    // An edit: `--locked` refuses the lock, `--frozen` installs it as it is.
    let pyproject = cx.project().join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(&pyproject, text.replace(">=3.9", ">=3.10")).unwrap();
    let err = cx.run_err(&offline(&["sync", "--locked"]), 1);
    assert!(
        err.contains("--locked") && err.contains("pyproject.toml"),
        "{err}"
    );
    let lock = cx.project().join("pylock.toml");
    let before = std::fs::read_to_string(&lock).unwrap();
    cx.run_ok(&offline(&["sync", "--frozen"]));
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), before);
    cx.run_ok(&offline(&["sync"]));
    let after = std::fs::read_to_string(&lock).unwrap();
    assert!(
        before.contains("lib-1.0") && !after.contains("lib-1.0"),
        "{after}"
    );
    // A checkout without the binary twin: `--frozen` says so, a sync makes it again.
    let twin = cx.project().join("dx-py.dpl");
    std::fs::remove_file(&twin).unwrap();
    let err = cx.run_err(&offline(&["sync", "--frozen"]), 1);
    assert!(
        err.contains("dx-py.dpl") && err.contains("--frozen"),
        "{err}"
    );
    cx.run_ok(&offline(&["sync"]));
    assert!(twin.is_file(), "the twin is made again");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), after);
    std::fs::remove_file(cx.project().join("pylock.toml")).unwrap();
    let err = cx.run_err(&offline(&["sync", "--frozen"]), 1);
    assert!(err.contains("--frozen"), "{err}");
}

/// `name==version ; marker` of each entry of the project's `pylock.toml`.
fn entries(cx: &TestContext) -> Vec<String> {
    let text = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    doc["packages"]
        .as_array_of_tables()
        .unwrap()
        .iter()
        .map(|p| {
            let pin = format!(
                "{}=={}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            );
            match p.get("marker") {
                Some(m) => format!("{pin} ; {}", m.as_str().unwrap()),
                None => pin,
            }
        })
        .collect()
}

#[test]
fn a_project_relock_keeps_each_forks_versions_and_upgrades_one_package_in_every_fork() {
    let cx = TestContext::new();
    let dir = cx.temp.path().join("index");
    let app = WheelBuilder::new("app", "1.0")
        .requires_dist("lib<2; python_version < '3.10'")
        .requires_dist("lib>=2; python_version >= '3.10'")
        .requires_dist("winonly; sys_platform == 'win32'");
    write_wheels(
        &dir,
        &[
            app,
            WheelBuilder::new("lib", "1.0"),
            WheelBuilder::new("lib", "2.0"),
            WheelBuilder::new("winonly", "1.0"),
            WheelBuilder::new("other", "1.0"),
        ],
    );
    let server = TestIndex::serve(&dir).unwrap();
    let url = server.index_url();
    std::fs::write(
        cx.project().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"0.1\"\nrequires-python = \">=3.9\"\n\
         dependencies = [\"app\"]\n",
    )
    .unwrap();
    let with_index = |args: &[&str]| {
        let mut all = vec![args[0], "--index-url", &url];
        all.extend(&args[1..]);
        cx.run_ok(&all);
    };
    with_index(&["lock"]);
    let locked = [
        "app==1.0",
        "lib==1.0 ; python_full_version < '3.10'",
        "lib==2.0 ; python_full_version >= '3.10'",
        "winonly==1.0 ; sys_platform == 'win32'",
    ];
    assert_eq!(entries(&cx), locked);
    // Everything has a newer version now.
    write_wheels(
        &dir,
        &[
            WheelBuilder::new("lib", "1.1"),
            WheelBuilder::new("lib", "2.1"),
            WheelBuilder::new("winonly", "1.1"),
        ],
    );
    // A new dependency moves nothing else.
    with_index(&["add", "--no-sync", "--refresh", "other"]);
    let mut with_other = locked.to_vec();
    with_other.insert(3, "other==1.0");
    assert_eq!(entries(&cx), with_other);
    // `-P lib` moves lib on both sides of the fork, and only lib.
    with_index(&["lock", "-P", "lib", "--refresh"]);
    assert_eq!(
        entries(&cx),
        [
            "app==1.0",
            "lib==1.1 ; python_full_version < '3.10'",
            "lib==2.1 ; python_full_version >= '3.10'",
            "other==1.0",
            "winonly==1.0 ; sys_platform == 'win32'",
        ]
    );
    with_index(&["lock", "--upgrade", "--refresh"]);
    assert!(entries(&cx).contains(&"winonly==1.1 ; sys_platform == 'win32'".to_owned()));
}

#[test]
fn a_package_with_wheels_for_other_platforms_only_is_refused_where_it_cannot_install() {
    let cx = TestContext::new();
    write_wheels(
        &cx.project().join("wheels"),
        &[
            WheelBuilder::new("app", "1.0").requires_dist("native"),
            WheelBuilder::new("native", "1.0").tag("py3-none-win_amd64"),
        ],
    );
    std::fs::write(
        cx.project().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"0.1\"\nrequires-python = \">=3.9\"\n\
         dependencies = [\"app\"]\n",
    )
    .unwrap();
    cx.run_ok(&offline(&["lock"]));
    assert_eq!(exported(&cx, "win32", "3.12"), ["app==1.0", "native==1.0"]);
    // Linux cannot install it: a message naming the package, and no venv claiming the lock.
    let err = cx.run_err(&offline(&["sync"]), 1);
    assert!(err.contains("native"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let venv = cx.project().join(".venv");
    if venv.exists() {
        let got = venv_python(
            &venv,
            "import importlib.util as u; print(u.find_spec('app'))",
        );
        assert_eq!(got.trim(), "None", "a venv with part of the lock");
    }
}

/// The warm path: a second `sync` of an unchanged project finds the venv holding what the lock
/// gives it, and installs nothing.
#[test]
fn an_unchanged_project_sync_finds_the_venv_holding_the_lock() {
    let cx = TestContext::new();
    forked_project(&cx);
    cx.run_ok(&offline(&["sync"]));
    let out = cx.dx_py().args(offline(&["sync", "-v"])).output().unwrap();
    assert_success(&out, "second sync");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("already holds the lock"), "{said}");
}

/// Writes `{dist}-1.0.tar.gz` into `index`: a setuptools project whose module `name` says
/// `greeting`, with a `PKG-INFO` of metadata 2.2 (no `Dynamic`), so that its dependencies are
/// read without a build and only the install builds it.
fn static_sdist(index: &std::path::Path, name: &str, greeting: &str) {
    let dist = name.replace('-', "_");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join(format!("{dist}-1.0"));
    std::fs::create_dir_all(root.join(&dist)).unwrap();
    let files = [
        (
            "pyproject.toml".to_owned(),
            format!(
                "[build-system]\nrequires = [\"setuptools>=61\"]\n\
                 build-backend = \"setuptools.build_meta\"\n\n\
                 [project]\nname = \"{name}\"\nversion = \"1.0\"\n"
            ),
        ),
        (
            "PKG-INFO".to_owned(),
            format!("Metadata-Version: 2.2\nName: {name}\nVersion: 1.0\n"),
        ),
        (
            format!("{dist}/__init__.py"),
            format!("GREETING = {greeting:?}\n"),
        ),
    ];
    for (path, text) in files {
        std::fs::write(root.join(path), text).unwrap();
    }
    let archive = index.join(format!("{dist}-1.0.tar.gz"));
    let code = format!(
        "import tarfile\nwith tarfile.open({:?}, 'w:gz') as t: t.add({:?}, arcname={:?})",
        archive.display().to_string(),
        root.display().to_string(),
        format!("{dist}-1.0"),
    );
    let out = dx_py_tests::run_python(std::path::Path::new(&dx_py_tests::python()), &code);
    assert_success(&out, "tar the sdist");
}

/// A project depending on a package that has only an sdist: its universal lock names the
/// sdist, a sync on an empty cache builds and installs it, a second venv takes the built wheel
/// from the cache without building again, and another interpreter builds its own once.
#[test]
fn an_sdist_only_dependency_is_locked_as_its_sdist_and_built_once_at_sync() {
    let Some(backend) =
        dx_py_tests::fetch_wheels("build-backend", &["setuptools==75.3.0", "wheel==0.45.1"])
    else {
        dx_py_tests::skip("setuptools could not be downloaded with pip");
        return;
    };
    let cx = TestContext::new();
    let index_dir = cx.temp.path().join("index");
    std::fs::create_dir_all(&index_dir).unwrap();
    for e in std::fs::read_dir(&backend).unwrap().flatten() {
        std::fs::copy(e.path(), index_dir.join(e.file_name())).unwrap();
    }
    static_sdist(&index_dir, "hello-sdist", "built at sync");
    let index = TestIndex::serve(&index_dir).unwrap();
    let url = index.index_url();
    std::fs::write(
        cx.project().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"0.1\"\nrequires-python = \">=3.9\"\n\
         dependencies = [\"hello-sdist\"]\n",
    )
    .unwrap();
    cx.run_ok(&["lock", "--index-url", &url]);
    let text = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    assert!(
        text.contains("hello_sdist-1.0.tar.gz") && !text.contains("hello_sdist-1.0-py3"),
        "{text}"
    );
    let sync = |python: Option<&std::path::Path>| {
        let mut cmd = cx.dx_py();
        cmd.args(["sync", "-v", "--index-url", &url]);
        if let Some(p) = python {
            cmd.args(["--python", p.to_str().unwrap()]);
        }
        let out = cmd.output().unwrap();
        assert_success(&out, "sync");
        dx_py_tests::printed(&out)
    };
    let said = sync(None);
    assert!(said.contains("Built 1 source distribution"), "{said}");
    let venv = cx.project().join(".venv");
    let greeting = venv_python(&venv, "import hello_sdist; print(hello_sdist.GREETING)");
    assert_eq!(greeting.trim(), "built at sync");
    // A new venv of the same interpreter: the build is the cache's, not the venv's.
    std::fs::remove_dir_all(&venv).unwrap();
    let said = sync(None);
    assert!(!said.contains("Built "), "{said}");
    let greeting = venv_python(&venv, "import hello_sdist; print(hello_sdist.GREETING)");
    assert_eq!(greeting.trim(), "built at sync");
    // Another interpreter takes the pure-Python wheel the first built (its tags fit): nothing
    // is built again, from the same lock.
    let Some(other) = dx_py_tests::other_python() else {
        dx_py_tests::skip("no second interpreter: its sync is not tried");
        return;
    };
    std::fs::remove_dir_all(&venv).unwrap();
    let said = sync(Some(&other));
    assert!(!said.contains("Built "), "{said}");
    let greeting = venv_python(&venv, "import hello_sdist; print(hello_sdist.GREETING)");
    assert_eq!(greeting.trim(), "built at sync");
    std::fs::remove_dir_all(&venv).unwrap();
    let said = sync(Some(&other));
    assert!(!said.contains("Built "), "{said}");
}

/// `--only-binary` reaches the universal resolution: a dependency with only an sdist is then
/// refused, naming it, where without the flag it is locked as its sdist (its metadata read from
/// its static `PKG-INFO`, nothing built).
#[test]
fn only_binary_refuses_an_sdist_only_dependency_in_a_universal_lock() {
    let cx = TestContext::new();
    forked_project(&cx);
    static_sdist(&cx.project().join("wheels"), "hello-sdist", "hi");
    let pyproject = cx.project().join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(
        &pyproject,
        text.replace("[\"app\"]", "[\"app\", \"hello-sdist\"]"),
    )
    .unwrap();
    let err = cx.run_err(&offline(&["lock", "--only-binary", ":all:"]), 1);
    assert!(err.contains("hello-sdist"), "{err}");
    assert!(!cx.project().join("pylock.toml").exists());
    cx.run_ok(&offline(&["lock"]));
    let lock = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    assert!(lock.contains("hello_sdist-1.0.tar.gz"), "{lock}");
}
