//! Prewarming a fresh mount: the kernel's dentry, attribute and directory caches filled, before
//! the first import asks, with what the last mount of the same tree was asked first.
//!
//! Every name a first import looks up and every directory it lists reaches the server once per
//! mount (a round trip of two cross-CPU wake-ups, 20–50 µs here), one after another, on the
//! importing process's critical path. The same tree is asked the same things at every container
//! start, so a mount records them ([`Recorder`]: the names looked up, found or not, and the
//! directories listed during its first [`RECORD_WINDOW`]) into a small [`Trace`] file keyed by
//! the tree's content ([`TraceKey`]), and the next mount of that tree replays it through the
//! mount itself from a few threads of the mount's watcher process ([`replay_file`]; never the
//! server's own, see there), starting once the mount is live, waited for by nobody, beside the
//! first import (which finds an answer already cached, or waits for the one being asked instead
//! of asking again): listings first (a `readdirplus` primes
//! all of a directory's children in one round trip, which is also how the `__pycache__` entries
//! Python never lists are primed), then an `lstat` per name (a dentry-cache hit when a listing
//! primed it, else one lookup; absent names leave negative entries). Many round trips in flight
//! at once cost far less than the same ones made one by one by the import.
//!
//! A trace only ever makes the kernel ask what it would have asked anyway: replaying a wrong
//! one costs a few lookups and changes no answer. So a trace that cannot be read (absent,
//! truncated, damaged, for another tree) is ignored with a debug line, a name the tree lacks is
//! a negative lookup, and a cache where no trace can be written mounts as before.
//!
//! The file, `{cache}/mounts/trees/<tree key>.trace` beside its tree ([`trace_file`]),
//! little-endian:
//!
//! ```text
//! 0   8   magic "DXPYTRC\0"
//! 8   4   version (1)
//! 12  4   entry count
//! 16  32  the tree's key (TraceKey): a trace read for another tree is refused
//! 48  ..  entries: kind u8 (1 = directory listed, 2 = name looked up), parent inode u64,
//!         name length u16, name bytes (length 0 for a listing)
//! end 32  blake3 of every byte before it: a torn or damaged file is refused whole
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dx_py_core::format::bytes::{
    OutOfRange, put_u16, put_u32, put_u64, u8_at, u16_at, u32_at, u64_at,
};

use crate::tree::Tree;

/// How long after mounting the names asked are recorded: a container's first import.
pub const RECORD_WINDOW: Duration = Duration::from_secs(10);

/// The most entries a trace holds (about 1 MiB of names); a mount asked more records no more.
pub const MAX_ENTRIES: usize = 32_768;

/// Threads replaying a trace: enough round trips in flight to keep the server's threads busy.
pub const REPLAY_THREADS: usize = 4;

const MAGIC: [u8; 8] = *b"DXPYTRC\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 48;
const CHECKSUM_LEN: usize = 32;
const LISTED: u8 = 1;
const LOOKED_UP: u8 = 2;

/// The largest trace file: [`MAX_ENTRIES`] of the longest names, and more. A larger file is not
/// read at all (whatever put it there, the mount does not read it into memory).
const MAX_FILE_LEN: u64 = 16 << 20;

