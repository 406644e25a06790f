//! Path dependencies of a project end to end: `dx-py add ./lib` / `add -e ../lib` /
//! `add ./x-1.0.tar.gz`, `[tool.dx-py.sources]` and uv's `[tool.uv.sources]`, the universal lock
//! naming them as PEP 751 directory / archive entries relative to the lock, a moved checkout
//! syncing from the same lock, `--locked` after a local project's dependencies change, and
//! `export` for another platform.
use std::path::Path;
use std::process::Output;

use dx_py_core::testing::TestIndex;
use dx_py_tests::{TestContext, assert_success, printed, venv_python};

use super::{
    build_system, copy_tree, failed, greeting, set_greeting, sync, sync_ok, world, write_project,
};

/// `dx-py export ARGS` in `dir`: what it printed.
fn export(cx: &TestContext, dir: &Path, args: &[&str]) -> String {
    let out = cx
        .dx_py()
        .current_dir(dir)
        .arg("export")
        .args(args)
        .output()
        .expect("run dx-py");
    assert_success(&out, &format!("export {}", args.join(" ")));
    printed(&out)
}

/// `dx-py ARGS --index-url …` in `dir`.
fn dx_py(cx: &TestContext, dir: &Path, index: &TestIndex, args: &[&str]) -> Output {
    cx.dx_py()
        .current_dir(dir)
        .args(args)
        .args(["--index-url", &index.index_url()])
        .output()
        .expect("run dx-py")
}

fn dx_py_ok(cx: &TestContext, dir: &Path, index: &TestIndex, args: &[&str]) -> String {
    let out = dx_py(cx, dir, index, args);
    assert_success(&out, &format!("{} in {}", args.join(" "), dir.display()));
    printed(&out)
}

/// The project `name` at `dir` (no build system: only its dependencies are installed), with
/// `deps` and `tail` after `[project]`.
fn write_app(dir: &Path, deps: &str, tail: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        format!("[project]\nname = \"app\"\nversion = \"0.1\"\ndependencies = [{deps}]\n{tail}"),
    )
    .unwrap();
}

/// A setuptools project `name` at `dir` depending on `deps`.
fn write_lib(dir: &Path, name: &str, deps: &str, greeting: &str) {
    write_project(dir, name, build_system("setuptools"), greeting);
    let text = std::fs::read_to_string(dir.join("pyproject.toml")).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        text.replace("dependencies = []", &format!("dependencies = [{deps}]")),
    )
    .unwrap();
}

/// A source archive `{dir}/{name}-0.1.tar.gz` of a setuptools project `name`.
fn write_archive(dir: &Path, name: &str) {
    let tree = dir.join(format!("{name}-0.1"));
    write_project(&tree, name, build_system("setuptools"), "from an archive");
    let status = std::process::Command::new("tar")
        .current_dir(dir)
        .args(["czf", &format!("{name}-0.1.tar.gz"), &format!("{name}-0.1")])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(tree).unwrap();
}

