//! Building source distributions end to end: sdists made here on the fly, served by the local
//! test index with no wheel, built by their PEP 517 backend (setuptools, fetched once with
//! `pip download`) in build environments dx-py makes itself.
use std::path::{Path, PathBuf};

use dx_py_core::testing::TestIndex;
use dx_py_tests::{
    TestContext, assert_success, fetch_wheels, printed, python, run_python, venv_python,
};

/// The build backend's wheels, once per machine; `None` (the test is skipped) when the
/// registry pip uses is unreachable.
fn backend_wheels() -> Option<PathBuf> {
    let dir = fetch_wheels("build-backend", &["setuptools==75.3.0", "wheel==0.45.1"]);
    if dir.is_none() {
        eprintln!("skipped: setuptools could not be downloaded with pip");
    }
    dir
}

/// Writes the sdist `{dist}-{version}.tar.gz` into `index` from `files` (path, text), with a
/// `PKG-INFO` whose dependencies are not declared static (so that only a build can tell them).
fn write_sdist(index: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
    let dist = name.replace('-', "_");
    let top = format!("{dist}-{version}");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join(&top);
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(
        root.join("PKG-INFO"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
    )
    .unwrap();
    let archive = index.join(format!("{top}.tar.gz"));
    let out = run_python(
        Path::new(&python()),
        &format!(
            "import tarfile\nwith tarfile.open({:?}, 'w:gz') as t: t.add({:?}, arcname={top:?})",
            archive.display().to_string(),
            root.display().to_string(),
        ),
    );
    assert_success(&out, "tar the sdist");
}

/// A pure-Python setuptools project whose module says `greeting`.
fn pure_sdist(index: &Path, name: &str, greeting: &str) {
    let module = name.replace('-', "_");
    write_sdist(
        index,
        name,
        "1.0",
        &[
            (
                "pyproject.toml",
                &format!(
                    "[build-system]\nrequires = [\"setuptools>=61\"]\n\
                     build-backend = \"setuptools.build_meta\"\n\n\
                     [project]\nname = \"{name}\"\nversion = \"1.0\"\n"
                ),
            ),
            (
                &format!("{module}/__init__.py"),
                &format!("GREETING = {greeting:?}\n"),
            ),
        ],
    );
}

/// An index directory holding the backend's wheels and nothing else yet.
fn index_dir(cx: &TestContext, wheels: &Path) -> PathBuf {
    let dir = cx.temp.path().join("index");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(wheels).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".whl") {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    dir
}

/// A test context and its index directory holding the backend's wheels; `None` when they
/// cannot be downloaded.
fn world() -> Option<(TestContext, PathBuf)> {
    let wheels = backend_wheels()?;
    let cx = TestContext::new();
    let index = index_dir(&cx, &wheels);
    Some((cx, index))
}

/// `dx-py install -v -r requirements.txt` of `reqs` in `dir` (made), against `url`.
fn install(
    cx: &TestContext,
    dir: &Path,
    reqs: &str,
    url: &str,
    more: &[&str],
) -> std::process::Output {
    cx.install_requirements(dir, reqs, url, more)
}

#[test]
fn an_sdist_only_package_is_built_installed_and_built_once() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    pure_sdist(&index_path, "hello-sdist", "hello from an sdist");
    pure_sdist(&index_path, "hello-two", "two");
    let index = TestIndex::serve(&index_path).unwrap();
    let url = index.index_url();

    let first = cx.temp.path().join("first");
    let out = install(&cx, &first, "hello-sdist\n", &url, &[]);
    assert_success(&out, "install of an sdist-only package");
    let text = printed(&out);
    assert!(text.contains("Built 1 source distribution"), "{text}");
    assert!(text.contains("hello_sdist-1.0-py3-none-any.whl"), "{text}");
    let greeting = venv_python(
        &first.join(".venv"),
        "import hello_sdist; print(hello_sdist.GREETING)",
    );
    assert_eq!(greeting.trim(), "hello from an sdist");

    // Another project, the same cache: the built wheel is reused, nothing is built.
    let second = cx.temp.path().join("second");
    let out = install(&cx, &second, "hello-sdist==1.0\n", &url, &[]);
    assert_success(&out, "second install");
    let text = printed(&out);
    assert!(!text.contains("Built "), "{text}");
    assert!(
        text.contains("builds: 0 built, 0 metadata prepared"),
        "{text}"
    );
    venv_python(&second.join(".venv"), "import hello_sdist");

    // A new sdist with the same build requirements: its build environment is the cached lock
    // and layout (no resolution, one symlink).
    let third = cx.temp.path().join("third");
    let out = install(&cx, &third, "hello-two\n", &url, &[]);
    assert_success(&out, "install of a second sdist");
    let text = printed(&out);
    assert!(text.contains("Built 1 source distribution"), "{text}");
    assert!(text.contains("build environments: 0 resolved"), "{text}");
    assert_eq!(
        venv_python(
            &third.join(".venv"),
            "import hello_two; print(hello_two.GREETING)"
        )
        .trim(),
        "two"
    );

    // `--no-build` refuses, naming the package and the way out.
    let fourth = cx.temp.path().join("fourth");
    let out = install(&cx, &fourth, "hello-sdist\n", &url, &["--no-build"]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("`hello-sdist==1.0` needs a build from source")
            && text.contains("--no-build"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_failing_build_shows_the_backends_error() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    // No pyproject.toml: the setuptools legacy backend runs setup.py, which fails.
    write_sdist(
        &index_path,
        "hello-broken",
        "1.0",
        &[(
            "setup.py",
            "raise RuntimeError('hello-broken refuses to build on purpose')\n",
        )],
    );
    let index = TestIndex::serve(&index_path).unwrap();
    let dir = cx.temp.path().join("p");
    let out = install(&cx, &dir, "hello-broken\n", &index.index_url(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("Building `hello-broken==1.0` failed"),
        "{text}"
    );
    assert!(text.contains("refuses to build on purpose"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    // The log is kept where the message says; no build is left half-written in the cache.
    let logs = cx.cache_dir().join("builds/logs/hello-broken-1.0.log");
    assert!(logs.is_file(), "{text}");
    assert!(!cx.cache_dir().join("builds/wheels").exists());
}

#[test]
fn an_sdist_with_a_c_extension_is_compiled() {
    if dx_py_tests::on_path("gcc").is_err() {
        eprintln!("skipped: no C compiler");
        return;
    }
    let Some((cx, index_path)) = world() else {
        return;
    };
    write_sdist(
        &index_path,
        "hello-c",
        "1.0",
        &[
            (
                "pyproject.toml",
                "[build-system]\nrequires = [\"setuptools>=61\"]\n\
                 build-backend = \"setuptools.build_meta\"\n\n\
                 [project]\nname = \"hello-c\"\nversion = \"1.0\"\n",
            ),
            (
                "setup.py",
                "from setuptools import Extension, setup\n\
                 setup(ext_modules=[Extension('hello_c', ['hello_c.c'])])\n",
            ),
            (
                "hello_c.c",
                "#include <Python.h>\n\
                 static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }\n\
                 static PyMethodDef methods[] = {{\"answer\", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};\n\
                 static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, \"hello_c\", NULL, -1, methods};\n\
                 PyMODINIT_FUNC PyInit_hello_c(void) { return PyModule_Create(&module); }\n",
            ),
        ],
    );
    let index = TestIndex::serve(&index_path).unwrap();
    let dir = cx.temp.path().join("p");
    let out = install(&cx, &dir, "hello-c\n", &index.index_url(), &[]);
    assert_success(&out, "install of an sdist with a C extension");
    let text = printed(&out);
    assert!(text.contains("Built 1 source distribution"), "{text}");
    assert!(!text.contains("py3-none-any"), "a platform wheel: {text}");
    let answer = venv_python(
        &dir.join(".venv"),
        "import hello_c; print(hello_c.answer())",
    );
    assert_eq!(answer.trim(), "42");
}

/// The pids of `pid`'s children (Linux: `/proc/{pid}/task/*/children`).
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Ctrl-C during a build (SIGINT to dx-py and the backend, as a terminal sends it to the
/// foreground group) leaves no entry in the built-wheel cache, only an owned temporary that the
/// next command sweeps.
#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_build_leaves_nothing_half_written() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    let started = cx.temp.path().join("backend-started");
    write_sdist(
        &index_path,
        "hello-slow",
        "1.0",
        &[(
            "setup.py",
            &format!(
                "import pathlib, time\npathlib.Path({:?}).write_text('x')\ntime.sleep(60)\n",
                started.display().to_string()
            ),
        )],
    );
    let index = TestIndex::serve(&index_path).unwrap();
    let dir = cx.temp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), "hello-slow\n").unwrap();
    let mut child = cx
        .dx_py()
        .current_dir(&dir)
        .args([
            "install",
            "-r",
            "requirements.txt",
            "--index-url",
            &index.index_url(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the backend never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "dx-py ended before the build"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut pids = vec![child.id()];
    pids.extend(children(child.id()));
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    // The backend went with it (it was interrupted too).
    for pid in &pids[1..] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "backend {pid} still runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let builds = cx.cache_dir().join("builds");
    assert!(
        !builds.join("wheels").exists(),
        "a built wheel was published"
    );
    let temps = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp"))
            .collect()
    };
    assert_eq!(temps(&builds).len(), 1, "the interrupted build's scratch");
    cx.run_ok(&["cache", "clean", "--layouts"]);
    assert_eq!(temps(&builds), Vec::<String>::new(), "swept");
}

/// `--no-build-isolation` builds with the target venv's own packages: no build environment is
/// made. Config settings are part of the built-wheel cache key: other settings build again.
#[test]
fn without_isolation_the_target_venvs_backend_builds() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    write_sdist(
        &index_path,
        "hello-shared",
        "1.0",
        &[
            (
                "setup.py",
                "from setuptools import setup\n\
                 setup(name='hello-shared', version='1.0', py_modules=['hello_shared'])\n",
            ),
            ("hello_shared.py", "ANSWER = 7\n"),
        ],
    );
    let index = TestIndex::serve(&index_path).unwrap();
    let url = index.index_url();
    let dir = cx.temp.path().join("p");
    let out = install(&cx, &dir, "setuptools\nwheel\n", &url, &[]);
    assert_success(&out, "install of the backend into the target venv");
    let out = install(&cx, &dir, "hello-shared\n", &url, &["--no-build-isolation"]);
    assert_success(&out, "install without build isolation");
    let text = printed(&out);
    assert!(text.contains("Built 1 source distribution"), "{text}");
    assert!(
        text.contains("build environments: 0 resolved, 0 layout hits"),
        "{text}"
    );
    let answer = venv_python(
        &dir.join(".venv"),
        "import hello_shared; print(hello_shared.ANSWER)",
    );
    assert_eq!(answer.trim(), "7");

    let out = install(&cx, &dir, "hello-shared\n", &url, &["-C", "dx-py-test=1"]);
    assert_success(&out, "install with config settings");
    assert!(
        printed(&out).contains("Built 1 source distribution"),
        "{}",
        printed(&out)
    );
    let out = install(&cx, &dir, "hello-shared\n", &url, &["-C", "novalue"]);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        printed(&out).contains("expected `KEY=VALUE`"),
        "{}",
        printed(&out)
    );
}
