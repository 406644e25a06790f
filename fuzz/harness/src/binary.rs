//! The binary formats dx-py maps and reads in place: DPL locks, `.dxpkg` objects, `.dxtree`
//! trees and the DXLC layout index.
//!
//! Their checksums would stop a byte-flipping fuzzer at the door, so the first byte of an input
//! picks a mode: odd = recompute every checksum of the rest first (as someone crafting a file
//! would), so that the fuzzer also explores what lies behind them.
use dx_py_core::dpl::{DplBuilder, DplReader, UniversalDplReader, format_version};
use dx_py_core::dxpkg::{DxpkgReader, Scheme};
use dx_py_core::layout::{LayoutIndex, ProjectHash, encode_index};
use dx_py_core::tree::{DataSource, Node, NodeKind, Tree};

/// Names every DPL lookup tries besides the file's own.
const PROBE_NAMES: [&str; 5] = [
    "",
    "requests",
    "Typing_Extensions",
    "a--b",
    "zope.interface",
];

/// Runs `body` on the input after its mode byte, resealed by `reseal` when the mode is odd.
fn with_mode(data: &[u8], reseal: fn(&mut [u8]), body: fn(&[u8])) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let mut forged = rest.to_vec();
        reseal(&mut forged);
        body(&forged);
    } else {
        body(rest);
    }
}

/// `DplReader::from_bytes`, then every accessor, lookup and rendering (mode byte first).
pub fn dpl_reader(data: &[u8]) {
    with_mode(data, dx_py_core::dpl::reseal, dpl_bytes);
}

pub(crate) fn dpl_bytes(data: &[u8]) {
    if format_version(data) == Ok(2) {
        universal_dpl_bytes(data);
        return;
    }
    let Ok(r) = DplReader::from_bytes(data) else {
        return;
    };
    let verified = r.verify().is_ok();
    let _ = (r.environment(), r.python_version(), r.requires_python());
    let _ = (r.inputs_hash(), r.meta(), r.render_header());
    for i in 0..r.len().min(512) {
        let Ok(e) = r.entry(i) else { continue };
        let _ = (
            e.name(),
            e.version(),
            e.marker(),
            e.requires_python(),
            e.index_url(),
        );
        let _ = (e.wheel().sha256_hex(), e.store_hash(), e.extras_bitmap());
        let _ = (
            e.extras().count(),
            e.selected_extras().count(),
            e.has_extra("x"),
        );
        for d in e.dependencies() {
            // Every edge was range-checked when the entry was read.
            assert!((d as usize) < r.len());
        }
        let found = r.get(e.name());
        if verified {
            let found = found.ok().flatten().map(|f| f.index());
            assert_eq!(found, Some(e.index()), "entry {i} not found by its name");
        }
        let _ = r.render_entry(i);
    }
    for name in PROBE_NAMES {
        let _ = r.get(name);
    }
    let _ = r.to_json();
    if let Ok(mut lock) = r.to_lock() {
        // What the reader gives back, the builder writes again (when it accepts it), in the
        // builder's canonical order (a crafted file may list edges in any order).
        if let Ok(bytes) = DplBuilder::from_lock(&lock).to_bytes() {
            let again = DplReader::from_bytes(bytes).expect("builder output opens");
            lock.canonicalize();
            assert_eq!(again.to_lock().expect("builder output reads"), lock);
        }
        let _ = lock.to_pylock_string();
    }
}

/// A universal lock (DPL version 2): every accessor, lookup and rendering; what a verified file
/// reads back, the builder writes again byte for byte.
fn universal_dpl_bytes(data: &[u8]) {
    let Ok(r) = UniversalDplReader::from_bytes(data) else {
        return;
    };
    let verified = r.verify().is_ok();
    let _ = (
        r.key(),
        r.inputs_hash(),
        r.requires_python(),
        r.environments(),
    );
    let _ = (r.render_header(), r.to_json());
    for i in 0..r.marker_count().min(512) {
        let _ = r.marker(i as u32);
    }
    for i in 0..r.len().min(512) {
        let Ok(e) = r.entry(i) else { continue };
        let _ = (e.name(), e.version(), e.requires_python(), e.index_url());
        let _ = (e.wheels().count(), e.sdist(), r.render_entry(&e));
        for d in e.dependencies() {
            // Every edge was range-checked when the entry was read.
            assert!((d as usize) < r.len());
        }
        if let Some(m) = e.marker_index() {
            assert!((m as usize) < r.marker_count());
        }
        let found = r.get(e.name());
        if verified {
            let found = found.expect("a verified file's lookups succeed");
            assert!(
                found.iter().any(|f| f.index() == e.index()),
                "entry {i} not found"
            );
        }
    }
    for name in PROBE_NAMES {
        let _ = r.get(name);
    }
    if verified
        && let Ok(lock) = r.to_universal_lock()
        && let Ok(bytes) = lock.dpl_bytes()
    {
        let again = UniversalDplReader::from_bytes(bytes).expect("builder output opens");
        again.verify().expect("builder output verifies");
        assert_eq!(
            again.to_universal_lock().expect("builder output reads"),
            lock
        );
    }
}

