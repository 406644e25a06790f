//! Thin objects: any range reads as the full object's, damage in the unpacked copy is caught
//! where it is read, a store without sidecars still reads them, each trailer rejection is typed.
use super::*;
use crate::store::thin::{ThinProblem, Trailer};

/// A package with site-packages files of any size (several groups, zero padding between
/// them), empty files, a script whose `#!python` unpacking rewrites, a plain script, and a
/// symlink: every kind of span a thin object has.
fn mixed(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut w = writer("t", files);
    w.add(
        Scheme::Scripts,
        "tool",
        EntryKind::File,
        0o755,
        b"#!python\nprint(1)\n".to_vec(),
    );
    w.add(
        Scheme::Scripts,
        "plain.sh",
        EntryKind::File,
        0o755,
        b"#!/bin/sh\necho\n".to_vec(),
    );
    w.add(
        Scheme::Data,
        "share/t/empty",
        EntryKind::File,
        0o644,
        Vec::new(),
    );
    w.add(
        Scheme::SitePackages,
        "zlink.py",
        EntryKind::Symlink,
        0o777,
        b"ztop.py".to_vec(),
    );
    w.add(
        Scheme::SitePackages,
        "ztop.py",
        EntryKind::File,
        0o644,
        b"TOP = 1\n".to_vec(),
    );
    w.finish().unwrap()
}

/// Files from empty to several 16 KiB groups.
fn arb_sized_files() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    btree_map(
        "(d[a-z]{1,3}/){0,2}f[a-z]{1,5}\\.py",
        (0usize..3, any::<u8>()).prop_flat_map(|(size_class, seed)| {
            let max = [64, 20_000, 70_000][size_class];
            (0..max).prop_map(move |n| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect())
        }),
        1..8,
    )
}

