//! The detached mount server: `dx-py mount` starts itself again with a hidden subcommand that
//! runs [`crate::server::run`], hands it a [`ServerSpec`] on its stdin, and reads its
//! [`ServerStatus`] lines from its stdout until the mount is live.
//!
//! ```text
//! {cache}/mounts/
//! ├── <key>.log     the server's stderr (key = blake3 of the mount point, 16 hex)
//! ├── <key>.status  its latest ServerStatus (JSON), for whoever asks after `mount` returned
//! └── <key>.pid     "<pid>\n<mount point>\n" while it runs
//! ```
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dx_py_core::mount::{ServerSpec, ServerStatus, StatusError};

use crate::mounts;
use crate::serve::MountError;

/// A server process started by [`mount_background`].
#[derive(Debug)]
pub struct BackgroundMount {
    /// The server process (already detached into its own session).
    pub child: Child,
    /// The absolute mount point.
    pub mountpoint: PathBuf,
    /// The server's log file.
    pub log: PathBuf,
    /// The states it reports after [`ServerStatus::Mounted`]; `None` when its stdout closed.
    statuses: mpsc::Receiver<Result<Option<ServerStatus>, StatusError>>,
}

impl BackgroundMount {
    /// Waits for the server's final state (its work after mounting done or failed). A server
    /// that exits or reports nonsense first is an error carrying its log's end.
    pub fn wait_final(&mut self) -> Result<ServerStatus, MountError> {
        loop {
            match self.statuses.recv() {
                Ok(Ok(Some(status))) if status.is_final() => return Ok(status),
                Ok(Ok(Some(status))) => tracing::debug!("mount server: {status}"),
                Ok(Err(e)) => return Err(self.failed(format!("reported nonsense ({e})"))),
                Ok(Ok(None)) | Err(_) => {
                    let status = self.child.wait()?;
                    let what = format!("exited ({status}) before its bytecode was ready");
                    return Err(self.failed(what));
                }
            }
        }
    }

    fn failed(&self, what: String) -> MountError {
        MountError::ServerFailed {
            path: self.mountpoint.clone(),
            what,
            log_tail: log_tail(&self.log),
        }
    }
}

/// The file-name stem of a mount point's files in the state directory.
pub fn state_key(mountpoint: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    dx_py_core::hash::ContentHash::of(mountpoint.as_os_str().as_bytes()).to_hex()[..16].to_string()
}

/// Runs `server` (a command that serves the [`ServerSpec`] it reads on stdin) in a new session
/// with its stderr in `{state_dir}/<key>.log`, hands it `spec`, and waits until it reports the
/// mount live. If the server exits first, or `timeout` passes (the server is then killed), the
/// error carries the end of its log.
pub fn mount_background(
    mut server: Command,
    spec: &ServerSpec,
    state_dir: &Path,
    timeout: Duration,
) -> Result<BackgroundMount, MountError> {
    let abs = mounts::absolute(&spec.mountpoint)?;
    fs_err::create_dir_all(state_dir)?;
    let key = state_key(&abs);
    let log = state_dir.join(format!("{key}.log"));
    // A state left by an earlier server of this mount point is not this one's.
    let _ = fs_err::remove_file(crate::server::status_file(state_dir, &abs));
    let err = fs_err::File::create(&log)?;
    server
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err.into_parts().0));
    crate::sys::detach_on_spawn(&mut server);
    let mut child = server.spawn()?;
    let failed = |what: String| MountError::ServerFailed {
        path: abs.clone(),
        what,
        log_tail: log_tail(&log),
    };
    // Written whole, then closed: the server reads to the end.
    if let Some(stdin) = child.stdin.take()
        && let Err(e) = spec.write_to(stdin)
    {
        tracing::debug!("handing the spec to the mount server: {e}");
    }
    let statuses = read_statuses(child.stdout.take());
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match statuses.recv_timeout(left) {
            Ok(Ok(Some(ServerStatus::Mounted))) => break,
            Ok(Ok(Some(other))) => tracing::debug!("mount server: {other}"),
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("reported nonsense ({e})")));
            }
            Ok(Ok(None)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                return Err(failed(format!("exited with {status}")));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Ours to stop: we started it a moment ago.
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("did not mount within {timeout:?}")));
            }
        }
    }
    let record = format!("{}\n{}\n", child.id(), abs.display());
    fs_err::write(state_dir.join(format!("{key}.pid")), record)?;
    Ok(BackgroundMount {
        child,
        mountpoint: abs,
        log,
        statuses,
    })
}

