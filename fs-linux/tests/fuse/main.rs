//! Mount tests: real FUSE mounts of synthetic packages. Each needs `/dev/fuse` and root or
//! `fusermount3`, and says what it skips where they are missing ([`can_mount`]).
//! Every mount is undone by a guard's `Drop`, also when an assertion panics.
//!
//! An integration suite: it mounts through the crate's public API only.
#![cfg(target_os = "linux")]
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dx_py_core::dxpkg::{EntryKind, Scheme};
use dx_py_core::mount::{ServerSpec, ServerStatus};
use dx_py_core::store::PackageStore;
use dx_py_fs_linux::server::{self, Reporter};

use dx_py_fs_linux::fs::TreeFs;
use dx_py_fs_linux::serve::{
    AutoUnmount, MountError, MountOptions, MountedSession, WatcherCommand, spawn,
};
mod passthrough;
mod prewarm;
mod util;

use dx_py_fs_linux::tree::{FIXED_MTIME, PackPlacement, SyntheticFile, TreeSpec};
use dx_py_fs_linux::{daemon, mounts};
use util::{E, add_pack, can_mount, has_fusermount, sp};

const SP: &str = "lib/python3.11/site-packages";

/// What a path in the mount should be.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    File(Vec<u8>, u32),
    Link(String),
}

use dx_py_core::testing::noise;

struct Fixture {
    dir: tempfile::TempDir,
    store_dir: PathBuf,
    tree: PathBuf,
    want: BTreeMap<String, Want>,
    /// The store objects, in the tree's pack order.
    packs: Vec<dx_py_core::hash::ContentHash>,
}

impl Fixture {
    /// Where background servers keep their log, pid and status: `{cache}/mounts`.
    fn state(&self) -> PathBuf {
        self.dir.path().join("cache").join("mounts")
    }

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = PackageStore::open(&store_dir);
        let big = noise(1 << 20, 7);
        let so = noise(64 << 10, 9);
        let mut want = BTreeMap::new();
        let mut file = |p: String, d: &[u8], mode| want.insert(p, Want::File(d.to_vec(), mode));
        let alpha = add_pack(
            &store,
            "alpha",
            &[
                sp("alpha/__init__.py", b"VALUE = 42\n"),
                sp("alpha/data.bin", &big),
                E(
                    Scheme::SitePackages,
                    "alpha/_native.so",
                    EntryKind::File,
                    0o755,
                    &so,
                ),
                sp("ns/alpha_part/__init__.py", b"PART = 'alpha'\n"),
                sp("alpha-1.0.dist-info/METADATA", b"Name: alpha\n"),
            ],
        );
        file(format!("{SP}/alpha/__init__.py"), b"VALUE = 42\n", 0o444);
        file(format!("{SP}/alpha/data.bin"), &big, 0o444);
        file(format!("{SP}/alpha/_native.so"), &so, 0o555);
        file(
            format!("{SP}/ns/alpha_part/__init__.py"),
            b"PART = 'alpha'\n",
            0o444,
        );
        file(
            format!("{SP}/alpha-1.0.dist-info/METADATA"),
            b"Name: alpha\n",
            0o444,
        );
        let beta = add_pack(
            &store,
            "beta",
            &[
                sp("ns/beta_part/__init__.py", b"PART = 'beta'\n"),
                sp("beta.py", b"B = 'b'\n"),
            ],
        );
        file(
            format!("{SP}/ns/beta_part/__init__.py"),
            b"PART = 'beta'\n",
            0o444,
        );
        file(format!("{SP}/beta.py"), b"B = 'b'\n", 0o444);
        // Enough entries that readdir needs several replies.
        let names: Vec<String> = (0..600)
            .map(|i| format!("many/module_{i:04}_with_a_long_name.py"))
            .collect();
        let entries: Vec<E<'_>> = names.iter().map(|n| sp(n, n.as_bytes())).collect();
        let many = add_pack(&store, "many", &entries);
        for n in &names {
            file(format!("{SP}/{n}"), n.as_bytes(), 0o444);
        }
        file("pyvenv.cfg".into(), b"home = /usr/bin\n", 0o444);
        file("bin/alpha-cli".into(), b"#!/bin/sh\necho alpha\n", 0o555);
        let python = which_python();
        want.insert("bin/python".into(), Want::Link(python.clone()));
        let packs = vec![alpha, beta, many];
        let spec = TreeSpec {
            packs: packs
                .iter()
                .copied()
                .map(|h| {
                    (
                        h,
                        PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "x"),
                    )
                })
                .collect(),
            files: vec![
                SyntheticFile {
                    path: "pyvenv.cfg".into(),
                    bytes: b"home = /usr/bin\n".to_vec(),
                    mode: 0o644,
                },
                SyntheticFile {
                    path: "bin/alpha-cli".into(),
                    bytes: b"#!/bin/sh\necho alpha\n".to_vec(),
                    mode: 0o755,
                },
            ],
            symlinks: vec![("bin/python".into(), python)],
        };
        let tree = dir.path().join("venv.dxtree");
        spec.build_to_file(&store, &tree).unwrap();
        Self {
            dir,
            store_dir,
            tree,
            want,
            packs,
        }
    }

    fn mountpoint(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn mount(&self, name: &str) -> MountedSession {
        let fs = TreeFs::open(&self.tree, &self.store_dir).unwrap();
        spawn(fs, &self.mountpoint(name), &MountOptions::default()).unwrap()
    }
}

