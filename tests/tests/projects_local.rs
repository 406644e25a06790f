//! Local projects end to end: `dx-py sync` installs the project itself from its tree, editable
//! (PEP 660) by default and built with `--no-editable`, with setuptools, hatchling and flit
//! backends fetched once with `pip download` and served by the local test index.
use std::path::{Path, PathBuf};

use dx_py_core::testing::TestIndex;
use dx_py_tests::{TestContext, assert_success, fetch_wheels, printed, venv_python};

/// The backends' wheels (and their dependencies), once per machine; `None` (the test is
/// skipped) when the registry pip uses is unreachable.
fn backend_wheels() -> Option<PathBuf> {
    let dir = fetch_wheels(
        "local-backends-v2",
        &[
            "setuptools==75.3.0",
            "hatchling==1.25.0",
            // What hatchling's `get_requires_for_build_editable` asks for.
            "editables==0.5",
            "flit_core==3.9.0",
        ],
    );
    if dir.is_none() {
        eprintln!("skipped: the build backends could not be downloaded with pip");
    }
    dir
}

/// A context and an index serving the backends' wheels.
fn world() -> Option<(TestContext, TestIndex)> {
    let wheels = backend_wheels()?;
    let cx = TestContext::new();
    let index = TestIndex::serve(&wheels).unwrap();
    Some((cx, index))
}

/// `[build-system]` of each backend.
fn build_system(backend: &str) -> &'static str {
    match backend {
        "setuptools" => {
            "[build-system]\nrequires = [\"setuptools>=61\"]\n\
             build-backend = \"setuptools.build_meta\"\n"
        }
        "hatchling" => {
            "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n"
        }
        "flit" => {
            "[build-system]\nrequires = [\"flit_core>=3.4\"]\n\
             build-backend = \"flit_core.buildapi\"\n"
        }
        other => panic!("no backend {other}"),
    }
}

/// Writes the project `name` into `dir`: `pyproject.toml` with `head` before `[project]` and
/// a package whose `GREETING` is `greeting`.
fn write_project(dir: &Path, name: &str, head: &str, greeting: &str) {
    std::fs::create_dir_all(dir.join(name)).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        format!(
            "{head}\n[project]\nname = \"{name}\"\nversion = \"0.1\"\n\
             description = \"A local test project\"\ndependencies = []\n"
        ),
    )
    .unwrap();
    set_greeting(dir, name, greeting);
}

fn set_greeting(dir: &Path, name: &str, greeting: &str) {
    std::fs::write(
        dir.join(name).join("__init__.py"),
        format!("\"\"\"A test package.\"\"\"\n__version__ = \"0.1\"\nGREETING = {greeting:?}\n"),
    )
    .unwrap();
}

/// `dx-py sync -v ARGS` in `dir` against `index`.
fn sync(cx: &TestContext, dir: &Path, index: &TestIndex, more: &[&str]) -> std::process::Output {
    cx.dx_py()
        .current_dir(dir)
        .args(["sync", "-v", "--index-url", &index.index_url()])
        .args(more)
        .output()
        .expect("run dx-py")
}

/// `dx-py sync -v ARGS`, which must succeed; returns what it printed.
fn sync_ok(cx: &TestContext, dir: &Path, index: &TestIndex, more: &[&str]) -> String {
    let out = sync(cx, dir, index, more);
    assert_success(
        &out,
        &format!("sync {} in {}", more.join(" "), dir.display()),
    );
    printed(&out)
}

/// A context, an index and the project `name` (with `head` before `[project]`) in its own
/// directory; `None` when the backends cannot be downloaded.
fn with_project(name: &str, head: &str) -> Option<(TestContext, TestIndex, PathBuf)> {
    let (cx, index) = world()?;
    let dir = cx.temp.path().join(name);
    write_project(&dir, name, head, "one");
    Some((cx, index, dir))
}

