//! `cache prune`: removes what no live root reaches, then, under `--max-size`, evicts the least
//! recently used entries until the cache fits.
//!
//! An entry is the unit prune removes: a store object (its `.dxpkg`, its `.dxcv` and its
//! unpacked copies), a layout, a mount tree (its files), or one file of a refetchable kind
//! (downloads, core metadata, index pages, wheel records). Objects, layouts and trees are
//! reached from live roots ([`super::reach`]) and swept when unreached; refetchable files are
//! reached by nothing and kept until `--max-size` needs their room.
//!
//! Eviction under `--max-size`: first refetchable files, least recently used first; then live
//! venvs and locks, the least recently used first, each dropped as if it were dead and what it
//! alone reached evicted (the venv is reported stranded: `dx-py install` brings it back). Live
//! mounts are never dropped, so nothing a running mount serves goes; a running install holds
//! the cache lock shared, so prune (exclusive) waits for it.
//!
//! Sizes count each inode once (a layout's files are hardlinks of unpacked copies), and an
//! entry frees the bytes of the inodes no remaining entry holds.
//!
//! Removal is ordered so that a crash at any point leaves no referrer to a removed referent:
//! the layout index forgets a layout before its tree goes, layouts and trees go before the
//! objects they link or name, bytecode maps before their packs, an object's unpacked copies
//! before the object and its `.dxpkg` before its sidecar.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::reach::{Reached, bytecode_maps, check_roots, reach, tree_files};
use super::roots::{self, Root, RootFileError, Uses};
use super::{Cache, Kind, RemoveError};
use crate::hash::ContentHash;
use crate::layout::{LayoutCache, ProjectHash};

/// What to prune.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneOptions {
    /// Only report what would go.
    pub dry_run: bool,
    /// Evict until the entries prune manages take at most this many bytes.
    pub max_size: Option<u64>,
}

/// One thing prune removes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    /// A store object with its sidecar and unpacked copies (or, for a store this cache does
    /// not own, the unpacked copy in the cache alone).
    Object(ContentHash),
    /// A layout, by key.
    Layout(String),
    /// A mount tree's files, by key.
    Tree(String),
    /// A file of a refetchable kind.
    File(Kind, PathBuf),
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Object(h) => write!(f, "object {h}"),
            Item::Layout(k) => write!(f, "layout {k}"),
            Item::Tree(k) => write!(f, "tree {k}"),
            Item::File(kind, p) => write!(f, "{kind} {}", p.display()),
        }
    }
}

/// Why an entry goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// No live root reaches it.
    Unreached,
    /// `--max-size` needed its room.
    Evicted,
}

/// An entry removed (or, in a dry run, that would be).
#[derive(Clone, Debug)]
pub struct Removed {
    /// What.
    pub item: Item,
    /// The bytes it freed (inodes no kept entry holds).
    pub bytes: u64,
    /// Why.
    pub why: Why,
}

/// What a prune did (or would do).
#[derive(Debug, Default)]
pub struct PruneReport {
    /// What went, in the order it went.
    pub removed: Vec<Removed>,
    /// Bytes of the managed entries before.
    pub size_before: u64,
    /// Bytes of the managed entries after.
    pub size_after: u64,
    /// Live roots.
    pub live: Vec<Root>,
    /// Roots found dead (their files are removed).
    pub dead: Vec<Root>,
    /// Root files that could not be read: treated as dead, removed.
    pub corrupt: Vec<(PathBuf, RootFileError)>,
    /// Live venvs and locks whose entries `--max-size` evicted.
    pub stranded: Vec<Root>,
    /// The store, when prune left it alone: read-only or shared through `--store`.
    pub store_left: Option<PathBuf>,
    /// Bytes by which the cache still exceeds `--max-size`: what live mounts use.
    pub still_over: u64,
}

impl PruneReport {
    /// Bytes freed.
    pub fn freed(&self) -> u64 {
        self.size_before - self.size_after
    }
}

