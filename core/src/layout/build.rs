//! Building a layout tree: merge the packages' unpacked trees into one plan, then place every
//! file by hard link, symlink or copy.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifest::{LinkCounts, MANIFEST_NAME};
use super::{LayoutError, LayoutManifest, LayoutPackage, LayoutSpec, LinkMode, ProjectHash};
use crate::names::normalize_name;
use crate::store::PackageStore;

/// The top-level directories of an unpacked tree that a layout merges.
pub(crate) const SCHEME_DIRS: [&str; 4] = ["site-packages", "bin", "headers", "data"];

/// Threads for a layout's file-system work (unpacking packages, listing their trees, placing
/// files): mostly kernel time in directory and inode operations, which runs in parallel.
const FS_THREADS: usize = 4;

/// What a plan entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    /// A symlink shipped inside a package (relative, staying inside it): recreated as it is.
    Symlink,
}

/// One path of the merged tree and where it comes from.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// Absolute source path (empty for directories the layout always has).
    pub(crate) src: PathBuf,
    pub(crate) kind: Kind,
    /// Index into the ordered packages; `usize::MAX` for the layout's own directories.
    pub(crate) package: usize,
    /// File size (0 for directories and symlinks).
    pub(crate) size: u64,
}

/// The merged tree: relative path -> item, parents sorted before their children.
pub(crate) type Plan = BTreeMap<PathBuf, Item>;

/// The spec's packages in canonical order (normalized name, version, hash), exact duplicates
/// dropped: the order the project hash uses, so that the same hash always means the same tree
/// even when two packages ship the same file.
pub(crate) fn ordered_packages(spec: &LayoutSpec) -> Vec<&LayoutPackage> {
    let mut keyed: Vec<_> = spec
        .packages
        .iter()
        .map(|p| ((normalize_name(&p.name), p.version.as_str(), p.hash), p))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// The source roots, in merge order: each package's unpacked tree, then its extra trees.
pub(crate) fn sources(
    store: &PackageStore,
    ordered: &[&LayoutPackage],
) -> Result<Vec<(usize, PathBuf)>, LayoutError> {
    // Unpacking is mostly kernel time in inode allocation, which runs in parallel on ext4
    // (measured: a cold install of the large set spent 3 s unpacking one package at a time
    // where uv's parallel unzip spent under 2 s), so packages unpack on a few threads.
    let roots = crate::parallel::map_in_order(ordered, FS_THREADS, |p| store.unpacked(&p.hash));
    let mut out = Vec::new();
    for ((i, p), root) in ordered.iter().enumerate().zip(roots) {
        let root = root.map_err(|source| LayoutError::Store {
            name: p.name.clone(),
            hash: p.hash,
            source: Box::new(source),
        })?;
        out.push((i, absolute(&root)?));
        for extra in &p.extra_trees {
            let meta = fs_err::metadata(extra)?;
            if !meta.is_dir() {
                return Err(LayoutError::Fs {
                    action: "merge the extra tree",
                    path: extra.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "expected a directory",
                    ),
                });
            }
            out.push((i, absolute(extra)?));
        }
    }
    Ok(out)
}

fn absolute(path: &Path) -> Result<PathBuf, LayoutError> {
    std::path::absolute(path).map_err(LayoutError::fs("make absolute", path))
}

/// One entry of a source tree, as [`walk`] finds it.
struct Found {
    rel: PathBuf,
    src: PathBuf,
    kind: Kind,
    size: u64,
}

/// Lists a source tree's scheme directories, parents before children. Mostly `readdir` and
/// `stat` calls, so [`plan`] walks the trees on a few threads.
fn walk(root: &Path) -> Result<Vec<Found>, LayoutError> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = SCHEME_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|rel| root.join(rel).is_dir())
        .collect();
    for rel in &stack {
        found.push(Found {
            rel: rel.clone(),
            src: root.join(rel),
            kind: Kind::Dir,
            size: 0,
        });
    }
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let src = entry.path();
            let ty = entry
                .file_type()
                .map_err(LayoutError::fs("read the type of", &src))?;
            let (kind, size) = if ty.is_dir() {
                stack.push(child.clone());
                (Kind::Dir, 0)
            } else if ty.is_symlink() {
                (Kind::Symlink, 0)
            } else if ty.is_file() {
                let meta = entry.metadata().map_err(LayoutError::fs("stat", &src))?;
                (Kind::File, meta.len())
            } else {
                return Err(LayoutError::FileType(src));
            };
            found.push(Found {
                rel: child,
                src,
                kind,
                size,
            });
        }
    }
    Ok(found)
}

