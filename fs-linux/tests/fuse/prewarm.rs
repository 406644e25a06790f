//! Prewarming: a trace recorded by one mount of a tree and replayed by the next makes the names
//! and listings it holds reach the server zero times during the import that follows, and a
//! trace that is wrong in any way only costs lookups, never a mount or a right answer.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use dx_py_fs_linux::fs::{Counters, TreeFs};
use dx_py_fs_linux::prewarm::{Recorder, Trace, TraceKey, trace_file};
use dx_py_fs_linux::serve::{MountOptions, MountedSession, spawn};
use dx_py_fs_linux::tree::open_tree;
use dx_py_fs_linux::{daemon, mounts};

use super::{Fixture, SP, Unmount, background, can_mount, walk};

/// Mounts the fixture's tree on `mnt`, recording into `recorder`.
fn mount(fx: &Fixture, mnt: &str, recorder: &Arc<Recorder>) -> (MountedSession, Arc<Counters>) {
    let fs = TreeFs::open(&fx.tree, &fx.store_dir)
        .unwrap()
        .record(Arc::clone(recorder));
    let counters = fs.counters();
    let session = spawn(fs, &fx.mountpoint(mnt), &MountOptions::default()).unwrap();
    (session, counters)
}

/// What an import of the fixture does to the mount at `root`: a listing, names found and not
/// found (in directories never listed too), reads.
fn import_like(root: &Path) {
    let sp = root.join(SP);
    assert_eq!(std::fs::read_dir(sp.join("alpha")).unwrap().count(), 3);
    assert_eq!(
        std::fs::read(sp.join("alpha/__init__.py")).unwrap(),
        b"VALUE = 42\n"
    );
    assert!(std::fs::metadata(sp.join("alpha/_native.so")).is_ok());
    for absent in ["alpha/missing.so", "glibc-hwcaps", "alpha/__pycache__"] {
        assert!(
            std::fs::symlink_metadata(sp.join(absent)).is_err(),
            "{absent}"
        );
    }
    // Names in a directory nobody lists, as Python's `__pycache__` lookups are.
    for i in [3, 14, 159] {
        let name = format!("many/module_{i:04}_with_a_long_name.py");
        assert_eq!(std::fs::read(sp.join(&name)).unwrap(), name.as_bytes());
    }
    assert_eq!(std::fs::read(sp.join("beta.py")).unwrap(), b"B = 'b'\n");
    assert!(std::fs::read_link(root.join("bin/python")).is_ok());
}

/// Lookups and listings that reached the server so far.
fn asked(c: &Counters) -> (u64, u64) {
    let n = |a: &AtomicU64| Counters::get(a);
    (n(&c.lookups), n(&c.readdirs))
}

#[test]
fn a_replayed_trace_makes_the_import_ask_the_server_nothing() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let key = TraceKey::of(&open_tree(&fx.tree).unwrap());
    let file = fx.dir.path().join("traces").join("t.trace");
    // The first mount records what the import asks.
    let first = Arc::new(Recorder::new(Trace::default()));
    let (m, counters) = mount(&fx, "mnt", &first);
    import_like(m.mountpoint());
    let (lookups, listings) = asked(&counters);
    assert!(lookups >= 10 && listings >= 1, "{lookups} {listings}");
    m.unmount().unwrap();
    let trace = first.take_changed().expect("the import was recorded");
    assert!(trace.looked_up.len() >= 10, "{trace:?}");
    assert!(first.take_changed().is_none(), "taken once per change");
    trace.save(&file, key).unwrap();
    let trace = Trace::load(&file, key).expect("the saved trace reads back");
    // The next mount replays it: the same import then reaches the server zero times.
    let next = Arc::new(Recorder::new(trace.clone()));
    let (m, counters) = mount(&fx, "mnt", &next);
    let plan = trace.plan(&open_tree(&fx.tree).unwrap());
    assert_eq!(plan.skipped, 0);
    assert!(
        plan.dirs.iter().any(|d| d.ends_with("many")),
        "several names found in one directory: listed once instead {plan:?}"
    );
    let replayed = plan.replay(m.mountpoint(), 4);
    assert_eq!(replayed.looked_up, trace.looked_up.len());
    let before = asked(&counters);
    import_like(m.mountpoint());
    assert_eq!(asked(&counters), before, "the import asked the server");
    m.unmount().unwrap();
    // Nothing new was asked (the replay asked only what the trace holds, and the
    // heuristic's listing of `many`): the trace grows by that listing at most.
    if let Some(grown) = next.take_changed() {
        assert!(grown.looked_up == trace.looked_up, "{grown:?}");
        assert!(grown.listed.is_superset(&trace.listed));
    }
}

