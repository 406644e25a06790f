//! Conversion tests: synthetic wheels built with [`super::testing`], one per refusal, properties
//! over generated wheels, and a real wheel when one can be had.
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::testing::{RawEntry, RawKind, WheelBuilder, record_for, with_record, zip_entries};
use super::*;
use crate::dxpkg::{DxpkgReader, EntryKind, Scheme};
use crate::hash::sha256_record;

fn demo() -> WheelBuilder {
    WheelBuilder::new("Demo.Pkg", "1.0")
        .file("demo_pkg/__init__.py", b"from .core import main\n")
        .file("demo_pkg/core.py", b"def main():\n    return 0\n")
        .executable("demo_pkg/tool.sh", b"#!/bin/sh\necho hi\n")
        .data_file("purelib", "demo_pkg/extra.py", b"EXTRA = 1\n")
        .data_file("platlib", "demo_pkg/_native.so", b"\x7fELF fake")
        .data_file("scripts", "demo-script", b"#!python\nprint('hi')\n")
        .data_file("scripts", "demo-sh", b"#!/bin/sh\necho sh\n")
        .data_file("headers", "demo.h", b"int demo(void);\n")
        .data_file("data", "share/man/man1/demo.1", b".TH DEMO 1\n")
        .dist_info_file("LICENSE", b"MIT\n")
        .console_script("demo", "demo_pkg.core:main")
        .gui_script("demo-gui", "demo_pkg.core:main [gui]")
        .requires_dist("six>=1.0")
        .requires_dist("attrs; extra == 'x'")
        .requires_python(">=3.8")
        .provides_extra("x")
}

fn entry_problem(result: Result<ConvertedWheel, WheelError>) -> (String, EntryProblem) {
    match result {
        Err(WheelError::Entry { entry, problem, .. }) => (entry, problem),
        other => panic!("expected an entry error, got {other:?}"),
    }
}

fn archive_problem(result: Result<ConvertedWheel, WheelError>) -> ArchiveProblem {
    match result {
        Err(WheelError::Archive { problem, .. }) => problem,
        other => panic!("expected an archive error, got {other:?}"),
    }
}

/// Converts `entries` zipped as the demo wheel's file name, after giving them a right RECORD.
fn convert_with_record(
    w: &WheelBuilder,
    entries: Vec<RawEntry>,
) -> Result<ConvertedWheel, WheelError> {
    let bytes = zip_entries(&with_record(entries, &w.record_path()));
    convert_wheel(&w.filename(), &bytes)
}

fn base_entries(w: &WheelBuilder) -> Vec<RawEntry> {
    let mut e = w.entries();
    e.pop(); // RECORD
    e
}

