//! Verified reads end to end: a byte flipped in a store object's file data never reaches a venv
//! (install fails naming the object, the mount answers EIO for that file and serves the rest),
//! and a file edited in an unpacked copy is not linked into new layouts.
use std::path::{Path, PathBuf};
use std::process::Command;

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, layout_site_packages, venv_python, write_wheels};

/// Marks the byte to flip inside `dmg/big.py`.
const MARKER: &[u8] = b"# FLIP-ME-HERE\n";

/// `dmg/big.py` (about 100 KiB, several 16 KiB groups), `dmg/tail.bin` (40 KiB), and
/// `dmg/__init__.py`.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    let mut big = Vec::new();
    for i in 0..2000 {
        big.extend_from_slice(format!("X{i} = {i}  # filler line\n").as_bytes());
        if i == 1500 {
            big.extend_from_slice(MARKER);
        }
    }
    let tail: Vec<u8> = (0..40u32 << 10).map(|i| (i % 241) as u8).collect();
    vec![
        ("dmg/__init__.py", b"OK = 1\n".to_vec()),
        ("dmg/big.py", big),
        ("dmg/tail.bin", tail),
    ]
}

fn setup(cx: &TestContext) -> PathBuf {
    let mut wheel = WheelBuilder::new("dmg", "1.0");
    for (path, bytes) in files() {
        wheel = wheel.file(path, &bytes);
    }
    let wheels = write_wheels(&cx.temp.path().join("wheels"), &[wheel]);
    std::fs::write(cx.project().join("requirements.txt"), "dmg==1.0\n").unwrap();
    wheels
}

/// Every file under `dir` whose name ends with `suffix`.
fn find(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(find(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out
}

/// Flips a bit inside the marker of `dmg/big.py` in its store object; returns the object. An
/// installed object is thin (docs/design/store-one-copy.md): the bytes are flipped in its
/// unpacked copy, in place (the inode that layouts link).
fn damage_object(cx: &TestContext) -> PathBuf {
    let store = cx.cache_dir().join("store");
    let flip = |file: &Path| {
        let mut bytes = std::fs::read(file).unwrap();
        let at = bytes.windows(MARKER.len()).position(|w| w == MARKER)?;
        bytes[at + 2] ^= 0x20;
        let mut perms = std::fs::metadata(file).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(file, perms).unwrap();
        std::fs::write(file, bytes).unwrap();
        Some(())
    };
    for object in find(&store, ".dxpkg") {
        if flip(&object).is_some() {
            return object;
        }
    }
    for object in find(&store, ".dxthin") {
        let hex = object.file_stem().unwrap().to_string_lossy().into_owned();
        let file = store
            .join("unpacked")
            .join(hex)
            .join("site-packages/dmg/big.py");
        if file.is_file() && flip(&file).is_some() {
            return object;
        }
    }
    panic!("no object holds dmg/big.py");
}

fn site_packages(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    let py = std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("python"))
        .unwrap()
        .file_name();
    lib.join(py).join("site-packages")
}

#[test]
fn a_damaged_object_fails_an_install_that_rebuilds_from_it() {
    let cx = TestContext::new();
    let wheels = setup(&cx);
    dx_py_tests::assert_success(
        &dx_py_tests::install_from(&cx, &wheels, ".venv"),
        "first install",
    );
    let object = damage_object(&cx);
    // Nothing prebuilt to fall back on: the layout is made again from the object (thin: from
    // its unpacked copy, which is the object's data).
    cx.run_ok(&["cache", "clean", "--layouts", "--force"]);
    let out = dx_py_tests::install_from(&cx, &wheels, "second");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let name = object.file_name().unwrap().to_string_lossy();
    assert!(stderr.contains(name.as_ref()), "names the object: {stderr}");
    assert!(
        stderr.contains("damaged") && stderr.contains("cache verify --repair"),
        "{stderr}"
    );
    let sp = cx.project().join("second");
    assert!(
        !sp.exists() || find(&sp, "big.py").is_empty(),
        "no damaged byte in the venv"
    );
}

/// The unpacked copy is a thin object's data (docs/design/store-one-copy.md): an edited file
/// is a damaged object, refused by the next install that needs it (naming the file and the
/// repair), until `cache verify --repair` removes it and the install converts the wheel again.
#[test]
fn an_edited_unpacked_file_does_not_reach_a_new_layout() {
    let cx = TestContext::new();
    let wheels = setup(&cx);
    dx_py_tests::assert_success(
        &dx_py_tests::install_from(&cx, &wheels, ".venv"),
        "first install",
    );
    // A user editing a file in site-packages edits the hardlinked unpacked copy.
    let edited = layout_site_packages(&cx.project().join(".venv")).join("dmg/__init__.py");
    let real = std::fs::canonicalize(&edited).unwrap();
    let mut perms = std::fs::metadata(&real).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&real, perms).unwrap();
    // A later clock tick than the unpacking (timestamps advance in ticks of up to 10 ms).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&real, b"OK = 2\n").unwrap();
    cx.run_ok(&["cache", "clean", "--layouts", "--force"]);
    let out = dx_py_tests::install_from(&cx, &wheels, "second");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dmg/__init__.py")
            && stderr.contains("changed")
            && stderr.contains("cache verify --repair"),
        "{stderr}"
    );
    cx.run_ok(&["cache", "verify", "--repair"]);
    let out = dx_py_tests::install_from(&cx, &wheels, "second");
    dx_py_tests::assert_success(&out, "second install");
    let second = cx.project().join("second");
    assert_eq!(
        std::fs::read(layout_site_packages(&second).join("dmg/__init__.py")).unwrap(),
        b"OK = 1\n"
    );
    venv_python(&second, "import dmg; assert dmg.OK == 1");
}

