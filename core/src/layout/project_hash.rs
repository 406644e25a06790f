//! The project hash: the key of a layout, computed from the exact package set and interpreter.
use std::fmt;
use std::str::FromStr;

use crate::hash::ContentHash;
use crate::names::normalize_name;

/// blake3 key-derivation context: separates project hashes from every other blake3 use and names
/// the layout format generation (bump it when the tree a spec produces changes). v2: bytecode
/// packs no longer replace a pyc the wheel ships (v1 layouts, and mount trees keyed by this hash,
/// may hold dx-py's pyc where the wheel has its own), and the wheel's sha256 is part of the key.
const CONTEXT: &str = "dx-py layout project hash v2";

/// The blake3 hash identifying one layout: the sorted `(normalized name, version, store hash,
/// wheel sha256)` list plus the interpreter tag. Its hex form names the layout directory.
///
/// The wheel's sha256 is what a lock promises; it is part of the key so that a layout is found
/// only for the locks whose hashes were checked against the store's records when it was built:
/// a lock whose sha256 was edited misses, and the cold path checks it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectHash([u8; 32]);

/// A string that is not 64 lowercase hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid project hash `{0}`: expected 64 lowercase hex digits")]
pub struct ProjectHashError(pub String);

impl ProjectHash {
    /// Hashes a package set for `interpreter_tag` (e.g. `cp311-linux_x86_64`).
    ///
    /// The result does not depend on the order of `packages`, on the spelling of names that PEP
    /// 503 treats as equal, or on exact duplicates in the list; any other change to a name, a
    /// version, a store hash or the tag gives a different hash.
    pub fn compute<'a>(
        interpreter_tag: &str,
        packages: impl IntoIterator<Item = (&'a str, &'a str, &'a ContentHash, &'a [u8; 32])>,
    ) -> Self {
        let mut list: Vec<(String, &str, &ContentHash, &[u8; 32])> = packages
            .into_iter()
            .map(|(name, version, hash, sha256)| (normalize_name(name), version, hash, sha256))
            .collect();
        list.sort();
        list.dedup();
        let mut h = blake3::Hasher::new_derive_key(CONTEXT);
        // Every variable-length field is length-prefixed, so no two lists encode alike.
        h.update(&(list.len() as u64).to_le_bytes());
        for (name, version, hash, sha256) in &list {
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&(version.len() as u64).to_le_bytes());
            h.update(version.as_bytes());
            h.update(hash.as_bytes());
            h.update(&sha256[..]);
        }
        h.update(&(interpreter_tag.len() as u64).to_le_bytes());
        h.update(interpreter_tag.as_bytes());
        Self(*h.finalize().as_bytes())
    }

    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters: the layout's directory name.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    /// The first 8 bytes as a little-endian integer: the index's probe start (the hash is
    /// uniformly distributed, so no further mixing is needed).
    pub(crate) fn slot_seed(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl FromStr for ProjectHash {
    type Err = ProjectHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<ContentHash>()
            .map(|h| Self(*h.as_bytes()))
            .map_err(|_| ProjectHashError(s.to_string()))
    }
}

impl fmt::Display for ProjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ProjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProjectHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    type Pkg = (String, String, [u8; 32]);

    fn hash_of(tag: &str, pkgs: &[Pkg]) -> ProjectHash {
        let hashes: Vec<ContentHash> = pkgs.iter().map(|p| ContentHash::from_bytes(p.2)).collect();
        ProjectHash::compute(
            tag,
            pkgs.iter()
                .zip(&hashes)
                .map(|(p, h)| (p.0.as_str(), p.1.as_str(), h, &p.2)),
        )
    }

    /// Naive oracle for "the same set": the normalized, sorted, deduplicated tuples.
    fn canonical(pkgs: &[Pkg]) -> Vec<Pkg> {
        let mut v: Vec<Pkg> = pkgs
            .iter()
            .map(|(n, ver, h)| (normalize_name(n), ver.clone(), *h))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn arb_pkgs() -> impl Strategy<Value = Vec<Pkg>> {
        vec(
            (
                "[A-Za-z][A-Za-z0-9._-]{0,8}",
                "[0-9]{1,2}(\\.[0-9]{1,2}){0,2}",
                any::<[u8; 32]>(),
            ),
            0..12,
        )
    }

    proptest! {
        #[test]
        fn any_permutation_gives_the_same_hash(pkgs in arb_pkgs(), seed in any::<u64>(), tag in "cp3[0-9]{1,2}-[a-z_0-9]{3,12}") {
            let mut shuffled = pkgs.clone();
            // Fisher-Yates driven by a simple LCG so that the permutation is reproducible.
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(hash_of(&tag, &pkgs), hash_of(&tag, &shuffled));
        }

        #[test]
        fn any_change_gives_a_different_hash(
            pkgs in arb_pkgs().prop_filter("non-empty", |p| !p.is_empty()),
            which in any::<prop::sample::Index>(),
            field in 0..4u8,
            new_text in "[a-z0-9]{1,6}",
            new_hash in any::<[u8; 32]>(),
        ) {
            let tag = "cp311-linux_x86_64".to_string();
            let mut changed = pkgs.clone();
            let mut new_tag = tag.clone();
            let i = which.index(changed.len());
            match field {
                0 => changed[i].0 = format!("{}{}", changed[i].0, new_text),
                1 => changed[i].1 = format!("{}.{}", changed[i].1, new_text),
                2 => changed[i].2 = new_hash,
                _ => new_tag = format!("{tag}{new_text}"),
            }
            // The oracle decides whether the set really changed (a changed tuple may duplicate
            // another one, or a hash may be redrawn equal).
            let same = canonical(&pkgs) == canonical(&changed) && tag == new_tag;
            prop_assert_eq!(same, hash_of(&tag, &pkgs) == hash_of(&new_tag, &changed));
        }
    }

    #[test]
    fn pep503_spellings_and_duplicates_are_one_set() {
        let h = [7u8; 32];
        let a = hash_of("t", &[("Foo_Bar".into(), "1.0".into(), h)]);
        let b = hash_of(
            "t",
            &[
                ("foo-bar".into(), "1.0".into(), h),
                ("foo.bar".into(), "1.0".into(), h),
            ],
        );
        assert_eq!(a, b);
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let h = [1u8; 32];
        let a = hash_of("t", &[("ab".into(), "1".into(), h)]);
        let b = hash_of("t", &[("a".into(), "b1".into(), h)]);
        assert_ne!(a, b);
        assert_ne!(hash_of("cp311", &[]), hash_of("cp312", &[]));
    }

    #[test]
    fn hex_round_trips_and_garbage_is_refused() {
        let h = hash_of("t", &[]);
        assert_eq!(h.to_hex().parse::<ProjectHash>().unwrap(), h);
        assert!("xyz".parse::<ProjectHash>().is_err());
    }
}
