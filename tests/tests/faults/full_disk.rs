//! A cache on a full disk: a small ext4 file system on a loop device, filled up to a chosen
//! amount of free space so that an install runs out while it stores a package; with room for
//! one copy of the package (it is written once) it works. The failure exits non-zero with a
//! message that names a path and says the disk is full, leaves nothing half-written, and once
//! space is freed the same install works.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, can_run, root, skip};

use super::{Project, assert_cache_sound};

/// Size of the file system: room for the cache's small files and a copy or two of the package.
const DISK_MIB: u64 = 32;

/// The package's incompressible payload: its store object and its unpacked copy are each a
/// little over this.
const PAYLOAD: usize = 6 << 20;

/// An ext4 file system in a file, loop-mounted at `dir`; unmounted (and the file removed with
/// the test's temp dir) on drop, also when the test fails.
struct LoopDisk {
    dir: PathBuf,
}

impl LoopDisk {
    /// Makes and mounts it under `root`; `Err(why)` when this machine cannot.
    fn new(root: &Path) -> Result<Self, String> {
        let image = root.join("disk.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(DISK_MIB << 20))
            .map_err(|e| format!("cannot make the disk image: {e}"))?;
        // No reserved blocks, no journal: free space is what the test computes.
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
            .arg(&image)
            .output()
            .map_err(|e| format!("`mkfs.ext4` cannot run ({e})"))?;
        if !mkfs.status.success() {
            return Err(format!(
                "`mkfs.ext4` failed: {}",
                String::from_utf8_lossy(&mkfs.stderr).trim()
            ));
        }
        let dir = root.join("disk");
        std::fs::create_dir_all(&dir).unwrap();
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir)
            .output()
            .map_err(|e| format!("`mount` cannot run ({e})"))?;
        if !mount.status.success() {
            return Err(format!(
                "`mount -o loop` failed (no loop devices here?): {}",
                String::from_utf8_lossy(&mount.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    /// Fills the disk with `filler`, then shrinks it so that about `free` bytes stay free.
    fn leave_free(&self, free: u64) -> PathBuf {
        let filler = self.dir.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0xa5u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        f.set_len(written.saturating_sub(free)).unwrap();
        f.sync_all().unwrap();
        filler
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        if Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success())
        {
            return;
        }
        // Busy (a test failed with a file open): detach it anyway.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Asserts that `out` is a failure that says the disk is full and names a path under `disk`.
fn assert_disk_full(out: &std::process::Output, disk: &Path, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code() != Some(101),
        "{what}: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        stderr.contains("No space left on device"),
        "{what}: the message does not say the disk is full: {stderr}"
    );
    assert!(
        stderr.contains(&*disk.to_string_lossy()),
        "{what}: the message names no path on the full disk: {stderr}"
    );
}

#[test]
fn an_install_that_fills_the_disk_fails_clearly_and_leaves_nothing_half_written() {
    if !can_run(root()) {
        return;
    }
    let cx = TestContext::new();
    let disk = match LoopDisk::new(cx.temp.path()) {
        Ok(disk) => disk,
        Err(why) => {
            skip(why);
            return;
        }
    };
    let project = Project::synthetic(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("bulky", "1.0")
                .file("bulky/__init__.py", b"SIZE = 1\n")
                .file(
                    "bulky/blob.bin",
                    &dx_py_core::testing::noise(PAYLOAD, 0x9e37_79b9_7f4a_7c15),
                ),
            WheelBuilder::new("tiny", "1.0").file("tiny.py", b"T = 1\n"),
        ],
        "bulky, tiny",
    );
    project.write_requirements(&cx.project());
    let cache = disk.dir.join("cache");
    let install = |venv: &str| {
        cx.dx_py()
            .env("DX_PY_CACHE_DIR", &cache)
            .args(project.args("install", &["--venv", venv]))
            .output()
            .unwrap()
    };
    // Less room than the store object: storing fails.
    let filler = disk.leave_free(3 << 20);
    assert_disk_full(&install("a"), &disk.dir, "storing");
    assert_cache_sound(&cx, &cache, "storing on a full disk");
    std::fs::remove_file(&filler).unwrap();
    // Room for one copy of the package and not for two: enough, since the package is written
    // once, as its unpacked copy (docs/design/store-one-copy.md).
    let filler = disk.leave_free((PAYLOAD as u64) + (3 << 20));
    let out = install("b");
    dx_py_tests::assert_success(&out, "install with room for one copy");
    project.check_venv(&cx.project().join("b"), "with room for one copy");
    assert_cache_sound(&cx, &cache, "the install with room for one copy");
    // Space freed: the same install works and holds the wheels' bytes.
    std::fs::remove_file(&filler).unwrap();
    let out = install("c");
    dx_py_tests::assert_success(&out, "install after freeing space");
    project.check_venv(&cx.project().join("c"), "after freeing space");
    assert_cache_sound(&cx, &cache, "the install after freeing space");
}
