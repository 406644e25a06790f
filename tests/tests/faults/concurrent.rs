//! Many processes on one cache at once: installs of the same and of different locks (sharing
//! packages) into their own venvs, installs of different locks into one venv, and mounts beside
//! installs, and installs racing `cache prune --max-size`. Afterwards every venv holds exactly
//! its wheels' bytes (or, evicted by a prune, was named for reinstalling), the store verifies and
//! no temporary is left.
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use dx_py_core::cache::Cache;
use dx_py_core::cache::prune::{PruneOptions, prune};

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, assert_success, check_site_packages, layout_site_packages, snapshot, venv_python,
    venv_site_packages,
};

use super::{Project, Unmount, assert_cache_sound};

/// A module of `lines` lines, so that storing, unpacking and compiling take a while.
fn module(name: &str, lines: usize) -> Vec<u8> {
    (0..lines)
        .map(|i| format!("VALUE_{i} = '{name}' * {}\n", i % 7))
        .collect::<String>()
        .into_bytes()
}

/// Two synthetic locks that share the `shared` package (the same wheel bytes in both
/// directories, so the same store object): alpha + beta + shared, and gamma + shared.
fn two_locks(root: &Path) -> (Project, Project) {
    let shared = WheelBuilder::new("shared", "1.0")
        .file("shared/__init__.py", &module("shared", 3000))
        .file("shared/util.py", &module("util", 500));
    let ab = Project::synthetic(
        &root.join("wheels-ab"),
        &[
            WheelBuilder::new("alpha", "1.0").file("alpha/__init__.py", &module("alpha", 2000)),
            WheelBuilder::new("beta", "1.0")
                .file("beta/__init__.py", &module("beta", 200))
                .file("beta/data.bin", &[7u8; 200_000])
                .console_script("beta", "beta:VALUE_1"),
            shared.clone(),
        ],
        "alpha, beta, shared.util",
    );
    let g = Project::synthetic(
        &root.join("wheels-g"),
        &[
            WheelBuilder::new("gamma", "2.0").file("gamma.py", &module("gamma", 1000)),
            shared,
        ],
        "gamma, shared",
    );
    (ab, g)
}

/// Starts `dx-py ARGS` in `dir` on `cx`'s cache, capturing its output.
fn start(cx: &TestContext, dir: &Path, args: &[&str]) -> Child {
    cx.dx_py()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dx-py")
}

/// Runs `install` of `project` in `dir` (which has its requirements) to its end; asserts that
/// it succeeded (`what` names it if not) and returns its output.
fn install_in(cx: &TestContext, project: &Project, dir: &Path, what: &str) -> Output {
    let out = cx
        .dx_py()
        .current_dir(dir)
        .args(project.args("install", &[]))
        .output()
        .expect("run dx-py install");
    assert_success(&out, what);
    out
}

/// Waits for every child; returns their outputs in order.
fn finish(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for dx-py"))
        .collect()
}

/// Runs `install EXTRA` of each project of `plan` at once, each in its directory (made, with
/// the project's requirements); returns their outputs in `plan`'s order.
fn race(cx: &TestContext, plan: &[(&Project, PathBuf)], extra: &[&str]) -> Vec<Output> {
    for (project, dir) in plan {
        project.write_requirements(dir);
    }
    let children = plan
        .iter()
        .map(|(project, dir)| start(cx, dir, &project.args("install", extra)))
        .collect();
    finish(children)
}

