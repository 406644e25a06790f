//! Little-endian integers at checked offsets.
//!
//! Every format stores its integers as endian-explicit byte arrays with alignment 1, so a reader
//! never needs the (mapped) bytes to be aligned. A read that does not fit is an [`OutOfRange`]
//! error, never a panic: the bytes are untrusted input. Writes go into buffers the writer sized
//! itself, so a write out of range is a bug of the writer and panics like any slice index.

/// A field that does not fit in the bytes present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("A {width}-byte field at offset {at} lies outside the {len} bytes present")]
pub struct OutOfRange {
    /// Offset of the field.
    pub at: usize,
    /// Width of the field in bytes.
    pub width: usize,
    /// Bytes present.
    pub len: usize,
}

/// The `N` bytes at `at`.
#[inline]
pub fn array_at<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], OutOfRange> {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(OutOfRange {
            at,
            width: N,
            len: b.len(),
        })
}

/// The byte at `at`.
#[inline]
pub fn u8_at(b: &[u8], at: usize) -> Result<u8, OutOfRange> {
    array_at::<1>(b, at).map(|[v]| v)
}

/// The little-endian `u16` at `at`.
#[inline]
pub fn u16_at(b: &[u8], at: usize) -> Result<u16, OutOfRange> {
    array_at(b, at).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `at`.
#[inline]
pub fn u32_at(b: &[u8], at: usize) -> Result<u32, OutOfRange> {
    array_at(b, at).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `at`.
#[inline]
pub fn u64_at(b: &[u8], at: usize) -> Result<u64, OutOfRange> {
    array_at(b, at).map(u64::from_le_bytes)
}

/// The little-endian `i64` at `at`.
#[inline]
pub fn i64_at(b: &[u8], at: usize) -> Result<i64, OutOfRange> {
    array_at(b, at).map(i64::from_le_bytes)
}

/// The little-endian `u16` at a constant offset of a fixed-size record, which is in range by
/// construction (a panic here is a bug in the format's constants, not bad input).
#[inline]
pub fn rec_u16<const N: usize>(rec: &[u8; N], at: usize) -> u16 {
    u16_at(rec, at).expect("field inside its fixed-size record")
}

/// [`rec_u16`] for a `u32`.
#[inline]
pub fn rec_u32<const N: usize>(rec: &[u8; N], at: usize) -> u32 {
    u32_at(rec, at).expect("field inside its fixed-size record")
}

/// [`rec_u16`] for a `u64`.
#[inline]
pub fn rec_u64<const N: usize>(rec: &[u8; N], at: usize) -> u64 {
    u64_at(rec, at).expect("field inside its fixed-size record")
}

/// The little-endian `u32`s of `b`, one per whole 4-byte word (a trailing partial word is
/// ignored: callers pass sections whose length they checked).
#[inline]
pub fn words_u32(b: &[u8]) -> impl ExactSizeIterator<Item = u32> + '_ {
    b.chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// The little-endian word made of `rest` (at most 8 bytes), zero-padded: how checksums and name
/// hashes read the tail of their input.
#[inline(always)]
pub fn word_padded(rest: &[u8]) -> u64 {
    // A shift per byte, not a `copy_from_slice` of a variable length: that becomes a call to
    // `memcpy`, which costs more than the whole loop on tails of a few bytes (DPL `get`).
    let mut w = 0u64;
    for (i, &b) in rest.iter().take(8).enumerate() {
        w |= u64::from(b) << (8 * i);
    }
    w
}

/// The little-endian word at the start of `b` (at least 8 bytes: callers pass whole chunks).
#[inline(always)]
pub fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Writes `v` at `at`.
#[inline]
pub fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `at`.
#[inline]
pub fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `at`.
#[inline]
pub fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` at `at`.
#[inline]
pub fn put_i64(buf: &mut [u8], at: usize, v: i64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A read succeeds exactly when the field fits, and returns what a write put there.
        #[test]
        fn reads_are_checked_and_round_trip(len in 0usize..40, at in 0usize..48, v in any::<u64>()) {
            let mut buf = vec![0u8; len];
            let fits = |w: usize| at + w <= len;
            if fits(8) {
                put_u64(&mut buf, at, v);
                prop_assert_eq!(u64_at(&buf, at), Ok(v));
                prop_assert_eq!(i64_at(&buf, at), Ok(v as i64));
            }
            if fits(4) {
                put_u32(&mut buf, at, v as u32);
                prop_assert_eq!(u32_at(&buf, at), Ok(v as u32));
            }
            if fits(2) {
                put_u16(&mut buf, at, v as u16);
                prop_assert_eq!(u16_at(&buf, at), Ok(v as u16));
            }
            for (w, got) in [
                (1, u8_at(&buf, at).map(u64::from)),
                (2, u16_at(&buf, at).map(u64::from)),
                (4, u32_at(&buf, at).map(u64::from)),
                (8, u64_at(&buf, at)),
            ] {
                prop_assert_eq!(got.is_ok(), fits(w));
                if let Err(e) = got {
                    prop_assert_eq!(e, OutOfRange { at, width: w, len });
                }
            }
        }

        /// The padded tail word equals the word of the tail padded by hand.
        #[test]
        fn padded_word_matches_word(rest in proptest::collection::vec(any::<u8>(), 0..=8)) {
            let mut full = rest.clone();
            full.resize(8, 0);
            prop_assert_eq!(word_padded(&rest), word(&full));
        }
    }

    #[test]
    fn offsets_near_usize_max_do_not_overflow() {
        let e = u64_at(&[0; 16], usize::MAX - 3).unwrap_err();
        assert_eq!(e.width, 8);
        assert!(array_at::<32>(&[0; 16], usize::MAX).is_err());
    }
}
