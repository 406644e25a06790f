//! Reading back what the builder wrote: the sample lock, long names, the empty lock, the atomic write.
use super::*;

#[test]
fn sample_reads_back() {
    let bytes = build(&sample());
    assert_eq!(bytes[..8], MAGIC);
    let r = DplReader::from_bytes(&bytes[..]).unwrap();
    r.verify().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r.environment(), "cp311-linux_x86_64");
    assert_eq!(r.python_version(), "3.11.9");
    assert_eq!(r.requires_python(), Some(">=3.9"));
    assert!(r.is_fresh(&ContentHash::of(b"inputs")));
    assert!(!r.is_fresh(&ContentHash::of(b"other inputs")));

    let e = r.get("requests").unwrap().unwrap();
    assert_eq!(
        (e.name(), e.normalized_name(), e.version()),
        ("Requests", "requests", "2.31.0")
    );
    assert_eq!(
        (e.version_major(), e.version_minor(), e.version_patch()),
        (2, 31, 0)
    );
    assert!(e.has_extra("socks") && e.has_extra("SOCKS"));
    assert!(!e.has_extra("use-chardet-on-py3") && !e.has_extra("nope"));
    assert_eq!(e.selected_extras().collect::<Vec<_>>(), ["socks"]);
    assert_eq!(e.store_hash(), Some(ContentHash::of(b"requests")));
    assert_eq!(e.wheel().size, Some(1234));
    let deps: Vec<&str> = e
        .dependencies()
        .map(|d| r.entry(d as usize).unwrap().name())
        .collect();
    assert_eq!(deps, ["certifi", "charset-normalizer", "idna"]);
    for spelling in [
        "CHARSET_NORMALIZER",
        "charset.normalizer",
        "Charset-_.Normalizer",
    ] {
        assert_eq!(
            r.get(spelling).unwrap().unwrap().name(),
            "charset-normalizer",
            "{spelling}"
        );
    }
    assert!(r.get("charsetnormalizer").unwrap().is_none());
    assert!(r.get("").unwrap().is_none());
    assert_eq!(r.get("idna").unwrap().unwrap().store_hash(), None);
    assert_eq!(r.to_lock().unwrap(), canonical(&sample()));
}

#[test]
fn long_names_are_found_in_any_spelling() {
    let long = format!("{}-tail", "x".repeat(NAME_BUF + 20));
    let mut lock = sample();
    lock.packages.push(package(&long, "1.0", &[]));
    let r = DplReader::from_bytes(build(&lock)).unwrap();
    for spelling in [long.clone(), long.to_uppercase(), long.replace('-', "_.-")] {
        let e = r.get(&spelling).unwrap().unwrap();
        assert_eq!(e.name(), long);
    }
    assert!(r.get(&format!("{long}x")).unwrap().is_none());
    assert!(r.get(&format!("{long}X")).unwrap().is_none());
    assert!(r.get(&"y".repeat(NAME_BUF + 1)).unwrap().is_none());
}

#[test]
fn empty_lock_round_trips() {
    let lock = Lock::default();
    let bytes = build(&lock);
    let r = DplReader::from_bytes(bytes).unwrap();
    r.verify().unwrap();
    assert!(r.is_empty());
    assert!(r.get("anything").unwrap().is_none());
    assert_eq!(r.to_lock().unwrap(), lock);
    assert!(!r.is_fresh(&ContentHash::from_bytes([0; 32])));
}

#[test]
fn write_is_atomic_and_open_maps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dx-py.dpl");
    DplBuilder::from_lock(&sample()).write(&path).unwrap();
    // Overwriting replaces the file whole.
    sample().write_dpl(&path).unwrap();
    let names: Vec<_> = fs_err::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["dx-py.dpl"]);
    let r = DplReader::open(&path).unwrap();
    r.verify().unwrap();
    assert_eq!(r.get("idna").unwrap().unwrap().version(), "3.7");

    let missing = dir.path().join("missing.dpl");
    assert!(matches!(
        DplReader::open(&missing).unwrap_err(),
        DplFileError::Read { .. }
    ));
    let garbage = dir.path().join("garbage.dpl");
    fs_err::write(&garbage, b"not a lock").unwrap();
    let err = DplReader::open(&garbage).unwrap_err();
    assert!(matches!(err, DplFileError::Invalid { .. }));
    assert!(err.to_string().contains("garbage.dpl"));
    let empty = dir.path().join("empty.dpl");
    fs_err::write(&empty, b"").unwrap();
    assert!(matches!(
        DplReader::open(&empty).unwrap_err(),
        DplFileError::Invalid {
            source: DplError::Truncated { len: 0, .. },
            ..
        }
    ));

    let mut bad = sample();
    bad.packages[0].version = "x".into();
    let err = bad.write_dpl(&dir.path().join("bad.dpl")).unwrap_err();
    assert!(matches!(err, DplFileError::Build { .. }));
    assert!(!dir.path().join("bad.dpl").exists());
}
