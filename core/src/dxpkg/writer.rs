//! Builds `.dxpkg` bytes. Output depends only on the entries given, never on their order.
//!
//! [`DxpkgWriter::finish`] returns the bytes; [`DxpkgWriter::finish_to`] streams the same bytes
//! to a writer (a store's temporary file) without building a second copy of the data in memory.
use std::io::Write;

use super::format::*;
use crate::format::bytes::{put_u16, put_u32, put_u64};

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
    /// Streaming the bytes to their destination failed.
    #[error("Failed to write the package")]
    Write(#[source] std::io::Error),
}

/// An entry's bytes: held in memory, or produced while the package is written (so a large file
/// never needs a buffer of its own).
#[derive(Clone)]
enum EntryBytes {
    Inline(Vec<u8>),
    /// `len` bytes that the filler given to [`PreparedDxpkg::write_with`] writes for `token`.
    Deferred {
        len: u64,
        token: usize,
    },
}

impl EntryBytes {
    fn len(&self) -> u64 {
        match self {
            Self::Inline(data) => data.len() as u64,
            Self::Deferred { len, .. } => *len,
        }
    }
}

#[derive(Clone)]
struct PendingEntry {
    scheme: Scheme,
    path: String,
    kind: EntryKind,
    mode: u32,
    data: EntryBytes,
}

/// Collects a package's files and writes them as one `.dxpkg`.
#[derive(Clone)]
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
            data: EntryBytes::Inline(data),
        });
    }

    /// Adds an entry of `len` bytes that are written later, when [`PreparedDxpkg::write_with`]
    /// calls its filler with `token`.
    pub fn add_deferred(
        &mut self,
        scheme: Scheme,
        path: &str,
        kind: EntryKind,
        mode: u32,
        len: u64,
        token: usize,
    ) {
        self.entries.push(PendingEntry {
            scheme,
            path: path.to_string(),
            kind,
            mode: mode & 0o7777,
            data: EntryBytes::Deferred { len, token },
        });
    }

    /// Writes the file. Entries are sorted by (scheme, path) so that the bytes are deterministic.
    pub fn finish(self) -> Result<Vec<u8>, DxpkgWriterError> {
        let prepared = self.prepare()?;
        let mut out = Vec::with_capacity(usize::try_from(prepared.len()).unwrap_or(0));
        prepared
            .write_to(&mut out)
            .map_err(DxpkgWriterError::Write)?;
        Ok(out)
    }

    /// Streams the file to `out` (the same bytes [`finish`](Self::finish) returns) and returns
    /// their count. Each file's buffer is freed once written.
    pub fn finish_to<W: Write>(self, out: W) -> Result<u64, DxpkgWriterError> {
        let prepared = self.prepare()?;
        let len = prepared.len();
        prepared.write_to(out).map_err(DxpkgWriterError::Write)?;
        Ok(len)
    }

    /// Sorts and checks the entries and lays out the header, index and strings, without writing
    /// any file data: every refusal of the writer happens here, so writing can fail only on I/O
    /// or in a deferred entry's filler (see [`PreparedDxpkg::write_with`]).
    pub fn prepare(mut self) -> Result<PreparedDxpkg, DxpkgWriterError> {
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
        let mut data_len = 0u64;
        let mut offsets = Vec::with_capacity(n);
        for (i, e) in self.entries.iter().enumerate() {
            offsets.push(data_off as u64 + data_len);
            let h = key_hash(e.scheme, e.path.as_bytes());
            let mut slot = (h as usize) & mask;
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = i as u32 + 1;

            let mut rec = [0u8; ENTRY_LEN];
            put_u32(&mut rec, E_PATH_HASH, h as u32);
            put_u32(&mut rec, E_PATH_OFF, path_refs[i]);
            put_u16(&mut rec, E_PATH_LEN, e.path.len() as u16);
            rec[E_KIND] = e.kind as u8;
            rec[E_SCHEME] = e.scheme as u8;
            put_u32(&mut rec, E_MODE, e.mode);
            put_u64(&mut rec, E_DATA_OFF, data_len);
            put_u64(&mut rec, E_DATA_LEN, e.data.len());
            entry_bytes.extend_from_slice(&rec);
            data_len = (data_len + e.data.len()).next_multiple_of(DATA_ALIGN as u64);
        }

        let mut head = Vec::with_capacity(data_off);
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        put_u32(&mut header, H_VERSION, VERSION);
        put_u32(&mut header, H_ENTRY_COUNT, n as u32);
        put_u32(&mut header, H_BUCKET_COUNT, buckets as u32);
        put_u64(&mut header, H_STRINGS_OFF, strings_off as u64);
        put_u64(&mut header, H_STRINGS_LEN, strings.len() as u64);
        put_u64(&mut header, H_DATA_OFF, data_off as u64);
        put_u64(&mut header, H_DATA_LEN, data_len);
        put_u16(&mut header, H_NAME_LEN, self.name.len() as u16);
        put_u16(&mut header, H_VERSION_LEN, self.version.len() as u16);
        put_u16(&mut header, H_DIST_INFO_LEN, self.dist_info.len() as u16);
        head.extend_from_slice(&header);
        for slot in table {
            head.extend_from_slice(&slot.to_le_bytes());
        }
        head.extend_from_slice(&entry_bytes);
        head.extend_from_slice(&strings);
        head.resize(data_off, 0);
        let (index, data) = self
            .entries
            .into_iter()
            .zip(offsets)
            .map(|(e, data_offset)| {
                let planned = PlannedEntry {
                    scheme: e.scheme,
                    path: e.path,
                    kind: e.kind,
                    mode: e.mode,
                    data_offset,
                    len: e.data.len(),
                };
                (planned, e.data)
            })
            .unzip();
        Ok(PreparedDxpkg {
            head,
            index,
            data,
            len: data_off as u64 + data_len,
        })
    }
}