fn which_python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `ls -R` with contents: every leaf under `root`.
fn walk(root: &Path) -> BTreeMap<String, Want> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, Want>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!(meta.mtime(), FIXED_MTIME, "{rel}");
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    Want::Link(std::fs::read_link(&p).unwrap().to_str().unwrap().into()),
                );
            } else if meta.is_dir() {
                assert_eq!(meta.permissions().mode() & 0o777, 0o555, "{rel}");
                go(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert_eq!(meta.len(), bytes.len() as u64, "{rel}");
                out.insert(rel, Want::File(bytes, meta.permissions().mode() & 0o777));
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

#[test]
fn walk_and_bytes_match_and_namespaces_merge() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let m = fx.mount("mnt");
    let root = m.mountpoint();
    let entry = mounts::find_mount(root)
        .unwrap()
        .expect("listed in mountinfo");
    assert_eq!(
        (entry.fstype.as_str(), entry.source.as_str()),
        ("fuse.dx-py", "dx-py")
    );
    assert!(
        mounts::list_mounts()
            .unwrap()
            .iter()
            .any(|e| e.mountpoint == root)
    );
    assert_eq!(walk(root), fx.want);
    let mut ns: Vec<String> = std::fs::read_dir(root.join(SP).join("ns"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, ["alpha_part", "beta_part"]);
    // Absent names, twice (the second answer comes from the kernel's negative cache).
    for _ in 0..2 {
        let err = std::fs::metadata(root.join(SP).join("missing.py")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
    assert_eq!(
        std::fs::read_dir(root.join("pyvenv.cfg"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOTDIR)
    );
    // Reads at odd offsets and past the end are clamped.
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(root.join(SP).join("alpha/data.bin")).unwrap();
    f.seek(SeekFrom::Start((1 << 20) - 3)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    let Want::File(big, _) = &fx.want[&format!("{SP}/alpha/data.bin")] else {
        unreachable!()
    };
    assert_eq!(tail, big[big.len() - 3..]);
    f.seek(SeekFrom::Start(5 << 20)).unwrap();
    assert_eq!(f.read(&mut [0u8; 16]).unwrap(), 0);
    m.unmount().unwrap();
}

#[test]
fn the_kernel_caches_entries_negative_lookups_and_opens() {
    if !can_mount() {
        return;
    }
    use dx_py_fs_linux::fs::Counters;
    let fx = Fixture::new();
    let fs = TreeFs::open(&fx.tree, &fx.store_dir).unwrap();
    let c = fs.counters();
    let m = spawn(fs, &fx.mountpoint("mnt"), &MountOptions::default()).unwrap();
    let site = m.mountpoint().join(SP);
    for name in ["absent_a.py", "absent_b.py"] {
        let before = Counters::get(&c.negative_lookups);
        for _ in 0..3 {
            assert!(std::fs::metadata(site.join(name)).is_err());
        }
        assert_eq!(
            Counters::get(&c.negative_lookups),
            before + 1,
            "{name}: one request, then cached"
        );
    }
    let before = Counters::get(&c.lookups);
    for _ in 0..3 {
        std::fs::read(site.join("beta.py")).unwrap();
        std::fs::read(site.join("alpha/__init__.py")).unwrap();
    }
    assert!(
        Counters::get(&c.lookups) - before <= 3,
        "beta.py, alpha, alpha/__init__.py once each"
    );
    // With no-open support the first open is answered ENOSYS and no other open is sent.
    assert!(
        Counters::get(&c.opens) <= 1,
        "opens: {}",
        Counters::get(&c.opens)
    );
    assert!(
        Counters::get(&c.flushes) <= 1,
        "flush is sent once, answered ENOSYS"
    );
    let reads = Counters::get(&c.reads);
    std::fs::read(site.join("beta.py")).unwrap();
    assert_eq!(Counters::get(&c.reads), reads, "kept in the page cache");
}

#[test]
fn a_mapped_shared_object_reads_like_the_original() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let m = fx.mount("mnt");
    let path = m.mountpoint().join(SP).join("alpha/_native.so");
    // The mounted file is immutable (a read-only mount of an immutable store object).
    let map = dx_py_core::sys::map_immutable(&path).unwrap();
    let Want::File(so, _) = &fx.want[&format!("{SP}/alpha/_native.so")] else {
        unreachable!()
    };
    assert_eq!(&map[..], &so[..]);
    drop(map);
}

#[test]
fn every_change_fails_with_erofs() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let m = fx.mount("mnt");
    let root = m.mountpoint();
    let existing = root.join("pyvenv.cfg");
    let erofs = |what: &str, r: std::io::Result<()>| {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EROFS), "{what}");
    };
    erofs(
        "create",
        std::fs::File::create(root.join("new.txt")).map(drop),
    );
    erofs(
        "write",
        std::fs::OpenOptions::new()
            .write(true)
            .open(&existing)
            .map(drop),
    );
    erofs(
        "append",
        std::fs::OpenOptions::new()
            .append(true)
            .open(&existing)
            .map(drop),
    );
    erofs("rename", std::fs::rename(&existing, root.join("moved.cfg")));
    erofs(
        "chmod",
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o600)),
    );
    erofs("unlink", std::fs::remove_file(&existing));
    erofs("mkdir", std::fs::create_dir(root.join("newdir")));
    erofs("rmdir", std::fs::remove_dir(root.join("bin")));
    erofs(
        "symlink",
        std::os::unix::fs::symlink("x", root.join("link")),
    );
    erofs("link", std::fs::hard_link(&existing, root.join("hard")));
    // And nothing changed.
    assert_eq!(std::fs::read(&existing).unwrap(), b"home = /usr/bin\n");
}