/// The bytes of `path`, or `None` when it holds more than `max`.
fn read_at_most(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs_err::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Which tree a trace is for: blake3 of the tree's 128-byte header, which holds the blake3 of
/// the whole tree (its inode numbers and names), so O(1) to compute at mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceKey([u8; 32]);

impl TraceKey {
    /// The key of `tree`.
    pub fn of<B: AsRef<[u8]>>(tree: &Tree<B>) -> Self {
        let bytes = tree.bytes();
        Self(*blake3::hash(&bytes[..bytes.len().min(128)]).as_bytes())
    }

    /// Lowercase hex, the trace file's name.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Replays the trace at `trace` for the tree file `tree` through the mount at `mountpoint` and
/// logs what it did; a trace that cannot be used (absent, damaged, of another tree) or a tree
/// that cannot be opened is a debug line.
///
/// This runs in a process other than the server's (its watcher's): a thread that asks a FUSE
/// server for something and is killed with the request already read waits, uninterruptibly,
/// for the answer or for the connection to end, which ends when the server's last device
/// descriptor closes. In the server's own process that descriptor would never close (the
/// waiting thread keeps the process from exiting), so a `kill -9` during a replay would leave
/// an unkillable server and a mount on which every access hangs.
pub fn replay_file(mountpoint: &Path, trace: &Path, tree: &Path) {
    let tree = match crate::tree::open_tree(tree) {
        Ok(tree) => tree,
        Err(e) => return tracing::debug!("not prewarming: {e}"),
    };
    let Some(trace) = Trace::load(trace, TraceKey::of(&tree)) else {
        return;
    };
    let r = trace.plan(&tree).replay(mountpoint, REPLAY_THREADS);
    tracing::info!(
        "prewarmed: {} directories listed, {} names looked up ({} skipped) in {:.1} ms",
        r.listed,
        r.looked_up,
        r.skipped,
        r.elapsed.as_secs_f64() * 1e3
    );
}

/// The trace of the tree file `tree` (`{trees}/<tree key>.dxtree`): `{trees}/<tree key>.trace`,
/// beside it, so that `cache prune` and `cache clean` count and remove it with its tree (they
/// group a tree's files by the name before the first dot).
pub fn trace_file(tree: &Path) -> PathBuf {
    tree.with_extension("trace")
}

/// Why a trace file was not used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Reading or writing it failed; fs-err names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not a trace file, or one of a version this build does not read.
    #[error("`{}` is not a version {VERSION} dx-py trace", path.display())]
    NotATrace {
        /// The file.
        path: PathBuf,
    },
    /// A trace of another tree (the tree was rebuilt, or the file was copied).
    #[error("`{}` is the trace of another tree", path.display())]
    OtherTree {
        /// The file.
        path: PathBuf,
    },
    /// Its checksum or its entries do not add up: torn or damaged.
    #[error("`{}` is damaged: {what}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What does not add up.
        what: &'static str,
    },
}

/// What a mount of a tree was asked first: directories listed and names looked up, by the
/// inode number of the directory (the tree's numbering; valid for trees of the same key only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Directories listed.
    pub listed: BTreeSet<u64>,
    /// `(directory, name)` looked up, found or not.
    pub looked_up: BTreeSet<(u64, Box<[u8]>)>,
}

/// What one replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Directories listed through the mount.
    pub listed: usize,
    /// Names `lstat`ed through the mount.
    pub looked_up: usize,
    /// Entries skipped: an inode the tree lacks or a name that cannot be one.
    pub skipped: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// A name a directory entry may have: what a lookup could be asked for.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| b == b'/' || b == 0)
}

