//! Thin objects: any range reads as the full object's, damage in the unpacked copy is caught
//! where it is read, a store without sidecars still reads them, each trailer rejection is typed.
use super::*;
use crate::store::BackingProblem;
use crate::store::thin::{ThinProblem, Trailer};

/// `err` is damage of the unpacked file `file`, for `problem`.
fn assert_backing(err: &StoreError, file: &std::path::Path, problem: BackingProblem) {
    match err {
        StoreError::Damaged {
            damage: Damage::Backing(got),
            ..
        } => assert_eq!((got.path.as_path(), &got.problem), (file, &problem)),
        _ => panic!("{err}"),
    }
}

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
        files in arb_sized_files(8),
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
    let verbatim = |e| crate::store::backing::verbatim_file(&e);
    let big = p.get_file("pkg/big.bin").unwrap().unwrap();
    assert_eq!(
        store.unpacked_path(&hash).join(verbatim(big).unwrap()),
        store.unpacked_path(&hash).join("site-packages/pkg/big.bin")
    );
    assert_eq!(verbatim(p.get_file("zlink.py").unwrap().unwrap()), None);
    let tool = p.reader().get(Scheme::Scripts, "tool").unwrap().unwrap();
    assert_eq!(verbatim(tool), None);
    // The mount's backings follow the same rule: the big file has one, the script none.
    let backings = store.pack_backings(&hash, &p).unwrap();
    assert!(backings.open(big.data_offset, big.len).unwrap().is_some());
    assert!(backings.open(tool.data_offset, tool.len).unwrap().is_none());
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
    assert_backing(&err, &copy.join("big.bin"), BackingProblem::Missing);
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

/// Unpacking makes an object thin (one copy of its bytes on disk), which then reads, stores and
/// reassembles as the full object; a store whose unpacked copies are kept elsewhere keeps it
/// full.
#[test]
fn unpacking_makes_the_object_thin() {
    let dir = tempfile::tempdir().unwrap();
    let full = multi_group();
    let store = PackageStore::open(dir.path().join("store"));
    let hash = store.store(&full).unwrap();
    assert_eq!(store.object_file(&hash), store.get_path(&hash));
    store.unpacked(&hash).unwrap();
    assert!(!store.get_path(&hash).exists());
    assert_eq!(store.object_file(&hash), store.thin_path(&hash));
    assert!(store.get(&hash).unwrap().is_thin());
    assert!(store.contains(&hash));
    assert_eq!(store.object_bytes(&hash).unwrap(), full);
    // Storing it again writes nothing: the thin object is the object.
    let fresh = PackageStore::open(dir.path().join("store"));
    assert_eq!(fresh.store(&full).unwrap(), hash);
    assert!(!fresh.get_path(&hash).exists());
    let p = fresh.get(&hash).unwrap();
    assert_eq!(
        p.entry_data(&p.get_file("z.bin").unwrap().unwrap())
            .unwrap()
            .len(),
        40 << 10
    );
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );

    let other = tempfile::tempdir().unwrap();
    let kept = full_store(other.path());
    let hash = kept.store(&full).unwrap();
    kept.unpacked(&hash).unwrap();
    assert!(kept.get_path(&hash).is_file() && !kept.thin_path(&hash).exists());
    assert!(matches!(
        kept.make_thin(&hash),
        Err(StoreError::ReadOnly { .. })
    ));
}

/// A thin object whose copy is gone is not in the store (it is fetched again).
#[test]
fn a_thin_object_without_its_copy_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, hash) = thin_store(dir.path(), &multi_group());
    remove_tree(&store.unpacked_path(&hash)).unwrap();
    let fresh = PackageStore::open(dir.path().join("store"));
    assert!(!fresh.contains(&hash));
    assert!(matches!(fresh.get(&hash), Err(StoreError::PackageNotFound(h)) if h == hash));
    // Storing it again brings it back.
    fresh.store(&multi_group()).unwrap();
    assert!(fresh.get(&hash).is_ok());
}