#[test]
fn eight_concurrent_readers_see_the_right_bytes() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let m = fx.mount("mnt");
    let root = m.mountpoint();
    std::thread::scope(|s| {
        for t in 0..8 {
            let want = &fx.want;
            s.spawn(move || {
                for round in 0..3 {
                    for (i, (rel, w)) in want.iter().enumerate() {
                        if (i + t + round) % 3 != 0 {
                            continue;
                        }
                        if let Want::File(bytes, _) = w {
                            assert_eq!(&std::fs::read(root.join(rel)).unwrap(), bytes, "{rel}");
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn unmount_leaves_the_directory_empty() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let m = fx.mount("mnt");
    let root = m.mountpoint().to_path_buf();
    assert!(std::fs::read_dir(&root).unwrap().count() > 0);
    m.unmount().unwrap();
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert!(mounts::find_mount(&root).unwrap().is_none());
    assert!(matches!(
        mounts::unmount(&root),
        Err(MountError::NotMounted(_))
    ));
}

#[test]
fn python_imports_from_the_mount() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let m = fx.mount("mnt");
    let site = m.mountpoint().join(SP);
    let out = Command::new("python3")
        .args([
            "-c",
            "import alpha, beta, ns.alpha_part as a, ns.beta_part as b, sys\nprint(alpha.VALUE, beta.B, a.PART, b.PART, alpha.__file__.startswith(sys.argv[1]))",
        ])
        .arg(&site)
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONHOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42 b alpha beta True"
    );
    // The venv's python link resolves to a working interpreter.
    let out = Command::new(m.mountpoint().join("bin/python"))
        .args(["-c", "print(1)"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"1\n");
}

#[test]
fn bad_mount_points_are_refused() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let fs = || TreeFs::open(&fx.tree, &fx.store_dir).unwrap();
    let opts = MountOptions::default();
    let full = fx.mountpoint("full");
    std::fs::write(full.join("x"), b"").unwrap();
    let err = spawn(fs(), &full, &opts).unwrap_err();
    assert!(matches!(err, MountError::BadMountPoint { .. }), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    let err = spawn(fs(), &fx.dir.path().join("absent"), &opts).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let m = fx.mount("mnt");
    let err = spawn(fs(), m.mountpoint(), &opts).unwrap_err();
    assert!(matches!(err, MountError::AlreadyMounted(_)), "{err}");
}

/// Not a test on its own: the mount server of [`serve_command`], reading its [`ServerSpec`]
/// on stdin and reporting on stdout as `dx-py __serve-mount` does; run by re-executing this
/// test binary with `DX_PY_TEST_SERVE` set to its auto-unmount mode.
#[test]
fn serve_helper() {
    let Ok(mode) = std::env::var("DX_PY_TEST_SERVE") else {
        return;
    };
    let spec = ServerSpec::read_from(std::io::stdin().lock()).unwrap();
    let watcher = WatcherCommand {
        program: std::env::current_exe().unwrap(),
        args: ["--exact", "watch_helper", "--nocapture"]
            .map(Into::into)
            .to_vec(),
        env: vec![("DX_PY_TEST_WATCH".into(), spec.mountpoint.clone().into())],
    };
    // The error's message, not its Debug form: it is what the log shows the test that failed.
    let served = match mode.as_str() {
        // Not a mode of a spec: served by hand, reporting the same way.
        "fusermount" => {
            let fs = TreeFs::open(&spec.tree, spec.cache().store_dir()).unwrap();
            let opts = MountOptions {
                auto_unmount: AutoUnmount::Fusermount,
                ..MountOptions::default()
            };
            let live = || ServerStatus::Mounted.write_line(std::io::stdout()).unwrap();
            dx_py_fs_linux::serve::serve_reporting(fs, &spec.mountpoint, &opts, live, |_| {})
                .map_err(|e| e.to_string())
        }
        _ => {
            let reporter = Reporter::new(&spec.cache().mounts_dir(), &spec.mountpoint, true);
            server::run(spec, Some(watcher), reporter).map_err(|e| e.to_string())
        }
    };
    if let Err(e) = served {
        panic!("{e}");
    }
}

/// Not a test on its own: the watcher process of `serve_helper`.
#[test]
fn watch_helper() {
    if let Some(mnt) = std::env::var_os("DX_PY_TEST_WATCH") {
        daemon::watch(Path::new(&mnt), None).unwrap();
    }
}

/// Not a test on its own: with `DX_PY_TEST_FIXTURE=DIR`, leaves the fixture's store and tree in
/// `DIR` (for trying the CLI by hand).
#[test]
fn fixture_helper() {
    let Some(out) = std::env::var_os("DX_PY_TEST_FIXTURE") else {
        return;
    };
    let fx = Fixture::new();
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).unwrap();
    let kept = fx.dir.keep();
    std::fs::rename(kept.join("store"), out.join("store")).unwrap();
    std::fs::rename(kept.join("venv.dxtree"), out.join("venv.dxtree")).unwrap();
}

/// This test binary running `serve_helper`: a server of the fixture on `mnt`, with
/// `auto_unmount` = `off`, `watcher` or `fusermount`.
fn serve_command(auto_unmount: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // `--quiet`: the harness then writes nothing on the line where a test starts, so the
    // server's status lines stand on lines of their own.
    cmd.args([
        "--exact",
        "serve_helper",
        "--nocapture",
        "--quiet",
        "--test-threads=1",
    ]);
    cmd.env("DX_PY_TEST_SERVE", auto_unmount);
    cmd
}

fn start(
    fx: &Fixture,
    mnt: &Path,
    server: Command,
    auto_unmount: &str,
) -> Result<daemon::BackgroundMount, MountError> {
    let spec = ServerSpec {
        tree: fx.tree.clone(),
        mountpoint: mounts::absolute(mnt).unwrap(),
        cache_dir: fx.dir.path().join("cache"),
        store: Some(fx.store_dir.clone()),
        threads: 2,
        allow_other: false,
        auto_unmount: auto_unmount == "watcher",
        keep_pack_cache: false,
        after: None,
        store_url: None,
        remote_names: Vec::new(),
        remote_pairs: Vec::new(),
    };
    daemon::mount_background(server, &spec, &fx.state(), Duration::from_secs(30))
}

fn background(fx: &Fixture, mnt: &Path, auto_unmount: &str) -> daemon::BackgroundMount {
    start(fx, mnt, serve_command(auto_unmount), auto_unmount).unwrap()
}

/// Unmounts (lazily if need be) on drop, so a failing test leaves no mount behind.
struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        if mounts::find_mount(&self.0).ok().flatten().is_some() {
            let _ = mounts::unmount(&self.0);
        }
    }
}

#[test]
fn a_killed_server_leaves_a_dead_mount_that_unmount_and_mount_recover() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let mnt = fx.mountpoint("mnt");
    let _guard = Unmount(mounts::absolute(&mnt).unwrap());
    let mut server = background(&fx, &mnt, "off");
    let state = fx.state();
    assert_eq!(daemon::recorded_pid(&state, &mnt), Some(server.child.id()));
    assert_eq!(
        std::fs::read(mnt.join("pyvenv.cfg")).unwrap(),
        b"home = /usr/bin\n"
    );
    // SIGKILL to the server we started: no chance to unmount.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(
        mounts::is_dead_mount(&mnt),
        "stat should fail with ENOTCONN"
    );
    assert!(mounts::find_mount(&server.mountpoint).unwrap().is_some());
    // Mounting again cleans the dead mount up first.
    let m = fx.mount("mnt");
    assert!(!mounts::is_dead_mount(&mnt));
    assert_eq!(
        std::fs::read(mnt.join("pyvenv.cfg")).unwrap(),
        b"home = /usr/bin\n"
    );
    m.unmount().unwrap();
    // And `unmount` alone recovers one too.
    let mut server = background(&fx, &mnt, "off");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(mounts::is_dead_mount(&mnt));
    mounts::unmount(&mnt).unwrap();
    assert!(!mounts::is_dead_mount(&mnt));
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
    daemon::forget(&state, &mnt);
    assert_eq!(daemon::recorded_pid(&state, &mnt), None);
}

#[test]
fn with_auto_unmount_a_killed_server_unmounts_itself() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    for mode in ["watcher", "fusermount"] {
        // Root mounts without fusermount3; its auto-unmount needs it all the same.
        if mode == "fusermount" && !has_fusermount() {
            continue;
        }
        let mnt = fx.mountpoint(mode);
        let _guard = Unmount(mounts::absolute(&mnt).unwrap());
        let mut server = background(&fx, &mnt, mode);
        assert_eq!(
            std::fs::read(mnt.join("bin/alpha-cli")).unwrap(),
            b"#!/bin/sh\necho alpha\n"
        );
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        mounts::wait_gone(&server.mountpoint, Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "{mode}");
    }
}

