//! The bytes behind a tree: a [`Tree`] together with the store its packs live in, which both
//! mount front ends (FUSE in `fs-linux`, Dokan in `fs-windows`) serve files from.
//!
//! Packs are mapped on the first read that needs them (one `OnceLock` per pack slot), so opening
//! a tree opens no pack at all; a pack whose length differs from the one recorded in the tree is
//! refused rather than served.
//!
//! On Linux, with [`PackPages::Release`], a pack's page cache holds only what is being served:
//! [`TreeData::prefetch`] reads exactly the bytes a request asks for (no read-around), and
//! [`TreeData::release_served`] hands them back to the kernel once the reply has copied them into
//! the mounted file's own page cache, so that hot bytes sit in memory once, not twice;
//! [`release_range`] says which pages may go (`docs/design/mount.md`, "Hot bytes once").
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::hash::ContentHash;
use crate::store::{BackingError, MappedPackage, PackBackings, PackageStore, StoreError};

use super::arriving::ArrivingPacks;
use super::reader::{DataSource, Node, Tree, TreeError};

/// A leaf whose bytes cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The tree's records are inconsistent.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A pack the tree needs cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pack's object is not the one the tree was built from.
    #[error(
        "Package `{hash}` changed since the tree was built: expected {expected} bytes, got {got}"
    )]
    PackChanged {
        /// The object.
        hash: ContentHash,
        /// Its length when the tree was built.
        expected: u64,
        /// Its length now.
        got: u64,
    },
    /// A pack being stored while the tree is served could not be stored.
    #[error(transparent)]
    NotStored(#[from] super::arriving::NotStored),
    /// A file's bytes in its pack do not match the pack's name: it is not served.
    #[error("File `{path}` of package `{package}` is damaged in the store: {source}")]
    Damaged {
        /// The file's path in the tree.
        path: String,
        /// The package's name and version.
        package: String,
        /// Which object and which bytes.
        #[source]
        source: Box<StoreError>,
    },
    /// A pack's object is neither here nor fetchable from the store's remote tier (for now).
    #[error(transparent)]
    Fetch(#[from] Box<crate::remote::FetchFailed>),
    /// A record points past the end of its pack.
    #[error("File data of inode {ino} lies outside package `{hash}`")]
    OutOfRange {
        /// The inode.
        ino: u64,
        /// The object.
        hash: ContentHash,
    },
}

impl DataError {
    /// True when the tree itself is damaged (a bad record), false when the store is (a missing
    /// or changed pack): the front ends report the two differently.
    pub fn is_corrupt_tree(&self) -> bool {
        matches!(self, Self::Tree(_) | Self::OutOfRange { .. })
    }

    /// True when the failure was logged already (a fetch from the remote tier that failed
    /// earlier and is not asked again yet): the front ends need not log every read of it.
    pub fn is_logged(&self) -> bool {
        matches!(self, Self::Fetch(f) if f.repeated)
    }
}

/// What a pack's page cache is used for (Linux; elsewhere the kernel's defaults apply).
#[cfg(target_os = "linux")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PackPages {
    /// The kernel's defaults: a page fault in a pack reads ahead around it (neighbouring files
    /// too) and served pages stay cached, so a hot byte is cached twice when the reader keeps
    /// its own copy (a FUSE mount's page cache), but a fresh reader finds it in memory.
    #[default]
    Keep,
    /// Only what is served: the pack maps are advised `MADV_RANDOM` (no read-around),
    /// [`TreeData::prefetch`] reads exactly the requested bytes, and
    /// [`TreeData::release_served`] evicts them again once served.
    Release,
}

/// A tree and the store its packs live in: the bytes of every leaf, packs mapped on demand.
#[derive(Debug)]
pub struct TreeData<B> {
    tree: Tree<B>,
    store: PackageStore,
    /// Opened on first read, so that opening a tree opens no pack.
    packs: Vec<Slot>,
    /// Packs stored while the tree is served, if any: their records carry a placeholder hash.
    arriving: Option<Arc<ArrivingPacks>>,
    #[cfg(target_os = "linux")]
    pack_pages: PackPages,
}

