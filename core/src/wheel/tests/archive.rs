//! Refusals of zip-level tricks: bombs, oversized files, lying size headers, duplicate or hidden entries.
use super::*;

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