/// A store holding `bytes` made thin; the store, the object's name and the full bytes.
fn thin_store(dir: &std::path::Path, bytes: &[u8]) -> (PackageStore, ContentHash) {
    let store = PackageStore::open(dir.join("store"));
    let hash = store.store(bytes).unwrap();
    store.make_thin(&hash).unwrap();
    assert!(!store.get_path(&hash).exists());
    assert!(store.thin_path(&hash).is_file());
    (store, hash)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any byte range read from a thin object (by the process that made it thin, and by a fresh
    /// one that trusts only the sidecar, and by one that has no sidecar) equals the same range
    /// of the full object; so does every entry's data.
    #[test]
    fn any_range_reads_as_the_full_object(
        files in arb_sized_files(),
        ranges in vec((any::<proptest::sample::Index>(), 0u64..40_000), 1..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let full = mixed(&files);
        let (writer, hash) = thin_store(dir.path(), &full);
        let fresh = PackageStore::open(dir.path().join("store"));
        let p = fresh.get(&hash).unwrap();
        prop_assert!(p.is_thin());
        prop_assert_eq!(p.object_len(), full.len() as u64);
        std::fs::remove_file(fresh.sidecar_path(&hash)).ok();
        let unchecked = PackageStore::open(dir.path().join("store"));
        for store in [&writer, &fresh, &unchecked] {
            let p = store.get(&hash).unwrap();
            for (at, len) in &ranges {
                let start = at.index(full.len() + 1) as u64;
                let end = (start + len).min(full.len() as u64);
                let got = p.read(start..start + len).unwrap();
                prop_assert_eq!(&got[..], &full[start as usize..end as usize], "{}..{}", start, end);
            }
            let reference = crate::dxpkg::DxpkgReader::new(&full[..]).unwrap();
            for (e, want) in p.reader().entries().zip(reference.entries()) {
                let (e, want) = (e.unwrap(), want.unwrap());
                prop_assert_eq!(p.entry_data(&e).unwrap(), want.data, "{}", e.path);
            }
        }
        // The fresh store found no sidecar: it checked the whole object and wrote it again.
        prop_assert!(unchecked.sidecar_path(&hash).is_file() || full.len() <= 16 << 10);
        prop_assert!(writer.verify(&hash).unwrap());
        prop_assert_eq!(writer.objects().unwrap(), vec![hash]);
    }
}

#[test]
fn only_scripts_and_links_are_kept_and_files_are_backed_by_the_unpacked_copy() {
    let dir = tempfile::tempdir().unwrap();
    let files = BTreeMap::from([("pkg/big.bin".to_string(), vec![7u8; 50_000])]);
    let full = mixed(&files);
    let (store, hash) = thin_store(dir.path(), &full);
    let thin_len = std::fs::metadata(store.thin_path(&hash)).unwrap().len();
    let reference = crate::dxpkg::DxpkgReader::new(&full[..]).unwrap();
    let kept: u64 = [
        b"#!python\nprint(1)\n".len(),
        b"#!/bin/sh\necho\n".len(),
        b"ztop.py".len(),
    ]
    .iter()
    .map(|n| *n as u64)
    .sum();
    assert_eq!(thin_len, reference.data_offset() + kept + 64);
    let p = store.get(&hash).unwrap();
    let big = p.get_file("pkg/big.bin").unwrap().unwrap();
    assert_eq!(
        p.backing_file(&big).unwrap(),
        store.unpacked_path(&hash).join("site-packages/pkg/big.bin")
    );
    let link = p.get_file("zlink.py").unwrap().unwrap();
    assert_eq!(p.backing_file(&link), None);
    let tool = p.reader().get(Scheme::Scripts, "tool").unwrap().unwrap();
    assert_eq!(p.backing_file(&tool), None);
    // A full object has no backing files.
    let other = store.store(&package("o", &files)).unwrap();
    let o = store.get(&other).unwrap();
    assert!(!o.is_thin());
    assert_eq!(
        o.backing_file(&o.get_file("pkg/big.bin").unwrap().unwrap()),
        None
    );
}

#[cfg(unix)]
/// A byte changed in an unpacked file (through a layout's hardlink, say) is a damaged object:
/// refused where it is read, naming the group, in a fresh process, while the other files are
/// served; a removed file is named.
#[test]
fn damage_in_the_unpacked_copy_is_damage_to_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..100u32 << 10).map(|i| (i % 251) as u8).collect();
    let files = BTreeMap::from([
        ("a.py".to_string(), b"A = 1\n".to_vec()),
        ("big.bin".to_string(), big),
    ]);
    let (store, hash) = thin_store(dir.path(), &package("m", &files));
    let copy = store.unpacked_path(&hash).join("site-packages");
    flip(&copy.join("big.bin"), 50_000);
    let fresh = PackageStore::open(dir.path().join("store"));
    let p = fresh.get(&hash).unwrap();
    let at = p.get_file("big.bin").unwrap().unwrap().data_offset + 50_000;
    let err = p.read(at..at + 1).unwrap_err();
    assert!(
        matches!(&err, StoreError::Damaged { damage: Damage::Group { start, end }, .. } if (*start..*end).contains(&at)),
        "{err}"
    );
    assert_eq!(
        p.entry_data(&p.get_file("a.py").unwrap().unwrap()).unwrap(),
        b"A = 1\n"
    );
    assert!(!fresh.verify(&hash).unwrap());

    std::fs::remove_file(copy.join("big.bin")).unwrap();
    // Opening may already need it (the group that holds the index's end holds its start).
    let fresh = PackageStore::open(dir.path().join("store"));
    let err = fresh
        .get(&hash)
        .and_then(|p| {
            p.entry_data(&p.get_file("big.bin").unwrap().unwrap())
                .map(drop)
        })
        .unwrap_err();
    let StoreError::Damaged {
        damage: Damage::Backing { path, problem },
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (path, problem),
        (
            &copy.join("big.bin"),
            &crate::store::BackingProblem::Missing
        )
    );
    assert!(err.to_string().contains("big.bin"), "{err}");
}

/// Each trailer check has its own rejection.
#[test]
fn each_trailer_rejection_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, hash) = thin_store(dir.path(), &multi_group());
    let good = std::fs::read(store.thin_path(&hash)).unwrap();
    let end = good.len();
    let with = |at: usize, b: u8| {
        let mut v = good.clone();
        v[at] = b;
        Trailer::parse(&v).unwrap_err()
    };
    let t = Trailer::parse(&good).unwrap();
    assert_eq!(t.index_len + t.kept_len + 64, end as u64);
    assert_eq!(
        Trailer::parse(&good[..63]).unwrap_err(),
        ThinProblem::Truncated(63)
    );
    assert_eq!(with(end - 64, b'X'), ThinProblem::Magic);
    assert_eq!(
        with(end - 56, 2),
        ThinProblem::Version {
            version: 2,
            flags: 0
        }
    );
    assert_eq!(
        with(end - 52, 1),
        ThinProblem::Version {
            version: 1,
            flags: 1
        }
    );
    assert_eq!(with(end - 1, 1), ThinProblem::Reserved);
    assert_eq!(
        Trailer::parse(&good[1..]).unwrap_err(),
        ThinProblem::Length {
            expected: end as u64,
            got: end as u64 - 1
        }
    );
    // Opened through the store, a bad trailer names the file.
    let path = store.thin_path(&hash);
    crate::atomic::set_mode(&path, 0o644).unwrap();
    let mut bad = good.clone();
    bad[end - 64] = b'X';
    std::fs::write(&path, bad).unwrap();
    let err = PackageStore::open(dir.path().join("store"))
        .get(&hash)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::InvalidThin {
                problem: ThinProblem::Magic,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(".dxthin"), "{err}");
}
