//! Universal locks end to end: `dx-py lock --universal` on this Linux machine, read for other
//! platforms and Pythons with `export`, installed by two local interpreters from the same lock,
//! and installed by uv.
use std::path::{Path, PathBuf};

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, assert_success, venv_python, write_wheels};

/// `app` needs `lib<2` before Python 3.10 and `lib>=2` from it, and `winonly` on Windows.
fn project(cx: &TestContext) {
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
    cx.run_ok(&[
        "lock",
        "--universal",
        "-r",
        "requirements.in",
        "--no-index",
        "--find-links",
        "wheels",
        "--python-version",
        "3.9",
    ]);
}

/// The `name==version` lines `export` prints for a platform and a Python.
fn exported(cx: &TestContext, platform: &str, python: &str) -> Vec<String> {
    let out = cx.run_ok(&["export", "--platform", platform, "--python-version", python]);
    out.lines()
        .filter(|l| !l.starts_with('#') && !l.trim_start().starts_with("--hash"))
        .map(|l| l.trim_end_matches(" \\").to_owned())
        .collect()
}

/// A CPython of `minor` from pyenv, if this machine has one.
fn pyenv_python(minor: &str) -> Option<PathBuf> {
    let versions = Path::new(&std::env::var_os("HOME")?).join(".pyenv/versions");
    let mut found: Vec<PathBuf> = std::fs::read_dir(versions)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{minor}."))
        })
        .map(|e| e.path().join("bin").join(format!("python{minor}")))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
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
    assert!(!cx.project().join("dx-py.dpl").exists());
    for python in ["3.9", "3.10", "3.11", "3.12", "3.13"] {
        let lib = if python == "3.9" {
            "lib==1.0"
        } else {
            "lib==2.0"
        };
        assert_eq!(
            exported(&cx, "win32", python),
            ["app==1.0", lib, "winonly==1.0"],
            "windows, {python}"
        );
        assert_eq!(
            exported(&cx, "darwin", python),
            ["app==1.0", lib],
            "macos, {python}"
        );
        assert_eq!(
            exported(&cx, "linux", python),
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
    let again = [
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
    match pyenv_python("3.9") {
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
    let cache = cx.temp.path().join("uv-cache");
    let out = dx_py_tests::uv_command(&uv, &cache)
        .current_dir(cx.project())
        .args(["venv", "uv-venv", "--python"])
        .arg(dx_py_tests::python_executable())
        .output()
        .unwrap();
    assert_success(&out, "uv venv");
    let venv = cx.project().join("uv-venv");
    let out = dx_py_tests::uv_command(&uv, &cache)
        .current_dir(cx.project())
        .args(["pip", "install", "-r", "pylock.toml", "--python"])
        .arg(venv.join("bin/python"))
        .output()
        .unwrap();
    assert_success(&out, "uv pip install -r pylock.toml");
    let got = venv_python(&venv, "import app, lib; print(lib.V)");
    assert_eq!(got.trim(), "2.0");
}