/// One pack of the tree: its map, and (Linux) a descriptor for `posix_fadvise`.
#[derive(Debug, Default)]
struct Slot {
    map: OnceLock<Arc<MappedPackage>>,
    /// The pack's whole-file backings ([`TreeData::backing_file`]), looked up on first use;
    /// `None` when the pack has none.
    backing: OnceLock<Option<PackBackings>>,
    /// Opened when the pack is mapped ([`PackPages::Release`]) or on the first release; `None`
    /// when the object cannot be opened (then nothing of this pack is released).
    #[cfg(target_os = "linux")]
    file: OnceLock<Option<fs_err::File>>,
}

impl<B: AsRef<[u8]>> TreeData<B> {
    /// Serves `tree` with bytes from `store`; opens no pack yet (O(packs) for the empty slots).
    pub fn new(tree: Tree<B>, store: PackageStore) -> Self {
        let packs = (0..tree.pack_count()).map(|_| Slot::default()).collect();
        Self {
            tree,
            store,
            packs,
            arriving: None,
            #[cfg(target_os = "linux")]
            pack_pages: PackPages::default(),
        }
    }

    /// Serves the packs `arriving` names once they are stored, a read of one waiting for it.
    #[must_use]
    pub fn with_arriving(mut self, arriving: Arc<ArrivingPacks>) -> Self {
        self.arriving = Some(arriving);
        self
    }

    /// Uses the packs' page cache as `mode` says (default [`PackPages::Keep`]). A builder, so that
    /// it is set before the first read maps a pack.
    #[cfg(target_os = "linux")]
    #[must_use]
    pub fn with_pack_pages(mut self, mode: PackPages) -> Self {
        self.pack_pages = mode;
        self
    }

    /// How the packs' page cache is used.
    #[cfg(target_os = "linux")]
    pub fn pack_pages(&self) -> PackPages {
        self.pack_pages
    }

    /// The tree being served.
    pub fn tree(&self) -> &Tree<B> {
        &self.tree
    }

    /// The mapped object in pack slot `index`, mapped (and its length checked) on first use.
    pub fn pack(&self, index: u32) -> Result<&MappedPackage, DataError> {
        let slot = self
            .packs
            .get(index as usize)
            .ok_or(TreeError::Corrupt("pack index out of range"))?;
        if let Some(p) = slot.map.get() {
            return Ok(p);
        }
        let mut want = self.tree.pack(index)?;
        if let Some(arriving) = &self.arriving
            && let Some(stored) = arriving.wait(index)?
        {
            want.hash = stored;
        }
        // A pack of the store's remote tier not fetched yet: this read fetches it (reads of
        // the same pack wait for it; other packs are served meanwhile).
        if let Some(remote) = self.store.remote()
            && !self.store.contains(&want.hash)
        {
            remote.fetch_for_read(&self.store, &want.hash)?;
        }
        #[cfg(target_os = "linux")]
        if self.pack_pages == PackPages::Release {
            // Before the map exists: opening it reads the pack's index, and that first fault
            // would read ahead around it (8 MiB on a disk set up for it; the whole of a small
            // pack). `MADV_RANDOM` can only come after.
            let file = prefetch_index(&self.store.object_file(&want.hash));
            let _ = slot.file.set(file);
        }
        let pkg = self.store.get(&want.hash)?;
        let got = pkg.object_len();
        if got != want.size {
            return Err(DataError::PackChanged {
                hash: want.hash,
                expected: want.size,
                got,
            });
        }
        // A racing thread may have set it first; both hold the same shared map.
        Ok(slot.map.get_or_init(|| {
            #[cfg(target_os = "linux")]
            if self.pack_pages == PackPages::Release {
                advise_random(pkg.reader().get_ref());
            }
            pkg
        }))
    }

    /// The whole-file backing of leaf `node`, if it has one: an open file holding exactly the
    /// node's bytes, which a reader may use instead of the pack (the FUSE mount hands it to the
    /// kernel): the file of the pack's unpacked copy that holds its bytes verbatim, by the one
    /// rule thin objects read their files with, while its stat is the one the copy's manifest
    /// records ([`crate::store::PackBackings`]: the trust layouts give the same files);
    /// `Ok(None)` for inline files, empty files, scripts (their shebangs are rewritten in the
    /// copy), packs without a copy and packs still arriving. An error says why an existing
    /// copy's file is not used: the node is then served from the pack (for a thin pack, whose
    /// bytes are that file's, the read then fails its check: the object is damaged).
    pub fn backing_file(&self, node: &Node<'_>) -> Result<Option<fs_err::File>, BackingError> {
        let DataSource::Pack { pack, offset } = node.source else {
            return Ok(None);
        };
        if node.size == 0 {
            return Ok(None);
        }
        let Some(slot) = self.packs.get(pack as usize) else {
            return Ok(None);
        };
        let backing = slot.backing.get_or_init(|| self.pack_backing(pack));
        let Some(backing) = backing else {
            return Ok(None);
        };
        backing.open(offset, node.size)
    }

