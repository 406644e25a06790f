//! What users see of the commands besides their main work: refusals that say how to proceed,
//! failures that leave nothing half-made, repeated commands that stay quiet, files made with
//! the modes users expect, counts in plain English.
use std::path::{Path, PathBuf};
use std::process::Command;

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, assert_printed, can_run, dx_py_bin, on_path, printed, root, write_wheels,
};

/// One local wheel, `solo 1.0`, and a requirements file pinning it, in the project.
fn solo(cx: &TestContext) -> PathBuf {
    std::fs::write(cx.project().join("requirements.txt"), "solo==1.0\n").unwrap();
    write_wheels(
        &cx.temp.path().join("wheels"),
        &[WheelBuilder::new("solo", "1.0").file("solo.py", b"X = 1\n")],
    )
}

/// `dx-py lock` of the project's requirements from a directory of wheels (which follows).
const LOCK: [&str; 5] = [
    "lock",
    "-r",
    "requirements.txt",
    "--no-index",
    "--find-links",
];

#[test]
fn venv_replaces_an_existing_venv_only_with_clear() {
    let cx = TestContext::new();
    cx.run_ok(&["venv", "v"]);
    let mine = cx.project().join("v/mine.txt");
    std::fs::write(&mine, b"keep me").unwrap();
    let err = cx.run_err(&["venv", "v"], 1);
    assert!(
        err.contains("already exists") && err.contains("--clear"),
        "{err}"
    );
    assert!(mine.exists(), "refused, yet the venv was changed");
    cx.run_ok(&["venv", "v", "--clear"]);
    assert!(!mine.exists());
    assert!(cx.project().join("v/pyvenv.cfg").is_file());
    // An empty directory is no venv to lose: used as it is.
    std::fs::create_dir(cx.project().join("empty")).unwrap();
    cx.run_ok(&["venv", "empty"]);
    assert!(cx.project().join("empty/pyvenv.cfg").is_file());
}

#[test]
fn a_failed_install_removes_the_venv_it_made_and_nothing_else() {
    let cx = TestContext::new();
    let wheels = solo(&cx);
    let out = cx.dx_py().args(LOCK).arg(&wheels).output().unwrap();
    dx_py_tests::assert_success(&out, "dx-py lock");
    // A fresh cache and no wheel left: the install fails after making the venv.
    std::fs::remove_dir_all(&wheels).unwrap();
    let other_cache = cx.temp.path().join("other-cache");
    let install = |venv: &str| {
        let out = cx
            .dx_py()
            .env("DX_PY_CACHE_DIR", &other_cache)
            .args(["install", "--venv", venv])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("No source for"), "{err}");
    };
    install("new");
    assert!(
        !cx.project().join("new").exists(),
        "a half-made venv is left"
    );
    // A directory that was there (empty) stays, emptied again.
    std::fs::create_dir(cx.project().join("empty")).unwrap();
    install("empty");
    assert_eq!(
        std::fs::read_dir(cx.project().join("empty"))
            .unwrap()
            .count(),
        0
    );
    // A venv that was there before is the user's: kept as it was.
    cx.run_ok(&["venv", "before"]);
    install("before");
    assert!(cx.project().join("before/pyvenv.cfg").is_file());
    assert!(cx.project().join("before/bin/activate").is_file());
}

/// The mode of `path`'s permission bits.
fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

#[test]
fn lock_files_get_the_mode_the_umask_gives() {
    let cx = TestContext::new();
    let wheels = solo(&cx);
    for (umask, want) in [("022", 0o644), ("027", 0o640)] {
        // `dx-py lock` under this umask (set by the shell that then becomes dx-py).
        let out = Command::new("sh")
            .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
            .arg(dx_py_bin())
            .args(LOCK)
            .arg(&wheels)
            .current_dir(cx.project())
            .env("DX_PY_CACHE_DIR", cx.cache_dir())
            .output()
            .unwrap();
        dx_py_tests::assert_success(&out, "dx-py lock");
        for file in ["pylock.toml", "dx-py.dpl"] {
            let got = mode(&cx.project().join(file));
            assert_eq!(got, want, "{file} under umask {umask}: {got:o}");
        }
    }
}