/// Positions of every local (`PK\3\4`, name at 30) and central (`PK\1\2`, name at 46) header
/// naming `name`.
fn header_positions(bytes: &[u8], name: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let mut local = Vec::new();
    let mut central = Vec::new();
    for at in 0..bytes.len().saturating_sub(46) {
        let len =
            |off: usize| usize::from(u16::from_le_bytes([bytes[at + off], bytes[at + off + 1]]));
        if bytes[at..].starts_with(b"PK\x03\x04")
            && len(26) == name.len()
            && bytes.get(at + 30..at + 30 + name.len()) == Some(name)
        {
            local.push(at);
        }
        if bytes[at..].starts_with(b"PK\x01\x02")
            && len(28) == name.len()
            && bytes.get(at + 46..at + 46 + name.len()) == Some(name)
        {
            central.push(at);
        }
    }
    assert!(
        !local.is_empty() && !central.is_empty(),
        "no headers for {name:?}"
    );
    (local, central)
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn converts_a_wheel_with_every_scheme() {
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    assert_eq!(c.name, "Demo.Pkg");
    assert_eq!(c.version, "1.0");
    assert_eq!(c.dist_info, "Demo_Pkg-1.0.dist-info");
    assert_eq!(
        c.metadata.requires_dist,
        ["six>=1.0", "attrs; extra == 'x'"]
    );
    assert_eq!(c.metadata.requires_python.as_deref(), Some(">=3.8"));
    assert_eq!(c.metadata.provides_extra, ["x"]);
    assert_eq!(c.entry_points.console_scripts[0].name, "demo");
    assert_eq!(c.entry_points.gui_scripts[0].attr.as_deref(), Some("main"));

    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    r.validate().unwrap();
    assert_eq!(
        (r.name(), r.version(), r.dist_info()),
        ("Demo.Pkg", "1.0", "Demo_Pkg-1.0.dist-info")
    );
    let get = |scheme, path: &str| {
        r.get(scheme, path)
            .unwrap()
            .unwrap_or_else(|| panic!("{path}"))
    };
    assert_eq!(get(Scheme::SitePackages, "demo_pkg/core.py").mode, 0o644);
    assert_eq!(get(Scheme::SitePackages, "demo_pkg/tool.sh").mode, 0o755);
    assert_eq!(
        get(Scheme::SitePackages, "demo_pkg/extra.py").data,
        b"EXTRA = 1\n"
    );
    assert_eq!(
        get(Scheme::SitePackages, "demo_pkg/_native.so").data,
        b"\x7fELF fake"
    );
    assert_eq!(
        get(Scheme::Scripts, "demo-script").data,
        b"#!python\nprint('hi')\n"
    );
    assert_eq!(get(Scheme::Scripts, "demo-script").mode, 0o755);
    assert_eq!(get(Scheme::Headers, "demo.h").data, b"int demo(void);\n");
    assert_eq!(
        get(Scheme::Data, "share/man/man1/demo.1").data,
        b".TH DEMO 1\n"
    );
    assert_eq!(
        get(Scheme::SitePackages, "Demo_Pkg-1.0.dist-info/LICENSE").data,
        b"MIT\n"
    );
    assert_eq!(
        get(Scheme::SitePackages, "Demo_Pkg-1.0.dist-info/INSTALLER").data,
        b"dx-py\n"
    );
    // Nothing of the .data directory itself is installed.
    assert!(r.entries().all(|e| !e.unwrap().path.contains(".data")));

    let record =
        std::str::from_utf8(get(Scheme::SitePackages, "Demo_Pkg-1.0.dist-info/RECORD").data)
            .unwrap();
    let h = |d: &[u8]| format!("sha256={},{}", sha256_record(d), d.len());
    let want = [
        "../../../bin/demo,,".to_string(),
        "../../../bin/demo-gui,,".to_string(),
        // `#!python` scripts get their shebang rewritten at install: no hash.
        "../../../bin/demo-script,,".to_string(),
        format!("../../../bin/demo-sh,{}", h(b"#!/bin/sh\necho sh\n")),
        format!("../../../share/man/man1/demo.1,{}", h(b".TH DEMO 1\n")),
        format!("Demo_Pkg-1.0.dist-info/INSTALLER,{}", h(b"dx-py\n")),
        format!("Demo_Pkg-1.0.dist-info/LICENSE,{}", h(b"MIT\n")),
        format!(
            "Demo_Pkg-1.0.dist-info/METADATA,{}",
            h(w.metadata_text().as_bytes())
        ),
        "Demo_Pkg-1.0.dist-info/RECORD,,".to_string(),
    ];
    let lines: Vec<&str> = record.lines().collect();
    for line in &want {
        assert!(lines.contains(&line.as_str()), "{line} not in\n{record}");
    }
    assert!(lines.contains(&format!("demo_pkg/extra.py,{}", h(b"EXTRA = 1\n")).as_str()));
    // A py3 wheel does not say which Python's include directory the header goes to.
    assert!(!record.contains("demo.h"));
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    // Every installed file but RECORD and headers has a row; rows name no .data path.
    assert_eq!(lines.len(), r.len() - 1 + 2);
    assert!(!record.contains(".data/"));
}

#[test]
fn headers_are_recorded_for_a_single_cpython() {
    let w = WheelBuilder::new("h", "1")
        .tag("cp311-cp311-manylinux_2_17_x86_64")
        .data_file("headers", "h.h", b"x");
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    let record = r.get_file("h-1.dist-info/RECORD").unwrap().unwrap().data;
    assert!(std::str::from_utf8(record).unwrap().contains(&format!(
        "../../../include/site/python3.11/h/h.h,sha256={},1\n",
        sha256_record(b"x")
    )));
}

#[test]
fn same_wheel_same_bytes_and_no_timestamps() {
    let w = demo();
    let a = convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg;
    let b = convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg;
    assert_eq!(a, b);
    // Another modification time in every header changes the zip, not the package.
    let mut zipped = w.build();
    for e in w.entries() {
        let (local, central) = header_positions(&zipped, e.path.as_bytes());
        for at in local {
            put_u16(&mut zipped, at + 10, 0x6000);
        }
        for at in central {
            put_u16(&mut zipped, at + 12, 0x6000);
        }
    }
    assert_ne!(zipped, w.build());
    assert_eq!(convert_wheel(&w.filename(), &zipped).unwrap().dxpkg, a);
}

#[test]
fn directories_are_skipped_and_symlinks_inside_kept() {
    let w = WheelBuilder::new("links", "1.0")
        .raw(RawEntry::dir("pkg"))
        .file("pkg/__init__.py", b"")
        .file("pkg/sub/impl.py", b"X = 1\n")
        .symlink("pkg/alias.py", "sub/impl.py")
        .symlink("pkg/subdir", "./sub/")
        .symlink("pkg/chain.py", "../pkg/alias.py")
        .raw(RawEntry::dir("pkg/empty"));
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    let alias = r.get_file("pkg/alias.py").unwrap().unwrap();
    assert_eq!(
        (alias.kind, alias.data, alias.mode),
        (EntryKind::Symlink, &b"sub/impl.py"[..], 0o777)
    );
    assert_eq!(
        r.get_file("pkg/subdir").unwrap().unwrap().kind,
        EntryKind::Symlink
    );
    assert!(r.get_file("pkg").unwrap().is_none());
    assert!(r.get_file("pkg/empty").unwrap().is_none());
    let record = std::str::from_utf8(
        r.get_file("links-1.0.dist-info/RECORD")
            .unwrap()
            .unwrap()
            .data,
    )
    .unwrap();
    assert!(record.contains("pkg/alias.py,,\n"));
}

#[test]
fn refuses_bad_paths() {
    let w = WheelBuilder::new("p", "1");
    for (name, want) in [
        ("../evil.py", EntryProblem::ParentDir),
        ("p/../../evil.py", EntryProblem::ParentDir),
        ("/etc/evil.py", EntryProblem::Absolute),
        ("C:/evil.py", EntryProblem::Colon),
        ("p\\..\\..\\evil.py", EntryProblem::Backslash),
        ("p/a\0b.py", EntryProblem::Nul),
        ("p//a.py", EntryProblem::EmptyComponent),
        ("./p/a.py", EntryProblem::DotComponent),
    ] {
        let mut entries = base_entries(&w);
        entries.insert(0, RawEntry::file(name, b"x"));
        let (entry, problem) = entry_problem(convert_with_record(&w, entries));
        assert_eq!((entry.as_str(), problem), (name, want));
    }
    let mut entries = base_entries(&w);
    entries.insert(0, RawEntry::dir("../up"));
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(problem, EntryProblem::ParentDir);
}

#[test]
fn error_names_wheel_entry_and_reason() {
    let w = WheelBuilder::new("p", "1");
    let mut entries = base_entries(&w);
    entries.insert(0, RawEntry::file("../evil.py", b"x"));
    let err = convert_with_record(&w, entries).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Refused wheel `p-1-py3-none-any.whl`, entry `../evil.py`: name has a `..` component"
    );
}