fn imports(dir: &Path, module: &str) -> bool {
    let out = std::process::Command::new(dir.join(".venv/bin/python"))
        .args(["-c", &format!("import {module}")])
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn add_a_local_directory_and_archive_then_remove_them() {
    let Some((cx, index)) = world() else {
        return;
    };
    let (app, lib) = (cx.temp.path().join("app"), cx.temp.path().join("lib"));
    write_lib(&lib, "lib", "", "one");
    write_app(&app, "", "");
    write_archive(&app, "tool");
    let original = std::fs::read_to_string(app.join("pyproject.toml")).unwrap();

    dx_py_ok(&cx, &app, &index, &["add", "-e", "../lib"]);
    let text = std::fs::read_to_string(app.join("pyproject.toml")).unwrap();
    assert!(text.contains("dependencies = [\"lib\"]"), "{text}");
    assert!(
        text.contains("[tool.dx-py.sources]\nlib = { path = \"../lib\", editable = true }"),
        "{text}"
    );
    assert_eq!(greeting(&app, "lib"), "one");
    // Editable: an edit of the local project's source shows without a sync.
    set_greeting(&lib, "lib", "two");
    assert_eq!(greeting(&app, "lib"), "two");

    dx_py_ok(&cx, &app, &index, &["add", "./tool-0.1.tar.gz"]);
    let text = std::fs::read_to_string(app.join("pyproject.toml")).unwrap();
    assert!(
        text.contains("tool = { path = \"tool-0.1.tar.gz\" }"),
        "{text}"
    );
    assert_eq!(greeting(&app, "tool"), "from an archive");
    let lock = std::fs::read_to_string(app.join("pylock.toml")).unwrap();
    assert!(
        lock.contains("directory = { path = \"../lib\", editable = true }"),
        "{lock}"
    );
    assert!(lock.contains("path = \"tool-0.1.tar.gz\""), "{lock}");
    assert!(
        !lock.contains("builds/"),
        "no cache path in the lock: {lock}"
    );

    // Not editable: a copy, which a sync after a source edit builds again.
    let plain = app.join("libs/plain");
    write_lib(&plain, "plain", "", "first");
    dx_py_ok(&cx, &app, &index, &["add", "libs/plain"]);
    let text = std::fs::read_to_string(app.join("pyproject.toml")).unwrap();
    assert!(text.contains("plain = { path = \"libs/plain\" }"), "{text}");
    assert_eq!(greeting(&app, "plain"), "first");
    set_greeting(&plain, "plain", "second");
    assert_eq!(greeting(&app, "plain"), "first");
    let out = sync_ok(&cx, &app, &index, &[]);
    assert!(
        !out.contains("Locked "),
        "a source edit does not lock again: {out}"
    );
    assert_eq!(greeting(&app, "plain"), "second");

    // `-e` takes directories only; a path that is not there is named.
    let e = failed(&dx_py(
        &cx,
        &app,
        &index,
        &["add", "-e", "./tool-0.1.tar.gz"],
    ));
    assert!(e.contains("cannot be installed editable"), "{e}");
    let e = failed(&dx_py(&cx, &app, &index, &["add", "../nowhere"]));
    assert!(e.contains("which does not exist"), "{e}");

    dx_py_ok(&cx, &app, &index, &["remove", "lib", "tool", "plain"]);
    let text = std::fs::read_to_string(app.join("pyproject.toml")).unwrap();
    assert_eq!(text, original, "the sources go with the dependencies");
    assert!(!imports(&app, "lib") && !imports(&app, "tool") && !imports(&app, "plain"));
}

#[test]
fn a_uv_project_with_path_sources_locks_them_relative_and_syncs_moved_and_locked() {
    let Some((cx, index)) = world() else {
        return;
    };
    let work = cx.temp.path().join("work");
    let (app, lib) = (work.join("app"), work.join("lib"));
    write_lib(
        &lib,
        "lib",
        "\"editables ; sys_platform == 'linux'\"",
        "one",
    );
    write_app(
        &app,
        "\"lib\", \"tool ; sys_platform != 'win32'\"",
        "\n[tool.uv.sources]\nlib = { path = \"../lib\", editable = true }\n\
         tool = { path = \"vendor/tool-0.1.tar.gz\" }\n",
    );
    std::fs::create_dir_all(app.join("vendor")).unwrap();
    write_archive(&app.join("vendor"), "tool");
    sync_ok(&cx, &app, &index, &[]);
    assert_eq!(greeting(&app, "lib"), "one");
    assert_eq!(greeting(&app, "tool"), "from an archive");
    assert!(imports(&app, "editables"), "lib's dependency is installed");

    let lock = std::fs::read_to_string(app.join("pylock.toml")).unwrap();
    let entry = |name: &str| {
        let start = lock
            .find(&format!("[[packages]]\nname = \"{name}\""))
            .unwrap_or_else(|| panic!("no {name} in {lock}"));
        let rest = &lock[start + 12..];
        rest[..rest.find("[[packages]]").unwrap_or(rest.len())].to_owned()
    };
    let lib_entry = entry("lib");
    assert!(
        lib_entry.contains("directory = { path = \"../lib\", editable = true }"),
        "{lib_entry}"
    );
    assert!(!lib_entry.contains("wheels"), "{lib_entry}");
    let tool_entry = entry("tool");
    assert!(
        tool_entry.contains("marker = \"sys_platform != 'win32'\""),
        "{tool_entry}"
    );
    assert!(
        tool_entry
            .contains("archive = { name = \"tool-0.1.tar.gz\", path = \"vendor/tool-0.1.tar.gz\""),
        "{tool_entry}"
    );
    assert!(entry("editables").contains("marker = \"sys_platform == 'linux'\""));
    assert!(
        !lock.contains(&cx.temp.path().display().to_string()),
        "{lock}"
    );

    // Export for another platform prints the paths as pip requirements, relative to the lock.
    let win = export(
        &cx,
        &app,
        &["--python-version", "3.12", "--platform", "win32"],
    );
    assert!(win.contains("\n-e ../lib\n"), "{win}");
    assert!(!win.contains("tool") && !win.contains("editables"), "{win}");
    let linux = export(
        &cx,
        &app,
        &["--python-version", "3.12", "--platform", "linux"],
    );
    assert!(linux.contains("./vendor/tool-0.1.tar.gz \\"), "{linux}");
    assert!(linux.contains("editables=="), "{linux}");

    // Another checkout: the same lock is fresh there (`--locked`) and installs the local
    // projects of that checkout, editable still.
    let moved = cx.temp.path().join("elsewhere");
    copy_tree(&work, &moved);
    let (app2, lib2) = (moved.join("app"), moved.join("lib"));
    let text = sync_ok(&cx, &app2, &index, &["--locked"]);
    assert!(!text.contains("Locked "), "{text}");
    set_greeting(&lib2, "lib", "moved");
    assert_eq!(greeting(&app2, "lib"), "moved");
    let here = venv_python(
        &app2.join(".venv"),
        "import lib, os; print(os.path.realpath(lib.__file__))",
    );
    assert!(here.contains("elsewhere/lib/lib"), "{here}");

    // The local project's dependencies changed: the lock is stale.
    let pyproject = lib2.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(
        &pyproject,
        text.replace("dependencies = [", "dependencies = [\"flit_core\", "),
    )
    .unwrap();
    let e = failed(&sync(&cx, &app2, &index, &["--locked"]));
    assert!(e.contains("out of date") && e.contains("--locked"), "{e}");
    sync_ok(&cx, &app2, &index, &[]);
    assert!(imports(&app2, "flit_core"));
    let lock = std::fs::read_to_string(app2.join("pylock.toml")).unwrap();
    assert!(
        lock.contains("name = \"flit-core\"") || lock.contains("name = \"flit_core\""),
        "{lock}"
    );
}

#[test]
fn bad_sources_are_refused_naming_the_entry() {
    let Some((cx, index)) = world() else {
        return;
    };
    let app = cx.temp.path().join("app");
    for (deps, tail, want) in [
        (
            "\"lib\"",
            "[tool.dx-py.sources]\nlib = { git = \"https://git.invalid/lib.git\" }\n",
            "Unsupported source `tool.dx-py.sources.lib`",
        ),
        (
            "\"lib\"",
            "[tool.uv.sources]\nlib = { index = \"internal\" }\n",
            "index sources are not supported yet",
        ),
        (
            "\"lib\"",
            "[tool.dx-py.sources]\nother = { path = \"../other\" }\n",
            "is for `other`, which no dependency, extra or group names",
        ),
        (
            "\"lib\"",
            "[tool.dx-py.sources]\nlib = { path = \"../missing\" }\n",
            "`tool.dx-py.sources.lib` in",
        ),
    ] {
        write_app(&app, deps, &format!("\n{tail}"));
        let e = failed(&sync(&cx, &app, &index, &[]));
        assert!(e.contains(want), "{tail}: {e}");
        assert!(!app.join("pylock.toml").exists(), "{tail}");
    }
}

#[test]
fn a_universal_lock_of_requirements_names_local_trees_not_the_build_cache() {
    let Some((cx, index)) = world() else {
        return;
    };
    let work = cx.temp.path().join("work");
    write_lib(&work.join("lib"), "lib", "\"editables\"", "one");
    let app = work.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("requirements.txt"), "-e ../lib\n").unwrap();
    dx_py_ok(
        &cx,
        &app,
        &index,
        &["lock", "--universal", "-r", "requirements.txt"],
    );
    let lock = std::fs::read_to_string(app.join("pylock.toml")).unwrap();
    assert!(
        lock.contains("directory = { path = \"../lib\", editable = true }"),
        "{lock}"
    );
    assert!(lock.contains("name = \"editables\""), "{lock}");
    assert!(!lock.contains("builds/"), "{lock}");
    let text = dx_py_ok(
        &cx,
        &app,
        &index,
        &["install", "--lock", "dx-py.dpl", "--venv", ".venv"],
    );
    assert!(text.contains("lib"), "{text}");
    assert_eq!(greeting(&app, "lib"), "one");
    // The lock's inputs hash holds the tree's relative path, not its build in the cache: in
    // another checkout the lock is up to date.
    let moved = cx.temp.path().join("moved");
    copy_tree(&work, &moved);
    let text = dx_py_ok(
        &cx,
        &moved.join("app"),
        &index,
        &["lock", "-v", "--universal", "-r", "requirements.txt"],
    );
    assert!(text.contains("is up to date"), "{text}");

    // A project's PEP 508 direct reference to a directory: locked relative, installed built.
    let proj = work.join("proj");
    let url = format!("file://{}", work.join("lib").display());
    write_app(&proj, &format!("\"lib @ {url}\""), "");
    sync_ok(&cx, &proj, &index, &[]);
    assert_eq!(greeting(&proj, "lib"), "one");
    let lock = std::fs::read_to_string(proj.join("pylock.toml")).unwrap();
    assert!(
        lock.contains("directory = { path = \"../lib\", editable = false }"),
        "{lock}"
    );
}
