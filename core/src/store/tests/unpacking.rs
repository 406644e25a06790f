//! Unpacked copies: merged namespaces, refused paths, scripts and modes, damage found and repaired.
use super::*;

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any mix of edits, deletions and additions in an unpacked copy of a full object is found,
    /// and repair makes the copy equal to a fresh unpack again, keeping the inodes of files that
    /// stay files.
    #[test]
    #[cfg(unix)]
    fn unpacked_copy_damage_is_found_and_repaired(
        files in arb_files(),
        edits in vec((any::<prop::sample::Index>(), 0u8..4), 1..6),
    ) {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = full_store(&dir.path().join("store"));
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

#[cfg(unix)]
/// An unpacked copy of a full object edited after it was made (as through a layout's hardlink)
/// is made again before it is used, without touching the edited inode; `verify_unpacked` names
/// the file. (A thin object's copy is its data: `thin::an_edited_copy_discards_the_object`.)
#[test]
fn an_edited_unpacked_copy_is_made_again() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = full_store(dir.path());
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
    let again = full_store(dir.path()).unpacked(&hash).unwrap();
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
        full_store(dir.path())
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
    full_store(dir.path()).unpacked(&hash).unwrap();
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
