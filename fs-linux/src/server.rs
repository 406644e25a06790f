//! The mount server process: serves a [`ServerSpec`] and reports its [`ServerStatus`] (one
//! JSON line each on stdout, the pipe of the `dx-py mount` that started it; the latest one in
//! `{cache}/mounts/<key>.status`; a readable line in its log).
//!
//! For a first tree ([`ServerSpec::after`]) it then does what the tree left for later, on a
//! thread of its own once the mount is live: store the packages laid out from their wheels
//! (reads of one wait until it is stored, and ask for it first), compile the bytecode the store
//! lacks, and hand the complete tree's additions to the running mount.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dx_py_core::cache::Cache;
use dx_py_core::cache_lock::CacheLock;
use dx_py_core::index::ClientOptions;
use dx_py_core::install::BytecodeBatch;
use dx_py_core::mount::{
    AfterMounting, MountPlanError, ServerSpec, ServerStatus, complete_tree, reason_of,
};
use dx_py_core::python::Interpreter;
use dx_py_core::remote::{RemoteError, RemoteTier};
use dx_py_core::store::PackageStore;

use crate::fs::{Counters, PackPages, Passthrough, TreeFs};
use crate::late::LateError;
use crate::prewarm::{RECORD_WINDOW, Recorder, Trace, TraceKey, trace_file};
use crate::serve::{self, AutoUnmount, MountError, MountOptions, Notify, WatcherCommand};
use crate::tree::{ArrivingPacks, OpenTreeError, TreeData, open_tree};

/// A mount that answered a request this recently is in use: the compile waits.
const IN_USE_WINDOW: Duration = Duration::from_millis(250);
/// The most each compile worker waits for the mount to be idle, in all.
const HOLD_BUDGET: Duration = Duration::from_secs(5);

