//! Parsed project pages, kept beside the HTTP page cache: `{pages}/{entry}.files` next to the
//! page entry it was parsed from, stamped with that entry's key (a hash of its header, which
//! changes whenever the entry is replaced). A large page (pydantic-core's lists some 4,000 files
//! in 7 MB of JSON) costs a read, a JSON parse and a URL check per file; a page that may be used
//! without a request (fresh, or `--offline`) is read back from here without reading its body.
//! Anything unreadable or stamped for another entry is a miss: the page is parsed again and the
//! file rewritten.
//!
//! ```text
//! "DXPL" u32 version=1  [u8; 32] entry key  u32 count
//! per file:  u8 flags (1 yanked, 2 core-metadata)  u64 size (u64::MAX: unknown)
//!            6 strings, each u32 length + UTF-8: filename, url, sha256, requires-python,
//!            yanked reason, core-metadata sha256 (empty: none)
//! ```
use std::path::{Path, PathBuf};

use super::simple::{self, PageFormat};
use super::{CoreMetadata, IndexFile, Url};

const MAGIC: &[u8; 4] = b"DXPL";
const VERSION: u32 = 1;
const YANKED: u8 = 1;
const CORE_METADATA: u8 = 2;

/// Parsed pages, each beside its page cache entry.
#[derive(Debug, Default)]
pub(super) struct ListingCache;

impl ListingCache {
    /// The files parsed from the page entry `entry` whose key is `key`, if they were kept.
    pub(super) fn get(entry: &Path, key: &[u8; 32]) -> Option<Vec<IndexFile>> {
        decode(&std::fs::read(parsed_path(entry)).ok()?, key)
    }

    /// The files of the page `body` (from `url`, in `format`), kept beside `entry` (whose key
    /// is `key`) when given.
    pub(super) fn parse(
        body: &[u8],
        format: PageFormat,
        url: &Url,
        entry: Option<(&Path, &[u8; 32])>,
    ) -> Result<Vec<IndexFile>, String> {
        let files = simple::parse_page(body, format, url)?;
        if let Some((entry, key)) = entry {
            let path = parsed_path(entry);
            if let Err(e) = crate::atomic::replace(&path, &encode(&files, key)) {
                tracing::debug!("Not keeping the parsed page `{}`: {e}", path.display());
            }
        }
        Ok(files)
    }
}

fn parsed_path(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".files");
    PathBuf::from(name)
}

fn encode(files: &[IndexFile], key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + files.len() * 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&u32::try_from(files.len()).unwrap_or(u32::MAX).to_le_bytes());
    for f in files.iter().take(u32::MAX as usize) {
        let mut flags = 0;
        if f.yanked {
            flags |= YANKED;
        }
        if f.core_metadata.is_some() {
            flags |= CORE_METADATA;
        }
        out.push(flags);
        out.extend_from_slice(&f.size.unwrap_or(u64::MAX).to_le_bytes());
        let metadata_sha = f.core_metadata.as_ref().and_then(|m| m.sha256.as_deref());
        for s in [
            Some(f.filename.as_str()),
            Some(f.url.as_str()),
            f.sha256.as_deref(),
            f.requires_python.as_deref(),
            f.yanked_reason.as_deref(),
            metadata_sha,
        ] {
            let s = s.unwrap_or_default();
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(0).to_le_bytes());
            if u32::try_from(s.len()).is_ok() {
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    out
}

/// Reads bytes from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok().map(str::to_owned)
    }

    fn optional(&mut self) -> Option<Option<String>> {
        let s = self.string()?;
        Some((!s.is_empty()).then_some(s))
    }
}

fn decode(bytes: &[u8], key: &[u8; 32]) -> Option<Vec<IndexFile>> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC || r.u32()? != VERSION || r.take(32)? != key {
        return None;
    }
    let count = usize::try_from(r.u32()?).ok()?;
    // Each file takes at least 33 bytes: a count that claims more than the file holds is damage.
    if count > bytes.len() / 33 {
        return None;
    }
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let flags = r.take(1)?[0];
        let size = r.u64()?;
        let filename = r.string()?;
        let url = r.string()?;
        let sha256 = r.optional()?;
        let requires_python = r.optional()?;
        let yanked_reason = r.optional()?;
        let metadata_sha = r.optional()?;
        files.push(IndexFile {
            filename,
            url,
            sha256,
            requires_python,
            yanked: flags & YANKED != 0,
            yanked_reason,
            size: (size != u64::MAX).then_some(size),
            core_metadata: (flags & CORE_METADATA != 0).then_some(CoreMetadata {
                sha256: metadata_sha,
            }),
        });
    }
    r.0.is_empty().then_some(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file() -> impl Strategy<Value = IndexFile> {
        (
            "[a-z0-9_.-]{1,20}",
            "https://[a-z]{1,8}/[a-z0-9/._-]{0,20}",
            proptest::option::of("[0-9a-f]{64}"),
            proptest::option::of(">=3\\.[0-9]{1,2}"),
            any::<bool>(),
            proptest::option::of("[ -~]{1,12}"),
            proptest::option::of(0u64..u64::MAX),
            proptest::option::of(proptest::option::of("[0-9a-f]{64}")),
        )
            .prop_map(|(filename, url, sha256, rp, yanked, reason, size, meta)| {
                IndexFile {
                    filename,
                    url,
                    sha256,
                    requires_python: rp,
                    yanked,
                    yanked_reason: reason,
                    size,
                    core_metadata: meta.map(|sha256| CoreMetadata { sha256 }),
                }
            })
    }

    proptest! {
        #[test]
        fn listings_round_trip(files in proptest::collection::vec(file(), 0..20)) {
            prop_assert_eq!(decode(&encode(&files, &[7; 32]), &[7; 32]), Some(files.clone()));
            prop_assert_eq!(decode(&encode(&files, &[7; 32]), &[8; 32]), None);
        }

        #[test]
        fn damage_is_a_miss_or_a_listing_never_a_panic(
            files in proptest::collection::vec(file(), 1..5),
            at in any::<prop::sample::Index>(),
            cut in any::<bool>(),
        ) {
            let mut bytes = encode(&files, &[7; 32]);
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
                prop_assert_eq!(decode(&bytes, &[7; 32]), None);
            } else {
                bytes[i] ^= 0x55;
                let _ = decode(&bytes, &[7; 32]);
            }
        }
    }

    #[test]
    fn a_parsed_page_is_kept_beside_its_entry_for_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("page");
        let url = Url::parse("https://example.invalid/simple/a/").unwrap();
        let body = br#"{"meta":{"api-version":"1.1"},"name":"a","files":[{"filename":"a-1.0-py3-none-any.whl","url":"https://example.invalid/a-1.0-py3-none-any.whl","hashes":{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"yanked":"old","core-metadata":true}]}"#;
        let parsed =
            ListingCache::parse(body, PageFormat::Json, &url, Some((&entry, &[1; 32]))).unwrap();
        assert_eq!(
            parsed,
            simple::parse_page(body, PageFormat::Json, &url).unwrap()
        );
        assert_eq!(ListingCache::get(&entry, &[1; 32]), Some(parsed));
        // The entry was replaced since: its key differs, the kept parse is not used.
        assert_eq!(ListingCache::get(&entry, &[2; 32]), None);
        // Damage is a miss.
        std::fs::write(parsed_path(&entry), b"DXPL garbage").unwrap();
        assert_eq!(ListingCache::get(&entry, &[1; 32]), None);
    }
}
