//! Builds `.dxtree` bytes from a package set: the merged venv tree, numbered once.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::dxpkg::{DxpkgError, EntryKind, PackageLayout, Scheme};
use crate::hash::ContentHash;
use crate::python::VenvShape;
use crate::store::{PackageStore, StoreError};

use super::format::*;
use crate::format::bytes::{put_i64, put_u16, put_u32, put_u64};

/// Where each install scheme of one package goes in the tree: a `/`-separated directory
/// relative to the tree's root (`""` is the root itself), or `None` to leave it out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PackPlacement {
    /// `Scheme::SitePackages`, e.g. `lib/python3.11/site-packages`.
    pub site_packages: Option<String>,
    /// `Scheme::Scripts`, e.g. `bin`. `#!python` shebangs are rewritten to the venv trampoline.
    pub scripts: Option<String>,
    /// `Scheme::Headers`, e.g. `include/site/python3.11/<name>`.
    pub headers: Option<String>,
    /// `Scheme::Data`, normally the root.
    pub data: Option<String>,
}

impl PackPlacement {
    /// The venv layout of `shape` for a distribution called `name`: site-packages in
    /// `shape.site_packages()`, scripts in its bin directory, headers in `shape.headers(name)`,
    /// data at the venv root (as pip installs them).
    pub fn venv(shape: &VenvShape, name: &str) -> Self {
        Self {
            site_packages: Some(shape.site_packages()),
            scripts: Some(shape.bin_dir().to_string()),
            headers: Some(shape.headers(name)),
            data: Some(String::new()),
        }
    }

    /// Only site-packages, in `shape.site_packages()`: where bytecode packs go.
    pub fn site_packages_only(shape: &VenvShape) -> Self {
        Self {
            site_packages: Some(shape.site_packages()),
            scripts: None,
            headers: None,
            data: None,
        }
    }

    fn prefix(&self, scheme: Scheme) -> Option<&str> {
        match scheme {
            Scheme::SitePackages => self.site_packages.as_deref(),
            Scheme::Scripts => self.scripts.as_deref(),
            Scheme::Headers => self.headers.as_deref(),
            Scheme::Data => self.data.as_deref(),
        }
    }
}

/// A file that exists only in the tree (`pyvenv.cfg`, console-script launchers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticFile {
    /// `/`-separated path relative to the root.
    pub path: String,
    /// Contents, stored inline in the tree file.
    pub bytes: Vec<u8>,
    /// Permission bits; write bits are dropped (the tree is served read-only).
    pub mode: u32,
}

/// Everything a tree is made of. Later sources win: packs in order, then `files`, then
/// `symlinks`; a file given twice keeps the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeSpec {
    /// Store objects and where their schemes go.
    pub packs: Vec<(ContentHash, PackPlacement)>,
    /// Files made by the installer.
    pub files: Vec<SyntheticFile>,
    /// `(path, target)`: symlinks such as `bin/python -> /usr/bin/python3.11`. Targets are kept
    /// as given (absolute targets are allowed here, unlike inside packages).
    pub symlinks: Vec<(String, String)>,
}

