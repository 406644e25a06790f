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

#[cfg(test)]
mod tests {
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