#[test]
fn a_watcher_leaves_a_cleanly_unmounted_or_live_mount_alone() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let mnt = fx.mountpoint("mnt");
    let _guard = Unmount(mounts::absolute(&mnt).unwrap());
    let mut server = background(&fx, &mnt, "watcher");
    mounts::unmount(&mnt).unwrap();
    server.child.wait().unwrap();
    // The old watcher wakes up now; a new mount at the same place must survive it.
    let m = fx.mount("mnt");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read(mnt.join("pyvenv.cfg")).unwrap(),
        b"home = /usr/bin\n"
    );
    m.unmount().unwrap();
}

#[test]
fn a_server_that_fails_reports_its_log() {
    let fx = Fixture::new();
    let mnt = fx.mountpoint("mnt");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo the tree is broken >&2; exit 3"]);
    let text = start(&fx, &mnt, cmd, "off").unwrap_err().to_string();
    assert!(
        text.contains("exited with") && text.contains("the tree is broken"),
        "{text}"
    );
    // A server that panics with a backtrace: the error still says why it failed (here a mount
    // point that is not empty, or what this machine lacks for mounting), not only frames.
    let full = fx.mountpoint("full");
    std::fs::write(full.join("x"), b"").unwrap();
    let why = match dx_py_fs_linux::serve::preflight(&MountOptions::default()) {
        Err(e) => e.to_string(),
        Ok(_) => "the directory is not empty".to_string(),
    };
    let mut server = serve_command("off");
    server.env("RUST_BACKTRACE", "1");
    let text = start(&fx, &full, server, "off").unwrap_err().to_string();
    assert!(text.contains(&why), "{text}");
    assert!(!text.contains("rust_begin_unwind"), "{text}");
}