/// A reason a tree cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TreeBuildError {
    /// A pack is missing from the store or cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pack's entries cannot be read.
    #[error("Package `{hash}` is unreadable")]
    Package {
        /// The pack.
        hash: ContentHash,
        /// What is wrong with it.
        #[source]
        source: DxpkgError,
    },
    /// A path that is empty, absolute, has `.`/`..` or empty components, a NUL or a backslash,
    /// or a component longer than 255 bytes.
    #[error("Unsafe path `{path}` in {origin}")]
    UnsafePath {
        /// Where the path came from (`package <hash>`, `synthetic files`).
        origin: String,
        /// The path.
        path: String,
    },
    /// A package symlink whose target leaves its scheme's directory.
    #[error("Symlink `{path}` in package `{hash}` points outside its package: `{target}`")]
    EscapingLink {
        /// The pack.
        hash: ContentHash,
        /// The link's path in the package.
        path: String,
        /// Its target.
        target: String,
    },
    /// A planned package's layout lacks the bytes of a script or link (which the tree needs).
    #[error("The layout of package `{hash}` lacks the bytes of `{path}`")]
    BytesNotLaidOut {
        /// The planned pack's key.
        hash: ContentHash,
        /// The entry.
        path: String,
    },
    /// One source has a directory where another has a file.
    #[error("`{path}` is a directory in one source and a file in {origin}")]
    Conflict {
        /// The clashing path in the tree.
        path: String,
        /// The later source.
        origin: String,
    },
    /// More inodes or name bytes than the format's 32-bit fields hold.
    #[error("The tree is too large for the .dxtree format: {0}")]
    TooLarge(&'static str),
    /// The tree file could not be written.
    #[error("Cannot write the tree file `{path}`")]
    Write {
        /// The tree file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

enum Data {
    Pack { pack: u32, offset: u64 },
    Inline(Vec<u8>),
}

enum Pending {
    Dir(BTreeMap<String, usize>),
    Leaf {
        kind: NodeKind,
        mode: u32,
        size: u64,
        data: Data,
    },
}

struct Arena {
    nodes: Vec<Pending>,
}

/// One entry of a pack, stored (read from its object) or planned (from its layout).
struct PackEntry<'a> {
    scheme: Scheme,
    path: &'a str,
    kind: EntryKind,
    mode: u32,
    /// Absolute, in the object.
    data_offset: u64,
    len: u64,
    /// The bytes, when at hand: always for stored packs, for scripts and links of planned ones.
    bytes: Option<&'a [u8]>,
}

/// Splits `path` into safe components, or `None`.
fn components(path: &str) -> Option<Vec<&str>> {
    if path.is_empty() || path.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    parts
        .iter()
        .all(|p| valid_name(p.as_bytes()) && p.len() <= 255)
        .then_some(parts)
}

/// True when a link at `link_path` pointing at `target` stays inside the link's scheme root.
fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains(['\0', '\\']) {
        return false;
    }
    let mut depth = link_path.split('/').count().saturating_sub(1);
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

impl Arena {
    fn new() -> Self {
        Self {
            nodes: vec![Pending::Dir(BTreeMap::new())],
        }
    }

    /// Places one entry of pack `index` (object `hash`) where `placement` puts its scheme.
    fn add_entry(
        &mut self,
        entry: &PackEntry<'_>,
        hash: ContentHash,
        index: u32,
        placement: &PackPlacement,
    ) -> Result<(), TreeBuildError> {
        let origin = || format!("package `{hash}`");
        let Some(prefix) = placement.prefix(entry.scheme) else {
            return Ok(());
        };
        if components(entry.path).is_none() {
            return Err(TreeBuildError::UnsafePath {
                origin: origin(),
                path: entry.path.to_string(),
            });
        }
        let full = join(prefix, entry.path);
        let parts = components(&full).ok_or_else(|| TreeBuildError::UnsafePath {
            origin: origin(),
            path: full.clone(),
        })?;
        let pack_data = Data::Pack {
            pack: index,
            offset: entry.data_offset,
        };
        let needs_bytes = entry.kind == EntryKind::Symlink || entry.scheme == Scheme::Scripts;
        let bytes = match entry.bytes {
            Some(bytes) => bytes,
            None if needs_bytes => {
                return Err(TreeBuildError::BytesNotLaidOut {
                    hash,
                    path: entry.path.to_string(),
                });
            }
            None => &[],
        };
        let leaf = match entry.kind {
            EntryKind::File => {
                let exec = entry.mode & 0o111 != 0 || entry.scheme == Scheme::Scripts;
                let mode = if exec { 0o555 } else { 0o444 };
                let rewritten = (entry.scheme == Scheme::Scripts)
                    .then(|| crate::scripts::rewrite_shebang(bytes))
                    .flatten();
                match rewritten {
                    Some(bytes) => Pending::Leaf {
                        kind: NodeKind::File,
                        mode,
                        size: bytes.len() as u64,
                        data: Data::Inline(bytes),
                    },
                    None => Pending::Leaf {
                        kind: NodeKind::File,
                        mode,
                        size: entry.len,
                        data: pack_data,
                    },
                }
            }
            EntryKind::Symlink => {
                let target = std::str::from_utf8(bytes).unwrap_or("");
                if !link_stays_inside(entry.path, target) {
                    return Err(TreeBuildError::EscapingLink {
                        hash,
                        path: entry.path.to_string(),
                        target: String::from_utf8_lossy(bytes).into_owned(),
                    });
                }
                Pending::Leaf {
                    kind: NodeKind::Symlink,
                    mode: 0o777,
                    size: entry.len,
                    data: pack_data,
                }
            }
        };
        self.insert(&parts, leaf, &origin)
    }

    /// Places a leaf at `parts`, creating directories; an existing leaf there is replaced.
    fn insert(
        &mut self,
        parts: &[&str],
        leaf: Pending,
        origin: &dyn Fn() -> String,
    ) -> Result<(), TreeBuildError> {
        let conflict = |upto: usize| TreeBuildError::Conflict {
            path: parts[..upto].join("/"),
            origin: origin(),
        };
        let Some((last, dirs)) = parts.split_last() else {
            return Err(conflict(0));
        };
        let mut cur = 0;
        for (depth, part) in dirs.iter().enumerate() {
            let next = self.nodes.len();
            let Pending::Dir(children) = &mut self.nodes[cur] else {
                return Err(conflict(depth));
            };
            match children.get(*part) {
                Some(&id) => cur = id,
                None => {
                    children.insert((*part).to_string(), next);
                    self.nodes.push(Pending::Dir(BTreeMap::new()));
                    cur = next;
                }
            }
        }
        let next = self.nodes.len();
        let Pending::Dir(children) = &mut self.nodes[cur] else {
            return Err(conflict(dirs.len()));
        };
        match children.get(*last) {
            Some(&id) => {
                if matches!(self.nodes[id], Pending::Dir(_)) {
                    return Err(conflict(parts.len()));
                }
                self.nodes[id] = leaf;
            }
            None => {
                children.insert((*last).to_string(), next);
                self.nodes.push(leaf);
            }
        }
        Ok(())
    }
}

fn join(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        path.to_string()
    } else {
        format!("{prefix}/{path}")
    }
}

