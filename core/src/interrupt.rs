//! Interrupting a command: what a Ctrl-C or SIGTERM stops, removes and undoes before the
//! process exits.
//!
//! ```text
//! SIGINT/TERM:   handler writes a byte ─► watcher thread: stopping = true
//!                  every child started by [`spawn`] is stopped by its runner (polling
//!                  [`is_stopping`]); the watcher waits for none to be left (or a limit)
//!                  ─► removes this process's temporaries ─► runs what commands registered
//!                  ([`undo_on_interrupt`]) ─► `finish(128 + signal)` (130 for Ctrl-C)
//! ```
//!
//! The application opts in with [`catch`] and says how the process ends (the CLI passes
//! `std::process::exit`): the library never exits on its own. The CLI catches signals before it
//! may build, because build hooks run in process groups of their own (`build::stop`) that the
//! terminal's Ctrl-C no longer reaches. Nothing is half-published either way: builds publish by
//! renaming finished directories, the store by renaming finished files, and the watcher removes
//! this process's temporaries (build scratch, downloads, objects being written) and undoes what
//! commands registered (a venv being made) before `finish`. A second Ctrl-C ends the process at
//! once (default action).
//!
//! Elsewhere (Windows) the console sends Ctrl-C to every process attached to it, children
//! included, and nothing is caught.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

/// How long the watcher waits for stopped children before it cleans up anyway.
#[cfg(unix)]
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// Children alive, and whether builds are being stopped (read under one lock, so that no
/// child starts after the watcher saw none running).
struct Registry {
    stopping: bool,
    running: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    stopping: false,
    running: 0,
});
/// Signalled when a child ends.
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

/// A child process, counted while it lives so that an interrupted process waits for it.
pub struct Running {
    /// The process.
    pub child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        r.running -= 1;
        ENDED.notify_all();
    }
}

/// Starts `cmd`, counted while it runs; `Ok(None)` when this process is being stopped (no child
/// starts after the watcher saw none running). Its runner must poll [`is_stopping`] and stop it.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Option<Running>> {
    let mut r = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if r.stopping {
        return Ok(None);
    }
    let child = cmd.spawn()?;
    r.running += 1;
    Ok(Some(Running { child }))
}

/// The directories where this process's temporaries are removed when it is interrupted.
#[cfg(unix)]
static ARMED: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();

/// Catches SIGINT and SIGTERM from now on (once per process; later calls do nothing): a signal
/// stops every running child, removes this process's temporaries in `temp_dirs` (the cache's,
/// `Cache::temp_dirs`), runs what was registered to undo, then calls `finish` with 128 + the
/// signal from the watcher thread (the application ends the process there).
pub fn catch(temp_dirs: Vec<PathBuf>, finish: fn(i32) -> !) {
    // Windows: the console's Ctrl-C reaches the children themselves (see the module docs).
    #[cfg(not(unix))]
    drop((temp_dirs, finish));
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
            .spawn(move || watch(reader, &signals, finish));
        if let Err(e) = spawned {
            tracing::debug!("Cannot catch Ctrl-C: {e}");
            for signal in signals {
                crate::sys::default_signal_action(signal);
            }
        }
    }
}

/// The watcher: waits for a signal, then stops children, cleans up and calls `finish`.
#[cfg(unix)]
fn watch(mut reader: std::io::PipeReader, signals: &[libc::c_int], finish: fn(i32) -> !) {
    use std::io::Read;
    let mut byte = [0u8];
    if reader.read_exact(&mut byte).is_err() {
        return;
    }
    for &signal in signals {
        crate::sys::default_signal_action(signal);
    }
    let stopped = stop_all(STOP_LIMIT);
    let dirs = ARMED.get().map_or(&[][..], Vec::as_slice);
    let swept = crate::temp::remove_own(dirs);
    let undone = run_undo();
    tracing::debug!(
        "Interrupted: {stopped} children stopped, {} temporaries removed, {undone} undone",
        swept.count
    );
    finish(128 + i32::from(byte[0]));
}

/// Marks this process as stopping and waits up to `limit` for every counted child to end
/// (their runners stop them); returns how many were running.
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

/// Blocks for good when this process is being stopped: the watcher ends it once the children
/// are stopped and the temporaries removed. A command's main thread calls this before it
/// reports an error, which then is only the interruption's echo.
pub fn wait_if_stopping() {
    while is_stopping() {
        std::thread::sleep(Duration::from_secs(1));
    }
}
