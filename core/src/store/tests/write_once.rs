//! Writing an object once (docs/design/store-one-copy.md, step 3): a stream split into the
//! unpacked copy and the thin file names and holds what the two-write path did; what cannot be
//! split is stored full; a bad stream leaves nothing.
use super::*;

/// A package with every kind of entry a split meets: site-packages files of any size, an
/// empty file, a `#!python` script, a plain script, a symlink, and console scripts (their
/// launchers are made from `entry_points.txt`).
fn varied(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut w = writer("t", files);
    let mut add = |scheme, path: &str, kind, mode, data: &[u8]| {
        w.add(scheme, path, kind, mode, data.to_vec());
    };
    add(
        Scheme::Scripts,
        "tool",
        EntryKind::File,
        0o755,
        b"#!python\nprint(1)\n",
    );
    add(
        Scheme::Scripts,
        "plain.sh",
        EntryKind::File,
        0o755,
        b"#!/bin/sh\necho\n",
    );
    add(Scheme::Data, "share/t/empty", EntryKind::File, 0o644, b"");
    add(
        Scheme::SitePackages,
        "zlink.py",
        EntryKind::Symlink,
        0o777,
        b"ztop.py",
    );
    add(
        Scheme::SitePackages,
        "ztop.py",
        EntryKind::File,
        0o755,
        b"TOP = 1\n",
    );
    add(
        Scheme::SitePackages,
        "t-1.0.dist-info/entry_points.txt",
        EntryKind::File,
        0o644,
        b"[console_scripts]\ntcli = t:main\ntool = t:other\n",
    );
    w.finish().unwrap()
}

/// Every path of the tree at `root` (the manifest left out: its inodes differ) with what it
/// holds: a file's bytes and mode, or a link's target.
fn listing(root: &std::path::Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let (path, ty) = (e.path(), e.file_type().unwrap());
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if ty.is_dir() {
                dirs.push(path);
            } else if ty.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, (target.to_string_lossy().as_bytes().to_vec(), 0));
            } else if rel != unpack::MANIFEST {
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                out.insert(rel, (std::fs::read(&path).unwrap(), mode));
            }
        }
    }
    out
}

/// Streams `bytes` into `store` in pieces of the given sizes (cycled), as an install's
/// conversion does.
fn stream(store: &PackageStore, bytes: &[u8], pieces: &[usize]) -> Result<ContentHash, StoreError> {
    store
        .store_with_as(ObjectForm::Unpacked, |w| {
            let mut rest = bytes;
            for n in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at((*n).min(rest.len()));
                w.write_all(now)?;
                rest = later;
            }
            Ok(())
        })
        .map(|(hash, ())| hash)
}