/// A file that installs where a generated file goes (an INSTALLER under `.data/purelib`) is
/// dropped, but its bytes are still checked against RECORD, streaming or not.
#[test]
fn dropped_files_are_checked_against_record_too() {
    let w = WheelBuilder::new("p", "1")
        .file("p/a.py", b"abc")
        .data_file("purelib", &format!("{}/INSTALLER", w_dist_info()), b"pip\n");
    let mut entries = w.entries();
    let installer = entries
        .iter_mut()
        .find(|e| e.path.ends_with("/INSTALLER"))
        .unwrap();
    installer.data = b"pop\n".to_vec();
    let bytes = zip_entries(&entries);
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &bytes));
    assert!(entry.ends_with("INSTALLER"), "{entry}");
    assert!(
        matches!(problem, EntryProblem::HashMismatch { .. }),
        "{problem:?}"
    );
    assert!(validate_wheel(&w.filename(), &bytes, &ConvertLimits::default()).is_err());
    // Unchanged, it converts, and the package's INSTALLER is dx-py's.
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    let installed = r
        .get_file(&format!("{}/INSTALLER", w_dist_info()))
        .unwrap()
        .unwrap();
    assert_eq!(installed.data, INSTALLER);
}

fn w_dist_info() -> String {
    WheelBuilder::new("p", "1").dist_info()
}

#[test]
fn refuses_record_mismatches() {
    let w = WheelBuilder::new("p", "1")
        .file("p/a.py", b"abc")
        .file("p/b.py", b"xyz");
    let record = w.record_path();

    // Same length, other bytes: hash mismatch.
    let mut entries = w.entries();
    entries[0].data = b"abd".to_vec();
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &zip_entries(&entries)));
    assert_eq!(entry, "p/a.py");
    assert!(
        matches!(
            problem,
            EntryProblem::HashMismatch {
                algorithm: "sha256",
                ..
            }
        ),
        "{problem:?}"
    );

    // Other length: size mismatch.
    let mut entries = w.entries();
    entries[0].data = b"abcd".to_vec();
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &zip_entries(&entries)));
    assert_eq!(
        (entry.as_str(), problem),
        (
            "p/a.py",
            EntryProblem::SizeMismatch {
                expected: 3,
                got: 4
            }
        )
    );

    // A file RECORD does not list.
    let mut entries = w.entries();
    entries.push(RawEntry::file("p/extra.py", b""));
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &zip_entries(&entries)));
    assert_eq!(
        (entry.as_str(), problem),
        ("p/extra.py", EntryProblem::NotInRecord)
    );

    // A RECORD row for a file the archive lacks.
    let mut entries = w.entries();
    entries.remove(1);
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &zip_entries(&entries)));
    assert_eq!(
        (entry.as_str(), problem),
        ("p/b.py", EntryProblem::NotInArchive)
    );

    // Rows without hash or size, a row twice, a weak hash, no RECORD at all.
    let base = base_entries(&w);
    let rewrite = |text: String| {
        let mut e = base.clone();
        e.push(RawEntry::file(&record, text.as_bytes()));
        convert_wheel(&w.filename(), &zip_entries(&e))
    };
    let good = String::from_utf8(record_for(&base, &record)).unwrap();
    let first = good.lines().next().unwrap().to_string();
    let (entry, problem) = entry_problem(rewrite(good.replacen(&first, "p/a.py,,3", 1)));
    assert_eq!(
        (entry.as_str(), problem),
        ("p/a.py", EntryProblem::MissingHash { line: 1 })
    );
    let no_size = first.rsplit_once(',').unwrap().0.to_string() + ",";
    let (_, problem) = entry_problem(rewrite(good.replacen(&first, &no_size, 1)));
    assert_eq!(problem, EntryProblem::MissingSize { line: 1 });
    let (_, problem) = entry_problem(rewrite(format!("{first}\n{good}")));
    assert_eq!(
        problem,
        EntryProblem::DuplicateRecordRow {
            first: 1,
            second: 2
        }
    );
    let (entry, problem) = entry_problem(rewrite(good.replacen("sha256=", "md5=", 1)));
    assert_eq!(entry, record);
    assert!(matches!(
        problem,
        EntryProblem::Record(RecordError::WeakHash { .. })
    ));
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &zip_entries(&base)));
    assert_eq!((entry, problem), (record.clone(), EntryProblem::Missing));

    // A signature may go unhashed and unlisted; it is not installed (it signs the old RECORD).
    let mut e = base.clone();
    e.push(RawEntry::file(&format!("{record}.jws"), b"{}"));
    let mut text = good.clone();
    text.push_str(&format!("{record}.jws,,\n"));
    e.push(RawEntry::file(&record, text.as_bytes()));
    let c = convert_wheel(&w.filename(), &zip_entries(&e)).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    assert!(r.get_file(&format!("{record}.jws")).unwrap().is_none());
}