/// `DxpkgReader::new`, `validate` and `get_file` on every path the file lists and a few more.
pub fn dxpkg_reader(data: &[u8]) {
    let Ok(r) = DxpkgReader::new(data) else {
        return;
    };
    let valid = r.validate().is_ok();
    let _ = (r.name(), r.version(), r.dist_info(), r.len());
    for e in r.entries().take(512).flatten() {
        let found = r.get_file(e.path);
        if valid && e.scheme == Scheme::SitePackages {
            assert_eq!(found.ok().flatten(), Some(e), "`{}` not found", e.path);
        }
    }
    for path in [
        "",
        "__init__.py",
        "pkg/__init__.py",
        "../etc/passwd",
        "/abs",
    ] {
        let _ = r.get_file(path);
    }
}

/// Paths every `.dxtree` lookup tries besides the ones the tree lists.
const PROBE_PATHS: [&str; 5] = ["", "bin", "lib/python3.11/site-packages", "a/../b", "//x/"];

/// `Tree::new`, then every record, child, lookup, path and inline read (mode byte first).
pub fn tree_reader(data: &[u8]) {
    with_mode(data, dx_py_core::tree::reseal, tree_bytes);
}

pub(crate) fn tree_bytes(data: &[u8]) {
    let Ok(tree) = Tree::new(data) else {
        return;
    };
    let _ = (
        tree.len(),
        tree.is_empty(),
        tree.mtime(),
        tree.bytes().len(),
    );
    for i in 0..=tree.pack_count().min(64) {
        let _ = tree.pack(i);
    }
    let verified = tree.verify().is_ok();
    // Unverified: every record and directory is read as it comes, errors and all.
    for ino in 0..=u64::from(tree.len()).min(512) + 1 {
        let Ok(node) = tree.node(ino) else { continue };
        let _ = tree.inline_data(&node);
        for i in 0..node.size.min(64) + 1 {
            if let Ok(Some(child)) = tree.child(&node, i) {
                let _ = tree.lookup(&node, child.name);
            }
        }
        let _ = tree.lookup(&node, b"__init__.py");
    }
    for path in PROBE_PATHS {
        let _ = tree.resolve(path);
    }
    if verified {
        check_tree(&tree);
    }
}

