//! Resolution end to end: the real `dx-py` binary resolving unpinned requirements and
//! `pyproject.toml` projects against the local test index (and, when reachable, against the
//! index this machine's pip uses), checked by importing.
use std::path::Path;

use dx_py_core::testing::TestIndex;
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, assert_success, printed, venv_python, write_wheels};

/// An index of small pure wheels: `app` needs `lib>=2` (and `extra-dep` for its `x` extra);
/// `lib` 3.0 needs Python 3.99, `lib` 2.1 is yanked; `lib` 2.0 needs `leaf<2`.
fn index(cx: &TestContext) -> TestIndex {
    let dir = cx.temp.path().join("index");
    write_wheels(
        &dir,
        &[
            WheelBuilder::new("app", "1.0")
                .requires_dist("lib>=2")
                .requires_dist("extra-dep; extra == \"x\"")
                .requires_dist("winonly; sys_platform == \"win32\"")
                .file("app.py", b"NAME = 'app'\n"),
            WheelBuilder::new("lib", "1.0").file("lib.py", b"V = '1.0'\n"),
            WheelBuilder::new("lib", "2.0")
                .requires_dist("leaf<2")
                .file("lib.py", b"V = '2.0'\n"),
            WheelBuilder::new("lib", "2.1").file("lib.py", b"V = '2.1'\n"),
            WheelBuilder::new("lib", "3.0")
                .requires_python(">=3.99")
                .file("lib.py", b"V = '3.0'\n"),
            WheelBuilder::new("leaf", "1.5").file("leaf.py", b"V = '1.5'\n"),
            WheelBuilder::new("leaf", "2.0").file("leaf.py", b"V = '2.0'\n"),
            WheelBuilder::new("extra-dep", "1.0").file("extra_dep.py", b""),
            // Projects lock for Windows too.
            WheelBuilder::new("winonly", "1.0").file("winonly.py", b""),
            WheelBuilder::new("other", "1.0")
                .requires_dist("lib<2")
                .file("other.py", b""),
        ],
    );
    let server = TestIndex::serve(&dir).unwrap();
    server.yank("lib-2.1-py3-none-any.whl", Some("broken"));
    server
}

fn run(cx: &TestContext, args: &[&str]) -> std::process::Output {
    cx.dx_py().args(args).output().unwrap()
}

