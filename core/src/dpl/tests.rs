//! Property tests of the DPL format and of the pylock.toml round trip.
use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

use super::format::*;
use super::*;
use crate::hash::ContentHash;
use crate::names::normalize_name;

/// A version string with the release segments it was made from (the oracle for the components).
fn arb_version() -> impl Strategy<Value = (String, Vec<u64>)> {
    let release = vec(
        prop_oneof![0u64..20, 0u64..100_000, 0u64..=9_999_999_999_999_999_999],
        1..6,
    );
    let suffix = prop_oneof![
        Just(""),
        Just("rc1"),
        Just(".post2"),
        Just(".dev3"),
        Just("a1"),
        Just("+local.7"),
    ];
    (any::<bool>(), release, suffix).prop_map(|(epoch, release, suffix)| {
        let dotted: Vec<String> = release.iter().map(u64::to_string).collect();
        let epoch = if epoch { "2!" } else { "" };
        (format!("{epoch}{}{suffix}", dotted.join(".")), release)
    })
}

/// Respells a normalized name in a way that normalizes back to it.
fn respell(normalized: &str, seed: u64) -> String {
    normalized
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let bit = (seed >> (i % 64)) & 1 == 1;
            match c {
                '-' if bit => "_".to_string(),
                '-' if seed.is_multiple_of(3) => ".".to_string(),
                c if bit => c.to_ascii_uppercase().to_string(),
                c => c.to_string(),
            }
        })
        .collect()
}

fn arb_opt_string(re: &'static str) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(re)
}

fn arb_meta() -> impl Strategy<Value = LockMeta> {
    (
        "(cp3[0-9]{1,2}-[a-z_0-9]{3,20})?",
        "(3\\.[0-9]{1,2}\\.[0-9]{1,2})?",
        arb_opt_string(">=3\\.[0-9]{1,2}"),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(environment, python_version, requires_python, h)| LockMeta {
                environment,
                python_version,
                requires_python,
                inputs_hash: ContentHash::from_bytes(h),
            },
        )
}

/// A package named (a spelling of) `normalized`; its dependencies are filled in later.
fn arb_package(normalized: String) -> impl Strategy<Value = LockedPackage> {
    let extras =
        btree_set("[a-z][a-z0-9]{0,3}([-_.][a-z0-9]{1,3})?", 0..=MAX_EXTRAS).prop_map(|set| {
            let mut seen = BTreeSet::new();
            set.into_iter()
                .filter(|e| seen.insert(normalize_name(e)))
                .collect::<Vec<_>>()
        });
    (
        any::<u64>(),
        arb_version(),
        arb_opt_string("\\PC{0,30}"),
        arb_opt_string(">=3\\.[0-9]"),
        arb_opt_string("http://127\\.0\\.0\\.1:[0-9]{4}/simple/"),
        extras,
        any::<u64>(),
        (
            arb_opt_string("http://127\\.0\\.0\\.1/[a-z0-9/._-]{1,40}"),
            arb_opt_string("(\\.\\./)?[a-z./]{0,20}"),
            any::<[u8; 32]>(),
            proptest::option::of(0..=i64::MAX as u64),
        ),
        proptest::option::of(any::<[u8; 32]>()),
    )
        .prop_map(
            move |(
                seed,
                (version, _),
                marker,
                requires_python,
                index_url,
                extras,
                bits,
                (url, path, sha256, size),
                store,
            )| {
                let name = respell(&normalized, seed);
                let escaped = normalized.replace('-', "_");
                let mask = if extras.len() == 64 {
                    u64::MAX
                } else {
                    (1u64 << extras.len()) - 1
                };
                LockedPackage {
                    wheel: LockedWheel {
                        filename: format!("{escaped}-{version}-py3-none-any.whl"),
                        url,
                        path,
                        sha256,
                        size,
                    },
                    name,
                    version,
                    marker,
                    requires_python,
                    index_url,
                    extras,
                    extras_bitmap: bits & mask,
                    store_hash: store.map(ContentHash::from_bytes),
                    dependencies: Vec::new(),
                }
            },
        )
}

