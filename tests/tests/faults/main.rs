//! Fault injection end to end: the real binary interrupted, damaged or starved, and what the
//! next command makes of it. Each module is one kind of fault; what they share is here.
mod concurrent;
mod crafted;
mod flips;
mod full_disk;
mod kill;

use std::path::{Path, PathBuf};
use std::process::Command;

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, check_site_packages, layout_site_packages, pins_for, venv_python, write_wheels,
};

/// One set of wheels, all pinned in its requirements, and the modules that prove a venv of
/// it works.
struct Project {
    wheels: PathBuf,
    imports: &'static str,
}

impl Project {
    /// The real requests closure (fetched once); `None` (the test skips) when it cannot be.
    fn requests() -> Option<Self> {
        let Some(wheels) = dx_py_tests::fetch_wheels("requests", &["requests==2.32.3"]) else {
            eprintln!("skipping: wheels could not be downloaded");
            return None;
        };
        Some(Self {
            wheels,
            imports: "requests, charset_normalizer, idna, urllib3, certifi",
        })
    }

    /// Synthetic wheels written into `dir`.
    fn synthetic(dir: &Path, wheels: &[WheelBuilder], imports: &'static str) -> Self {
        Self {
            wheels: write_wheels(dir, wheels),
            imports,
        }
    }

    /// A fresh context whose project directory has the requirements.
    fn context(&self) -> TestContext {
        let cx = TestContext::new();
        self.write_requirements(&cx.project());
        cx
    }

    /// Creates `dir` with this project's `requirements.txt` in it.
    fn write_requirements(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("requirements.txt"), pins_for(&self.wheels)).unwrap();
    }

    /// `VERB -r requirements.txt --no-index --find-links WHEELS` plus `extra`.
    fn args<'a>(&'a self, verb: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![verb];
        args.extend(extra);
        args.extend([
            "-r",
            "requirements.txt",
            "--no-index",
            "--find-links",
            self.wheels.to_str().expect("utf-8 path"),
        ]);
        args
    }

    /// The wheel files.
    fn wheel_files(&self) -> Vec<PathBuf> {
        let mut wheels: Vec<PathBuf> = std::fs::read_dir(&self.wheels)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "whl"))
            .collect();
        wheels.sort();
        wheels
    }

    /// Asserts that `venv` (installed, not mounted) imports this project's modules and that its
    /// layout holds exactly the wheels' files, each with RECORD's sha256, plus their bytecode.
    fn check_venv(&self, venv: &Path, what: &str) {
        venv_python(venv, &format!("import {}", self.imports));
        check_site_packages(&layout_site_packages(venv), &self.wheel_files(), what);
    }
}

/// What a killed or failed process can leave in a cache: every temporary (any name starting
/// with `.tmp`, at any depth) and every record of a writing process.
fn leftovers(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![cache.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_name().to_string_lossy().starts_with(".tmp")
                || dir.file_name().is_some_and(|n| n == ".writers")
            {
                found.push(path);
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found
}

/// Asserts that `cache` holds no temporary or writer record and that `dx-py store verify`
/// passes on it (run through `cx`, whose cache it must be unless `DX_PY_CACHE_DIR` says so).
fn assert_cache_sound(cx: &TestContext, cache: &Path, what: &str) {
    let left = leftovers(cache);
    assert!(left.is_empty(), "{what}: left behind {left:#?}");
    let out = cx
        .dx_py()
        .env("DX_PY_CACHE_DIR", cache)
        .args(["store", "verify"])
        .output()
        .unwrap();
    dx_py_tests::assert_success(&out, &format!("store verify after {what}"));
}

/// Unmounts `venv` with `dx-py unmount` (then a lazy `umount` in case the server is gone).
fn unmount(cx: &TestContext, venv: &Path) {
    let _ = cx.dx_py().arg("unmount").arg(venv).output();
    let _ = Command::new("umount").arg("-l").arg(venv).output();
}

/// Unmounts a venv on drop, also when an assertion fails.
struct Unmount<'a> {
    cx: &'a TestContext,
    venv: PathBuf,
}

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        unmount(self.cx, &self.venv);
    }
}