/// The output of a command that must fail with exit code 1 (a user error, not a panic).
fn failed(out: &std::process::Output) -> String {
    let text = printed(out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    text
}

fn greeting(dir: &Path, name: &str) -> String {
    venv_python(
        &dir.join(".venv"),
        &format!("import {name}; print({name}.GREETING)"),
    )
    .trim()
    .to_owned()
}

#[test]
fn every_backend_installs_the_project_editable_and_an_edit_shows_without_a_sync() {
    let Some((cx, index)) = world() else {
        return;
    };
    for backend in ["setuptools", "hatchling", "flit"] {
        let name = format!("proj_{backend}");
        let dir = cx.temp.path().join(&name);
        write_project(&dir, &name, build_system(backend), "one");
        let text = sync_ok(&cx, &dir, &index, &[]);
        assert!(
            text.contains(&format!("Built {name}-0.1")) && text.contains("(editable)"),
            "{text}"
        );
        assert!(text.contains(&format!("+ {name}==0.1")), "{text}");
        assert_eq!(greeting(&dir, &name), "one", "{backend}");

        set_greeting(&dir, &name, "two");
        assert_eq!(
            greeting(&dir, &name),
            "two",
            "{backend}: an edit shows without a sync"
        );

        // Nothing changed that the editable wheel depends on: nothing is built or installed.
        let text = sync_ok(&cx, &dir, &index, &[]);
        assert!(!text.contains("Built "), "{text}");
        assert!(text.contains("already holds the lock"), "{text}");

        // `run` syncs the same way and sees the project.
        let code = format!("import {name}; print({name}.GREETING)");
        let out = cx
            .dx_py()
            .current_dir(&dir)
            .args([
                "run",
                "--index-url",
                &index.index_url(),
                "python",
                "-c",
                &code,
            ])
            .output()
            .unwrap();
        assert_success(&out, "dx-py run");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "two");
    }
}

#[test]
fn no_editable_installs_a_copy_and_a_changed_tree_is_built_again() {
    let Some((cx, index, dir)) = with_project("copied", build_system("setuptools")) else {
        return;
    };
    let text = sync_ok(&cx, &dir, &index, &["--no-editable"]);
    assert!(text.contains("(not editable)"), "{text}");
    assert_eq!(greeting(&dir, "copied"), "one");
    // The venv holds a copy: an edit is not seen ...
    set_greeting(&dir, "copied", "two, longer");
    assert_eq!(greeting(&dir, "copied"), "one");
    // ... until the next sync, which sees the tree changed and builds it again.
    let text = sync_ok(&cx, &dir, &index, &["--no-editable"]);
    assert!(text.contains("Built copied-0.1"), "{text}");
    assert_eq!(greeting(&dir, "copied"), "two, longer");
    // Back to editable: the editable wheel replaces the copy.
    sync_ok(&cx, &dir, &index, &[]);
    set_greeting(&dir, "copied", "three");
    assert_eq!(greeting(&dir, "copied"), "three");
}

#[test]
fn a_failing_build_shows_the_backends_error() {
    let Some((cx, index, dir)) = with_project("broken", build_system("setuptools")) else {
        return;
    };
    std::fs::write(
        dir.join("setup.py"),
        "raise RuntimeError('this project refuses to build on purpose')\n",
    )
    .unwrap();
    let text = failed(&sync(&cx, &dir, &index, &[]));
    assert!(text.contains("Building `broken` failed"), "{text}");
    assert!(text.contains("refuses to build on purpose"), "{text}");
    assert!(!cx.cache_dir().join("builds/local").exists(), "{text}");
}

#[test]
fn no_build_refuses_a_project_that_needs_a_build() {
    let Some((cx, index, dir)) = with_project("nobuild", build_system("setuptools")) else {
        return;
    };
    let text = failed(&sync(&cx, &dir, &index, &["--no-build"]));
    assert!(
        text.contains("Cannot install `nobuild`")
            && text.contains("needs a build")
            && text.contains("--no-build"),
        "{text}"
    );
}