/// A verified tree is a tree: a walk from the root meets every inode once, and each node is
/// found again by its name and (when its path is UTF-8) by its path.
fn check_tree(tree: &Tree<&[u8]>) {
    let root = tree.root().expect("verified root reads");
    let mut seen = 1u64;
    let mut stack: Vec<(Node<'_>, Option<String>)> = vec![(root, Some(String::new()))];
    while let Some((dir, path)) = stack.pop() {
        for i in 0..dir.size {
            let child = tree
                .child(&dir, i)
                .expect("verified child reads")
                .expect("verified child exists");
            seen += 1;
            assert_eq!(child.parent, dir.ino);
            let found = tree.lookup(&dir, child.name).expect("verified lookup");
            assert_eq!(found.map(|n| n.ino), Some(child.ino), "lookup by name");
            let child_path = match (&path, std::str::from_utf8(child.name)) {
                (Some(p), Ok(name)) if p.is_empty() => Some(name.to_string()),
                (Some(p), Ok(name)) => Some(format!("{p}/{name}")),
                _ => None,
            };
            if let Some(p) = &child_path {
                let resolved = tree.resolve(p).expect("verified resolve");
                assert_eq!(resolved.map(|n| n.ino), Some(child.ino), "`{p}`");
            }
            match child.source {
                DataSource::Inline { .. } => {
                    let bytes = tree.inline_data(&child).expect("verified inline data");
                    assert_eq!(bytes.map(|b| b.len() as u64), Some(child.size));
                }
                DataSource::Pack { pack, .. } => {
                    tree.pack(pack).expect("verified pack index");
                }
                DataSource::None => assert_eq!(child.kind, NodeKind::Dir),
            }
            if child.kind == NodeKind::Dir {
                stack.push((child, child_path));
            }
        }
    }
    assert_eq!(seen, u64::from(tree.len()), "every inode reached once");
}

/// Project hashes every index lookup tries besides the ones the index lists.
const PROBE_HASHES: [[u8; 32]; 3] = [[0; 32], [0xff; 32], [1; 32]];

/// `LayoutIndex::new`, then the header, every slot, lookups and the full check; an index that
/// passes the check finds each entry it lists and encodes again into one that agrees (mode
/// byte first).
pub fn layout_index(data: &[u8]) {
    with_mode(data, dx_py_core::layout::reseal_index, layout_index_bytes);
}

pub(crate) fn layout_index_bytes(data: &[u8]) {
    let Ok(index) = LayoutIndex::new(data) else {
        return;
    };
    let header = *index.header();
    let _ = (index.len(), index.is_empty(), index.bytes().len());
    let listed: Vec<_> = index.entries().collect();
    for e in listed.iter().flatten() {
        let _ = (e.interpreter_tag(), index.get(&e.project_hash));
    }
    for hash in PROBE_HASHES {
        let _ = index.get(&ProjectHash::from_bytes(hash));
    }
    if index.verify().is_err() {
        return;
    }
    let entries: Vec<_> = listed
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("a verified index decodes every slot");
    assert_eq!(entries.len(), index.len(), "count");
    for e in &entries {
        assert_eq!(
            index.get(&e.project_hash),
            Ok(Some(*e)),
            "lookup of a listed entry"
        );
    }
    let again = encode_index(
        &entries,
        header.capacity,
        header.generation,
        header.written_at,
    )
    .expect("a verified index encodes again");
    let again = LayoutIndex::new(&again[..]).expect("encoder output opens");
    again.verify().expect("encoder output verifies");
    assert_eq!(again.header().capacity, header.capacity);
    for e in &entries {
        assert_eq!(
            again.get(&e.project_hash),
            Ok(Some(*e)),
            "lookup after encoding"
        );
    }
}

/// The package whose thin object `thin_reader` serves the input as: site-packages files of
/// several 16 KiB groups, a small file, an empty one, a script and a symlink (kept entries).
fn thin_sample() -> Vec<u8> {
    use dx_py_core::dxpkg::{DxpkgWriter, EntryKind};
    let mut w = DxpkgWriter::new("thin", "1.0", "thin-1.0.dist-info");
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let sp = Scheme::SitePackages;
    w.add(
        sp,
        "thin/__init__.py",
        EntryKind::File,
        0o644,
        b"X = 1\n".to_vec(),
    );
    w.add(sp, "thin/big.bin", EntryKind::File, 0o644, big);
    w.add(sp, "thin/empty.py", EntryKind::File, 0o644, Vec::new());
    w.add(
        sp,
        "thin/alias.py",
        EntryKind::Symlink,
        0o777,
        b"__init__.py".to_vec(),
    );
    w.add(
        Scheme::Scripts,
        "thin-run",
        EntryKind::File,
        0o755,
        b"#!python\nrun()\n".to_vec(),
    );
    w.finish().expect("sample package")
}

/// A store holding [`thin_sample`] as a thin object: the store's directory, the object's
/// name, and its `.dxthin` bytes.
pub(crate) fn thin_store() -> (tempfile::TempDir, dx_py_core::hash::ContentHash, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = dx_py_core::store::PackageStore::open(dir.path());
    let hash = store.store(&thin_sample()).expect("store the sample");
    store.unpacked(&hash).expect("unpack the sample");
    let thin = std::fs::read(store.thin_path(&hash)).expect("the sample is thin");
    (dir, hash, thin)
}

/// A `.dxthin` file (after the mode byte) over the unpacked copy of [`thin_sample`], opened
/// through the store and read whole, entry by entry and verified. Odd mode: the object is
/// named after its reassembled bytes first, so that it passes its checks and the reads behind
/// them are explored; then every read must succeed and `verify` agree.
pub fn thin_reader(data: &[u8]) {
    use dx_py_core::store::PackageStore;
    let Some((&mode, thin)) = data.split_first() else {
        return;
    };
    let (dir, sample, _) = thin_store();
    let store = PackageStore::open(dir.path());
    let path = store.thin_path(&sample);
    std::fs::remove_file(&path).expect("remove the sample's thin file");
    std::fs::write(&path, thin).expect("write the input");
    let mut hash = sample;
    if mode & 1 == 1 {
        let Some(name) = dx_py_core::store::thin_object_name(&path, &store.unpacked_path(&sample))
        else {
            return;
        };
        hash = name;
        if hash != sample {
            let moved = store.thin_path(&hash);
            std::fs::create_dir_all(moved.parent().expect("object paths have a parent"))
                .expect("fan-out directory");
            std::fs::rename(&path, &moved).expect("rename the input");
            std::fs::rename(store.unpacked_path(&sample), store.unpacked_path(&hash))
                .expect("rename the copy");
        }
        let _ = std::fs::remove_file(store.sidecar_path(&sample));
    }
    let fresh = PackageStore::open(dir.path());
    let Ok(package) = fresh.get(&hash) else {
        assert!(mode & 1 == 0, "a resealed thin object opens");
        return;
    };
    let forged = mode & 1 == 1;
    let whole = package.read(0..package.object_len());
    assert!(
        !forged || whole.is_ok(),
        "a resealed thin object reads whole"
    );
    for e in package.reader().entries().take(512).flatten() {
        let data = package.entry_data(&e);
        assert!(
            !forged || data.is_ok_and(|d| d.len() as u64 == e.len),
            "`{}` reads",
            e.path
        );
    }
    let verified = fresh.verify(&hash);
    assert!(
        !forged || matches!(verified, Ok(true)),
        "a resealed thin object verifies"
    );
}
