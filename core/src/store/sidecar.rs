//! The `.dxcv` sidecar: an object's group CVs, kept beside it (docs/formats/dxcv.md).
//!
//! Derived data: it is trusted only once its CVs merge to the object's name, so it carries no
//! checksum of its own, is written without replacing the object and may be rewritten at any
//! time. A sidecar that fails any check is simply recomputed from the object.
use blake3::hazmat::ChainingValue;

use super::groups::{GROUP_SHIFT, group_count, root_of};
use crate::hash::ContentHash;

/// `DXCV`, a NUL (not text), `\r\n` (caught by text-mode copies), `\x1a`.
const MAGIC: [u8; 8] = *b"DXCV\0\r\n\x1a";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;

/// Why a sidecar was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SidecarProblem {
    /// Shorter than its header.
    #[error("truncated: {0} bytes")]
    Truncated(usize),
    /// Not a sidecar.
    #[error("bad magic")]
    Magic,
    /// A version this build does not read.
    #[error("version {0}, expected {VERSION}")]
    Version(u32),
    /// Groups of another size.
    #[error("group shift {0}, expected {GROUP_SHIFT}")]
    GroupShift(u32),
    /// Describes an object of another length.
    #[error("object length {got}, expected {expected}")]
    ObjectLen {
        /// The object's length.
        expected: u64,
        /// The length the sidecar records.
        got: u64,
    },
    /// The reserved bytes are not zero.
    #[error("reserved bytes set")]
    Reserved,
    /// Not one CV per group.
    #[error("{got} bytes of CVs, expected {expected}")]
    CvLen {
        /// 32 per group.
        expected: u64,
        /// What follows the header.
        got: u64,
    },
    /// The CVs do not merge to the object's name.
    #[error("CVs do not merge to the object's name")]
    Mismatch,
}

/// The sidecar of an object of `object_len` bytes with these CVs (two or more).
pub(crate) fn encode(object_len: u64, cvs: &[ChainingValue]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 32 * cvs.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&GROUP_SHIFT.to_le_bytes());
    out.extend_from_slice(&object_len.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    for cv in cvs {
        out.extend_from_slice(cv);
    }
    out
}

/// The CVs in `bytes`, checked to describe the object `name` of `object_len` bytes.
pub(crate) fn decode(
    bytes: &[u8],
    name: &ContentHash,
    object_len: u64,
) -> Result<Vec<ChainingValue>, SidecarProblem> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if bytes.len() < HEADER_LEN {
        return Err(SidecarProblem::Truncated(bytes.len()));
    }
    if bytes[0..8] != MAGIC {
        return Err(SidecarProblem::Magic);
    }
    if u32_at(8) != VERSION {
        return Err(SidecarProblem::Version(u32_at(8)));
    }
    if u32_at(12) != GROUP_SHIFT {
        return Err(SidecarProblem::GroupShift(u32_at(12)));
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    if len != object_len {
        return Err(SidecarProblem::ObjectLen {
            expected: object_len,
            got: len,
        });
    }
    if bytes[24..32] != [0; 8] {
        return Err(SidecarProblem::Reserved);
    }
    let body = &bytes[HEADER_LEN..];
    let groups = group_count(object_len);
    if groups < 2 || body.len() as u64 != groups * 32 {
        return Err(SidecarProblem::CvLen {
            expected: groups * 32,
            got: body.len() as u64,
        });
    }
    let cvs: Vec<ChainingValue> = body
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    if root_of(&cvs) != *name {
        return Err(SidecarProblem::Mismatch);
    }
    Ok(cvs)
}

#[cfg(test)]
mod tests {
    use super::super::groups::{GROUP_LEN, hash_groups};
    use super::*;

    fn fixture() -> (Vec<u8>, ContentHash, u64) {
        let object: Vec<u8> = (0..3 * GROUP_LEN + 5).map(|i| (i % 253) as u8).collect();
        let (name, cvs) = hash_groups(&object);
        (encode(object.len() as u64, &cvs), name, object.len() as u64)
    }

    #[test]
    fn round_trips() {
        let (bytes, name, len) = fixture();
        assert_eq!(bytes.len(), HEADER_LEN + 4 * 32);
        assert_eq!(decode(&bytes, &name, len).unwrap().len(), 4);
    }

    /// One typed rejection per check.
    #[test]
    fn each_damage_is_refused() {
        let (good, name, len) = fixture();
        let with = |at: usize, b: u8| {
            let mut v = good.clone();
            v[at] = b;
            decode(&v, &name, len).unwrap_err()
        };
        assert_eq!(
            decode(&good[..31], &name, len).unwrap_err(),
            SidecarProblem::Truncated(31)
        );
        assert_eq!(with(0, b'X'), SidecarProblem::Magic);
        assert_eq!(with(8, 2), SidecarProblem::Version(2));
        assert_eq!(with(12, 13), SidecarProblem::GroupShift(13));
        assert_eq!(
            decode(&good, &name, len + 1).unwrap_err(),
            SidecarProblem::ObjectLen {
                expected: len + 1,
                got: len
            }
        );
        assert_eq!(with(30, 1), SidecarProblem::Reserved);
        assert_eq!(
            decode(&good[..good.len() - 1], &name, len).unwrap_err(),
            SidecarProblem::CvLen {
                expected: 128,
                got: 127
            }
        );
        assert_eq!(
            with(HEADER_LEN + 40, good[HEADER_LEN + 40] ^ 4),
            SidecarProblem::Mismatch
        );
        assert_eq!(
            decode(&good, &ContentHash::of(b"x"), len).unwrap_err(),
            SidecarProblem::Mismatch
        );
    }
}
