use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;
use super::{groups, sidecar, unpack};
use crate::dxpkg::{DxpkgWriter, EntryKind, Scheme};

fn writer(name: &str, files: &BTreeMap<String, Vec<u8>>) -> DxpkgWriter {
    let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
    for (p, d) in files {
        w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.clone());
    }
    w
}

fn package(name: &str, files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    writer(name, files).finish().unwrap()
}

/// Names of `.tmp-*` entries anywhere under `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    walk_names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect()
}

fn arb_files() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    // Top-level names are prefixed so files never collide with directories of the same name.
    btree_map(
        "(d[a-z]{1,4}/){0,2}f[a-z]{1,6}\\.py",
        vec(any::<u8>(), 0..48),
        1..12,
    )
}

fn tree(root: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if std::fs::metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn path_format(bytes in any::<[u8; 32]>()) {
        let store = PackageStore::open("/s");
        let h = ContentHash::from_bytes(bytes);
        let hex = h.to_hex();
        let expected = format!("/s/{}/{}/{}.dxpkg", &hex[0..2], &hex[2..4], hex);
        prop_assert_eq!(store.get_path(&h), std::path::PathBuf::from(expected));
    }

    /// Same content -> same path, one file; every file is found with its bytes.
    #[test]
    fn dedup_and_lookup(files in arb_files()) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
        let bytes = package("p", &files);
        let a = store.store(&bytes).unwrap();
        let b = store.store(&bytes).unwrap();
        prop_assert_eq!(a, b);
        prop_assert_eq!(store.objects().unwrap().len(), 1);
        let pkg = store.get(&a).unwrap();
        for (p, d) in &files {
            prop_assert_eq!(pkg.get_file(p).unwrap().unwrap().data, &d[..]);
        }
        prop_assert!(pkg.get_file("absent/name.py").unwrap().is_none());
    }

    /// Streaming a package through `finish_to` stores the same object, with the same bytes and
    /// mode, as storing `finish`'s bytes; either way round, the second is a no-op.
    #[test]
    fn streamed_equals_stored(files in arb_files(), stream_first in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let bytes = package("p", &files);
        let stream = || {
            store.store_with(|w| writer("p", &files).finish_to(w).map(drop).map_err(|e| match e {
                crate::dxpkg::DxpkgWriterError::Write(io) => io,
                other => std::io::Error::other(other),
            }))
        };
        let (a, b) = if stream_first {
            (stream().unwrap().0, store.store(&bytes).unwrap())
        } else {
            (store.store(&bytes).unwrap(), stream().unwrap().0)
        };
        prop_assert_eq!(a, b);
        prop_assert_eq!(a, ContentHash::of(&bytes));
        prop_assert_eq!(store.objects().unwrap(), vec![a]);
        prop_assert_eq!(std::fs::read(store.get_path(&a)).unwrap(), bytes);
        prop_assert!(store.verify(&a).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.get_path(&a)).unwrap().permissions().mode();
            prop_assert_eq!(mode & 0o777, 0o444);
        }
        prop_assert!(temp_files(dir.path()).is_empty());
    }

    /// Any single corrupted byte of an object is caught by `verify`.
    #[test]
    fn verify_detects_any_flip(files in arb_files(), at in any::<usize>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path());
        let h = store.store(&package("p", &files)).unwrap();
        let path = store.get_path(&h);
        let mut data = std::fs::read(&path).unwrap();
        let i = at % data.len();
        data[i] ^= 1 << bit;
        crate::atomic::set_mode(&path, 0o644).unwrap();
        std::fs::write(&path, data).unwrap();
        prop_assert!(!store.verify(&h).unwrap());
    }

    /// Installing two packages into one site-packages gives the union of their trees.
    #[test]
    fn symlink_install_equals_contents(a in arb_files(), b in arb_files()) {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        // Keep b's file names apart from a's so "last wins" does not blur the comparison.
        let b: BTreeMap<String, Vec<u8>> = b.into_iter().map(|(p, d)| (p.replace('f', "g"), d)).collect();
        let ha = store.store(&package("a", &a)).unwrap();
        let hb = store.store(&package("b", &b)).unwrap();
        let sp = dir.path().join("venv/site-packages");
        prop_assert_eq!(store.install_to_venv(&ha, &sp).unwrap(), LinkMode::Symlink);
        store.install_to_venv(&hb, &sp).unwrap();
        let mut expected = a.clone();
        expected.extend(b);
        prop_assert_eq!(tree(&sp), expected);
    }
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
                    assert_eq!(f.data, &vec![i as u8; 4096][..]);
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