#[test]
fn a_project_without_a_build_system_installs_only_its_dependencies() {
    let Some((cx, index, dir)) = with_project("virtual", "") else {
        return;
    };
    let text = sync_ok(&cx, &dir, &index, &[]);
    assert!(!text.contains("Built "), "{text}");
    assert!(text.contains("has no `[build-system]`"), "{text}");
    let out = std::process::Command::new(dir.join(".venv/bin/python"))
        .args(["-I", "-c", "import virtual"])
        // Not beside the project's directory, which would import as a namespace package.
        .current_dir("/")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the project itself is not installed");
}

#[test]
fn a_backend_without_build_editable_is_refused_with_the_way_out() {
    // An in-tree backend (no build requirements) that builds wheels but not editable ones.
    let head =
        "[build-system]\nrequires = []\nbuild-backend = \"tree_backend\"\nbackend-path = [\".\"]\n";
    let Some((cx, index, dir)) = with_project("oldstyle", head) else {
        return;
    };
    std::fs::write(
        dir.join("tree_backend.py"),
        "def build_wheel(out, config_settings=None, metadata_directory=None):\n    \
         raise RuntimeError('not asked for')\n",
    )
    .unwrap();
    let text = failed(&sync(&cx, &dir, &index, &[]));
    assert!(
        text.contains("no `build_editable` hook") && text.contains("--no-editable"),
        "{text}"
    );
}

/// `dx-py install -v -r requirements.txt` of `reqs` in `dir` (made) against `index`.
fn install_reqs(
    cx: &TestContext,
    dir: &Path,
    reqs: &str,
    index: &TestIndex,
    more: &[&str],
) -> std::process::Output {
    cx.install_requirements(dir, reqs, &index.index_url(), more)
}

