//! Bodies of the fuzz targets, shared by the libFuzzer binaries and by the stable tests below.
//!
//! Each body feeds arbitrary bytes to a parser and checks what must hold for any input: no
//! panic, no out-of-bounds read, and, when the parser's full check accepts the file, answers that
//! agree with each other.
use dx_py_core::dpl::{DplBuilder, DplReader};
use dx_py_core::dxpkg::{DxpkgReader, Scheme};

/// Names every DPL lookup tries besides the file's own.
const PROBE_NAMES: [&str; 5] = [
    "",
    "requests",
    "Typing_Extensions",
    "a--b",
    "zope.interface",
];

/// `DplReader::from_bytes`, then every accessor, lookup and rendering.
///
/// The first byte picks a mode: odd = recompute every checksum of the rest first (as someone
/// crafting a file would), so that the fuzzer also explores what lies behind the checksums.
pub fn dpl_reader(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let mut forged = rest.to_vec();
        dx_py_core::dpl::reseal(&mut forged);
        dpl_bytes(&forged);
    } else {
        dpl_bytes(rest);
    }
}

fn dpl_bytes(data: &[u8]) {
    let Ok(r) = DplReader::from_bytes(data) else {
        return;
    };
    let verified = r.verify().is_ok();
    let _ = (r.environment(), r.python_version(), r.requires_python());
    let _ = (r.inputs_hash(), r.meta(), r.render_header());
    for i in 0..r.len().min(512) {
        let Ok(e) = r.entry(i) else { continue };
        let _ = (
            e.name(),
            e.version(),
            e.marker(),
            e.requires_python(),
            e.index_url(),
        );
        let _ = (e.wheel().sha256_hex(), e.store_hash(), e.extras_bitmap());
        let _ = (
            e.extras().count(),
            e.selected_extras().count(),
            e.has_extra("x"),
        );
        for d in e.dependencies() {
            // Every edge was range-checked when the entry was read.
            assert!((d as usize) < r.len());
        }
        let found = r.get(e.name());
        if verified {
            let found = found.ok().flatten().map(|f| f.index());
            assert_eq!(found, Some(e.index()), "entry {i} not found by its name");
        }
        let _ = r.render_entry(i);
    }
    for name in PROBE_NAMES {
        let _ = r.get(name);
    }
    let _ = r.to_json();
    if let Ok(mut lock) = r.to_lock() {
        // What the reader gives back, the builder writes again (when it accepts it), in the
        // builder's canonical order (a crafted file may list edges in any order).
        if let Ok(bytes) = DplBuilder::from_lock(&lock).to_bytes() {
            let again = DplReader::from_bytes(bytes).expect("builder output opens");
            lock.canonicalize();
            assert_eq!(again.to_lock().expect("builder output reads"), lock);
        }
        let _ = lock.to_pylock_string();
    }
}

/// `DxpkgReader::new`, `validate` and `get_file` on every path the file lists and a few more.
pub fn dxpkg_reader(data: &[u8]) {
    let Ok(r) = DxpkgReader::new(data) else {
        return;
    };
    let valid = r.validate().is_ok();
    let _ = (r.name(), r.version(), r.dist_info(), r.len());
    for e in r.entries().take(512).flatten() {
        let found = r.get_file(e.path);
        if valid && e.scheme == Scheme::SitePackages {
            assert_eq!(found.ok().flatten(), Some(e), "`{}` not found", e.path);
        }
    }
    for path in [
        "",
        "__init__.py",
        "pkg/__init__.py",
        "../etc/passwd",
        "/abs",
    ] {
        let _ = r.get_file(path);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use dx_py_core::dpl::{Lock, LockMeta, LockedPackage, LockedWheel};
    use dx_py_core::dxpkg::{DxpkgWriter, EntryKind};
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn sample_dpl() -> Vec<u8> {
        let package = |name: &str, deps: &[&str]| LockedPackage {
            name: name.to_string(),
            version: "1.2.3".to_string(),
            marker: Some("python_version >= '3.9'".to_string()),
            requires_python: None,
            index_url: None,
            extras: vec!["x".to_string(), "y".to_string()],
            extras_bitmap: 0b10,
            wheel: LockedWheel {
                filename: format!("{name}-1.2.3-py3-none-any.whl"),
                url: Some(format!("http://127.0.0.1/{name}.whl")),
                path: None,
                sha256: [1; 32],
                size: Some(10),
            },
            store_hash: None,
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
        };
        let lock = Lock {
            meta: LockMeta::default(),
            packages: vec![
                package("a", &["b"]),
                package("b", &[]),
                package("c", &["a", "b"]),
            ],
        };
        DplBuilder::from_lock(&lock).to_bytes().unwrap()
    }

    fn sample_dxpkg() -> Vec<u8> {
        let mut w = DxpkgWriter::new("pkg", "1.0", "pkg-1.0.dist-info");
        for (p, d) in [("pkg/__init__.py", &b"x = 1\n"[..]), ("pkg/a.py", b"")] {
            w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.to_vec());
        }
        w.add(
            Scheme::Scripts,
            "run",
            EntryKind::File,
            0o755,
            b"#!".to_vec(),
        );
        w.finish().unwrap()
    }

    /// Writes valid files to `corpus/<target>/` as starting points for `cargo fuzz run`.
    #[test]
    #[ignore = "writes files; run with --ignored to seed a fuzz corpus"]
    fn write_seed_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        // The first byte of a dpl_reader input picks the mode (see `dpl_reader`).
        let dpl = sample_dpl();
        let seeds = [
            ("dpl_reader", "seed", [&[0u8][..], &dpl].concat()),
            ("dpl_reader", "seed-forged", [&[1u8][..], &dpl].concat()),
            ("dxpkg_reader", "seed", sample_dxpkg()),
        ];
        for (target, name, bytes) in seeds {
            std::fs::create_dir_all(dir.join(target)).unwrap();
            std::fs::write(dir.join(target).join(name), bytes).unwrap();
        }
    }

    #[test]
    fn valid_files_pass_their_own_checks() {
        dpl_bytes(&sample_dpl());
        dxpkg_reader(&sample_dxpkg());
    }

    /// Replays every kept crash file.
    #[test]
    fn regressions_replay() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        for (target, body) in [
            ("dpl_reader", dpl_reader as fn(&[u8])),
            ("dxpkg_reader", dxpkg_reader),
        ] {
            for entry in std::fs::read_dir(dir.join(target)).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n != ".keep") {
                    body(&std::fs::read(&path).unwrap());
                }
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes(data in vec(any::<u8>(), 0..1024)) {
            dpl_reader(&data);
            dxpkg_reader(&data);
        }

        #[test]
        fn mutated_files(edits in vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
            let forged = [&[1u8][..], &sample_dpl()].concat();
            for (mut bytes, body) in [(sample_dpl(), dpl_bytes as fn(&[u8])), (forged, dpl_reader), (sample_dxpkg(), dxpkg_reader)] {
                for &(at, v) in &edits {
                    let len = bytes.len();
                    bytes[at % len] = v;
                }
                body(&bytes);
                body(&bytes[..cut % (bytes.len() + 1)]);
            }
        }
    }
}