fn walk_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_names(&e.path()));
        }
    }
    out
}

#[test]
fn namespace_packages_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    let a = store
        .store(&package(
            "a",
            &BTreeMap::from([("google/a/__init__.py".into(), b"a".to_vec())]),
        ))
        .unwrap();
    let b = store
        .store(&package(
            "b",
            &BTreeMap::from([("google/b/__init__.py".into(), b"b".to_vec())]),
        ))
        .unwrap();
    let sp = dir.path().join("sp");
    store.install_to_venv(&a, &sp).unwrap();
    store.install_to_venv(&b, &sp).unwrap();
    assert!(
        !std::fs::symlink_metadata(sp.join("google"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(sp.join("google/a/__init__.py")).unwrap(),
        b"a"
    );
    assert_eq!(
        std::fs::read(sp.join("google/b/__init__.py")).unwrap(),
        b"b"
    );
}

#[test]
fn unpack_refuses_escaping_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    let mut w = DxpkgWriter::new("evil", "1", "evil-1.dist-info");
    w.add(
        Scheme::SitePackages,
        "../../escape.py",
        EntryKind::File,
        0o644,
        b"x".to_vec(),
    );
    let h = store.store(&w.finish().unwrap()).unwrap();
    assert!(matches!(
        store.unpacked(&h),
        Err(StoreError::UnsafePath { .. })
    ));
    assert!(!dir.path().join("escape.py").exists());
    let mut w = DxpkgWriter::new("evil", "2", "evil-2.dist-info");
    w.add(
        Scheme::SitePackages,
        "pkg/link",
        EntryKind::Symlink,
        0o777,
        b"../../../etc".to_vec(),
    );
    let h = store.store(&w.finish().unwrap()).unwrap();
    assert!(matches!(
        store.unpacked(&h),
        Err(StoreError::UnsafePath { .. })
    ));
}