/// Merges the source trees. Directories merge (namespace packages become real directories); a
/// file shipped by two packages goes to the later one, with a warning, as pip does.
pub(crate) fn plan(sources: &[(usize, PathBuf)], names: &[String]) -> Result<Plan, LayoutError> {
    let mut plan = Plan::new();
    plan.insert(
        PathBuf::from("site-packages"),
        Item {
            src: PathBuf::new(),
            kind: Kind::Dir,
            package: usize::MAX,
            size: 0,
        },
    );
    let name = |i: usize| names.get(i).map_or("<layout>", String::as_str).to_string();
    let walked = crate::parallel::map_in_order(sources, FS_THREADS, |(_, root)| walk(root));
    for ((package, _), found) in sources.iter().zip(walked) {
        for Found {
            rel,
            src,
            kind,
            size,
        } in found?
        {
            if kind == Kind::Dir {
                insert_dir(&mut plan, &rel, src, *package, &name)?;
                continue;
            }
            match plan.get(&rel) {
                Some(old) if old.kind == Kind::Dir => {
                    return Err(LayoutError::Conflict {
                        path: rel,
                        dir_package: name(old.package),
                        file_package: name(*package),
                    });
                }
                Some(old) if old.package != *package => {
                    tracing::warn!(
                        "`{}` is in both `{}` and `{}`; using the one from `{}`",
                        rel.display(),
                        name(old.package),
                        name(*package),
                        name(*package)
                    );
                }
                // Same package: an extra tree overriding the package's own file.
                _ => {}
            }
            plan.insert(
                rel,
                Item {
                    src,
                    kind,
                    package: *package,
                    size,
                },
            );
        }
    }
    Ok(plan)
}

fn insert_dir(
    plan: &mut Plan,
    rel: &Path,
    src: PathBuf,
    package: usize,
    name: &impl Fn(usize) -> String,
) -> Result<(), LayoutError> {
    match plan.get(rel) {
        Some(old) if old.kind != Kind::Dir => Err(LayoutError::Conflict {
            path: rel.to_path_buf(),
            dir_package: name(package),
            file_package: name(old.package),
        }),
        Some(_) => Ok(()),
        None => {
            plan.insert(
                rel.to_path_buf(),
                Item {
                    src,
                    kind: Kind::Dir,
                    package,
                    size: 0,
                },
            );
            Ok(())
        }
    }
}

/// Creates the planned tree under `dest` (which exists and is empty). `strongest` is the best
/// mode to try: hard links, then symlinks, then copies. Directories come first, parents before
/// children (the plan's order); then files and links are placed on a few threads, since each
/// is a directory-entry operation in the kernel and those run in parallel (in different
/// directories).
pub(crate) fn materialize(
    plan: &Plan,
    dest: &Path,
    strongest: LinkMode,
) -> Result<(LinkCounts, u64, u64), LayoutError> {
    let mut dirs = 0u64;
    let mut leaves = Vec::with_capacity(plan.len());
    for (rel, item) in plan {
        if item.kind == Kind::Dir {
            fs_err::create_dir(dest.join(rel))?;
            dirs += 1;
        } else {
            leaves.push((rel, item));
        }
    }
    let chunks: Vec<_> = leaves.chunks(PLACE_CHUNK).collect();
    let placed = crate::parallel::map_in_order(&chunks, FS_THREADS, |chunk| {
        place_leaves(chunk, dest, strongest)
    });
    let (mut links, mut bytes) = (LinkCounts::default(), 0u64);
    for result in placed {
        let (l, b) = result?;
        links.hardlink += l.hardlink;
        links.symlink += l.symlink;
        links.copy += l.copy;
        links.package_symlink += l.package_symlink;
        bytes += b;
    }
    Ok((links, dirs, bytes))
}

