//! The corruption checks of the binary formats: fast 64-bit checksums built from one
//! multiply–rotate step, and blake3 over a file with its own checksum field blanked.
//!
//! None of these is meant to stop an adversary (who could as well rewrite the file and every
//! checksum in it); they catch torn writes and flipped bytes, cheaply enough to run on every read.
//! Every step is a bijection of the running state for a fixed input word and of the word for a
//! fixed state, so damage confined to one 8-byte word always changes the result; other damage
//! slips through with probability about 2^-64.
//!
//! Two shapes exist because two formats were written with them and their files must stay valid:
//! [`Checksum`] (four lanes over 32-byte blocks, streaming; DPL) and [`two_lane`] (two lanes over
//! 16-byte pairs, for records of a few dozen bytes; the DXLC layout index). New formats use
//! [`Checksum`].
use std::ops::Range;

use super::bytes::{word, word_padded};

/// Odd multipliers of the lane steps and finalizers (the usual 64-bit mixing primes).
pub(crate) const P1: u64 = 0x9e37_79b1_85eb_ca87;
pub(crate) const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;

/// One lane step: a bijection of `acc` for a fixed `w` and of `w` for a fixed `acc`.
#[inline(always)]
fn lane(acc: u64, w: u64, k: u64) -> u64 {
    (acc ^ w).wrapping_mul(k).rotate_left(31)
}

/// The full 64-bit finalizer: every input bit reaches every output bit.
#[inline(always)]
pub(crate) fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// A fast streaming 64-bit checksum: four independent lanes over 32-byte blocks, then the tail
/// word by word, then [`avalanche`]. Speed matters: DPL's `get` checks an entry (about 400 bytes)
/// on every hit. The layout is in `docs/formats/dpl.md`.
pub struct Checksum {
    lanes: [u64; 4],
    buf: [u8; 32],
    buf_len: usize,
    total: u64,
}

impl Checksum {
    /// A checksum seeded with `seed`: formats seed each kind of record differently so that the
    /// checksums of two kinds never agree by accident.
    #[inline]
    pub fn new(seed: u64) -> Self {
        Self {
            lanes: [
                seed.wrapping_add(P1).wrapping_add(P2),
                seed.wrapping_add(P2),
                seed,
                seed.wrapping_sub(P1),
            ],
            buf: [0; 32],
            buf_len: 0,
            total: 0,
        }
    }

    #[inline(always)]
    fn block(&mut self, b: &[u8]) {
        self.lanes[0] = lane(self.lanes[0], word(&b[0..]), P1);
        self.lanes[1] = lane(self.lanes[1], word(&b[8..]), P1);
        self.lanes[2] = lane(self.lanes[2], word(&b[16..]), P1);
        self.lanes[3] = lane(self.lanes[3], word(&b[24..]), P1);
    }

