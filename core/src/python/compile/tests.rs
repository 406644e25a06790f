//! Compiling with real interpreters, and the framing checks.
use std::path::Path;
use std::process::Command;

use super::batch::{MIN_BATCH_BYTES, worker_count};
use super::pyc::pyc_path;
use super::worker::{SKIPPED, read_answers};
use super::*;
use crate::python::Interpreter;
use crate::python::interpreter::tests::pyenv_python;

fn interp(minor: u32, cache: &Path) -> Option<Interpreter> {
    let python = pyenv_python(minor)?;
    Some(Interpreter::find(python.to_str(), cache).unwrap())
}

fn python_out(python: &Path, dir: &Path, code: &str) -> String {
    let out = Command::new(python)
        .args(["-c", code])
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPYCACHEPREFIX")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pyc_paths_follow_cache_from_source() {
    let t = "cpython-311";
    assert_eq!(
        pyc_path("mod.py", t).unwrap(),
        "__pycache__/mod.cpython-311.pyc"
    );
    assert_eq!(
        pyc_path("pkg/sub/__init__.py", t).unwrap(),
        "pkg/sub/__pycache__/__init__.cpython-311.pyc"
    );
    assert_eq!(
        pyc_path("a.b.py", t).unwrap(),
        "__pycache__/a.b.cpython-311.pyc"
    );
    for bad in [
        "mod.txt",
        "/abs/mod.py",
        "../mod.py",
        "pkg/../mod.py",
        "pkg//m.py",
        ".py",
        "pkg/.py",
    ] {
        assert!(pyc_path(bad, t).is_none(), "{bad}");
    }
}

#[test]
fn one_worker_per_half_mebibyte_up_to_jobs() {
    assert_eq!(worker_count(10, 100, 8), 1, "small input: one process");
    assert_eq!(worker_count(MIN_BATCH_BYTES * 3, 100, 8), 3);
    assert_eq!(worker_count(MIN_BATCH_BYTES * 30, 100, 2), 2);
    assert_eq!(
        worker_count(MIN_BATCH_BYTES * 30, 1, 8),
        1,
        "no more than sources"
    );
    assert_eq!(worker_count(MIN_BATCH_BYTES * 30, 100, 0), 1);
}

#[test]
fn garbled_answers_are_errors() {
    let ok = |len: u32, body: usize| {
        let mut v = len.to_le_bytes().to_vec();
        v.extend(std::iter::repeat_n(0u8, body));
        v
    };
    assert_eq!(read_answers(&ok(16, 16)[..], [0]).unwrap().len(), 1);
    assert_eq!(
        read_answers(&SKIPPED.to_le_bytes()[..], [7]).unwrap(),
        [(7, None)]
    );
    assert!(
        read_answers(&ok(16, 15)[..], [0])
            .unwrap_err()
            .to_string()
            .contains("expected 16 bytes")
    );
    assert!(
        read_answers(&ok(3, 3)[..], [0])
            .unwrap_err()
            .to_string()
            .contains("got 3")
    );
    assert!(
        read_answers(&[1u8, 0][..], [0])
            .unwrap_err()
            .to_string()
            .contains("expected a length")
    );
    assert!(
        read_answers(&ok(16, 17)[..], [0])
            .unwrap_err()
            .to_string()
            .contains("got more")
    );
    assert!(read_answers(&ok(u32::MAX - 1, 0)[..], [0]).is_err());
}

/// Compile source A, then replace the `.py` with source B: importing shows A's behaviour,
/// so the pyc is used and its hash is not checked against the source.
#[test]
fn unchecked_pyc_is_used_without_looking_at_the_source() {
    let cache = tempfile::tempdir().unwrap();
    for minor in [11, 12] {
        let Some(interp) = interp(minor, cache.path()) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let a = b"WHO = 'A'\n";
        let pycs = compile_sources(&interp, [("pkg/mod.py", &a[..])]).unwrap();
        assert_eq!(pycs.len(), 1);
        let (path, pyc) = &pycs[0];
        assert_eq!(*path, format!("pkg/__pycache__/mod.cpython-3{minor}.pyc"));
        assert_eq!(&pyc[4..8], &[1, 0, 0, 0], "flags: hash-based, unchecked");

        fs_err::create_dir_all(dir.path().join("pkg")).unwrap();
        fs_err::write(dir.path().join("pkg/__init__.py"), "").unwrap();
        fs_err::write(
            dir.path().join("pkg/mod.py"),
            "WHO = 'B, a longer source'\n",
        )
        .unwrap();
        write_pycs(dir.path(), &pycs).unwrap();
        let python = interp.path();
        let out = python_out(
            python,
            dir.path(),
            "import importlib.util as u, pkg.mod as m; \
             print(m.WHO); print(u.MAGIC_NUMBER.hex()); print(u.source_hash(b\"WHO = 'A'\\n\").hex())",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "A", "3.{minor}: the pyc was not used");
        assert_eq!(lines[1], data_encoding::HEXLOWER.encode(&pyc[..4]));
        assert_eq!(lines[2], data_encoding::HEXLOWER.encode(&pyc[8..16]));
    }
}