/// Pages of `path` in `range` (rounded out to pages) that are in the page cache, and how many
/// pages that is; mincore over a fresh map (the caller owns the file, so the answer is true).
fn resident_pages(path: &Path, range: std::ops::Range<u64>) -> (usize, usize) {
    // A store object, never modified.
    let map = dx_py_core::sys::map_immutable(path).unwrap();
    let range = range.start..range.end.min(map.len() as u64);
    dx_py_core::sys::resident_pages(&map, range).unwrap()
}

/// Reads the 1 MiB `alpha/data.bin` through a mount with `threads` server threads and returns
/// how many pack pages wholly inside that file are still cached afterwards, of how many. `evict_first` drops
/// the pack from the page cache before mounting; otherwise it is all cached, as just written
/// (in large folios).
fn pack_pages_left_after_reading_through_a_mount(
    threads: usize,
    evict_first: bool,
) -> (usize, usize) {
    use dx_py_fs_linux::fs::Counters;
    use dx_py_fs_linux::tree::{DataSource, release_range, release_unit};
    let fx = Fixture::new();
    let fs = TreeFs::open(&fx.tree, &fx.store_dir).unwrap();
    let c = fs.counters();
    let rel = format!("{SP}/alpha/data.bin");
    let node = fs.tree().resolve(&rel).unwrap().unwrap();
    let DataSource::Pack { pack, offset } = node.source else {
        panic!("{node:?}")
    };
    let pack_path = PackageStore::open(&fx.store_dir).get_path(&fs.tree().pack(pack).unwrap().hash);
    let file = offset..offset + node.size;
    let inner = release_range(file.clone(), file, release_unit());
    let (resident, pages) = resident_pages(&pack_path, inner.clone());
    assert!(pages >= 252, "{inner:?}");
    assert_eq!(resident, pages, "the store was just written: all cached");
    if evict_first {
        evict(&pack_path);
        assert_eq!(resident_pages(&pack_path, inner.clone()).0, 0, "evicted");
    }
    let opts = MountOptions {
        threads,
        ..MountOptions::default()
    };
    let m = spawn(fs, &fx.mountpoint("mnt"), &opts).unwrap();
    let Want::File(big, _) = &fx.want[&rel] else {
        unreachable!()
    };
    assert_eq!(&std::fs::read(m.mountpoint().join(&rel)).unwrap(), big);
    // The server releases right after each reply, so the reader may get there first: wait.
    let t0 = std::time::Instant::now();
    while Counters::get(&c.released_bytes) < inner.end - inner.start
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        Counters::get(&c.released_bytes) >= inner.end - inner.start,
        "every page inside the file went through the pack's cache and was released"
    );
    // Served again from the mounted file's page cache: no read reaches the server.
    let reads = Counters::get(&c.reads);
    assert_eq!(&std::fs::read(m.mountpoint().join(&rel)).unwrap(), big);
    assert_eq!(Counters::get(&c.reads), reads);
    (resident_pages(&pack_path, inner).0, pages)
}