#[test]
fn eight_concurrent_installs_of_three_locks_give_verified_venvs() {
    let Some(requests) = Project::requests() else {
        return;
    };
    let cx = TestContext::new();
    let (ab, g) = two_locks(cx.temp.path());
    // Three of requests, three of alpha-beta, two of gamma: each from its own project
    // directory (its own lock files) into its own venv, all on one cold cache.
    let plan: Vec<(&Project, PathBuf)> = (0..8)
        .map(|i| {
            let project = [&requests, &ab, &requests, &g, &ab, &requests, &g, &ab][i];
            (project, cx.temp.path().join(format!("p{i}")))
        })
        .collect();
    for (out, (_, dir)) in race(&cx, &plan, &[]).iter().zip(&plan) {
        assert_success(out, &format!("install in {}", dir.display()));
    }
    for (project, dir) in &plan {
        project.check_venv(&dir.join(".venv"), &dir.display().to_string());
    }
    assert_cache_sound(&cx, &cx.cache_dir(), "eight concurrent installs");
    // A venv made now is a layout hit of what the racing processes built.
    let after = cx.temp.path().join("after");
    ab.write_requirements(&after);
    let out = install_in(&cx, &ab, &after, "install after the race");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("layout hit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn concurrent_installs_of_two_locks_into_one_venv_leave_one_of_them_whole() {
    let cx = TestContext::new();
    let (ab, g) = two_locks(cx.temp.path());
    let venv = cx.temp.path().join("one-venv");
    let venv_arg = venv.to_str().unwrap();
    let plan: Vec<(&Project, PathBuf)> = (0..6)
        .map(|i| {
            let project = if i % 2 == 0 { &ab } else { &g };
            (project, cx.temp.path().join(format!("p{i}")))
        })
        .collect();
    for (out, (_, dir)) in race(&cx, &plan, &["--venv", venv_arg]).iter().zip(&plan) {
        // Each install is whole or refused with a clear message; none may crash.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || out.status.code() == Some(1),
            "install in {}: {:?}\n{stderr}",
            dir.display(),
            out.status
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Whichever finished last, the venv is exactly one of the two sets.
    let layout = layout_site_packages(&venv);
    let winner = if layout.join("gamma.py").exists() {
        &g
    } else {
        &ab
    };
    winner.check_venv(&venv, "the shared venv");
    let own: Vec<String> = snapshot(&venv_site_packages(&venv)).into_keys().collect();
    assert_eq!(own, ["_dx_py_layout.pth"], "the venv's own site-packages");
    assert_cache_sound(&cx, &cx.cache_dir(), "installs into one venv");
}

#[test]
fn concurrent_mounts_and_installs_of_one_lock_serve_the_same_verified_bytes() {
    if !dx_py_tests::can_mount() {
        return;
    }
    let Some(requests) = Project::requests() else {
        return;
    };
    let cx = requests.context();
    // Locked (and stored) first; the bytecode, unpacked copies, layouts and trees are made by
    // the racing mounts and installs.
    cx.run_ok(&requests.args("lock", &[]));
    let mounts: Vec<PathBuf> = (0..3).map(|i| cx.project().join(format!("m{i}"))).collect();
    let guards: Vec<Unmount<'_>> = mounts
        .iter()
        .map(|venv| Unmount {
            cx: &cx,
            venv: venv.clone(),
        })
        .collect();
    let wheels = requests.wheels.to_str().unwrap();
    let mut children = Vec::new();
    for i in 0..3 {
        let m = format!("m{i}");
        children.push(start(
            &cx,
            &cx.project(),
            &["mount", &m, "--wait-bytecode", "--find-links", wheels],
        ));
        let v = format!("i{i}");
        children.push(start(
            &cx,
            &cx.project(),
            &["install", "--venv", &v, "--find-links", wheels],
        ));
    }
    for out in finish(children) {
        assert_success(&out, "mount or install");
    }
    let installed = layout_site_packages(&cx.project().join("i0"));
    for i in 0..3 {
        requests.check_venv(&cx.project().join(format!("i{i}")), &format!("i{i}"));
    }
    let expected = snapshot(&installed);
    for venv in &mounts {
        let served = venv_site_packages(venv);
        venv_python(venv, &format!("import {}", requests.imports));
        assert!(
            snapshot(&served) == expected,
            "{} serves other files than the installed layout",
            venv.display()
        );
    }
    check_site_packages(
        &venv_site_packages(&mounts[0]),
        &requests.wheel_files(),
        "mount m0",
    );
    drop(guards);
    assert_cache_sound(&cx, &cx.cache_dir(), "mounts beside installs");
}

/// Three synthetic locks of different sizes that overlap: alpha + beta + shared, gamma +
/// shared, and delta + gamma (the same gamma wheel as the second).
fn three_locks(root: &Path) -> [Project; 3] {
    let (ab, g) = two_locks(root);
    let d = Project::synthetic(
        &root.join("wheels-d"),
        &[
            WheelBuilder::new("delta", "3.0")
                .file("delta/__init__.py", &module("delta", 1500))
                .file("delta/table.bin", &[3u8; 120_000]),
            WheelBuilder::new("gamma", "2.0").file("gamma.py", &module("gamma", 1000)),
        ],
        "delta, gamma",
    );
    [ab, g, d]
}

/// The bytes `cache prune` manages in the cache at `dir` (nothing else may be using it).
fn managed_size(dir: &Path) -> u64 {
    let opts = PruneOptions {
        dry_run: true,
        max_size: None,
    };
    prune(&Cache::new(dir, None), opts, &|_| false)
        .expect("dry-run prune")
        .size_before
}

/// Whether some prune's warnings name the venv in `dir` as stranded by `--max-size`.
fn stranded(prunes: &[Output], dir: &Path) -> bool {
    let venv = format!("{}/.venv lost what it used", dir.display());
    prunes
        .iter()
        .any(|out| String::from_utf8_lossy(&out.stderr).contains(&venv))
}

/// Runs `install` of each project of `plan` at once (see [`race`]) while `cache prune
/// --max-size SIZE` runs again and again, the last time after every install ended; returns the
/// installs' outputs and the prunes'. Each is asserted to have succeeded: installs hold the cache
/// lock shared, so a prune waits for them and none fails for what a prune took.
fn race_with_prunes(
    cx: &TestContext,
    plan: &[(&Project, PathBuf)],
    size: &str,
) -> (Vec<Output>, Vec<Output>) {
    let done = AtomicBool::new(false);
    let (installs, prunes) = std::thread::scope(|s| {
        let pruner = s.spawn(|| {
            let mut outs = Vec::new();
            loop {
                let last = done.load(Ordering::SeqCst);
                let out = cx
                    .dx_py()
                    .args(["cache", "prune", "--max-size", size])
                    .stdin(Stdio::null())
                    .output()
                    .expect("run cache prune");
                outs.push(out);
                if last {
                    break outs;
                }
            }
        });
        let installs = race(cx, plan, &[]);
        done.store(true, Ordering::SeqCst);
        (installs, pruner.join().expect("prune loop"))
    });
    for (out, (_, dir)) in installs.iter().zip(plan) {
        assert_success(out, &format!("install in {}", dir.display()));
    }
    for out in &prunes {
        assert_success(out, "cache prune --max-size beside installs");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !said.contains("over `--max-size`"),
            "no live mount holds anything: {said}"
        );
    }
    (installs, prunes)
}

/// `cache prune --max-size` run again and again while eight installs of three locks race on
/// one cache, twice: on a cold cache, then (the same venvs again) on what the prunes left of it,
/// so that installs remake evicted layouts and objects while prunes run. Prune waits for
/// installs (they hold the cache lock shared), so every install succeeds; at the end a venv is
/// whole (imports, every file with its RECORD sha256) and a live root unless a prune of the
/// second round named it stranded; the store verifies; and the last prune, after the installs,
/// brings the managed entries within the size, after which nothing more would go.
#[test]
fn max_size_holds_under_eight_concurrent_installs() {
    let cx = TestContext::new();
    let locks = three_locks(cx.temp.path());
    // The size: what the first lock alone takes, plus half of what the other two add, measured
    // on a scratch cache; all three never fit, so eviction must happen.
    let scratch = TestContext::new();
    let mut sizes = Vec::new();
    for (i, project) in locks.iter().enumerate() {
        let dir = scratch.temp.path().join(format!("s{i}"));
        project.write_requirements(&dir);
        install_in(&scratch, project, &dir, "install on the scratch cache");
        sizes.push(managed_size(&scratch.cache_dir()));
    }
    let size = sizes[0] + (sizes[2] - sizes[0]) / 2;
    assert!(sizes[0] < size && size < sizes[2], "{sizes:?}");
    let size_arg = size.to_string();

    let plan: Vec<(&Project, PathBuf)> = (0..8)
        .map(|i| {
            let project = &locks[[0, 1, 2, 0, 1, 2, 0, 1][i]];
            (project, cx.temp.path().join(format!("race-p{i}")))
        })
        .collect();
    let (_, first) = race_with_prunes(&cx, &plan, &size_arg);
    // All three locks together do not fit: a prune of the first round evicted something (the
    // last one ran after every install).
    let evicted = |prunes: &[Output]| {
        prunes
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stdout).contains("evicted"))
    };
    assert!(
        evicted(&first),
        "no prune evicted anything under {size} bytes"
    );
    // Now the cache fits: at least one lock's entries are gone, and the second round remakes
    // them while prunes run.
    assert!(managed_size(&cx.cache_dir()) <= size);
    let (_, prunes) = race_with_prunes(&cx, &plan, &size_arg);

    let opts = PruneOptions {
        dry_run: true,
        max_size: Some(size),
    };
    let after = prune(&Cache::new(cx.cache_dir(), None), opts, &|_| false).unwrap();
    assert!(
        after.size_before <= size,
        "{} bytes left over a max size of {size}",
        after.size_before
    );
    assert!(
        after.removed.is_empty() && after.stranded.is_empty(),
        "a prune after the last one still finds work: {after:?}"
    );

    // Every venv nobody was told to reinstall (since its last install) is whole and live.
    let live: Vec<&Path> = after.live.iter().map(|r| r.path.as_path()).collect();
    let mut whole = 0;
    for (project, dir) in &plan {
        if stranded(&prunes, dir) {
            continue;
        }
        let venv = dir.join(".venv");
        project.check_venv(&venv, &dir.display().to_string());
        let tail = venv.strip_prefix(cx.temp.path()).unwrap();
        assert!(
            live.iter().any(|p| p.ends_with(tail)),
            "{} is whole but not a live root: {live:?}",
            venv.display()
        );
        whole += 1;
    }
    eprintln!(
        "{whole} of 8 venvs whole after {} + {} prunes under {size} bytes",
        first.len(),
        prunes.len()
    );
    assert_cache_sound(&cx, &cx.cache_dir(), "installs racing max-size prunes");

    // A stranded venv comes back with one more install.
    if let Some((project, dir)) = plan.iter().find(|(_, d)| stranded(&prunes, d)) {
        install_in(&cx, project, dir, "install into a stranded venv");
        project.check_venv(&dir.join(".venv"), "the restored venv");
    }
}