    /// The whole-file backings of pack `index`, or `None` without an unpacked copy.
    fn pack_backing(&self, index: u32) -> Option<PackBackings> {
        // The tree's record first: a pack still arriving has a placeholder name (no copy), so
        // this never waits for it.
        let hash = self.tree.pack(index).ok()?.hash;
        // No copy, no need to map the pack.
        if !self.store.unpacked_path(&hash).is_dir() {
            return None;
        }
        self.store.pack_backings(&hash, self.pack(index).ok()?)
    }

    /// True when some pack of the tree has an unpacked copy, so that some file may have a
    /// [`TreeData::backing_file`]: O(packs) `stat`s.
    pub fn may_have_backings(&self) -> bool {
        (0..self.tree.pack_count()).any(|i| {
            self.tree
                .pack(i)
                .is_ok_and(|p| self.store.unpacked_path(&p.hash).is_dir())
        })
    }

    /// The bytes of a leaf: file contents or symlink target (empty for directories), checked
    /// against their pack's name.
    pub fn data(&self, node: &Node<'_>) -> Result<&[u8], DataError> {
        self.read(node, 0, u64::MAX)
    }

    /// Bytes `[offset, offset + len)` of a leaf, clamped to its size: the bytes of a pack are
    /// checked against the pack's name (the 16 KiB groups they touch, once each) before they
    /// are returned.
    pub fn read(&self, node: &Node<'_>, offset: u64, len: u64) -> Result<&[u8], DataError> {
        let bytes = self.unchecked_data(node)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .saturating_add(start)
            .min(bytes.len());
        if let DataSource::Pack { pack, offset: at } = node.source {
            let map = self.pack(pack)?;
            let range = at + start as u64..at + end as u64;
            #[cfg(target_os = "linux")]
            if self.pack_pages == PackPages::Release
                && !map.is_thin()
                && map.check_is_needed(range.clone())
            {
                // The map reads no more than a fault asks for: ask for the groups at once.
                // Advisory: a failure only makes the check fault page by page.
                let _ = sys::prefetch_pages(map.reader().get_ref(), map.group_span(range.clone()));
            }
            map.check(range).map_err(|source| DataError::Damaged {
                path: self.path_of(node),
                package: format!("{} {}", map.reader().name(), map.reader().version()),
                source: Box::new(source),
            })?;
        }
        Ok(&bytes[start..end])
    }

    /// `node`'s path from the tree's root, for messages (`?` for a name that cannot be found).
    pub fn path_of(&self, node: &Node<'_>) -> String {
        let mut names = vec![String::from_utf8_lossy(node.name).into_owned()];
        let mut parent = node.parent;
        // Bounded: a damaged tree could hold a parent cycle.
        for _ in 0..4096 {
            match self.tree.node(parent) {
                Ok(p) if p.ino != p.parent && p.ino != 1 => {
                    names.push(String::from_utf8_lossy(p.name).into_owned());
                    parent = p.parent;
                }
                Ok(_) => break,
                Err(_) => {
                    names.push("?".into());
                    break;
                }
            }
        }
        names.reverse();
        names.join("/")
    }

    /// The bytes of a leaf as its source holds them, not checked.
    fn unchecked_data(&self, node: &Node<'_>) -> Result<&[u8], DataError> {
        match node.source {
            DataSource::None => Ok(&[]),
            DataSource::Inline { .. } => Ok(self.tree.inline_data(node)?.unwrap_or_default()),
            DataSource::Pack { pack, offset } => {
                let range = offset..offset.saturating_add(node.size);
                // Borrowed from the pack's map (a thin pack's: the unpacked file's).
                self.pack(pack)?
                    .unchecked_slice(range)?
                    .ok_or_else(|| DataError::OutOfRange {
                        ino: node.ino,
                        hash: self
                            .tree
                            .pack(pack)
                            .map(|p| p.hash)
                            .unwrap_or(ContentHash::from_bytes([0; 32])),
                    })
            }
        }
    }
}

