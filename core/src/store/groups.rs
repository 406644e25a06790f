//! An object's name split along blake3's tree: the chaining values of its 16 KiB groups.
//!
//! blake3 hashes 1 KiB chunks and merges them pairwise in a left-balanced binary tree (the left
//! subtree of `n` chunks holds the largest power of two below `n`). A run of 16 chunks starting
//! at a multiple of 16 is a complete subtree of that tree, and so is the final, shorter run, so
//! an object of more than one group is named by merging its groups' chaining values (CVs) up
//! the same tree: a reader that trusts the CVs (because they merge to the object's name) checks
//! any group alone by hashing its 16 KiB. An object of at most one group has no inner subtree
//! boundary at 16 KiB and is checked whole against its name.
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use crate::hash::ContentHash;

/// log2 of [`GROUP_LEN`].
pub(crate) const GROUP_SHIFT: u32 = 14;

/// The bytes one CV covers: 16 blake3 chunks.
pub(crate) const GROUP_LEN: u64 = 1 << GROUP_SHIFT;

/// How many groups an object of `len` bytes has (the last one may be short; 0 for no bytes).
pub(crate) fn group_count(len: u64) -> u64 {
    len.div_ceil(GROUP_LEN)
}

/// The byte range of group `index` in an object of `len` bytes.
pub(crate) fn group_range(index: u64, len: u64) -> std::ops::Range<usize> {
    let start = index * GROUP_LEN;
    let end = (start + GROUP_LEN).min(len);
    start as usize..end as usize
}

/// The CV of group `index`, whose bytes are `bytes` (a full group, or the object's last one).
/// Only meaningful for objects of more than one group.
pub(crate) fn group_cv(index: u64, bytes: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(index * GROUP_LEN)
        .update(bytes)
        .finalize_non_root()
}

/// The name of an object of two or more groups, from their CVs.
pub(crate) fn root_of(cvs: &[ChainingValue]) -> ContentHash {
    debug_assert!(cvs.len() >= 2);
    let (left, right) = cvs.split_at(left_len(cvs.len()));
    ContentHash::from_bytes(
        *merge_subtrees_root(&subtree(left), &subtree(right), Mode::Hash).as_bytes(),
    )
}

/// The CV of the subtree made of `cvs` (one or more consecutive groups, starting at a group
/// whose index is a multiple of the subtree's largest power of two, as blake3's tree has them).
fn subtree(cvs: &[ChainingValue]) -> ChainingValue {
    if let [one] = cvs {
        return *one;
    }
    let (left, right) = cvs.split_at(left_len(cvs.len()));
    merge_subtrees_non_root(&subtree(left), &subtree(right), Mode::Hash)
}

