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

/// A setuptools project `name` 1.0 (`pyproject.toml` with a `[project]` table) holding `files`.
fn setuptools_sdist(index: &Path, name: &str, files: &[(&str, &str)]) {
    let pyproject = format!(
        "[build-system]\nrequires = [\"setuptools>=61\"]\n\
         build-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"{name}\"\nversion = \"1.0\"\n"
    );
    let mut all = vec![("pyproject.toml", pyproject.as_str())];
    all.extend_from_slice(files);
    write_sdist(index, name, "1.0", &all);
}

/// A pure-Python setuptools project whose module says `greeting`.
fn pure_sdist(index: &Path, name: &str, greeting: &str) {
    let module = format!("{}/__init__.py", name.replace('-', "_"));
    setuptools_sdist(
        index,
        name,
        &[(&module, &format!("GREETING = {greeting:?}\n"))],
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

/// `module.attr` as printed by the Python of `dir`'s `.venv`.
fn venv_attr(dir: &Path, module: &str, attr: &str) -> String {
    let code = format!("import {module}; print({module}.{attr})");
    venv_python(&dir.join(".venv"), &code).trim().to_owned()
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

    // The build environment's layout is shared and compiled once (setuptools' `.pyc` files
    // come from the store's bytecode packs); hooks run with `-B`, so they write nothing into it.
    let layouts = cx.cache_dir().join("layouts");
    let env_layout = std::fs::read_dir(&layouts)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|sp| sp.join("setuptools").is_dir())
        .expect("the build environment's layout");
    let env_files = || -> Vec<String> { dx_py_tests::snapshot(&env_layout).into_keys().collect() };
    let before = env_files();
    let tag = dx_py_tests::cache_tag();
    assert!(
        before
            .iter()
            .any(|p| p == &format!("setuptools/__pycache__/build_meta.{tag}.pyc")),
        "the build environment is not compiled"
    );

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
    assert!(
        text.contains("build environments: 0 resolved, 1 layout hits"),
        "{text}"
    );
    assert_eq!(
        env_files(),
        before,
        "a build wrote into the shared environment"
    );
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

    // The pins of `second` again, the index gone: their lock (made by the resolver, since the
    // pin has only an sdist) is current and the store has the package: nothing is asked of
    // the index.
    drop(index);
    std::fs::remove_dir_all(second.join(".venv")).unwrap();
    let out = install(&cx, &second, "hello-sdist==1.0\n", &url, &[]);
    assert_success(&out, "install of current pins without an index");
    assert!(!printed(&out).contains("Locking"), "{}", printed(&out));
    venv_python(&second.join(".venv"), "import hello_sdist");
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

    // A backend that takes too long is stopped at `--build-timeout`, naming the limit, with
    // the child it started.
    let pids = cx.temp.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let setup = stuck_setup("hello-stuck", "True", &pids.join("stuck"));
    write_sdist(&index_path, "hello-stuck", "1.0", &[("setup.py", &setup)]);
    let started = std::time::Instant::now();
    let out = install(
        &cx,
        &dir,
        "hello-stuck\n",
        &index.index_url(),
        &["--build-timeout", "2"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("Building `hello-stuck==1.0` timed out")
            && text.contains("ran longer than 2 s")
            && text.contains("--build-timeout"),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "{text}"
    );
    #[cfg(target_os = "linux")]
    assert_ended(&stuck_pids(&pids), "after the timeout");
    let out = install(
        &cx,
        &dir,
        "hello-stuck\n",
        &index.index_url(),
        &["--build-timeout", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
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

/// A `setup.py` for `name` 1.0 that, when the Python expression `when` holds, starts a child
/// (`sleep 300`), writes `{driver pid} {child pid}` to `pids` and sleeps: a backend whose own
/// children must be stopped with it.
fn stuck_setup(name: &str, when: &str, pids: &Path) -> String {
    format!(
        "import os, subprocess, time\n\
         if {when}:\n\
         \x20   child = subprocess.Popen(['sleep', '300'])\n\
         \x20   open({p:?} + '.part', 'w').write(f'{{os.getpid()}} {{child.pid}}')\n\
         \x20   os.replace({p:?} + '.part', {p:?})\n\
         \x20   time.sleep(300)\n\
         from setuptools import setup\n\
         setup(name={name:?}, version='1.0')\n",
        p = pids.display().to_string()
    )
}

/// The pids a [`stuck_setup`] wrote into `dir`'s files.
fn stuck_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".part"))
        .flat_map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            text.split_whitespace()
                .map(|p| p.parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits up to 10 s for each of `pids` to end (Linux: `/proc`; a zombie has ended).
#[cfg(target_os = "linux")]
fn assert_ended(pids: &[u32], what: &str) {
    // Judged as the owners of temporaries are: a zombie has ended.
    let alive = |&pid: &u32| dx_py_core::temp::Owner { pid, start: 0 }.is_alive() != Some(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids.iter().any(alive) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<&u32> = pids.iter().filter(|p| alive(p)).collect();
    assert!(left.is_empty(), "{what}: processes {left:?} still run");
}

/// Every temporary (`.tmp…`) directly inside the cache's directories where dx-py makes them.
fn temporaries(cache: &Path) -> Vec<PathBuf> {
    dx_py_core::cache::Cache::new(cache, None)
        .temp_dirs()
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .map(|e| e.path())
        .collect()
}

/// Runs `cmd` with `DX_PY_TEST_SLOW` set until `backends` [`stuck_setup`] backends wrote their
/// pids into `started`, then sends dx-py (alone) SIGINT: it must exit 130 within 15 s, the
/// backends and their children must be gone and no temporary may be left in `cache`.
#[cfg(target_os = "linux")]
fn interrupt_when_stuck(
    mut cmd: std::process::Command,
    started: &Path,
    backends: usize,
    cache: &Path,
) {
    let mut child = cmd
        .env("DX_PY_TEST_SLOW", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while stuck_pids(started).len() < 2 * backends {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the backends never started");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pids = stuck_pids(started);
    let interrupted = std::time::Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(
        interrupted.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}",
        interrupted.elapsed()
    );
    assert_ended(&pids, "after Ctrl-C");
    assert_eq!(temporaries(cache), Vec::<PathBuf>::new());
}

/// Ctrl-C (SIGINT to dx-py alone, as `kill -INT` sends it) while two builds run in parallel:
/// dx-py stops every backend with the children it started, exits 130 at once, and leaves no
/// built wheel and no temporary; the same install then builds both.
#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_build_stops_its_backends_and_leaves_nothing_behind() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    let started = cx.temp.path().join("started");
    std::fs::create_dir_all(&started).unwrap();
    // Slow only when asked: the lock that names them is made quickly first.
    let names = ["hello-slow", "hello-slower"];
    for name in names {
        let setup = stuck_setup(
            name,
            "os.environ.get('DX_PY_TEST_SLOW')",
            &started.join(name),
        );
        write_sdist(&index_path, name, "1.0", &[("setup.py", &setup)]);
    }
    let index = TestIndex::serve(&index_path).unwrap();
    let dir = cx.temp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), names.join("\n")).unwrap();
    let out = cx
        .dx_py()
        .current_dir(&dir)
        .args(["lock", "-r", "requirements.txt"])
        .args(["--index-url", &index.index_url()])
        .output()
        .unwrap();
    assert_success(&out, "lock of the slow sdists");
    // A machine that has not built them: the install builds both at once.
    let other = TestContext::new();
    let both = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) > 1;
    let install = || {
        let mut cmd = other.dx_py();
        cmd.current_dir(&dir)
            .args(["install", "--lock", "pylock.toml"])
            .args(["--index-url", &index.index_url()]);
        cmd
    };
    let want = if both { 2 } else { 1 };
    interrupt_when_stuck(install(), &started, want, &other.cache_dir());
    assert!(
        built_wheels(&other.cache_dir()).is_empty(),
        "a built wheel was published"
    );

    let out = install().output().unwrap();
    assert_success(&out, "install after the interruption");
    assert!(
        printed(&out).contains("Built 2 source distributions"),
        "{}",
        printed(&out)
    );
}

/// The same for a local project: SIGINT to `dx-py sync` while its editable build's backend
/// (and the child it started) runs ends both, exits 130 and leaves no local build and no
/// temporary; the next sync builds and installs the project.
#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_sync_of_a_local_project_leaves_nothing_behind() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    let index = TestIndex::serve(&index_path).unwrap();
    let started = cx.temp.path().join("started");
    std::fs::create_dir_all(&started).unwrap();
    let dir = cx.temp.path().join("proj");
    std::fs::create_dir_all(dir.join("proj")).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\"]\n\
         build-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"proj\"\nversion = \"0.1\"\n\n\
         [tool.setuptools]\npackages = [\"proj\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("proj/__init__.py"), "GREETING = 'hi'\n").unwrap();
    let setup = stuck_setup(
        "proj",
        "os.environ.get('DX_PY_TEST_SLOW')",
        &started.join("proj"),
    );
    std::fs::write(dir.join("setup.py"), setup).unwrap();
    let sync = || {
        let mut cmd = cx.dx_py();
        cmd.current_dir(&dir)
            .args(["sync", "--index-url", &index.index_url()]);
        cmd
    };
    interrupt_when_stuck(sync(), &started, 1, &cx.cache_dir());
    let local = cx.cache_dir().join("builds/local");
    let entries: Vec<_> = std::fs::read_dir(&local)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        entries.is_empty(),
        "a local build was published: {entries:?}"
    );

    let out = sync().output().unwrap();
    assert_success(&out, "sync after the interruption");
    assert_eq!(
        venv_python(&dir.join(".venv"), "import proj; print(proj.GREETING)").trim(),
        "hi"
    );
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
    // The target venv lacks the backend: refused, naming it and the way out.
    std::fs::create_dir_all(&dir).unwrap();
    let made = cx
        .dx_py()
        .current_dir(&dir)
        .args(["venv", ".venv"])
        .output()
        .unwrap();
    assert_success(&made, "venv");
    let out = install(&cx, &dir, "hello-shared\n", &url, &["--no-build-isolation"]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("its build backend `setuptools.build_meta:__legacy__` is not installed")
            && text.contains("--no-build-isolation")
            && text.contains("hello-shared==1.0"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
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

/// `--config-settings KEY=VALUE` reach every hook of the backend as PEP 517 says: a dict of
/// strings, a key given twice a list. The sdist's in-tree backend wraps setuptools and writes
/// down what each hook received.
#[test]
fn config_settings_reach_every_hook() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    let received = cx.temp.path().join("received.jsonl");
    let backend = format!(
        "import json\n\
         from setuptools import build_meta as _b\n\
         def _got(hook, settings):\n\
         \x20   with open({:?}, 'a') as f:\n\
         \x20       f.write(json.dumps([hook, settings]) + '\\n')\n\
         def get_requires_for_build_wheel(config_settings=None):\n\
         \x20   _got('get_requires_for_build_wheel', config_settings)\n\
         \x20   return _b.get_requires_for_build_wheel()\n\
         def prepare_metadata_for_build_wheel(d, config_settings=None):\n\
         \x20   _got('prepare_metadata_for_build_wheel', config_settings)\n\
         \x20   return _b.prepare_metadata_for_build_wheel(d)\n\
         def build_wheel(d, config_settings=None, metadata_directory=None):\n\
         \x20   _got('build_wheel', config_settings)\n\
         \x20   return _b.build_wheel(d, None, metadata_directory)\n",
        received.display().to_string()
    );
    write_sdist(
        &index_path,
        "hello-settings",
        "1.0",
        &[
            (
                "pyproject.toml",
                "[build-system]\nrequires = [\"setuptools>=61\"]\n\
                 build-backend = \"recording_backend\"\nbackend-path = [\".\"]\n\n\
                 [project]\nname = \"hello-settings\"\nversion = \"1.0\"\n\n\
                 [tool.setuptools]\npackages = [\"hello_settings\"]\n",
            ),
            ("recording_backend.py", &backend),
            ("hello_settings/__init__.py", "ANSWER = 1\n"),
        ],
    );
    let index = TestIndex::serve(&index_path).unwrap();
    let dir = cx.temp.path().join("p");
    let flags = ["-C", "flavour=mint", "-C", "opt=a", "-C", "opt=b=c"];
    let out = install(&cx, &dir, "hello-settings\n", &index.index_url(), &flags);
    assert_success(&out, "install with config settings");
    venv_python(&dir.join(".venv"), "import hello_settings");
    let text = std::fs::read_to_string(&received).unwrap();
    // Each line is `[hook, settings]` as Python's `json.dumps` writes it.
    assert!(text.contains("[\"build_wheel\", "), "{text}");
    for line in text.lines() {
        assert!(
            line.ends_with(", {\"flavour\": \"mint\", \"opt\": [\"a\", \"b=c\"]}]"),
            "{text}"
        );
    }
}

/// A setuptools project whose `setup.py`, when `DX_PY_TEST_RENDEZVOUS` names a directory,
/// marks its start there and waits (30 s at most) for every other such build to start: builds
/// that run one after the other fail.
fn rendezvous_sdist(index: &Path, name: &str, others: &[&str]) {
    let module = name.replace('-', "_");
    let setup = format!(
        "import os, pathlib, time\n\
         from setuptools import setup\n\
         d = os.environ.get('DX_PY_TEST_RENDEZVOUS')\n\
         if d:\n\
         \x20   pathlib.Path(d, {name:?}).write_text('started')\n\
         \x20   end = time.time() + 30\n\
         \x20   while not all(pathlib.Path(d, o).exists() for o in {others:?}):\n\
         \x20       if time.time() > end:\n\
         \x20           raise SystemExit('the other builds never started: builds ran one at a time')\n\
         \x20       time.sleep(0.05)\n\
         setup()\n"
    );
    let init = format!("{module}/__init__.py");
    setuptools_sdist(
        index,
        name,
        &[("setup.py", &setup), (&init, &format!("NAME = {name:?}\n"))],
    );
}

/// The built wheels under a cache's `builds/wheels`, by file name.
fn built_wheels(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![cache.join("builds").join("wheels")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            // A pure-Python build is also kept for other interpreters: the same wheel again.
            if path.is_dir() && !path.ends_with("py-none-any") {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "whl") {
                found.push(path);
            }
        }
    }
    found
}

/// A lock names each built package by its sdist (URL and sha256; no path into the cache), so
/// that it installs on a machine that never built it: there an empty cache downloads and builds
/// both sdists, at the same time, and installs exactly the built wheels' files.
#[test]
fn a_lock_names_the_sdist_and_installs_on_an_empty_cache_building_in_parallel() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    rendezvous_sdist(&index_path, "par-one", &["par-two"]);
    rendezvous_sdist(&index_path, "par-two", &["par-one"]);
    let index = TestIndex::serve(&index_path).unwrap();
    let url = index.index_url();
    let dir = cx.temp.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), "par-one\npar-two\n").unwrap();
    let out = cx
        .dx_py()
        .current_dir(&dir)
        .args(["lock", "-r", "requirements.txt", "--index-url", &url])
        .output()
        .unwrap();
    assert_success(&out, "lock of two sdist-only packages");
    let pylock = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    assert!(
        pylock.contains("sdist = { name = \"par_one-1.0.tar.gz\", url = \"http://127.0.0.1:"),
        "{pylock}"
    );
    assert!(
        pylock.contains("built-wheel = \"par_two-1.0-py3-none-any.whl\""),
        "{pylock}"
    );
    let cache = cx.cache_dir().display().to_string();
    assert!(
        !pylock.contains(&cache) && !pylock.contains("[[packages.wheels]]"),
        "the lock names the cache: {pylock}"
    );

    // Another machine: nothing cached, only the lock files.
    let other = TestContext::new();
    let rendezvous = other.temp.path().join("rendezvous");
    std::fs::create_dir_all(&rendezvous).unwrap();
    let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) > 1;
    let install_into = |venv: &str| {
        let mut install = other.dx_py();
        install
            .current_dir(&dir)
            .args([
                "install",
                "-v",
                "--lock",
                "pylock.toml",
                "--index-url",
                &url,
            ])
            .args(["--venv", venv]);
        install
    };
    let mut install = install_into(".venv-other");
    if parallel {
        install.env("DX_PY_TEST_RENDEZVOUS", &rendezvous);
    }
    let out = install.output().unwrap();
    assert_success(&out, "install of the lock on an empty cache");
    let text = printed(&out);
    assert!(text.contains("Built 2 source distributions"), "{text}");
    if parallel {
        // Both backends met there: they ran at the same time.
        assert!(rendezvous.join("par-one").is_file() && rendezvous.join("par-two").is_file());
    }
    let venv = dir.join(".venv-other");
    assert_eq!(
        venv_python(
            &venv,
            "import par_one, par_two; print(par_one.NAME, par_two.NAME)"
        )
        .trim(),
        "par-one par-two"
    );
    // The venv holds exactly what the built wheels' RECORDs say (plus bytecode).
    let site = dx_py_tests::layout_site_packages(&venv);
    let wheels = built_wheels(&other.cache_dir());
    assert_eq!(wheels.len(), 2, "{wheels:?}");
    for wheel in &wheels {
        let top = if wheel.to_string_lossy().contains("par_one") {
            "par_one"
        } else {
            "par_two"
        };
        let record = dx_py_tests::wheel_record(wheel);
        let files = dx_py_tests::package_files(&site, top);
        let prefix = format!("{top}/");
        dx_py_tests::check_bytecode(&files, &prefix, &record, &dx_py_tests::cache_tag(), top);
    }

    // Again on that machine: the store has both, recorded under their build key: no build.
    let out = install_into(".venv-3").output().unwrap();
    assert_success(&out, "second install on that machine");
    assert!(!printed(&out).contains("Built "), "{}", printed(&out));
}

