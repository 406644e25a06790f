//! Compiling sources that become known over time: an install queues each package's sources as
//! soon as the package is stored, so the interpreter workers run while later wheels are still
//! being converted instead of after all of them.
//!
//! Workers are the same processes as [`compile_each`](super::compile_each)'s (at most one per
//! core, and at most one per 512 KiB of source queued so far); each takes the largest source
//! among those waiting.
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::BytecodeError;
use super::batch::worker_count;
use super::pyc::{checked_cache_tag, pyc_path};
use super::worker::{AnswerError, Answers, run_worker};
use crate::python::interpreter::Interpreter;

/// A source a [`CompileSession`] owns until a worker has sent it.
pub trait SessionSource: Send + 'static {
    /// The source's path relative to site-packages (`pkg/mod.py`).
    fn name(&self) -> &str;
    /// The source's bytes.
    fn bytes(&self) -> &[u8];
}

/// A source held in memory: its name and bytes.
impl SessionSource for (String, Vec<u8>) {
    fn name(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> &[u8] {
        &self.1
    }
}

/// A queued source, ordered largest first (ties: first queued first).
struct Waiting<S> {
    len: usize,
    id: usize,
    source: S,
}

impl<S> PartialEq for Waiting<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.len, self.id) == (other.len, other.id)
    }
}

impl<S> Eq for Waiting<S> {}

impl<S> PartialOrd for Waiting<S> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<S> Ord for Waiting<S> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.len
            .cmp(&other.len)
            .then_with(|| other.id.cmp(&self.id))
    }
}

struct State<S> {
    waiting: BinaryHeap<Waiting<S>>,
    /// No more sources will come: workers finish what is waiting and stop.
    closed: bool,
    /// Sources and bytes queued so far, for the worker count.
    count: usize,
    bytes: usize,
}

struct Queue<S> {
    state: Mutex<State<S>>,
    ready: Condvar,
    /// Set by [`CompileSession::hold_while`].
    hold: std::sync::OnceLock<Hold>,
}

/// What holds workers back from taking sources: see [`CompileSession::hold_while`].
struct Hold {
    busy: Box<dyn Fn() -> bool + Send + Sync>,
    /// The most one worker waits, in all.
    budget: Duration,
}

/// How often a held worker looks again.
const HOLD_STEP: Duration = Duration::from_millis(10);

impl<S> Queue<S> {
    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // A worker thread that panicked cannot leave the queue half-changed: every change is
        // one push or pop.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The largest waiting source; blocks while none waits and the queue is open, and, while
    /// a source waits but the session is held ([`CompileSession::hold_while`]), until it is
    /// not or the worker's budget is spent (`held`: the microseconds it has waited so far;
    /// only waiting with a source to take counts).
    fn take(&self, held: &AtomicU64) -> Option<(usize, S)> {
        loop {
            let mut state = self.lock();
            while state.waiting.is_empty() && !state.closed {
                state = self
                    .ready
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if state.waiting.is_empty() {
                return None;
            }
            // `busy()` is the caller's: not called with the queue locked.
            drop(state);
            if self.is_held(held) {
                let slept = std::time::Instant::now();
                std::thread::sleep(HOLD_STEP);
                let micros = u64::try_from(slept.elapsed().as_micros()).unwrap_or(u64::MAX);
                held.fetch_add(micros, Ordering::Relaxed);
                continue;
            }
            // Another worker may have taken it meanwhile: then wait again.
            if let Some(w) = self.lock().waiting.pop() {
                return Some((w.id, w.source));
            }
        }
    }

    /// True while [`CompileSession::hold_while`]'s `busy()` holds and `held` is under budget.
    fn is_held(&self, held: &AtomicU64) -> bool {
        self.hold.get().is_some_and(|hold| {
            let budget = u64::try_from(hold.budget.as_micros()).unwrap_or(u64::MAX);
            held.load(Ordering::Relaxed) < budget && (hold.busy)()
        })
    }

    /// Closes the queue; with `discard`, what still waits is dropped unanswered.
    fn close(&self, discard: bool) {
        let mut state = self.lock();
        state.closed = true;
        if discard {
            state.waiting.clear();
        }
        drop(state);
        self.ready.notify_all();
    }
}

/// Compiles sources handed to it one at a time, on worker processes started as work arrives.
/// [`finish`](Self::finish) waits for every answer; dropping the session unfinished (an install
/// that failed) drops what still waits and stops the workers after the sources each holds (the
/// one it compiles and at most one sent ahead).
pub struct CompileSession<S: SessionSource> {
    python: PathBuf,
    cache_tag: String,
    jobs: usize,
    queue: Arc<Queue<S>>,
    workers: Mutex<Vec<JoinHandle<Result<Answers, BytecodeError>>>>,
    /// Workers run at a lower priority ([`CompileSession::in_background`]).
    background: bool,
}

impl<S: SessionSource> CompileSession<S> {
    /// A session compiling with `interp` on at most `jobs` workers (at least one).
    pub fn new(interp: &Interpreter, jobs: usize) -> Result<Self, BytecodeError> {
        let cache_tag = checked_cache_tag(interp)?;
        Ok(Self {
            python: interp.path().to_path_buf(),
            cache_tag,
            jobs: jobs.max(1),
            queue: Arc::new(Queue {
                state: Mutex::new(State {
                    waiting: BinaryHeap::new(),
                    closed: false,
                    count: 0,
                    bytes: 0,
                }),
                ready: Condvar::new(),
                hold: std::sync::OnceLock::new(),
            }),
            workers: Mutex::new(Vec::new()),
            background: false,
        })
    }