/// A valid lock of up to `max` packages with random dependency edges between them.
fn arb_lock(max: usize) -> impl Strategy<Value = Lock> {
    btree_set("[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4}){0,2}", 0..max)
        .prop_flat_map(|names| {
            let n = names.len();
            let packages: Vec<_> = names.into_iter().map(arb_package).collect();
            (
                arb_meta(),
                packages,
                vec(vec((0..n.max(1), any::<u64>()), 0..5), n),
            )
        })
        .prop_map(|(meta, mut packages, edges)| {
            let names: Vec<String> = packages.iter().map(|p| p.normalized_name()).collect();
            for (p, edges) in packages.iter_mut().zip(edges) {
                p.dependencies = edges
                    .into_iter()
                    .map(|(t, seed)| respell(&names[t], seed))
                    .collect();
            }
            Lock { meta, packages }
        })
}

fn canonical(lock: &Lock) -> Lock {
    let mut c = lock.clone();
    c.canonicalize();
    c
}

fn build(lock: &Lock) -> Vec<u8> {
    DplBuilder::from_lock(lock).to_bytes().unwrap()
}

/// Recomputes every checksum of a (deliberately edited) file, as a forger would.
fn reseal(bytes: &mut [u8]) {
    super::reseal(bytes);
}

fn wheel(name: &str, version: &str) -> LockedWheel {
    LockedWheel {
        filename: format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
        url: None,
        path: None,
        sha256: [7; 32],
        size: Some(1234),
    }
}

