//! `dx-py export` end to end: a universal `pylock.toml` written by uv, read by the real binary
//! for other platforms and Python versions.
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, write_wheels};

/// `app` needs `lib<2` before Python 3.10 and `lib>=2` from it, and `winonly` on Windows.
fn universal_lock(cx: &TestContext, uv: &std::path::Path) {
    write_wheels(
        &cx.project().join("wheels"),
        &[
            WheelBuilder::new("app", "1.0")
                .requires_dist("lib<2; python_version < '3.10'")
                .requires_dist("lib>=2; python_version >= '3.10'")
                .requires_dist("winonly; sys_platform == 'win32'")
                .file("app.py", b""),
            WheelBuilder::new("lib", "1.0").file("lib.py", b""),
            WheelBuilder::new("lib", "2.0").file("lib.py", b""),
            WheelBuilder::new("winonly", "1.0").file("winonly.py", b""),
        ],
    );
    std::fs::write(cx.project().join("requirements.in"), "app\n").unwrap();
    dx_py_tests::uv_compile_universal(
        uv,
        &cx.temp.path().join("uv-cache"),
        &cx.project(),
        &["--python-version".as_ref(), "3.9".as_ref()],
    );
}

/// The `name==version` lines of an export.
fn pins(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.starts_with('#') && !l.trim_start().starts_with("--hash"))
        .map(|l| l.trim_end_matches(" \\"))
        .collect()
}

#[test]
fn a_universal_lock_is_read_for_other_platforms_and_pythons() {
    let Some(uv) = dx_py_tests::uv() else {
        return;
    };
    let cx = TestContext::new();
    universal_lock(&cx, &uv);
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
    universal_lock(&cx, &uv);
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
