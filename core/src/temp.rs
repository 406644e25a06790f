//! Owned temporaries: every temporary file or directory dx-py creates in the cache is named after
//! the process that made it, so that whoever finds it later can tell a write in progress from the
//! leftover of a process that was killed, and remove only the latter.
//!
//! A name is `.tmp-{pid}-{start}-{random}`: `start` is the owner's start time (clock ticks since
//! boot, field 22 of `/proc/{pid}/stat`), so a pid reused by a later process does not keep a
//! dead owner's leftovers alive. Where start times cannot be read (not Linux) it is `0` and the
//! pid alone decides; where even that is impossible (Windows) a leftover is removed once it has
//! not changed for [`UNJUDGED_AGE`]. Names from older versions (`.tmp…` without an owner) are
//! treated the same way.
//!
//! A process records itself in `{cache}/.writers/{pid}-{start}` before it creates its first
//! temporary and removes the record when it exits normally ([`record_writers_in`],
//! [`release_writer`]). A record whose process is gone means leftovers may exist: commands check
//! that directory (one `readdir` of a nearly empty directory, so warm installs stay O(1)) and
//! only then sweep the directories where temporaries are made ([`sweep_after_crashes`]).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// What every temporary's name starts with (also the names older versions gave them).
const PREFIX: &str = ".tmp";
/// How long a temporary whose owner cannot be judged must stay untouched before it is removed.
pub const UNJUDGED_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The directory under the cache root where writing processes record themselves.
const WRITERS_DIR: &str = ".writers";

/// The process that created a temporary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Its process id.
    pub pid: u32,
    /// Its start time in clock ticks since boot; `0` when unknown.
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let pid = std::process::id();
            Self {
                pid,
                start: proc_stat(pid).map_or(0, |s| s.start),
            }
        })
    }

    /// The name prefix of this owner's temporaries: `.tmp-{pid}-{start}-`.
    pub fn prefix(&self) -> String {
        format!("{PREFIX}-{}-{}-", self.pid, self.start)
    }

    /// The owner a temporary's file name records, if it records one.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.strip_prefix(PREFIX)?.strip_prefix('-')?.splitn(3, '-');
        let pid = parts.next()?;
        let start = parts.next()?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(pid) || !digits(start) || parts.next().is_none_or(str::is_empty) {
            return None;
        }
        Some(Self {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }

    /// Whether the owner is still running: `Some(false)` when it is gone (no such process, a
    /// zombie, or a later process with its pid), `None` where this cannot be known.
    pub fn is_alive(&self) -> Option<bool> {
        if *self == Self::current() {
            return Some(true);
        }
        if cfg!(target_os = "linux") {
            return Some(match proc_stat(self.pid) {
                Some(s) => !s.exited && (self.start == 0 || s.start == self.start),
                None => false,
            });
        }
        pid_exists(self.pid)
    }
}

/// A `tempfile` builder whose entries carry this process's name, after recording this process
/// as a writer.
pub(crate) fn builder() -> tempfile::Builder<'static, 'static> {
    static PREFIX_OF_CURRENT: OnceLock<String> = OnceLock::new();
    record_writer();
    let mut b = tempfile::Builder::new();
    b.prefix(PREFIX_OF_CURRENT.get_or_init(|| Owner::current().prefix()));
    b
}

/// A new owned temporary file in `dir` (removed when dropped, unless persisted).
pub fn file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    builder()
        .tempfile_in(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

/// A new owned temporary directory in `dir` (removed when dropped, unless kept).
pub fn dir_in(dir: &Path) -> std::io::Result<tempfile::TempDir> {
    builder()
        .tempdir_in(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

/// One temporary found in a directory.
#[derive(Clone, Debug)]
pub struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// Bytes of its files (a directory's, recursively).
    pub bytes: u64,
    /// Whether it may be removed: its owner is gone (or cannot be judged and it is old).
    pub stale: bool,
}

/// Every temporary directly inside `dir` (none if `dir` does not exist).
pub fn scan(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.starts_with(PREFIX).then(|| Leftover {
                path: e.path(),
                bytes: size_of(&e.path()),
                stale: is_stale(name, &e.path()),
            })
        })
        .collect()
}