/// Drops the unmapped pages of `path` from the page cache.
fn evict(path: &Path) {
    let f = std::fs::File::open(path).unwrap();
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

#[test]
fn a_read_through_the_mount_leaves_none_of_its_pack_pages_cached() {
    if !can_mount() {
        return;
    }
    // Pages the server read in itself (prefetched exactly, in small folios).
    assert_eq!(pack_pages_left_after_reading_through_a_mount(1, true).0, 0);
    // The pack cached in large folios, as `dx-py install` leaves it: split and released too.
    assert_eq!(pack_pages_left_after_reading_through_a_mount(1, false).0, 0);
    // With parallel server threads, a reply can still be copying the page it shares with the
    // next request when that request's thread releases it; the page faults back in and stays.
    // At most one page per request (the kernel reads ahead in 128 KiB = 32 pages or more, so
    // a file of `pages` pages takes at most `pages / 32` requests, rounded up).
    let (left, pages) = pack_pages_left_after_reading_through_a_mount(4, true);
    assert!(left <= pages.div_ceil(32), "{left} of {pages} pages left");
}

#[test]
fn isatty_on_a_mounted_file_is_false() {
    if !can_mount() {
        return;
    }
    use dx_py_fs_linux::fs::Counters;
    let fx = Fixture::new();
    let fs = TreeFs::open(&fx.tree, &fx.store_dir).unwrap();
    let c = fs.counters();
    let m = spawn(fs, &fx.mountpoint("mnt"), &MountOptions::default()).unwrap();
    let path = m.mountpoint().join(SP).join("beta.py");
    for _ in 0..3 {
        let f = std::fs::File::open(&path).unwrap();
        assert!(!rustix::termios::isatty(&f));
    }
    // The kernel asks every time, whatever the server answers (docs/design/mount.md).
    assert_eq!(Counters::get(&c.ioctls), 3);
}

#[test]
fn bytecode_arriving_after_mounting_appears_beside_the_same_inodes() {
    if !can_mount() {
        return;
    }
    use dx_py_fs_linux::fs::Counters;
    use dx_py_fs_linux::tree::{PackPages, TreeData, open_tree};
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = PackageStore::open(&store_dir);
    let alpha = add_pack(
        &store,
        "alpha",
        &[
            sp("alpha/__init__.py", b"A = 1\n"),
            sp("alpha/sub/mod.py", b"M = 2\n"),
            sp("top.py", b"T = 3\n"),
        ],
    );
    // A `__pycache__` the first tree has already (a wheel's own, or a pack compiled earlier).
    let shipped = add_pack(
        &store,
        "shipped",
        &[sp("pre/__pycache__/x.pyc", b"shipped")],
    );
    let bytecode = add_pack(
        &store,
        "alpha",
        &[
            sp(
                "alpha/__pycache__/__init__.cpython-311.pyc",
                b"pyc of alpha",
            ),
            sp("alpha/sub/__pycache__/mod.cpython-311.pyc", b"pyc of mod"),
            sp("pre/__pycache__/y.pyc", b"compiled later"),
        ],
    );
    let stray = add_pack(&store, "stray", &[sp("stray.py", b"not bytecode")]);
    let tree = |packs: &[_], name: &str| {
        let spec = TreeSpec {
            packs: packs
                .iter()
                .map(|h| {
                    (
                        *h,
                        PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "x"),
                    )
                })
                .collect(),
            files: Vec::new(),
            symlinks: Vec::new(),
        };
        let path = dir.path().join(name);
        spec.build_to_file(&store, &path).unwrap();
        path
    };
    let first = tree(&[alpha, shipped], "first.dxtree");
    let full = tree(&[alpha, shipped, bytecode], "full.dxtree");
    let not_bytecode = tree(&[alpha, shipped, bytecode, stray], "stray.dxtree");
    let fewer = tree(&[alpha, bytecode], "fewer.dxtree");
    let data = |path: &Path| {
        TreeData::new(open_tree(path).unwrap(), PackageStore::open(&store_dir))
            .with_pack_pages(PackPages::Release)
    };

    let fs = TreeFs::open(&first, &store_dir).unwrap();
    let late = fs.expect_bytecode().unwrap();
    let c = fs.counters();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = spawn(fs, &mnt, &MountOptions::default()).unwrap();
    let site = m.mountpoint().join(SP);
    let ino = |p: &Path| std::fs::symlink_metadata(p).unwrap().ino();
    let list = |p: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let before = (
        ino(&site.join("alpha")),
        ino(&site.join("alpha/__init__.py")),
        ino(&site.join("pre/__pycache__")),
    );
    assert_eq!(list(&site.join("alpha")), ["__init__.py", "sub"]);
    assert_eq!(list(&site.join("pre/__pycache__")), ["x.pyc"]);
    // While bytecode is expected, absent bytecode names are asked again every time; other
    // absent names are cached.
    let n = Counters::get(&c.negative_lookups);
    for _ in 0..3 {
        assert!(std::fs::metadata(site.join("alpha/__pycache__")).is_err());
        assert!(std::fs::metadata(site.join("pre/__pycache__/y.pyc")).is_err());
        assert!(std::fs::metadata(site.join("alpha/absent.py")).is_err());
    }
    assert_eq!(Counters::get(&c.negative_lookups), n + 7);

    // A complete tree that is not this one plus bytecode changes nothing.
    for wrong in [&not_bytecode, &fewer] {
        let e = late.arrive(data(wrong)).unwrap_err();
        assert!(
            matches!(e, dx_py_fs_linux::late::LateError::Mismatch(_)),
            "{e}"
        );
    }
    let mut arrived = late.arrive(data(&full)).unwrap();
    arrived.dirs.sort_unstable();
    assert_eq!(
        arrived.dirs.len(),
        3,
        "alpha, alpha/sub and pre/__pycache__"
    );
    assert_eq!(arrived.names.len(), 3, "{:?}", arrived.names);
    let notify = m.notify().unwrap();
    for d in &arrived.dirs {
        notify.directory_changed(*d).unwrap();
    }
    for (d, name) in &arrived.names {
        notify.entry_changed(*d, name).unwrap();
    }

    assert_eq!(
        std::fs::read(site.join("alpha/__pycache__/__init__.cpython-311.pyc")).unwrap(),
        b"pyc of alpha"
    );
    assert_eq!(
        std::fs::read(site.join("alpha/sub/__pycache__/mod.cpython-311.pyc")).unwrap(),
        b"pyc of mod"
    );
    assert_eq!(
        std::fs::read(site.join("pre/__pycache__/y.pyc")).unwrap(),
        b"compiled later"
    );
    assert_eq!(
        list(&site.join("alpha")),
        ["__init__.py", "__pycache__", "sub"]
    );
    assert_eq!(list(&site.join("pre/__pycache__")), ["x.pyc", "y.pyc"]);
    assert_eq!(
        (
            ino(&site.join("alpha")),
            ino(&site.join("alpha/__init__.py")),
            ino(&site.join("pre/__pycache__")),
        ),
        before,
        "inodes the kernel knew keep their numbers"
    );
    assert_eq!(ino(&site.join("alpha/__pycache__/..")), before.0);
    // `..` as readdir lists it (not resolved through the kernel's entries).
    assert_eq!(listed_dotdot(&site.join("alpha")), ino(&site));
    assert_eq!(listed_dotdot(&site.join("alpha/__pycache__")), before.0);
    assert_eq!(
        listed_dotdot(&site.join("pre/__pycache__")),
        ino(&site.join("pre"))
    );
    let first_len = u64::from(open_tree(&first).unwrap().len());
    assert!(ino(&site.join("alpha/__pycache__")) > first_len);
    assert_eq!(
        std::fs::symlink_metadata(site.join("alpha"))
            .unwrap()
            .nlink(),
        4,
        "., .., sub and __pycache__"
    );
    // Now the same tree as the complete one, path for path and byte for byte.
    let direct = dir.path().join("direct");
    std::fs::create_dir(&direct).unwrap();
    let full_fs = TreeFs::open(&full, &store_dir).unwrap();
    let d = spawn(full_fs, &direct, &MountOptions::default()).unwrap();
    assert_eq!(walk(m.mountpoint()), walk(d.mountpoint()));
    // Absent names are cached again.
    let n = Counters::get(&c.negative_lookups);
    for _ in 0..3 {
        assert!(std::fs::metadata(site.join("absent/__pycache__")).is_err());
        assert!(std::fs::metadata(site.join("alpha/sub/__pycache__/no.pyc")).is_err());
    }
    assert_eq!(Counters::get(&c.negative_lookups), n + 2);
    assert!(matches!(
        late.arrive(data(&full)),
        Err(dx_py_fs_linux::late::LateError::AlreadyArrived)
    ));
    let statfs = statfs_files(m.mountpoint());
    assert_eq!(
        statfs,
        first_len + u64::from(open_tree(&full).unwrap().len())
    );
    d.unmount().unwrap();
    m.unmount().unwrap();
}

