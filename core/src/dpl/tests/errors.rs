//! Typed refusals: the builder's checks, damaged headers and entries, the messages.
use super::*;

#[test]
fn builder_refuses_bad_locks() {
    let with = |f: &dyn Fn(&mut Lock)| {
        let mut lock = sample();
        f(&mut lock);
        DplBuilder::from_lock(&lock).to_bytes().unwrap_err()
    };
    assert_eq!(
        with(&|l| l.packages.push(package("IDNA", "3.6", &[]))),
        DplBuildError::DuplicatePackage("IDNA".into())
    );
    assert!(matches!(
        with(&|l| l.packages[1].version = "three".into()),
        DplBuildError::InvalidVersion { .. }
    ));
    assert!(matches!(
        with(&|l| l.packages[1].wheel.filename = "idna.tar.gz".into()),
        DplBuildError::InvalidWheel { .. }
    ));
    assert_eq!(
        with(&|l| l.packages[1].name = "-idna".into()),
        DplBuildError::InvalidName("-idna".into())
    );
    assert_eq!(
        with(&|l| l.packages[1].dependencies.push("urllib3".into())),
        DplBuildError::UnknownDependency {
            package: "idna".into(),
            dependency: "urllib3".into()
        }
    );
    assert!(matches!(
        with(&|l| l.packages[0].extras_bitmap = 0b100),
        DplBuildError::BitmapOutOfRange { count: 2, .. }
    ));
    assert!(matches!(
        with(&|l| l.packages[0].extras.push("SOCKS".into())),
        DplBuildError::DuplicateExtra { .. }
    ));
    assert!(matches!(
        with(&|l| l.packages[0].extras.push("a,b".into())),
        DplBuildError::InvalidExtra { .. }
    ));
    assert!(matches!(
        with(&|l| l.packages[0].extras = (0..65).map(|i| format!("e{i}")).collect()),
        DplBuildError::TooManyExtras { count: 65, .. }
    ));
    assert!(matches!(
        with(&|l| l.meta.environment = "x".repeat(META_STRING_MAX + 1)),
        DplBuildError::TooLong { .. }
    ));
    assert!(matches!(
        with(&|l| l.packages[1].wheel.size = Some(u64::MAX)),
        DplBuildError::SizeTooLarge { .. }
    ));
    // Exactly 64 extras, all selected, is fine.
    let mut lock = sample();
    lock.packages[0].extras = (0..64).map(|i| format!("e{i}")).collect();
    lock.packages[0].extras_bitmap = u64::MAX;
    let r = DplReader::from_bytes(build(&lock)).unwrap();
    let e = r.get("requests").unwrap().unwrap();
    assert!(e.has_extra("e63") && e.has_extra("E0"));
    assert_eq!(e.selected_extras().count(), 64);
}

#[test]
fn each_rejection_is_typed() {
    let bytes = build(&sample());
    let open = |b: &[u8]| DplReader::from_bytes(b.to_vec()).map(|_| ());

    assert_eq!(
        open(b"DXD").unwrap_err(),
        DplError::Truncated {
            needed: HEADER_LEN as u64,
            len: 3
        }
    );
    assert_eq!(
        open(b"PK\x03\x04zip").unwrap_err(),
        DplError::BadMagic {
            got: b"PK\x03\x04zip".to_vec()
        }
    );
    assert_eq!(
        open(b"").unwrap_err(),
        DplError::Truncated {
            needed: HEADER_LEN as u64,
            len: 0
        }
    );

    let mut b = bytes.clone();
    put_u32(&mut b, H_VERSION, 2);
    assert_eq!(
        open(&b).unwrap_err(),
        DplError::UnsupportedVersion {
            expected: 1,
            got: 2
        }
    );

    let mut b = bytes.clone();
    put_u32(&mut b, H_FLAGS, 4);
    assert!(matches!(
        open(&b).unwrap_err(),
        DplError::HeaderChecksum { .. }
    ));
    reseal(&mut b);
    assert_eq!(open(&b).unwrap_err(), DplError::UnknownFeatures(4));

    let mut b = bytes.clone();
    put_u32(&mut b, H_MAX_PROBE, 0);
    reseal(&mut b);
    assert!(matches!(
        open(&b).unwrap_err(),
        DplError::OutOfRange {
            what: "longest probe",
            ..
        }
    ));

    let mut b = bytes.clone();
    put_u64(&mut b, H_DEPS_OFF, 5);
    reseal(&mut b);
    assert!(matches!(
        open(&b).unwrap_err(),
        DplError::BadHeader {
            what: "dependency section offset",
            got: 5,
            ..
        }
    ));

    let mut b = bytes.clone();
    put_u32(&mut b, H_ENVIRONMENT + 4, 1_000);
    assert!(matches!(
        open(&b).unwrap_err(),
        DplError::OutOfRange {
            what: "environment string",
            ..
        }
    ));

    let mut b = bytes.clone();
    b.push(0);
    assert!(matches!(
        open(&b).unwrap_err(),
        DplError::BadHeader {
            what: "bytes after the header's file length",
            ..
        }
    ));

    let strings = u64_at(&bytes, H_STRINGS_OFF).unwrap() as usize;
    let mut b = bytes.clone();
    b[strings] = 0xff; // first byte of the environment string
    reseal(&mut b);
    assert_eq!(
        open(&b).unwrap_err(),
        DplError::MetaNotUtf8 {
            field: "environment"
        }
    );
}