impl Trace {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.listed.len() + self.looked_up.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's bytes for a tree of `key`.
    pub fn to_bytes(&self, key: TraceKey) -> Vec<u8> {
        let names: usize = self.looked_up.iter().map(|(_, n)| n.len()).sum();
        let mut out = vec![0u8; HEADER_LEN];
        out.reserve(self.len() * 11 + names + CHECKSUM_LEN);
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, self.len() as u32);
        out[16..48].copy_from_slice(&key.0);
        let mut entry = |kind: u8, ino: u64, name: &[u8]| {
            let mut head = [0u8; 11];
            head[0] = kind;
            put_u64(&mut head, 1, ino);
            put_u16(&mut head, 9, name.len() as u16);
            out.extend_from_slice(&head);
            out.extend_from_slice(name);
        };
        for &dir in &self.listed {
            entry(LISTED, dir, b"");
        }
        for (dir, name) in &self.looked_up {
            entry(LOOKED_UP, *dir, name);
        }
        let sum = *blake3::hash(&out).as_bytes();
        out.extend_from_slice(&sum);
        out
    }

    /// Reads the trace of a tree of `key` from `bytes` (the file at `path`, for messages).
    pub fn from_bytes(bytes: &[u8], key: TraceKey, path: &Path) -> Result<Self, TraceError> {
        let damaged = |what| TraceError::Damaged {
            path: path.to_path_buf(),
            what,
        };
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN
            || bytes[..8] != MAGIC
            || u32_at(bytes, 8) != Ok(VERSION)
        {
            return Err(TraceError::NotATrace {
                path: path.to_path_buf(),
            });
        }
        if bytes[16..48] != key.0 {
            return Err(TraceError::OtherTree {
                path: path.to_path_buf(),
            });
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if blake3::hash(body).as_bytes() != sum {
            return Err(damaged("checksum mismatch"));
        }
        let count = u32_at(body, 12).map_err(|_| damaged("header"))? as usize;
        if count > MAX_ENTRIES {
            return Err(damaged("too many entries"));
        }
        let mut trace = Self::default();
        let mut at = HEADER_LEN;
        let short = |_: OutOfRange| damaged("an entry runs past the end");
        for _ in 0..count {
            let kind = u8_at(body, at).map_err(short)?;
            let ino = u64_at(body, at + 1).map_err(short)?;
            let len = usize::from(u16_at(body, at + 9).map_err(short)?);
            let name = body
                .get(at + 11..at + 11 + len)
                .ok_or(damaged("an entry runs past the end"))?;
            at += 11 + len;
            match kind {
                LISTED if len == 0 => trace.listed.insert(ino),
                LOOKED_UP if valid_name(name) => trace.looked_up.insert((ino, name.into())),
                LISTED | LOOKED_UP => return Err(damaged("an entry's name")),
                _ => return Err(damaged("an entry's kind")),
            };
        }
        if at != body.len() {
            return Err(damaged("bytes after the last entry"));
        }
        Ok(trace)
    }

    /// The trace at `path` for a tree of `key`; `None` (with a debug line saying why, when
    /// there is a file) when there is none to use.
    pub fn load(path: &Path, key: TraceKey) -> Option<Self> {
        let bytes = match read_at_most(path, MAX_FILE_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let e = TraceError::Damaged {
                    path: path.to_path_buf(),
                    what: "larger than any trace",
                };
                tracing::debug!("not prewarming: {e}");
                return None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::debug!("not prewarming: {e}");
                return None;
            }
        };
        match Self::from_bytes(&bytes, key, path) {
            Ok(trace) => Some(trace),
            Err(e) => {
                tracing::debug!("not prewarming: {e}");
                None
            }
        }
    }

    /// Writes the trace to `path` for a tree of `key`, atomically (a temporary file in the same
    /// directory, renamed): a reader sees the old file or the new one, never a torn one.
    pub fn save(&self, path: &Path, key: TraceKey) -> Result<(), TraceError> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let mut tmp = dx_py_core::temp::file_in(dir)?;
        tmp.write_all(&self.to_bytes(key))?;
        tmp.persist(path).map_err(|e| {
            std::io::Error::new(e.error.kind(), format!("{}: {}", path.display(), e.error))
        })?;
        Ok(())
    }

    /// What replaying this trace on a mount of `tree` asks: every recorded listing, plus the
    /// listing of each directory in which two or more names the tree has were looked up (one
    /// `readdirplus` primes them all), then an `lstat` of every name looked up. Made before
    /// mounting, from the tree: entries whose directory is not one of the tree's are skipped.
    pub fn plan<B: AsRef<[u8]>>(&self, tree: &Tree<B>) -> ReplayPlan {
        let mut skipped = 0;
        let mut paths: BTreeMap<u64, Option<PathBuf>> = BTreeMap::new();
        let mut dir_path = |ino: u64| {
            paths
                .entry(ino)
                .or_insert_with(|| dir_path_in(tree, ino))
                .clone()
        };
        // Directories in which names the tree has were looked up, and how many.
        let mut found_in: BTreeMap<u64, usize> = BTreeMap::new();
        let mut names = Vec::with_capacity(self.looked_up.len());
        for (dir, name) in &self.looked_up {
            let Some(path) = dir_path(*dir) else {
                skipped += 1;
                continue;
            };
            let found = tree
                .node(*dir)
                .ok()
                .and_then(|d| tree.lookup(&d, name).ok().flatten())
                .is_some();
            if found {
                *found_in.entry(*dir).or_default() += 1;
            }
            names.push(path.join(OsStr::from_bytes(name)));
        }
        let wanted = self
            .listed
            .iter()
            .copied()
            .chain(
                found_in
                    .into_iter()
                    .filter(|&(_, n)| n >= 2)
                    .map(|(d, _)| d),
            )
            .collect::<BTreeSet<_>>();
        let mut dirs = Vec::with_capacity(wanted.len());
        for dir in wanted {
            match dir_path(dir) {
                Some(path) => dirs.push(path),
                None => skipped += usize::from(self.listed.contains(&dir)),
            }
        }
        // Parents before their children: a child's walk then finds its ancestors cached.
        dirs.sort_by_key(|p| p.components().count());
        ReplayPlan {
            dirs,
            names,
            skipped,
        }
    }
}

