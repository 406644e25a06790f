//! Deterministic pseudo-random bytes for fixtures: incompressible, the same on every run.

/// `len` bytes of xorshift64 output from `seed` (an odd seed is used as is, an even one made odd).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