/// Whether the temporary `name` at `path` may be removed.
fn is_stale(name: &str, path: &Path) -> bool {
    match Owner::parse(name).and_then(|o| o.is_alive()) {
        Some(alive) => !alive,
        None => std::fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNJUDGED_AGE),
    }
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Temporaries removed.
    pub count: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl std::ops::AddAssign for Swept {
    fn add_assign(&mut self, other: Self) {
        self.count += other.count;
        self.bytes += other.bytes;
    }
}

/// Removes the temporaries directly inside `dir` whose owner is gone; those of live processes
/// stay. Failures to remove are logged and skipped: a leftover is never worth failing a command.
pub fn sweep(dir: &Path) -> Swept {
    let mut swept = Swept::default();
    for t in scan(dir).into_iter().filter(|t| t.stale) {
        match remove_any(&t.path) {
            Ok(()) => {
                tracing::debug!("removed leftover `{}`", t.path.display());
                swept += Swept {
                    count: 1,
                    bytes: t.bytes,
                };
            }
            Err(e) => tracing::warn!("Failed to remove leftover `{}`: {e}", t.path.display()),
        }
    }
    swept
}

/// Sweeps every directory in `dirs`.
pub fn sweep_all(dirs: &[PathBuf]) -> Swept {
    let mut swept = Swept::default();
    for dir in dirs {
        swept += sweep(dir);
    }
    swept
}

/// Removes this process's own temporaries directly inside each of `dirs`: what an interrupted
/// command does before it exits, so that it leaves no temporary behind (its work in progress is
/// abandoned; a write that then fails to publish does not matter, the process is ending).
pub fn remove_own(dirs: &[PathBuf]) -> Swept {
    let me = Owner::current();
    let mut swept = Swept::default();
    for t in dirs.iter().flat_map(|d| scan(d)) {
        let name = t.path.file_name().and_then(|n| n.to_str());
        if name.and_then(Owner::parse) == Some(me) && remove_any(&t.path).is_ok() {
            swept += Swept {
                count: 1,
                bytes: t.bytes,
            };
        }
    }
    swept
}

/// Removes a file, symlink or directory tree; a missing path is not an error.
pub(crate) fn remove_any(path: &Path) -> std::io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Bytes of the files at or under `path` (symlinks not followed).
fn size_of(path: &Path) -> u64 {
    let mut bytes = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            bytes += meta.len();
        }
    }
    bytes
}

/// The directory where this process records itself before making its first temporary.
static WRITERS: OnceLock<PathBuf> = OnceLock::new();

/// Makes this process record itself as a writer in `{cache}/.writers/` before it creates its
/// first temporary. Set once, before any temporary is made (later calls are ignored).
pub fn record_writers_in(cache_dir: &Path) {
    let _ = WRITERS.set(cache_dir.join(WRITERS_DIR));
}

/// This process's record, once written.
static RECORD: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Records this process in the writers directory, once (if one was set).
fn record_writer() {
    RECORD.get_or_init(|| {
        let dir = WRITERS.get()?;
        let owner = Owner::current();
        let path = dir.join(format!("{}-{}", owner.pid, owner.start));
        // Without a record a crash leaves temporaries that only `cache clean` or the next
        // sweep for another crash finds; worth a debug line, not an error.
        match fs_err::create_dir_all(dir).and_then(|()| fs_err::write(&path, b"")) {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::debug!("recording this process as a cache writer: {e}");
                None
            }
        }
    });
}

/// Removes this process's writer record, if it wrote one (at a normal exit: it left no
/// temporary behind). A process that made no temporary touches nothing.
pub fn release_writer() {
    if let Some(Some(path)) = RECORD.get() {
        let _ = std::fs::remove_file(path);
    }
}

/// The records in `{cache}/.writers/` whose process is gone.
fn gone_writers(cache_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache_dir.join(WRITERS_DIR)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let owner = name
                .to_str()
                .and_then(|n| Owner::parse(&format!("{PREFIX}-{n}-x")));
            // A record that does not parse is not ours to keep.
            owner.is_none_or(|o| o.is_alive() == Some(false))
        })
        .map(|e| e.path())
        .collect()
}

/// If a process that wrote to the cache at `cache_dir` died without cleaning up, removes the
/// leftovers of every gone owner in `dirs()` (the directories where temporaries are made) and
/// then that process's record. Costs one `readdir` of a nearly empty directory otherwise.
pub fn sweep_after_crashes(cache_dir: &Path, dirs: impl FnOnce() -> Vec<PathBuf>) -> Swept {
    let gone = gone_writers(cache_dir);
    if gone.is_empty() {
        return Swept::default();
    }
    sweep_and_forget(&dirs(), gone)
}