/// `--no-binary PKG` ignores PKG's wheel and builds its sdist; the lock records the choice in
/// its inputs, so adding the flag locks again. `--only-binary` refuses an sdist-only package.
#[test]
fn no_binary_builds_a_package_that_has_a_wheel() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    pure_sdist(&index_path, "dual", "from the sdist");
    dx_py_tests::write_wheels(
        &index_path,
        &[dx_py_core::wheel::testing::WheelBuilder::new("dual", "1.0")
            .file("dual/__init__.py", b"GREETING = 'from the wheel'\n")],
    );
    pure_sdist(&index_path, "only-src", "src");
    let index = TestIndex::serve(&index_path).unwrap();
    let url = index.index_url();
    let greeting = |dir: &Path| venv_attr(dir, "dual", "GREETING");

    let plain = cx.temp.path().join("plain");
    let out = install(&cx, &plain, "dual\n", &url, &[]);
    assert_success(&out, "install of dual");
    assert!(!printed(&out).contains("Built "), "{}", printed(&out));
    assert_eq!(greeting(&plain), "from the wheel");

    // The same project with `--no-binary`: locked again (the inputs differ), built.
    let out = install(&cx, &plain, "dual\n", &url, &["--no-binary", "dual"]);
    assert_success(&out, "install of dual with --no-binary");
    let text = printed(&out);
    assert!(text.contains("Built 1 source distribution"), "{text}");
    assert_eq!(greeting(&plain), "from the sdist");
    let pylock = std::fs::read_to_string(plain.join("pylock.toml")).unwrap();
    assert!(
        pylock.contains("sdist = { name = \"dual-1.0.tar.gz\""),
        "{pylock}"
    );

    let all = cx.temp.path().join("all");
    let out = install(&cx, &all, "dual\n", &url, &["--no-binary", ":all:"]);
    assert_success(&out, "install with --no-binary :all:");
    assert_eq!(greeting(&all), "from the sdist");

    // `--only-binary`: the sdist is no candidate.
    let only = cx.temp.path().join("only");
    let out = install(&cx, &only, "only-src\n", &url, &["--only-binary", ":all:"]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(!printed(&out).contains("panicked"), "{}", printed(&out));
    let out = install(
        &cx,
        &only,
        "only-src\n",
        &url,
        &["--no-binary", "x", "--only-binary", "X"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(
        printed(&out).contains("given to both `--no-binary` and `--only-binary`"),
        "{}",
        printed(&out)
    );
}

/// A real sdist-only download (`pip download --no-binary :all:`, a small pure-Python package
/// with a `setup.py` and no `[build-system]`: the legacy setuptools backend) is built and
/// installed; the installed files are the built wheel's, byte for byte.
#[test]
fn a_real_sdist_from_pip_download_is_built_and_installed() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    let sdists = dx_py_tests::target_dir()
        .join("wheel-cache")
        .join("sdist-six");
    if !sdists.join(".complete").is_file() {
        std::fs::create_dir_all(&sdists).unwrap();
        let ok = std::process::Command::new(python())
            .args(["-m", "pip", "download", "--quiet", "--no-deps"])
            .args(["--no-binary", ":all:", "--dest"])
            .arg(&sdists)
            .arg("six==1.16.0")
            .env("PIP_FIND_LINKS", "")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: six could not be downloaded with pip");
            return;
        }
        std::fs::write(sdists.join(".complete"), "six==1.16.0").unwrap();
    }
    std::fs::copy(
        sdists.join("six-1.16.0.tar.gz"),
        index_path.join("six-1.16.0.tar.gz"),
    )
    .unwrap();
    let index = TestIndex::serve(&index_path).unwrap();
    let dir = cx.temp.path().join("p");
    let out = install(&cx, &dir, "six==1.16.0\n", &index.index_url(), &[]);
    assert_success(&out, "install of six from its sdist");
    assert!(
        printed(&out).contains("Built 1 source distribution"),
        "{}",
        printed(&out)
    );
    let venv = dir.join(".venv");
    assert_eq!(
        venv_python(&venv, "import six; print(six.__version__)").trim(),
        "1.16.0"
    );
    let wheels = built_wheels(&cx.cache_dir());
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let record = dx_py_tests::wheel_record(&wheels[0]);
    let site = dx_py_tests::layout_site_packages(&venv);
    let tag = dx_py_tests::cache_tag();
    let pyc = format!("__pycache__/six.{tag}.pyc");
    let files = [
        ("six.py".to_owned(), site.join("six.py")),
        (pyc.clone(), site.join(&pyc)),
    ]
    .into_iter()
    .map(|(k, p)| (k, std::fs::read(p).unwrap()))
    .collect();
    let (compiled, _) = dx_py_tests::check_bytecode(&files, "six.py", &record, &tag, "six");
    assert_eq!(compiled, 1);
}