#[test]
fn a_wrong_trace_only_costs_lookups() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let tree = open_tree(&fx.tree).unwrap();
    let sp = tree.resolve(SP).unwrap().unwrap().ino;
    let alpha = tree.resolve(&format!("{SP}/alpha")).unwrap().unwrap().ino;
    let init = tree
        .resolve(&format!("{SP}/alpha/__init__.py"))
        .unwrap()
        .unwrap()
        .ino;
    let mut trace = Trace::default();
    // Names the tree does not have (a package removed since), in directories it has.
    for name in ["gone", "gone.so", "__pycache__"] {
        trace.looked_up.insert((sp, name.as_bytes().into()));
        trace.looked_up.insert((alpha, name.as_bytes().into()));
    }
    // Directories it does not have: past its last inode, and a file.
    let past = u64::from(tree.len()) + 7;
    trace.looked_up.insert((past, b"x".as_slice().into()));
    trace.looked_up.insert((init, b"x".as_slice().into()));
    trace.listed.extend([past, init, alpha]);
    let plan = trace.plan(&tree);
    assert_eq!(plan.skipped, 4, "{plan:?}");
    let recorder = Arc::new(Recorder::new(Trace::default()));
    let (m, _) = mount(&fx, "mnt", &recorder);
    let replayed = plan.replay(m.mountpoint(), 3);
    assert_eq!((replayed.listed, replayed.looked_up), (1, 6));
    // The mount answers as ever.
    assert_eq!(walk(m.mountpoint()), fx.want);
    m.unmount().unwrap();
}

/// The server of a mount (`server::run`, through the test's own server process): a trace in
/// every broken state is ignored and the mount serves; a cache where no trace can be written
/// mounts all the same; a trace it writes is used by the next mount.
#[test]
fn the_server_keeps_a_trace_and_never_fails_because_of_one() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let mnt = fx.mountpoint("mnt");
    let _guard = Unmount(mounts::absolute(&mnt).unwrap());
    let key = TraceKey::of(&open_tree(&fx.tree).unwrap());
    let file = trace_file(&fx.tree);
    let mount_and_import = |what: &str| {
        let server = background(&fx, &mnt, "off");
        import_like(&mnt);
        mounts::unmount(&mnt).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(daemon::wait_for_exit(
            server.child.id(),
            Duration::from_secs(10)
        ));
        daemon::forget(&fx.state(), &mnt);
    };
    // No trace: the mount records one and writes it when unmounted.
    mount_and_import("no trace");
    let written = std::fs::read(&file).expect("a trace was written");
    assert!(Trace::from_bytes(&written, key, &file).is_ok());
    // The next mount replays it (and rewrites it at most with what the replay listed).
    mount_and_import("a good trace");
    let again = std::fs::read(&file).unwrap();
    assert!(
        Trace::from_bytes(&again, key, &file).unwrap().looked_up
            == Trace::from_bytes(&written, key, &file).unwrap().looked_up
    );
    // Broken traces: truncated, garbage, another tree's, flipped; then a directory in its
    // place (no trace can be read or written there).
    // Another tree: this one with another checksum in its header (`Tree::new` checks it only
    // on request), so another key.
    let mut other_tree = std::fs::read(&fx.tree).unwrap();
    other_tree[100] ^= 1;
    let other_key = TraceKey::of(&dx_py_fs_linux::tree::Tree::new(other_tree).unwrap());
    assert_ne!(other_key, key);
    let other = Trace::from_bytes(&written, key, &file)
        .unwrap()
        .to_bytes(other_key);
    let mut flipped = written.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x10;
    let broken: [(&str, Vec<u8>); 5] = [
        ("truncated", written[..written.len() - 5].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"#!/bin/sh\nnot a trace at all\n".repeat(9)),
        ("another tree's", other),
        ("flipped", flipped),
    ];
    for (what, bytes) in broken {
        std::fs::write(&file, &bytes).unwrap();
        mount_and_import(what);
        let now = std::fs::read(&file).unwrap();
        assert!(
            now == bytes || Trace::from_bytes(&now, key, &file).is_ok(),
            "{what}: replaced by a good trace, or left alone"
        );
    }
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    mount_and_import("no place to write");
    assert!(file.is_dir());
}