fn package(name: &str, version: &str, deps: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.to_string(),
        version: version.to_string(),
        marker: None,
        requires_python: None,
        index_url: None,
        extras: Vec::new(),
        extras_bitmap: 0,
        wheel: wheel(name, version),
        store_hash: None,
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn sample() -> Lock {
    let mut requests = package(
        "Requests",
        "2.31.0",
        &["idna", "Charset_Normalizer", "certifi"],
    );
    requests.extras = vec!["socks".into(), "use_chardet_on_py3".into()];
    requests.extras_bitmap = 0b01;
    requests.marker = Some("python_version >= \"3.8\"".into());
    requests.requires_python = Some(">=3.7".into());
    requests.index_url = Some("http://127.0.0.1:3141/simple/".into());
    requests.wheel.url =
        Some("http://127.0.0.1:3141/files/requests-2.31.0-py3-none-any.whl".into());
    requests.store_hash = Some(ContentHash::of(b"requests"));
    Lock {
        meta: LockMeta {
            environment: "cp311-linux_x86_64".into(),
            python_version: "3.11.9".into(),
            requires_python: Some(">=3.9".into()),
            inputs_hash: ContentHash::of(b"inputs"),
        },
        packages: vec![
            requests,
            package("idna", "3.7", &[]),
            package("charset-normalizer", "3.3.2", &[]),
            package("certifi", "2024.2.2", &[]),
        ],
    }
}

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

#[test]
fn renderings_show_every_field() {
    let r = DplReader::from_bytes(build(&sample())).unwrap();
    let requests = r.get("requests").unwrap().unwrap().index() as usize;
    let text = r.render_entry(requests).unwrap();
    for needle in [
        "Requests 2.31.0",
        "2.31.0",
        "[x] socks",
        "[ ] use_chardet_on_py3",
        "certifi [0]",
        "idna [2]",
        "requires-python  >=3.7",
        &ContentHash::of(b"requests").to_hex(),
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(r.render_header().contains("cp311-linux_x86_64"));

    let json = r.to_json().unwrap();
    assert_eq!(json["environment"], "cp311-linux_x86_64");
    assert_eq!(json["packages"].as_array().unwrap().len(), 4);
    let p = &json["packages"][requests];
    assert_eq!(p["version_minor"], 31);
    assert_eq!(p["selected_extras"][0], "socks");
    assert_eq!(p["dependencies"][1]["name"], "charset-normalizer");
    assert_eq!(p["wheel"]["sha256"], "07".repeat(32));
    assert_eq!(json["packages"][0]["store_hash"], serde_json::Value::Null);
}

const FOREIGN_PYLOCK: &str = r#"
lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.9"
created-by = "some-tool"

[[packages]]
name = "numpy"
version = "2.0.0"
marker = "python_version >= '3.10'"
requires-python = ">=3.9"
index = "http://127.0.0.1:3141/simple"
wheels = [
  { name = "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl", url = "http://127.0.0.1:3141/f/a.whl", size = 100, hashes = { sha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } },
  { name = "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl", url = "http://127.0.0.1:3141/f/b.whl", hashes = { sha256 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", md5 = "00" } },
]

[[packages]]
name = "numpy"
version = "1.26.4"
marker = "python_version < '3.10'"
[[packages.wheels]]
url = "http://127.0.0.1:3141/f/numpy-1.26.4-cp39-cp39-manylinux_2_17_x86_64.whl"
hashes = { sha256 = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" }

[[packages]]
name = "Pandas"
version = "2.2.2"
dependencies = [{ name = "numpy", version = "2.0.0" }, { name = "numpy", version = "1.26.4" }]
[[packages.wheels]]
name = "pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl"
path = "wheels/pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl"
upload-time = 2024-04-10T19:45:48Z
hashes = { sha256 = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd" }

[packages.tool.other-tool]
anything = 1
"#;

/// Keeps numpy 2 (python >= 3.10) and the cp311 wheel.
struct Py311;

impl PylockSelector for Py311 {
    fn applies(&mut self, _name: &str, _version: &str, marker: Option<&str>) -> bool {
        marker.is_none_or(|m| m.contains(">="))
    }

    fn choose_wheel(&mut self, _name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        wheels.iter().position(|w| w.filename.contains("cp311"))
    }
}

#[test]
fn reads_a_foreign_multi_environment_pylock() {
    // Without a selector the two numpy entries and the two numpy wheels are ambiguous.
    assert!(matches!(
        Lock::from_pylock_str(FOREIGN_PYLOCK).unwrap_err(),
        PylockError::AmbiguousWheel { count: 2, .. }
    ));
    let lock = Lock::from_pylock_str_with(FOREIGN_PYLOCK, &mut Py311).unwrap();
    assert_eq!(lock.meta.requires_python.as_deref(), Some(">=3.9"));
    assert_eq!(lock.meta.environment, "");
    assert_eq!(lock.packages.len(), 2);
    let numpy = lock.get("numpy").unwrap();
    assert_eq!(numpy.version, "2.0.0");
    assert_eq!(numpy.wheel.sha256, [0xaa; 32]);
    assert_eq!(numpy.wheel.size, Some(100));
    assert_eq!(
        numpy.index_url.as_deref(),
        Some("http://127.0.0.1:3141/simple")
    );
    let pandas = lock.get("pandas").unwrap();
    assert_eq!(pandas.dependencies, ["numpy"]);
    assert_eq!(
        pandas.wheel.path.as_deref(),
        Some("wheels/pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl")
    );

    // It converts to a DPL and back to pylock.toml without loss of what both express.
    let bytes = build(&lock);
    let back = DplReader::from_bytes(&bytes[..])
        .unwrap()
        .to_lock()
        .unwrap();
    assert_eq!(back, canonical(&lock));
    let again = Lock::from_pylock_str(&back.to_pylock_string()).unwrap();
    assert_eq!(again, back);

    // A wheel without `name` gets its file name from the URL.
    struct Old;
    impl PylockSelector for Old {
        fn applies(&mut self, _: &str, _: &str, marker: Option<&str>) -> bool {
            marker.is_none_or(|m| m.contains('<'))
        }
    }
    let lock = Lock::from_pylock_str_with(FOREIGN_PYLOCK, &mut Old).unwrap();
    assert_eq!(
        lock.get("numpy").unwrap().wheel.filename,
        "numpy-1.26.4-cp39-cp39-manylinux_2_17_x86_64.whl"
    );
}

#[test]
fn pylock_errors_are_typed() {
    let err = |text: &str| Lock::from_pylock_str(text).unwrap_err();
    assert!(matches!(err("lock-version = "), PylockError::Toml(_)));
    assert!(matches!(
        err("created-by = 'x'\npackages = []"),
        PylockError::Missing {
            key: "lock-version",
            ..
        }
    ));
    assert!(matches!(
        err("lock-version = '2.0'\npackages = []"),
        PylockError::UnsupportedLockVersion(v) if v == "2.0"
    ));
    assert!(matches!(
        err("lock-version = '1.0'"),
        PylockError::Missing {
            key: "packages",
            ..
        }
    ));
    assert!(matches!(
        err("lock-version = '1.0'\npackages = 3"),
        PylockError::WrongType {
            key: "packages",
            ..
        }
    ));
    let one = |pkg: &str| format!("lock-version = '1.0'\n[[packages]]\n{pkg}");
    assert!(matches!(
        err(&one("name = 'a'\nversion = '1'\n[packages.sdist]\nname = 'a-1.tar.gz'")),
        PylockError::NoWheel(n) if n == "a"
    ));
    assert!(matches!(
        err(&one("name = 'a'")),
        PylockError::Missing { key: "version", .. }
    ));
    assert!(matches!(
        err(&one("name = 'a'\nversion = 1")),
        PylockError::WrongType { key: "version", .. }
    ));
    let wheel = "[[packages.wheels]]\nname = 'a-1-py3-none-any.whl'\n";
    assert!(matches!(
        err(&one(&format!(
            "name = 'a'\nversion = '1'\n{wheel}hashes = {{ md5 = '00' }}"
        ))),
        PylockError::MissingSha256 { .. }
    ));
    assert!(matches!(
        err(&one(&format!(
            "name = 'a'\nversion = '1'\n{wheel}hashes = {{ sha256 = 'xyz' }}"
        ))),
        PylockError::InvalidHash { .. }
    ));
    let sha = format!("hashes = {{ sha256 = '{}' }}\n", "0".repeat(64));
    assert!(matches!(
        err(&one(&format!(
            "name = 'a'\nversion = '1'\n{wheel}size = -1\n{sha}"
        ))),
        PylockError::WrongType { key: "size", .. }
    ));
    assert!(matches!(
        err(&one(&format!("name = 'a'\nversion = '1'\ndependencies = [{{ name = 'b' }}]\n{wheel}{sha}"))),
        PylockError::UnknownDependency { dependency, .. } if dependency == "b"
    ));
    assert!(matches!(
        err(&one(&format!("name = 'a'\nversion = '1'\n{wheel}{sha}[packages.tool.dx-py]\nextras = ['x']\nselected-extras = ['y']"))),
        PylockError::UnknownExtra { extra, .. } if extra == "y"
    ));
    let twice = format!(
        "{}\n[[packages]]\nname = 'A'\nversion = '2'\n{wheel}{sha}",
        one(&format!("name = 'a'\nversion = '1'\n{wheel}{sha}"))
    );
    assert!(matches!(err(&twice), PylockError::DuplicatePackage(_)));
    // The error names where the problem is.
    let e = err(&one("name = 'a'\nversion = 1"));
    assert_eq!(
        e.to_string(),
        "`version` in packages[0] (`a`) must be a string"
    );
}

#[test]
fn written_pylock_is_pep751_shaped() {
    let text = sample().to_pylock_string();
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    assert_eq!(doc["lock-version"].as_str(), Some("1.0"));
    assert_eq!(doc["created-by"].as_str(), Some("dx-py"));
    let packages = doc["packages"].as_array_of_tables().unwrap();
    let requests = packages
        .iter()
        .find(|p| p["name"].as_str() == Some("Requests"))
        .unwrap();
    let wheel = requests["wheels"]
        .as_array_of_tables()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(
        wheel["hashes"]["sha256"].as_str(),
        Some("07".repeat(32).as_str())
    );
    assert_eq!(wheel["size"].as_integer(), Some(1234));
    assert_eq!(
        requests["tool"]["dx-py"]["selected-extras"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        doc["tool"]["dx-py"]["environment"].as_str(),
        Some("cp311-linux_x86_64")
    );
    assert!(!text.contains("pypi"));
    // Reading back gives the same lock.
    let back = Lock::from_pylock_str(&text).unwrap();
    assert_eq!(canonical(&back), canonical(&sample()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pylock.toml");
    sample().write_pylock(&path).unwrap();
    assert_eq!(
        canonical(&Lock::read_pylock(&path).unwrap()),
        canonical(&sample())
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random lock -> DPL -> reader gives the same lock, and every field of every entry.
    #[test]
    fn dpl_round_trip(lock in arb_lock(24)) {
        let bytes = build(&lock);
        prop_assert_eq!(&bytes[..8], &MAGIC[..]);
        let r = DplReader::from_bytes(&bytes[..]).unwrap();
        r.verify().unwrap();
        prop_assert_eq!(r.to_lock().unwrap(), canonical(&lock));
        prop_assert_eq!(r.meta(), lock.meta.clone());
        for p in &lock.packages {
            let e = r.get(&p.name).unwrap().unwrap();
            prop_assert_eq!(e.version(), p.version.as_str());
            prop_assert_eq!(
                (e.version_major(), e.version_minor(), e.version_patch()),
                version_components(&p.version).unwrap()
            );
            prop_assert_eq!(e.extras_bitmap(), p.extras_bitmap);
            prop_assert_eq!(e.wheel().sha256, p.wheel.sha256);
            prop_assert_eq!(e.store_hash(), p.store_hash);
            for (i, x) in p.extras.iter().enumerate() {
                let on = p.extras_bitmap & (1 << i) != 0;
                prop_assert_eq!(e.has_extra(x), on);
                prop_assert_eq!(e.has_extra(&x.to_ascii_uppercase().replace('-', "_")), on);
                prop_assert_eq!(p.has_extra(x), on);
            }
            prop_assert!(!e.has_extra("not-an-extra-0"));
            let by_index = r.entry(e.index() as usize).unwrap();
            prop_assert_eq!(by_index, e);
        }
        prop_assert!(r.get("zz-not-in-any-lock-9").unwrap().is_none());
    }

    /// Version components are the first three release segments, zero-padded.
    #[test]
    fn version_components_match_the_release((version, release) in arb_version()) {
        let at = |i: usize| release.get(i).copied().unwrap_or(0);
        prop_assert_eq!(version_components(&version).unwrap(), (at(0), at(1), at(2)));
    }

    /// The same packages in any order give the same bytes.
    #[test]
    fn output_is_order_independent(lock in arb_lock(16), seed in any::<usize>()) {
        let mut shuffled = lock.clone();
        let n = shuffled.packages.len().max(1);
        shuffled.packages.rotate_left(seed % n);
        shuffled.packages.reverse();
        prop_assert_eq!(build(&lock), build(&shuffled));
    }

    /// DPL -> pylock.toml -> DPL gives identical bytes; lock -> pylock.toml -> lock is identity.
    #[test]
    fn pylock_round_trip(lock in arb_lock(16)) {
        let bytes = build(&lock);
        let from_dpl = DplReader::from_bytes(&bytes[..]).unwrap().to_lock().unwrap();
        let text = from_dpl.to_pylock_string();
        let back = Lock::from_pylock_str(&text).unwrap();
        prop_assert_eq!(&back, &from_dpl);
        prop_assert_eq!(build(&back), bytes);
        prop_assert_eq!(canonical(&Lock::from_pylock_str(&lock.to_pylock_string()).unwrap()), canonical(&lock));
    }

    /// Anything but the magic bytes is refused before anything else is read.
    #[test]
    fn wrong_magic_is_refused(lock in arb_lock(4), magic in any::<[u8; 8]>()) {
        let mut bytes = build(&lock);
        bytes[..8].copy_from_slice(&magic);
        let res = DplReader::from_bytes(&bytes[..]);
        if magic == MAGIC {
            prop_assert!(res.is_ok());
        } else {
            prop_assert_eq!(res.unwrap_err(), DplError::BadMagic { got: magic.to_vec() });
        }
    }

    /// Every strict prefix of a file is reported as truncated.
    #[test]
    fn truncation_at_every_length(lock in arb_lock(6)) {
        let bytes = build(&lock);
        for cut in 0..bytes.len() {
            match DplReader::from_bytes(&bytes[..cut]) {
                Err(DplError::Truncated { len, needed }) => {
                    prop_assert_eq!(len, cut as u64);
                    prop_assert!(needed > len);
                }
                other => prop_assert!(false, "cut {}: {:?}", cut, other.map(|_| ())),
            }
        }
    }

    /// Byte flips give an error or the unchanged correct answer, never a wrong one; `verify`
    /// catches every change.
    #[test]
    fn flips_never_give_a_wrong_answer(
        lock in arb_lock(12),
        section in 0..6usize,
        flips in vec((any::<usize>(), 1u8..), 1..6),
    ) {
        let pristine = build(&lock);
        let good = DplReader::from_bytes(&pristine[..]).unwrap();
        // Aim at one section (or, for 5, anywhere) so that small sections get hit too.
        let bounds = [
            0,
            HEADER_LEN,
            u64_at(&pristine, H_ENTRIES_OFF).unwrap() as usize,
            u64_at(&pristine, H_DEPS_OFF).unwrap() as usize,
            u64_at(&pristine, H_STRINGS_OFF).unwrap() as usize,
            pristine.len(),
        ];
        let (start, end) = if section == 5 {
            (0, pristine.len())
        } else {
            (bounds[section], bounds[section + 1])
        };
        let mut bytes = pristine.clone();
        for &(at, x) in &flips {
            if end > start {
                bytes[start + at % (end - start)] ^= x;
            }
        }
        let Ok(r) = DplReader::from_bytes(&bytes[..]) else { return Ok(()) };
        if bytes != pristine {
            prop_assert!(r.verify().is_err());
        }
        for p in &lock.packages {
            match r.get(&p.name) {
                Err(_) => {}
                Ok(found) => prop_assert_eq!(found, good.get(&p.name).unwrap()),
            }
        }
        for i in 0..r.len() {
            if let Ok(e) = r.entry(i) {
                prop_assert_eq!(e, good.entry(i).unwrap());
            }
        }
        if let Ok(found) = r.get("zz-absent") {
            prop_assert!(found.is_none());
        }
        let _ = r.to_json();
        let _ = r.render_header();
    }

    /// Random bytes (with and without the magic) never panic (what the fuzz target does).
    #[test]
    fn random_files_never_panic(
        body in vec(any::<u8>(), 0..600),
        with_magic in any::<bool>(),
        with_version in any::<bool>(),
        names in vec("[a-z-]{0,8}", 0..4),
    ) {
        let mut bytes = body;
        if with_magic {
            let mut b = MAGIC.to_vec();
            if with_version {
                b.extend_from_slice(&VERSION.to_le_bytes());
            }
            b.extend_from_slice(&bytes);
            bytes = b;
        }
        if let Ok(r) = DplReader::from_bytes(&bytes[..]) {
            let _ = r.verify();
            for n in &names {
                let _ = r.get(n);
            }
            let _ = r.to_lock();
            let _ = r.to_json();
            for i in 0..r.len().min(64) {
                let _ = r.render_entry(i);
            }
        }
    }

    /// Files edited and then resealed (every checksum recomputed, as a forger would) give typed
    /// errors or answers, never a panic or an out-of-bounds read.
    #[test]
    fn forged_files_never_panic(
        lock in arb_lock(8),
        edits in vec((any::<usize>(), any::<u8>()), 1..8),
        names in vec("[a-z-]{0,8}", 0..4),
    ) {
        let mut bytes = build(&lock);
        for &(at, v) in &edits {
            let len = bytes.len();
            bytes[at % len] = v;
        }
        reseal(&mut bytes);
        if let Ok(r) = DplReader::from_bytes(&bytes[..]) {
            let _ = r.verify();
            for p in lock.packages.iter().map(|p| p.name.as_str()).chain(names.iter().map(String::as_str)) {
                if let Ok(Some(e)) = r.get(p) {
                    let _ = e.dependencies().count();
                    let _ = e.has_extra("x");
                }
            }
            let _ = r.to_lock();
            let _ = r.to_json();
            for i in 0..r.len() {
                let _ = r.render_entry(i);
            }
        }
    }
}
