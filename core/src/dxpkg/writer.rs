//! Builds `.dxpkg` bytes. Output depends only on the entries given, never on their order.
use super::format::*;

/// A reason the writer refuses its input.
#[derive(Debug, thiserror::Error)]
pub enum DxpkgWriterError {
    /// The same (scheme, path) was added twice.
    #[error("Duplicate entry `{0}` in package")]
    Duplicate(String),
    /// A string does not fit its length field.
    #[error("`{0}` is too long for the .dxpkg format")]
    TooLong(String),
    /// Too many entries for the format's u32 counters.
    #[error("Too many files in package ({0})")]
    TooManyEntries(usize),
}

struct PendingEntry {
    scheme: Scheme,
    path: String,
    kind: EntryKind,
    mode: u32,
    data: Vec<u8>,
}

/// Collects a package's files and writes them as one `.dxpkg`.
pub struct DxpkgWriter {
    name: String,
    version: String,
    dist_info: String,
    entries: Vec<PendingEntry>,
}

impl DxpkgWriter {
    /// Starts a package with its distribution name, version and `.dist-info` directory name.
    pub fn new(name: &str, version: &str, dist_info: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            dist_info: dist_info.to_string(),
            entries: Vec::new(),
        }
    }

    /// Adds one file (or in-package symlink) at `path`, relative to its scheme's root.
    pub fn add(&mut self, scheme: Scheme, path: &str, kind: EntryKind, mode: u32, data: Vec<u8>) {
        self.entries.push(PendingEntry {
            scheme,
            path: path.to_string(),
            kind,
            mode: mode & 0o7777,
            data,
        });
    }

    /// Writes the file. Entries are sorted by (scheme, path) so that the bytes are deterministic.
    pub fn finish(mut self) -> Result<Vec<u8>, DxpkgWriterError> {
        self.entries
            .sort_by(|a, b| (a.scheme, &a.path).cmp(&(b.scheme, &b.path)));
        for pair in self.entries.windows(2) {
            if pair[0].scheme == pair[1].scheme && pair[0].path == pair[1].path {
                return Err(DxpkgWriterError::Duplicate(pair[0].path.clone()));
            }
        }
        let n = self.entries.len();
        if n >= (u32::MAX / 4) as usize {
            return Err(DxpkgWriterError::TooManyEntries(n));
        }
        for s in [&self.name, &self.version, &self.dist_info] {
            if s.len() > usize::from(u16::MAX) {
                return Err(DxpkgWriterError::TooLong(s.clone()));
            }
        }
        let buckets = bucket_count(n);

        let mut strings = Vec::new();
        strings.extend_from_slice(self.name.as_bytes());
        strings.extend_from_slice(self.version.as_bytes());
        strings.extend_from_slice(self.dist_info.as_bytes());
        let mut path_refs = Vec::with_capacity(n);
        for e in &self.entries {
            if e.path.len() > usize::from(u16::MAX) {
                return Err(DxpkgWriterError::TooLong(e.path.clone()));
            }
            let off = u32::try_from(strings.len())
                .map_err(|_| DxpkgWriterError::TooLong(e.path.clone()))?;
            strings.extend_from_slice(e.path.as_bytes());
            path_refs.push(off);
        }

        let entries_off = HEADER_LEN + buckets * 4;
        let strings_off = entries_off + n * ENTRY_LEN;
        let data_off = (strings_off + strings.len()).next_multiple_of(DATA_ALIGN);

        let mut table = vec![0u32; buckets];
        let mask = buckets - 1;
        let mut entry_bytes = Vec::with_capacity(n * ENTRY_LEN);
        let mut data_len = 0usize;
        for (i, e) in self.entries.iter().enumerate() {
            let h = key_hash(e.scheme, e.path.as_bytes());
            let mut slot = (h as usize) & mask;
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = i as u32 + 1;

            let mut rec = [0u8; ENTRY_LEN];
            rec[E_PATH_HASH..E_PATH_HASH + 4].copy_from_slice(&(h as u32).to_le_bytes());
            rec[E_PATH_OFF..E_PATH_OFF + 4].copy_from_slice(&path_refs[i].to_le_bytes());
            rec[E_PATH_LEN..E_PATH_LEN + 2].copy_from_slice(&(e.path.len() as u16).to_le_bytes());
            rec[E_KIND] = e.kind as u8;
            rec[E_SCHEME] = e.scheme as u8;
            rec[E_MODE..E_MODE + 4].copy_from_slice(&e.mode.to_le_bytes());
            rec[E_DATA_OFF..E_DATA_OFF + 8].copy_from_slice(&(data_len as u64).to_le_bytes());
            rec[E_DATA_LEN..E_DATA_LEN + 8].copy_from_slice(&(e.data.len() as u64).to_le_bytes());
            entry_bytes.extend_from_slice(&rec);
            data_len = (data_len + e.data.len()).next_multiple_of(DATA_ALIGN);
        }

        let mut out = Vec::with_capacity(data_off + data_len);
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[H_VERSION..H_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        header[H_ENTRY_COUNT..H_ENTRY_COUNT + 4].copy_from_slice(&(n as u32).to_le_bytes());
        header[H_BUCKET_COUNT..H_BUCKET_COUNT + 4].copy_from_slice(&(buckets as u32).to_le_bytes());
        header[H_STRINGS_OFF..H_STRINGS_OFF + 8]
            .copy_from_slice(&(strings_off as u64).to_le_bytes());
        header[H_STRINGS_LEN..H_STRINGS_LEN + 8]
            .copy_from_slice(&(strings.len() as u64).to_le_bytes());
        header[H_DATA_OFF..H_DATA_OFF + 8].copy_from_slice(&(data_off as u64).to_le_bytes());
        header[H_DATA_LEN..H_DATA_LEN + 8].copy_from_slice(&(data_len as u64).to_le_bytes());
        header[H_NAME_LEN..H_NAME_LEN + 2].copy_from_slice(&(self.name.len() as u16).to_le_bytes());
        header[H_VERSION_LEN..H_VERSION_LEN + 2]
            .copy_from_slice(&(self.version.len() as u16).to_le_bytes());
        header[H_DIST_INFO_LEN..H_DIST_INFO_LEN + 2]
            .copy_from_slice(&(self.dist_info.len() as u16).to_le_bytes());
        out.extend_from_slice(&header);
        for slot in table {
            out.extend_from_slice(&slot.to_le_bytes());
        }
        out.extend_from_slice(&entry_bytes);
        out.extend_from_slice(&strings);
        out.resize(data_off, 0);
        for e in &self.entries {
            out.extend_from_slice(&e.data);
            out.resize(out.len().next_multiple_of(DATA_ALIGN), 0);
        }
        debug_assert_eq!(out.len(), data_off + data_len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package touching every scheme, a symlink, an empty file and unaligned sizes.
    fn sample() -> DxpkgWriter {
        let mut w = DxpkgWriter::new("demo", "1.0", "demo-1.0.dist-info");
        w.add(
            Scheme::SitePackages,
            "demo/__init__.py",
            EntryKind::File,
            0o644,
            b"x = 1\n".to_vec(),
        );
        w.add(
            Scheme::SitePackages,
            "demo/empty.py",
            EntryKind::File,
            0o644,
            Vec::new(),
        );
        w.add(
            Scheme::SitePackages,
            "demo/link.py",
            EntryKind::Symlink,
            0o777,
            b"__init__.py".to_vec(),
        );
        w.add(
            Scheme::Scripts,
            "demo-cli",
            EntryKind::File,
            0o755,
            b"#!python\nprint(1)\n".to_vec(),
        );
        w.add(
            Scheme::Headers,
            "demo.h",
            EntryKind::File,
            0o644,
            vec![7u8; 1000],
        );
        w.add(
            Scheme::Data,
            "share/demo.1",
            EntryKind::File,
            0o100_644,
            b".TH DEMO 1\n".to_vec(),
        );
        w
    }

    /// The bytes of a fixed package, pinned: a format change must be deliberate.
    #[test]
    fn sample_bytes_are_pinned() {
        let bytes = sample().finish().unwrap();
        assert_eq!(bytes.len(), 1480);
        assert_eq!(
            crate::hash::ContentHash::of(&bytes).to_hex(),
            "8d1dfd3de23f77bc336312086c1347ee1f051fd24cd2240a3e69cce1e235b713"
        );
    }
}