/// Unmounts on drop, also when the test fails.
struct Mounted<'a> {
    cx: &'a TestContext,
    venv: PathBuf,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = self.cx.dx_py().arg("unmount").arg(&self.venv).output();
        let _ = Command::new("umount").arg("-l").arg(&self.venv).output();
    }
}

#[test]
fn the_mount_refuses_a_damaged_file_and_serves_its_neighbours() {
    if !dx_py_tests::can_mount() {
        return;
    }
    let cx = TestContext::new();
    let wheels = setup(&cx);
    dx_py_tests::assert_success(&dx_py_tests::install_from(&cx, &wheels, ".venv"), "install");
    damage_object(&cx);
    // The pack's read path: with passthrough the mount would serve the unpacked copy that
    // `install` left, which is intact (docs/design/mount.md, "Passthrough").
    let out = cx
        .dx_py()
        .args(["mount", "m", "-r", "requirements.txt", "--find-links"])
        .arg(&wheels)
        .env("DX_PY_MOUNT_PASSTHROUGH", "0")
        .output()
        .unwrap();
    let mounted = Mounted {
        cx: &cx,
        venv: cx.project().join("m"),
    };
    dx_py_tests::assert_success(&out, "dx-py mount");
    let sp = site_packages(&mounted.venv);
    let err = std::fs::read(sp.join("dmg/big.py")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO: {err}");
    // The other files of the package, byte for byte as the wheel's RECORD has them.
    let want = files();
    for (path, bytes) in &want[..] {
        if *path != "dmg/big.py" {
            assert_eq!(&std::fs::read(sp.join(path)).unwrap(), bytes, "{path}");
        }
    }
    let record = std::fs::read_to_string(sp.join("dmg-1.0.dist-info/RECORD")).unwrap();
    for (path, bytes) in &want {
        use sha2::Digest;
        let digest = data_encoding::BASE64URL_NOPAD.encode(&sha2::Sha256::digest(bytes));
        assert!(
            record.contains(&format!("{path},sha256={digest},")),
            "{path} in {record}"
        );
    }
    let log: String = find(&cx.cache_dir().join("mounts"), ".log")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        log.contains("site-packages/dmg/big.py") && log.contains("dmg 1.0"),
        "the log names the package and the path: {log}"
    );
}