/// A [`Trace`] resolved against a tree: paths relative to the mount's root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Directories to list, parents first.
    pub dirs: Vec<PathBuf>,
    /// Names to `lstat`, found in the tree or not.
    pub names: Vec<PathBuf>,
    /// Trace entries whose directory the tree does not have.
    pub skipped: usize,
}

impl ReplayPlan {
    /// Asks the kernel, through the mount at `mountpoint`, what the plan holds, from `threads`
    /// threads: the listings, then the names. Failures are expected (absent names) and ignored.
    pub fn replay(&self, mountpoint: &Path, threads: usize) -> Replayed {
        let started = Instant::now();
        in_parallel(&self.dirs, threads, |dir| {
            if let Ok(entries) = std::fs::read_dir(mountpoint.join(dir)) {
                entries.for_each(drop);
            }
        });
        in_parallel(&self.names, threads, |name| {
            let _ = std::fs::symlink_metadata(mountpoint.join(name));
        });
        Replayed {
            listed: self.dirs.len(),
            looked_up: self.names.len(),
            skipped: self.skipped,
            elapsed: started.elapsed(),
        }
    }
}

/// The path of directory `ino` of `tree`, relative to its root; `None` when `ino` is not a
/// directory of the tree.
fn dir_path_in<B: AsRef<[u8]>>(tree: &Tree<B>, ino: u64) -> Option<PathBuf> {
    let node = tree.node(ino).ok()?;
    if node.kind != crate::tree::NodeKind::Dir {
        return None;
    }
    let mut names = Vec::new();
    let mut at = node;
    // Bounded: a damaged tree could hold a parent cycle.
    for _ in 0..4096 {
        if at.ino == 1 || at.parent == at.ino {
            let mut path = PathBuf::new();
            names
                .iter()
                .rev()
                .for_each(|n: &&[u8]| path.push(OsStr::from_bytes(n)));
            return Some(path);
        }
        names.push(at.name);
        at = tree.node(at.parent).ok()?;
    }
    None
}

/// Runs `each` on every item from `threads` threads (at least one), items taken in order.
fn in_parallel<T: Sync>(items: &[T], threads: usize, each: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    each(item);
                }
            });
        }
    });
}

/// Records what a mount is asked during its first [`RECORD_WINDOW`], on top of the trace it
/// was prewarmed with (so a trace grows by what the last replay missed, up to [`MAX_ENTRIES`]).
#[derive(Debug)]
pub struct Recorder {
    until: Instant,
    trace: Mutex<Trace>,
    /// Something was added since the trace was last taken.
    changed: AtomicBool,
}