/// Files one thread places at a time: neighbours in the plan share a directory.
const PLACE_CHUNK: usize = 512;

/// Places files and package symlinks; returns what was made and the bytes of the files.
fn place_leaves(
    leaves: &[(&PathBuf, &Item)],
    dest: &Path,
    strongest: LinkMode,
) -> Result<(LinkCounts, u64), LayoutError> {
    let mut links = LinkCounts::default();
    let mut bytes = 0u64;
    for (rel, item) in leaves {
        let to = dest.join(rel);
        if item.kind == Kind::Symlink {
            let target = fs_err::read_link(&item.src)?;
            package_symlink(&target, &item.src, &to)?;
            links.package_symlink += 1;
            continue;
        }
        match place_file(&item.src, &to, strongest)? {
            LinkMode::Hardlink => links.hardlink += 1,
            LinkMode::Symlink => links.symlink += 1,
            LinkMode::Copy => links.copy += 1,
        }
        bytes += item.size;
    }
    Ok((links, bytes))
}

/// Hard link, else symlink, else copy. A hard link keeps `realpath(__file__)` inside the layout,
/// so sibling lookups (`numpy.libs`) see the whole merged tree; a symlink resolves into the
/// package's own unpacked tree, still a complete `site-packages` for that package.
fn place_file(src: &Path, to: &Path, strongest: LinkMode) -> Result<LinkMode, LayoutError> {
    if strongest == LinkMode::Hardlink {
        match std::fs::hard_link(src, to) {
            Ok(()) => return Ok(LinkMode::Hardlink),
            Err(e) if link_impossible(&e) => {
                tracing::debug!(
                    "hard link `{}` failed ({e}); trying a symlink",
                    to.display()
                );
            }
            Err(e) => return Err(LayoutError::fs("hard-link", to)(e)),
        }
    }
    if strongest != LinkMode::Copy {
        match symlink_file(src, to) {
            Ok(()) => return Ok(LinkMode::Symlink),
            Err(e) if link_impossible(&e) => {
                tracing::debug!("symlink `{}` failed ({e}); copying", to.display());
            }
            Err(e) => return Err(LayoutError::fs("symlink", to)(e)),
        }
    }
    fs_err::copy(src, to)?;
    Ok(LinkMode::Copy)
}

/// Errors that mean "this kind of link cannot be made here", not "something is broken":
/// another filesystem (EXDEV), too many links (EMLINK), not allowed or not supported.
fn link_impossible(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::CrossesDevices | K::TooManyLinks | K::PermissionDenied | K::Unsupported
    )
}

#[cfg(unix)]
fn symlink_file(src: &Path, to: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(src, to)
}

#[cfg(windows)]
fn symlink_file(src: &Path, to: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(src, to)
}

#[cfg(unix)]
fn package_symlink(target: &Path, _src: &Path, to: &Path) -> Result<(), LayoutError> {
    std::os::unix::fs::symlink(target, to).map_err(LayoutError::fs("symlink", to))
}

#[cfg(windows)]
fn package_symlink(_target: &Path, src: &Path, to: &Path) -> Result<(), LayoutError> {
    // Without symlink privileges, keep what the link points to.
    fs_err::copy(src, to)?;
    Ok(())
}

/// Builds the whole layout for `spec` under `dest` and writes its manifest last (fsynced).
pub(crate) fn build_tree(
    store: &PackageStore,
    spec: &LayoutSpec,
    hash: &ProjectHash,
    dest: &Path,
    strongest: LinkMode,
    created: u64,
) -> Result<LayoutManifest, LayoutError> {
    let ordered = ordered_packages(spec);
    let names: Vec<String> = ordered.iter().map(|p| p.name.clone()).collect();
    let sources = sources(store, &ordered)?;
    let plan = plan(&sources, &names)?;
    let (links, dirs, bytes) = materialize(&plan, dest, strongest)?;
    let manifest = LayoutManifest::new(hash, spec, &ordered, links, dirs, bytes, created);
    let path = dest.join(MANIFEST_NAME);
    let mut file = fs_err::File::create(&path)?;
    std::io::Write::write_all(&mut file, &manifest.to_bytes())?;
    file.sync_all()?;
    Ok(manifest)
}
