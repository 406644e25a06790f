//! A small work queue: downloads wait on the network and ext4 inode allocation is kernel time
//! that runs in parallel, so a few threads overlap them even on two cores.
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `f` on every item with up to `max_workers` threads; results come back in input order.
pub(crate) fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    max_workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..items.len().clamp(1, max_workers.max(1)) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(k) else { break };
                    let r = f(item);
                    results
                        .lock()
                        .expect("no worker panics while holding the lock")
                        .push((k, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("workers are done");
    results.sort_by_key(|(k, _)| *k);
    results.into_iter().map(|(_, r)| r).collect()
}

/// [`map_in_order`], starting the items `size` says are largest first, so the longest job never
/// starts last and runs alone while the other cores idle; results still come back in input order.
pub(crate) fn map_largest_first<T: Sync, R: Send>(
    items: &[T],
    max_workers: usize,
    size: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let done = map_in_order(&order, max_workers, |&i| (i, f(&items[i])));
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (i, r) in done {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|r| r.expect("every item ran once"))
        .collect()
}

/// Slots for CPU-bound steps inside I/O-bound work: lock and fetch run up to 8 packages at
/// once so that downloads overlap, but converting more wheels at once than there are cores
/// only time-shares them, and the largest then finishes last, alone. A freed slot goes to the
/// largest job waiting.
pub(crate) struct CpuSlots {
    state: Mutex<SlotState>,
    changed: std::sync::Condvar,
}

struct SlotState {
    free: usize,
    /// Sizes of the jobs waiting for a slot.
    waiting: Vec<u64>,
}

impl CpuSlots {
    /// One slot per core, plus one to cover a step's own waits (fsync, page faults).
    pub(crate) fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(cores + 1)
    }

    pub(crate) fn new(slots: usize) -> Self {
        Self {
            state: Mutex::new(SlotState {
                free: slots.max(1),
                waiting: Vec::new(),
            }),
            changed: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f`, a job of `size`, once a slot is free and no larger job waits for one.
    pub(crate) fn run<R>(&self, size: u64, f: impl FnOnce() -> R) -> R {
        let mut state = self.lock();
        state.waiting.push(size);
        while state.free == 0 || state.waiting.iter().any(|&w| w > size) {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.free -= 1;
        if let Some(at) = state.waiting.iter().position(|&w| w == size) {
            state.waiting.swap_remove(at);
        }
        // A smaller job that saw this one waiting went back to sleep: with a slot still free
        // it may go now.
        let more = state.free > 0 && !state.waiting.is_empty();
        drop(state);
        if more {
            self.changed.notify_all();
        }
        // Given back even if `f` panics.
        struct Release<'a>(&'a CpuSlots);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.lock().free += 1;
                self.0.changed.notify_all();
            }
        }
        let _release = Release(self);
        f()
    }
}

/// Lowers the calling thread's scheduling priority to nice 10 (or leaves a lower one), and with
/// it that of the threads
/// and processes it starts from now on (they inherit it): for work nobody waits for, such as a
/// mount server compiling bytecode while the venv is already in use, so that it yields the CPU
/// to the work someone does wait for. Linux only (a thread's nice value is its own there);
/// elsewhere it does nothing. Failing to is harmless and ignored.
pub(crate) fn yield_cpu_to_others() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // A thread's id names it alone for PRIO_PROCESS on Linux.
        let tid = Some(rustix::thread::gettid());
        // An unreadable priority: then 10 is as good a guess as any.
        let now = getpriority_process(tid).unwrap_or(10);
        let rc = setpriority_process(tid, now.max(10));
        if let Err(e) = rc {
            tracing::debug!("lowering the thread priority: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use proptest::prelude::*;

    proptest! {
        /// Same answers, same order, as a plain sequential map, for any worker count.
        #[test]
        fn matches_a_sequential_map(items in proptest::collection::vec(any::<u32>(), 0..64), workers in 0usize..10) {
            let got = super::map_in_order(&items, workers, |x| u64::from(*x) * 3);
            let want: Vec<u64> = items.iter().map(|x| u64::from(*x) * 3).collect();
            prop_assert_eq!(got, want);
        }

        /// Largest first changes when items run, never what comes back or in which order.
        #[test]
        fn largest_first_returns_input_order(items in proptest::collection::vec(any::<u32>(), 0..64), workers in 0usize..10) {
            let got = super::map_largest_first(&items, workers, |x| u64::from(*x % 7), |x| u64::from(*x) * 3);
            let want: Vec<u64> = items.iter().map(|x| u64::from(*x) * 3).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// The lowered priority is the calling thread's, and what it starts inherits it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_yielding_the_cpu_passes_it_on_to_its_children() {
        let nice = || {
            let out = std::process::Command::new("sh")
                .args(["-c", "nice"])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let before = nice();
        let inside = std::thread::spawn(move || {
            super::yield_cpu_to_others();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(inside, before.parse::<i32>().unwrap().max(10).to_string());
        assert_eq!(nice(), before, "other threads keep their priority");
    }

    /// No more than the slots run at once, however many threads ask.
    #[test]
    fn slots_bound_how_many_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let slots = super::CpuSlots::new(2);
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        super::map_in_order(&[0u8; 16], 8, |_| {
            slots.run(1, || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        assert_eq!(most.into_inner(), 2);
    }

    /// Two slots freed at once start both waiting jobs: the smaller one is not left asleep
    /// behind the larger one that has just started (a race: without the wake-up after taking a
    /// slot this fails only on some runs).
    #[test]
    fn two_freed_slots_start_two_waiting_jobs() {
        let slots = super::CpuSlots::new(2);
        let gate = std::sync::Barrier::new(3);
        let running = std::sync::atomic::AtomicUsize::new(0);
        let both = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    slots.run(0, || {
                        gate.wait();
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    })
                });
            }
            gate.wait();
            for size in [9u64, 5] {
                let (slots, running, both) = (&slots, &running, &both);
                s.spawn(move || {
                    slots.run(size, || {
                        running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // Both run at once, or this times out and the test fails.
                        for _ in 0..200 {
                            if running.load(std::sync::atomic::Ordering::SeqCst) == 2 {
                                both.store(true, std::sync::atomic::Ordering::SeqCst);
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                    })
                });
            }
        });
        assert!(both.into_inner());
    }

    /// A freed slot goes to the largest job waiting for one.
    #[test]
    fn a_freed_slot_goes_to_the_largest_waiting_job() {
        let slots = super::CpuSlots::new(1);
        let order = Mutex::new(Vec::new());
        let gate = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                slots.run(0, || {
                    gate.wait();
                    // Let the others queue up behind this one.
                    std::thread::sleep(std::time::Duration::from_millis(50));
                })
            });
            gate.wait();
            for size in [3u64, 9, 5] {
                let (slots, order) = (&slots, &order);
                s.spawn(move || slots.run(size, || order.lock().unwrap().push(size)));
            }
        });
        assert_eq!(order.into_inner().unwrap(), [9, 5, 3]);
    }

    #[test]
    fn one_worker_takes_the_largest_first() {
        let started = std::sync::Mutex::new(Vec::new());
        super::map_largest_first(
            &[3u64, 9, 1, 5],
            1,
            |x| *x,
            |x| started.lock().unwrap().push(*x),
        );
        assert_eq!(started.into_inner().unwrap(), [9, 5, 3, 1]);
    }
}