impl std::fmt::Debug for DxpkgWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DxpkgWriter")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// A checked, laid-out package whose bytes are ready to stream: the header, index and strings
/// are built, the file data waits in its own buffers (or with the caller), in entry order.
pub struct PreparedDxpkg {
    /// Everything before the data section, padded to it.
    head: Vec<u8>,
    /// Where each entry's bytes will lie, in entry order.
    index: Vec<PlannedEntry>,
    /// Each entry's data, in entry order.
    data: Vec<EntryBytes>,
    /// The size of the whole file.
    len: u64,
}

impl PreparedDxpkg {
    /// The size of the file [`write_to`](Self::write_to) writes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for the impossible empty file (a package has at least a header); here for clippy.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of entry `path` of `scheme` when they are held in memory (the files validation
    /// read: metadata, scripts, links), `None` for absent entries and those still to be written.
    pub fn inline(&self, scheme: Scheme, path: &str) -> Option<&[u8]> {
        let i = self
            .index
            .binary_search_by(|e| (e.scheme, e.path.as_str()).cmp(&(scheme, path)))
            .ok()?;
        match &self.data[i] {
            EntryBytes::Inline(bytes) => Some(bytes),
            EntryBytes::Deferred { .. } => None,
        }
    }

    /// The package as it will be written, before any byte of it is: every entry with the place
    /// of its bytes in the file, and the bytes of the scripts and links (which a tree rewrites
    /// or serves inline) — what a mount needs to serve the package while it is being stored.
    pub fn layout(&self) -> PackageLayout {
        let entries = self
            .index
            .iter()
            .zip(&self.data)
            .map(|(planned, data)| {
                let wanted =
                    planned.kind == EntryKind::Symlink || planned.scheme == Scheme::Scripts;
                let bytes = match data {
                    EntryBytes::Inline(bytes) if wanted => Some(bytes.clone()),
                    _ => None,
                };
                (planned.clone(), bytes)
            })
            .collect();
        PackageLayout {
            len: self.len,
            entries,
        }
    }

