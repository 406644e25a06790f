//! Stopping builds: a timeout, Ctrl-C or `kill` ends a backend and everything it started.
//!
//! ```text
//! hook process = leader of its own process group ── backend ── compiler, subprocess, …
//! timeout:       stop(): SIGTERM to the group ─ ≤ GRACE for it to empty ─ SIGKILL to the group
//! SIGINT/TERM:   handler writes a byte ─► watcher thread: stopping = true
//!                  every hook runner (polling each POLL) stops its group, returns Interrupted
//!                  watcher: no hook left (or GRACE + 2 s) ─► remove this process's temporaries
//!                  ─► exit 128 + signal (130 for Ctrl-C)
//! ```
//!
//! Each hook runs in its own process group (unix) so that a backend's children go with it: a
//! killed driver alone would leave a compiler running and writing. Being in their own group,
//! backends no longer get the terminal's Ctrl-C, so dx-py catches SIGINT and SIGTERM itself as
//! soon as it may build ([`arm`], called by `Builder::new`) and stops every running build the
//! same way. Nothing is half-published either way: builds publish by renaming finished
//! directories, the store by renaming finished files, and the watcher removes this process's
//! temporaries (build scratch, downloads, objects being written) and undoes what its commands
//! registered ([`undo_on_interrupt`]: a venv being made) before it exits. A second Ctrl-C ends
//! the process at once.
//!
//! Elsewhere (Windows) the console sends Ctrl-C to every process attached to it, backends
//! included, and a hook that times out is killed alone.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

/// How often a hook runner looks at its process, the clock and the stop mark.
pub(crate) const POLL: Duration = Duration::from_millis(10);
/// How long a stopped group may take to exit after SIGTERM before it gets SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// Hook processes alive, and whether builds are being stopped (read under one lock, so that no
/// hook starts after the watcher saw none running).
struct Registry {
    stopping: bool,
    running: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    stopping: false,
    running: 0,
});
/// Signalled when a hook process ends.
static ENDED: Condvar = Condvar::new();
/// `Registry::stopping`, for runners to poll without the lock.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Work the watcher does before exiting: what commands registered to undo if interrupted.
type Undo = Box<dyn FnOnce() + Send>;
static UNDO: Mutex<BTreeMap<u64, Undo>> = Mutex::new(BTreeMap::new());
static NEXT_UNDO: AtomicU64 = AtomicU64::new(0);

/// Registered work, forgotten (not run) when dropped.
#[must_use]
pub struct UndoOnInterrupt(u64);

impl Drop for UndoOnInterrupt {
    fn drop(&mut self) {
        UNDO.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// Runs `undo` if a signal stops this process (after [`arm`]) while the returned guard lives:
/// the process then exits from the watcher thread, so the guards and `Drop`s of the command's
/// own thread never run. For what a failed command undoes in a `Drop` (a venv it made).
pub fn undo_on_interrupt(undo: impl FnOnce() + Send + 'static) -> UndoOnInterrupt {
    let id = NEXT_UNDO.fetch_add(1, Ordering::Relaxed);
    UNDO.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, Box::new(undo));
    UndoOnInterrupt(id)
}

/// Runs (once) everything registered by [`undo_on_interrupt`] and not yet dropped.
#[cfg(unix)]
fn run_undo() -> usize {
    let all = std::mem::take(&mut *UNDO.lock().unwrap_or_else(PoisonError::into_inner));
    let n = all.len();
    for undo in all.into_values() {
        undo();
    }
    n
}

/// Whether this process was told to stop (SIGINT or SIGTERM after [`arm`]).
pub fn is_stopping() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// A hook process, counted while it lives so that an interrupted dx-py waits for it.
pub(crate) struct Running {
    /// The process (leader of its own group on unix).
    pub(crate) child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        r.running -= 1;
        ENDED.notify_all();
    }
}

/// Starts `cmd` as the leader of a new process group (unix); `Ok(None)` when builds are being
/// stopped.
pub(crate) fn spawn(cmd: &mut Command) -> std::io::Result<Option<Running>> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if r.stopping {
        return Ok(None);
    }
    let child = cmd.spawn()?;
    r.running += 1;
    Ok(Some(Running { child }))
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

/// The directories where this process's temporaries are removed when it is interrupted.
#[cfg(unix)]
static ARMED: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();

/// Catches SIGINT and SIGTERM from now on (once per process; later calls do nothing): a signal
/// stops every running build, removes this process's temporaries in `temp_dirs` (the cache's,
/// `Cache::temp_dirs`) and exits with 128 + the signal.
pub fn arm(temp_dirs: Vec<PathBuf>) {
    // Windows: the console's Ctrl-C reaches the backends themselves (see the module docs).
    #[cfg(not(unix))]
    drop(temp_dirs);
    #[cfg(unix)]
    if ARMED.set(temp_dirs).is_ok() {
        let signals = [libc::SIGINT, libc::SIGTERM];
        let reader = match crate::sys::forward_signals(&signals) {
            Ok(reader) => reader,
            Err(e) => {
                // The default actions stay: a Ctrl-C then leaves temporaries the next command
                // sweeps and backends that finish on their own.
                tracing::debug!("Cannot catch Ctrl-C: {e}");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("dx-py-signals".into())
            .spawn(move || watch(reader, &signals));
        if let Err(e) = spawned {
            tracing::debug!("Cannot catch Ctrl-C: {e}");
            for signal in signals {
                crate::sys::default_signal_action(signal);
            }
        }
    }
}

/// The watcher: waits for a signal, then stops builds, cleans up and exits.
#[cfg(unix)]
fn watch(mut reader: std::io::PipeReader, signals: &[libc::c_int]) {
    use std::io::Read;
    let mut byte = [0u8];
    if reader.read_exact(&mut byte).is_err() {
        return;
    }
    for &signal in signals {
        crate::sys::default_signal_action(signal);
    }
    let stopped = stop_all(GRACE + Duration::from_secs(2));
    let dirs = ARMED.get().map_or(&[][..], Vec::as_slice);
    let swept = crate::temp::remove_own(dirs);
    let undone = run_undo();
    tracing::debug!(
        "Interrupted: {stopped} builds stopped, {} temporaries removed, {undone} undone",
        swept.count
    );
    std::process::exit(128 + i32::from(byte[0]));
}

/// Marks builds as stopping and waits up to `limit` for every hook process to end (their
/// runners stop their groups); returns how many were running.
#[cfg(unix)]
fn stop_all(limit: Duration) -> usize {
    let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    r.stopping = true;
    STOPPING.store(true, Ordering::Relaxed);
    let running = r.running;
    let deadline = Instant::now() + limit;
    while r.running > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        r = ENDED
            .wait_timeout(r, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    running
}

/// Blocks for good when this process is being stopped: the watcher exits it once the builds
/// are stopped and the temporaries removed. A command's main thread calls this before it
/// reports an error, which then is only the interruption's echo.
pub fn wait_if_stopping() {
    while is_stopping() {
        std::thread::sleep(Duration::from_secs(1));
    }
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