#[cfg(target_os = "linux")]
impl<B: AsRef<[u8]>> TreeData<B> {
    /// With [`PackPages::Release`], starts reading bytes `[offset, offset + len)` of file `node`
    /// from its pack (`madvise(MADV_WILLNEED)` over the pages they touch), so that copying them
    /// out waits for one read of exactly those pages rather than faulting them in one by one (the
    /// map is `MADV_RANDOM`: no read-around). Cached pages are left as they are. Does nothing
    /// for inline files, with [`PackPages::Keep`], or before [`TreeData::data`] mapped the pack.
    pub fn prefetch(&self, node: &Node<'_>, offset: u64, len: u64) -> std::io::Result<()> {
        let Some((map, file)) = self.served_map(node) else {
            return Ok(());
        };
        let start = file.start.saturating_add(offset).min(file.end);
        let end = start.saturating_add(len).min(file.end);
        sys::prefetch_pages(map.reader().get_ref(), start..end)
    }

    /// The mapped pack behind `node` and the file's range in it, when [`PackPages::Release`]
    /// is on and a read has mapped that pack.
    fn served_map(&self, node: &Node<'_>) -> Option<(&MappedPackage, Range<u64>)> {
        if self.pack_pages != PackPages::Release {
            return None;
        }
        let DataSource::Pack { pack, offset } = node.source else {
            return None;
        };
        let map = self.packs.get(pack as usize)?.map.get()?;
        // A thin pack's bytes are in its unpacked files, not in this map: no advice.
        if map.is_thin() {
            return None;
        }
        let bytes = map.reader().bytes();
        let file = offset..offset.checked_add(node.size)?;
        // `data` checked the record against the pack's length; a corrupt one gets no advice.
        if file.end > bytes.len() as u64 || !(bytes.as_ptr() as u64).is_multiple_of(page_size()) {
            return None;
        }
        Some((map, file))
    }

    /// With [`PackPages::Release`], hands back to the kernel the page-cache pages of the pack
    /// behind file `node` that hold only bytes `[offset, offset + len)` of that file and the bytes
    /// before them (see [`release_range`]), once a read has copied those bytes elsewhere (the
    /// mounted file's own page cache). Returns how many bytes were released: 0 with
    /// [`PackPages::Keep`], for inline files, for short reads that cover no whole page, and for
    /// packs that cannot be opened for advice.
    ///
    /// Three calls, because no single one drops exactly these pages (measured on Linux 6.18, see
    /// `docs/design/mount.md`):
    /// 1. `madvise(MADV_PAGEOUT)` splits the large folios (up to 2 MiB on ext4) that straddle the
    ///    range's edges, so that the neighbours' bytes can stay while ours go. The kernel does
    ///    this only for files the caller owns or may write (or with `CAP_FOWNER`): for a shared
    ///    read-only store it is a no-op, and release falls back to whole folios inside the range.
    /// 2. `madvise(MADV_DONTNEED)` unmaps the range from this process: the page cache never
    ///    evicts a page that is still mapped.
    /// 3. `posix_fadvise(POSIX_FADV_DONTNEED)` evicts the unmapped folios that lie wholly inside
    ///    the range. Pages another process maps (another mount of the same pack) stay.
    pub fn release_served(&self, node: &Node<'_>, offset: u64, len: u64) -> std::io::Result<u64> {
        let Some((map, file)) = self.served_map(node) else {
            return Ok(0);
        };
        let DataSource::Pack { pack, .. } = node.source else {
            return Ok(0);
        };
        let Some(slot) = self.packs.get(pack as usize) else {
            return Ok(0);
        };
        let served = file.start.saturating_add(offset)
            ..file.start.saturating_add(offset).saturating_add(len);
        // Whole 16 KiB groups only (or pages, where a page is larger): a released page is read
        // from disk again next time, so its group must be checked again, and a group shared
        // with a neighbouring file would make the neighbour's next read fetch this file's
        // released pages back just to hash them.
        let range = release_range(file, served, release_unit());
        if range.is_empty() {
            return Ok(0);
        }
        map.forget(range.clone());
        let Some(fd) = slot
            .file
            .get_or_init(|| fs_err::File::open(map.path()).ok())
            .as_ref()
        else {
            return Ok(0);
        };
        let released = sys::release_pages(map.reader().get_ref(), range)?;
        let n = released.end - released.start;
        if let Some(n) = std::num::NonZeroU64::new(n) {
            rustix::fs::fadvise(fd, released.start, Some(n), rustix::fs::Advice::DontNeed)?;
        }
        Ok(n)
    }
}