/// blake3's split of `n >= 2` groups: the largest power of two below `n` goes left. (With
/// groups of a power-of-two number of chunks this is the same split blake3 makes in chunks.)
fn left_len(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The name and group CVs of `bytes` (no CVs when it is at most one group): one pass.
pub(crate) fn hash_groups(bytes: &[u8]) -> (ContentHash, Vec<ChainingValue>) {
    let mut hasher = GroupHasher::default();
    hasher.update(bytes);
    hasher.finish()
}

/// Hashes a stream into its name and group CVs at the cost of hashing it once: full groups are
/// hashed as they complete, except that a group is held back until a byte after it arrives (an
/// object of exactly one group has a root, not a CV).
#[derive(Default)]
pub(crate) struct GroupHasher {
    /// The bytes of the group being filled (at most [`GROUP_LEN`]).
    pending: Vec<u8>,
    cvs: Vec<ChainingValue>,
}

impl GroupHasher {
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        const LEN: usize = GROUP_LEN as usize;
        while !bytes.is_empty() {
            if self.pending.len() == LEN {
                let cv = group_cv(self.cvs.len() as u64, &self.pending);
                self.cvs.push(cv);
                self.pending.clear();
            }
            if self.pending.is_empty() && bytes.len() > LEN {
                // Whole groups with more bytes after them: hashed in place, no copy.
                let (group, rest) = bytes.split_at(LEN);
                self.cvs.push(group_cv(self.cvs.len() as u64, group));
                bytes = rest;
                continue;
            }
            let take = (LEN - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    /// The stream's name and, when it spans more than one group, the CVs of its groups.
    pub(crate) fn finish(mut self) -> (ContentHash, Vec<ChainingValue>) {
        if self.cvs.is_empty() {
            return (ContentHash::of(&self.pending), Vec::new());
        }
        let last = group_cv(self.cvs.len() as u64, &self.pending);
        self.cvs.push(last);
        (root_of(&self.cvs), self.cvs)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Lengths around every boundary that matters: empty, a chunk, a group, powers of two of
    /// groups (where blake3's left subtree changes size), and a few MiB.
    fn interesting_len() -> impl Strategy<Value = usize> {
        let g = GROUP_LEN as usize;
        prop_oneof![
            0usize..3000,
            (0usize..8, -2isize..=2)
                .prop_map(move |(k, d)| ((g << k) as isize + d).max(0) as usize),
            (1usize..40, -1isize..=1)
                .prop_map(move |(k, d)| (k * g) as isize + d)
                .prop_map(|n| n.max(0) as usize),
            (2usize << 20)..(5usize << 20),
        ]
    }

    fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The merged CVs are blake3's hash, however the stream is cut.
        #[test]
        fn merged_cvs_are_the_blake3_hash(len in interesting_len(), seed: u8, cut in 0usize..70_000) {
            let bytes = bytes_of(len, seed);
            let (name, cvs) = hash_groups(&bytes);
            prop_assert_eq!(name, ContentHash::of(&bytes));
            prop_assert_eq!(cvs.len() as u64, if len as u64 > GROUP_LEN { group_count(len as u64) } else { 0 });
            if cvs.len() >= 2 {
                prop_assert_eq!(root_of(&cvs), name);
                for (i, cv) in cvs.iter().enumerate() {
                    prop_assert_eq!(*cv, group_cv(i as u64, &bytes[group_range(i as u64, len as u64)]));
                }
            }
            // Streamed in pieces.
            let mut h = GroupHasher::default();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = (cut % 20_000 + 1).min(rest.len());
                h.update(&rest[..n]);
                rest = &rest[n..];
            }
            prop_assert_eq!(h.finish(), (name, cvs));
        }

        /// A flipped byte is caught by the group covering it (objects of several groups) or by
        /// the whole hash (one group), and the trusted CVs still merge to the name.
        #[test]
        fn a_flipped_byte_is_detected(len in interesting_len().prop_filter("not empty", |n| *n > 0), seed: u8, at: proptest::sample::Index, bit in 0u8..8) {
            let bytes = bytes_of(len, seed);
            let (name, cvs) = hash_groups(&bytes);
            let mut bad = bytes.clone();
            let i = at.index(len);
            bad[i] ^= 1 << bit;
            if cvs.is_empty() {
                prop_assert_ne!(ContentHash::of(&bad), name);
            } else {
                let g = i as u64 / GROUP_LEN;
                prop_assert_ne!(group_cv(g, &bad[group_range(g, len as u64)]), cvs[g as usize]);
                // Every other group still matches.
                for k in (0..cvs.len() as u64).filter(|k| *k != g) {
                    prop_assert_eq!(group_cv(k, &bad[group_range(k, len as u64)]), cvs[k as usize]);
                }
                // CVs recomputed from the damaged bytes no longer merge to the name.
                prop_assert_ne!(hash_groups(&bad).0, name);
            }
        }

        /// A damaged CV list does not merge to the name.
        #[test]
        fn a_damaged_cv_list_is_detected(groups in 2usize..70, seed: u8, at: proptest::sample::Index, bit in 0u8..8) {
            let bytes = bytes_of(groups * GROUP_LEN as usize - 7, seed);
            let (name, mut cvs) = hash_groups(&bytes);
            let i = at.index(cvs.len() * 32);
            cvs[i / 32][i % 32] ^= 1 << bit;
            prop_assert_ne!(root_of(&cvs), name);
        }
    }

    #[test]
    fn left_len_is_the_largest_power_of_two_below() {
        for (n, want) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (17, 16)] {
            assert_eq!(left_len(n), want, "{n}");
        }
    }
}