#[test]
fn refuses_zip_bombs_and_oversized_files() {
    let w = WheelBuilder::new("p", "1").file("p/zeros.bin", &vec![0u8; 2 << 20]);
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &w.build()));
    assert_eq!(entry, "p/zeros.bin");
    assert!(
        matches!(
            problem,
            EntryProblem::CompressionRatio {
                size: 2097152,
                limit: 1000,
                ..
            }
        ),
        "{problem:?}"
    );

    // The same file passes under a looser ratio, fails under a per-file or total limit.
    let loose = ConvertLimits {
        max_ratio: 10_000,
        ..ConvertLimits::default()
    };
    convert_wheel_with_limits(&w.filename(), &w.build(), &loose).unwrap();
    let small = ConvertLimits {
        max_file_size: 1 << 20,
        ..loose.clone()
    };
    let (_, problem) = entry_problem(convert_wheel_with_limits(&w.filename(), &w.build(), &small));
    assert_eq!(
        problem,
        EntryProblem::TooLarge {
            size: 2 << 20,
            limit: 1 << 20
        }
    );
    let total = ConvertLimits {
        max_total_size: 2 << 20,
        ..loose.clone()
    };
    assert!(matches!(
        archive_problem(convert_wheel_with_limits(&w.filename(), &w.build(), &total)),
        ArchiveProblem::TotalTooLarge { limit: 2097152, .. }
    ));
    let few = ConvertLimits {
        max_entries: 2,
        ..loose
    };
    assert_eq!(
        archive_problem(convert_wheel_with_limits(&w.filename(), &w.build(), &few)),
        ArchiveProblem::TooManyEntries { count: 4, limit: 2 }
    );
}

#[test]
fn a_lying_size_header_is_caught() {
    let w = WheelBuilder::new("p", "1").file("p/a.py", &[b'x'; 1000]);
    for declared in [10u32, 5000, u32::MAX - 1] {
        let mut bytes = w.build();
        let (_, central) = header_positions(&bytes, b"p/a.py");
        bytes[central[0] + 24..central[0] + 28].copy_from_slice(&declared.to_le_bytes());
        let err = convert_wheel(&w.filename(), &bytes).unwrap_err();
        assert!(
            matches!(
                err.entry_problem(),
                Some(
                    EntryProblem::HeaderSizeMismatch { .. }
                        | EntryProblem::Read(_)
                        | EntryProblem::CompressionRatio { .. }
                        | EntryProblem::TooLarge { .. }
                )
            ),
            "{declared}: {err}"
        );
    }
}

#[test]
fn refuses_archive_tricks() {
    let w = WheelBuilder::new("p", "1")
        .file("p/a.py", b"a")
        .file("p/b.py", b"b");

    // The same name twice in the central directory.
    let mut bytes = w.build();
    let (local, central) = header_positions(&bytes, b"p/b.py");
    bytes[local[0] + 30 + 2] = b'a';
    bytes[central[0] + 46 + 2] = b'a';
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &bytes));
    assert_eq!(
        (entry.as_str(), problem),
        ("p/a.py", EntryProblem::Duplicate)
    );

    // A local header that names another file than the central directory.
    let mut bytes = w.build();
    let (local, _) = header_positions(&bytes, b"p/b.py");
    bytes[local[0] + 30 + 2] = b'c';
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &bytes));
    assert_eq!(
        (entry.as_str(), problem),
        (
            "p/b.py",
            EntryProblem::LocalHeaderMismatch {
                local: "p/c.py".into()
            }
        )
    );

    // Compression methods other than stored and deflate (12 = bzip2, 93 = zstd).
    for method in [12u16, 93] {
        let mut bytes = w.build();
        let (local, central) = header_positions(&bytes, b"p/a.py");
        put_u16(&mut bytes, local[0] + 8, method);
        put_u16(&mut bytes, central[0] + 10, method);
        let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &bytes));
        assert_eq!(entry, "p/a.py");
        assert!(
            matches!(problem, EntryProblem::UnsupportedCompression { .. }),
            "{problem:?}"
        );
    }

    // Encrypted (general purpose flag bit 0).
    let mut bytes = w.build();
    let (local, central) = header_positions(&bytes, b"p/a.py");
    bytes[local[0] + 6] |= 1;
    bytes[central[0] + 8] |= 1;
    let (_, problem) = entry_problem(convert_wheel(&w.filename(), &bytes));
    assert_eq!(problem, EntryProblem::Encrypted);

    // Data before the archive.
    let mut bytes = b"#!/bin/sh\nexit 0\n".to_vec();
    bytes.extend(w.build());
    assert!(matches!(
        convert_wheel(&w.filename(), &bytes),
        Err(WheelError::Archive {
            problem: ArchiveProblem::PrefixedData { .. },
            ..
        } | WheelError::Zip { .. })
    ));

    // Not a zip at all, or an empty one.
    assert!(matches!(
        convert_wheel(&w.filename(), b"not a zip"),
        Err(WheelError::Zip { .. })
    ));
    assert!(matches!(
        archive_problem(convert_wheel(&w.filename(), &zip_entries(&[]))),
        ArchiveProblem::NoDistInfo { .. }
    ));
    assert!(matches!(
        convert_wheel("p-1.zip", &w.build()),
        Err(WheelError::Filename(_))
    ));
}

#[test]
fn refuses_special_files() {
    let w = WheelBuilder::new("p", "1");
    let mut entries = base_entries(&w);
    let mut dev = RawEntry::file("p/dev", b"");
    dev.mode = 0o020_644; // character device
    entries.push(dev);
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(
        problem,
        EntryProblem::UnsupportedFileType { mode: 0o020_644 }
    );

    let mut entries = base_entries(&w);
    let mut dir = RawEntry::file("p/dir", b"");
    dir.mode = 0o040_755;
    entries.push(dir);
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(problem, EntryProblem::DirectoryWithoutSlash);
}