impl Recorder {
    /// Records from now, starting from `trace` (what was replayed, or nothing).
    pub fn new(trace: Trace) -> Self {
        Self::with_window(trace, RECORD_WINDOW)
    }

    /// [`Recorder::new`] with another window (tests).
    pub fn with_window(trace: Trace, window: Duration) -> Self {
        Self {
            until: Instant::now() + window,
            trace: Mutex::new(trace),
            changed: AtomicBool::new(false),
        }
    }

    fn recording(&self) -> bool {
        Instant::now() < self.until
    }

    fn add(&self, insert: impl FnOnce(&mut Trace) -> bool) {
        if !self.recording() {
            return;
        }
        let mut trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        if trace.len() < MAX_ENTRIES && insert(&mut trace) {
            self.changed.store(true, Ordering::Relaxed);
        }
    }

    /// Directory `dir` was asked for `name`.
    pub fn looked_up(&self, dir: u64, name: &[u8]) {
        if valid_name(name) {
            self.add(|t| t.looked_up.insert((dir, name.into())));
        }
    }

    /// Directory `dir` was listed from its start.
    pub fn listed(&self, dir: u64) {
        self.add(|t| t.listed.insert(dir));
    }

    /// The trace, when something was added since it was last taken.
    pub fn take_changed(&self) -> Option<Trace> {
        let trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        self.changed
            .swap(false, Ordering::Relaxed)
            .then(|| trace.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: TraceKey = TraceKey([7; 32]);

    fn read(bytes: &[u8]) -> Result<Trace, TraceError> {
        Trace::from_bytes(bytes, KEY, Path::new("t.trace"))
    }

    fn sample() -> Trace {
        let mut t = Trace::default();
        t.listed.extend([1, 5, 9]);
        t.looked_up.insert((5, b"__pycache__".as_slice().into()));
        t.looked_up
            .insert((9, b"x.cpython-312.pyc".as_slice().into()));
        t
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 1..40).prop_filter("a name", |n| valid_name(n))
    }

    proptest! {
        /// Whatever was recorded reads back as it was.
        #[test]
        fn a_trace_reads_back_as_written(
            listed in proptest::collection::btree_set(1u64..1_000_000, 0..50),
            looked_up in proptest::collection::btree_set((1u64..1_000_000, name()), 0..50),
        ) {
            let trace = Trace {
                listed,
                looked_up: looked_up.into_iter().map(|(d, n)| (d, n.into())).collect(),
            };
            prop_assert_eq!(read(&trace.to_bytes(KEY)).unwrap(), trace);
        }

        /// Any change to a trace's bytes is refused, never read as another trace.
        #[test]
        fn a_damaged_trace_is_refused(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = sample().to_bytes(KEY);
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            prop_assert!(read(&bytes).is_err());
        }

        /// Every cut is refused.
        #[test]
        fn a_truncated_trace_is_refused(len in 0usize..200) {
            let bytes = sample().to_bytes(KEY);
            prop_assume!(len < bytes.len());
            prop_assert!(read(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn each_rejection_says_why() {
        let good = sample().to_bytes(KEY);
        assert_eq!(read(&good).unwrap(), sample());
        assert!(matches!(
            read(b"garbage, not a trace at all, long enough to hold a header and more"),
            Err(TraceError::NotATrace { .. })
        ));
        assert!(matches!(read(&[]), Err(TraceError::NotATrace { .. })));
        let other = sample().to_bytes(TraceKey([8; 32]));
        let e = read(&other).unwrap_err();
        assert!(matches!(e, TraceError::OtherTree { .. }), "{e}");
        assert_eq!(e.to_string(), "`t.trace` is the trace of another tree");
        let mut v2 = good.clone();
        v2[8] = 2;
        assert!(matches!(read(&v2), Err(TraceError::NotATrace { .. })));
        let mut flipped = good.clone();
        flipped[HEADER_LEN] ^= 1;
        assert!(matches!(
            read(&flipped),
            Err(TraceError::Damaged {
                what: "checksum mismatch",
                ..
            })
        ));
        // Entries that do not add up, under a checksum that does (a writer's bug, not a torn
        // file): each refused by name.
        let resealed = |mut body: Vec<u8>| {
            body.truncate(body.len() - CHECKSUM_LEN);
            let sum = *blake3::hash(&body).as_bytes();
            body.extend_from_slice(&sum);
            body
        };
        let mut count = good.clone();
        put_u32(&mut count, 12, 6);
        let e = read(&resealed(count)).unwrap_err();
        assert!(e.to_string().contains("runs past the end"), "{e}");
        let mut kind = good.clone();
        kind[HEADER_LEN] = 3;
        let e = read(&resealed(kind)).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        let mut name = good.clone();
        let last = name.len() - CHECKSUM_LEN - 1;
        name[last] = b'/';
        let e = read(&resealed(name)).unwrap_err();
        assert!(e.to_string().contains("name"), "{e}");
        let mut extra = good[..good.len() - CHECKSUM_LEN].to_vec();
        extra.push(0);
        extra.extend_from_slice(&[0; CHECKSUM_LEN]);
        let e = read(&resealed(extra)).unwrap_err();
        assert!(e.to_string().contains("after the last entry"), "{e}");
    }

    #[test]
    fn load_ignores_what_it_cannot_use_and_save_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let file = trace_file(&dir.path().join("t.dxtree"));
        assert_eq!(Trace::load(&file, KEY), None, "absent");
        sample().save(&file, KEY).unwrap();
        assert_eq!(Trace::load(&file, KEY), Some(sample()));
        assert_eq!(Trace::load(&file, TraceKey([1; 32])), None, "another tree");
        let mut more = sample();
        more.listed.insert(77);
        more.save(&file, KEY).unwrap();
        assert_eq!(Trace::load(&file, KEY), Some(more));
        // No temporaries left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&file, b"junk").unwrap();
        assert_eq!(Trace::load(&file, KEY), None, "damaged");
        assert_eq!(read_at_most(&file, 4).unwrap().unwrap(), b"junk");
        assert_eq!(
            read_at_most(&file, 3).unwrap(),
            None,
            "never read past the limit"
        );
        let huge = std::fs::File::create(&file).unwrap();
        huge.set_len(MAX_FILE_LEN + 1).unwrap();
        assert_eq!(Trace::load(&file, KEY), None, "too large");
        // No place to write: an error, which the server logs and ignores.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        assert_eq!(Trace::load(&file, KEY), None, "a directory");
        assert!(sample().save(&file, KEY).is_err());
    }

    #[test]
    fn a_recorder_records_its_window_only_and_up_to_its_cap() {
        let r = Recorder::new(sample());
        assert!(
            r.take_changed().is_none(),
            "what it started from is not news"
        );
        r.listed(5);
        r.looked_up(5, b"__pycache__");
        assert!(r.take_changed().is_none(), "already there");
        r.looked_up(5, b"..");
        r.looked_up(5, b"a/b");
        assert!(r.take_changed().is_none(), "not names");
        r.looked_up(5, b"new");
        let t = r.take_changed().unwrap();
        assert!(t.looked_up.contains(&(5, b"new".as_slice().into())));
        let closed = Recorder::with_window(Trace::default(), Duration::ZERO);
        closed.listed(1);
        assert!(closed.take_changed().is_none(), "after its window");
        let full = Recorder::new(Trace {
            listed: (1..=MAX_ENTRIES as u64).collect(),
            ..Trace::default()
        });
        full.listed(0);
        assert!(full.take_changed().is_none(), "past its cap");
    }
}