/// The states read from a server's stdout, on a thread of their own (so that waiting for one
/// can time out); ends after the stream's end or the first unreadable line.
fn read_statuses(
    stdout: Option<std::process::ChildStdout>,
) -> mpsc::Receiver<Result<Option<ServerStatus>, StatusError>> {
    let (send, receive) = mpsc::channel();
    let Some(stdout) = stdout else {
        let _ = send.send(Ok(None));
        return receive;
    };
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let next = ServerStatus::read_line(&mut reader);
            let end = !matches!(next, Ok(Some(_)));
            if send.send(next).is_err() || end {
                break;
            }
        }
    });
    receive
}

/// The pid recorded for the server of `mountpoint`, if its record exists and the process is
/// still alive.
pub fn recorded_pid(state_dir: &Path, mountpoint: &Path) -> Option<u32> {
    let abs = mounts::absolute(mountpoint).ok()?;
    let text = std::fs::read_to_string(state_dir.join(format!("{}.pid", state_key(&abs)))).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Waits (up to `timeout`) for process `pid` to be gone or a zombie: after an unmount, the old
/// server must be finished before a new mount at the same place, or its exit could take the new
/// mount down. Returns whether it ended in time.
pub fn wait_for_exit(pid: u32, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        // Field 3 of /proc/PID/stat is the state; `Z` (zombie) or `X` (dead) count as gone.
        let alive = state
            .as_deref()
            .and_then(|s| s.rsplit(')').next())
            .map(str::trim_start)
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'));
        if !alive {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes the pid record (and log) of `mountpoint` after it was unmounted.
pub fn forget(state_dir: &Path, mountpoint: &Path) {
    if let Ok(abs) = mounts::absolute(mountpoint) {
        let key = state_key(&abs);
        let _ = std::fs::remove_file(state_dir.join(format!("{key}.pid")));
    }
}

/// What [`unmount_recorded`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// The mount is gone now.
    Now {
        /// Its server had died (the mount was dead).
        server_had_died: bool,
        /// The server's pid, when it had not exited 5 s after the unmount.
        server_still_running: Option<u32>,
    },
    /// Nothing is mounted there, but a dx-py mount was (this cache recorded one) or it is a
    /// venv: already unmounted, e.g. by the watcher of a server that died. Unmounting is
    /// idempotent for users.
    Already,
}

/// Unmounts the dx-py mount at `mountpoint` (recorded under `state_dir`), waits for its server
/// to exit, so that a mount made right after cannot be taken down by that exit, and forgets the
/// record. A path where nothing is mounted is [`Unmounted::Already`] if a mount was recorded
/// there or it is a venv; anything else is [`MountError::NotMounted`].
pub fn unmount_recorded(state_dir: &Path, mountpoint: &Path) -> Result<Unmounted, MountError> {
    let abs = mounts::absolute(mountpoint)?;
    if mounts::find_mount(&abs)?.is_none() {
        let key = state_key(&abs);
        let recorded = ["pid", "log"]
            .iter()
            .any(|ext| state_dir.join(format!("{key}.{ext}")).is_file());
        if recorded || abs.join("pyvenv.cfg").is_file() {
            forget(state_dir, &abs);
            return Ok(Unmounted::Already);
        }
        return Err(MountError::NotMounted(abs));
    }
    let server_had_died = mounts::is_dead_mount(&abs);
    let server = recorded_pid(state_dir, &abs);
    mounts::unmount(&abs)?;
    let server_still_running = server.filter(|&pid| !wait_for_exit(pid, Duration::from_secs(5)));
    forget(state_dir, &abs);
    Ok(Unmounted::Now {
        server_had_died,
        server_still_running,
    })
}

/// A trace to replay through the mount once it is live ([`crate::prewarm::replay_file`]).
#[derive(Clone, Debug)]
pub struct PrewarmFiles {
    /// The trace file.
    pub trace: PathBuf,
    /// The tree file the mount serves.
    pub tree: PathBuf,
}

/// The body of an [`crate::serve::AutoUnmount::Watcher`] process: blocks until stdin (a pipe
/// whose write end the server holds) reaches EOF — the server exited or was killed — then, if
/// a dead dx-py mount is left at `mountpoint`, unmounts it. A mount that is gone or alive (a new
/// server mounted there) is left alone. When the server says the mount is live (a byte on the
/// pipe), `prewarm` is replayed through it on a thread of this process: never the server's
/// (see [`crate::prewarm::replay_file`]).
pub fn watch(mountpoint: &Path, mut prewarm: Option<PrewarmFiles>) -> Result<(), MountError> {
    use std::io::Read;
    let abs = mounts::absolute(mountpoint)?;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {
                if let Some(files) = prewarm.take() {
                    let abs = abs.clone();
                    let spawned =
                        std::thread::Builder::new()
                            .name("prewarm".into())
                            .spawn(move || {
                                crate::prewarm::replay_file(&abs, &files.trace, &files.tree);
                            });
                    if let Err(e) = spawned {
                        tracing::debug!("no thread to prewarm: {e}");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // The kernel aborts the connection when the server's last /dev/fuse fd closes, which may be
    // a moment after the pipe closed (seconds on a loaded machine: the 5 s this waited once
    // were seen to run out); polling ends as soon as the mount is gone or dead.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if mounts::find_mount(&abs)?.is_none() {
            return Ok(());
        }
        if mounts::is_dead_mount(&abs) {
            tracing::warn!("the server of {} died; unmounting", abs.display());
            return mounts::unmount(&abs);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The last 20 lines of a log file (or a note that it is unreadable), without backtraces.
pub fn log_tail(log: &Path) -> String {
    match std::fs::read(log) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes)),
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
}

/// The last 20 lines of `text` once backtraces are left out: a server that panics (with
/// `RUST_BACKTRACE` set) would otherwise fill them with frames and push out the message that
/// says what went wrong.
fn tail(text: &str) -> String {
    let mut lines = Vec::new();
    let mut in_backtrace = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if line.starts_with("stack backtrace:") {
            in_backtrace = true;
            continue;
        }
        // A frame is `  N: symbol`, followed by `at file:line`; the block ends with notes.
        let frame = trimmed
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if in_backtrace && (frame || trimmed.starts_with("at ")) {
            continue;
        }
        in_backtrace = false;
        if trimmed.starts_with("note: Some details are omitted")
            || trimmed.starts_with("note: run with `RUST_BACKTRACE")
        {
            continue;
        }
        lines.push(line);
    }
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.trim().is_empty() {
        "(empty log)".to_string()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tail_keeps_the_message_and_drops_the_backtrace() {
        let mut log = String::from(
            "serving /v\nthread 'main' (7) panicked at cli/src/main.rs:9:5:\n`fusermount3` is not on PATH; install the `fuse3` package\nstack backtrace:\n",
        );
        for i in 0..40 {
            log += &format!(
                "   {i}: core::panicking::panic_fmt\n             at /rustc/x/library/core/src/panicking.rs:80:14\n"
            );
        }
        log += "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n";
        let t = super::tail(&log);
        assert_eq!(
            t,
            "serving /v\nthread 'main' (7) panicked at cli/src/main.rs:9:5:\n`fusermount3` is not on PATH; install the `fuse3` package"
        );
        // Lines that only look like frames outside a backtrace stay.
        assert_eq!(
            super::tail("error: 3: bad\n  at line 4"),
            "error: 3: bad\n  at line 4"
        );
        assert_eq!(super::tail(""), "(empty log)");
        let long: String = (0..30).map(|i| format!("line {i}\n")).collect();
        assert!(
            super::tail(&long).starts_with("line 10\n") && super::tail(&long).ends_with("line 29")
        );
    }
}