/// Why a server could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Mounting failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The tree cannot be served.
    #[error(transparent)]
    Tree(#[from] OpenTreeError),
    /// What the first tree left for later cannot be read.
    #[error(transparent)]
    Plan(#[from] MountPlanError),
    /// The mounted tree cannot take bytecode later.
    #[error(transparent)]
    Late(#[from] LateError),
    /// The store's remote tier cannot be opened.
    #[error(transparent)]
    Remote(#[from] Box<RemoteError>),
}

/// Where a server reports its states.
#[derive(Clone, Debug)]
pub struct Reporter {
    /// Write each state as a JSON line on stdout (a background server's pipe to `mount`).
    pipe: bool,
    /// The status file.
    file: PathBuf,
}

impl Reporter {
    /// Reports into the status file of `mountpoint` under `state_dir` and, with `pipe`, on
    /// stdout.
    pub fn new(state_dir: &Path, mountpoint: &Path, pipe: bool) -> Self {
        Self {
            pipe,
            file: status_file(state_dir, mountpoint),
        }
    }

    /// Reports `status`. Failures are a debug line: `mount` may have returned (its pipe is
    /// closed) and the mount works whatever the status file says.
    pub fn say(&self, status: &ServerStatus) {
        if self.pipe
            && let Err(e) = status.write_line(std::io::stdout().lock())
        {
            tracing::debug!("status pipe: {e}");
        }
        if let Err(e) = status.save(&self.file) {
            tracing::debug!("status file {}: {e}", self.file.display());
        }
        // Not a tracing record: the log says it whatever the log level.
        eprintln!("dx-py: {status}");
    }
}

/// `{state_dir}/<key>.status`: the latest state of the server of `mountpoint`.
pub fn status_file(state_dir: &Path, mountpoint: &Path) -> PathBuf {
    state_dir.join(format!("{}.status", crate::daemon::state_key(mountpoint)))
}

/// Serves `spec` until it is unmounted; `watcher` is the command that unmounts the venv if this
/// process dies (used when `spec.auto_unmount`).
pub fn run(
    spec: ServerSpec,
    watcher: Option<WatcherCommand>,
    reporter: Reporter,
) -> Result<(), ServerError> {
    let cache = spec.cache();
    let mut opts = MountOptions {
        allow_other: spec.allow_other,
        threads: spec.threads.max(1),
        auto_unmount: AutoUnmount::Off,
    };
    if let (true, Some(w)) = (spec.auto_unmount, watcher) {
        opts.auto_unmount = AutoUnmount::Watcher(w);
    }
    let pages = match spec.keep_pack_cache {
        true => PackPages::Keep,
        false => PackPages::Release,
    };
    // The server's store: a read-only store's unpacked copies (the backings of passthrough)
    // live in this cache, and the remote tier of a lazy mount sits below it.
    let mut fs = TreeFs::new(open_tree(&spec.tree)?, server_store(&spec, &cache)?)
        .pack_pages(pages)
        .passthrough(passthrough_from_env());
    let counters = fs.counters();
    let live = {
        let reporter = reporter.clone();
        move || reporter.say(&ServerStatus::Mounted)
    };
    match spec.after.clone() {
        Some(after) => {
            let (fs, job) = after_job(after, fs, &spec, cache, pages, reporter)?;
            serve::serve_reporting(fs, &spec.mountpoint, &opts, live, job)?;
        }
        None => {
            // A first tree (above) is mounted once and its file removed: only a tree that
            // later mounts serve again has a trace worth keeping.
            let traced = Traced::start(prewarm_from_env(), &fs, &spec.tree);
            if let Some(t) = &traced {
                fs = fs.record(Arc::clone(&t.recorder));
            }
            if let (Some(t), AutoUnmount::Watcher(w)) = (&traced, &mut opts.auto_unmount) {
                w.args.extend(t.watcher_args());
            }
            if let Some(t) = &traced {
                t.save_after_window();
            }
            serve::serve_reporting(fs, &spec.mountpoint, &opts, live, |_| {})?;
            if let Some(t) = &traced {
                t.save();
            }
        }
    }
    log_requests(&counters);
    Ok(())
}

/// The variable that turns the prewarm of fresh mounts ([`crate::prewarm`]) off, replay and
/// recording: `0`, `off`, `no` or `false`.
pub const PREWARM_ENV: &str = "DX_PY_MOUNT_PREWARM";

/// Whether [`PREWARM_ENV`] leaves the prewarm on.
fn prewarm_from_env() -> bool {
    !matches!(
        std::env::var(PREWARM_ENV).as_deref(),
        Ok("0" | "off" | "no" | "false")
    )
}

/// Writes what `recorder` holds to `file`, if it grew since it was last written.
fn save_recorded(recorder: &Recorder, file: &Path, key: TraceKey) {
    if let Some(trace) = recorder.take_changed()
        && let Err(e) = trace.save(file, key)
    {
        tracing::debug!("not keeping this mount's trace: {e}");
    }
}

/// A mount's trace: the one it replays (if any) and what it records for the next mount.
struct Traced {
    key: TraceKey,
    file: PathBuf,
    /// The tree file, when a trace was read for it (the watcher replays that trace).
    replay: Option<PathBuf>,
    recorder: Arc<Recorder>,
}

impl Traced {
    /// Reads the trace of `fs`'s tree (`None` when the prewarm is off).
    fn start(on: bool, fs: &TreeFs, tree: &Path) -> Option<Self> {
        if !on {
            return None;
        }
        let key = TraceKey::of(fs.tree());
        let file = trace_file(tree);
        let trace = Trace::load(&file, key);
        Some(Self {
            key,
            file,
            replay: trace.is_some().then(|| tree.to_path_buf()),
            recorder: Arc::new(Recorder::new(trace.unwrap_or_default())),
        })
    }

    /// The watcher's arguments that make it replay the trace read, if there was one, once the
    /// mount is reported live, beside the first import (replayed before `mount` returns, it
    /// cost what it saved the import: docs/design/mount.md, "Prewarm"). The watcher, not this
    /// process, replays it: see [`crate::prewarm::replay_file`].
    fn watcher_args(&self) -> Vec<std::ffi::OsString> {
        let Some(tree) = &self.replay else {
            return Vec::new();
        };
        vec![
            "--prewarm-trace".into(),
            self.file.clone().into_os_string(),
            "--prewarm-tree".into(),
            tree.clone().into_os_string(),
        ]
    }

    /// Writes what was recorded, if it grew. A cache where it cannot be written (read-only)
    /// only loses the next mount's prewarm: a debug line.
    fn save(&self) {
        save_recorded(&self.recorder, &self.file, self.key);
    }

    /// Saves once the recording window has passed (a container's mount is seldom unmounted
    /// before its process is killed).
    fn save_after_window(&self) {
        let (recorder, file, key) = (Arc::clone(&self.recorder), self.file.clone(), self.key);
        let saving = std::thread::Builder::new()
            .name("trace".into())
            .spawn(move || {
                std::thread::sleep(RECORD_WINDOW);
                save_recorded(&recorder, &file, key);
            });
        if let Err(e) = saving {
            tracing::debug!("no thread to save the trace: {e}");
        }
    }
}

/// The store the mount reads packs from: with the remote tier of `spec.store_url` below it,
/// each object named in `spec.remote_names` under its package's name, the pairs of
/// `spec.remote_pairs` fetched together.
fn server_store(spec: &ServerSpec, cache: &Cache) -> Result<PackageStore, ServerError> {
    let store = cache.store();
    let Some(url) = &spec.store_url else {
        return Ok(store);
    };
    let remote = RemoteTier::open(url, &ClientOptions::default()).map_err(Box::new)?;
    for (hex, name) in &spec.remote_names {
        if let Ok(hash) = hex.parse() {
            remote.name_object(hash, name.clone());
        }
    }
    for (package, pack) in &spec.remote_pairs {
        if let (Ok(package), Ok(pack)) = (package.parse(), pack.parse()) {
            remote.pair_objects(package, pack);
        }
    }
    Ok(store.with_remote(Arc::new(remote)))
}

/// The variable that turns FUSE passthrough off for mount servers: `0`, `off`, `no` or `false`.
pub const PASSTHROUGH_ENV: &str = "DX_PY_MOUNT_PASSTHROUGH";

/// [`Passthrough::Off`] when [`PASSTHROUGH_ENV`] says so (to compare, or where the kernel
/// misbehaves), else [`Passthrough::Auto`].
fn passthrough_from_env() -> Passthrough {
    match std::env::var(PASSTHROUGH_ENV).as_deref() {
        Ok("0" | "off" | "no" | "false") => Passthrough::Off,
        _ => Passthrough::Auto,
    }
}

/// One log line (level info: `DX_PY_LOG=info`) with what reached the server while mounted,
/// for benchmarks that ask where a mount's time went.
fn log_requests(c: &Counters) {
    let n = Counters::get;
    tracing::info!(
        "requests: lookups {} (negative {}), getattrs {}, opens {} (passthrough {}), reads {}, \
         readdirs {}, flushes {}, ioctls {}",
        n(&c.lookups),
        n(&c.negative_lookups),
        n(&c.getattrs),
        n(&c.opens),
        n(&c.passthrough_opens),
        n(&c.reads),
        n(&c.readdirs),
        n(&c.flushes),
        n(&c.ioctls),
    );
}

/// Prepares `fs` (served from the first tree `spec.tree`) for what arrives after mounting, and
/// returns it with the work to run once it is mounted.
fn after_job(
    after: AfterMounting,
    fs: TreeFs,
    spec: &ServerSpec,
    cache: Cache,
    pages: PackPages,
    reporter: Reporter,
) -> Result<(TreeFs, impl FnOnce(Notify) + Send + 'static), ServerError> {
    let mut work = after.read(fs.tree())?;
    let arriving = Arc::new(ArrivingPacks::new(work.slots()));
    let fs = fs.arriving(Arc::clone(&arriving));
    // Dropped unused (an error, a panic), the handle tells the mount to stop waiting.
    let late = fs.expect_bytecode()?;
    let counters = fs.counters();
    let (first, venv) = (spec.tree.clone(), spec.mountpoint.clone());
    let job = move |notify: Notify| {
        let started = Instant::now();
        // Whatever happens below (a panic included), nothing waits for a package that will
        // not come, and the status gets a last word (`mount --wait-bytecode` waits for one).
        let settle = Settle(&arriving);
        let mut last = LastWord {
            reporter,
            stage: match work.planned() {
                0 => Stage::Bytecode,
                _ => Stage::Packages,
            },
            said: false,
        };
        // Storing and compiling: held shared, like install, so that `cache clean` waits.
        let mut cache_lock = match CacheLock::open(cache.root()) {
            Ok(lock) => lock,
            Err(e) => return last.fail(format!("the cache lock: {e}")),
        };
        let shared = match cache_lock.shared() {
            Ok(guard) => guard,
            Err(e) => return last.fail(format!("the cache lock: {e}")),
        };
        // The server maps the first tree and `late` holds a copy: the file is not needed. Removed
        // only under the lock: until then it is what tells `cache clean` and `cache prune` which
        // objects this mount serves.
        if let Err(e) = fs_err::remove_file(&first) {
            tracing::debug!("{e}");
        }
        dx_py_core::temp::sweep_after_crashes(cache.root(), || cache.temp_dirs());
        let store = cache.store();
        let interp = Interpreter::find(work.python().to_str(), cache.root());
        // Packages are compiled as they are stored, at a lower priority than the storing
        // (reads may wait for it), and not while the venv is in use (its imports compile in
        // memory and would share the CPUs), up to a few seconds of waiting.
        let in_use = move || counters.idle_for().is_some_and(|idle| idle < IN_USE_WINDOW);
        let batch = match &interp {
            Ok(interp) => BytecodeBatch::start(&store, interp)
                .map(|b| b.map(|b| b.in_background().hold_while(in_use, HOLD_BUDGET)))
                .map_err(|e| reason_of(&e)),
            Err(e) => Err(reason_of(e)),
        };
        if work.planned() > 0 {
            let compile = batch.as_ref().ok().and_then(Option::as_ref);
            if let Err(e) = work.store_all(&store, &arriving, compile) {
                return last.fail(format!("{}; their files cannot be read", reason_of(&e)));
            }
            drop(settle);
            last.reporter.say(&ServerStatus::PackagesStored {
                packages: work.planned(),
                after_ms: millis(started),
            });
            last.stage = Stage::Bytecode;
        }
        let complete = interp.map_err(|e| reason_of(&e)).and_then(|interp| {
            let batch = batch?;
            complete_tree(work.lock(), &cache, &store, &interp, &venv, batch)
                .map_err(|e| reason_of(&e))
        });
        // Built and mapped: what follows changes nothing in the cache.
        drop(shared);
        let arrived = complete.and_then(|complete| {
            let data = TreeData::new(complete, store).with_pack_pages(pages);
            let arrived = late.arrive(data).map_err(|e| reason_of(&e))?;
            for dir in &arrived.dirs {
                if let Err(e) = notify.directory_changed(*dir) {
                    tracing::debug!("invalidating directory {dir}: {e}");
                }
            }
            for (dir, name) in &arrived.names {
                if let Err(e) = notify.entry_changed(*dir, name) {
                    tracing::debug!("invalidating an entry of directory {dir}: {e}");
                }
            }
            Ok(arrived.dirs.len())
        });
        match arrived {
            Ok(directories) => last.say(&ServerStatus::BytecodeReady {
                directories,
                after_ms: millis(started),
            }),
            Err(e) => last.fail(format!("{e}; imports compile in memory")),
        }
    };
    Ok((fs, job))
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a failure now means.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Packages are not stored yet: their files cannot be read.
    Packages,
    /// Only bytecode is missing.
    Bytecode,
}

/// The last state a server's work after mounting reports: said once, or (an early return, a
/// panic) said for it when dropped.
struct LastWord {
    reporter: Reporter,
    stage: Stage,
    said: bool,
}

impl LastWord {
    fn say(&mut self, status: &ServerStatus) {
        self.reporter.say(status);
        self.said = true;
    }

    fn fail(&mut self, reason: String) {
        let status = match self.stage {
            Stage::Packages => ServerStatus::PackagesFailed { reason },
            Stage::Bytecode => ServerStatus::NoBytecode { reason },
        };
        self.say(&status);
    }
}

impl Drop for LastWord {
    fn drop(&mut self) {
        if !self.said {
            self.fail("the server's work after mounting stopped".to_string());
        }
    }
}

/// Fails every package not stored yet when dropped.
struct Settle<'a>(&'a ArrivingPacks);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.0.fail_unsettled("the server stopped storing packages");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dx_py_core::hash::ContentHash;

    /// However the storing ends (here: the guard dropped before anything was stored, as on an
    /// early return or a panic), no read waits for a package that will not come.
    #[test]
    fn a_storer_that_stops_fails_every_waiting_read() {
        let arriving = Arc::new(ArrivingPacks::new([0, 1]));
        arriving.stored(1, ContentHash::from_bytes([3; 32]));
        let reader = {
            let arriving = Arc::clone(&arriving);
            std::thread::spawn(move || arriving.wait(0))
        };
        drop(Settle(&arriving));
        assert!(reader.join().unwrap().is_err());
        assert_eq!(
            arriving.wait(1).unwrap(),
            Some(ContentHash::from_bytes([3; 32]))
        );
    }

    /// Work that stops without a word (a panic, an early return) still leaves a final state,
    /// which says what cannot be read.
    #[test]
    fn a_last_word_is_said_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Reporter::new(dir.path(), Path::new("/v"), false);
        drop(LastWord {
            reporter: reporter.clone(),
            stage: Stage::Packages,
            said: false,
        });
        let saved = ServerStatus::load(&reporter.file).unwrap();
        assert!(
            matches!(saved, ServerStatus::PackagesFailed { .. }),
            "{saved:?}"
        );
        assert!(saved.is_final());
    }
}