#[test]
fn refuses_bad_symlinks() {
    let w = WheelBuilder::new("p", "1")
        .file("p/a.py", b"a")
        .file("p/sub/b.py", b"b");
    for (link, target, want) in [
        ("p/evil", "../../etc/passwd", "escapes"),
        ("p/evil", "../..", "escapes"),
        ("p/evil", "..", "escapes"),
        ("p/evil", "/etc/passwd", "bad"),
        ("p/evil", "C:/x", "bad"),
        ("p/evil", "..\\..\\x", "bad"),
        ("p/evil", "", "bad"),
        ("p/evil", "nothing.py", "dangling"),
        ("p/evil", "evil", "dangling"),
        ("p/evil", "a.py/x", "dangling"),
    ] {
        let mut entries = base_entries(&w);
        entries.push(RawEntry::symlink(link, target));
        let (entry, problem) = entry_problem(convert_with_record(&w, entries));
        assert_eq!(entry, link);
        let ok = match want {
            "escapes" => matches!(problem, EntryProblem::SymlinkEscapes { .. }),
            "bad" => matches!(problem, EntryProblem::SymlinkBadTarget { .. }),
            _ => matches!(problem, EntryProblem::SymlinkDangling { .. }),
        };
        assert!(ok, "{target}: {problem:?}");
    }
    // `here -> .` is inside, but `evil -> here/../x` would really resolve from p's parent.
    let mut entries = base_entries(&w);
    entries.push(RawEntry::symlink("p/here", "."));
    entries.push(RawEntry::symlink("p/evil", "here/../a.py"));
    let (entry, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(
        (entry.as_str(), problem),
        (
            "p/evil",
            EntryProblem::SymlinkThroughSymlink {
                target: "here/../a.py".into(),
                via: "p/here".into()
            }
        )
    );
    // A symlink in the scripts scheme may not reach site-packages.
    let w2 = w.clone().data_file("scripts", "tool", b"#!/bin/sh\n");
    let mut entries = base_entries(&w2);
    entries.push(RawEntry::symlink(
        &format!("{}/scripts/alias", w2.data_dir()),
        "../p/a.py",
    ));
    let (_, problem) = entry_problem(convert_with_record(&w2, entries));
    assert!(
        matches!(problem, EntryProblem::SymlinkEscapes { .. }),
        "{problem:?}"
    );
}

#[test]
fn refuses_bad_data_directories() {
    let w = WheelBuilder::new("p", "1").data_file("purelib", "p/x.py", b"x");
    let data = w.data_dir();
    let mut entries = base_entries(&w);
    entries.push(RawEntry::file(&format!("{data}/lib/x.py"), b"x"));
    let (entry, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(
        (entry, problem),
        (
            format!("{data}/lib/x.py"),
            EntryProblem::UnknownDataScheme("lib".into())
        )
    );

    let mut entries = base_entries(&w);
    entries.push(RawEntry::file(&format!("{data}/x.py"), b"x"));
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(problem, EntryProblem::NoDataScheme);

    let mut entries = base_entries(&w);
    entries.push(RawEntry::file("other-1.data/data/x", b"x"));
    assert!(matches!(
        archive_problem(convert_with_record(&w, entries)),
        ArchiveProblem::MultipleDataDirs { .. }
    ));

    let renamed: Vec<RawEntry> = base_entries(&w)
        .into_iter()
        .map(|mut e| {
            e.path = e.path.replace(&data, "p-2.data");
            e
        })
        .collect();
    assert_eq!(
        archive_problem(convert_with_record(&w, renamed)),
        ArchiveProblem::DataDirMismatch {
            found: "p-2.data".into(),
            expected: data
        }
    );

    // purelib and the root both install `p/x.py`.
    let mut entries = base_entries(&w);
    entries.insert(0, RawEntry::file("p/x.py", b"y"));
    let (entry, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(entry, format!("{}/purelib/p/x.py", w.data_dir()));
    assert_eq!(
        problem,
        EntryProblem::Collision {
            other: "p/x.py".into()
        }
    );

    // A file where a directory must be.
    let mut entries = base_entries(&w);
    entries.insert(0, RawEntry::file("p", b"y"));
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(problem, EntryProblem::FileAsDirectory { file: "p".into() });
}

#[test]
fn refuses_metadata_mismatches() {
    let w = WheelBuilder::new("p", "1.0").metadata_name("q");
    let (entry, problem) = entry_problem(convert_wheel(&w.filename(), &w.build()));
    assert_eq!(entry, "p-1.0.dist-info/METADATA");
    assert_eq!(
        problem,
        EntryProblem::NameMismatch {
            metadata: "q".into(),
            filename: "p".into()
        }
    );

    let w = WheelBuilder::new("p", "1.0").metadata_version("1.1");
    let (_, problem) = entry_problem(convert_wheel(&w.filename(), &w.build()));
    assert_eq!(
        problem,
        EntryProblem::VersionMismatch {
            metadata: "1.1".into(),
            filename: "1.0".into()
        }
    );

    // Normalized names and PEP 440-equal versions agree.
    let w = WheelBuilder::new("Foo.Bar", "1.0")
        .metadata_name("foo-bar")
        .metadata_version("1.0.0");
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    assert_eq!((c.name.as_str(), c.version.as_str()), ("foo-bar", "1.0.0"));

    // The file name must name the same distribution as the .dist-info directory.
    let w = WheelBuilder::new("p", "1.0");
    assert!(matches!(
        archive_problem(convert_wheel("q-1.0-py3-none-any.whl", &w.build())),
        ArchiveProblem::DistInfoMismatch { .. }
    ));
    assert!(matches!(
        archive_problem(convert_wheel("p-2.0-py3-none-any.whl", &w.build())),
        ArchiveProblem::DistInfoMismatch { .. }
    ));
    let mut entries = base_entries(&w);
    entries.push(RawEntry::file(
        "q-1.0.dist-info/METADATA",
        b"Name: q\nVersion: 1.0\n",
    ));
    assert!(matches!(
        archive_problem(convert_with_record(&w, entries)),
        ArchiveProblem::MultipleDistInfo { .. }
    ));

    // Missing METADATA, a bad METADATA, a Wheel-Version 2, a bad entry_points.txt.
    let drop_named = |name: &str| -> Vec<RawEntry> {
        base_entries(&w)
            .into_iter()
            .filter(|e| !e.path.ends_with(name))
            .collect()
    };
    let (_, problem) = entry_problem(convert_with_record(&w, drop_named("/METADATA")));
    assert_eq!(problem, EntryProblem::Missing);
    let (entry, _) = entry_problem(convert_with_record(&w, drop_named("/WHEEL")));
    assert_eq!(entry, "p-1.0.dist-info/WHEEL");
    let mut entries = drop_named("/METADATA");
    entries.push(RawEntry::file("p-1.0.dist-info/METADATA", b"Name: p\n"));
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(
        problem,
        EntryProblem::Metadata(MetadataError::MissingField("Version"))
    );
    let mut entries = drop_named("/WHEEL");
    entries.push(RawEntry::file(
        "p-1.0.dist-info/WHEEL",
        b"Wheel-Version: 2.0\n",
    ));
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert_eq!(problem, EntryProblem::WheelVersion("`2.0`".into()));
    let mut entries = base_entries(&w);
    entries.push(RawEntry::file(
        "p-1.0.dist-info/entry_points.txt",
        b"[console_scripts]\n../x = a:b\n",
    ));
    let (_, problem) = entry_problem(convert_with_record(&w, entries));
    assert!(matches!(
        problem,
        EntryProblem::EntryPoints(EntryPointsError::InvalidName { .. })
    ));
}

#[test]
fn wheel_installer_file_is_replaced() {
    let w = WheelBuilder::new("p", "1").dist_info_file("INSTALLER", b"pip\n");
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    assert_eq!(
        r.get_file("p-1.dist-info/INSTALLER").unwrap().unwrap().data,
        b"dx-py\n"
    );
}

// ---- properties -------------------------------------------------------------------------------

const SCHEMES: [(&str, Scheme); 5] = [
    ("purelib", Scheme::SitePackages),
    ("platlib", Scheme::SitePackages),
    ("scripts", Scheme::Scripts),
    ("headers", Scheme::Headers),
    ("data", Scheme::Data),
];

type Oracle = BTreeMap<(Scheme, String), (Vec<u8>, bool)>;
/// Root files `(path, bytes, executable)`.
type RootFiles = Vec<(String, Vec<u8>, bool)>;
/// `.data` files `(scheme index, path, bytes)`.
type DataFiles = Vec<(usize, String, Vec<u8>)>;

/// A wheel from generated files, and what each installed file must hold (the naive oracle).
fn generated_wheel(root: RootFiles, data: DataFiles) -> (WheelBuilder, Oracle) {
    let mut oracle: Oracle = BTreeMap::new();
    let mut w = WheelBuilder::new("gen", "0.1");
    let mut wanted: Vec<(Option<usize>, String, Vec<u8>, bool)> = Vec::new();
    for (p, d, x) in root {
        wanted.push((None, p, d, x));
    }
    for (s, p, d) in data {
        wanted.push((Some(s % SCHEMES.len()), p, d, false));
    }
    // Keep the first of any two that install to one place, and drop paths that would have to be
    // both a file and a directory.
    let mut taken: Vec<(Scheme, String)> = Vec::new();
    for (s, p, d, x) in wanted {
        let scheme = s.map_or(Scheme::SitePackages, |i| SCHEMES[i].1);
        let clash = taken.iter().any(|(ts, tp)| {
            *ts == scheme
                && (*tp == p
                    || tp.starts_with(&format!("{p}/"))
                    || p.starts_with(&format!("{tp}/")))
        });
        if clash {
            continue;
        }
        taken.push((scheme, p.clone()));
        w = match s {
            None if x => w.executable(&p, &d),
            None => w.file(&p, &d),
            Some(i) => w.data_file(SCHEMES[i].0, &p, &d),
        };
        oracle.insert((scheme, p), (d, x || scheme == Scheme::Scripts));
    }
    (w, oracle)
}

fn arb_files() -> impl Strategy<Value = (RootFiles, DataFiles)> {
    let path = "[a-z]{1,6}(/[a-z_][a-z0-9_.]{0,7}){0,3}";
    (
        proptest::collection::vec(
            (
                path,
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<bool>(),
            ),
            0..20,
        ),
        proptest::collection::vec(
            (
                0usize..5,
                path,
                proptest::collection::vec(any::<u8>(), 0..100),
            ),
            0..8,
        ),
    )
}

/// Flips bytes of the file data and local headers only, so pass 1 (the central directory)
/// passes more often and the readers meet the damage.
fn damage_before_central_directory(mut bytes: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    let central = bytes
        .windows(4)
        .position(|x| x == b"PK\x01\x02")
        .unwrap_or(bytes.len());
    for &(at, v) in flips {
        bytes[at % central.max(1)] ^= v;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every generated file is found at its installed place with its exact bytes and mode, and
    /// nothing else is installed but the dist-info files.
    #[test]
    fn every_file_is_found((root, data) in arb_files()) {
        let (w, oracle) = generated_wheel(root, data);
        let c = convert_wheel(&w.filename(), &w.build()).unwrap();
        let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
        r.validate().unwrap();
        for ((scheme, path), (bytes, exec)) in &oracle {
            let e = r.get(*scheme, path).unwrap().unwrap();
            prop_assert_eq!(e.data, &bytes[..]);
            prop_assert_eq!(e.mode, if *exec { 0o755 } else { 0o644 });
            if *scheme == Scheme::SitePackages {
                prop_assert_eq!(r.get_file(path).unwrap().unwrap().data, &bytes[..]);
            }
        }
        // Plus METADATA, WHEEL, INSTALLER, RECORD.
        prop_assert_eq!(r.len(), oracle.len() + 4);
    }

    /// Whatever algorithms the wheel's RECORD uses, the package is byte-identical to the one
    /// from an all-sha256 RECORD (the installed RECORD is always sha256), and every file carries
    /// the sha256 of its bytes.
    #[test]
    fn record_algorithms_do_not_change_the_package(
        (root, data) in arb_files(),
        picks in proptest::collection::vec(0usize..3, 32),
    ) {
        let (w, _) = generated_wheel(root, data);
        let want = convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg;
        let entries = base_entries(&w);
        let algorithms = [
            RecordHashAlgorithm::Sha256,
            RecordHashAlgorithm::Sha384,
            RecordHashAlgorithm::Sha512,
        ];
        let mut record = String::new();
        let mut chosen = BTreeMap::new();
        for (i, e) in entries.iter().filter(|e| e.kind != RawKind::Dir).enumerate() {
            let algorithm = algorithms[picks[i % picks.len()]];
            let digest = data_encoding::BASE64URL_NOPAD.encode(&algorithm.digest(&e.data));
            record.push_str(&format!("{},{}={digest},{}\n", e.path, algorithm.name(), e.data.len()));
            chosen.insert(e.path.clone(), algorithm);
        }
        record.push_str(&format!("{},,\n", w.record_path()));
        let mut mixed = entries;
        mixed.push(RawEntry::file(&w.record_path(), record.as_bytes()));
        let bytes = zip_entries(&mixed);
        prop_assert_eq!(&convert_wheel(&w.filename(), &bytes).unwrap().dxpkg, &want);
        let v = validate_wheel(&w.filename(), &bytes, &ConvertLimits::default()).unwrap();
        prop_assert!(v.files.iter().all(|f| chosen.contains_key(&f.archive_path)));
        for f in &v.files {
            let expected = RecordHashAlgorithm::Sha256.digest(&f.data);
            prop_assert_eq!(&f.sha256[..], &expected[..], "{}", f.archive_path);
        }
    }

    /// Streaming the files from the archive into the package (what installs do) gives the same
    /// bytes as decompressing everything first, and fails on the same damaged archives: bytes
    /// that do not match RECORD never make a package either way.
    #[test]
    fn streaming_matches_reading_everything_first(
        (root, data) in arb_files(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
    ) {
        let (w, _) = generated_wheel(root, data);
        let bytes = damage_before_central_directory(w.build(), &flips);
        let streamed = convert_wheel(&w.filename(), &bytes).map(|c| c.dxpkg);
        let eager = validate_wheel(&w.filename(), &bytes, &ConvertLimits::default())
            .and_then(convert_validated)
            .map(|c| c.dxpkg);
        match (&streamed, &eager) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "streamed {:?}, eager {:?}", streamed.is_ok(), eager.is_ok()),
        }
    }

    /// The same files zipped in another order (or twice) give byte-identical packages.
    #[test]
    fn conversion_is_deterministic((root, data) in arb_files(), seed in any::<usize>()) {
        let (w, _) = generated_wheel(root, data);
        let a = convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg;
        prop_assert_eq!(&a, &convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg);
        let mut entries = w.entries();
        let len = entries.len();
        entries.rotate_left(seed % len);
        entries.reverse();
        let b = convert_wheel(&w.filename(), &zip_entries(&entries)).unwrap().dxpkg;
        prop_assert_eq!(a, b);
    }

    /// Flipped bytes and truncation give an error or a valid package, never a panic.
    #[test]
    fn corruption_never_panics(
        (root, data) in arb_files(),
        cut in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 1..6),
    ) {
        let (w, _) = generated_wheel(root, data);
        let mut bytes = w.build();
        let check = |bytes: &[u8]| {
            if let Ok(c) = convert_wheel(&w.filename(), bytes) {
                DxpkgReader::new(&c.dxpkg[..]).unwrap().validate().unwrap();
            }
        };
        check(&bytes[..cut % (bytes.len() + 1)]);
        for (at, v) in flips {
            let len = bytes.len();
            bytes[at % len] ^= v;
        }
        check(&bytes);
    }
}

// ---- against Python -----------------------------------------------------------------------------

#[cfg(unix)]
fn python() -> Option<std::path::PathBuf> {
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg("import importlib.metadata")
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| "python3".into())
}

/// Unpacks a package as a POSIX venv would hold it (`bin/`, `lib/pythonX.Y/site-packages/`, the
/// root for data), and returns the site-packages directory.
#[cfg(unix)]
fn unpack(dxpkg: &[u8], root: &std::path::Path, py: &str) -> std::path::PathBuf {
    let r = DxpkgReader::new(dxpkg).unwrap();
    let site = root.join(format!("lib/python{py}/site-packages"));
    for e in r.entries() {
        let e = e.unwrap();
        let base = match e.scheme {
            Scheme::SitePackages => site.clone(),
            Scheme::Scripts => root.join("bin"),
            Scheme::Data => root.to_path_buf(),
            Scheme::Headers => root.join(format!("include/site/python{py}/{}", r.name())),
        };
        let dest = base.join(e.path);
        fs_err::create_dir_all(dest.parent().unwrap()).unwrap();
        match e.kind {
            EntryKind::File => fs_err::write(&dest, e.data).unwrap(),
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(std::str::from_utf8(e.data).unwrap(), &dest).unwrap();
            }
        }
    }
    site
}

