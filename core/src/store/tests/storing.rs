//! Storing packages: verified and streamed writes, refusals that leave nothing behind, concurrency.
use super::*;

#[test]
fn missing_hash_is_package_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let h = ContentHash::of(b"nothing");
    assert!(matches!(store.get(&h), Err(StoreError::PackageNotFound(x)) if x == h));
    assert!(matches!(
        store.verify(&h),
        Err(StoreError::PackageNotFound(_))
    ));
    assert!(!store.contains(&h));
}

#[test]
fn store_verified_refuses_a_mismatch_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let bytes = package("a", &BTreeMap::from([("a.py".into(), b"1".to_vec())]));
    let wrong = ContentHash::of(b"other");
    assert!(matches!(
        store.store_verified(&bytes, &wrong),
        Err(StoreError::HashMismatch { .. })
    ));
    assert!(store.objects().unwrap().is_empty());
    store
        .store_verified(&bytes, &ContentHash::of(&bytes))
        .unwrap();
    assert_eq!(store.objects().unwrap(), vec![ContentHash::of(&bytes)]);
}

#[test]
fn garbage_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    assert!(matches!(
        store.store(b"not a package"),
        Err(StoreError::InvalidObject { .. })
    ));
}

#[test]
fn streamed_garbage_and_failed_writes_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    assert!(matches!(
        store.store_with(|w| w.write_all(b"not a package")),
        Err(StoreError::InvalidObject { .. })
    ));
    assert!(matches!(
        store.store_with(|_| Ok(())),
        Err(StoreError::InvalidObject { .. })
    ));
    let bytes = package("a", &BTreeMap::from([("a.py".into(), b"1".to_vec())]));
    let err = store
        .store_with(|w| {
            w.write_all(&bytes[..100])?;
            Err::<(), _>(std::io::Error::other("source went away"))
        })
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Io(e) if e.to_string() == "source went away"),
        "{err:?}"
    );
    // A truncated package is refused too.
    assert!(matches!(
        store.store_with(|w| w.write_all(&bytes[..bytes.len() - 1])),
        Err(StoreError::InvalidObject { .. })
    ));
    assert!(store.objects().unwrap().is_empty());
    assert!(temp_files(dir.path()).is_empty());
}

/// A store root below a regular file cannot be made: a plain I/O error naming the path, not a
/// panic and not a read-only store.
#[test]
fn streaming_into_an_impossible_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let store = PackageStore::open(dir.path().join("file/store"));
    let bytes = package("a", &BTreeMap::from([("a.py".into(), b"1".to_vec())]));
    let err = store.store_with(|w| w.write_all(&bytes)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Io(_)) && err.to_string().contains("file/store"),
        "{err}"
    );
}

/// Streaming an object that is already there leaves the existing file alone (same inode, still
/// read-only) and no temporary file behind.
#[cfg(unix)]
#[test]
fn streaming_an_existing_object_is_a_no_op() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let bytes = package("a", &BTreeMap::from([("a.py".into(), b"1".to_vec())]));
    let h = store.store(&bytes).unwrap();
    let before = std::fs::metadata(store.get_path(&h)).unwrap();
    assert_eq!(store.store_with(|w| w.write_all(&bytes)).unwrap().0, h);
    let after = std::fs::metadata(store.get_path(&h)).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(after.mode() & 0o777, 0o444);
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn corruption_is_detected_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let bytes = package("a", &BTreeMap::from([("a.py".into(), b"hello".to_vec())]));
    let h = store.store(&bytes).unwrap();
    assert!(store.verify(&h).unwrap());
    let path = store.get_path(&h);
    let mut data = std::fs::read(&path).unwrap();
    let last = data.len() - 8;
    data[last] ^= 1;
    crate::atomic::set_mode(&path, 0o644).unwrap();
    std::fs::write(&path, data).unwrap();
    assert!(!store.verify(&h).unwrap());
}

#[test]
fn concurrent_store_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(PackageStore::open(dir.path()));
    let packages: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            package(
                &format!("p{i}"),
                &BTreeMap::from([(format!("m{i}.py"), vec![i as u8; 4096])]),
            )
        })
        .collect();
    let packages = Arc::new(packages);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            let packages = Arc::clone(&packages);
            std::thread::spawn(move || {
                for round in 0..20 {
                    let i = (t + round) % packages.len();
                    // Half the writers stream, half hand over the bytes: both race to one object.
                    let h = if (t + round) % 2 == 0 {
                        store.store(&packages[i]).unwrap()
                    } else {
                        store.store_with(|w| w.write_all(&packages[i])).unwrap().0
                    };
                    let pkg = store.get(&h).unwrap();
                    let f = pkg.get_file(&format!("m{i}.py")).unwrap().unwrap();
                    assert_eq!(pkg.entry_data(&f).unwrap(), &vec![i as u8; 4096][..]);
                    let unpacked = store.unpacked(&h).unwrap();
                    assert_eq!(
                        std::fs::read(unpacked.join(format!("site-packages/m{i}.py")))
                            .unwrap()
                            .len(),
                        4096
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.objects().unwrap().len(), 4);
    for h in store.objects().unwrap() {
        assert!(store.verify(&h).unwrap());
    }
    // No temporary files or directories are left behind.
    let leftovers = temp_files(dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Starting writeback along the way changes nothing of what is written, across several steps
/// and with writes that straddle them.
#[test]
fn early_writeback_passes_bytes_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object");
    let file = std::fs::File::create(&path).unwrap();
    let want: Vec<u8> = (0..(20u32 << 20) + 12_345)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut w = super::EarlyWriteback::new(&file);
    for chunk in want.chunks(3 << 20 | 17) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.written, want.len() as u64);
    if cfg!(target_os = "linux") {
        assert!(w.started >= 16 << 20, "writeback started at {}", w.started);
    }
    drop(file);
    assert_eq!(std::fs::read(&path).unwrap(), want);
}

/// A write that fails (a full disk) names the file it was writing, in the store, and leaves
/// nothing behind; the kind stays, so it is not taken for a read-only store.
#[test]
fn a_full_disk_names_the_file_being_written() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store/.tmp-x");
    let mut w = crate::atomic::Named::new(Full, &path);
    let err = w.write_all(b"some bytes").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(
        err.to_string(),
        format!("Failed to write `{}`", path.display())
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("No space left on device"), "{cause}");
    // In the store: what reaches the user is that error, and nothing is left behind.
    let store = PackageStore::open(dir.path().join("store"));
    let err = store
        .store_with(|w| {
            w.write_all(b"some bytes")?;
            Err::<(), _>(std::io::Error::from_raw_os_error(libc::ENOSPC))
        })
        .unwrap_err();
    assert!(matches!(&err, StoreError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull));
    assert!(store.objects().unwrap().is_empty());
    assert!(temp_files(store.root()).is_empty());
}