#[test]
fn counts_of_one_are_singular() {
    let cx = TestContext::new();
    let wheels = solo(&cx);
    let fl = wheels.to_str().unwrap();
    let out = cx.dx_py().args(LOCK).arg(fl).output().unwrap();
    assert_printed(&out, "Locked 1 package in");
    let out = cx.dx_py().args(["store", "verify"]).output().unwrap();
    assert_printed(&out, "1 object verified");
    let out = cx
        .dx_py()
        .args(["install", "--no-compile-bytecode", "-v", "--find-links", fl])
        .output()
        .unwrap();
    let text = printed(&out);
    assert!(text.contains("Installed 1 package into"), "{text}");
    assert!(text.contains("store: 1 hit, 0 misses"), "{text}");
    let out = cx
        .dx_py()
        .args(["dpl", "build", "pylock.toml", "-o", "copy.dpl"])
        .output()
        .unwrap();
    assert_printed(&out, "(1 package)");
    let dump = cx.run_ok(&["dpl", "dump", "copy.dpl"]);
    assert!(dump.contains(", 1 package, "), "{dump}");
    // And more than one is plural.
    let two = write_wheels(
        &cx.temp.path().join("two"),
        &[
            WheelBuilder::new("solo", "1.0").file("solo.py", b"X = 1\n"),
            WheelBuilder::new("duo", "1.0").file("duo.py", b""),
        ],
    );
    std::fs::write(cx.project().join("two.txt"), "solo==1.0\nduo==1.0\n").unwrap();
    let out = cx
        .dx_py()
        .args(["install", "-r", "two.txt", "--venv", "two", "--no-index"])
        .arg("--find-links")
        .arg(&two)
        .output()
        .unwrap();
    assert_printed(&out, "Installed 2 packages into");
}

#[test]
fn unmount_of_a_venv_that_is_not_mounted_succeeds_and_says_so() {
    let cx = TestContext::new();
    cx.run_ok(&["venv", "v"]);
    let out = cx.dx_py().args(["unmount", "v"]).output().unwrap();
    dx_py_tests::assert_success(&out, "dx-py unmount of an unmounted venv");
    assert_printed(&out, "is not mounted (already unmounted)");
    // A path that is no venv at all is still an error.
    std::fs::create_dir(cx.project().join("plain")).unwrap();
    std::fs::write(cx.project().join("plain/notes.txt"), b"").unwrap();
    for path in ["plain", "absent"] {
        let err = cx.run_err(&["unmount", path], 1);
        assert!(err.contains("is not a dx-py mount"), "{err}");
    }
}

/// A directory nothing may be written into, whoever runs the test: a read-only bind mount of
/// itself for root (whom permissions do not stop), mode 0o555 for anyone else. Undone on drop.
struct ReadOnlyDir {
    path: PathBuf,
    mounted: bool,
}

impl ReadOnlyDir {
    fn new(path: &Path) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let mounted = root().is_ok();
        let dir = Self {
            path: path.to_path_buf(),
            mounted,
        };
        if mounted {
            for args in [&["--bind"][..], &["-o", "remount,ro,bind"]] {
                let out = Command::new("mount")
                    .args(args)
                    .arg(path)
                    .arg(path)
                    .output()
                    .unwrap();
                dx_py_tests::assert_success(&out, "mount");
            }
        } else {
            set_mode(path, 0o555);
        }
        dir
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        } else {
            set_mode(&self.path, 0o755);
        }
    }
}

/// Calls in an strace log that would change something at or under `dir`.
fn writes_under(trace: &str, dir: &Path) -> Vec<String> {
    const CHANGING: [&str; 14] = [
        "mkdir(",
        "mkdirat(",
        "rename(",
        "renameat(",
        "renameat2(",
        "link(",
        "linkat(",
        "unlink(",
        "unlinkat(",
        "symlink(",
        "symlinkat(",
        "creat(",
        "chmod(",
        "fchmodat(",
    ];
    let dir = dir.to_str().unwrap();
    trace
        .lines()
        .filter(|l| l.contains(dir))
        .filter(|l| {
            let call = l.split_whitespace().nth(1).unwrap_or("");
            CHANGING.iter().any(|c| call.starts_with(c))
                || (call.starts_with("open")
                    && ["O_CREAT", "O_WRONLY", "O_RDWR"]
                        .iter()
                        .any(|f| l.contains(f)))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_read_only_store_that_lacks_a_package_is_refused_before_any_write() {
    let cx = TestContext::new();
    let wheels = solo(&cx);
    let store = cx.temp.path().join("shared-store");
    let _ro = ReadOnlyDir::new(&store);
    // Under strace where it is there, to see that not even a failing write is tried.
    let traced = can_run(on_path("strace"));
    let trace = cx.temp.path().join("trace.txt");
    let mut cmd = if traced {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-e", "trace=%file", "-o"])
            .arg(&trace)
            .arg(dx_py_bin());
        c
    } else {
        Command::new(dx_py_bin())
    };
    let out = cmd
        .args([
            "install",
            "-r",
            "requirements.txt",
            "--no-index",
            "--venv",
            "v",
        ])
        .arg("--find-links")
        .arg(&wheels)
        .arg("--store")
        .arg(&store)
        .current_dir(cx.project())
        .env("DX_PY_CACHE_DIR", cx.cache_dir())
        .env_remove("DX_PY_STORE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("read-only store") && err.contains("`solo` 1.0"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
    assert!(!cx.project().join("v").exists());
    if traced {
        let log = std::fs::read_to_string(&trace).unwrap();
        assert_eq!(writes_under(&log, &store), Vec::<String>::new());
        // The check sees writes: the same run wrote into its own cache (the cache lock).
        assert!(
            !writes_under(&log, &cx.cache_dir()).is_empty(),
            "the trace shows no writes at all:\n{log}"
        );
    }
}
