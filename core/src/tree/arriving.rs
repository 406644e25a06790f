//! Packs that are stored while their tree is already served: a mount of a set whose wheels are
//! not converted yet is built from the packages' layouts (known before a byte is written, see
//! [`crate::dxpkg::PackageLayout`]) and mounted at once; the server stores the packages
//! afterwards. A read that needs one of them waits until it is stored, and asks for it to be
//! stored next.
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::hash::ContentHash;

/// The packs of a served tree that are being stored, by pack slot.
#[derive(Debug, Default)]
pub struct ArrivingPacks {
    slots: Mutex<HashMap<u32, Arrival>>,
    changed: Condvar,
}

#[derive(Debug, Clone)]
enum Arrival {
    /// Not started; `wanted` once a read waits for it.
    Queued { wanted: bool },
    /// Being stored.
    Storing,
    /// Stored as this object.
    Stored(ContentHash),
    /// Could not be stored.
    Failed(String),
}

/// A pack that will not arrive.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Package of pack slot {slot} could not be stored: {why}")]
pub struct NotStored {
    /// The pack slot.
    pub slot: u32,
    /// Why.
    pub why: String,
}

impl ArrivingPacks {
    /// Expects the packs of `slots`.
    pub fn new(slots: impl IntoIterator<Item = u32>) -> Self {
        let slots = slots
            .into_iter()
            .map(|s| (s, Arrival::Queued { wanted: false }))
            .collect();
        Self {
            slots: Mutex::new(slots),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Arrival>> {
        // A panic while holding it leaves plain data behind, still consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The object of pack `slot`: `Ok(None)` when the slot is not arriving (it is in the store
    /// under the tree's own hash), else the stored object, waiting for it (and asking for it
    /// first) when it is not stored yet.
    pub fn wait(&self, slot: u32) -> Result<Option<ContentHash>, NotStored> {
        let mut slots = self.lock();
        loop {
            match slots.get_mut(&slot) {
                None => return Ok(None),
                Some(Arrival::Stored(hash)) => return Ok(Some(*hash)),
                Some(Arrival::Failed(why)) => {
                    return Err(NotStored {
                        slot,
                        why: why.clone(),
                    });
                }
                // `next` hands out wanted slots first.
                Some(Arrival::Queued { wanted }) => *wanted = true,
                Some(_) => {}
            }
            slots = self.changed.wait(slots).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The next slot to store, marked as being stored: one a read waits for if any, else the
    /// first queued one in `order`; `None` when nothing is queued.
    pub fn next(&self, order: &[u32]) -> Option<u32> {
        let mut slots = self.lock();
        let queued = |slots: &HashMap<u32, Arrival>, only_wanted: bool| {
            order.iter().copied().find(|s| {
                matches!(slots.get(s), Some(Arrival::Queued { wanted }) if *wanted || !only_wanted)
            })
        };
        let slot = queued(&slots, true).or_else(|| queued(&slots, false))?;
        slots.insert(slot, Arrival::Storing);
        Some(slot)
    }

    /// True once a read has waited for pack `slot` (and it has not been taken to be stored).
    pub fn wanted(&self, slot: u32) -> bool {
        matches!(
            self.lock().get(&slot),
            Some(Arrival::Queued { wanted: true })
        )
    }

    /// Pack `slot` is stored as `hash`.
    pub fn stored(&self, slot: u32, hash: ContentHash) {
        self.settle(slot, Arrival::Stored(hash));
    }

    /// Pack `slot` will not be stored; reads of it fail with `why`.
    pub fn failed(&self, slot: u32, why: String) {
        self.settle(slot, Arrival::Failed(why));
    }

    /// Every slot not stored yet fails with `why` (the storer is gone: nothing may wait forever).
    pub fn fail_unsettled(&self, why: &str) {
        let mut slots = self.lock();
        for arrival in slots.values_mut() {
            if matches!(arrival, Arrival::Queued { .. } | Arrival::Storing) {
                *arrival = Arrival::Failed(why.to_string());
            }
        }
        self.changed.notify_all();
    }

    /// True once every slot is stored or failed.
    pub fn settled(&self) -> bool {
        self.lock()
            .values()
            .all(|a| matches!(a, Arrival::Stored(_) | Arrival::Failed(_)))
    }

    fn settle(&self, slot: u32, arrival: Arrival) {
        if let Some(a) = self.lock().get_mut(&slot) {
            *a = arrival;
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn hash(n: u8) -> ContentHash {
        ContentHash::from_bytes([n; 32])
    }

    #[test]
    fn slots_not_arriving_do_not_wait() {
        let a = ArrivingPacks::new([3]);
        assert_eq!(a.wait(0).unwrap(), None);
        a.stored(3, hash(1));
        assert_eq!(a.wait(3).unwrap(), Some(hash(1)));
        assert!(a.settled());
    }

    /// A waiting read gets the object once stored, and its slot is stored before the rest.
    #[test]
    fn a_waiting_read_is_served_first_and_woken() {
        let a = Arc::new(ArrivingPacks::new([0, 1, 2]));
        let reader = {
            let a = Arc::clone(&a);
            std::thread::spawn(move || a.wait(2))
        };
        // Until the read has asked, the order decides.
        while !a.wanted(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(a.next(&[0, 1, 2]), Some(2));
        assert_eq!(a.next(&[0, 1, 2]), Some(0));
        a.stored(2, hash(7));
        assert_eq!(reader.join().unwrap().unwrap(), Some(hash(7)));
        assert!(!a.settled());
        assert_eq!(a.next(&[0, 1, 2]), Some(1));
        assert_eq!(a.next(&[0, 1, 2]), None);
    }

    /// A failure, or the storer going away, ends every wait with an error.
    #[test]
    fn failures_end_the_waits() {
        let a = Arc::new(ArrivingPacks::new([0, 1]));
        let waiters: Vec<_> = [0, 1]
            .into_iter()
            .map(|s| {
                let a = Arc::clone(&a);
                std::thread::spawn(move || a.wait(s))
            })
            .collect();
        a.failed(0, "hash mismatch".into());
        a.fail_unsettled("the server stopped");
        let errs: Vec<String> = waiters
            .into_iter()
            .map(|w| w.join().unwrap().unwrap_err().why)
            .collect();
        assert_eq!(errs, ["hash mismatch", "the server stopped"]);
        assert!(a.settled());
    }
}