    /// Runs the workers (the threads and the interpreters they start) at a lower priority:
    /// for compiling nobody waits for, beside work someone does (a mounted venv in use).
    #[must_use]
    pub fn in_background(mut self) -> Self {
        self.background = true;
        self
    }

    /// Holds the workers back while `busy()` is true (a mounted venv in use: its imports first),
    /// each for at most `budget` in all (time spent with a source to take), so the session
    /// still ends: a held worker looks again every 10 ms, and finishes the source it has before
    /// waiting. `busy` must be cheap and must not block. Set once, before the first push.
    #[must_use]
    pub fn hold_while(
        self,
        busy: impl Fn() -> bool + Send + Sync + 'static,
        budget: Duration,
    ) -> Self {
        let _ = self.queue.hold.set(Hold {
            busy: Box::new(busy),
            budget,
        });
        self
    }

    /// Queues `source`. Returns its id (the key of its answer) and its pyc path, or `None` when
    /// it is not compiled (not a `.py` path, or an absolute or `..` one).
    pub fn push(&self, source: S) -> Result<Option<(usize, String)>, BytecodeError> {
        let (name, len) = (source.name(), source.bytes().len());
        let Some(pyc) = pyc_path(name, &self.cache_tag) else {
            return Ok(None);
        };
        if u32::try_from(len).is_err() || u32::try_from(name.len()).is_err() {
            return Err(BytecodeError::TooLarge {
                name: name.to_string(),
                len,
            });
        }
        // A source's id is its position in push order.
        let (id, want) = {
            let mut state = self.queue.lock();
            let id = state.count;
            state.waiting.push(Waiting { len, id, source });
            state.count += 1;
            state.bytes += len;
            (id, worker_count(state.bytes, state.count, self.jobs))
        };
        self.queue.ready.notify_one();
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while workers.len() < want {
            let (python, queue) = (self.python.clone(), Arc::clone(&self.queue));
            let background = self.background;
            let worker = std::thread::Builder::new()
                .name("dx-py-compile".into())
                .spawn(move || {
                    if background {
                        crate::parallel::yield_cpu_to_others();
                    }
                    let held = AtomicU64::new(0);
                    run_worker(&python, &|| queue.take(&held))
                })
                .map_err(|source| BytecodeError::Spawn {
                    path: self.python.clone(),
                    source,
                })?;
            workers.push(worker);
        }
        Ok(Some((id, pyc)))
    }

