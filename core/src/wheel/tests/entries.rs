//! Refusals that concern one entry: bad paths, special files, symlinks, `.data` directories.
use super::*;

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