/// Opens the object file at `path` (a `.dxpkg`, or a `.dxthin`, which starts with the same
/// index) and reads its index (header, buckets, entries and strings: the bytes before the data
/// section) into the page cache, exactly, without read-ahead around it.
/// Returns the descriptor, for [`TreeData::release_served`]; `None` when the file cannot be
/// opened (the store reports that when it maps the file).
#[cfg(target_os = "linux")]
fn prefetch_index(path: &std::path::Path) -> Option<fs_err::File> {
    use rustix::fs::{Advice, fadvise};
    use std::os::unix::fs::FileExt;
    let file = fs_err::File::open(path).ok()?;
    // POSIX_FADV_RANDOM: this descriptor's reads read no more than asked. Advisory: failures
    // are ignored.
    let _ = fadvise(&file, 0, None, Advice::Random);
    let mut head = [0u8; 64];
    if file.file().read_exact_at(&mut head, 0).is_ok() {
        // `data_off` of the `.dxpkg` header (docs/formats/dxpkg.md); a bad header is the
        // reader's to report, this only bounds the prefetch.
        let data_off = crate::format::bytes::u64_at(&head, 40).unwrap_or(0);
        let len = file.metadata().map_or(0, |m| m.len());
        let _ = fadvise(
            &file,
            0,
            std::num::NonZeroU64::new(data_off.min(len)),
            Advice::WillNeed,
        );
    }
    Some(file)
}

/// Turns off read-around for faults in `map`: only what is touched, or asked for with
/// `MADV_WILLNEED`, is read. Advisory: failure is ignored.
#[cfg(target_os = "linux")]
fn advise_random(map: &memmap2::Mmap) {
    if !map.is_empty() {
        let _ = map.advise(memmap2::Advice::Random);
    }
}

/// What [`TreeData::release_served`] hands back at a time: a 16 KiB group of the pack (the
/// unit its bytes are checked in), or a page where pages are larger.
#[cfg(target_os = "linux")]
pub fn release_unit() -> u64 {
    page_size().max(crate::store::GROUP_LEN)
}

#[cfg(target_os = "linux")]
use crate::sys::{self, page_size};

/// The pages of a pack to release after bytes `served` of a file stored at `file` (both in pack
/// offsets) were copied out: the pages (of `page` bytes, a power of two) that lie wholly inside
/// `file`, end at or before `served.end` and overlap `served`. Empty when there are none.
///
/// A page shared with a neighbouring file in the pack is never released, nor is the last, partly
/// served page of a read (its tail is the start of the next read). The page holding the start of
/// `served` is released although its head came from an earlier read: the kernel reads a mounted
/// file in page-aligned requests, files are not page-aligned in a pack, so a strict "wholly inside
/// this request" rule would keep one page per request resident forever.
pub fn release_range(file: Range<u64>, served: Range<u64>, page: u64) -> Range<u64> {
    debug_assert!(page.is_power_of_two());
    let down = |x: u64| x & !(page - 1);
    let up = |x: u64| x.checked_add(page - 1).map(down);
    let start = served.start.max(file.start);
    let end = served.end.min(file.end);
    if start >= end {
        return 0..0;
    }
    let Some(lo) = up(file.start).map(|f| f.max(down(start))) else {
        return 0..0;
    };
    let hi = down(end);
    if lo < hi { lo..hi } else { 0..0 }
}