/// Entry-level damage is caught when the entry is read, not when the file is opened.
#[test]
fn entry_damage_is_typed() {
    let bytes = build(&sample());
    let entries = u64_at(&bytes, H_ENTRIES_OFF).unwrap() as usize;
    let strings = u64_at(&bytes, H_STRINGS_OFF).unwrap() as usize;
    let buckets = u64_at(&bytes, H_BUCKETS_OFF).unwrap() as usize;
    let r = DplReader::from_bytes(&bytes[..]).unwrap();
    let idna = r.get("idna").unwrap().unwrap().index() as usize;
    let rec = entries + idna * ENTRY_LEN;
    let blob = strings + u32_at(&bytes, rec + E_BLOB_OFF).unwrap() as usize;
    let name_at = blob + u32_at(&bytes, rec + E_LENS).unwrap() as usize;

    // A flipped name byte: the checksum catches it, and `verify` too.
    let mut b = bytes.clone();
    b[name_at] ^= 0x20;
    let r = DplReader::from_bytes(&b[..]).unwrap();
    assert!(matches!(
        r.get("idna").unwrap_err(),
        DplError::EntryChecksum { index, .. } if index as usize == idna
    ));
    assert!(matches!(
        r.verify().unwrap_err(),
        DplError::BodyChecksum { .. }
    ));
    // Other entries still answer correctly.
    assert_eq!(r.get("certifi").unwrap().unwrap().version(), "2024.2.2");

    // A forged name that is not UTF-8.
    let mut b = bytes.clone();
    b[name_at] = 0xc3;
    reseal(&mut b);
    let r = DplReader::from_bytes(&b[..]).unwrap();
    assert_eq!(
        r.entry(idna).unwrap_err(),
        DplError::NotUtf8 {
            index: idna as u32,
            field: "name"
        }
    );

    // A forged dependency index past the entries.
    let requests = r.get("requests").unwrap().unwrap().index() as usize;
    let deps = u64_at(&bytes, H_DEPS_OFF).unwrap() as usize;
    let first_edge =
        deps + 4 * u32_at(&bytes, entries + requests * ENTRY_LEN + E_DEPS_START).unwrap() as usize;
    let mut b = bytes.clone();
    put_u32(&mut b, first_edge, 99);
    reseal(&mut b);
    let r = DplReader::from_bytes(&b[..]).unwrap();
    assert_eq!(
        r.get("requests").unwrap_err(),
        DplError::EntryOutOfRange {
            index: requests as u32,
            what: "dependency index",
            value: 99,
            limit: 3
        }
    );

    // A forged blob offset past the string section.
    let mut b = bytes.clone();
    put_u32(&mut b, rec + E_BLOB_OFF, u32::MAX);
    reseal(&mut b);
    let r = DplReader::from_bytes(&b[..]).unwrap();
    assert!(matches!(
        r.entry(idna).unwrap_err(),
        DplError::EntryOutOfRange {
            what: "string blob end",
            ..
        }
    ));

    // A damaged bucket.
    let mut b = bytes.clone();
    for slot in 0..u32_at(&bytes, H_BUCKET_COUNT).unwrap() as usize {
        b[buckets + slot * BUCKET_LEN] ^= 1;
    }
    let r = DplReader::from_bytes(&b[..]).unwrap();
    assert!(matches!(
        r.get("idna").unwrap_err(),
        DplError::BucketChecksum { .. }
    ));
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(
        DplError::Truncated {
            needed: 192,
            len: 3
        }
        .to_string(),
        "Truncated DPL file: need 192 bytes, file has 3"
    );
    assert_eq!(
        DplError::UnsupportedVersion {
            expected: 1,
            got: 2
        }
        .to_string(),
        "Unsupported DPL format version: expected 1, got 2; re-create the lock with this dx-py"
    );
    assert_eq!(
        DplError::NotUtf8 {
            index: 3,
            field: "name"
        }
        .to_string(),
        "Corrupt DPL entry 3: the name is not UTF-8"
    );
}

/// `idna` of the sample, locked as its sdist instead of a wheel.
fn with_sdist() -> Lock {
    let mut lock = sample();
    let p = lock.packages.iter_mut().find(|p| p.name == "idna").unwrap();
    p.sdist = Some(LockedWheel {
        filename: "idna-3.7.tar.gz".into(),
        url: Some("http://127.0.0.1:3141/files/idna-3.7.tar.gz".into()),
        path: None,
        sha256: p.wheel.sha256,
        size: Some(61_000),
    });
    p.wheel.url = None;
    p.wheel.path = None;
    p.wheel.size = None;
    lock
}