    /// Writes the file to `out`, freeing each file's buffer once it is written. `out` gets large
    /// writes for large files; wrap it in a `BufWriter` if many small ones cost. Fails on an
    /// entry added with [`DxpkgWriter::add_deferred`]: those need [`write_with`](Self::write_with).
    pub fn write_to<W: Write>(self, out: W) -> std::io::Result<()> {
        self.write_with(out, |token, _| {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("deferred entry {token} has no filler"),
            ))
        })
    }

    /// [`write_to`](Self::write_to), with `fill` writing each deferred entry's bytes where they
    /// belong (called in entry order, once per token). A filler that writes more or fewer bytes
    /// than the entry declared fails the write, so the file never disagrees with its index.
    pub fn write_with<W: Write, E: From<std::io::Error>>(
        self,
        mut out: W,
        mut fill: impl FnMut(usize, &mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E> {
        const PAD: [u8; DATA_ALIGN] = [0; DATA_ALIGN];
        out.write_all(&self.head)?;
        drop(self.head);
        for data in self.data {
            let len = data.len();
            match data {
                EntryBytes::Inline(bytes) => out.write_all(&bytes)?,
                EntryBytes::Deferred { token, .. } => {
                    let mut counted = Counted {
                        inner: &mut out,
                        written: 0,
                    };
                    fill(token, &mut counted)?;
                    if counted.written != len {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "deferred entry {token} wrote {} bytes, declared {len}",
                                counted.written
                            ),
                        )
                        .into());
                    }
                }
            }
            let pad = len.next_multiple_of(DATA_ALIGN as u64) - len;
            out.write_all(&PAD[..pad as usize])?;
        }
        Ok(())
    }
}

/// One entry of a package laid out but not written: where its bytes will lie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEntry {
    /// Install scheme.
    pub scheme: Scheme,
    /// Path relative to the scheme's root.
    pub path: String,
    /// File or in-package symlink.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Absolute offset of the bytes in the written file.
    pub data_offset: u64,
    /// Their length.
    pub len: u64,
}

/// What [`PreparedDxpkg::layout`] tells: the written file's length and its entries in entry
/// order, each with its bytes when they are a script's or a link's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageLayout {
    /// The length of the written file.
    pub len: u64,
    /// Every entry, with the bytes of scripts and symlinks.
    pub entries: Vec<(PlannedEntry, Option<Vec<u8>>)>,
}