    /// Waits for every queued source and returns the pycs by id (`None`: did not compile).
    pub fn finish(self) -> Result<Answers, BytecodeError> {
        let workers = self.close(false);
        let mut answers = Vec::new();
        let mut first_error = None;
        for worker in workers {
            let result = worker.join().unwrap_or_else(|_| {
                Err(BytecodeError::BadOutput {
                    path: self.python.clone(),
                    source: AnswerError::WorkerPanicked,
                })
            });
            match result {
                Ok(a) => answers.extend(a),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Sources a failed worker had taken have no answer: the error says why.
        if let Some(e) = first_error {
            return Err(e);
        }
        let queued = self.queue.lock().count;
        if answers.len() != queued {
            return Err(BytecodeError::BadOutput {
                path: self.python.clone(),
                source: AnswerError::Unanswered {
                    queued,
                    answered: answers.len(),
                },
            });
        }
        Ok(answers)
    }
}

impl<S: SessionSource> CompileSession<S> {
    /// Lets the workers run out of work (all of it, or with `discard` only what they hold) and
    /// hands over their threads, to join once each.
    fn close(&self, discard: bool) -> Vec<JoinHandle<Result<Answers, BytecodeError>>> {
        self.queue.close(discard);
        std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl<S: SessionSource> Drop for CompileSession<S> {
    fn drop(&mut self) {
        for worker in self.close(true) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::compile_sources;
    use crate::python::interpreter::tests::pyenv_python;

    fn interp(cache: &std::path::Path) -> Option<Interpreter> {
        let python = pyenv_python(11)?;
        Some(Interpreter::find(python.to_str(), cache).unwrap())
    }

    fn sources(n: usize) -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let body = format!("X = {i}\n").repeat(1 + i * 4000);
                (format!("pkg/m{i}.py"), body.into_bytes())
            })
            .collect()
    }

    /// Sources pushed over time, from several threads, while workers already run: every one
    /// is answered once, with the pyc `compile_sources` makes for it; non-sources are refused
    /// up front and sources that do not compile answer `None`.
    #[test]
    fn pushed_sources_match_compiling_at_once() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(cache.path()) else {
            return;
        };
        let all = sources(24);
        let session = CompileSession::new(&interp, 2).unwrap();
        let ids = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for half in all.chunks(12) {
                let (session, ids) = (&session, &ids);
                s.spawn(move || {
                    for src in half {
                        let (id, pyc) = session.push(src.clone()).unwrap().unwrap();
                        ids.lock().unwrap().push((id, pyc, src.0.clone()));
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                });
            }
        });
        assert!(
            session
                .push(("pkg/data.txt".into(), b"x".to_vec()))
                .unwrap()
                .is_none()
        );
        let (bad, _) = session
            .push(("pkg/bad.py".into(), b"def (".to_vec()))
            .unwrap()
            .unwrap();
        let answers: std::collections::HashMap<usize, Option<Vec<u8>>> =
            session.finish().unwrap().into_iter().collect();
        assert_eq!(answers.len(), all.len() + 1);
        assert_eq!(answers[&bad], None);
        let want: std::collections::HashMap<String, Vec<u8>> =
            compile_sources(&interp, all.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
                .unwrap()
                .into_iter()
                .collect();
        for (id, pyc, _) in ids.into_inner().unwrap() {
            assert_eq!(answers[&id].as_ref(), Some(&want[&pyc]), "{pyc}");
        }
    }

    /// A source that counts how often its bytes are read.
    struct Counted(String, Vec<u8>, Arc<std::sync::atomic::AtomicUsize>);

    impl SessionSource for Counted {
        fn name(&self) -> &str {
            &self.0
        }

        fn bytes(&self) -> &[u8] {
            self.2.fetch_add(1, Ordering::SeqCst);
            &self.1
        }
    }

    /// While held, no worker takes a source; once the hold lifts, or a worker's budget is
    /// spent, everything is compiled.
    #[test]
    fn a_held_session_waits_then_compiles_everything() {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(cache.path()) else {
            return;
        };
        for lifted in [true, false] {
            let busy = Arc::new(AtomicBool::new(true));
            let sent = Arc::new(AtomicUsize::new(0));
            let flag = Arc::clone(&busy);
            // Lifted by hand, or never: then the budget ends the wait.
            let budget = if lifted {
                Duration::from_secs(600)
            } else {
                Duration::from_millis(50)
            };
            let session = CompileSession::new(&interp, 2)
                .unwrap()
                .hold_while(move || flag.load(Ordering::SeqCst), budget);
            for (name, bytes) in sources(6) {
                session
                    .push(Counted(name, bytes, Arc::clone(&sent)))
                    .unwrap();
            }
            // `push` read each once (for its length); a worker reads it again to send it.
            let pushed = sent.load(Ordering::SeqCst);
            if lifted {
                std::thread::sleep(Duration::from_millis(150));
                assert_eq!(
                    sent.load(Ordering::SeqCst),
                    pushed,
                    "a held worker took a source"
                );
                busy.store(false, Ordering::SeqCst);
            }
            let answers = session.finish().unwrap();
            assert_eq!(answers.len(), 6);
            assert!(answers.iter().all(|(_, pyc)| pyc.is_some()));
        }
    }

    /// A worker held with nothing to take spends none of its budget: sources pushed later
    /// still wait for the hold to lift.
    #[test]
    fn an_idle_held_worker_keeps_its_budget() {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(cache.path()) else {
            return;
        };
        let busy = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicUsize::new(0));
        let flag = Arc::clone(&busy);
        let session = CompileSession::new(&interp, 1).unwrap().hold_while(
            move || flag.load(Ordering::SeqCst),
            Duration::from_millis(100),
        );
        let mut sources = sources(2).into_iter();
        let (name, bytes) = sources.next().unwrap();
        // The first push starts the worker; lift the hold until it has taken that source.
        session
            .push(Counted(name, bytes, Arc::clone(&sent)))
            .unwrap();
        busy.store(false, Ordering::SeqCst);
        while sent.load(Ordering::SeqCst) < 2 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Idle and held for twice the budget, with nothing to take.
        busy.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        let (name, bytes) = sources.next().unwrap();
        session
            .push(Counted(name, bytes, Arc::clone(&sent)))
            .unwrap();
        let pushed = sent.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            sent.load(Ordering::SeqCst),
            pushed,
            "the idle wait spent the budget"
        );
        busy.store(false, Ordering::SeqCst);
        assert_eq!(session.finish().unwrap().len(), 2);
    }

