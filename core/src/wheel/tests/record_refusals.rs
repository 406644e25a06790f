//! Refusals against RECORD and the metadata files, including the dropped generated files.
use super::*;

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
