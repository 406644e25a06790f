//! Stopping builds: a timeout or an interrupted dx-py ends a backend and everything it started.
//!
//! ```text
//! hook process = leader of its own process group ── backend ── compiler, subprocess, …
//! timeout or interrupt::is_stopping():
//!                stop(): SIGTERM to the group ─ ≤ GRACE for it to empty ─ SIGKILL to the group
//! ```
//!
//! Each hook runs in its own process group (unix) so that a backend's children go with it: a
//! killed driver alone would leave a compiler running and writing. Being in their own group,
//! backends no longer get the terminal's Ctrl-C: the application catches it
//! ([`crate::interrupt::catch`]) and every hook runner stops its group when told to.
//!
//! Elsewhere (Windows) a hook that times out is killed alone.
use std::process::{Child, Command};
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

use crate::interrupt::Running;

/// How often a hook runner looks at its process, the clock and the stop mark.
pub(crate) const POLL: Duration = Duration::from_millis(10);
/// How long a stopped group may take to exit after SIGTERM before it gets SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// Starts `cmd` as the leader of a new process group (unix), counted by the interrupt watcher;
/// `Ok(None)` when this process is being stopped.
pub(crate) fn spawn(cmd: &mut Command) -> std::io::Result<Option<Running>> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    crate::interrupt::spawn(cmd)
}

/// Ends `child` and every process of its group: SIGTERM, at most `grace` for the group to
/// empty, then SIGKILL. Returns once the child is reaped.
#[cfg(unix)]
pub(crate) fn stop(child: &mut Child, grace: Duration) {
    use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
    let Some(group) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // The group id stays reserved (no new process gets it as a pid) while any member lives,
    // so signalling it after the leader was reaped reaches only what the backend started.
    let _ = kill_process_group(group, Signal::TERM);
    let deadline = Instant::now() + grace;
    let mut reaped = false;
    while Instant::now() < deadline {
        reaped = reaped || child.try_wait().is_ok_and(|s| s.is_some());
        // ESRCH: no process is left in the group (an unreaped leader still counts).
        if reaped && test_kill_process_group(group).is_err() {
            return;
        }
        std::thread::sleep(POLL);
    }
    let _ = kill_process_group(group, Signal::KILL);
    let _ = child.wait();
}

/// Ends `child` (Windows: its own children are not reached).
#[cfg(not(unix))]
pub(crate) fn stop(child: &mut Child, _grace: Duration) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether process `pid` runs, for tests (a zombie has ended; `None` where it cannot be known
/// counts as running).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn alive(pid: u32) -> bool {
    crate::temp::Owner { pid, start: 0 }.is_alive() != Some(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A group that ignores SIGTERM (the shell and, inheriting that, its child) gets SIGKILL
    /// once the grace period is over; `stop` returns with both gone.
    #[test]
    fn a_group_ignoring_sigterm_is_killed_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"trap '' TERM; sleep 300 & echo "$$ $!" > "$0.part"; mv "$0.part" "$0"; wait"#)
            .arg(&pids);
        let mut running = spawn(&mut cmd).unwrap().expect("not stopping");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids.exists() {
            assert!(Instant::now() < deadline, "the shell never started");
            std::thread::sleep(POLL);
        }
        let text = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<u32> = text
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "{text}");
        let start = Instant::now();
        stop(&mut running.child, Duration::from_millis(300));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        for &pid in &pids {
            assert!(!alive(pid), "process {pid} survived");
        }
    }
}
