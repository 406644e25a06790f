//! The detached mount server: `dx-py mount` starts itself again with a hidden subcommand that
//! calls [`crate::serve::serve`], and returns once the mount is live.
//!
//! ```text
//! {cache}/mounts/
//! ├── <key>.log     the server's stdout and stderr (key = blake3 of the mount point, 16 hex)
//! └── <key>.pid     "<pid>\n<mount point>\n" while it runs
//! ```
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
}

/// The file-name stem of a mount point's files in the state directory.
pub fn state_key(mountpoint: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    dx_py_core::hash::ContentHash::of(mountpoint.as_os_str().as_bytes()).to_hex()[..16].to_string()
}

/// Runs `server` (a command that mounts on `mountpoint` and serves until unmounted) in a new
/// session with its output in `{state_dir}/<key>.log`, and waits until `mountpoint` shows up
/// as a dx-py mount in `/proc/self/mountinfo`. If the server exits first, or `timeout` passes
/// (the server is then killed), the error carries the end of its log.
pub fn mount_background(
    mut server: Command,
    mountpoint: &Path,
    state_dir: &Path,
    timeout: Duration,
) -> Result<BackgroundMount, MountError> {
    let abs = mounts::absolute(mountpoint)?;
    fs_err::create_dir_all(state_dir)?;
    let key = state_key(&abs);
    let log = state_dir.join(format!("{key}.log"));
    let out = fs_err::File::create(&log)?;
    let err = out.file().try_clone()?;
    server
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.into_parts().0))
        .stderr(Stdio::from(err));
    crate::sys::detach_on_spawn(&mut server);
    let mut child = server.spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if mounts::find_mount(&abs)?.is_some() {
            break;
        }
        if let Some(status) = child.try_wait()? {
            return Err(MountError::ServerFailed {
                path: abs,
                what: format!("exited with {status}"),
                log_tail: log_tail(&log),
            });
        }
        if Instant::now() > deadline {
            // Ours to stop: we started it a moment ago.
            let _ = child.kill();
            let _ = child.wait();
            return Err(MountError::ServerFailed {
                path: abs,
                what: format!("did not mount within {timeout:?}"),
                log_tail: log_tail(&log),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let record = format!("{}\n{}\n", child.id(), abs.display());
    fs_err::write(state_dir.join(format!("{key}.pid")), record)?;
    Ok(BackgroundMount {
        child,
        mountpoint: abs,
        log,
    })
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

/// The body of an [`crate::serve::AutoUnmount::Watcher`] process: blocks until stdin (a pipe
/// whose write end the server holds) reaches EOF — the server exited or was killed — then, if
/// a dead dx-py mount is left at `mountpoint`, unmounts it. A mount that is gone or alive (a new
/// server mounted there) is left alone.
pub fn watch(mountpoint: &Path) -> Result<(), MountError> {
    use std::io::Read;
    let abs = mounts::absolute(mountpoint)?;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // The kernel aborts the connection when the server's last /dev/fuse fd closes, which may be
    // a moment after the pipe closed.
    let deadline = Instant::now() + Duration::from_secs(5);
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