/// Removes the leftovers of every gone owner in `dirs` and the records of gone writers, whether
/// or not a record says a writer crashed (`cache clean`: also leftovers of older versions and
/// of processes that could not record themselves).
pub fn sweep_cache(cache_dir: &Path, dirs: &[PathBuf]) -> Swept {
    sweep_and_forget(dirs, gone_writers(cache_dir))
}

fn sweep_and_forget(dirs: &[PathBuf], gone: Vec<PathBuf>) -> Swept {
    let swept = sweep_all(dirs);
    // Only after the sweep: a record removed first and a sweep that failed halfway would
    // leave leftovers nobody looks for.
    for record in gone {
        let _ = std::fs::remove_file(record);
    }
    swept
}

/// Fields of `/proc/{pid}/stat` that tell whether a process is the one that made a temporary.
struct ProcStat {
    /// Field 22: start time in clock ticks since boot.
    start: u64,
    /// State `Z` (zombie) or `X` (dead): the process has exited, only its entry remains.
    exited: bool,
}

/// Reads `/proc/{pid}/stat` (Linux); `None` when there is no such process or no procfs.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `stat` line. The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: field 3 is the state, field 22 the start time (19 fields later).
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some(ProcStat {
        start,
        exited: matches!(state, "Z" | "X"),
    })
}

/// Whether a process with `pid` exists (unix without procfs: `kill(pid, 0)`).
#[cfg(unix)]
fn pid_exists(pid: u32) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    // Signal 0 sends nothing: the call only checks that the process exists (EPERM: it exists
    // but belongs to someone else).
    match rustix::process::test_kill_process(pid) {
        Ok(()) => Some(true),
        Err(e) => Some(e == rustix::io::Errno::PERM),
    }
}