#[test]
fn an_sdist_entry_reads_back_as_the_sdist() {
    let lock = with_sdist();
    let bytes = build(&lock);
    let r = DplReader::from_bytes(&bytes[..]).unwrap();
    r.verify().unwrap();
    let e = r.get("idna").unwrap().unwrap();
    let sdist = e.sdist().unwrap();
    assert_eq!(sdist.filename, "idna-3.7.tar.gz");
    assert_eq!(
        sdist.url,
        Some("http://127.0.0.1:3141/files/idna-3.7.tar.gz")
    );
    assert_eq!(sdist.size, Some(61_000));
    // The wheel keeps its name and the sdist's sha256, nothing else.
    let wheel = e.wheel();
    assert_eq!(wheel.filename, "idna-3.7-py3-none-any.whl");
    assert_eq!((wheel.url, wheel.path, wheel.size), (None, None, None));
    assert_eq!(wheel.sha256, sdist.sha256);
    assert!(r.get("certifi").unwrap().unwrap().sdist().is_none());
    assert_eq!(r.to_lock().unwrap(), canonical(&lock));
    // pylock.toml names the sdist (no wheel, no cache path) and reads back the same.
    let text = lock.to_pylock_string();
    assert!(
        text.contains("sdist = { name = \"idna-3.7.tar.gz\""),
        "{text}"
    );
    assert!(
        text.contains("built-wheel = \"idna-3.7-py3-none-any.whl\""),
        "{text}"
    );
    assert_eq!(
        canonical(&Lock::from_pylock_str(&text).unwrap()),
        canonical(&lock)
    );
}

#[test]
fn a_pylock_sdist_without_our_table_builds_under_a_stand_in_name() {
    let text = "lock-version = '1.0'\n[[packages]]\nname = 'Some.Pkg'\nversion = '1.0'\n\
        sdist = { url = 'http://127.0.0.1:1/some.pkg-1.0.tar.gz', hashes = { sha256 = '"
        .to_owned()
        + &"ab".repeat(32)
        + "' } }\n";
    let lock = Lock::from_pylock_str(&text).unwrap();
    let p = &lock.packages[0];
    assert_eq!(p.wheel.filename, "some_pkg-1.0-py3-none-any.whl");
    let sdist = p.sdist.as_ref().unwrap();
    assert_eq!(sdist.filename, "some.pkg-1.0.tar.gz");
    assert_eq!(p.wheel.sha256, sdist.sha256);
    build(&lock);
}

#[test]
fn builder_refuses_bad_sdist_entries() {
    let with = |f: &dyn Fn(&mut LockedPackage)| {
        let mut lock = with_sdist();
        let p = lock.packages.iter_mut().find(|p| p.name == "idna").unwrap();
        f(p);
        match DplBuilder::from_lock(&lock).to_bytes().unwrap_err() {
            DplBuildError::InvalidSdist {
                package, reason, ..
            } => {
                assert_eq!(package, "idna");
                reason
            }
            other => panic!("{other:?}"),
        }
    };
    let sdist = |p: &mut LockedPackage| p.sdist.as_mut().unwrap().clone();
    assert_eq!(
        with(&|p| p.sdist.as_mut().unwrap().url = None),
        "it has neither a URL nor a path"
    );
    assert_eq!(
        with(&|p| p.sdist.as_mut().unwrap().filename = "other.tar.gz".into()),
        "its URL or path does not end in its file name"
    );
    assert_eq!(
        with(&|p| p.wheel.url = sdist(p).url),
        "the wheel built from it has a URL, path or size of its own"
    );
    assert_eq!(
        with(&|p| p.wheel.sha256 = [9; 32]),
        "the wheel built from it does not carry its sha256"
    );
    assert_eq!(
        with(&|p| p.sdist.as_mut().unwrap().size = Some(u64::MAX)),
        "its size does not fit a TOML integer"
    );
}

#[test]
fn a_forged_sdist_entry_without_a_location_is_refused() {
    let mut lock = with_sdist();
    let p = lock.packages.iter_mut().find(|p| p.name == "idna").unwrap();
    // Valid so far; then the URL flag is cleared by hand, as a forger could.
    p.sdist.as_mut().unwrap().url = Some("http://127.0.0.1:3141/x/idna-3.7.tar.gz".into());
    let mut b = build(&lock);
    let entries = u64_at(&b, H_ENTRIES_OFF).unwrap() as usize;
    let r = DplReader::from_bytes(&b[..]).unwrap();
    let idna = r.get("idna").unwrap().unwrap().index() as usize;
    let rec = entries + idna * ENTRY_LEN;
    let flags = u32_at(&b, rec + E_FLAGS).unwrap();
    put_u32(&mut b, rec + E_FLAGS, flags & !F_URL);
    put_u32(&mut b, rec + E_LENS + 4 * S_URL, 0);
    reseal(&mut b);
    let r = DplReader::from_bytes(&b[..]).unwrap();
    assert!(matches!(
        r.entry(idna).unwrap_err(),
        DplError::BadEntry {
            what: "an sdist entry has no URL or path naming a file",
            ..
        }
    ));
}