    /// Feeds `data`; pieces fed one after another give the checksum of their concatenation.
    #[inline]
    pub fn update(&mut self, mut data: &[u8]) -> &mut Self {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (32 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 32 {
                return self;
            }
            let buf = self.buf;
            self.block(&buf);
            self.buf_len = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
        self
    }

    #[inline(always)]
    fn merge(&self, total: u64) -> u64 {
        let [a, b, c, d] = self.lanes;
        a.rotate_left(1)
            .wrapping_add(b.rotate_left(7))
            .wrapping_add(c.rotate_left(12))
            .wrapping_add(d.rotate_left(18))
            .wrapping_add(total)
    }

    /// The merged lanes and total, then the tail (under 32 bytes) word by word.
    #[inline(always)]
    fn merge_with_tail(&self, total: u64, tail: &[u8]) -> u64 {
        let mut h = self.merge(total);
        let mut words = tail.chunks_exact(8);
        for w in &mut words {
            h = lane(h, word(w), P1).wrapping_add(P3);
        }
        for &b in words.remainder() {
            h = lane(h, u64::from(b).wrapping_mul(P3), P1);
        }
        h
    }

    /// The checksum of everything fed so far.
    #[inline]
    pub fn finish(&self) -> u64 {
        avalanche(self.merge_with_tail(self.total, &self.buf[..self.buf_len]))
    }
}

/// The [`Checksum`] of one byte string.
pub fn checksum(seed: u64, data: &[u8]) -> u64 {
    Checksum::new(seed).update(data).finish()
}

/// A [`Checksum`] over `blocks` (whole 32-byte blocks), then `bytes`, then `words` mixed as
/// little-endian 32-bit words, without copying them together. Equal to streaming the three
/// except that `words` are mixed word by word (a DPL entry: fixed part, string blob, edges).
#[inline]
pub fn blocks_bytes_words(seed: u64, blocks: &[u8], bytes: &[u8], words: &[u8]) -> u64 {
    debug_assert!(blocks.len().is_multiple_of(32));
    let mut c = Checksum::new(seed);
    for b in blocks.chunks_exact(32) {
        c.block(b);
    }
    let mut whole = bytes.chunks_exact(32);
    for b in &mut whole {
        c.block(b);
    }
    let total = (blocks.len() + bytes.len() + words.len()) as u64;
    let mut h = c.merge_with_tail(total, whole.remainder());
    for d in words.chunks_exact(4) {
        let d = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        h = lane(h, u64::from(d) ^ P2, P1).wrapping_add(P3);
    }
    avalanche(h)
}

/// A small-record checksum: two interleaved lanes (even words in one, odd words in the other, so
/// the CPU runs them in parallel), then a short finalizer. The lanes are combined by xor, a
/// bijection of either lane for a fixed other. blake3 would cost more than a whole DXLC lookup;
/// see `docs/formats/dxlc.md`.
pub fn two_lane(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xff51_afd7_ed55_8ccd;
    let mut a = 0x6478_6c63_2d76_3101 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut b = 0x6c61_796f_7574_7321_u64;
    let mut pairs = bytes.chunks_exact(16);
    for p in &mut pairs {
        a = lane(a, word(&p[..8]), K);
        b = lane(b, word(&p[8..]), K);
    }
    let rest = pairs.remainder();
    if !rest.is_empty() {
        let (first, second) = rest.split_at(rest.len().min(8));
        a = lane(a, word_padded(first), K);
        if !second.is_empty() {
            b = lane(b, word_padded(second), K);
        }
    }
    let mut h = a ^ b.rotate_left(32);
    h ^= h >> 33;
    h = h.wrapping_mul(K2);
    h ^ (h >> 29)
}

/// blake3 of `bytes` with the range `hole` (a file's own checksum field) taken as zeros. A file
/// too short to hold the whole hole is hashed up to where the hole starts.
pub fn blake3_with_hole(bytes: &[u8], hole: Range<usize>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&bytes[..bytes.len().min(hole.start)]);
    if bytes.len() >= hole.end {
        h.update(&[0u8; 64][..hole.len()]);
        h.update(&bytes[hole.end..]);
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Feeding the checksum in pieces gives the same result as in one go.
        #[test]
        fn checksum_streams(data in proptest::collection::vec(any::<u8>(), 0..300), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut c = Checksum::new(9);
            let mut at = 0;
            for cut in cuts {
                c.update(&data[at..cut]);
                at = cut;
            }
            c.update(&data[at..]);
            prop_assert_eq!(c.finish(), checksum(9, &data));
        }

        /// Changing one byte of any part changes the split checksum; so does the seed.
        #[test]
        fn split_checksum_sees_every_byte(
            blocks in proptest::collection::vec(any::<u8>(), 160),
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            words in proptest::collection::vec(any::<u8>(), 0..5).prop_map(|d| d.repeat(4)),
            at in any::<usize>(),
            x in 1u8..,
        ) {
            let base = blocks_bytes_words(3, &blocks, &bytes, &words);
            let mut all = [&blocks[..], &bytes[..], &words[..]].concat();
            let at = at % all.len();
            all[at] ^= x;
            let (f, rest) = all.split_at(blocks.len());
            let (b, d) = rest.split_at(bytes.len());
            prop_assert_ne!(base, blocks_bytes_words(3, f, b, d));
            prop_assert_ne!(base, blocks_bytes_words(4, &blocks, &bytes, &words));
        }

        /// Flipping any bits of one byte changes either checksum (guaranteed by construction).
        #[test]
        fn checksums_see_every_byte(data in proptest::collection::vec(any::<u8>(), 1..300), at in any::<usize>(), x in 1u8..) {
            let mut other = data.clone();
            let at = at % data.len();
            other[at] ^= x;
            prop_assert_ne!(checksum(7, &data), checksum(7, &other));
            prop_assert_ne!(two_lane(&data), two_lane(&other));
        }

        /// The hole reads as zeros: blanking it by hand gives the same hash.
        #[test]
        fn hole_reads_as_zeros(data in proptest::collection::vec(any::<u8>(), 0..200), start in 0usize..100, len in 0usize..40) {
            let hole = start..start + len;
            let mut blanked = data.clone();
            if data.len() >= hole.end {
                blanked[hole.clone()].fill(0);
                prop_assert_eq!(blake3_with_hole(&data, hole), *blake3::hash(&blanked).as_bytes());
            } else {
                let head = data.len().min(start);
                prop_assert_eq!(blake3_with_hole(&data, hole), *blake3::hash(&data[..head]).as_bytes());
            }
        }
    }

    #[test]
    fn checksum_depends_on_seed_and_length() {
        assert_ne!(checksum(1, b"abc"), checksum(2, b"abc"));
        assert_ne!(checksum(1, b""), checksum(1, b"\0"));
        assert_ne!(checksum(1, &[0; 32]), checksum(1, &[0; 33]));
        assert_ne!(two_lane(b""), two_lane(b"\0"));
    }

    /// Pinned values: files on disk carry these checksums, so the functions may never change.
    #[test]
    fn values_are_pinned() {
        let data: Vec<u8> = (0u8..77).collect();
        assert_eq!(checksum(5, &data), PINNED_CHECKSUM);
        assert_eq!(two_lane(&data), PINNED_TWO_LANE);
        assert_eq!(
            blocks_bytes_words(5, &data[..64], &data[64..73], &data[73..]),
            PINNED_SPLIT
        );
    }
    const PINNED_CHECKSUM: u64 = 0xdde5_6ab3_c98d_6459;
    const PINNED_TWO_LANE: u64 = 0xf2f1_3927_815b_ab55;
    const PINNED_SPLIT: u64 = 0x77cb_3486_5e21_7c64;
}