/// Asks Python's `importlib.metadata` for the distribution in `site` and checks every RECORD row
/// with a hash against the installed file; prints `name version n_checked`.
#[cfg(unix)]
fn python_check(site: &std::path::Path, dist: &str) -> String {
    let script = r#"
import base64, hashlib, importlib.metadata as m, sys
site, name = sys.argv[1], sys.argv[2]
d = next(m.distributions(name=name, path=[site]))
n = 0
for f in d.files:
    if f.hash is None:
        continue
    data = f.locate().read_bytes()
    assert f.hash.mode == "sha256", f
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert digest == f.hash.value, (f, digest)
    assert len(data) == f.size, f
    n += 1
assert d.read_text("INSTALLER") == "dx-py\n"
print(d.metadata["Name"], d.version, n)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(site)
        .arg(dist)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[cfg(unix)]
#[test]
fn installed_tree_is_a_valid_distribution_for_python() {
    if python().is_none() {
        eprintln!("skipped: no python3 with importlib.metadata");
        return;
    }
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = unpack(&c.dxpkg, dir.path(), "3.11");
    // Every hashed row checks out: 5 package files, 5 dist-info files, bin/demo-sh, share/….
    assert_eq!(python_check(&site, "Demo.Pkg"), "Demo.Pkg 1.0 12");
}

/// pip reads the installed RECORD: `pip uninstall` in a venv removes every file the package put
/// there, in site-packages, `bin/` (scripts and entry-point wrappers) and the venv root.
#[cfg(unix)]
#[test]
fn pip_uninstall_removes_every_installed_file() {
    use std::process::Command;
    if python().is_none() {
        eprintln!("skipped: no python3");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    let pip_ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !made || !pip_ok {
        eprintln!("skipped: cannot make a venv or run pip");
        return;
    }
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let py = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let site = unpack(&c.dxpkg, &venv, &py);
    // The wrappers an installer generates for the entry points.
    for ep in c
        .entry_points
        .console_scripts
        .iter()
        .chain(&c.entry_points.gui_scripts)
    {
        fs_err::write(venv.join("bin").join(&ep.name), "#!/bin/sh\n").unwrap();
    }
    let installed = [
        site.join("demo_pkg/core.py"),
        site.join("demo_pkg/extra.py"),
        site.join(&c.dist_info).join("RECORD"),
        venv.join("bin/demo"),
        venv.join("bin/demo-gui"),
        venv.join("bin/demo-script"),
        venv.join("bin/demo-sh"),
        venv.join("share/man/man1/demo.1"),
    ];
    assert!(installed.iter().all(|p| p.exists()));
    let out = Command::new("python3")
        .args(["-m", "pip", "--python"])
        .arg(venv.join("bin/python"))
        .args(["uninstall", "-y", "Demo.Pkg"])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in &installed {
        assert!(!p.exists(), "{} survived pip uninstall", p.display());
    }
    assert!(!site.join("demo_pkg").exists());
    assert!(!site.join(&c.dist_info).exists());
}

/// A real wheel, downloaded once into `target/wheels` with the user's pip configuration; skipped
/// when neither the cache nor the download is available.
#[cfg(unix)]
#[test]
fn real_wheel_six() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wheels");
    let find = || {
        fs_err::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("six-") && n.ends_with(".whl"))
            })
    };
    if find().is_none() && python().is_some() {
        let _ = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
            ])
            .arg(&dir)
            .arg("six")
            .output();
    }
    let Some(path) = find() else {
        eprintln!(
            "skipped: no six wheel in {} and none could be downloaded",
            dir.display()
        );
        return;
    };
    let bytes = fs_err::read(&path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let c = convert_wheel(name, &bytes).unwrap();
    assert_eq!(c.name, "six");
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    r.validate().unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap();
    let mut six_py = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("six.py").unwrap(), &mut six_py).unwrap();
    assert_eq!(r.get_file("six.py").unwrap().unwrap().data, &six_py[..]);
    assert_eq!(convert_wheel(name, &bytes).unwrap().dxpkg, c.dxpkg);
    if python().is_some() {
        let tmp = tempfile::tempdir().unwrap();
        let site = unpack(&c.dxpkg, tmp.path(), "3.11");
        let out = python_check(&site, "six");
        assert!(out.starts_with(&format!("six {} ", c.version)), "{out}");
    }
}

#[test]
fn raw_kinds_round_trip_through_the_builder() {
    // The builder's own output is what the converter expects: a guard for the helpers above.
    let w = WheelBuilder::new("p", "1")
        .symlink("p/l", "x.py")
        .file("p/x.py", b"");
    let kinds: Vec<RawKind> = w.entries().iter().map(|e| e.kind).collect();
    assert_eq!(kinds[0], RawKind::Symlink);
    convert_wheel(&w.filename(), &w.build()).unwrap();
}

/// The package made from the demo wheel, pinned: conversion changes that alter bytes (the
/// installed RECORD, modes, paths) must be deliberate.
#[test]
fn demo_package_bytes_are_pinned() {
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    assert_eq!(
        crate::hash::ContentHash::of(&c.dxpkg).to_hex(),
        "ee99beeb0c74dc8aa20fb110e61c678883ca328bbeb3c3192bf862c5f7b1c406"
    );
}
