//! Crafted wheels through `dx-py install --find-links`, into a venv that already holds another
//! lock: each is refused (exit 1) with a message naming the wheel and the problem, nothing is
//! written outside the cache and the venvs, the venv is unchanged and still works, and the cache
//! keeps no temporary.
use std::collections::BTreeMap;
use std::path::Path;

use dx_py_core::wheel::testing::{RawEntry, WheelBuilder, with_record, zip_entries};
use dx_py_tests::{TestContext, snapshot, venv_python};

use super::{Project, assert_cache_sound};

/// One crafted wheel: its file name, its bytes, and what the refusal must say (the entry and
/// the problem).
struct Crafted {
    filename: String,
    bytes: Vec<u8>,
    problem: [String; 2],
}

/// A wheel of `name` 1.0 with `file`, whose entries `edit` changes before zipping (the RECORD
/// is then as `edit` leaves it).
fn crafted(
    name: &str,
    problem: [&str; 2],
    build: impl FnOnce(WheelBuilder) -> WheelBuilder,
    edit: impl FnOnce(&WheelBuilder, &mut Vec<RawEntry>),
) -> Crafted {
    let wheel =
        build(WheelBuilder::new(name, "1.0").file(&format!("{name}/__init__.py"), b"OK = True\n"));
    let mut entries = wheel.entries();
    edit(&wheel, &mut entries);
    Crafted {
        filename: wheel.filename(),
        bytes: zip_entries(&entries),
        problem: problem.map(str::to_string),
    }
}

/// Renames the zip entry `from` to `to` (same length) in its local header and in the central
/// directory: the zip writer refuses to write a name twice, the format does not.
fn rename_entry(zip: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut renamed = 0;
    for i in 0..zip.len().saturating_sub(46) {
        // Local file header: name length at 26, name at 30; central directory: 28 and 46.
        let (len_at, name_at) = match zip[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => (26, 30),
            [0x50, 0x4b, 0x01, 0x02] => (28, 46),
            _ => continue,
        };
        let len = usize::from(u16::from_le_bytes([zip[i + len_at], zip[i + len_at + 1]]));
        let name = i + name_at..i + name_at + len;
        if len == from.len() && zip.get(name.clone()) == Some(from.as_bytes()) {
            zip[name].copy_from_slice(to.as_bytes());
            renamed += 1;
        }
    }
    assert_eq!(
        renamed, 2,
        "`{from}` in the local header and the central directory"
    );
}

/// Every crafted wheel; `escape` is a path outside everything the test owns that two of them
/// try to write.
fn all_crafted(escape: &str) -> Vec<Crafted> {
    let climb = format!("../../../../../../../../../..{escape}");
    let mut dup = crafted(
        "dup",
        ["dup/aaaa.py", "duplicate entry"],
        |w| {
            w.file("dup/aaaa.py", b"A = 1\n")
                .file("dup/bbbb.py", b"B = 2\n")
        },
        |_, _| {},
    );
    rename_entry(&mut dup.bytes, "dup/bbbb.py", "dup/aaaa.py");
    vec![
        crafted(
            "climb",
            [&climb, "`..` component"],
            |w| w.raw(RawEntry::file(&climb, b"x")),
            |_, _| {},
        ),
        crafted(
            "absolute",
            [escape, "absolute path"],
            |w| w.raw(RawEntry::file(escape, b"x")),
            |_, _| {},
        ),
        crafted(
            "tampered",
            ["tampered/__init__.py", "RECORD"],
            |w| w,
            |_, entries| {
                let file = entries
                    .iter_mut()
                    .find(|e| e.path == "tampered/__init__.py");
                // Same length: only the sha256 differs from RECORD.
                file.unwrap().data = b"OK = Nope\n".to_vec();
            },
        ),
        crafted(
            "unlisted",
            ["unlisted/extra.py", "not listed in RECORD"],
            |w| w,
            |_, entries| entries.push(RawEntry::file("unlisted/extra.py", b"x = 1\n")),
        ),
        crafted(
            "leaky",
            ["leaky/passwd", "leaves the package"],
            |w| w.symlink("leaky/passwd", "../../../../../../../../etc/passwd"),
            |_, _| {},
        ),
        crafted(
            "bomb",
            ["bomb/zeros.bin", "zip bomb"],
            |w| w.file("bomb/zeros.bin", &vec![0u8; 8 << 20]),
            |_, _| {},
        ),
        dup,
        crafted(
            "misnamed",
            ["other-1.0.dist-info", "does not match the file name"],
            |w| w,
            |w, entries| {
                let from = format!("{}/", w.dist_info());
                let mut renamed: Vec<RawEntry> = std::mem::take(entries)
                    .into_iter()
                    .filter(|e| e.path != w.record_path())
                    .map(|mut e| {
                        if let Some(rest) = e.path.strip_prefix(&from) {
                            e.path = format!("other-1.0.dist-info/{rest}");
                        }
                        e
                    })
                    .collect();
                renamed = with_record(renamed, "other-1.0.dist-info/RECORD");
                *entries = renamed;
            },
        ),
    ]
}

/// Everything under `root` but the cache, with bytes (what the test owns outside the cache).
fn world(cx: &TestContext) -> BTreeMap<String, Vec<u8>> {
    let mut all = snapshot(cx.temp.path());
    all.retain(|path, _| !path.starts_with("cache/"));
    all
}

#[test]
fn crafted_wheels_are_refused_naming_the_wheel_and_the_problem_and_change_nothing() {
    let cx = TestContext::new();
    let good = Project::synthetic(
        &cx.temp.path().join("wheels"),
        &[WheelBuilder::new("solid", "1.0").file("solid/__init__.py", b"OK = 1\n")],
        "solid",
    );
    good.write_requirements(&cx.project());
    cx.run_ok(&good.args("install", &[]));
    let escape = format!("/tmp/dx-py-crafted-escape-{}.py", std::process::id());
    let cases = all_crafted(&escape);
    for case in &cases {
        let dir = cx.temp.path().join("crafted").join(&case.filename);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&case.filename), &case.bytes).unwrap();
        let name = case.filename.split('-').next().unwrap();
        std::fs::write(dir.join("requirements.txt"), format!("{name}==1.0\n")).unwrap();
    }
    let before = world(&cx);
    let venv = cx.project().join(".venv");
    for case in &cases {
        let dir = cx.temp.path().join("crafted").join(&case.filename);
        let out = cx
            .dx_py()
            .arg("install")
            .arg("-r")
            .arg(dir.join("requirements.txt"))
            .args(["--venv", ".venv", "--no-index", "--find-links"])
            .arg(&dir)
            .output()
            .unwrap();
        let what = &case.filename;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(
            stderr.contains(what),
            "{what}: the message names no wheel: {stderr}"
        );
        for said in &case.problem {
            assert!(
                stderr.contains(said),
                "{what}: the message does not say `{said}`: {stderr}"
            );
        }
        assert!(
            world(&cx) == before,
            "{what}: files outside the cache changed"
        );
        assert!(!Path::new(&escape).exists(), "{what}: wrote {escape}");
        assert_cache_sound(&cx, &cx.cache_dir(), what);
    }
    good.check_venv(&venv, "the venv after the crafted wheels");
    venv_python(&venv, "import solid; assert solid.OK == 1");
}