impl TreeSpec {
    /// Reads every pack's index from `store` and lays out the merged tree: O(files). The
    /// result is deterministic (same spec and objects, same bytes).
    pub fn build(&self, store: &PackageStore) -> Result<Vec<u8>, TreeBuildError> {
        self.build_with(store, &HashMap::new())
    }

    /// [`build`](Self::build), with the packs named in `planned` not read from the store but
    /// laid out from their [`PackageLayout`]: packages being stored while the tree is served.
    /// Their pack records carry the key given here and the length the object will have.
    pub fn build_with(
        &self,
        store: &PackageStore,
        planned: &HashMap<ContentHash, &PackageLayout>,
    ) -> Result<Vec<u8>, TreeBuildError> {
        let mut arena = Arena::new();
        let mut packs: Vec<(ContentHash, u64)> = Vec::new();
        let mut pack_index: HashMap<ContentHash, u32> = HashMap::new();
        for (hash, placement) in &self.packs {
            let stored;
            let (len, entries): (u64, Box<dyn Iterator<Item = Result<PackEntry<'_>, _>>>) =
                match planned.get(hash) {
                    Some(layout) => {
                        let entries = layout.entries.iter().map(|(e, bytes)| {
                            Ok(PackEntry {
                                scheme: e.scheme,
                                path: &e.path,
                                kind: e.kind,
                                mode: e.mode,
                                data_offset: e.data_offset,
                                len: e.len,
                                bytes: bytes.as_deref(),
                            })
                        });
                        (layout.len, Box::new(entries))
                    }
                    None => {
                        stored = store.get(hash)?;
                        let reader = stored.reader();
                        // Symlink targets and scripts are copied into the tree: checked first.
                        for e in reader.entries().flatten() {
                            if e.kind == EntryKind::Symlink || e.scheme == Scheme::Scripts {
                                stored.entry_data(&e)?;
                            }
                        }
                        let stored = &stored;
                        let entries = reader.entries().map(move |entry| {
                            entry.map(|e| PackEntry {
                                scheme: e.scheme,
                                path: e.path,
                                kind: e.kind,
                                mode: e.mode,
                                data_offset: e.data_offset,
                                len: e.len,
                                // Checked above where the tree needs them; a thin pack's
                                // entries carry no data of their own.
                                bytes: stored.entry_data(&e).ok(),
                            })
                        });
                        (stored.object_len(), Box::new(entries))
                    }
                };
            let index = match pack_index.get(hash) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(packs.len())
                        .map_err(|_| TreeBuildError::TooLarge("packs"))?;
                    packs.push((*hash, len));
                    pack_index.insert(*hash, i);
                    i
                }
            };
            for entry in entries {
                let entry = entry.map_err(|source| TreeBuildError::Package {
                    hash: *hash,
                    source,
                })?;
                arena.add_entry(&entry, *hash, index, placement)?;
            }
        }
        let synthetic = || "synthetic files".to_string();
        for file in &self.files {
            let parts = components(&file.path).ok_or_else(|| TreeBuildError::UnsafePath {
                origin: synthetic(),
                path: file.path.clone(),
            })?;
            let leaf = Pending::Leaf {
                kind: NodeKind::File,
                mode: file.mode & 0o555,
                size: file.bytes.len() as u64,
                data: Data::Inline(file.bytes.clone()),
            };
            arena.insert(&parts, leaf, &synthetic)?;
        }
        for (path, target) in &self.symlinks {
            let parts = components(path).ok_or_else(|| TreeBuildError::UnsafePath {
                origin: synthetic(),
                path: path.clone(),
            })?;
            if target.is_empty() || target.contains('\0') {
                return Err(TreeBuildError::UnsafePath {
                    origin: synthetic(),
                    path: format!("{path} -> {target}"),
                });
            }
            let leaf = Pending::Leaf {
                kind: NodeKind::Symlink,
                mode: 0o777,
                size: target.len() as u64,
                data: Data::Inline(target.as_bytes().to_vec()),
            };
            arena.insert(&parts, leaf, &synthetic)?;
        }
        encode(&arena, &packs)
    }

    /// Builds the tree and publishes it at `path` atomically (readers see the old file or the
    /// new one, never a torn one).
    pub fn build_to_file(&self, store: &PackageStore, path: &Path) -> Result<(), TreeBuildError> {
        let bytes = self.build(store)?;
        write_tree(path, &bytes)
    }
}