/// As pip and uv, the newest version that fits is installed even when it has only an sdist and
/// an older one has a wheel: it is built. `--no-build` (and `--only-binary`) take the older
/// wheel instead; a universal lock names the newest version's sdist.
#[test]
fn the_newest_version_is_built_rather_than_an_older_wheel_installed() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    dx_py_tests::write_wheels(
        &index_path,
        &[
            dx_py_core::wheel::testing::WheelBuilder::new("fresh", "1.0")
                .file("fresh/__init__.py", b"VERSION = 'wheel 1.0'\n"),
        ],
    );
    let pyproject = "[build-system]\nrequires = [\"setuptools>=61\"]\n\
                     build-backend = \"setuptools.build_meta\"\n\n\
                     [project]\nname = \"fresh\"\nversion = \"2.0\"\n";
    write_sdist(
        &index_path,
        "fresh",
        "2.0",
        &[
            ("pyproject.toml", pyproject),
            ("fresh/__init__.py", "VERSION = 'sdist 2.0'\n"),
        ],
    );
    let index = TestIndex::serve(&index_path).unwrap();
    let url = index.index_url();
    let version = |dir: &Path| venv_attr(dir, "fresh", "VERSION");

    let built = cx.temp.path().join("built");
    let out = install(&cx, &built, "fresh\n", &url, &[]);
    assert_success(&out, "install of fresh");
    assert!(
        printed(&out).contains("Built 1 source distribution"),
        "{}",
        printed(&out)
    );
    assert_eq!(version(&built), "sdist 2.0");

    for flags in [&["--no-build"][..], &["--only-binary", "fresh"]] {
        let dir = cx.temp.path().join(flags[0].trim_start_matches('-'));
        let out = install(&cx, &dir, "fresh\n", &url, flags);
        assert_success(&out, &format!("install of fresh with {flags:?}"));
        assert_eq!(version(&dir), "wheel 1.0", "{flags:?}");
    }

    let universal = cx.temp.path().join("universal");
    std::fs::create_dir_all(&universal).unwrap();
    std::fs::write(universal.join("requirements.in"), "fresh\n").unwrap();
    let out = cx
        .dx_py()
        .current_dir(&universal)
        .args(["lock", "--universal", "-r", "requirements.in"])
        .args(["--index-url", &url])
        .output()
        .unwrap();
    assert_success(&out, "universal lock of fresh");
    let pylock = std::fs::read_to_string(universal.join("pylock.toml")).unwrap();
    assert!(
        pylock.contains("version = \"2.0\"") && pylock.contains("fresh-2.0.tar.gz"),
        "{pylock}"
    );
}

