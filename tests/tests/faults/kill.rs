//! kill -9 at many moments of installs, locks and mount servers, then one command: nothing the
//! killed process was writing is left in the cache, every object verifies, and an install gives
//! a working venv.
//!
//! Moments are delays spread over the run time of an uninterrupted run of the same command
//! (measured first), so that kills land while wheels are converted and stored, unpacked, compiled
//! and laid out, whatever the machine's speed.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dx_py_tests::{TestContext, assert_success};

use super::{Project, Unmount, leftovers, unmount};

/// Kills per command: enough to land in every phase, few enough for a 2-core CI machine.
const KILLS: u32 = 5;

/// `dx-py ARGS` in `cx`, output discarded (it is killed, so nothing reads it).
fn spawn(cx: &TestContext, args: &[&str]) -> std::process::Child {
    cx.dx_py()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dx-py")
}

impl Project {
    /// The one command after a kill (an install, which sweeps), then the checks: no
    /// leftovers, `store verify`, and an install that gives a working venv whose files match
    /// RECORD.
    fn recover_and_check(&self, cx: &TestContext, what: &str) {
        let out = cx
            .dx_py()
            .args(self.args("install", &["--venv", ".venv-after"]))
            .output()
            .unwrap();
        assert_success(&out, &format!("install after {what}"));
        super::assert_cache_sound(cx, &cx.cache_dir(), what);
        let out = cx
            .dx_py()
            .args(self.args("install", &["--venv", ".venv-check"]))
            .output()
            .unwrap();
        assert_success(&out, &format!("second install after {what}"));
        self.check_venv(&cx.project().join(".venv-check"), what);
    }
}

/// Prints what a kill left behind; true when that includes a temporary (not only the record
/// of the killed process).
fn report(cx: &TestContext, name: &str, at: Duration, run: Duration) -> bool {
    let left = leftovers(&cx.cache_dir());
    let temps: Vec<String> = left
        .iter()
        .filter_map(|p| p.strip_prefix(cx.cache_dir()).ok())
        .filter(|p| !p.starts_with(".writers"))
        .map(|p| p.display().to_string())
        .collect();
    eprintln!("{name}: killed at {at:.0?} of {run:.0?}: {temps:?}");
    !temps.is_empty()
}

/// Runs `kill_at` at `KILLS` moments spread evenly over `run`; while none of them caught a
/// temporary (`kill_at` returns whether it did), again at moments between those, then over
/// twice and four times `run` (a loaded machine makes the killed runs slower than the measured
/// one, so every kill can land before the first write). Returns how many kills caught one.
fn kill_at_moments(run: Duration, mut kill_at: impl FnMut(Duration) -> bool) -> usize {
    let mut dirty = 0;
    for (offset, scale) in [(0.5, 1.0), (0.0, 1.0), (0.25, 2.0), (0.75, 4.0)] {
        if dirty > 0 {
            break;
        }
        for k in 0..KILLS {
            let at = run.mul_f64(scale * (f64::from(k) + offset) / f64::from(KILLS));
            dirty += usize::from(kill_at(at));
        }
    }
    dirty
}

/// Runs `args` once to completion in a fresh context (after `setup`) to learn how long it
/// takes, then `KILLS` times killed at moments spread over that time, each followed by the
/// recovery checks. Returns how many kills left temporaries behind (before recovery).
fn sweep(project: &Project, name: &str, args: &[&str], setup: impl Fn(&TestContext)) -> usize {
    let cx = project.context();
    setup(&cx);
    let start = Instant::now();
    let out = cx.dx_py().args(args).output().unwrap();
    let run = start.elapsed();
    assert_success(&out, name);
    kill_at_moments(run, |at| {
        let cx = project.context();
        setup(&cx);
        let mut child = spawn(&cx, args);
        std::thread::sleep(at);
        // Ours: started just above. `kill` is SIGKILL on unix.
        let _ = child.kill();
        let _ = child.wait();
        let dirty = report(&cx, name, at, run);
        project.recover_and_check(&cx, &format!("{name} killed at {at:?}"));
        dirty
    })
}

// The sweeps run as separate tests so that cargo runs them side by side: most of their time is
// spent waiting for interpreters and the disk. Each asserts that some kill caught a temporary:
// kills that never do would prove nothing about sweeping.

#[test]
fn a_killed_cold_install_leaves_nothing() {
    // Lock (convert and store), unpack, compile, lay out.
    let Some(project) = Project::requests() else {
        return;
    };
    let install = project.args("install", &["--venv", ".venv"]);
    assert!(sweep(&project, "install", &install, |_| {}) > 0);
}

