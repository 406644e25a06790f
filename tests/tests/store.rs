//! `dx-py store add | verify | path` end to end, on real wheels and hostile ones.
use std::collections::BTreeSet;
use std::process::Command;

use dx_py_core::wheel::testing::{RawEntry, WheelBuilder, with_record, zip_entries};
use dx_py_tests::{TestContext, dx_py_bin, fetch_wheels};

fn wheels_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn real_wheels_are_stored_once_and_verified() {
    let Some(dir) = fetch_wheels("requests", &["requests==2.32.3"]) else {
        dx_py_tests::skip("its wheels could not be downloaded (`python3 -m pip download`)");
        return;
    };
    let cx = TestContext::new();
    let wheels = wheels_in(&dir);
    let mut args = vec!["store", "add"];
    args.extend(wheels.iter().map(String::as_str));
    let first = cx.run_ok(&args);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), wheels.len());
    assert!(first.contains("  requests 2.32.3\n"), "{first}");
    // Adding again gives the same hashes and no new objects (dedup).
    assert_eq!(cx.run_ok(&args), first);
    let objects = walk_objects(&cx.cache_dir().join("store"));
    assert_eq!(objects.len(), wheels.len());
    // Each wheel's record names its object, so a lock naming the wheel finds it unconverted.
    let records = std::fs::read_dir(cx.cache_dir().join("store/wheels")).unwrap();
    let named: BTreeSet<String> = records
        .flatten()
        .map(|r| format!("{}.dxpkg", std::fs::read_to_string(r.path()).unwrap()))
        .collect();
    assert_eq!(named, objects);

    cx.run_ok(&["store", "verify"]);
    let hash = lines[0].split_whitespace().next().unwrap();
    let path = cx.run_ok(&["store", "path", hash]);
    let path = std::path::PathBuf::from(path.trim());
    assert!(path.ends_with(format!("{}/{}/{hash}.dxpkg", &hash[..2], &hash[2..4])));

    // Corrupt one object: verify lists exactly it and exits 1.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let out = cx.dx_py().args(["store", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hash);
    let out = cx
        .dx_py()
        .args([
            "store",
            "verify",
            lines[1].split_whitespace().next().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

fn walk_objects(root: &std::path::Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n == "wheels") && d == root {
                // Which object each wheel became: records, not objects.
                continue;
            } else if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dxpkg") {
                out.insert(p.file_name().unwrap().to_string_lossy().into_owned());
            } else if p.extension().is_some_and(|x| x == "dxcv") {
                // An object's group hashes (docs/formats/dxcv.md), only beside its object.
                assert!(p.with_extension("dxpkg").is_file(), "{}", p.display());
            } else {
                panic!("unexpected file in the store: {}", p.display());
            }
        }
    }
    out
}

#[test]
fn concurrent_processes_store_the_same_packages() {
    let cx = TestContext::new();
    let mut paths = Vec::new();
    for i in 0..4 {
        let w = WheelBuilder::new(&format!("pkg{i}"), "1.0").file(
            &format!("pkg{i}/__init__.py"),
            format!("X = {i}\n").repeat(2000).as_bytes(),
        );
        let path = cx.project().join(w.filename());
        std::fs::write(&path, w.build()).unwrap();
        paths.push(path);
    }
    let children: Vec<_> = (0..6)
        .map(|k| {
            let mut order = paths.clone();
            order.rotate_left(k % paths.len());
            Command::new(dx_py_bin())
                .env("DX_PY_CACHE_DIR", cx.cache_dir())
                .args(["store", "add"])
                .args(&order)
                .output()
        })
        .collect();
    let mut all = BTreeSet::new();
    for child in children {
        let out = child.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            all.insert(line.to_string());
        }
    }
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(walk_objects(&cx.cache_dir().join("store")).len(), 4);
    cx.run_ok(&["store", "verify"]);
}

#[test]
fn hostile_wheels_are_refused_with_the_reason() {
    let cx = TestContext::new();
    // A path that climbs out of site-packages, with a RECORD that lists it honestly.
    let name = "evil-1.0-py3-none-any.whl";
    let entries = with_record(
        vec![
            RawEntry::file("../../escape.py", b"boom"),
            RawEntry::file(
                "evil-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
            ),
            RawEntry::file(
                "evil-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            ),
        ],
        "evil-1.0.dist-info/RECORD",
    );
    std::fs::write(cx.project().join(name), zip_entries(&entries)).unwrap();
    let err = cx.run_err(&["store", "add", name], 1);
    assert!(
        err.contains(name) && err.contains("../../escape.py"),
        "{err}"
    );

    // A file whose bytes do not match RECORD.
    let good = WheelBuilder::new("tamper", "1.0").file("tamper/__init__.py", b"ok\n");
    let mut entries = good.entries();
    for e in &mut entries {
        if e.path == "tamper/__init__.py" {
            e.data = b"OK\n".to_vec();
        }
    }
    std::fs::write(cx.project().join(good.filename()), zip_entries(&entries)).unwrap();
    let err = cx.run_err(&["store", "add", &good.filename()], 1);
    assert!(err.contains("tamper/__init__.py"), "{err}");

    // Garbage and truncated files.
    std::fs::write(cx.project().join("junk-1.0-py3-none-any.whl"), b"not a zip").unwrap();
    cx.run_err(&["store", "add", "junk-1.0-py3-none-any.whl"], 1);
    assert!(
        !cx.cache_dir().join("store").exists()
            || walk_objects(&cx.cache_dir().join("store")).is_empty()
    );
}
