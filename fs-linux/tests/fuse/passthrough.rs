//! FUSE passthrough: files whose package has an unpacked copy are opened with that copy as
//! their backing file, and the kernel reads it without asking the server. Where the kernel
//! cannot (before Linux 6.9, or without `CAP_SYS_ADMIN`), the same tests check that every file
//! is served by the server instead, with the same bytes.
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use dx_py_core::store::PackageStore;
use dx_py_fs_linux::fs::{Counters, Passthrough, TreeFs};
use dx_py_fs_linux::serve::{MountOptions, MountedSession, spawn};

use super::{Fixture, SP, Want, can_mount};

/// The fixture with an unpacked copy of every pack, as `dx-py install` leaves them.
fn unpacked_fixture() -> Fixture {
    let fx = Fixture::new();
    let store = PackageStore::open(&fx.store_dir);
    for hash in &fx.packs {
        store.unpacked(hash).unwrap();
    }
    fx
}

/// Mounts the fixture's tree on `mnt` with passthrough `mode`; returns the session and its
/// request counters.
fn mount(fx: &Fixture, mode: Passthrough) -> (MountedSession, Arc<Counters>) {
    let fs = TreeFs::open(&fx.tree, &fx.store_dir)
        .unwrap()
        .passthrough(mode);
    let counters = fs.counters();
    let session = spawn(fs, &fx.mountpoint("mnt"), &MountOptions::default()).unwrap();
    (session, counters)
}

/// Every file of the fixture read through the mount at `root` has its bytes.
fn assert_every_file_reads_right(fx: &Fixture, root: &std::path::Path) {
    for (path, want) in &fx.want {
        if let Want::File(bytes, _) = want {
            assert_eq!(&std::fs::read(root.join(path)).unwrap(), bytes, "{path}");
        }
    }
}

#[test]
fn files_with_an_unpacked_copy_are_passed_through() {
    if !can_mount() {
        return;
    }
    let fx = unpacked_fixture();
    let (m, c) = mount(&fx, Passthrough::Auto);
    let root = m.mountpoint().to_path_buf();
    assert_every_file_reads_right(&fx, &root);
    // A mapped shared object is the backing file's pages.
    let so = root.join(SP).join("alpha/_native.so");
    let map = dx_py_core::sys::map_immutable(&so).unwrap();
    let Want::File(want_so, _) = &fx.want[&format!("{SP}/alpha/_native.so")] else {
        unreachable!()
    };
    assert_eq!(&map[..], &want_so[..]);
    drop(map);
    let passed = Counters::get(&c.passthrough_opens);
    let reads = Counters::get(&c.reads);
    if dx_py_core::testing::fuse_passthrough() {
        // 604 site-packages files, each opened once by the reads above (the `.so` twice).
        assert!(passed >= 604, "passthrough opens: {passed}");
        // What is read from the server: pyvenv.cfg and the script (no backing: synthetic
        // files are inline in the tree; it answers those from the tree without reads of a pack).
        assert!(reads <= 4, "reads reaching the server: {reads}");
        // Every open reaches the server (passthrough needs it), and opening again reuses the
        // backing registered on the first open.
        let again = root.join(SP).join("alpha/data.bin");
        let before = Counters::get(&c.passthrough_opens);
        for _ in 0..3 {
            assert_eq!(std::fs::read(&again).unwrap().len(), 1 << 20);
        }
        assert_eq!(Counters::get(&c.passthrough_opens), before + 3);
        assert_eq!(Counters::get(&c.reads), reads);
    } else {
        assert_eq!(passed, 0);
        assert!(reads > 0);
    }
    // Unmounting with the backings registered (and one file still open) works, and leaves
    // the directory empty.
    let held = std::fs::File::open(root.join(SP).join("beta.py")).unwrap();
    m.unmount().unwrap();
    drop(held);
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert!(dx_py_fs_linux::mounts::find_mount(&root).unwrap().is_none());
}

/// Passthrough does not spare the per-open round trips: the kernel (6.18) still sends the
/// `isatty()` ioctl to the server, and every open too (docs/design/mount.md).
#[test]
fn isatty_on_a_passed_through_file_still_reaches_the_server() {
    if !can_mount() {
        return;
    }
    let fx = unpacked_fixture();
    let (m, c) = mount(&fx, Passthrough::Auto);
    let path = m.mountpoint().join(SP).join("beta.py");
    for _ in 0..3 {
        let f = std::fs::File::open(&path).unwrap();
        assert!(!rustix::termios::isatty(&f));
    }
    assert_eq!(Counters::get(&c.ioctls), 3);
    if dx_py_core::testing::fuse_passthrough() {
        assert_eq!(Counters::get(&c.opens), 3);
        assert_eq!(Counters::get(&c.passthrough_opens), 3);
    }
}

#[test]
fn a_changed_unpacked_file_is_never_served() {
    if !can_mount() {
        return;
    }
    let fx = unpacked_fixture();
    let store = PackageStore::open(&fx.store_dir);
    let copy = store.unpacked_path(&fx.packs[0]).join("site-packages");
    // Edited in place, as through a layout's hardlink (same size, new mtime).
    let init = copy.join("alpha/__init__.py");
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&init)
        .unwrap()
        .write_all(b"VALUE = 66\n")
        .unwrap();
    // Replaced by a file of the same size (another inode).
    let big = copy.join("alpha/data.bin");
    let mut bytes = std::fs::read(&big).unwrap();
    bytes[1000] ^= 1;
    std::fs::remove_file(&big).unwrap();
    std::fs::write(&big, &bytes).unwrap();
    // Truncated.
    let so = copy.join("alpha/_native.so");
    std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&so)
        .unwrap()
        .set_len(10)
        .unwrap();

    let (m, _c) = mount(&fx, Passthrough::Auto);
    let site = m.mountpoint().join(SP);
    // `unpacked` made the object thin (docs/design/store-one-copy.md): the changed copy was its
    // only bytes, so the files are refused (the group checks fail), never served changed.
    for name in ["alpha/__init__.py", "alpha/data.bin", "alpha/_native.so"] {
        let read = std::fs::read(site.join(name));
        assert!(read.is_err(), "`{name}` was served: {read:?}");
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import alpha; print(alpha.VALUE)"])
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a damaged package was imported");
}

#[test]
fn with_passthrough_off_every_read_reaches_the_server() {
    if !can_mount() {
        return;
    }
    let fx = unpacked_fixture();
    let (m, c) = mount(&fx, Passthrough::Off);
    assert_every_file_reads_right(&fx, m.mountpoint());
    assert_eq!(Counters::get(&c.passthrough_opens), 0);
    assert!(Counters::get(&c.reads) >= 604);
    // No-open, as without copies: the first open is answered ENOSYS and no other is sent.
    assert!(
        Counters::get(&c.opens) <= 1,
        "opens: {}",
        Counters::get(&c.opens)
    );
}