/// The inode number readdir gives for `..` in `dir`.
fn listed_dotdot(dir: &Path) -> u64 {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let mut stream = rustix::fs::Dir::read_from(&fd).unwrap();
    let mut found = None;
    while let Some(entry) = stream.read() {
        let entry = entry.unwrap();
        if entry.file_name().to_bytes() == b".." {
            found = Some(entry.ino());
        }
    }
    found.expect("every directory lists ..")
}

/// The file count `statfs` reports for the file system at `path`.
fn statfs_files(path: &Path) -> u64 {
    rustix::fs::statfs(path).unwrap().f_files
}

/// A compile that fails drops its handle: the mount stops waiting and caches misses again.
#[test]
fn bytecode_that_never_arrives_ends_the_wait() {
    if !can_mount() {
        return;
    }
    use dx_py_fs_linux::fs::Counters;
    let fx = Fixture::new();
    let fs = TreeFs::open(&fx.tree, &fx.store_dir).unwrap();
    let late = fs.expect_bytecode().unwrap();
    assert!(matches!(
        fs.expect_bytecode(),
        Err(dx_py_fs_linux::late::LateError::AlreadyExpected)
    ));
    let c = fs.counters();
    let m = spawn(fs, &fx.mountpoint("mnt"), &MountOptions::default()).unwrap();
    let pycache = m.mountpoint().join(SP).join("alpha/__pycache__");
    let n = Counters::get(&c.negative_lookups);
    assert!(std::fs::metadata(&pycache).is_err());
    assert!(std::fs::metadata(&pycache).is_err());
    assert_eq!(
        Counters::get(&c.negative_lookups),
        n + 2,
        "not cached while waiting"
    );
    drop(late);
    for _ in 0..3 {
        assert!(std::fs::metadata(&pycache).is_err());
    }
    assert_eq!(
        Counters::get(&c.negative_lookups),
        n + 3,
        "cached once the wait ended"
    );
    m.unmount().unwrap();
}

