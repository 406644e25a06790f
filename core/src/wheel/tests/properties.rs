//! Properties over generated wheels, each against a naive oracle.
use super::*;

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