/// An sdist whose in-tree backend (`backend-path`, no build requirements) writes, by hand, a
/// wheel for `wheel_name` 1.0 whose RECORD hashes are wrong when `corrupt`.
fn hand_made_sdist(index: &Path, name: &str, wheel_name: &str, corrupt: bool) {
    let backend = format!(
        "import base64, hashlib, os, zipfile\n\
         NAME, CORRUPT = {wheel_name:?}, {}\n\
         def build_wheel(out, config_settings=None, metadata_directory=None):\n\
         \x20   dist = NAME.replace('-', '_')\n\
         \x20   info = dist + '-1.0.dist-info'\n\
         \x20   files = {{dist + '/__init__.py': b'X = 1\\n',\n\
         \x20            info + '/METADATA': ('Metadata-Version: 2.1\\nName: ' + NAME + '\\nVersion: 1.0\\n').encode(),\n\
         \x20            info + '/WHEEL': b'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'}}\n\
         \x20   record = []\n\
         \x20   for path, data in files.items():\n\
         \x20       digest = hashlib.sha256(b'not these bytes' if CORRUPT else data).digest()\n\
         \x20       b64 = base64.urlsafe_b64encode(digest).rstrip(b'=').decode()\n\
         \x20       record.append(path + ',sha256=' + b64 + ',' + str(len(data)))\n\
         \x20   record.append(info + '/RECORD,,')\n\
         \x20   wheel = dist + '-1.0-py3-none-any.whl'\n\
         \x20   with zipfile.ZipFile(os.path.join(out, wheel), 'w') as z:\n\
         \x20       for path, data in files.items():\n\
         \x20           z.writestr(path, data)\n\
         \x20       z.writestr(info + '/RECORD', '\\n'.join(record) + '\\n')\n\
         \x20   return wheel\n",
        if corrupt { "True" } else { "False" }
    );
    write_sdist(
        index,
        name,
        "1.0",
        &[
            (
                "pyproject.toml",
                "[build-system]\nrequires = []\nbuild-backend = \"hand_backend\"\n\
                 backend-path = [\".\"]\n",
            ),
            ("hand_backend.py", &backend),
        ],
    );
}

