//! Content hashes: blake3 names store objects, sha256 checks wheels against locks and RECORDs.
use std::fmt;
use std::str::FromStr;

/// The blake3 hash of a store object; its lowercase hex form names the object on disk.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

/// A string that is not 64 lowercase hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid content hash `{0}`: expected 64 lowercase hex digits")]
pub struct ContentHashError(pub String);

impl ContentHash {
    /// Hashes `bytes` with blake3.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
}

impl FromStr for ContentHash {
    type Err = ContentHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ContentHashError(s.to_string()));
        }
        let mut out = [0u8; 32];
        data_encoding::HEXLOWER
            .decode_mut(s.as_bytes(), &mut out)
            .map_err(|_| ContentHashError(s.to_string()))?;
        Ok(Self(out))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

/// Lowercase hex sha256 of `bytes`, the form locks and `--hash=sha256:` use.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
}

/// Unpadded urlsafe-base64 sha256 of `bytes`, the form wheel RECORD files use.
pub fn sha256_record(bytes: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::BASE64URL_NOPAD.encode(&sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>()) {
            let h = ContentHash::from_bytes(bytes);
            let hex = h.to_hex();
            prop_assert_eq!(hex.len(), 64);
            prop_assert_eq!(hex.parse::<ContentHash>().unwrap(), h);
        }

        #[test]
        fn garbage_is_refused(s in "\\PC{0,80}") {
            if let Ok(h) = s.parse::<ContentHash>() {
                prop_assert_eq!(h.to_hex(), s);
            }
        }
    }

    #[test]
    fn uppercase_is_refused() {
        let s = "A".repeat(64);
        assert!(s.parse::<ContentHash>().is_err());
    }

    #[test]
    fn known_sha256_forms() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_record(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
