//! Reads `.dxpkg` bytes as untrusted input: every offset is checked, nothing panics.
use super::format::*;
use crate::format::bytes::{OutOfRange, u8_at, u16_at, u32_at, u64_at};

/// A `.dxpkg` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DxpkgError {
    /// Shorter than its header says.
    #[error("Truncated .dxpkg: need {needed} bytes, file has {len}")]
    Truncated {
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// Not a `.dxpkg` at all.
    #[error("Not a .dxpkg file: bad magic bytes")]
    BadMagic,
    /// Written by another format version.
    #[error("Unsupported .dxpkg version: expected {expected}, got {got}")]
    UnsupportedVersion {
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        got: u32,
    },
    /// A structural field is out of range or inconsistent.
    #[error("Corrupt .dxpkg: {0}")]
    Corrupt(&'static str),
    /// A field lies outside the file.
    #[error("Corrupt .dxpkg")]
    OutOfRange(#[from] OutOfRange),
}

/// One file of a package, borrowed from the mapped bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEntry<'a> {
    /// Install scheme.
    pub scheme: Scheme,
    /// Path relative to the scheme's root, `/`-separated.
    pub path: &'a str,
    /// File or in-package symlink.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// The bytes (the link target for a symlink); empty when the reader holds only the
    /// package's index ([`DxpkgReader::new_index`]): `len` is the length either way.
    pub data: &'a [u8],
    /// Absolute offset of the file's bytes in the package, for readers that serve byte ranges.
    pub data_offset: u64,
    /// The file's length in bytes.
    pub len: u64,
}

/// A validated view of `.dxpkg` bytes (a `Mmap`, a `Vec<u8>`, a slice).
#[derive(Debug)]
pub struct DxpkgReader<B> {
    bytes: B,
    entry_count: usize,
    bucket_count: usize,
    entries_off: usize,
    strings: (usize, usize),
    data: (usize, usize),
    name: (usize, usize),
    version: (usize, usize),
    dist_info: (usize, usize),
    /// The package's index only: the data section lies past the bytes held (a thin store
    /// object, docs/design/store-one-copy.md), and entries carry no data.
    index_only: bool,
}

fn to_usize(v: u64) -> Result<usize, DxpkgError> {
    usize::try_from(v).map_err(|_| DxpkgError::Corrupt("offset too large"))
}

impl<B: AsRef<[u8]>> DxpkgReader<B> {
    /// Checks the header and section bounds; O(1) in the number of files.
    pub fn new(bytes: B) -> Result<Self, DxpkgError> {
        let len = bytes.as_ref().len() as u64;
        Self::parse(bytes, len, false)
    }

    /// Reads only the index of a package of `package_len` bytes from `bytes`, which hold at
    /// least every byte before the data section (header, buckets, entries, strings) and
    /// anything after: entries then carry their offsets and lengths but no data. The same
    /// checks as [`DxpkgReader::new`], with the data section bounded by `package_len`.
    pub fn new_index(bytes: B, package_len: u64) -> Result<Self, DxpkgError> {
        let reader = Self::parse(bytes, package_len, true)?;
        if reader.bytes().len() < reader.data.0 {
            return Err(DxpkgError::Truncated {
                needed: reader.data.0 as u64,
                len: reader.bytes().len() as u64,
            });
        }
        Ok(reader)
    }

    /// True when the reader holds only the package's index ([`DxpkgReader::new_index`]).
    pub fn is_index_only(&self) -> bool {
        self.index_only
    }

    fn parse(bytes: B, len: u64, index_only: bool) -> Result<Self, DxpkgError> {
        let b = bytes.as_ref();
        if b.len() < HEADER_LEN {
            if b.len() >= 8 && b[..8] != MAGIC {
                return Err(DxpkgError::BadMagic);
            }
            return Err(DxpkgError::Truncated {
                needed: HEADER_LEN as u64,
                len,
            });
        }
        if b[..8] != MAGIC {
            return Err(DxpkgError::BadMagic);
        }
        let version = u32_at(b, H_VERSION)?;
        if version != VERSION {
            return Err(DxpkgError::UnsupportedVersion {
                expected: VERSION,
                got: version,
            });
        }
        if u32_at(b, H_FLAGS)? != 0 {
            return Err(DxpkgError::Corrupt("unknown feature flags"));
        }
        let entry_count = u32_at(b, H_ENTRY_COUNT)? as usize;
        let bucket_count = u32_at(b, H_BUCKET_COUNT)? as usize;
        if !bucket_count.is_power_of_two() || bucket_count <= entry_count {
            return Err(DxpkgError::Corrupt("bucket count"));
        }
        let entries_off = HEADER_LEN + bucket_count * 4;
        let strings_off = to_usize(u64_at(b, H_STRINGS_OFF)?)?;
        let strings_len = to_usize(u64_at(b, H_STRINGS_LEN)?)?;
        let data_off = to_usize(u64_at(b, H_DATA_OFF)?)?;
        let data_len = to_usize(u64_at(b, H_DATA_LEN)?)?;
        let entries_end = entries_off
            .checked_add(entry_count * ENTRY_LEN)
            .ok_or(DxpkgError::Corrupt("entry table size"))?;
        if strings_off != entries_end {
            return Err(DxpkgError::Corrupt("string table offset"));
        }
        let strings_end = strings_off
            .checked_add(strings_len)
            .ok_or(DxpkgError::Corrupt("string table size"))?;
        if data_off < strings_end {
            return Err(DxpkgError::Corrupt("data offset"));
        }
        let end = data_off
            .checked_add(data_len)
            .ok_or(DxpkgError::Corrupt("data size"))?;
        if end as u64 > len {
            return Err(DxpkgError::Truncated {
                needed: end as u64,
                len,
            });
        }
        let name_len = usize::from(u16_at(b, H_NAME_LEN)?);
        let version_len = usize::from(u16_at(b, H_VERSION_LEN)?);
        let dist_info_len = usize::from(u16_at(b, H_DIST_INFO_LEN)?);
        if name_len + version_len + dist_info_len > strings_len {
            return Err(DxpkgError::Corrupt("metadata strings"));
        }
        let reader = Self {
            bytes,
            entry_count,
            bucket_count,
            entries_off,
            strings: (strings_off, strings_len),
            data: (data_off, data_len),
            name: (0, name_len),
            version: (name_len, version_len),
            dist_info: (name_len + version_len, dist_info_len),
            index_only,
        };
        for s in [reader.name, reader.version, reader.dist_info] {
            reader.string(s.0, s.1)?;
        }
        Ok(reader)
    }

    fn string(&self, off: usize, len: usize) -> Result<&str, DxpkgError> {
        let (start, total) = self.strings;
        let end = off
            .checked_add(len)
            .filter(|&e| e <= total)
            .ok_or(DxpkgError::Corrupt("string out of range"))?;
        std::str::from_utf8(&self.bytes.as_ref()[start + off..start + end])
            .map_err(|_| DxpkgError::Corrupt("string is not UTF-8"))
    }

    /// The distribution name as the wheel's METADATA gives it.
    pub fn name(&self) -> &str {
        self.string(self.name.0, self.name.1).unwrap_or_default()
    }

    /// The distribution version as the wheel's METADATA gives it.
    pub fn version(&self) -> &str {
        self.string(self.version.0, self.version.1)
            .unwrap_or_default()
    }

    /// The `.dist-info` directory name inside site-packages.
    pub fn dist_info(&self) -> &str {
        self.string(self.dist_info.0, self.dist_info.1)
            .unwrap_or_default()
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.entry_count
    }

    /// True when the package has no files.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// The raw bytes this reader reads.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// What the bytes are read from (a `Mmap`, for page advice).
    pub fn get_ref(&self) -> &B {
        &self.bytes
    }

    /// Where the data section starts: every byte before it is index (header, buckets,
    /// entries, strings).
    pub fn data_offset(&self) -> u64 {
        self.data.0 as u64
    }

    /// The data section's length (with the padding after every file): the package ends at
    /// `data_offset() + data_len()`.
    pub fn data_len(&self) -> u64 {
        self.data.1 as u64
    }

    /// Entry `index` (in (scheme, path) order), bounds-checked.
    pub fn entry(&self, index: usize) -> Result<FileEntry<'_>, DxpkgError> {
        if index >= self.entry_count {
            return Err(DxpkgError::Corrupt("entry index out of range"));
        }
        let b = self.bytes.as_ref();
        let at = self.entries_off + index * ENTRY_LEN;
        let path_off = u32_at(b, at + E_PATH_OFF)? as usize;
        let path_len = usize::from(u16_at(b, at + E_PATH_LEN)?);
        let kind =
            EntryKind::from_u8(u8_at(b, at + E_KIND)?).ok_or(DxpkgError::Corrupt("entry kind"))?;
        let scheme =
            Scheme::from_u8(u8_at(b, at + E_SCHEME)?).ok_or(DxpkgError::Corrupt("entry scheme"))?;
        let mode = u32_at(b, at + E_MODE)?;
        let data_rel = to_usize(u64_at(b, at + E_DATA_OFF)?)?;
        let data_len = to_usize(u64_at(b, at + E_DATA_LEN)?)?;
        let data_end = data_rel
            .checked_add(data_len)
            .filter(|&e| e <= self.data.1)
            .ok_or(DxpkgError::Corrupt("file data out of range"))?;
        let path = self.string(path_off, path_len)?;
        let start = self.data.0 + data_rel;
        let data = if self.index_only {
            &[][..]
        } else {
            &b[start..self.data.0 + data_end]
        };
        Ok(FileEntry {
            scheme,
            path,
            kind,
            mode,
            data,
            data_offset: start as u64,
            len: data_len as u64,
        })
    }

    /// All entries in (scheme, path) order.
    pub fn entries(&self) -> impl Iterator<Item = Result<FileEntry<'_>, DxpkgError>> {
        (0..self.entry_count).map(|i| self.entry(i))
    }

    /// Looks up a site-packages file by its path: O(1), a bounded probe of the hash table.
    pub fn get_file(&self, path: &str) -> Result<Option<FileEntry<'_>>, DxpkgError> {
        self.get(Scheme::SitePackages, path)
    }

    /// Looks up a file of any scheme by its path.
    pub fn get(&self, scheme: Scheme, path: &str) -> Result<Option<FileEntry<'_>>, DxpkgError> {
        let b = self.bytes.as_ref();
        let h = key_hash(scheme, path.as_bytes());
        let mask = self.bucket_count - 1;
        let mut slot = (h as usize) & mask;
        for _ in 0..self.bucket_count {
            let v = u32_at(b, HEADER_LEN + slot * 4)? as usize;
            if v == 0 {
                return Ok(None);
            }
            let index = v - 1;
            if index >= self.entry_count {
                return Err(DxpkgError::Corrupt("bucket points past the entry table"));
            }
            let at = self.entries_off + index * ENTRY_LEN;
            if u32_at(b, at + E_PATH_HASH)? == h as u32 {
                let e = self.entry(index)?;
                if e.scheme == scheme && e.path == path {
                    return Ok(Some(e));
                }
            }
            slot = (slot + 1) & mask;
        }
        Ok(None)
    }

    /// Reads every entry and checks that each is reachable through the hash table and that the
    /// entries are strictly sorted: a full structural check, O(files).
    pub fn validate(&self) -> Result<(), DxpkgError> {
        let mut prev: Option<FileEntry<'_>> = None;
        for i in 0..self.entry_count {
            let e = self.entry(i)?;
            if prev.is_some_and(|p| (p.scheme, p.path) >= (e.scheme, e.path)) {
                return Err(DxpkgError::Corrupt("entries not sorted"));
            }
            match self.get(e.scheme, e.path)? {
                Some(found) if found == e => {}
                _ => return Err(DxpkgError::Corrupt("entry unreachable through the index")),
            }
            prev = Some(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DxpkgWriter, EntryKind, Scheme};
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut w = DxpkgWriter::new("demo", "1.0", "demo-1.0.dist-info");
        w.add(
            Scheme::SitePackages,
            "demo/__init__.py",
            EntryKind::File,
            0o644,
            b"x = 1\n".to_vec(),
        );
        w.add(
            Scheme::Scripts,
            "demo-cli",
            EntryKind::File,
            0o755,
            b"#!python\n".to_vec(),
        );
        w.finish().unwrap()
    }

    #[test]
    fn reads_back_metadata_and_files() {
        let bytes = sample();
        let r = DxpkgReader::new(&bytes[..]).unwrap();
        assert_eq!(
            (r.name(), r.version(), r.dist_info()),
            ("demo", "1.0", "demo-1.0.dist-info")
        );
        assert_eq!(
            r.get_file("demo/__init__.py").unwrap().unwrap().data,
            b"x = 1\n"
        );
        assert!(r.get_file("demo-cli").unwrap().is_none());
        assert_eq!(
            r.get(Scheme::Scripts, "demo-cli").unwrap().unwrap().mode,
            0o755
        );
        r.validate().unwrap();
    }

    /// An index-only reader over the bytes before the data section (plus anything after)
    /// gives every entry's place and length, no data, and refuses what `new` refuses.
    #[test]
    fn index_only_reads_places_not_data() {
        let bytes = sample();
        let full = DxpkgReader::new(&bytes[..]).unwrap();
        let data_off = full.data_offset() as usize;
        let mut thin = bytes[..data_off].to_vec();
        thin.extend_from_slice(b"trailing bytes that are not the data section");
        let r = DxpkgReader::new_index(&thin[..], bytes.len() as u64).unwrap();
        assert!(r.is_index_only() && !full.is_index_only());
        r.validate().unwrap();
        for (a, b) in r.entries().zip(full.entries()) {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(
                (a.path, a.data_offset, a.len),
                (b.path, b.data_offset, b.len)
            );
            assert_eq!(b.len, b.data.len() as u64);
            assert!(a.data.is_empty());
        }
        assert_eq!(
            DxpkgReader::new_index(&bytes[..data_off - 1], bytes.len() as u64).unwrap_err(),
            DxpkgError::Truncated {
                needed: data_off as u64,
                len: data_off as u64 - 1
            }
        );
        assert_eq!(
            DxpkgReader::new_index(&bytes[..data_off], bytes.len() as u64 - 1).unwrap_err(),
            DxpkgError::Truncated {
                needed: bytes.len() as u64,
                len: bytes.len() as u64 - 1
            }
        );
    }

    #[test]
    fn each_rejection_is_typed() {
        let bytes = sample();
        assert_eq!(
            DxpkgReader::new(&b"DXPKG"[..]).unwrap_err(),
            DxpkgError::Truncated { needed: 64, len: 5 }
        );
        let mut bad = bytes.clone();
        bad[0] = b'Z';
        assert_eq!(
            DxpkgReader::new(&bad[..]).unwrap_err(),
            DxpkgError::BadMagic
        );
        let mut bad = bytes.clone();
        bad[8] = 9;
        assert_eq!(
            DxpkgReader::new(&bad[..]).unwrap_err(),
            DxpkgError::UnsupportedVersion {
                expected: 1,
                got: 9
            }
        );
        assert!(matches!(
            DxpkgReader::new(&bytes[..bytes.len() - 1]).unwrap_err(),
            DxpkgError::Truncated { .. }
        ));
    }

    fn arb_files() -> impl Strategy<Value = std::collections::BTreeMap<String, Vec<u8>>> {
        btree_map(
            "[a-z]{1,6}(/[a-z_.]{1,8}){0,3}",
            vec(any::<u8>(), 0..64),
            0..40,
        )
    }

    proptest! {
        /// Every file is found with its exact bytes; absent paths are not found.
        #[test]
        fn lookup_matches_a_map(files in arb_files(), absent in "[a-z]{1,6}(/[A-Z]{1,4})") {
            let mut w = DxpkgWriter::new("p", "1", "p-1.dist-info");
            for (p, d) in &files {
                w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.clone());
            }
            let bytes = w.finish().unwrap();
            let r = DxpkgReader::new(bytes).unwrap();
            r.validate().unwrap();
            prop_assert_eq!(r.len(), files.len());
            for (p, d) in &files {
                let e = r.get_file(p).unwrap().unwrap();
                prop_assert_eq!(e.data, &d[..]);
            }
            prop_assert!(r.get_file(&absent).unwrap().is_none());
        }

        /// The same files in any order give the same bytes.
        #[test]
        fn output_is_order_independent(files in arb_files(), seed in any::<u64>()) {
            let mut items: Vec<_> = files.into_iter().collect();
            let build = |items: &[(String, Vec<u8>)]| {
                let mut w = DxpkgWriter::new("p", "1", "p-1.dist-info");
                for (p, d) in items {
                    w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.clone());
                }
                w.finish().unwrap()
            };
            let a = build(&items);
            let len = items.len().max(1);
            items.rotate_left((seed as usize) % len);
            items.reverse();
            prop_assert_eq!(a, build(&items));
        }

        /// Truncation and byte flips give an error or a consistent answer, never a panic.
        #[test]
        fn corruption_never_panics(files in arb_files(), cut in any::<usize>(), flips in vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut w = DxpkgWriter::new("p", "1", "p-1.dist-info");
            for (p, d) in &files {
                w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.clone());
            }
            let mut bytes = w.finish().unwrap();
            let truncated = &bytes[..cut % (bytes.len() + 1)];
            if let Ok(r) = DxpkgReader::new(truncated) {
                let _ = r.validate();
            }
            for (at, v) in flips {
                let len = bytes.len();
                bytes[at % len] ^= v;
            }
            if let Ok(r) = DxpkgReader::new(&bytes[..]) {
                let _ = r.validate();
                for p in files.keys() {
                    let _ = r.get_file(p);
                }
            }
        }
    }
}