#[test]
fn requirements_name_local_trees_editable_or_built_and_source_archives() {
    let Some((cx, index)) = world() else {
        return;
    };
    let lib = cx.temp.path().join("lib");
    write_project(&lib, "locallib", build_system("setuptools"), "one");
    let app = cx.temp.path().join("app");

    // `-e ../lib`: editable, an edit shows without reinstalling.
    let out = install_reqs(&cx, &app, "-e ../lib\n", &index, &[]);
    assert_success(&out, "install -e ../lib");
    assert!(printed(&out).contains("(editable)"), "{}", printed(&out));
    assert_eq!(greeting(&app, "locallib"), "one");
    set_greeting(&lib, "locallib", "two");
    assert_eq!(greeting(&app, "locallib"), "two");
    // Unchanged: the lock is fresh, nothing is built.
    let out = install_reqs(&cx, &app, "-e ../lib\n", &index, &[]);
    assert_success(&out, "second install -e ../lib");
    assert!(!printed(&out).contains("Built "), "{}", printed(&out));

    // `name @ file:///abs/lib`: built, a copy.
    let by_url = format!("locallib @ file://{}\n", lib.display());
    let other = cx.temp.path().join("other");
    let out = install_reqs(&cx, &other, &by_url, &index, &[]);
    assert_success(&out, "install name @ file://");
    assert!(
        printed(&out).contains("(not editable)"),
        "{}",
        printed(&out)
    );
    set_greeting(&lib, "locallib", "three");
    assert_eq!(greeting(&other, "locallib"), "two");
    // A changed tree is built again and locked again.
    let out = install_reqs(&cx, &other, &by_url, &index, &[]);
    assert_success(&out, "install name @ file:// after an edit");
    assert_eq!(greeting(&other, "locallib"), "three");

    // A name that is not the project's is refused, naming both.
    let wrong = format!("othername @ file://{}\n", lib.display());
    let out = install_reqs(&cx, &cx.temp.path().join("wrong"), &wrong, &index, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(
        printed(&out).contains("builds `locallib`"),
        "{}",
        printed(&out)
    );

    // A path that is not there, or not a project, is refused naming it.
    let text = failed(&install_reqs(
        &cx,
        &cx.temp.path().join("bad"),
        "-e ./missing\n",
        &index,
        &[],
    ));
    assert!(
        text.contains("requirements.txt:1") && text.contains("does not exist"),
        "{text}"
    );
    std::fs::create_dir_all(cx.temp.path().join("bad/empty")).unwrap();
    let text = failed(&install_reqs(
        &cx,
        &cx.temp.path().join("bad"),
        "./empty\n",
        &index,
        &[],
    ));
    assert!(text.contains("is not a Python project"), "{text}");

    // A local source archive is built as such.
    let dist = cx.temp.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(
        lib.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: locallib\nVersion: 0.1\n",
    )
    .unwrap();
    let archive = dist.join("locallib-0.1.tar.gz");
    let out = dx_py_tests::run_python(
        Path::new(&dx_py_tests::python()),
        &format!(
            "import tarfile\nwith tarfile.open({:?}, 'w:gz') as t: t.add({:?}, arcname='locallib-0.1', \
             filter=lambda i: None if '.venv' in i.name or 'egg-info' in i.name else i)",
            archive.display().to_string(),
            lib.display().to_string(),
        ),
    );
    assert_success(&out, "tar the sdist");
    let third = cx.temp.path().join("third");
    let out = install_reqs(&cx, &third, "../dist/locallib-0.1.tar.gz\n", &index, &[]);
    assert_success(&out, "install ./x.tar.gz");
    assert!(
        printed(&out).contains("(from a source archive)"),
        "{}",
        printed(&out)
    );
    assert_eq!(greeting(&third, "locallib"), "three");

    // `--no-build` uses a wheel built before (same tree, same key) and refuses a tree that
    // needs a build.
    let nobuild = cx.temp.path().join("nobuild");
    let no_build = || install_reqs(&cx, &nobuild, "-e ../lib\n", &index, &["--no-build"]);
    assert_success(&no_build(), "--no-build with the editable wheel cached");
    std::fs::write(lib.join("setup.cfg"), "[metadata]\n").unwrap();
    let text = failed(&no_build());
    assert!(
        text.contains("needs a build") && text.contains("--no-build"),
        "{text}"
    );
}

/// `dx-py lock -r requirements.txt -o DIR` in `dir` against `index`.
fn lock_reqs(cx: &TestContext, dir: &Path, index: &TestIndex) -> std::process::Output {
    cx.dx_py()
        .current_dir(dir)
        .args(["lock", "-v", "-r", "requirements.txt", "--index-url"])
        .arg(index.index_url())
        .output()
        .expect("run dx-py")
}

/// `dx-py install -v pylock.toml` (or `dx-py.dpl`) in `dir` into `.venv`.
fn install_lock(
    cx: &TestContext,
    dir: &Path,
    lock: &str,
    index: &TestIndex,
) -> std::process::Output {
    cx.dx_py()
        .current_dir(dir)
        .args([
            "install",
            "-v",
            "--lock",
            lock,
            "--venv",
            ".venv",
            "--index-url",
        ])
        .arg(index.index_url())
        .output()
        .expect("run dx-py")
}

/// Copies the tree `from` to `to` (files and directories only, `.venv` left out).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".venv" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn locks_name_local_trees_and_archives_by_relative_path_and_install_anywhere() {
    let Some((cx, index)) = world() else {
        return;
    };
    let work = cx.temp.path().join("work");
    let lib = work.join("libs/editlib");
    write_project(&lib, "editlib", build_system("setuptools"), "one");
    let copy = work.join("libs/copylib");
    write_project(&copy, "copylib", build_system("setuptools"), "copy");
    let arch = cx.temp.path().join("archlib");
    write_project(&arch, "archlib", build_system("setuptools"), "arch");
    std::fs::write(
        arch.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: archlib\nVersion: 0.1\n",
    )
    .unwrap();
    std::fs::create_dir_all(work.join("dist")).unwrap();
    let out = dx_py_tests::run_python(
        Path::new(&dx_py_tests::python()),
        &format!(
            "import tarfile\nwith tarfile.open({:?}, 'w:gz') as t: t.add({:?}, arcname='archlib-0.1')",
            work.join("dist/archlib-0.1.tar.gz").display().to_string(),
            arch.display().to_string(),
        ),
    );
    assert_success(&out, "tar the sdist");
    let app = work.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("requirements.txt"),
        "-e ../libs/editlib\n../libs/copylib\n../dist/archlib-0.1.tar.gz\n",
    )
    .unwrap();
    let out = lock_reqs(&cx, &app, &index);
    assert_success(&out, "lock -r with local trees");
    let pylock = std::fs::read_to_string(app.join("pylock.toml")).unwrap();
    assert!(
        pylock.contains("directory = { path = \"../libs/editlib\", editable = true }"),
        "{pylock}"
    );
    assert!(
        pylock.contains("directory = { path = \"../libs/copylib\", editable = false }"),
        "{pylock}"
    );
    assert!(
        pylock.contains(
            "archive = { name = \"archlib-0.1.tar.gz\", path = \"../dist/archlib-0.1.tar.gz\""
        ),
        "{pylock}"
    );
    assert!(!pylock.contains("builds/"), "no cache path: {pylock}");
    assert!(!pylock.contains("[[packages.wheels]]"), "{pylock}");

    // Elsewhere, with an empty cache: the lock installs by building its trees.
    let moved = cx.temp.path().join("moved");
    copy_tree(&work, &moved);
    let fresh = TestContext::new();
    let out = install_lock(&fresh, &moved.join("app"), "pylock.toml", &index);
    assert_success(&out, "install the moved lock on an empty cache");
    assert!(printed(&out).contains("Built 3 "), "{}", printed(&out));
    let moved_app = moved.join("app");
    assert_eq!(greeting(&moved_app, "archlib"), "arch");
    assert_eq!(greeting(&moved_app, "editlib"), "one");
    assert_eq!(greeting(&moved_app, "copylib"), "copy");
    // Editable: an edit of the moved tree shows; the copy is a copy.
    set_greeting(&moved.join("libs/editlib"), "editlib", "two");
    set_greeting(&moved.join("libs/copylib"), "copylib", "changed");
    assert_eq!(greeting(&moved_app, "editlib"), "two");
    assert_eq!(greeting(&moved_app, "copylib"), "copy");
    // Installed again (the DPL this time): the store has both, nothing is built.
    let out = install_lock(&fresh, &moved_app, "dx-py.dpl", &index);
    assert_success(&out, "install the moved lock again");
    assert!(!printed(&out).contains("Built"), "{}", printed(&out));

    // A directory that is not there is named.
    std::fs::remove_dir_all(moved.join("libs/editlib")).unwrap();
    let other = TestContext::new();
    let text = failed(&install_lock(&other, &moved_app, "pylock.toml", &index));
    assert!(
        text.contains("editlib") && text.contains("does not exist"),
        "{text}"
    );
}