/// A built wheel passes the checks of a downloaded one: a RECORD that does not match its files,
/// or a wheel of another package than the sdist, is refused naming the sdist, and nothing is
/// cached. A correct hand-made wheel from the same backend installs.
#[test]
fn a_built_wheel_is_checked_like_a_downloaded_one() {
    let Some((cx, index_path)) = world() else {
        return;
    };
    hand_made_sdist(&index_path, "hand-good", "hand-good", false);
    hand_made_sdist(&index_path, "hand-corrupt", "hand-corrupt", true);
    hand_made_sdist(&index_path, "hand-other", "someone-else", false);
    let index = TestIndex::serve(&index_path).unwrap();
    let url = index.index_url();

    let dir = cx.temp.path().join("good");
    let out = install(&cx, &dir, "hand-good\n", &url, &[]);
    assert_success(&out, "install of a correct hand-made wheel");
    venv_python(&dir.join(".venv"), "import hand_good");

    let dir = cx.temp.path().join("corrupt");
    let out = install(&cx, &dir, "hand-corrupt\n", &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("The wheel built from `hand_corrupt-1.0.tar.gz` is invalid"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");

    let dir = cx.temp.path().join("other");
    let out = install(&cx, &dir, "hand-other\n", &url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("Building `hand-other==1.0`")
            && text.contains("is for `someone-else`, not `hand-other`"),
        "{text}"
    );
    let cached: Vec<String> = built_wheels(&cx.cache_dir())
        .iter()
        .map(|w| w.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached, ["hand_good-1.0-py3-none-any.whl"]);
}