#[test]
fn unpinned_requirements_resolve_lock_and_install() {
    let cx = TestContext::new();
    let server = index(&cx);
    let url = server.index_url();
    std::fs::write(cx.project().join("requirements.txt"), "app[x]\n").unwrap();
    let out = run(
        &cx,
        &["install", "-r", "requirements.txt", "--index-url", &url],
    );
    assert_success(&out, "install -r");
    let text = printed(&out);
    assert!(text.contains("Resolved 4 packages"), "{text}");
    assert!(
        text.contains(" + lib==2.0") && text.contains(" + leaf==1.5"),
        "{text}"
    );
    let venv = cx.project().join(".venv");
    let got = venv_python(
        &venv,
        "import app, lib, leaf, extra_dep, importlib.util as u; print(lib.V, leaf.V, u.find_spec('winonly') is None)",
    );
    assert_eq!(got.trim(), "2.0 1.5 True");

    // The lock records what was resolved, and the same input needs no resolution and no request.
    let pylock = std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap();
    assert!(
        pylock.contains("name = \"lib\"") && pylock.contains("version = \"2.0\""),
        "{pylock}"
    );
    let before = server.requests().len();
    let out = run(
        &cx,
        &["install", "-r", "requirements.txt", "--index-url", &url],
    );
    assert_success(&out, "second install");
    assert!(!printed(&out).contains("Resolved"), "{}", printed(&out));
    assert_eq!(
        server.requests().len(),
        before,
        "an unchanged input asks the index nothing"
    );

    // `-v` says what was resolved, for which environment, and how long it took.
    let out = run(
        &cx,
        &[
            "lock",
            "-v",
            "--upgrade",
            "-r",
            "requirements.txt",
            "--index-url",
            &url,
        ],
    );
    assert_success(&out, "lock -v");
    let text = printed(&out);
    assert!(
        text.contains("  lib==2.0  lib-2.0-py3-none-any.whl") && text.contains("resolution "),
        "{text}"
    );

    // `cache stats` counts every directory the cache has, the new metadata and page caches too.
    let stats = cx.run_ok(&["cache", "stats"]);
    for kind in [
        "objects:",
        "unpacked:",
        "layouts:",
        "downloads:",
        "metadata:",
        "pages:",
    ] {
        assert!(stats.contains(kind), "{kind} in {stats}");
    }

    // A constraint moves the choice; the lock is made again.
    std::fs::write(cx.project().join("c.txt"), "leaf<1.5\n").unwrap();
    let out = run(
        &cx,
        &[
            "lock",
            "-r",
            "requirements.txt",
            "-c",
            "c.txt",
            "--index-url",
            &url,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(
        printed(&out).contains("leaf"),
        "the explanation names the conflict: {}",
        printed(&out)
    );
}

#[test]
fn an_unsatisfiable_set_is_explained() {
    let cx = TestContext::new();
    let server = index(&cx);
    std::fs::write(cx.project().join("requirements.txt"), "app\nother\n").unwrap();
    let out = run(
        &cx,
        &[
            "lock",
            "-r",
            "requirements.txt",
            "--index-url",
            &server.index_url(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("No solution was found")
            && text.contains("other")
            && text.contains("lib<2")
            && text.contains("lib>=2"),
        "{text}"
    );
    assert!(
        !cx.project().join("pylock.toml").exists(),
        "no lock is written"
    );
}

#[test]
fn a_project_through_add_remove_sync_and_run() {
    let cx = TestContext::new();
    let server = index(&cx);
    let url = server.index_url();
    std::fs::write(
        cx.project().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"0.1\"\nrequires-python = \">=3.8\"\n\
         # kept as written\ndependencies = [\n    \"leaf\",\n]\n\n[dependency-groups]\ndev = [\"extra-dep\"]\n",
    )
    .unwrap();
    // The index options go right after the subcommand: after `run`'s command they would be
    // the command's own arguments.
    let with_index = |args: &[&str]| {
        let mut all = vec![args[0], "--index-url", &url];
        all.extend(&args[1..]);
        run(&cx, &all)
    };
    let out = with_index(&["add", "app"]);
    assert_success(&out, "add");
    let pyproject = std::fs::read_to_string(cx.project().join("pyproject.toml")).unwrap();
    assert!(
        pyproject.contains("# kept as written\ndependencies = [\n    \"app\",\n    \"leaf\",\n]"),
        "{pyproject}"
    );
    let out = with_index(&[
        "run",
        "python",
        "-c",
        "import app, lib, leaf, extra_dep; print(lib.V)",
    ]);
    assert_success(&out, "run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2.0");

    // Nothing changed: no resolution, no request, no install.
    let before = server.requests().len();
    let out = with_index(&["run", "python", "-c", "import sys; sys.exit(3)"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's exit code comes back"
    );
    assert_eq!(printed(&out), "", "nothing to say when nothing changed");
    assert_eq!(server.requests().len(), before);

    // `--locked` refuses a lock that no longer matches pyproject.toml; `--frozen` uses it.
    let edited = pyproject.replace("\"leaf\",", "\"leaf<1.6\",");
    std::fs::write(cx.project().join("pyproject.toml"), &edited).unwrap();
    let out = with_index(&["sync", "--locked"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(printed(&out).contains("--locked"), "{}", printed(&out));
    assert_success(&with_index(&["sync", "--frozen"]), "sync --frozen");
    assert_success(&with_index(&["sync"]), "sync");

    // remove takes the package out of the project and of the venv.
    let out = with_index(&["remove", "app"]);
    assert_success(&out, "remove");
    assert!(printed(&out).contains(" - app==1.0"), "{}", printed(&out));
    let venv = cx.project().join(".venv");
    let got = venv_python(
        &venv,
        "import importlib.util as u; print(u.find_spec('app') is None)",
    );
    assert_eq!(got.trim(), "True");

    // A package no index has: refused, and pyproject.toml is left as it was.
    let before = std::fs::read(cx.project().join("pyproject.toml")).unwrap();
    let out = with_index(&["add", "no-such-package"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        printed(&out).contains("no-such-package"),
        "{}",
        printed(&out)
    );
    assert_eq!(
        std::fs::read(cx.project().join("pyproject.toml")).unwrap(),
        before
    );
}

#[test]
fn offline_after_a_warm_run_and_offline_without_a_cache() {
    let cx = TestContext::new();
    let server = index(&cx);
    let url = server.index_url();
    std::fs::write(cx.project().join("requirements.txt"), "app\n").unwrap();
    assert_success(
        &run(
            &cx,
            &["lock", "-r", "requirements.txt", "--index-url", &url],
        ),
        "lock",
    );
    drop(server);
    std::fs::remove_file(cx.project().join("dx-py.dpl")).unwrap();
    std::fs::remove_file(cx.project().join("pylock.toml")).unwrap();
    let out = run(
        &cx,
        &[
            "lock",
            "-r",
            "requirements.txt",
            "--index-url",
            &url,
            "--offline",
        ],
    );
    assert_success(&out, "lock --offline from the cache");

    let fresh = TestContext::new();
    std::fs::write(fresh.project().join("requirements.txt"), "app\n").unwrap();
    let out = run(
        &fresh,
        &[
            "lock",
            "-r",
            "requirements.txt",
            "--index-url",
            &url,
            "--offline",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(printed(&out).contains("--offline"), "{}", printed(&out));
}

#[test]
fn stable_relocks_and_upgrade_package() {
    let cx = TestContext::new();
    let dir = cx.temp.path().join("index");
    write_wheels(
        &dir,
        &[WheelBuilder::new("a", "1.0"), WheelBuilder::new("b", "1.0")],
    );
    let server = TestIndex::serve(&dir).unwrap();
    let url = server.index_url();
    std::fs::write(cx.project().join("requirements.txt"), "a\nb\n").unwrap();
    let lock = |extra: &[&str]| lock_requirements_txt(&cx, &url, extra);
    lock(&[]);
    write_wheels(
        &dir,
        &[WheelBuilder::new("a", "2.0"), WheelBuilder::new("b", "2.0")],
    );
    // New requirements text, so the lock is not fresh: still, the locked versions stay.
    std::fs::write(cx.project().join("requirements.txt"), "a\nb\n# changed\n").unwrap();
    let text = lock(&["--refresh"]);
    assert!(
        versions(&text).contains(&("a".into(), "1.0".into())),
        "{text}"
    );
    let text = lock(&["--upgrade-package", "b", "--refresh"]);
    assert_eq!(
        versions(&text),
        [
            ("a".to_string(), "1.0".to_string()),
            ("b".into(), "2.0".into())
        ]
    );
    let text = lock(&["--upgrade", "--refresh"]);
    assert_eq!(
        versions(&text),
        [
            ("a".to_string(), "2.0".to_string()),
            ("b".into(), "2.0".into())
        ]
    );
}

/// `dx-py lock -r requirements.txt --index-url URL EXTRA…`, asserting success; the pylock.toml
/// written.
fn lock_requirements_txt(cx: &TestContext, url: &str, extra: &[&str]) -> String {
    let mut args = vec!["lock", "-r", "requirements.txt", "--index-url", url];
    args.extend(extra);
    assert_success(&run(cx, &args), "lock");
    std::fs::read_to_string(cx.project().join("pylock.toml")).unwrap()
}

/// `(name, version)` of every package of a pylock.toml.
fn versions(pylock: &str) -> Vec<(String, String)> {
    let lock = dx_py_core::dpl::Lock::from_pylock_str(pylock).unwrap();
    lock.packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

#[test]
fn a_lock_written_by_dx_py_installs_with_uv() {
    let Some(uv) = dx_py_tests::uv() else {
        return;
    };
    let cx = TestContext::new();
    let server = index(&cx);
    std::fs::write(cx.project().join("requirements.txt"), "app[x]\n").unwrap();
    assert_success(
        &run(
            &cx,
            &[
                "lock",
                "-r",
                "requirements.txt",
                "--index-url",
                &server.index_url(),
            ],
        ),
        "lock",
    );
    let venv = dx_py_tests::uv_install_pylock(&uv, &cx.temp.path().join("uv-cache"), &cx.project());
    let got = venv_python(&venv, "import app, lib, leaf, extra_dep; print(lib.V)");
    assert_eq!(got.trim(), "2.0");
}

#[test]
fn the_small_benchmark_set_resolves_against_the_default_index() {
    if let Err(why) = dx_py_tests::pip_default_index_reachable() {
        dx_py_tests::skip(why);
        return;
    }
    let cx = TestContext::new();
    let reqs = Path::new("/work/shared/bench-sets/small.in");
    let reqs_text = std::fs::read_to_string(reqs).unwrap_or_else(|_| "requests\n".into());
    std::fs::write(cx.project().join("requirements.in"), reqs_text).unwrap();
    let out = cx
        .dx_py_unconfigured()
        .args(["install", "-r", "requirements.in"])
        .output()
        .unwrap();
    assert_success(&out, "install -r requirements.in");
    let venv = cx.project().join(".venv");
    venv_python(&venv, "import requests");
    let check = std::process::Command::new(dx_py_tests::python_executable())
        .args(["-m", "pip", "--python"])
        .arg(venv.join("bin/python"))
        .args(["check"])
        .output()
        .unwrap();
    assert_success(&check, "pip check");
    // Offline, with the cache of the run above.
    std::fs::remove_file(cx.project().join("dx-py.dpl")).unwrap();
    let out = cx
        .dx_py_unconfigured()
        .args(["lock", "-r", "requirements.in", "--offline"])
        .output()
        .unwrap();
    assert_success(&out, "lock --offline");
}

#[test]
fn python_version_locks_for_another_python_on_this_platform() {
    let cx = TestContext::new();
    let dir = cx.temp.path().join("index");
    write_wheels(
        &dir,
        &[
            WheelBuilder::new("modern", "1.0"),
            WheelBuilder::new("modern", "2.0").requires_python(">=3.10"),
        ],
    );
    let server = TestIndex::serve(&dir).unwrap();
    std::fs::write(cx.project().join("requirements.txt"), "modern\n").unwrap();
    let url = server.index_url();
    let lock = |extra: &[&str]| lock_requirements_txt(&cx, &url, extra);
    let text = lock(&["--python-version", "3.9"]);
    assert_eq!(versions(&text), [("modern".to_string(), "1.0".to_string())]);
    assert!(text.contains("environment = \"cp39-"), "{text}");
    assert!(text.contains("python-version = \"3.9.0\""), "{text}");
    let text = lock(&["--python-version", "3.12.4", "--upgrade"]);
    assert_eq!(versions(&text), [("modern".to_string(), "2.0".to_string())]);
    assert!(text.contains("environment = \"cp312-"), "{text}");
    let out = run(
        &cx,
        &[
            "lock",
            "-r",
            "requirements.txt",
            "--python-version",
            "three",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses it: {}",
        printed(&out)
    );
}