#[test]
fn bad_sources_are_skipped_and_order_kept() {
    let cache = tempfile::tempdir().unwrap();
    let Some(interp) = interp(11, cache.path()) else {
        return;
    };
    let sources: Vec<(&str, &[u8])> = vec![
        ("a.py", b"x = 1\n"),
        ("py2.py", b"print 'hello'\n"),
        ("nul.py", b"x = 1\0\n"),
        ("enc.py", b"# -*- coding: nonsense -*-\nx = 1\n"),
        ("warn.py", b"s = '\\d'\n"),
        ("data.txt", b"not python"),
        ("../escape.py", b"x = 1\n"),
        ("b/c.py", b"def f():\n    return 2\n"),
    ];
    let pycs = compile_sources(&interp, sources).unwrap();
    let names: Vec<&str> = pycs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "__pycache__/a.cpython-311.pyc",
            "__pycache__/warn.cpython-311.pyc",
            "b/__pycache__/c.cpython-311.pyc"
        ]
    );
    assert!(
        compile_sources(&interp, std::iter::empty())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn parallel_batches_match_one_process() {
    let cache = tempfile::tempdir().unwrap();
    let Some(interp) = interp(11, cache.path()) else {
        return;
    };
    let body: String = (0..2000)
        .map(|i| format!("def f{i}(x):\n    return x + {i}\n"))
        .collect();
    let names: Vec<String> = (0..40).map(|i| format!("m{i}.py")).collect();
    let sources: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), body.as_bytes()))
        .collect();
    let one = compile_sources_with(&interp, sources.clone(), 1).unwrap();
    let many = compile_sources_with(&interp, sources, 4).unwrap();
    assert_eq!(one.len(), 40);
    assert_eq!(
        one.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        many.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // marshal output is deterministic for the same interpreter and source.
    assert!(one.iter().zip(&many).all(|(a, b)| a.1 == b.1));
}

#[test]
fn compile_dir_walks_a_tree() {
    let cache = tempfile::tempdir().unwrap();
    let Some(interp) = interp(12, cache.path()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs_err::create_dir_all(d.join("pkg/sub")).unwrap();
    fs_err::create_dir_all(d.join("pkg/__pycache__")).unwrap();
    fs_err::write(d.join("pkg/__init__.py"), "from .sub import v\n").unwrap();
    fs_err::write(d.join("pkg/sub/__init__.py"), "v = 42\n").unwrap();
    fs_err::write(d.join("pkg/__pycache__/junk.py"), "x = 1\n").unwrap();
    fs_err::write(d.join("pkg/data.json"), "{}").unwrap();
    // A pyc the package ships for this interpreter is kept: its source is not compiled.
    fs_err::write(d.join("pkg/shipped.py"), "S = 1\n").unwrap();
    let shipped = d.join("pkg/__pycache__/shipped.cpython-312.pyc");
    fs_err::write(&shipped, "as shipped").unwrap();
    let pycs = compile_dir(&interp, d).unwrap();
    let names: Vec<&str> = pycs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "pkg/__pycache__/__init__.cpython-312.pyc",
            "pkg/sub/__pycache__/__init__.cpython-312.pyc"
        ]
    );
    write_pycs(d, &pycs).unwrap();
    assert_eq!(fs_err::read(&shipped).unwrap(), b"as shipped");
    fs_err::write(d.join("pkg/sub/__init__.py"), "v = 0\n").unwrap();
    assert_eq!(
        python_out(interp.path(), d, "import pkg; print(pkg.v)").trim(),
        "42"
    );
}

#[test]
fn a_dead_worker_is_an_error() {
    let cache = tempfile::tempdir().unwrap();
    let Some(real) = interp(11, cache.path()) else {
        return;
    };
    let fake = Interpreter::from_info(PathBuf::from("/bin/false"), real.info().clone()).unwrap();
    let err = compile_sources(&fake, [("a.py", &b"x = 1"[..])]).unwrap_err();
    assert!(matches!(err, BytecodeError::WorkerFailed { .. }), "{err}");
    let missing =
        Interpreter::from_info(PathBuf::from("/nonexistent/python"), real.info().clone()).unwrap();
    let err = compile_sources(&missing, [("a.py", &b"x = 1"[..])]).unwrap_err();
    assert!(matches!(err, BytecodeError::Spawn { .. }), "{err}");
    let mut old = real.info().clone();
    old.version.minor = 6;
    let old = Interpreter::from_info(real.path().to_path_buf(), old).unwrap();
    let err = compile_sources(&old, [("a.py", &b"x = 1"[..])]).unwrap_err();
    assert!(matches!(err, BytecodeError::Unsupported { .. }), "{err}");
}
