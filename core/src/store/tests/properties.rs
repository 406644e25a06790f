//! Properties over generated packages: the path format, dedup, streaming, verify, symlink installs.
use super::*;

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
        prop_assert_eq!(store.object_bytes(&a).unwrap(), bytes);
        prop_assert!(store.verify(&a).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.object_file(&a)).unwrap().permissions().mode();
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
