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
        let out = sync(&cx, &dir, &index, &[]);
        assert_success(&out, &format!("sync of a {backend} project"));
        let text = printed(&out);
        assert!(
            text.contains(&format!("Built {name}-0.1")) && text.contains("(editable)"),
            "{text}"
        );
        let normalized = name.replace('_', "-");
        assert!(text.contains(&format!("+ {normalized}==0.1")), "{text}");
        assert_eq!(greeting(&dir, &name), "one", "{backend}");

        set_greeting(&dir, &name, "two");
        assert_eq!(
            greeting(&dir, &name),
            "two",
            "{backend}: an edit shows without a sync"
        );

        // Nothing changed that the editable wheel depends on: nothing is built or installed.
        let out = sync(&cx, &dir, &index, &[]);
        assert_success(&out, "second sync");
        let text = printed(&out);
        assert!(!text.contains("Built "), "{text}");
        assert!(text.contains("already holds the lock"), "{text}");
    }
}

#[test]
fn no_editable_installs_a_copy_and_a_changed_tree_is_built_again() {
    let Some((cx, index)) = world() else {
        return;
    };
    let dir = cx.temp.path().join("copied");
    write_project(&dir, "copied", build_system("setuptools"), "one");
    let out = sync(&cx, &dir, &index, &["--no-editable"]);
    assert_success(&out, "sync --no-editable");
    assert!(
        printed(&out).contains("(not editable)"),
        "{}",
        printed(&out)
    );
    assert_eq!(greeting(&dir, "copied"), "one");
    // The venv holds a copy: an edit is not seen ...
    set_greeting(&dir, "copied", "two, longer");
    assert_eq!(greeting(&dir, "copied"), "one");
    // ... until the next sync, which sees the tree changed and builds it again.
    let out = sync(&cx, &dir, &index, &["--no-editable"]);
    assert_success(&out, "second sync --no-editable");
    assert!(
        printed(&out).contains("Built copied-0.1"),
        "{}",
        printed(&out)
    );
    assert_eq!(greeting(&dir, "copied"), "two, longer");
    // Back to editable: the editable wheel replaces the copy.
    let out = sync(&cx, &dir, &index, &[]);
    assert_success(&out, "sync, editable again");
    set_greeting(&dir, "copied", "three");
    assert_eq!(greeting(&dir, "copied"), "three");
}

#[test]
fn a_failing_build_shows_the_backends_error() {
    let Some((cx, index)) = world() else {
        return;
    };
    let dir = cx.temp.path().join("broken");
    write_project(&dir, "broken", build_system("setuptools"), "x");
    std::fs::write(
        dir.join("setup.py"),
        "raise RuntimeError('this project refuses to build on purpose')\n",
    )
    .unwrap();
    let out = sync(&cx, &dir, &index, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(text.contains("Building `broken` failed"), "{text}");
    assert!(text.contains("refuses to build on purpose"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!cx.cache_dir().join("builds/local").exists(), "{text}");
}

#[test]
fn no_build_refuses_a_project_that_needs_a_build() {
    let Some((cx, index)) = world() else {
        return;
    };
    let dir = cx.temp.path().join("nobuild");
    write_project(&dir, "nobuild", build_system("setuptools"), "x");
    let out = sync(&cx, &dir, &index, &["--no-build"]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("Cannot install `nobuild`")
            && text.contains("needs a build")
            && text.contains("--no-build"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_project_without_a_build_system_installs_only_its_dependencies() {
    let Some((cx, index)) = world() else {
        return;
    };
    let dir = cx.temp.path().join("virtual");
    write_project(&dir, "virtual", "", "x");
    let out = sync(&cx, &dir, &index, &[]);
    assert_success(&out, "sync of a project without [build-system]");
    let text = printed(&out);
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
    let Some((cx, index)) = world() else {
        return;
    };
    let dir = cx.temp.path().join("oldstyle");
    // An in-tree backend (no build requirements) that builds wheels but not editable ones.
    write_project(
        &dir,
        "oldstyle",
        "[build-system]\nrequires = []\nbuild-backend = \"tree_backend\"\nbackend-path = [\".\"]\n",
        "x",
    );
    std::fs::write(
        dir.join("tree_backend.py"),
        "def build_wheel(out, config_settings=None, metadata_directory=None):\n    \
         raise RuntimeError('not asked for')\n",
    )
    .unwrap();
    let out = sync(&cx, &dir, &index, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("no `build_editable` hook") && text.contains("--no-editable"),
        "{text}"
    );
}