/// Launchers from entry points and `#!python` scripts both run with the `python` beside them,
/// whatever directory they are called from.
#[cfg(unix)]
#[test]
fn unpacked_scripts_run_from_any_venv() {
    use crate::wheel::testing::WheelBuilder;
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    let wheel = WheelBuilder::new("tool", "1.0")
        .file(
            "tool/__init__.py",
            b"def main():\n    print('tool says hi')\n    return 3\n",
        )
        .console_script("tool-cli", "tool:main")
        .data_file(
            "scripts",
            "raw-script",
            b"#!python\nimport sys\nprint('raw', sys.argv[1:])\n",
        );
    let converted = crate::wheel::convert_wheel(&wheel.filename(), &wheel.build()).unwrap();
    let h = store.store(&converted.dxpkg).unwrap();
    let unpacked = store.unpacked(&h).unwrap();
    // A fake venv: bin/python -> the real interpreter, the scripts beside it, site-packages on PYTHONPATH.
    let bin = dir.path().join("venv/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap();
    std::os::unix::fs::symlink(python.trim(), bin.join("python")).unwrap();
    for name in ["tool-cli", "raw-script"] {
        std::os::unix::fs::symlink(unpacked.join("bin").join(name), bin.join(name)).unwrap();
    }
    let out = std::process::Command::new(bin.join("tool-cli"))
        .env("PYTHONPATH", unpacked.join("site-packages"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tool says hi\n");
    let out = std::process::Command::new(bin.join("raw-script"))
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "raw ['x']\n");
}

/// Unpacked files get their final modes as they are created: read-only, executables (shipped
/// executable, scripts, launchers) 0o555, everything else 0o444, with the package's bytes.
#[cfg(unix)]
#[test]
fn unpacked_files_are_read_only_with_their_modes() {
    use std::os::unix::fs::PermissionsExt;

    use crate::wheel::testing::WheelBuilder;
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path().join("store"));
    let wheel = WheelBuilder::new("tool", "1.0")
        .file("tool/__init__.py", b"X = 1\n")
        .executable("tool/run.sh", b"#!/bin/sh\necho hi\n")
        .console_script("tool-cli", "tool:main")
        .data_file("scripts", "raw-script", b"#!/bin/sh\necho raw\n");
    let converted = crate::wheel::convert_wheel(&wheel.filename(), &wheel.build()).unwrap();
    let h = store.store(&converted.dxpkg).unwrap();
    let unpacked = store.unpacked(&h).unwrap();
    let mode = |rel: &str| {
        let meta = std::fs::metadata(unpacked.join(rel)).unwrap();
        meta.permissions().mode() & 0o7777
    };
    assert_eq!(mode("site-packages/tool/__init__.py"), 0o444);
    assert_eq!(mode("site-packages/tool/run.sh"), 0o555);
    assert_eq!(mode("bin/raw-script"), 0o555);
    assert_eq!(mode("bin/tool-cli"), 0o555);
    assert_eq!(
        std::fs::read(unpacked.join("site-packages/tool/__init__.py")).unwrap(),
        b"X = 1\n"
    );
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
    assert_eq!(std::fs::read_dir(store.root()).unwrap().count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any mix of edits, deletions and additions in an unpacked copy is found, and repair makes
    /// the copy equal to a fresh unpack again, keeping the inodes of files that stay files.
    #[test]
    #[cfg(unix)]
    fn unpacked_copy_damage_is_found_and_repaired(
        files in arb_files(),
        edits in vec((any::<prop::sample::Index>(), 0u8..4), 1..6),
    ) {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path().join("store"));
        let hash = store.store(&package("p", &files)).unwrap();
        let copy = store.unpacked(&hash).unwrap();
        prop_assert!(store.check_unpacked(&hash).unwrap().is_empty());
        // The package's files, without the copy's stat manifest (rewritten by the repair).
        let tree = |root: &std::path::Path| {
            let mut t = tree(root);
            t.remove(unpack::MANIFEST);
            t
        };
        let pristine = tree(&copy);
        let names: Vec<&String> = files.keys().collect();
        let mut inodes = BTreeMap::new();
        for (i, how) in &edits {
            let rel = format!("site-packages/{}", names[i.index(names.len())]);
            let path = copy.join(&rel);
            if let Ok(m) = std::fs::symlink_metadata(&path) {
                inodes.insert(rel.clone(), m.ino());
            }
            match how {
                0 => {
                    crate::atomic::set_mode(&path, 0o644).ok();
                    std::fs::write(&path, b"edited").ok();
                }
                1 => { std::fs::remove_file(&path).ok(); inodes.remove(&rel); }
                2 => { std::fs::write(copy.join("site-packages/extra_file.txt"), b"x").unwrap(); }
                _ => { crate::atomic::set_mode(&path, 0o755).ok(); }
            }
        }
        let damage = store.check_unpacked(&hash).unwrap();
        let changed = tree(&copy) != pristine
            || edits.iter().any(|(_, how)| *how == 3);
        prop_assert_eq!(damage.is_empty(), !changed, "{:?}", damage);
        store.repair_unpacked(&hash, &damage).unwrap();
        prop_assert!(store.check_unpacked(&hash).unwrap().is_empty());
        prop_assert_eq!(tree(&copy), pristine);
        // The mended copy is used as it is (its manifest records the mended files).
        prop_assert_eq!(unpack::changed_since_unpacked(&copy), Some(Vec::new()));
        for (rel, ino) in inodes {
            if let Ok(m) = std::fs::metadata(copy.join(&rel)) {
                prop_assert_eq!(m.ino(), ino, "{} was replaced, not mended", rel);
            }
        }
    }
}

/// A package of several 16 KiB groups: `big.bin` (100 KiB), `a.py`, `z.bin` (40 KiB).
fn multi_group() -> Vec<u8> {
    let big: Vec<u8> = (0..100u32 << 10).map(|i| (i % 251) as u8).collect();
    let z: Vec<u8> = (0..40u32 << 10).map(|i| (i % 241) as u8).collect();
    package(
        "m",
        &BTreeMap::from([
            ("a.py".into(), b"A = 1\n".to_vec()),
            ("big.bin".into(), big),
            ("z.bin".into(), z),
        ]),
    )
}

#[cfg(unix)]
/// Flips one bit of byte `at` of the (read-only) file at `path`.
fn flip(path: &std::path::Path, at: u64) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

/// Where `path`'s bytes lie in the object `hash`.
fn offset_of(store: &PackageStore, hash: &ContentHash, path: &str) -> u64 {
    let p = store.get(hash).unwrap();
    p.get_file(path).unwrap().unwrap().data_offset + p.reader().data_offset()
}

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

#[cfg(unix)]
/// An unpacked copy edited after it was made (as through a layout's hardlink) is made again
/// before it is used, without touching the edited inode; `verify_unpacked` names the file.
#[test]
fn an_edited_unpacked_copy_is_made_again() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let hash = store.store(&multi_group()).unwrap();
    let root = store.unpacked(&hash).unwrap();
    assert_eq!(store.verify_unpacked(&hash).unwrap(), Some(Vec::new()));
    let file = root.join("site-packages/a.py");
    let linked = dir.path().join("layout-a.py");
    std::fs::hard_link(&file, &linked).unwrap();
    // Timestamps advance in clock ticks (up to 10 ms): an edit in the tick of its creation
    // keeps the mtime, and one of the same size goes unseen by the stat check.
    std::thread::sleep(std::time::Duration::from_millis(20));
    flip(&linked, 0);
    assert_eq!(
        store.verify_unpacked(&hash).unwrap(),
        Some(vec![std::path::PathBuf::from("site-packages/a.py")])
    );
    // The process that made the copy trusts it; a later one checks its stat. Same size, same
    // path: the stat tells.
    assert_eq!(store.unpacked(&hash).unwrap(), root);
    assert_eq!(
        std::fs::read(root.join("site-packages/a.py")).unwrap(),
        b"a = 1\n"
    );
    let again = PackageStore::open(dir.path()).unpacked(&hash).unwrap();
    assert_eq!(again, root);
    assert_eq!(
        std::fs::read(again.join("site-packages/a.py")).unwrap(),
        b"A = 1\n"
    );
    assert_ne!(
        std::fs::metadata(again.join("site-packages/a.py"))
            .unwrap()
            .ino(),
        std::fs::metadata(&linked).unwrap().ino(),
        "a new inode; the linked one is left as it is"
    );
    assert_eq!(std::fs::read(&linked).unwrap(), b"a = 1\n");
    assert_eq!(store.verify_unpacked(&hash).unwrap(), Some(Vec::new()));
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );

    // A removed file, a copy without a manifest: made again too.
    std::fs::remove_file(root.join("site-packages/z.bin")).unwrap();
    assert_eq!(
        store.verify_unpacked(&hash).unwrap(),
        Some(vec![std::path::PathBuf::from("site-packages/z.bin")])
    );
    assert!(
        PackageStore::open(dir.path())
            .unpacked(&hash)
            .unwrap()
            .join("site-packages/z.bin")
            .is_file()
    );
    std::fs::remove_file(root.join(unpack::MANIFEST)).unwrap();
    // Held, so that its inode number cannot be reused by the new copy.
    let held = dir.path().join("held-a.py");
    std::fs::hard_link(root.join("site-packages/a.py"), &held).unwrap();
    let ino = std::fs::metadata(&held).unwrap().ino();
    PackageStore::open(dir.path()).unpacked(&hash).unwrap();
    assert_ne!(
        std::fs::metadata(root.join("site-packages/a.py"))
            .unwrap()
            .ino(),
        ino
    );
    assert_eq!(
        store.verify_unpacked(&ContentHash::of(b"none")).unwrap(),
        None
    );
}