/// Publishes tree bytes at `path` through a temporary file and a rename.
pub fn write_tree(path: &Path, bytes: &[u8]) -> Result<(), TreeBuildError> {
    let write = |source| TreeBuildError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir).map_err(write)?;
    }
    crate::atomic::replace(path, bytes).map_err(write)
}

/// Numbers the reachable nodes in one preorder DFS (children by name) and writes the sections.
fn encode(arena: &Arena, packs: &[(ContentHash, u64)]) -> Result<Vec<u8>, TreeBuildError> {
    // order[ino - 1] = arena id; ino_of[arena id] = ino.
    let mut order: Vec<usize> = Vec::new();
    let mut ino_of = vec![0u32; arena.nodes.len()];
    let mut stack = vec![0usize];
    while let Some(id) = stack.pop() {
        order.push(id);
        ino_of[id] = u32::try_from(order.len()).map_err(|_| TreeBuildError::TooLarge("inodes"))?;
        if let Pending::Dir(children) = &arena.nodes[id] {
            stack.extend(children.values().rev());
        }
    }
    let inode_count = u32::try_from(order.len()).map_err(|_| TreeBuildError::TooLarge("inodes"))?;
    // Names are stored once per inode, in inode order; parents come from the directories.
    let mut parent_of = vec![1u32; arena.nodes.len()];
    let mut name_of: Vec<&str> = vec![""; arena.nodes.len()];
    for &id in &order {
        if let Pending::Dir(children) = &arena.nodes[id] {
            for (name, &child) in children {
                parent_of[child] = ino_of[id];
                name_of[child] = name;
            }
        }
    }

    let mut inodes = Vec::with_capacity(order.len() * INODE_LEN);
    let mut children_table: Vec<u8> = Vec::with_capacity(order.len().saturating_sub(1) * CHILD_LEN);
    let mut names: Vec<u8> = Vec::new();
    let mut inline: Vec<u8> = Vec::new();
    let too_large = |what| TreeBuildError::TooLarge(what);
    for &id in &order {
        let name = name_of[id].as_bytes();
        let name_off = u32::try_from(names.len()).map_err(|_| too_large("names"))?;
        names.extend_from_slice(name);
        let mut rec = [0u8; INODE_LEN];
        put_u32(&mut rec, I_PARENT, parent_of[id]);
        put_u32(&mut rec, I_NAME_OFF, name_off);
        put_u16(&mut rec, I_NAME_LEN, name.len() as u16);
        let (kind, source, mode, size, offset, pack, nlink) = match &arena.nodes[id] {
            Pending::Dir(children) => {
                let first = (children_table.len() / CHILD_LEN) as u64;
                let mut subdirs = 0u32;
                for &child in children.values() {
                    children_table.extend_from_slice(&ino_of[child].to_le_bytes());
                    subdirs += u32::from(matches!(arena.nodes[child], Pending::Dir(_)));
                }
                (
                    NodeKind::Dir,
                    SOURCE_NONE,
                    0o555,
                    children.len() as u64,
                    first,
                    0,
                    subdirs + 2,
                )
            }
            Pending::Leaf {
                kind,
                mode,
                size,
                data,
            } => match data {
                Data::Pack { pack, offset } => {
                    (*kind, SOURCE_PACK, *mode, *size, *offset, *pack, 1)
                }
                Data::Inline(bytes) => {
                    let offset = inline.len() as u64;
                    inline.extend_from_slice(bytes);
                    (*kind, SOURCE_INLINE, *mode, *size, offset, 0, 1)
                }
            },
        };
        rec[I_KIND] = kind as u8;
        rec[I_SOURCE] = source;
        put_u32(&mut rec, I_MODE, mode);
        put_u64(&mut rec, I_SIZE, size);
        put_u64(&mut rec, I_OFFSET, offset);
        put_u32(&mut rec, I_PACK, pack);
        put_u32(&mut rec, I_NLINK, nlink);
        inodes.extend_from_slice(&rec);
    }

    let pack_count = u32::try_from(packs.len()).map_err(|_| too_large("packs"))?;
    let packs_off = HEADER_LEN;
    let inodes_off = packs_off + packs.len() * PACK_LEN;
    let children_off = inodes_off + inodes.len();
    let names_off = children_off + children_table.len();
    let inline_off = names_off + names.len();
    let total = inline_off + inline.len();

    let mut out = Vec::with_capacity(total);
    let mut header = [0u8; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(&MAGIC);
    put_u32(&mut header, H_VERSION, VERSION);
    put_u32(&mut header, H_INODE_COUNT, inode_count);
    put_u32(&mut header, H_PACK_COUNT, pack_count);
    put_u32(&mut header, H_CHILD_COUNT, inode_count - 1);
    put_i64(&mut header, H_MTIME, FIXED_MTIME);
    put_u64(&mut header, H_PACKS_OFF, packs_off as u64);
    put_u64(&mut header, H_INODES_OFF, inodes_off as u64);
    put_u64(&mut header, H_CHILDREN_OFF, children_off as u64);
    put_u64(&mut header, H_NAMES_OFF, names_off as u64);
    put_u64(&mut header, H_NAMES_LEN, names.len() as u64);
    put_u64(&mut header, H_INLINE_OFF, inline_off as u64);
    put_u64(&mut header, H_INLINE_LEN, inline.len() as u64);
    out.extend_from_slice(&header);
    for (hash, size) in packs {
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(&size.to_le_bytes());
    }
    out.extend_from_slice(&inodes);
    out.extend_from_slice(&children_table);
    out.extend_from_slice(&names);
    out.extend_from_slice(&inline);
    debug_assert_eq!(out.len(), total);
    let sum = super::reader::checksum(&out);
    out[H_CHECKSUM..H_CHECKSUM + 32].copy_from_slice(&sum);
    Ok(out)
}
