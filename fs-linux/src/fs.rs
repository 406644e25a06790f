//! The `fuser::Filesystem` that serves a mapped [`Tree`] and reads file bytes out of the mapped
//! store objects.
//!
//! Nothing here allocates per file or walks the tree: a lookup is a binary search over one
//! directory's children, a read is a slice of a mapped pack. The tree never changes while it is
//! mounted (bytecode compiled after mounting is added beside it, see [`crate::late`]), so every
//! reply carries a long TTL (negative lookups too), files are opened with
//! `FOPEN_KEEP_CACHE` (or not opened at all when the kernel supports no-open), and every request
//! that would change something is answered `EROFS`. What a read copies into the mounted file's page
//! cache is then handed back from the pack's ([`PackPages::Release`]): hot bytes are cached once.
//!
//! A file with a whole-file backing (its package's unpacked copy, [`TreeData::backing_file`]) is
//! opened with FUSE passthrough where the kernel allows it ([`Passthrough`]): the kernel then
//! reads and maps the backing file itself, and no read of that file reaches the server.
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dx_py_core::store::PackageStore;
use fuser::{
    AccessFlags, BackingId, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use memmap2::Mmap;

use crate::late::{Late, LateBytecode, LateError, LateSlot, is_bytecode_name};
use crate::prewarm::Recorder;
use crate::tree::{
    ArrivingPacks, Node, NodeKind, OpenTreeError, Tree, TreeData, TreeError, open_tree,
};

/// How long the kernel may cache entries, attributes and negative lookups: the tree is
/// immutable while mounted, so "forever" (a bit over 11 days).
pub const TTL: Duration = Duration::from_secs(1_000_000);

/// A leaf whose bytes cannot be served (shared with `fs-windows`, it lives in core).
pub use crate::tree::DataError as FsError;

/// How many requests of each kind reached the server (the kernel answers the rest from its
/// caches). Shared with the caller through [`TreeFs::counters`].
#[derive(Debug, Default)]
pub struct Counters {
    /// `lookup` requests, found or not.
    pub lookups: AtomicU64,
    /// `lookup` requests for absent names.
    pub negative_lookups: AtomicU64,
    /// `getattr` requests.
    pub getattrs: AtomicU64,
    /// `open` requests (none after the first once no-open is negotiated).
    pub opens: AtomicU64,
    /// `open` requests answered with a backing file (FUSE passthrough).
    pub passthrough_opens: AtomicU64,
    /// `read` requests.
    pub reads: AtomicU64,
    /// `readdir` and `readdirplus` requests.
    pub readdirs: AtomicU64,
    /// `flush` requests (one per close(2) until the kernel learns they are not implemented).
    pub flushes: AtomicU64,
    /// `ioctl` requests (Python's `isatty()` on every file it opens).
    pub ioctls: AtomicU64,
    /// Bytes of pack page cache handed back to the kernel after reads ([`PackPages::Release`]).
    pub released_bytes: AtomicU64,
    /// When the last read or listing came: milliseconds since [`activity_epoch`], plus one
    /// (0: never).
    last_request: AtomicU64,
}

/// The clock [`Counters::idle_for`] measures against (the first use in this process).
fn activity_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl Counters {
    /// Counts a request in `counter`.
    fn request(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes that the mount is in use now: a read or a listing, what an import makes of the
    /// files it has not seen (lookups and `getattr` alone are also what a poller makes).
    fn touch(&self) {
        let now = activity_epoch().elapsed().as_millis() as u64 + 1;
        self.last_request.store(now, Ordering::Relaxed);
    }

    /// How long since the last read or listing (`None`: none came yet): work that can wait
    /// (compiling bytecode after mounting) waits while the mount is in use.
    pub fn idle_for(&self) -> Option<Duration> {
        match self.last_request.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                activity_epoch()
                    .elapsed()
                    .saturating_sub(Duration::from_millis(at - 1)),
            ),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What a pack's page cache is used for; [`TreeFs`] uses [`PackPages::Release`].
pub use crate::tree::PackPages;

/// Whether files with a whole-file backing are opened with FUSE passthrough.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Passthrough {
    /// When the kernel offers it (Linux ≥ 6.9, `CAP_SYS_ADMIN` for registering backing files)
    /// and some pack of the tree has an unpacked copy; otherwise as [`Passthrough::Off`].
    #[default]
    Auto,
    /// Every read goes through the server, and opens are not sent at all where the kernel
    /// supports no-open.
    Off,
}

/// A read-only venv served from a tree and a store.
#[derive(Debug)]
pub struct TreeFs {
    counters: Arc<Counters>,
    /// The tree and its packs (opened on first read, so mounting opens no pack at all).
    data: TreeData<Mmap>,
    uid: u32,
    gid: u32,
    no_open: AtomicBool,
    no_opendir: AtomicBool,
    /// What the caller allows ([`TreeFs::passthrough`]).
    passthrough_wanted: Passthrough,
    /// Whether opens are answered with backing files now: decided at `init`, turned off for
    /// good when the kernel refuses one.
    passthrough: AtomicBool,
    /// Per first-tree inode, the backing file registered with the kernel, on its first open.
    /// Kept for the mount's life: every open of an inode must name the same backing, and the
    /// kernel looks the id up after the reply is sent, so it cannot be closed right after it.
    backings: Box<[OnceLock<Option<BackingId>>]>,
    /// Bytecode compiled after mounting ([`TreeFs::expect_bytecode`]); empty otherwise.
    late: Arc<LateSlot>,
    /// Records what the kernel asks first, for the next mount's prewarm ([`TreeFs::record`]).
    recorder: Option<Arc<Recorder>>,
}

/// An inode as served: its node, the tree data it comes from, and the number the kernel knows
/// it by (a complete-tree inode of late bytecode is offset past the first tree's).
#[derive(Clone, Copy)]
struct Served<'a> {
    node: Node<'a>,
    data: &'a TreeData<Mmap>,
    ino: u64,
}

impl TreeFs {
    /// Serves `tree` with bytes from `store`.
    pub fn new(tree: Tree<Mmap>, store: PackageStore) -> Self {
        let (uid, gid) = crate::sys::ids();
        let inodes = tree.len() as usize + 1;
        Self {
            counters: Arc::default(),
            data: TreeData::new(tree, store).with_pack_pages(PackPages::Release),
            uid,
            gid,
            no_open: AtomicBool::new(false),
            no_opendir: AtomicBool::new(false),
            passthrough_wanted: Passthrough::default(),
            passthrough: AtomicBool::new(false),
            backings: (0..inodes).map(|_| OnceLock::new()).collect(),
            late: Arc::default(),
            recorder: None,
        }
    }

    /// Serves this tree now and its bytecode when it arrives: the returned handle's
    /// [`LateBytecode::arrive`] adds what the complete tree adds. Until then an absent
    /// `__pycache__` or `.pyc` is not cached by the kernel (so it can appear later), nor is any
    /// directory listing. Call it once, before mounting.
    pub fn expect_bytecode(&self) -> Result<LateBytecode, LateError> {
        // A copy (under 1 MiB for the large bench set): the mapping stays inside `self.data`.
        let first = Tree::new(self.tree().bytes().to_vec())?;
        if self.late.ready.get().is_some() || self.late.expecting.swap(true, Ordering::AcqRel) {
            return Err(LateError::AlreadyExpected);
        }
        Ok(LateBytecode {
            slot: Arc::clone(&self.late),
            first,
        })
    }

    /// Maps the tree file at `tree_path` (O(1)) and opens the store at `store_dir` lazily.
    pub fn open(tree_path: &Path, store_dir: &Path) -> Result<Self, OpenTreeError> {
        Ok(Self::new(
            open_tree(tree_path)?,
            PackageStore::open(store_dir),
        ))
    }

    /// How the packs' page cache is used (default [`PackPages::Release`]: the mounted files'
    /// own page cache, which the kernel keeps, is the one cached copy of a served byte).
    #[must_use]
    pub fn pack_pages(mut self, mode: PackPages) -> Self {
        self.data = self.data.with_pack_pages(mode);
        self
    }

    /// Whether files with a whole-file backing are opened with FUSE passthrough (default
    /// [`Passthrough::Auto`]).
    #[must_use]
    pub fn passthrough(mut self, mode: Passthrough) -> Self {
        self.passthrough_wanted = mode;
        self
    }

    /// True when opens are answered with backing files (known once mounted).
    pub fn uses_passthrough(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }

    /// The backing registered for first-tree file `ino` (registered on its first open), or
    /// `None` when it has none: no backing file, or the kernel refused it.
    fn backing(&self, ino: u64, node: &Node<'_>, reply: &ReplyOpen) -> Option<&BackingId> {
        let slot = self.backings.get(usize::try_from(ino).ok()?)?;
        slot.get_or_init(|| {
            let file = match self.data.backing_file(node) {
                Ok(file) => file?,
                Err(e) => {
                    // Served from the pack, checked, instead.
                    let path = self.data.path_of(node);
                    tracing::warn!("not passing `{path}` through: {e}");
                    return None;
                }
            };
            match reply.open_backing(file.file()) {
                Ok(id) => Some(id),
                Err(e) => {
                    // The kernel refuses backing files to this server (no CAP_SYS_ADMIN in its
                    // user namespace, a store on a file system it cannot stack on): it will
                    // refuse the others too, so every file goes through the server from now.
                    tracing::warn!(
                        "FUSE passthrough refused ({e}): serving every file through the server"
                    );
                    self.passthrough.store(false, Ordering::Relaxed);
                    None
                }
            }
        })
        .as_ref()
    }

    /// Records the names looked up and the directories listed in `recorder` (those of the
    /// first tree, whose inode numbers a trace keeps).
    #[must_use]
    pub fn record(mut self, recorder: Arc<Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// A listing of `ino` from its start reached the server.
    fn record_listing(&self, ino: u64, offset: u64) {
        if let Some(r) = &self.recorder
            && offset == 0
            && ino <= self.base_len()
        {
            r.listed(ino);
        }
    }

    /// Serves the packs `arriving` names once they are stored (built from layouts, the tree
    /// names them by placeholder keys): a read of one waits until it is stored.
    #[must_use]
    pub fn arriving(mut self, arriving: Arc<ArrivingPacks>) -> Self {
        self.data = self.data.with_arriving(arriving);
        self
    }

    /// The request counters, to read while the file system is mounted.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// The tree being served.
    pub fn tree(&self) -> &Tree<Mmap> {
        self.data.tree()
    }

    /// The bytes of a leaf: file contents or symlink target (empty for directories).
    pub fn data(&self, node: &Node<'_>) -> Result<&[u8], FsError> {
        self.data.data(node)
    }

    fn attr(&self, served: &Served<'_>) -> FileAttr {
        let node = &served.node;
        let time = UNIX_EPOCH + Duration::from_secs(served.data.tree().mtime().max(0) as u64);
        let (kind, size) = match node.kind {
            NodeKind::Dir => (FileType::Directory, 4096),
            NodeKind::File => (FileType::RegularFile, node.size),
            NodeKind::Symlink => (FileType::Symlink, node.size),
        };
        FileAttr {
            ino: INodeNo(served.ino),
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm: (node.mode & 0o7777) as u16,
            nlink: node.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn late(&self) -> Option<&Late> {
        self.late.ready.get()
    }

    fn base_len(&self) -> u64 {
        u64::from(self.tree().len())
    }

    /// Node `ino` of the first tree.
    fn base(&self, ino: u64) -> Result<Served<'_>, TreeError> {
        let mut node = self.tree().node(ino)?;
        if let Some(late) = self.late()
            && let Some(&full) = late.extended.get(&ino)
        {
            // An extended directory links the `__pycache__` it gained too.
            node.nlink = late.data.tree().node(full)?.nlink;
        }
        Ok(Served {
            node,
            data: &self.data,
            ino,
        })
    }

    /// Node `ino` of the complete tree of late bytecode, as served.
    fn in_late<'a>(&'a self, late: &'a Late, ino: u64) -> Result<Served<'a>, TreeError> {
        // A directory that bytecode extends is the first tree's own directory.
        if let Some(&base) = late.base_of.get(&ino) {
            return self.base(base);
        }
        Ok(Served {
            node: late.data.tree().node(ino)?,
            data: &late.data,
            ino: self.base_len() + ino,
        })
    }

    fn is_base(&self, served: &Served<'_>) -> bool {
        std::ptr::eq(served.data, &self.data)
    }

    /// The inode the kernel calls `ino`.
    fn served(&self, ino: u64) -> Result<Served<'_>, TreeError> {
        let base = self.base_len();
        match self.late() {
            Some(late) if ino > base => self.in_late(late, ino - base),
            _ => self.base(ino),
        }
    }

    fn node_or_reply(&self, ino: INodeNo) -> Result<Served<'_>, Errno> {
        self.served(ino.0).map_err(|e| {
            tracing::warn!("inode {}: {e}", ino.0);
            match e {
                TreeError::NoSuchInode { .. } => Errno::ENOENT,
                _ => Errno::EIO,
            }
        })
    }

    fn dir_or_reply(&self, ino: INodeNo) -> Result<Served<'_>, Errno> {
        let served = self.node_or_reply(ino)?;
        if served.node.kind != NodeKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(served)
    }

    /// `name` in directory `dir`: `Ok(None)` when absent.
    fn lookup_in<'a>(
        &'a self,
        dir: &Served<'a>,
        name: &[u8],
    ) -> Result<Option<Served<'a>>, TreeError> {
        if let Some(found) = dir.data.tree().lookup(&dir.node, name)? {
            return match self.late() {
                Some(late) if !self.is_base(dir) => self.in_late(late, found.ino).map(Some),
                _ => self.base(found.ino).map(Some),
            };
        }
        // A miss in an extended directory may be something the bytecode added.
        if let Some(late) = self.late()
            && self.is_base(dir)
            && let Some(&full) = late.extended.get(&dir.ino)
        {
            let full_dir = late.data.tree().node(full)?;
            if let Some(found) = late.data.tree().lookup(&full_dir, name)? {
                return self.in_late(late, found.ino).map(Some);
            }
        }
        Ok(None)
    }

    /// The `.`, `..`, children... sequence of a directory at position `pos`. A directory that
    /// bytecode extended is listed from the complete tree: its first-tree entries under their
    /// first-tree numbers, plus what was added.
    fn dir_entry<'a>(
        &'a self,
        dir: &Served<'a>,
        pos: u64,
    ) -> Result<Option<(Served<'a>, &'a [u8])>, Errno> {
        let io = |e: TreeError| {
            tracing::warn!("directory {}: {e}", dir.ino);
            Errno::EIO
        };
        // The complete tree's copy of this directory, when it lists it.
        let listed = match self.late() {
            Some(late) if !self.is_base(dir) => Some((late, dir.node)),
            Some(late) => match late.extended.get(&dir.ino) {
                Some(&full) => Some((late, late.data.tree().node(full).map_err(io)?)),
                None => None,
            },
            None => None,
        };
        match pos {
            0 => Ok(Some((*dir, b"."))),
            1 => {
                // A first-tree directory's parent is a first-tree directory; an added
                // directory's is extended or added, which `in_late` serves as such.
                let parent = match self.late() {
                    Some(late) if !self.is_base(dir) => self.in_late(late, dir.node.parent),
                    _ => self.base(dir.node.parent),
                };
                Ok(Some((parent.map_err(io)?, b"..")))
            }
            n => {
                let Some((late, full_dir)) = listed else {
                    let child = self.tree().child(&dir.node, n - 2).map_err(io)?;
                    return child
                        .map(|c| Ok((self.base(c.ino).map_err(io)?, c.name)))
                        .transpose();
                };
                let Some(child) = late.data.tree().child(&full_dir, n - 2).map_err(io)? else {
                    return Ok(None);
                };
                // One of the first tree's own entries keeps its first-tree number.
                let own = match self.is_base(dir) {
                    true => self.tree().lookup(&dir.node, child.name).map_err(io)?,
                    false => None,
                };
                let served = match own {
                    Some(own) => self.base(own.ino),
                    None => self.in_late(late, child.ino),
                };
                Ok(Some((served.map_err(io)?, child.name)))
            }
        }
    }
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::Dir => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

