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
    }
}