/// Counts what a filler writes.
struct Counted<'a, W> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl std::fmt::Debug for PreparedDxpkg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedDxpkg")
            .field("entries", &self.data.len())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    /// A sink that takes at most `chunk` bytes per call, and fails once `fail_after` bytes are in.
    struct Choppy {
        out: Vec<u8>,
        chunk: usize,
        fail_after: usize,
        calls: usize,
    }

    impl Write for Choppy {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.out.len() >= self.fail_after {
                return Err(std::io::Error::other("disk full"));
            }
            let n = buf
                .len()
                .min(self.chunk)
                .min(self.fail_after - self.out.len());
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn arb_scheme() -> impl Strategy<Value = Scheme> {
        prop_oneof![
            Just(Scheme::SitePackages),
            Just(Scheme::Scripts),
            Just(Scheme::Headers),
            Just(Scheme::Data),
        ]
    }

    fn arb_writer() -> impl Strategy<Value = DxpkgWriter> {
        btree_map(
            (arb_scheme(), "[a-z]{1,6}(/[a-z_.]{1,8}){0,2}"),
            (any::<bool>(), any::<u32>(), vec(any::<u8>(), 0..100)),
            0..30,
        )
        .prop_map(|files| {
            let mut w = DxpkgWriter::new("p", "1.0", "p-1.0.dist-info");
            for ((scheme, path), (link, mode, data)) in files {
                let kind = if link {
                    EntryKind::Symlink
                } else {
                    EntryKind::File
                };
                w.add(scheme, &path, kind, mode, data);
            }
            w
        })
    }

    proptest! {
        /// Streaming through any pattern of short writes gives exactly `finish`'s bytes, and the
        /// count returned and `PreparedDxpkg::len` agree with them.
        #[test]
        fn finish_to_matches_finish(w in arb_writer(), chunk in 1usize..200) {
            let want = w.clone().finish().unwrap();
            prop_assert_eq!(w.clone().prepare().unwrap().len(), want.len() as u64);
            let mut sink = Choppy { out: Vec::new(), chunk, fail_after: usize::MAX, calls: 0 };
            let n = w.finish_to(&mut sink).unwrap();
            prop_assert_eq!(n, want.len() as u64);
            prop_assert_eq!(sink.out, want);
        }

        /// The layout known before writing is the written file's index: same entries, same
        /// offsets and lengths, the script and link bytes it keeps equal to what was written.
        #[test]
        fn layout_is_the_written_index(w in arb_writer()) {
            let prepared = w.prepare().unwrap();
            let layout = prepared.layout();
            let mut bytes = Vec::new();
            prepared.write_to(&mut bytes).unwrap();
            prop_assert_eq!(layout.len, bytes.len() as u64);
            let reader = crate::dxpkg::DxpkgReader::new(&bytes[..]).unwrap();
            let written: Vec<_> = reader.entries().map(Result::unwrap).collect();
            prop_assert_eq!(written.len(), layout.entries.len());
            for (e, (planned, kept)) in written.iter().zip(&layout.entries) {
                prop_assert_eq!((e.scheme, e.path, e.kind, e.mode), (planned.scheme, planned.path.as_str(), planned.kind, planned.mode));
                prop_assert_eq!((e.data_offset, e.data.len() as u64), (planned.data_offset, planned.len));
                let wanted = e.kind == EntryKind::Symlink || e.scheme == Scheme::Scripts;
                prop_assert_eq!(kept.as_deref(), wanted.then_some(e.data));
            }
        }

        /// A sink that fails part-way gives a typed write error, never a panic.
        #[test]
        fn write_errors_are_typed(w in arb_writer(), fail_after in 0usize..2000) {
            let len = w.clone().finish().unwrap().len();
            let mut sink = Choppy { out: Vec::new(), chunk: 64, fail_after, calls: 0 };
            match w.finish_to(&mut sink) {
                Ok(n) => prop_assert!(fail_after >= len && n == len as u64),
                Err(DxpkgWriterError::Write(e)) => {
                    prop_assert!(fail_after < len);
                    prop_assert_eq!(e.to_string(), "disk full");
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn refusals_come_before_any_write() {
        let mut w = DxpkgWriter::new("p", "1", "p-1.dist-info");
        w.add(Scheme::SitePackages, "a", EntryKind::File, 0o644, vec![1]);
        w.add(Scheme::SitePackages, "a", EntryKind::File, 0o644, vec![2]);
        let mut sink = Choppy {
            out: Vec::new(),
            chunk: 1,
            fail_after: usize::MAX,
            calls: 0,
        };
        assert!(matches!(
            w.finish_to(&mut sink),
            Err(DxpkgWriterError::Duplicate(p)) if p == "a"
        ));
        assert_eq!(sink.calls, 0);
    }

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
        let mut streamed = Vec::new();
        assert_eq!(sample().finish_to(&mut streamed).unwrap(), 1480);
        assert_eq!(streamed, bytes);
        assert_eq!(bytes.len(), 1480);
        assert_eq!(
            crate::hash::ContentHash::of(&bytes).to_hex(),
            "8d1dfd3de23f77bc336312086c1347ee1f051fd24cd2240a3e69cce1e235b713"
        );
    }
}