/// Elsewhere the owner cannot be judged; the age rule applies.
#[cfg(not(unix))]
fn pid_exists(_pid: u32) -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid of a process that has exited and been reaped.
    #[cfg(unix)]
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[cfg(unix)]
    fn touch(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"12345").unwrap();
        path
    }

    #[test]
    fn names_round_trip_to_their_owner() {
        let me = Owner::current();
        let tmp = file_in(&std::env::temp_dir()).unwrap();
        let name = tmp.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(&me.prefix()), "{name}");
        assert_eq!(Owner::parse(name), Some(me));
        let dir = dir_in(&std::env::temp_dir()).unwrap();
        let name = dir.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(Owner::parse(name), Some(me));
    }

    #[test]
    fn names_without_an_owner_do_not_parse() {
        for name in [
            ".tmp-unpack-abc123",
            ".tmp-index-x",
            ".tmpAbC123",
            ".tmp-12-34-",
            ".tmp-12-34",
            ".tmp-12--x",
            ".tmp--34-x",
            ".tmp-99999999999-1-x",
            ".tmp-+1-2-x",
            "tmp-1-2-x",
            ".tmp-0123456789abcdef-x",
        ] {
            assert_eq!(Owner::parse(name), None, "{name}");
        }
        assert_eq!(
            Owner::parse(".tmp-12-34-a-b"),
            Some(Owner { pid: 12, start: 34 })
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_start_time_is_known_on_linux() {
        assert_ne!(Owner::current().start, 0);
    }

    #[cfg(unix)]
    #[test]
    fn owners_are_judged_alive_or_gone() {
        let me = Owner::current();
        assert_eq!(me.is_alive(), Some(true));
        let gone = Owner {
            pid: dead_pid(),
            start: me.start,
        };
        assert_eq!(gone.is_alive(), Some(false));
        if cfg!(target_os = "linux") {
            // This very pid, but started at another time: a reused pid, not the owner.
            let reused = Owner {
                pid: me.pid,
                start: me.start + 1,
            };
            assert_eq!(reused.is_alive(), Some(false));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_zombie_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: wait until it has exited, leaving a zombie entry.
        let owner = loop {
            if let Some(s) = proc_stat(pid).filter(|s| s.exited) {
                break Some(Owner {
                    pid,
                    start: s.start,
                });
            }
            if !cfg!(target_os = "linux") {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(owner) = owner {
            assert_eq!(owner.is_alive(), Some(false));
        }
        child.wait().unwrap();
    }

    #[test]
    fn stat_lines_parse_despite_odd_command_names() {
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[0] = "S".into();
        fields[22 - 3] = "987654".into();
        let line = format!("4242 (a) (b c) {}\n", fields.join(" "));
        let stat = parse_stat(&line).unwrap();
        assert_eq!(stat.start, 987_654);
        assert!(!stat.exited);
        fields[0] = "Z".into();
        assert!(
            parse_stat(&format!("1 (x) {}", fields.join(" ")))
                .unwrap()
                .exited
        );
        assert!(parse_stat("1 (x) S 2 3").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_sweep_removes_only_what_gone_owners_left() {
        let dir = tempfile::tempdir().unwrap();
        let me = Owner::current();
        let dead = Owner {
            pid: dead_pid(),
            start: me.start,
        };
        let mine = touch(dir.path(), &format!("{}x", me.prefix()));
        let live_dir = dir_in(dir.path()).unwrap().keep();
        let dead_file = touch(dir.path(), &format!("{}a", dead.prefix()));
        let dead_dir = dir.path().join(format!("{}b", dead.prefix()));
        std::fs::create_dir_all(dead_dir.join("pkg/sub")).unwrap();
        std::fs::write(dead_dir.join("pkg/sub/f.py"), b"123").unwrap();
        let legacy = touch(dir.path(), ".tmp-unpack-abc");
        let object = touch(dir.path(), "abcd.dxpkg");

        let found = scan(dir.path());
        assert_eq!(found.len(), 5, "{found:?}");
        let stale: u64 = found.iter().filter(|t| t.stale).map(|t| t.bytes).sum();
        assert_eq!(stale, 5 + 3);

        assert_eq!(sweep(dir.path()), Swept { count: 2, bytes: 8 });
        assert!(mine.exists() && live_dir.exists() && object.exists());
        assert!(!dead_file.exists() && !dead_dir.exists());
        // A recent temporary without an owner may be an older version's write in progress.
        assert!(legacy.exists());
        assert_eq!(sweep(dir.path()), Swept::default());
        assert_eq!(sweep(&dir.path().join("missing")), Swept::default());
    }

    #[cfg(unix)]
    #[test]
    fn an_interrupted_process_removes_only_its_own_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let me = Owner::current();
        let other = Owner {
            pid: me.pid + 1,
            start: me.start,
        };
        let mine = touch(dir.path(), &format!("{}x", me.prefix()));
        let my_dir = dir_in(dir.path()).unwrap().keep();
        std::fs::write(my_dir.join("f"), b"12").unwrap();
        let theirs = touch(dir.path(), &format!("{}y", other.prefix()));
        let object = touch(dir.path(), "abcd.dxpkg");
        let dirs = [dir.path().to_path_buf(), dir.path().join("missing")];
        assert_eq!(remove_own(&dirs), Swept { count: 2, bytes: 7 });
        assert!(!mine.exists() && !my_dir.exists());
        assert!(theirs.exists() && object.exists());
    }

    #[cfg(unix)]
    #[test]
    fn old_temporaries_without_an_owner_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = touch(dir.path(), ".tmpAbC123");
        let old = std::time::SystemTime::now() - UNJUDGED_AGE - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&legacy)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(sweep(dir.path()).count, 1);
        assert!(!legacy.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_gone_writer_triggers_one_sweep_and_loses_its_record() {
        let cache = tempfile::tempdir().unwrap();
        let work = cache.path().join("store");
        std::fs::create_dir_all(&work).unwrap();
        let me = Owner::current();
        let dead = Owner {
            pid: dead_pid(),
            start: me.start,
        };
        let leftover = touch(&work, &format!("{}a", dead.prefix()));
        let dirs = || vec![work.clone()];
        // No record of a gone writer: the directories are not even listed.
        assert_eq!(
            sweep_after_crashes(cache.path(), || unreachable!()),
            Swept::default()
        );
        assert!(leftover.exists());

        let writers = cache.path().join(WRITERS_DIR);
        std::fs::create_dir_all(&writers).unwrap();
        let live_record = touch(&writers, &format!("{}-{}", me.pid, me.start));
        assert_eq!(
            sweep_after_crashes(cache.path(), || unreachable!()).count,
            0
        );
        let dead_record = touch(&writers, &format!("{}-{}", dead.pid, dead.start));
        assert_eq!(sweep_after_crashes(cache.path(), dirs).count, 1);
        assert!(!leftover.exists() && !dead_record.exists() && live_record.exists());
    }
}