    /// Nothing pushed: no worker starts and finishing answers nothing.
    #[test]
    fn an_empty_session_starts_no_worker() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(cache.path()) else {
            return;
        };
        let session: CompileSession<(String, Vec<u8>)> = CompileSession::new(&interp, 4).unwrap();
        assert!(session.workers.lock().unwrap().is_empty());
        assert!(session.finish().unwrap().is_empty());
    }

    /// A worker that dies (here `/bin/false`) fails the session instead of leaving sources
    /// unanswered.
    #[test]
    fn a_dead_worker_fails_the_session() {
        let cache = tempfile::tempdir().unwrap();
        let Some(real) = interp(cache.path()) else {
            return;
        };
        let fake = Interpreter::from_info("/bin/false".into(), real.info().clone()).unwrap();
        let session = CompileSession::new(&fake, 2).unwrap();
        for (name, bytes) in sources(3) {
            session.push((name, bytes)).unwrap();
        }
        let err = session.finish().unwrap_err();
        assert!(matches!(err, BytecodeError::WorkerFailed { .. }), "{err}");

        // Dropped unfinished (an install that failed), a session throws away what still waits
        // instead of compiling it: here no worker is left to take it.
        let session = CompileSession::new(&fake, 2).unwrap();
        for (name, bytes) in sources(40) {
            session.push((name, bytes)).unwrap();
        }
        let queue = Arc::clone(&session.queue);
        drop(session);
        assert!(queue.lock().waiting.is_empty());
        assert!(queue.lock().closed);
    }
}