#[cfg(test)]
mod tests {
    use super::super::format::{H_INODES_OFF, I_OFFSET, INODE_LEN};
    use super::super::{PackPlacement, SyntheticFile, TreeSpec};
    use super::*;
    use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};

    const SP: &str = "lib/python3.11/site-packages";

    fn add_pack(store: &PackageStore, name: &str, files: &[(&str, &[u8])]) -> ContentHash {
        let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
        for (path, data) in files {
            w.add(
                Scheme::SitePackages,
                path,
                EntryKind::File,
                0o644,
                data.to_vec(),
            );
        }
        store.store(&w.finish().unwrap()).unwrap()
    }

    /// A tree of one pack (`a.py`, `b.py`) and one synthetic file, in a fresh store.
    fn fixture() -> (tempfile::TempDir, Vec<u8>, ContentHash) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let hash = add_pack(&store, "a", &[("a.py", b"A = 1\n"), ("b.py", b"B = 2\n")]);
        let spec = TreeSpec {
            packs: vec![(
                hash,
                PackPlacement::venv(&crate::python::VenvShape::posix(3, 11), "x"),
            )],
            files: vec![SyntheticFile {
                path: "pyvenv.cfg".into(),
                bytes: b"home = /usr\n".to_vec(),
                mode: 0o644,
            }],
            symlinks: Vec::new(),
        };
        let bytes = spec.build(&store).unwrap();
        (dir, bytes, hash)
    }

    fn data_of(d: &TreeData<Vec<u8>>, path: &str) -> Result<Vec<u8>, DataError> {
        let node = d.tree().resolve(path).unwrap().unwrap();
        d.data(&node).map(<[u8]>::to_vec)
    }

    #[test]
    fn serves_pack_inline_and_directory_bytes() {
        let (dir, bytes, _) = fixture();
        let d = TreeData::new(
            Tree::new(bytes).unwrap(),
            PackageStore::open(dir.path().join("store")),
        );
        assert_eq!(data_of(&d, &format!("{SP}/a.py")).unwrap(), b"A = 1\n");
        assert_eq!(data_of(&d, &format!("{SP}/b.py")).unwrap(), b"B = 2\n");
        assert_eq!(data_of(&d, "pyvenv.cfg").unwrap(), b"home = /usr\n");
        assert_eq!(data_of(&d, SP).unwrap(), b"");
        assert!(matches!(d.pack(1), Err(DataError::Tree(_))), "no slot 1");
    }

    #[test]
    fn a_missing_or_changed_pack_is_refused() {
        let (dir, bytes, hash) = fixture();
        let empty = PackageStore::open(dir.path().join("empty"));
        let d = TreeData::new(Tree::new(bytes.clone()).unwrap(), empty);
        let err = data_of(&d, &format!("{SP}/a.py")).unwrap_err();
        assert!(
            matches!(err, DataError::Store(StoreError::PackageNotFound(h)) if h == hash),
            "{err}"
        );
        assert!(!err.is_corrupt_tree());
        assert_eq!(data_of(&d, "pyvenv.cfg").unwrap(), b"home = /usr\n");

        // Another (valid, longer) object under the same name.
        let other = PackageStore::open(dir.path().join("other"));
        let longer = add_pack(&other, "z", &[("z.py", &[b'z'; 100])]);
        let path = other.get_path(&hash);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(other.get_path(&longer), &path).unwrap();
        // It does not match the name it sits under: refused before its length is compared.
        let d = TreeData::new(Tree::new(bytes).unwrap(), PackageStore::open(other.root()));
        let err = data_of(&d, &format!("{SP}/a.py")).unwrap_err();
        assert!(
            matches!(err, DataError::Store(StoreError::Damaged { hash: h, .. }) if h == hash),
            "{err}"
        );
    }

    /// A flipped byte in one file of a pack: that file is refused with its path and package,
    /// the others are served.
    #[test]
    fn a_damaged_file_is_refused_and_its_neighbours_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let big: Vec<u8> = (0..64u32 << 10).map(|i| (i % 249) as u8).collect();
        let tail: Vec<u8> = (0..40u32 << 10).map(|i| (i % 239) as u8).collect();
        let hash = add_pack(
            &store,
            "a",
            &[("big.bin", &big), ("c.py", b"C = 3\n"), ("z.bin", &tail)],
        );
        let spec = TreeSpec {
            packs: vec![(
                hash,
                PackPlacement::venv(&crate::python::VenvShape::posix(3, 11), "x"),
            )],
            ..TreeSpec::default()
        };
        let tree = spec.build(&store).unwrap();
        let path = store.get_path(&hash);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = {
            let p = store.get(&hash).unwrap();
            p.reader().data_offset() + p.get_file("big.bin").unwrap().unwrap().data_offset + 30_000
        };
        bytes[at as usize] ^= 1;
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let d = TreeData::new(Tree::new(tree).unwrap(), PackageStore::open(store.root()));
        let err = data_of(&d, &format!("{SP}/big.bin")).unwrap_err();
        let DataError::Damaged { path, package, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(
            (path.as_str(), package.as_str()),
            (format!("{SP}/big.bin").as_str(), "a 1.0")
        );
        assert!(!err.is_corrupt_tree());
        assert!(err.to_string().contains(&hash.to_hex()), "{err}");
        // A read of the damaged file's far end touches only sound groups.
        let node = d.tree().resolve(&format!("{SP}/big.bin")).unwrap().unwrap();
        assert_eq!(
            d.read(&node, 60 << 10, 100).unwrap(),
            &big[60 << 10..(60 << 10) + 100]
        );
        assert_eq!(data_of(&d, &format!("{SP}/c.py")).unwrap(), b"C = 3\n");
        assert_eq!(data_of(&d, &format!("{SP}/z.bin")).unwrap(), tail);
    }

    #[test]
    fn a_record_past_the_end_of_its_pack_is_out_of_range() {
        let (dir, mut bytes, hash) = fixture();
        let ino = Tree::new(bytes.clone())
            .unwrap()
            .resolve(&format!("{SP}/a.py"))
            .unwrap()
            .unwrap()
            .ino as usize;
        let inodes = u64::from_le_bytes(bytes[H_INODES_OFF..H_INODES_OFF + 8].try_into().unwrap());
        let at = inodes as usize + (ino - 1) * INODE_LEN + I_OFFSET;
        bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let d = TreeData::new(
            Tree::new(bytes).unwrap(),
            PackageStore::open(dir.path().join("store")),
        );
        let err = data_of(&d, &format!("{SP}/a.py")).unwrap_err();
        assert!(
            matches!(err, DataError::OutOfRange { hash: h, .. } if h == hash),
            "{err}"
        );
        assert!(err.is_corrupt_tree());
        assert!(err.to_string().contains("lies outside package"), "{err}");
    }

    /// The naive rule, page by page: inside the file, ending by the end of the served bytes,
    /// overlapping them.
    fn oracle(file: &Range<u64>, served: &Range<u64>, page: u64) -> Vec<u64> {
        let (start, end) = (served.start.max(file.start), served.end.min(file.end));
        (0..=file.end / page + 1)
            .filter(|p| {
                let (a, b) = (p * page, (p + 1) * page);
                a >= file.start && b <= file.end && b <= end && b > start && start < end
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn release_range_matches_the_page_by_page_rule(
            shift in 2u32..14,
            file_start in 0u64..200_000,
            file_len in 0u64..200_000,
            a in 0u64..220_000,
            b in 0u64..220_000,
        ) {
            let page = 1u64 << shift;
            let file = file_start..file_start + file_len;
            let served = file_start + a.min(b)..file_start + a.max(b);
            let got = release_range(file.clone(), served.clone(), page);
            let want = oracle(&file, &served, page);
            let got_pages: Vec<u64> = if got.is_empty() {
                Vec::new()
            } else {
                proptest::prop_assert_eq!(got.start % page, 0);
                proptest::prop_assert_eq!(got.end % page, 0);
                (got.start / page..got.end / page).collect()
            };
            proptest::prop_assert_eq!(got_pages, want, "file {:?} served {:?} page {}", file, served, page);
        }

        /// Sequential reads in page-aligned requests release every page wholly inside the file,
        /// each once.
        #[test]
        fn sequential_reads_release_every_inner_page_once(
            file_start in 0u64..100_000,
            file_len in 0u64..300_000,
            chunk_pages in 1u64..40,
        ) {
            let page = 4096;
            let file = file_start..file_start + file_len;
            let mut released = Vec::new();
            let mut off = 0;
            while off < file_len {
                let n = (chunk_pages * page).min(file_len - off);
                let r = release_range(file.clone(), file.start + off..file.start + off + n, page);
                released.extend((r.start / page..r.end / page).filter(|_| !r.is_empty()));
                off += n;
            }
            let inner: Vec<u64> = (0..=file.end / page)
                .filter(|p| p * page >= file.start && (p + 1) * page <= file.end)
                .collect();
            proptest::prop_assert_eq!(released, inner);
        }
    }

    /// Pages of `path` in `range` that are in the page cache (mincore over a fresh map).
    #[cfg(target_os = "linux")]
    fn resident_pages(path: &std::path::Path, range: Range<u64>) -> usize {
        let map = crate::sys::map_immutable(path).unwrap();
        crate::sys::resident_pages(&map, range).unwrap().0
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn release_served_drops_the_pages_of_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let big: Vec<u8> = (0..(1u32 << 20) + 1234)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let hash = add_pack(&store, "a", &[("big.bin", &big), ("small.py", b"S = 1\n")]);
        let spec = TreeSpec {
            packs: vec![(
                hash,
                PackPlacement::venv(&crate::python::VenvShape::posix(3, 11), "x"),
            )],
            ..TreeSpec::default()
        };
        let tree = spec.build(&store).unwrap();
        let path = store.get_path(&hash);
        {
            // With the kernel's defaults nothing is released (a map of its own, dropped after).
            let keep = TreeData::new(
                Tree::new(tree.clone()).unwrap(),
                PackageStore::open(store.root()),
            );
            assert_eq!(keep.pack_pages(), PackPages::Keep);
            let node = keep
                .tree()
                .resolve(&format!("{SP}/big.bin"))
                .unwrap()
                .unwrap();
            assert_eq!(keep.data(&node).unwrap(), big);
            keep.prefetch(&node, 0, node.size).unwrap();
            assert_eq!(keep.release_served(&node, 0, node.size).unwrap(), 0);
        }

        let d = TreeData::new(Tree::new(tree).unwrap(), store).with_pack_pages(PackPages::Release);
        let node = d.tree().resolve(&format!("{SP}/big.bin")).unwrap().unwrap();
        let DataSource::Pack { offset, .. } = node.source else {
            panic!("{node:?}")
        };
        let file = offset..offset + node.size;
        assert_eq!(
            d.release_served(&node, 0, node.size).unwrap(),
            0,
            "not mapped yet"
        );
        assert_eq!(d.data(&node).unwrap(), big, "read through the map");
        d.prefetch(&node, 0, node.size).unwrap();
        let inner = release_range(file.clone(), file.clone(), release_unit());
        let pages = ((inner.end - inner.start) / page_size()) as usize;
        assert!(pages >= 252, "{inner:?}");
        assert_eq!(resident_pages(&path, inner.clone()), pages, "just written");
        // Half, then the rest, as two reads would.
        let half = node.size / 2;
        let n1 = d.release_served(&node, 0, half).unwrap();
        let n2 = d.release_served(&node, half, node.size - half).unwrap();
        assert_eq!(n1 + n2, inner.end - inner.start);
        assert_eq!(resident_pages(&path, inner.clone()), 0);
        // The bytes are still right (faulted back in from the file).
        assert_eq!(d.data(&node).unwrap(), big);
        // Inline files, directories and empty reads release nothing.
        let root = d.tree().root().unwrap();
        assert_eq!(d.release_served(&root, 0, 4096).unwrap(), 0);
        assert_eq!(d.release_served(&node, 4096, 0).unwrap(), 0);
    }

    #[test]
    fn release_range_examples() {
        // A file at [5000, 20000) of a pack, 4 KiB pages: pages 2 and 3 are wholly inside.
        let f = 5000..20000;
        assert!(
            release_range(f.clone(), 5000..9096, 4096).is_empty(),
            "page 1 is shared, page 2 not read to its end"
        );
        assert_eq!(release_range(f.clone(), 5000..13192, 4096), 8192..12288);
        assert_eq!(release_range(f.clone(), 13192..20000, 4096), 12288..16384);
        assert_eq!(release_range(f.clone(), 0..u64::MAX, 4096), 8192..16384);
        assert!(release_range(f.clone(), 7000..7000, 4096).is_empty());
        assert!(release_range(f, 30000..40000, 4096).is_empty());
        assert!(release_range(0..u64::MAX, u64::MAX - 10..u64::MAX, 4096).is_empty());
    }
}
