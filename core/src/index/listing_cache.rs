//! Parsed project pages, kept beside the HTTP page cache: `{pages}/{entry}.files` next to the
//! page entry it was parsed from, stamped with that entry's key (a hash of its header, which
//! changes whenever the entry is replaced). A large page (pydantic-core's lists some 4,000 files
//! in 7 MB of JSON) costs a read, a JSON parse and a URL check per file; a page that may be used
//! without a request (fresh, or `--offline`) is read back from here without reading its body.
//! Anything unreadable, of another format version or stamped for another entry is a miss: the
//! page is parsed again and the file rewritten.
//!
//! The file is memory-mapped and read in place ([`CachedListing`]): checked once when opened
//! (every range inside the file, the strings UTF-8), then an [`IndexFile`] is made only for a
//! file the resolver looks at. The files' versions, as their names give them for the project
//! the page lists, are kept grouped, so that listing a project's versions parses one version
//! string per version instead of every file name.
//!
//! ```text
//! header   "DXPL"  u32 version=2  [u8; 32] entry key
//!          u32 length + UTF-8: the normalized project name the versions were read for
//!          u32 files  u32 groups  u32 members  u32 strings length
//! files    57 bytes each: u8 flags (1 yanked, 2 core-metadata)  u64 size (u64::MAX: unknown)
//!          6 strings, each u32 offset + u32 length into `strings`: filename, url, sha256,
//!          requires-python, yanked reason, core-metadata sha256 (empty: none)
//! groups   16 bytes each: u32 offset + u32 length of the version in `strings`,
//!          u32 first member, u32 member count
//! members  u32 each: a file's position; a group's members ascending
//! strings  UTF-8, every string on a character boundary
//! ```
//! Integers are little-endian and unaligned; the parts follow each other with nothing between
//! or after them.
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::listing::group_by_version;
use super::simple::{self, PageFormat};
use super::{CoreMetadata, IndexError, IndexFile, Url, redact_url};

const MAGIC: &[u8; 4] = b"DXPL";
const VERSION: u32 = 2;
const YANKED: u8 = 1;
const CORE_METADATA: u8 = 2;
/// Bytes of one file's record.
const FILE: usize = 1 + 8 + 6 * 8;
/// Bytes of one version group.
const GROUP: usize = 16;

/// Parsed pages, each beside its page cache entry.
#[derive(Debug, Default)]
pub(super) struct ListingCache;

impl ListingCache {
    /// The files parsed from the page entry `entry` whose key is `key`, if they were kept.
    pub(super) fn get(entry: &Path, key: &[u8; 32]) -> Option<CachedListing> {
        let path = parsed_path(entry);
        let map = crate::sys::map_immutable(&path).ok()?;
        let cached = CachedListing::new(map, key);
        if cached.is_none() {
            tracing::debug!("Not using the parsed page `{}`", path.display());
        }
        cached
    }