#[cfg(unix)]
/// An unpacked copy edited after it was made thin (as through a layout's hardlink): the next
/// use finds the changed stat and refuses it as a damaged object, naming the file, without
/// changing anything; removed (as `cache verify --repair` does) and stored again, it is whole.
#[test]
fn an_edited_copy_is_a_damaged_object() {
    let dir = tempfile::tempdir().unwrap();
    let (store, hash) = thin_store(dir.path(), &multi_group());
    let file = store.unpacked_path(&hash).join("site-packages/a.py");
    let linked = dir.path().join("layout-a.py");
    std::fs::hard_link(&file, &linked).unwrap();
    // Timestamps advance in clock ticks: an edit in the tick of its creation keeps the mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    flip(&linked, 0);
    let fresh = PackageStore::open(dir.path().join("store"));
    let err = fresh.unpacked(&hash).unwrap_err();
    assert_backing(&err, &file, BackingProblem::Changed);
    assert!(fresh.contains(&hash) && !fresh.verify(&hash).unwrap());
    assert_eq!(
        fresh.changed_in_copy(&hash),
        Some(vec![std::path::PathBuf::from("site-packages/a.py")])
    );
    std::fs::remove_file(fresh.thin_path(&hash)).unwrap();
    remove_tree(&fresh.unpacked_path(&hash)).unwrap();
    let fresh = PackageStore::open(dir.path().join("store"));
    assert!(!fresh.contains(&hash));
    assert_eq!(std::fs::read(&linked).unwrap(), b"a = 1\n");
    fresh.store(&multi_group()).unwrap();
    let again = fresh.unpacked(&hash).unwrap();
    assert_eq!(
        std::fs::read(again.join("site-packages/a.py")).unwrap(),
        b"A = 1\n"
    );
    assert!(fresh.verify(&hash).unwrap());
}

#[cfg(unix)]
/// `make_thin` of a full object whose copy another process made checks the copy first: a byte
/// changed behind an unchanged stat leaves the object full and no thin file.
#[test]
fn make_thin_checks_a_copy_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let full = multi_group();
    let (store, hash) = thin_store(dir.path(), &full);
    // The full object back beside its copy, as a store made before thin objects has it.
    std::fs::write(store.get_path(&hash), &full).unwrap();
    let good = PackageStore::open(dir.path().join("store"));
    assert!(!good.get(&hash).unwrap().is_thin());
    good.make_thin(&hash).unwrap();
    assert!(!good.get_path(&hash).exists() && good.get(&hash).unwrap().is_thin());

    std::fs::write(store.get_path(&hash), &full).unwrap();
    let file = store.unpacked_path(&hash).join("site-packages/big.bin");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    flip(&file, 70_000);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .or_else(|_| {
            crate::atomic::set_mode(&file, 0o644)?;
            std::fs::File::options().write(true).open(&file)
        })
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    crate::atomic::set_mode(&file, 0o444).unwrap();
    let fresh = PackageStore::open(dir.path().join("store"));
    let err = fresh.make_thin(&hash).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Damaged {
                damage: Damage::Group { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(fresh.get_path(&hash).is_file() && !fresh.thin_path(&hash).exists());
}

/// A thin file whose index and trailer disagree is refused, naming the problem, never read
/// out of bounds: kept entries longer than the kept section, a data offset that is not the
/// index's length.
#[test]
fn an_index_that_disagrees_with_its_trailer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let full = mixed(&BTreeMap::from([("a.py".to_string(), vec![1u8; 30_000])]));
    let (store, hash) = thin_store(dir.path(), &full);
    let path = store.thin_path(&hash);
    let good = std::fs::read(&path).unwrap();
    let t = Trailer::parse(&good).unwrap();
    assert!(t.kept_len > 0);
    // Writes `bytes` as the thin file; opening it must fail with `Index(want)`.
    let refused = |bytes: Vec<u8>, want: &str| {
        crate::atomic::set_mode(&path, 0o644).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let err = PackageStore::open(dir.path().join("store"))
            .get(&hash)
            .unwrap_err();
        let StoreError::InvalidThin {
            problem: ThinProblem::Index(got),
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(*got, want);
    };
    let trailer = |index_len: u64, kept_len: u64| {
        let mut out = good[good.len() - 64..].to_vec();
        out[24..32].copy_from_slice(&index_len.to_le_bytes());
        out[32..40].copy_from_slice(&kept_len.to_le_bytes());
        out
    };
    // No kept section, though the index has scripts and a link.
    let mut short = good[..t.index_len as usize].to_vec();
    short.extend(trailer(t.index_len, 0));
    refused(short, "kept length");
    // One byte of the index counted as kept.
    let mut shifted = good[..good.len() - 64].to_vec();
    shifted.extend(trailer(t.index_len - 1, t.kept_len + 1));
    refused(shifted, "data offset");
}
