//! Per-group checks: the sidecar, flipped data and index bytes, forgotten groups, flips anywhere.
use super::*;

#[test]
fn storing_writes_a_sidecar_that_merges_to_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let hash = store.store(&multi_group()).unwrap();
    let sidecar = std::fs::read(store.sidecar_path(&hash)).unwrap();
    let len = std::fs::metadata(store.get_path(&hash)).unwrap().len();
    assert_eq!(
        sidecar::decode(&sidecar, &hash, len).unwrap().len() as u64,
        groups::group_count(len)
    );
    // Streamed objects get one too; one-group objects need none.
    let dir2 = tempfile::tempdir().unwrap();
    let streamed = PackageStore::open(dir2.path());
    let bytes = multi_group();
    let (h, ()) = streamed.store_with(|w| w.write_all(&bytes)).unwrap();
    assert_eq!(h, hash);
    assert_eq!(std::fs::read(streamed.sidecar_path(&h)).unwrap(), sidecar);
    let small = store
        .store(&package(
            "s",
            &BTreeMap::from([("s.py".into(), b"1".to_vec())]),
        ))
        .unwrap();
    assert!(!store.sidecar_path(&small).exists());
}

#[cfg(unix)]
/// A flipped byte in one file's data: that file's bytes are refused (naming the object and the
/// group), the other files are served, unpacking fails and leaves nothing, a fresh process
/// catches it while the writing process trusts what it wrote.
#[test]
fn a_flipped_data_byte_is_refused_where_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let writer = PackageStore::open(dir.path().join("store"));
    let hash = writer.store(&multi_group()).unwrap();
    let at = offset_of(&writer, &hash, "big.bin") + 50_000;
    flip(&writer.get_path(&hash), at);

    let store = PackageStore::open(dir.path().join("store"));
    let p = store.get(&hash).unwrap();
    let big = p.get_file("big.bin").unwrap().unwrap();
    let err = p.entry_data(&big).unwrap_err();
    let StoreError::Damaged {
        hash: h,
        path,
        damage: Damage::Group { start, end },
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*h, path), (hash, &store.get_path(&hash)));
    assert!((*start..*end).contains(&at), "{start}..{end} {at}");
    assert!(err.to_string().contains("cache verify --repair"), "{err}");
    let z = p.get_file("z.bin").unwrap().unwrap();
    assert_eq!(p.entry_data(&z).unwrap().len(), 40 << 10);
    let a = p.get_file("a.py").unwrap().unwrap();
    assert_eq!(p.entry_data(&a).unwrap(), b"A = 1\n");
    // Refused again on every read, not only the first.
    assert!(p.entry_data(&big).is_err());

    let err = store.unpacked(&hash).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    assert!(!store.unpacked_path(&hash).exists());
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );

    // The process that wrote the object counts its own bytes as checked.
    let p = writer.get(&hash).unwrap();
    assert!(
        p.entry_data(&p.get_file("big.bin").unwrap().unwrap())
            .is_ok()
    );
}

#[cfg(unix)]
#[test]
fn a_flipped_index_byte_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let hash = PackageStore::open(dir.path())
        .store(&multi_group())
        .unwrap();
    let store = PackageStore::open(dir.path());
    // A byte of a path string (the header is 64 bytes, the index follows).
    flip(&store.get_path(&hash), 64 + 4 * 8 + 3 * 32 + 1);
    let err = store.get(&hash).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Damaged {
                damage: Damage::Group { start: 0, .. },
                ..
            }
        ),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_one_group_object_is_checked_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = package("s", &BTreeMap::from([("s.py".into(), b"S = 1\n".to_vec())]));
    let hash = PackageStore::open(dir.path()).store(&bytes).unwrap();
    let store = PackageStore::open(dir.path());
    flip(&store.get_path(&hash), bytes.len() as u64 - 3);
    let err = store.get(&hash).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Damaged {
                damage: Damage::Whole,
                ..
            }
        ),
        "{err}"
    );
}

#[cfg(unix)]
/// A missing or damaged sidecar: one pass over the object checks it whole and writes the
/// sidecar again; a damaged object is then refused as a whole.
#[test]
fn a_missing_or_damaged_sidecar_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let hash = PackageStore::open(dir.path())
        .store(&multi_group())
        .unwrap();
    let store = PackageStore::open(dir.path());
    let sidecar = store.sidecar_path(&hash);
    let good = std::fs::read(&sidecar).unwrap();
    for damage in [None, Some(40), Some(3)] {
        match damage {
            None => std::fs::remove_file(&sidecar).unwrap(),
            Some(at) => {
                let mut b = good.clone();
                b[at] ^= 1;
                std::fs::write(&sidecar, b).unwrap();
            }
        }
        let store = PackageStore::open(dir.path());
        let p = store.get(&hash).unwrap();
        assert!(
            p.entry_data(&p.get_file("big.bin").unwrap().unwrap())
                .is_ok()
        );
        assert_eq!(std::fs::read(&sidecar).unwrap(), good, "{damage:?}");
    }
    let at = offset_of(&store, &hash, "z.bin") + 7;
    std::fs::remove_file(&sidecar).unwrap();
    flip(&store.get_path(&hash), at);
    let err = PackageStore::open(dir.path()).get(&hash).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Damaged {
                damage: Damage::Whole,
                ..
            }
        ),
        "{err}"
    );
    assert!(!sidecar.exists(), "no sidecar from damaged bytes");
}

/// Groups whose pages were handed back are checked again on the next read.
#[test]
fn forgotten_groups_are_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    let hash = PackageStore::open(dir.path())
        .store(&multi_group())
        .unwrap();
    let store = PackageStore::open(dir.path());
    let p = store.get(&hash).unwrap();
    let at = offset_of(&store, &hash, "z.bin");
    assert!(p.check_is_needed(at..at + 10));
    p.check(at..at + 10).unwrap();
    assert!(!p.check_is_needed(at..at + 10));
    p.forget(at..at + 1);
    assert!(p.check_is_needed(at..at + 10));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[cfg(unix)]
    /// A flipped bit anywhere in an object (header, index, data, padding) is caught on open or
    /// by checking all of it, with or without its sidecar; the object otherwise checks clean.
    #[test]
    fn a_flipped_bit_anywhere_is_caught(
        sizes in vec(0usize..40_000, 1..5),
        at: proptest::sample::Index,
        bit in 0u8..8,
        keep_sidecar: bool,
    ) {
        let files: BTreeMap<String, Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("f{i}.bin"), (0..*n).map(|j| (j * 7 + i) as u8).collect()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let hash = PackageStore::open(dir.path()).store(&package("p", &files)).unwrap();
        let store = PackageStore::open(dir.path());
        let len = std::fs::metadata(store.get_path(&hash)).unwrap().len();
        prop_assert!(store.get(&hash).unwrap().check(0..len).is_ok());
        if !keep_sidecar {
            let _ = std::fs::remove_file(store.sidecar_path(&hash));
        }
        let i = at.index(len as usize) as u64;
        let path = store.get_path(&hash);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[i as usize] ^= 1 << bit;
        std::fs::write(&path, bytes).unwrap();
        let fresh = PackageStore::open(dir.path());
        let caught = match fresh.get(&hash) {
            Err(StoreError::Damaged { .. }) => true,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            Ok(p) => matches!(p.check(i..i + 1), Err(StoreError::Damaged { .. })),
        };
        prop_assert!(caught, "bit {} of byte {} of {}", bit, i, len);
    }
}