impl Filesystem for TreeFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let caps = config.capabilities();
        // ENOSYS to the first open makes a kernel with no-open support stop sending opens and
        // treat every file as opened with FOPEN_KEEP_CACHE (FOPEN_CACHE_DIR for directories).
        self.no_open.store(
            caps.contains(InitFlags::FUSE_NO_OPEN_SUPPORT),
            Ordering::Relaxed,
        );
        self.no_opendir.store(
            caps.contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT),
            Ordering::Relaxed,
        );
        // Passthrough needs every open to reach the server (no no-open): asked for only when
        // some file may have a backing. Stack depth 2: the backing files may sit on an
        // overlayfs (a container's root), the most the kernel allows.
        let passthrough = self.passthrough_wanted == Passthrough::Auto
            && self.data.may_have_backings()
            && config.set_max_stack_depth(2).is_ok()
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok();
        self.passthrough.store(passthrough, Ordering::Relaxed);
        for wanted in [
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO,
        ] {
            if config.add_capabilities(wanted).is_err() {
                tracing::debug!("kernel lacks {wanted:?}");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.counters.request(&self.counters.lookups);
        if let Some(r) = &self.recorder
            && parent.0 <= self.base_len()
        {
            r.looked_up(parent.0, name.as_bytes());
        }
        let dir = match self.dir_or_reply(parent) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        // Read before looking: if the bytecode arrives in between, the lookup below may still
        // have missed it, and the miss must then not be cached.
        let expecting = self.late.expecting.load(Ordering::Acquire);
        match self.lookup_in(&dir, name.as_bytes()) {
            Ok(Some(found)) => reply.entry(&TTL, &self.attr(&found), Generation(0)),
            Ok(None) if expecting && is_bytecode_name(name.as_bytes()) => {
                // Bytecode is still being compiled: an error reply is not cached, so the name
                // shows up once it arrives.
                self.counters.request(&self.counters.negative_lookups);
                reply.error(Errno::ENOENT);
            }
            Ok(None) => {
                self.counters.request(&self.counters.negative_lookups);
                // Inode 0 is a negative entry that the kernel caches for the entry TTL, so a
                // failed import probe is answered once per mount, not once per run.
                let mut attr = self.attr(&dir);
                attr.ino = INodeNo(0);
                reply.entry_with_ttls(&TTL, &TTL, &attr, Generation(0));
            }
            Err(e) => {
                tracing::warn!("lookup {name:?} in {}: {e}", parent.0);
                reply.error(Errno::EIO);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.counters.request(&self.counters.getattrs);
        match self.node_or_reply(ino) {
            Ok(served) => reply.attr(&TTL, &self.attr(&served)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let served = match self.node_or_reply(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        if served.node.kind != NodeKind::Symlink {
            return reply.error(Errno::EINVAL);
        }
        match served.data.data(&served.node) {
            Ok(target) => reply.data(target),
            Err(e) => {
                tracing::error!("readlink {}: {e}", ino.0);
                reply.error(Errno::EIO);
            }
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.counters.request(&self.counters.opens);
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return reply.error(Errno::EROFS);
        }
        let served = match self.node_or_reply(ino) {
            Ok(served) => served,
            Err(e) => return reply.error(e),
        };
        if self.passthrough.load(Ordering::Relaxed) {
            // Late bytecode (past the first tree) has no backing: its packs are never unpacked.
            if self.is_base(&served)
                && served.node.kind == NodeKind::File
                && let Some(id) = self.backing(ino.0, &served.node, &reply)
            {
                self.counters.request(&self.counters.passthrough_opens);
                return reply.opened_passthrough(FileHandle(0), FopenFlags::empty(), id);
            }
            // No ENOSYS while passthrough is on: it would stop all opens, those with a
            // backing too.
            if self.passthrough.load(Ordering::Relaxed) {
                return reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
            }
        }
        if self.no_open.load(Ordering::Relaxed) {
            return reply.error(Errno::ENOSYS);
        }
        reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.counters.request(&self.counters.reads);
        self.counters.touch();
        let Served { node, data, .. } = match self.node_or_reply(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        if node.kind == NodeKind::Dir {
            return reply.error(Errno::EISDIR);
        }
        // Checked against the pack's name before it is served (a damaged file gets EIO).
        match data.read(&node, offset, u64::from(size)) {
            Ok(bytes) => {
                let (off, len) = (offset.min(node.size), bytes.len() as u64);
                if let Err(e) = data.prefetch(&node, off, len) {
                    tracing::debug!("prefetching inode {}: {e}", ino.0);
                }
                reply.data(bytes);
                // The reply now sits in the mounted file's page cache, which the kernel keeps
                // (FOPEN_KEEP_CACHE); an O_DIRECT read is not cached there, so its pages stay.
                if flags.0 & libc::O_DIRECT == 0 {
                    match data.release_served(&node, off, len) {
                        Ok(n) => Counters::add(&self.counters.released_bytes, n),
                        Err(e) => tracing::debug!("releasing pack pages of inode {}: {e}", ino.0),
                    }
                }
            }
            Err(e) if e.is_logged() => {
                tracing::debug!("read inode {}: {e}", ino.0);
                reply.error(Errno::EIO);
            }
            Err(e) => {
                tracing::error!("read inode {}: {e}", ino.0);
                reply.error(Errno::EIO);
            }
        }
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        self.counters.request(&self.counters.ioctls);
        // Python's `open()` asks `isatty()` (TCGETS) of every file it reads: answer "not a
        // terminal" quietly. fuser's default logs a warning per request.
        reply.error(Errno::ENOTTY);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.counters.request(&self.counters.flushes);
        // Nothing to flush in a read-only tree. ENOSYS (not `ok`) makes the kernel stop sending
        // FLUSH on every close(2): one round trip per file read, otherwise.
        reply.error(Errno::ENOSYS);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Likewise: the kernel then answers fsync(2) with success by itself.
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if let Err(e) = self.dir_or_reply(ino) {
            return reply.error(e);
        }
        if self.late.expecting.load(Ordering::Acquire) {
            // No cached listings while bytecode may still extend them: a reply computed before
            // it arrives must not outlive it in the kernel's directory cache.
            return reply.opened(FileHandle(0), FopenFlags::empty());
        }
        if self.no_opendir.load(Ordering::Relaxed) {
            return reply.error(Errno::ENOSYS);
        }
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.counters.request(&self.counters.readdirs);
        self.counters.touch();
        self.record_listing(ino.0, offset);
        let dir = match self.dir_or_reply(ino) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let mut pos = offset;
        loop {
            match self.dir_entry(&dir, pos) {
                Ok(Some((served, name))) => {
                    // The offset of an entry is the position of the next one.
                    if reply.add(
                        INodeNo(served.ino),
                        pos + 1,
                        file_type(served.node.kind),
                        OsStr::from_bytes(name),
                    ) {
                        break;
                    }
                    pos += 1;
                }
                Ok(None) => break,
                Err(e) => return reply.error(e),
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.counters.request(&self.counters.readdirs);
        self.counters.touch();
        self.record_listing(ino.0, offset);
        let dir = match self.dir_or_reply(ino) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let mut pos = offset;
        loop {
            match self.dir_entry(&dir, pos) {
                Ok(Some((served, name))) => {
                    let attr = self.attr(&served);
                    if reply.add(
                        INodeNo(served.ino),
                        pos + 1,
                        OsStr::from_bytes(name),
                        &TTL,
                        &attr,
                        Generation(0),
                    ) {
                        break;
                    }
                    pos += 1;
                }
                Ok(None) => break,
                Err(e) => return reply.error(e),
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Nothing is free on a read-only tree; the file count is known.
        let late = self.late().map_or(0, |l| u64::from(l.data.tree().len()));
        let files = self.base_len() + late;
        reply.statfs(0, 0, 0, files, 0, 4096, 255, 4096);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let node = match self.node_or_reply(ino) {
            Ok(n) => n.node,
            Err(e) => return reply.error(e),
        };
        if mask.contains(AccessFlags::W_OK) {
            return reply.error(Errno::EROFS);
        }
        let bits = if req.uid() == 0 {
            // root may read anything and execute what anyone may execute.
            0o4 | ((node.mode | node.mode >> 3 | node.mode >> 6) & 0o1)
        } else if req.uid() == self.uid {
            node.mode >> 6
        } else if req.gid() == self.gid {
            node.mode >> 3
        } else {
            node.mode
        } & 0o7;
        let denied = (mask.contains(AccessFlags::R_OK) && bits & 0o4 == 0)
            || (mask.contains(AccessFlags::X_OK) && bits & 0o1 == 0);
        if denied {
            reply.error(Errno::EACCES);
        } else {
            reply.ok();
        }
    }

    // Everything below would change the tree: a read-only file system says EROFS.

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: fuser::CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }
}