    /// The files of the page `body` (from `url`, in `format`, listing the project
    /// `normalized_name`), kept beside `entry` (whose key is `key`) when given.
    pub(super) fn parse(
        body: &[u8],
        format: PageFormat,
        url: &Url,
        normalized_name: &str,
        entry: Option<(&Path, &[u8; 32])>,
    ) -> Result<Vec<IndexFile>, IndexError> {
        let files =
            simple::parse_page(body, format, url).map_err(|reason| IndexError::InvalidPage {
                url: redact_url(url.as_str()),
                reason,
            })?;
        if let Some((entry, key)) = entry {
            let path = parsed_path(entry);
            let written = encode(&files, normalized_name, key)
                .ok_or_else(|| std::io::Error::other("the page is too large to keep"))
                .and_then(|bytes| crate::atomic::replace(&path, &bytes));
            if let Err(e) = written {
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

fn put_u32(out: &mut Vec<u8>, n: usize) -> Option<()> {
    out.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
    Some(())
}

/// The bytes of `files`; `None` when a count or offset does not fit in a u32.
fn encode(files: &[IndexFile], normalized_name: &str, key: &[u8; 32]) -> Option<Vec<u8>> {
    let groups = group_by_version(files, normalized_name);
    let members: usize = groups.iter().map(|(_, m)| m.len()).sum();
    let mut strings = Vec::new();
    let mut string = |s: Option<&str>| -> Option<(u32, u32)> {
        let s = s.unwrap_or_default();
        let at = u32::try_from(strings.len()).ok()?;
        strings.extend_from_slice(s.as_bytes());
        Some((at, u32::try_from(s.len()).ok()?))
    };
    let mut records = Vec::with_capacity(files.len() * FILE);
    for f in files {
        let mut flags = 0;
        if f.yanked {
            flags |= YANKED;
        }
        if f.core_metadata.is_some() {
            flags |= CORE_METADATA;
        }
        records.push(flags);
        records.extend_from_slice(&f.size.unwrap_or(u64::MAX).to_le_bytes());
        let metadata_sha = f.core_metadata.as_ref().and_then(|m| m.sha256.as_deref());
        for s in [
            Some(f.filename.as_str()),
            Some(f.url.as_str()),
            f.sha256.as_deref(),
            f.requires_python.as_deref(),
            f.yanked_reason.as_deref(),
            metadata_sha,
        ] {
            let (at, len) = string(s)?;
            records.extend_from_slice(&at.to_le_bytes());
            records.extend_from_slice(&len.to_le_bytes());
        }
    }
    let mut table = Vec::with_capacity(groups.len() * GROUP + members * 4);
    let mut first = 0;
    for (version, m) in &groups {
        let (at, len) = string(Some(version))?;
        table.extend_from_slice(&at.to_le_bytes());
        table.extend_from_slice(&len.to_le_bytes());
        put_u32(&mut table, first)?;
        put_u32(&mut table, m.len())?;
        first += m.len();
    }
    for i in groups.iter().flat_map(|(_, m)| m) {
        put_u32(&mut table, *i)?;
    }
    let mut out = Vec::with_capacity(64 + records.len() + table.len() + strings.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(key);
    put_u32(&mut out, normalized_name.len())?;
    out.extend_from_slice(normalized_name.as_bytes());
    put_u32(&mut out, files.len())?;
    put_u32(&mut out, groups.len())?;
    put_u32(&mut out, members)?;
    put_u32(&mut out, strings.len())?;
    out.extend_from_slice(&records);
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    Some(out)
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

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.u32()?).ok()
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// A kept page read in place, checked when opened: every string range lies on character
/// boundaries of the (UTF-8) strings, every member is a file's position.
pub(super) struct CachedListing {
    bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
    name: Range<usize>,
    count: usize,
    files: usize,
    groups: Range<usize>,
    members: usize,
    strings: Range<usize>,
}

impl std::fmt::Debug for CachedListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedListing")
            .field("name", &self.name())
            .field("files", &self.count)
            .finish_non_exhaustive()
    }
}

/// One version's files, as [`CachedListing::groups`] gives them.
pub(super) struct Group<'a, M> {
    /// The version as the file names write it.
    pub(super) version: &'a str,
    /// The files' positions, ascending.
    pub(super) members: M,
}

impl CachedListing {
    /// The listing in `bytes` if they hold one stamped with `key`; `None` for anything else
    /// (another version, another key, damage).
    pub(super) fn new(
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
        key: &[u8; 32],
    ) -> Option<Self> {
        let mut listing = Self {
            bytes: Box::new(bytes),
            name: 0..0,
            count: 0,
            files: 0,
            groups: 0..0,
            members: 0,
            strings: 0..0,
        };
        let all = (*listing.bytes).as_ref();
        let mut r = Reader(all);
        if r.take(4)? != MAGIC || r.u32()? != VERSION || r.take(32)? != key {
            return None;
        }
        let name_len = r.usize()?;
        let name_at = all.len() - r.0.len();
        std::str::from_utf8(r.take(name_len)?).ok()?;
        let count = r.usize()?;
        let groups = r.usize()?;
        let members = r.usize()?;
        let strings_len = r.usize()?;
        let files_at = all.len() - r.0.len();
        let groups_at = files_at.checked_add(count.checked_mul(FILE)?)?;
        let members_at = groups_at.checked_add(groups.checked_mul(GROUP)?)?;
        let strings_at = members_at.checked_add(members.checked_mul(4)?)?;
        if strings_at.checked_add(strings_len)? != all.len() {
            return None;
        }
        let strings = std::str::from_utf8(all.get(strings_at..)?).ok()?;
        let in_strings = |r: &mut Reader<'_>| -> Option<()> {
            let (at, len) = (r.usize()?, r.usize()?);
            strings.get(at..at.checked_add(len)?).map(|_| ())
        };
        let mut r = Reader(all.get(files_at..groups_at)?);
        for _ in 0..count {
            r.take(1 + 8)?;
            for _ in 0..6 {
                in_strings(&mut r)?;
            }
        }
        let mut r = Reader(all.get(groups_at..members_at)?);
        let mut next = 0usize;
        for _ in 0..groups {
            in_strings(&mut r)?;
            let (first, len) = (r.usize()?, r.usize()?);
            // The groups' members follow each other in order.
            if first != next {
                return None;
            }
            next = first.checked_add(len)?;
        }
        if next != members {
            return None;
        }
        let mut r = Reader(all.get(members_at..strings_at)?);
        for _ in 0..members {
            if r.usize()? >= count {
                return None;
            }
        }
        listing.name = name_at..name_at + name_len;
        listing.count = count;
        listing.files = files_at;
        listing.groups = groups_at..groups_at + groups * GROUP;
        listing.members = members_at;
        listing.strings = strings_at..all.len();
        Some(listing)
    }

    fn all(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    /// The normalized name of the project whose versions were grouped.
    pub(super) fn name(&self) -> &str {
        self.all()
            .get(self.name.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// How many files the page lists.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// The string at the range `r` reads (checked when opened: a failure here gives "").
    fn string(&self, r: &mut Reader<'_>) -> &str {
        let range = (|| {
            let at = r.usize()?;
            Some(at..at.checked_add(r.usize()?)?)
        })();
        let strings = self.all().get(self.strings.clone()).unwrap_or_default();
        range
            .and_then(|range| strings.get(range))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// The file at position `i`.
    pub(super) fn file(&self, i: usize) -> Option<IndexFile> {
        if i >= self.count {
            return None;
        }
        let at = self.files.checked_add(i.checked_mul(FILE)?)?;
        let mut r = Reader(self.all().get(at..at.checked_add(FILE)?)?);
        let flags = r.take(1)?.first().copied()?;
        let size = r.u64()?;
        let mut next = || self.string(&mut r).to_owned();
        let (filename, url, sha256) = (next(), next(), next());
        let (requires_python, yanked_reason, metadata_sha) = (next(), next(), next());
        let some = |s: String| (!s.is_empty()).then_some(s);
        Some(IndexFile {
            filename,
            url,
            sha256: some(sha256),
            requires_python: some(requires_python),
            yanked: flags & YANKED != 0,
            yanked_reason: some(yanked_reason),
            size: (size != u64::MAX).then_some(size),
            core_metadata: (flags & CORE_METADATA != 0).then_some(CoreMetadata {
                sha256: some(metadata_sha),
            }),
        })
    }

    /// `files` as kept for `normalized_name`, read back.
    #[cfg(test)]
    pub(super) fn of(files: &[IndexFile], normalized_name: &str) -> Option<Self> {
        Self::new(encode(files, normalized_name, &[0; 32])?, &[0; 32])
    }

    /// Every file, in order.
    pub(super) fn to_vec(&self) -> Vec<IndexFile> {
        (0..self.count).filter_map(|i| self.file(i)).collect()
    }

    /// The files by version, in order of first appearance on the page.
    pub(super) fn groups(&self) -> impl Iterator<Item = Group<'_, impl Iterator<Item = usize>>> {
        let all = self.all();
        let groups = all.get(self.groups.clone()).unwrap_or_default();
        groups.chunks_exact(GROUP).map(move |g| {
            let mut r = Reader(g);
            let version = self.string(&mut r);
            let first = r.usize().unwrap_or_default();
            let len = r.usize().unwrap_or_default();
            let at = self.members.saturating_add(first.saturating_mul(4));
            let members = all
                .get(at..at.saturating_add(len.saturating_mul(4)))
                .unwrap_or_default()
                .chunks_exact(4)
                .filter_map(|m| Some(u32::from_le_bytes(m.try_into().ok()?) as usize));
            Group { version, members }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];

    fn file() -> impl Strategy<Value = IndexFile> {
        (
            prop_oneof![
                "foo-[0-9]\\.[0-9]{1,2}-py3-none-any\\.whl",
                "foo-[0-9]\\.[0-9]\\.tar\\.gz",
                "[a-z0-9_.-]{1,20}",
                "[ -~é€]{0,12}",
            ],
            "https://[a-z]{1,8}/[a-z0-9/._é-]{0,20}",
            proptest::option::of("[0-9a-f]{64}"),
            proptest::option::of(">=3\\.[0-9]{1,2}"),
            any::<bool>(),
            proptest::option::of("[ -~é]{1,12}"),
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

    /// A page's files and its version groups.
    type Decoded = (Vec<IndexFile>, Vec<(String, Vec<usize>)>);

    fn decode(bytes: Vec<u8>, key: &[u8; 32]) -> Option<Decoded> {
        let cached = CachedListing::new(bytes, key)?;
        let files = cached.to_vec();
        assert_eq!(files.len(), cached.len());
        let groups = cached
            .groups()
            .map(|g| (g.version.to_owned(), g.members.collect()))
            .collect();
        Some((files, groups))
    }

    proptest! {
        #[test]
        fn listings_round_trip_with_their_versions(
            files in proptest::collection::vec(file(), 0..20),
        ) {
            let bytes = encode(&files, "foo", &KEY).unwrap();
            prop_assert_eq!(
                decode(bytes.clone(), &KEY),
                Some((files.clone(), group_by_version(&files, "foo")))
            );
            prop_assert_eq!(CachedListing::new(bytes, &[8; 32]).map(|c| c.len()), None);
        }

        #[test]
        fn damage_is_a_miss_or_a_listing_never_a_panic(
            files in proptest::collection::vec(file(), 1..5),
            at in any::<prop::sample::Index>(),
            cut in any::<bool>(),
        ) {
            let mut bytes = encode(&files, "foo", &KEY).unwrap();
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
                prop_assert!(decode(bytes, &KEY).is_none());
            } else {
                bytes[i] ^= 0x55;
                let _ = decode(bytes, &KEY);
            }
        }
    }

    #[test]
    fn another_format_version_is_a_miss() {
        let files = vec![IndexFile {
            filename: "foo-1.0.tar.gz".to_owned(),
            ..IndexFile::default()
        }];
        let mut bytes = encode(&files, "foo", &KEY).unwrap();
        assert!(CachedListing::new(bytes.clone(), &KEY).is_some());
        // Version 1 (one string after another), and a later version.
        for version in [1u32, 3] {
            bytes[4..8].copy_from_slice(&version.to_le_bytes());
            assert!(CachedListing::new(bytes.clone(), &KEY).is_none());
        }
    }

    #[test]
    fn a_parsed_page_is_kept_beside_its_entry_for_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("page");
        let url = Url::parse("https://example.invalid/simple/a/").unwrap();
        let body = br#"{"meta":{"api-version":"1.1"},"name":"a","files":[{"filename":"a-1.0-py3-none-any.whl","url":"https://example.invalid/a-1.0-py3-none-any.whl","hashes":{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"yanked":"old","core-metadata":true}]}"#;
        let parsed =
            ListingCache::parse(body, PageFormat::Json, &url, "a", Some((&entry, &[1; 32])))
                .unwrap();
        assert_eq!(
            parsed,
            simple::parse_page(body, PageFormat::Json, &url).unwrap()
        );
        let kept = ListingCache::get(&entry, &[1; 32]).unwrap();
        assert_eq!(kept.name(), "a");
        assert_eq!(kept.file(0).as_ref(), parsed.first());
        assert_eq!(kept.file(1), None);
        // The entry was replaced since: its key differs, the kept parse is not used.
        assert!(ListingCache::get(&entry, &[2; 32]).is_none());
        // Damage, truncation and an empty file are misses.
        let bytes = std::fs::read(parsed_path(&entry)).unwrap();
        for damaged in [&b"DXPL garbage"[..], &bytes[..bytes.len() - 1], b""] {
            std::fs::write(parsed_path(&entry), damaged).unwrap();
            assert!(ListingCache::get(&entry, &[1; 32]).is_none());
        }
    }

    #[test]
    fn an_invalid_page_is_an_error_naming_its_url() {
        let url = Url::parse("https://user:secret@example.invalid/simple/a/").unwrap();
        let err = ListingCache::parse(b"{", PageFormat::Json, &url, "a", None).unwrap_err();
        assert!(matches!(err, IndexError::InvalidPage { .. }), "{err}");
        assert!(
            err.to_string().contains("example.invalid/simple/a/"),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