/// What `uv export --format pylock.toml --no-emit-project` (uv 0.9) writes for a project whose
/// dependency `uvlib` has `[tool.uv.sources] uvlib = { path = "lib", editable = true }`: a
/// directory entry without a version.
const UV_PYLOCK: &str = "# This file was autogenerated by uv via the following command:\n\
    #    uv export --format pylock.toml --python python3 --offline --no-emit-project\n\
    lock-version = \"1.0\"\n\
    created-by = \"uv\"\n\
    requires-python = \">=3.8\"\n\
    \n\
    [[packages]]\n\
    name = \"uvlib\"\n\
    directory = { path = \"lib\", editable = true }\n";

#[test]
fn a_pylock_from_uv_with_a_directory_entry_installs_editable() {
    let Some((cx, index)) = world() else {
        return;
    };
    let app = cx.temp.path().join("uvapp");
    write_project(&app.join("lib"), "uvlib", build_system("setuptools"), "uv");
    std::fs::write(app.join("pylock.toml"), UV_PYLOCK).unwrap();
    let out = install_lock(&cx, &app, "pylock.toml", &index);
    assert_success(&out, "install uv's pylock.toml");
    // The version comes from the tree's pyproject.toml.
    assert!(printed(&out).contains("uvlib==0.1"), "{}", printed(&out));
    assert_eq!(greeting(&app, "uvlib"), "uv");
    set_greeting(&app.join("lib"), "uvlib", "edited");
    assert_eq!(greeting(&app, "uvlib"), "edited");
}

// Path dependencies of projects, with these helpers.
#[path = "projects_local/path_deps.rs"]
mod path_deps;