#[cfg(unix)]
#[test]
fn an_unchanged_unpacked_copy_is_used_as_it_is() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let hash = store.store(&multi_group()).unwrap();
    let root = store.unpacked(&hash).unwrap();
    let ino = std::fs::metadata(root.join("site-packages/a.py"))
        .unwrap()
        .ino();
    let fresh = PackageStore::open(dir.path());
    fresh.unpacked(&hash).unwrap();
    assert_eq!(
        std::fs::metadata(root.join("site-packages/a.py"))
            .unwrap()
            .ino(),
        ino
    );
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

#[test]
fn a_damaged_unpack_manifest_reads_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = PackageStore::open(dir.path());
    let hash = store.store(&multi_group()).unwrap();
    let root = store.unpacked(&hash).unwrap();
    let manifest = root.join(unpack::MANIFEST);
    let good = std::fs::read(&manifest).unwrap();
    assert_eq!(unpack::changed_since_unpacked(&root), Some(Vec::new()));
    for (what, bad) in [
        ("truncated", good[..good.len() - 1].to_vec()),
        ("trailing", [good.as_slice(), b"x"].concat()),
        ("magic", [b"X".as_slice(), &good[1..]].concat()),
        ("version", [&good[..8], &[2, 0, 0, 0], &good[12..]].concat()),
    ] {
        std::fs::remove_file(&manifest).unwrap();
        std::fs::write(&manifest, &bad).unwrap();
        assert_eq!(unpack::changed_since_unpacked(&root), None, "{what}");
    }
}