/// A tree laid out from a package not stored yet mounts at once: its names and sizes are
/// there, a read of its bytes waits until the package arrives (and then gets them), and a
/// package that fails to arrive fails its reads with `EIO` instead of hanging.
#[test]
fn a_package_stored_after_mounting_is_read_once_it_arrives() {
    if !can_mount() {
        return;
    }
    use std::collections::HashMap;
    use std::sync::Arc;

    use dx_py_core::dxpkg::DxpkgWriter;
    use dx_py_core::hash::ContentHash;

    use dx_py_fs_linux::tree::ArrivingPacks;

    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = PackageStore::open(&store_dir);
    let body = noise(300 << 10, 3);
    let mut w = DxpkgWriter::new("late", "1.0", "late-1.0.dist-info");
    w.add(
        Scheme::SitePackages,
        "late/__init__.py",
        EntryKind::File,
        0o644,
        b"L = 1\n".to_vec(),
    );
    w.add_deferred(
        Scheme::SitePackages,
        "late/data.bin",
        EntryKind::File,
        0o644,
        body.len() as u64,
        0,
    );
    let prepared = w.prepare().unwrap();
    let layout = prepared.layout();
    let mut bytes = Vec::new();
    prepared
        .write_with(&mut bytes, |_, out| out.write_all(&body))
        .unwrap();
    let key = ContentHash::from_bytes([5; 32]);
    let spec = TreeSpec {
        packs: vec![(
            key,
            PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "late"),
        )],
        files: vec![],
        symlinks: vec![],
    };
    let tree = dir.path().join("planned.dxtree");
    dx_py_fs_linux::tree::write_tree(
        &tree,
        &spec
            .build_with(&store, &HashMap::from([(key, &layout)]))
            .unwrap(),
    )
    .unwrap();

    for arrives in [true, false] {
        let arriving = Arc::new(ArrivingPacks::new([0]));
        let fs = TreeFs::open(&tree, &store_dir)
            .unwrap()
            .arriving(Arc::clone(&arriving));
        let name = if arrives { "mnt-arrives" } else { "mnt-fails" };
        std::fs::create_dir(dir.path().join(name)).unwrap();
        let m = spawn(fs, &dir.path().join(name), &MountOptions::default()).unwrap();
        let data = m.mountpoint().join(SP).join("late/data.bin");
        assert_eq!(std::fs::metadata(&data).unwrap().len(), body.len() as u64);
        let reader = {
            let data = data.clone();
            std::thread::spawn(move || std::fs::read(data))
        };
        // The read asks for the package and waits; the storer takes it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !arriving.wanted(0) {
            assert!(std::time::Instant::now() < deadline, "the read never asked");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(!reader.is_finished(), "the read did not wait");
        let slot = arriving.next(&[0]).unwrap();
        if arrives {
            arriving.stored(slot, store.store(&bytes).unwrap());
            assert_eq!(reader.join().unwrap().unwrap(), body);
            let init = m.mountpoint().join(SP).join("late/__init__.py");
            assert_eq!(std::fs::read(init).unwrap(), b"L = 1\n");
        } else {
            arriving.failed(slot, "RECORD mismatch".into());
            let err = reader.join().unwrap().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
        }
        m.unmount().unwrap();
    }
}

/// The server knows how long since its mount was last read or listed (a compile after
/// mounting waits while it is in use).
#[test]
fn idle_time_counts_from_the_last_request() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new();
    let fs = TreeFs::open(&fx.tree, &fx.store_dir).unwrap();
    let c = fs.counters();
    let m = spawn(fs, &fx.mountpoint("mnt"), &MountOptions::default()).unwrap();
    std::fs::read(m.mountpoint().join(SP).join("alpha/__init__.py")).unwrap();
    let just_now = c.idle_for().expect("a request came");
    std::thread::sleep(Duration::from_millis(300));
    let later = c.idle_for().unwrap();
    assert!(
        later >= just_now + Duration::from_millis(300),
        "{just_now:?} then {later:?}"
    );
    // A lookup alone (what a poller makes) is not use; a listing is.
    let _ = std::fs::metadata(m.mountpoint().join(SP).join("absent-name"));
    assert!(c.idle_for().unwrap() >= later, "a lookup counted as use");
    assert!(std::fs::read_dir(m.mountpoint().join(SP)).unwrap().count() > 0);
    assert!(
        c.idle_for().unwrap() < later,
        "a listing restarts the count"
    );
    m.unmount().unwrap();
}