/// A prune that failed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Removing a path failed.
    #[error(transparent)]
    Remove(#[from] RemoveError),
    /// Updating the layout index failed.
    #[error(transparent)]
    Layouts(#[from] crate::layout::LayoutError),
    /// Listing the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A file's identity, so that hardlinks count once.
type InodeKey = (u64, u64);

/// One entry on disk.
#[derive(Debug)]
struct Entry {
    /// Paths, in the order they are removed.
    paths: Vec<PathBuf>,
    /// The inodes it holds, with their sizes.
    inodes: Vec<(InodeKey, u64)>,
    /// Last use (or, where nothing records use, last change).
    used: SystemTime,
}

/// An entry to remove, the bytes it frees and why.
type Planned = (Item, Entry, u64, Why);

/// Every entry, with the inode counts that make freed bytes exact.
#[derive(Debug, Default)]
struct Inventory {
    entries: BTreeMap<Item, Entry>,
    /// Per inode: its size and how many remaining entries hold it.
    holders: HashMap<InodeKey, (u64, u32)>,
    size: u64,
}

impl Inventory {
    fn add(&mut self, item: Item, paths: Vec<PathBuf>, used: Option<SystemTime>) {
        let mut inodes = Vec::new();
        let mut newest = None;
        for p in &paths {
            walk(p, &mut inodes, &mut newest);
        }
        if inodes.is_empty() && paths.iter().all(|p| std::fs::symlink_metadata(p).is_err()) {
            return;
        }
        inodes.sort_unstable();
        inodes.dedup();
        for (key, len) in &inodes {
            let h = self.holders.entry(*key).or_insert((*len, 0));
            if h.1 == 0 {
                self.size += len;
            }
            h.1 += 1;
        }
        let used = used.or(newest).unwrap_or(SystemTime::UNIX_EPOCH);
        self.entries.insert(
            item,
            Entry {
                paths,
                inodes,
                used,
            },
        );
    }

    /// Takes every entry `reached` does not keep out of the count, onto `plan`.
    fn take_unreached(&mut self, reached: &Reached, why: Why, plan: &mut Vec<Planned>) {
        let mut gone: Vec<Item> = self
            .entries
            .keys()
            .filter(|i| !is_reached(reached, i))
            .cloned()
            .collect();
        // In removal order, so that the report lists them as they go and each frees what it
        // frees then.
        gone.sort_by_key(rank);
        for item in gone {
            if let Some((entry, freed)) = self.take(&item) {
                plan.push((item, entry, freed, why));
            }
        }
    }

    /// Takes `item` out of the count; returns the bytes that frees.
    fn take(&mut self, item: &Item) -> Option<(Entry, u64)> {
        let entry = self.entries.remove(item)?;
        let mut freed = 0;
        for (key, _) in &entry.inodes {
            if let Some(h) = self.holders.get_mut(key) {
                h.1 -= 1;
                if h.1 == 0 {
                    freed += h.0;
                }
            }
        }
        self.size -= freed;
        Some((entry, freed))
    }
}

/// Adds the files below `path` (one file or a tree) and the newest use time seen.
fn walk(path: &Path, out: &mut Vec<(InodeKey, u64)>, newest: &mut Option<SystemTime>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let used = meta.accessed().ok().max(meta.modified().ok());
    *newest = (*newest).max(used);
    if meta.is_dir() {
        let Ok(rd) = std::fs::read_dir(path) else {
            return;
        };
        for e in rd.flatten() {
            walk(&e.path(), out, newest);
        }
    } else if meta.is_file() {
        out.push((inode_key(path, &meta), meta.len()));
    }
}

#[cfg(unix)]
fn inode_key(_: &Path, meta: &std::fs::Metadata) -> InodeKey {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn inode_key(path: &Path, _: &std::fs::Metadata) -> InodeKey {
    use std::hash::{Hash, Hasher};
    // No hardlink identity here: each path counts on its own.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    (0, h.finish())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when prune may remove objects from `cache`'s store: it lives in the cache and is
/// writable.
fn owns_store(cache: &Cache) -> bool {
    !cache.store_is_shared() && cache.store().is_writable()
}

/// Lists what prune manages in `cache`.
fn inventory(cache: &Cache) -> Result<Inventory, PruneError> {
    let mut inv = Inventory::default();
    let own = owns_store(cache);
    if own {
        let store = cache.store();
        for h in store.objects()? {
            let object = store.object_file(&h);
            let used = std::fs::metadata(&object)
                .ok()
                .and_then(|m| m.accessed().ok().max(m.modified().ok()));
            // A thin object's file bytes are its unpacked copy: both go together.
            let paths = vec![
                cache.store_unpacked_dir().join(h.to_hex()),
                cache.own_unpacked_dir().join(h.to_hex()),
                store.get_path(&h),
                store.thin_path(&h),
                store.sidecar_path(&h),
            ];
            inv.add(Item::Object(h), paths, used);
        }
        for file in files_below(&cache.wheel_records_dir()) {
            inv.add(Item::File(Kind::Store, file.clone()), vec![file], None);
        }
    } else {
        for dir in read_dir_paths(&cache.own_unpacked_dir()) {
            if let Some(h) = name_of(&dir).and_then(|n| n.parse::<ContentHash>().ok()) {
                inv.add(Item::Object(h), vec![dir], None);
            }
        }
    }
    for dir in read_dir_paths(&cache.layouts_dir()) {
        let Some(key) = name_of(&dir).filter(|n| n.parse::<ProjectHash>().is_ok()) else {
            continue;
        };
        // The manifest's mtime is the layout's last use (see `LayoutCache::install_cached`).
        let used = modified(&dir.join(crate::layout::MANIFEST_NAME));
        inv.add(Item::Layout(key.to_string()), vec![dir], used);
    }
    let mut trees: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in tree_files(cache) {
        if name_of(&file).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if let Some(key) = roots::tree_key(&file) {
            trees.entry(key).or_default().push(file);
        }
    }
    for (key, files) in trees {
        inv.add(Item::Tree(key), files, None);
    }
    for (kind, dir) in cache.kinds() {
        if matches!(
            kind,
            Kind::Downloads | Kind::Metadata | Kind::Pages | Kind::Selected
        ) {
            for file in files_below(&dir) {
                inv.add(Item::File(kind, file.clone()), vec![file], None);
            }
        }
    }
    Ok(inv)
}

/// The files below `dir`, temporaries left out.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for p in read_dir_paths(&d) {
            if name_of(&p).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

fn read_dir_paths(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn name_of(p: &Path) -> Option<&str> {
    p.file_name()?.to_str()
}

/// Whether `reached` keeps `item` (refetchable files are never reached: they stay unless
/// evicted; a lock's selections are reached by nothing either, but go at every sweep: the
/// next install makes the one it needs again from the lock, in about a millisecond, whereas
/// tracking which live root uses which would cost every warm install a write).
fn is_reached(reached: &Reached, item: &Item) -> bool {
    match item {
        Item::Object(h) => reached.objects.contains(h),
        Item::Layout(k) => reached.layouts.contains(k),
        Item::Tree(k) => reached.tree_keys.contains(k),
        Item::File(Kind::Selected, _) => false,
        Item::File(..) => true,
    }
}

/// Prunes `cache` as `opts` ask. Call under the cache's exclusive lock (a dry run: shared).
/// `is_mounted(path)` tells a live dx-py mount.
pub fn prune(
    cache: &Cache,
    opts: PruneOptions,
    is_mounted: &dyn Fn(&Path) -> bool,
) -> Result<PruneReport, PruneError> {
    let roots = check_roots(cache, is_mounted);
    let mut report = PruneReport {
        live: roots.live_roots(),
        dead: roots.dead.iter().map(|(_, r)| r.clone()).collect(),
        store_left: (!owns_store(cache)).then(|| cache.store_dir().to_path_buf()),
        ..PruneReport::default()
    };
    let mut inv = inventory(cache)?;
    report.size_before = inv.size;

    // Mark and sweep.
    let mut live = report.live.clone();
    let mut plan: Vec<Planned> = Vec::new();
    inv.take_unreached(&reach(cache, &live), Why::Unreached, &mut plan);

    if let Some(max) = opts.max_size {
        // Refetchable files, least recently used first.
        let mut files: Vec<(SystemTime, Item)> = inv
            .entries
            .iter()
            .filter(|(i, _)| matches!(i, Item::File(..)))
            .map(|(i, e)| (e.used, i.clone()))
            .collect();
        files.sort();
        for (_, item) in files {
            if inv.size <= max {
                break;
            }
            if let Some((entry, freed)) = inv.take(&item) {
                plan.push((item, entry, freed, Why::Evicted));
            }
        }
        // Then live venvs and locks, least recently used first; mounts never.
        let mut droppable: Vec<(SystemTime, Root)> = live
            .iter()
            .filter(|r| !matches!(r.uses, Uses::Tree(_)))
            .map(|r| (last_use(cache, r), r.clone()))
            .collect();
        droppable.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
        for (_, root) in droppable {
            if inv.size <= max {
                break;
            }
            live.retain(|r| r != &root);
            inv.take_unreached(&reach(cache, &live), Why::Evicted, &mut plan);
            report.stranded.push(root);
        }
        report.still_over = inv.size.saturating_sub(max);
    }
    report.size_after = inv.size;

    if !opts.dry_run {
        remove_in_order(cache, &plan)?;
        let dead_files = roots.dead.iter().map(|(f, _)| f);
        let corrupt_files = roots.corrupt.iter().map(|(f, _)| f);
        let stranded_files = roots
            .live
            .iter()
            .filter(|(_, r)| report.stranded.contains(r))
            .map(|(f, _)| f);
        for file in dead_files.chain(corrupt_files).chain(stranded_files) {
            super::remove_any(file)?;
        }
        // The venvs' lock files: no install holds one now (this runs under the exclusive cache
        // lock), and the next install into a venv makes its own again.
        super::remove_venv_locks(cache)?;
    }
    report.corrupt = roots.corrupt;
    report.removed = plan
        .into_iter()
        .map(|(item, _, bytes, why)| Removed { item, bytes, why })
        .collect();
    Ok(report)
}

/// When `root` was last used: its layout's last use for a venv, the lock file's last change.
fn last_use(cache: &Cache, root: &Root) -> SystemTime {
    let path = match &root.uses {
        Uses::Layout(key) => cache
            .layouts_dir()
            .join(key)
            .join(crate::layout::MANIFEST_NAME),
        Uses::Lock { .. } | Uses::Tree(_) => root.path.clone(),
    };
    modified(&path).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Where an entry goes in the removal order: referrers (layouts, trees) before what they link or
/// name (objects).
fn rank(item: &Item) -> u8 {
    match item {
        Item::Layout(_) => 0,
        Item::Tree(_) => 1,
        Item::File(..) => 2,
        Item::Object(_) => 3,
    }
}

/// Removes the planned entries, referrers before referents (see the module docs).
fn remove_in_order(cache: &Cache, plan: &[Planned]) -> Result<(), PruneError> {
    let layouts: BTreeSet<ProjectHash> = plan
        .iter()
        .filter_map(|(i, ..)| match i {
            Item::Layout(k) => k.parse().ok(),
            _ => None,
        })
        .collect();
    if !layouts.is_empty() {
        let store = cache.store();
        LayoutCache::open(&cache.layouts_dir(), &store)?.forget(&layouts)?;
    }
    let objects: BTreeSet<ContentHash> = plan
        .iter()
        .filter_map(|(i, ..)| match i {
            Item::Object(h) => Some(*h),
            _ => None,
        })
        .collect();
    let mut ordered: Vec<&Planned> = plan.iter().collect();
    ordered.sort_by_key(|(i, ..)| rank(i));
    let mut maps_done = false;
    for (item, entry, ..) in ordered {
        if rank(item) > 2 && !maps_done && owns_store(cache) {
            // Bytecode maps that name a package or a pack about to go.
            for map in bytecode_maps(cache) {
                let goes = objects.contains(&map.package)
                    || map.pack.is_some_and(|p| objects.contains(&p));
                if goes {
                    super::remove_any(&map.path)?;
                }
            }
            maps_done = true;
        }
        for path in &entry.paths {
            super::remove_any(path)?;
        }
    }
    Ok(())
}

/// A `--max-size` value that is not a size.
#[derive(Debug, thiserror::Error)]
#[error(
    "Invalid size `{0}`: expected a number of bytes with an optional unit, e.g. `500M`, `2GiB`, `10G`"
)]
pub struct SizeError(String);

/// Parses a size: a whole number of bytes with an optional unit (`K`, `M`, `G`, `T`, each
/// also as `KB`/`KiB`…; all powers of 1024, as `cache stats` prints them).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let bad = || SizeError(text.to_string());
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    number.checked_mul(1u64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eviction stops as soon as the cache fits, taking the least recently used first; a file
    /// held twice (hardlinked) counts once and is freed only with its last holder.
    #[test]
    #[cfg(unix)]
    fn max_size_evicts_oldest_first_until_it_fits() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path(), None);
        let dir = cache.downloads_dir().join("ab");
        fs_err::create_dir_all(&dir).unwrap();
        let now = SystemTime::now();
        for (name, len, age) in [("old", 100, 300), ("mid", 200, 200), ("new", 400, 100)] {
            let path = dir.join(name);
            fs_err::write(&path, vec![0u8; len]).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            let t = now - std::time::Duration::from_secs(age);
            f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
                .unwrap();
        }
        // Metadata holds a hardlink of `new`: 700 bytes in all, not 1100.
        let meta = cache.metadata_dir();
        fs_err::create_dir_all(&meta).unwrap();
        std::fs::hard_link(dir.join("new"), meta.join("new")).unwrap();
        let dry = PruneOptions {
            dry_run: true,
            max_size: Some(450),
        };
        let report = prune(&cache, dry, &|_| false).unwrap();
        assert_eq!(report.size_before, 700);
        let gone: Vec<_> = report
            .removed
            .iter()
            .map(|r| (r.item.clone(), r.bytes))
            .collect();
        assert_eq!(
            gone,
            [
                (Item::File(Kind::Downloads, dir.join("old")), 100),
                (Item::File(Kind::Downloads, dir.join("mid")), 200),
            ]
        );
        assert!(dir.join("old").exists(), "a dry run removes nothing");
        // 400 bytes fit only once every holder of `new` is gone.
        let report = prune(
            &cache,
            PruneOptions {
                dry_run: false,
                max_size: Some(399),
            },
            &|_| false,
        )
        .unwrap();
        assert_eq!(report.size_after, 0);
        assert_eq!(report.removed.len(), 4);
        assert_eq!(report.removed.iter().map(|r| r.bytes).sum::<u64>(), 700);
        assert!(!dir.join("new").exists() && !meta.join("new").exists());
    }

    #[test]
    fn sizes_parse_with_units_and_reject_the_rest() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("5MiB").unwrap(), 5 << 20);
        assert_eq!(parse_size("1 GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("3t").unwrap(), 3 << 40);
        for bad in ["", "M", "1.5G", "-1", "12Q", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