/// The offset of the first padding byte between two files of `bytes`.
fn padding_at(bytes: &[u8]) -> u64 {
    let r = crate::dxpkg::DxpkgReader::new(bytes).unwrap();
    let mut spans: Vec<_> = r
        .entries()
        .map(|e| e.unwrap())
        .map(|e| (e.data_offset, e.data_offset + e.len))
        .collect();
    spans.sort_unstable();
    spans
        .windows(2)
        .find(|w| w[0].1 < w[1].0)
        .map(|w| w[0].1)
        .expect("files of lengths not multiples of 8 are padded")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Written once, in any pieces, an object has the name, the reassembled bytes and the
    /// unpacked copy (files, modes, links, launchers) that storing it whole and unpacking it
    /// gave; its copy's manifest matches; a fresh process reads and verifies it.
    #[test]
    fn writing_once_matches_the_two_write_path(
        files in arb_sized_files(6),
        pieces in vec(1usize..30_000, 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let full = varied(&files);
        let two = full_store(&dir.path().join("two"));
        let want = two.store(&full).unwrap();
        let want_tree = listing(&two.unpacked(&want).unwrap());

        let once = PackageStore::open(dir.path().join("once"));
        let hash = stream(&once, &full, &pieces).unwrap();
        prop_assert_eq!(hash, want);
        prop_assert!(!once.get_path(&hash).exists());
        prop_assert!(once.thin_path(&hash).is_file());
        prop_assert_eq!(once.changed_in_copy(&hash), Some(Vec::new()));
        prop_assert_eq!(listing(&once.unpacked(&hash).unwrap()), want_tree);
        prop_assert_eq!(once.object_bytes(&hash).unwrap(), full.clone());

        let fresh = PackageStore::open(dir.path().join("once"));
        prop_assert!(fresh.contains(&hash));
        prop_assert!(fresh.verify(&hash).unwrap());
        let p = fresh.get(&hash).unwrap();
        prop_assert!(p.is_thin());
        let reference = crate::dxpkg::DxpkgReader::new(&full[..]).unwrap();
        for (e, want) in p.reader().entries().zip(reference.entries()) {
            let (e, want) = (e.unwrap(), want.unwrap());
            prop_assert_eq!(p.entry_data(&e).unwrap(), want.data, "{}", e.path);
        }
        // Storing it again writes nothing.
        prop_assert_eq!(stream(&fresh, &full, &pieces).unwrap(), hash);
        prop_assert!(temp_files(dir.path()).is_empty(), "{:?}", temp_files(dir.path()));
    }
}

/// A fetched object an install asks for is written once; one a mount asks for stays full.
#[test]
fn fetched_bytes_are_written_once_for_installs_only() {
    let dir = tempfile::tempdir().unwrap();
    let full = varied(&BTreeMap::from([("a.py".into(), vec![7; 40_000])]));
    let hash = ContentHash::of(&full);
    let install = PackageStore::open(dir.path().join("install"));
    install.store_verified_unpacked(&full, &hash).unwrap();
    assert!(install.thin_path(&hash).is_file() && !install.get_path(&hash).exists());
    assert!(install.sidecar_path(&hash).is_file());
    assert_eq!(install.object_bytes(&hash).unwrap(), full);
    let mount = PackageStore::open(dir.path().join("mount"));
    mount.store_verified(&full, &hash).unwrap();
    assert!(mount.get_path(&hash).is_file() && !mount.unpacked_path(&hash).exists());
    // A wrong name writes nothing.
    let other = PackageStore::open(dir.path().join("other"));
    assert!(matches!(
        other.store_verified_unpacked(&full, &ContentHash::of(b"x")),
        Err(StoreError::HashMismatch { .. })
    ));
    assert!(!other.root().exists() || walk_names(other.root()).is_empty());
    // A store whose copies are kept elsewhere keeps the object full.
    let kept = full_store(&dir.path().join("kept"));
    kept.store_verified_unpacked(&full, &hash).unwrap();
    assert!(kept.get_path(&hash).is_file() && !kept.thin_path(&hash).exists());
}

/// A package whose link leaves its root cannot be unpacked: it is stored full, as before, and
/// unpacking it still says why.
#[test]
fn an_unsplittable_package_is_stored_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer("u", &BTreeMap::from([("a.py".into(), b"A\n".to_vec())]));
    w.add(
        Scheme::SitePackages,
        "out.py",
        EntryKind::Symlink,
        0o777,
        b"../../../etc/passwd".to_vec(),
    );
    let full = w.finish().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    let hash = stream(&store, &full, &[5000]).unwrap();
    assert!(store.get_path(&hash).is_file() && !store.thin_path(&hash).exists());
    assert!(matches!(
        store.unpacked(&hash),
        Err(StoreError::UnsafePath { .. })
    ));
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

/// Padding that is not zero, a stream that stops early and one that runs on: refused, and
/// nothing is left behind.
#[test]
fn a_stream_that_is_no_object_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let full = varied(&BTreeMap::from([("a.py".into(), b"A = 1\n".to_vec())]));
    let store = PackageStore::open(dir.path().join("store"));
    let mut dirty = full.clone();
    dirty[padding_at(&full) as usize] = 1;
    let err = stream(&store, &dirty, &[3]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidThin {
                problem: ThinProblem::Index(_),
                ..
            }
        ),
        "{err}"
    );
    let err = stream(&store, &full[..full.len() - 1], &[100]).unwrap_err();
    assert!(matches!(err, StoreError::InvalidObject { .. }), "{err}");
    let mut long = full.clone();
    long.push(0);
    assert!(stream(&store, &long, &[100]).is_err());
    assert!(store.objects().unwrap().is_empty());
    let unpacked = store.root().join("unpacked");
    assert!(
        walk_names(&unpacked).is_empty(),
        "{:?}",
        walk_names(&unpacked)
    );
}

/// A copy without its manifest (a writer or a prune that died half way) is no object's; the
/// next writer replaces it, whatever it holds, and publishes the object.
#[test]
fn a_copy_left_without_its_object_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let full = varied(&BTreeMap::from([("a.py".into(), vec![3; 30_000])]));
    let hash = ContentHash::of(&full);
    let store = PackageStore::open(dir.path().join("store"));
    let left = store.unpacked_path(&hash).join("site-packages");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("a.py"), b"half").unwrap();
    assert!(!store.contains(&hash));
    assert_eq!(stream(&store, &full, &[4096]).unwrap(), hash);
    assert_eq!(store.changed_in_copy(&hash), Some(Vec::new()));
    let fresh = PackageStore::open(dir.path().join("store"));
    assert!(fresh.verify(&hash).unwrap());
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

/// An object a reader (the mount) holds mapped while full keeps reading right after an
/// install made it thin: the map outlives the removed `.dxpkg`.
#[test]
fn a_mapped_full_object_made_thin_keeps_reading() {
    let dir = tempfile::tempdir().unwrap();
    let full = multi_group();
    let hash = ContentHash::of(&full);
    let mount = PackageStore::open(dir.path().join("store"));
    mount.store_verified(&full, &hash).unwrap();
    let held = mount.get(&hash).unwrap();
    assert!(!held.is_thin());
    let install = PackageStore::open(dir.path().join("store"));
    install.unpacked(&hash).unwrap();
    assert!(!install.get_path(&hash).exists());
    assert_eq!(&held.read(0..held.object_len()).unwrap()[..], &full[..]);
    for e in held.reader().entries() {
        let e = e.unwrap();
        held.entry_data(&e).unwrap();
    }
    assert!(
        PackageStore::open(dir.path().join("store"))
            .get(&hash)
            .unwrap()
            .is_thin()
    );
}

/// A stream stored for a reader (a mount's conversion) stays a full object.
#[test]
fn a_stream_for_a_reader_is_stored_full() {
    let dir = tempfile::tempdir().unwrap();
    let full = varied(&BTreeMap::from([("a.py".into(), b"A = 1\n".to_vec())]));
    let store = PackageStore::open(dir.path().join("store"));
    let (hash, ()) = store.store_with(|w| w.write_all(&full)).unwrap();
    assert_eq!(std::fs::read(store.get_path(&hash)).unwrap(), full);
    assert!(!store.unpacked_path(&hash).exists() && !store.thin_path(&hash).exists());
}