#[test]
fn a_killed_lock_leaves_nothing() {
    // Convert and store.
    let Some(project) = Project::requests() else {
        return;
    };
    assert!(sweep(&project, "lock", &project.args("lock", &[]), |_| {}) > 0);
}

#[test]
fn a_killed_install_from_a_lock_leaves_nothing() {
    // Bytecode compile, unpacked copies, the layout build.
    let Some(project) = Project::requests() else {
        return;
    };
    let install = project.args("install", &["--venv", ".venv"]);
    let dirty = sweep(&project, "install from a lock", &install, |cx| {
        cx.run_ok(&project.args("lock", &[]));
    });
    assert!(dirty > 0);
}

#[test]
fn a_killed_mount_server_leaves_nothing() {
    let Some(project) = Project::requests() else {
        return;
    };
    if !dx_py_tests::can_mount() {
        return;
    }
    assert!(mount_server_sweep(&project) > 0);
}

/// `mount -r` hands storing and compiling of local wheels to its server: the server is killed
/// at moments spread over that work, the venv unmounted, then the usual recovery.
fn mount_server_sweep(project: &Project) -> usize {
    let mount = project.args("mount", &[".venv", "--wait-bytecode"]);
    let cx = project.context();
    let start = Instant::now();
    let out = cx.dx_py().args(&mount).output().unwrap();
    let run = start.elapsed();
    unmount(&cx, &cx.project().join(".venv"));
    assert_success(&out, "mount -r");
    kill_at_moments(run, |at| {
        let cx = project.context();
        let out = cx
            .dx_py()
            .args(project.args("mount", &[".venv"]))
            .output()
            .unwrap();
        let guard = Unmount {
            cx: &cx,
            venv: cx.project().join(".venv"),
        };
        assert_success(&out, "mount -r");
        std::thread::sleep(at);
        if let Some(pid) = server_pid(&cx) {
            // The server this test's mount started.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            wait_gone(pid);
        }
        drop(guard);
        let dirty = report(&cx, "mount server", at, run);
        project.recover_and_check(&cx, &format!("mount server killed at {at:?}"));
        dirty
    })
}

/// The pid in the mount's record (`{cache}/mounts/<key>.pid`, first line).
fn server_pid(cx: &TestContext) -> Option<u32> {
    let entries = std::fs::read_dir(cx.cache_dir().join("mounts")).ok()?;
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            text.lines().next()?.trim().parse().ok()
        })
}

/// Waits until `pid` has exited (gone, or a zombie of the session it was detached into).
fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = state
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']));
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("process {pid} did not exit after kill -9");
}

/// A temporary of a process that has exited, and one of this (live) test process.
#[test]
fn cache_stats_counts_leftovers_and_clean_removes_only_the_dead_ones() {
    use dx_py_core::temp::Owner;
    let cx = TestContext::new();
    let store = cx.cache_dir().join("store");
    let unpacked = store.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let me = Owner::current();
    let gone = Owner {
        pid: child.id(),
        start: me.start,
    };
    child.wait().unwrap();
    let dead_file = store.join(format!("{}abc", gone.prefix()));
    std::fs::write(&dead_file, vec![0u8; 3000]).unwrap();
    let dead_dir = unpacked.join(format!("{}def", gone.prefix()));
    std::fs::create_dir_all(dead_dir.join("pkg")).unwrap();
    std::fs::write(dead_dir.join("pkg/x.py"), vec![b'#'; 1000]).unwrap();
    let live = store.join(format!("{}ghi", me.prefix()));
    std::fs::write(&live, vec![0u8; 96]).unwrap();

    let stats = cx.run_ok(&["cache", "stats"]);
    assert!(
        stats.contains("temp:     3 (4.0 KiB; 1 of running processes, 2 left by interrupted ones)"),
        "{stats}"
    );
    let out = cx
        .dx_py()
        .args(["cache", "clean", "--layouts"])
        .output()
        .unwrap();
    assert_success(&out, "cache clean");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Removed 2 temporaries (3.9 KiB) left by interrupted processes"),
        "{said}"
    );
    assert!(!dead_file.exists() && !dead_dir.exists());
    assert!(live.exists(), "a running process's temporary was removed");
    let stats = cx.run_ok(&["cache", "stats"]);
    assert!(stats.contains("temp:     1 (96 B; 1 of running"), "{stats}");
}
