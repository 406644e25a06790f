//! Tests of DPL version 2: round trips over generated universal locks, one test per rejection,
//! and "damage is an error, never a panic".
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::dpl::{
    DplBuildError, DplReader, LocalSource, LockedWheel, UniversalLock, UniversalLockedPackage,
};
use crate::hash::ContentHash;
use crate::names::normalize_name;

/// Wheel tags the generated locks draw from: pure, per platform and Python, abi3.
pub(crate) const TAGS: [&str; 10] = [
    "py3-none-any",
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp312-cp312-manylinux_2_17_x86_64",
    "cp39-abi3-manylinux_2_17_x86_64",
    "cp311-cp311-manylinux_2_17_aarch64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-win_amd64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp310-cp310-musllinux_1_2_x86_64",
];

/// Markers of single entries, and complementary pairs for names locked at two versions.
const MARKERS: [&str; 5] = [
    "sys_platform == 'win32'",
    "platform_machine == 'aarch64'",
    "python_full_version >= '3.12'",
    "implementation_name == 'pypy'",
    "sys_platform == 'darwin' or python_full_version < '3.11'",
];
const PAIRS: [(&str, &str); 2] = [
    ("sys_platform == 'win32'", "sys_platform != 'win32'"),
    (
        "python_full_version < '3.12'",
        "python_full_version >= '3.12'",
    ),
];

pub(crate) fn file(filename: String, seed: u8, size: Option<u64>, url: bool) -> LockedWheel {
    LockedWheel {
        url: url.then(|| format!("http://127.0.0.1:9/files/{filename}")),
        path: (!url).then(|| format!("wheels/{filename}")),
        filename,
        sha256: [seed; 32],
        size,
    }
}

/// A package entry: `tags` picks wheels from [`TAGS`] (bit i = tag i).
pub(crate) fn entry(
    name: &str,
    version: &str,
    marker: Option<&str>,
    tags: u16,
    sdist: bool,
    deps: &[&str],
) -> UniversalLockedPackage {
    let stem = format!("{}-{version}", normalize_name(name).replace('-', "_"));
    let wheels = (0..TAGS.len())
        .filter(|i| tags & (1 << i) != 0)
        .map(|i| {
            file(
                format!("{stem}-{}.whl", TAGS[i]),
                i as u8,
                Some(100 + i as u64),
                i % 2 == 0,
            )
        })
        .collect();
    UniversalLockedPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        marker: marker.map(str::to_owned),
        requires_python: Some(">=3.8".into()),
        index_url: Some("http://127.0.0.1:9/simple/".into()),
        dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
        wheels,
        sdist: sdist.then(|| file(format!("{stem}.tar.gz"), 99, None, true)),
        local: None,
    }
}

/// `p` locked as local source: 1 a directory, 2 an editable one, 3 an archive (0: as it is).
pub(crate) fn localized(mut p: UniversalLockedPackage, kind: u8) -> UniversalLockedPackage {
    let stem = format!(
        "{}-{}",
        normalize_name(&p.name).replace('-', "_"),
        p.version
    );
    match kind {
        1 | 2 => {
            p.wheels.clear();
            p.sdist = None;
            p.local = Some(LocalSource::Directory {
                path: format!("../{stem}"),
                editable: kind == 2,
            });
        }
        3 => {
            p.wheels.clear();
            let mut archive = file(format!("{stem}.tar.gz"), 98, Some(10), false);
            archive.path = Some(format!("dist/{stem}.tar.gz"));
            p.sdist = Some(archive);
            p.local = Some(LocalSource::Archive);
        }
        _ => {}
    }
    p
}

/// A universal lock of up to `n` names: each once (marker or not) or twice under complementary
/// markers, with random wheels, sdists and dependencies on other names.
pub(crate) fn arb_universal_lock(n: usize) -> impl Strategy<Value = UniversalLock> {
    let one = (
        0usize..8,
        0usize..2,
        1u16..1024,
        any::<bool>(),
        vec(0usize..64, 0..4),
        0u8..8,
    );
    (vec(one, 1..n.max(2)), any::<bool>()).prop_map(|(specs, requires)| {
        let names: Vec<String> = (0..specs.len()).map(|i| format!("Pkg_{i}")).collect();
        let mut packages = Vec::new();
        for (i, (shape, version, tags, sdist, deps, local)) in specs.iter().enumerate() {
            let deps: Vec<&str> = deps
                .iter()
                .map(|d| names[d % names.len()].as_str())
                .filter(|d| *d != names[i])
                .collect();
            let v = format!("1.{version}");
            let name = names[i].as_str();
            match shape {
                0..=2 => packages.push(localized(
                    entry(name, &v, None, *tags, *sdist, &deps),
                    local % 4,
                )),
                3..=5 => packages.push(localized(
                    entry(name, &v, Some(MARKERS[shape % 5]), *tags, *sdist, &deps),
                    local % 4,
                )),
                _ => {
                    let (a, b) = PAIRS[shape % 2];
                    packages.push(entry(name, "1.0", Some(a), *tags, *sdist, &deps));
                    packages.push(entry(
                        name,
                        "2.0",
                        Some(b),
                        tags.rotate_left(3) | 1,
                        false,
                        &deps,
                    ));
                }
            }
        }
        UniversalLock {
            requires_python: requires.then(|| ">=3.9".into()),
            environments: Vec::new(),
            inputs_hash: ContentHash::of(b"inputs"),
            packages,
        }
    })
}

/// What reading a lock back gives: entries in file order, dependencies named as their entries
/// spell them, once each.
fn canonical(lock: &UniversalLock) -> UniversalLock {
    let mut c = lock.clone();
    c.packages.sort_by(|a, b| {
        (normalize_name(&a.name), &a.version, &a.marker).cmp(&(
            normalize_name(&b.name),
            &b.version,
            &b.marker,
        ))
    });
    let spelled: Vec<(String, String)> = c
        .packages
        .iter()
        .map(|p| (normalize_name(&p.name), p.name.clone()))
        .collect();
    for p in &mut c.packages {
        let wanted: Vec<String> = p.dependencies.iter().map(|d| normalize_name(d)).collect();
        let mut deps: Vec<String> = Vec::new();
        for (norm, name) in &spelled {
            if wanted.contains(norm) && !deps.contains(name) {
                deps.push(name.clone());
            }
        }
        p.dependencies = deps;
    }
    c
}

fn sample() -> UniversalLock {
    UniversalLock {
        requires_python: Some(">=3.9".into()),
        environments: vec!["sys_platform != 'emscripten'".into()],
        inputs_hash: ContentHash::of(b"sample"),
        packages: vec![
            entry("numpy", "2.1.0", Some(PAIRS[1].1), 0b1_0100_0110, true, &[]),
            entry(
                "numpy",
                "1.26.4",
                Some(PAIRS[1].0),
                0b10_0010_0010,
                true,
                &[],
            ),
            entry("App", "1.0", None, 1, false, &["numpy", "pywin32"]),
            entry("pywin32", "306", Some(MARKERS[0]), 0b110_0000, false, &[]),
            entry("only-sdist", "0.1", None, 0, true, &[]),
            localized(entry("lib", "0.2", None, 0, false, &["numpy"]), 2),
            localized(entry("tool", "0.3", Some(MARKERS[0]), 0, false, &[]), 1),
            localized(entry("vendored", "1.0", None, 0, false, &[]), 3),
        ],
    }
}

#[test]
fn sample_round_trips_and_is_version_2() {
    let lock = sample();
    let bytes = lock.dpl_bytes().unwrap();
    assert_eq!(format_version(&bytes), Ok(2));
    let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
    reader.verify().unwrap();
    assert_eq!(reader.to_universal_lock().unwrap(), canonical(&lock));
    assert_eq!(reader.len(), 8);
    let lib = &reader.get("lib").unwrap()[0];
    assert_eq!(lib.directory(), Some(("../lib-0.2", true)));
    assert!(lib.sdist().is_none() && lib.wheel_count() == 0);
    let tool = &reader.get("tool").unwrap()[0];
    assert_eq!(tool.directory(), Some(("../tool-0.3", false)));
    let vendored = &reader.get("vendored").unwrap()[0];
    assert!(vendored.is_archive() && vendored.directory().is_none());
    assert_eq!(
        vendored.sdist().and_then(|s| s.path),
        Some("dist/vendored-1.0.tar.gz")
    );
    // Four distinct markers: the two numpy ones, pywin32's, and the environment.
    assert_eq!(reader.marker_count(), 4);
    assert_eq!(reader.requires_python(), Ok(Some(">=3.9")));
    assert_eq!(reader.inputs_hash(), ContentHash::of(b"sample"));
    // The same content in another order gives the same bytes.
    let mut shuffled = lock.clone();
    shuffled.packages.reverse();
    assert_eq!(shuffled.dpl_bytes().unwrap(), bytes);
}

#[test]
fn get_finds_every_entry_of_a_name_in_any_spelling() {
    let bytes = sample().dpl_bytes().unwrap();
    let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
    let numpy = reader.get("NumPy").unwrap();
    let versions: Vec<&str> = numpy.iter().map(|e| e.version()).collect();
    assert_eq!(versions, ["1.26.4", "2.1.0"]);
    assert_eq!(numpy[0].wheel_count(), 3);
    assert!(numpy[0].sdist().unwrap().filename.ends_with(".tar.gz"));
    assert_eq!(reader.get("only_sdist").unwrap()[0].wheel_count(), 0);
    assert!(reader.get("absent").unwrap().is_empty());
    assert!(reader.get("").unwrap().is_empty());
    let app = &reader.get("app").unwrap()[0];
    // App depends on both numpy entries and on pywin32.
    assert_eq!(app.dependencies().len(), 3);
    assert_eq!(app.marker_index(), None);
}

#[test]
fn versions_are_told_apart_by_the_header() {
    let v2 = sample().dpl_bytes().unwrap();
    let v1 = crate::dpl::Lock::default().dpl_bytes().unwrap();
    assert_eq!(format_version(&v1), Ok(1));
    assert_eq!(
        DplReader::from_bytes(&v2[..]).unwrap_err(),
        DplError::UnsupportedVersion {
            expected: 1,
            got: 2
        }
    );
    assert_eq!(
        UniversalDplReader::from_bytes(&v1[..]).unwrap_err(),
        DplError::UnsupportedVersion {
            expected: 2,
            got: 1
        }
    );
    assert!(matches!(
        format_version(b"PK\x03\x04"),
        Err(DplError::BadMagic { .. })
    ));
    assert!(matches!(
        format_version(b"DXDPL\0\r\n\x02"),
        Err(DplError::Truncated { .. })
    ));
}

#[test]
fn every_truncation_and_every_flipped_byte_is_an_error() {
    let bytes = sample().dpl_bytes().unwrap();
    let open_and_verify = |b: &[u8]| UniversalDplReader::from_bytes(b).and_then(|r| r.verify());
    for len in 0..bytes.len() {
        assert!(
            open_and_verify(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        assert!(open_and_verify(&b).is_err(), "byte {at} flipped");
    }
}

#[test]
fn header_rejections_name_the_field() {
    let bytes = sample().dpl_bytes().unwrap();
    let with = |at: usize, v: u32| {
        let mut b = bytes.clone();
        crate::dpl::format::put_u32(&mut b, at, v);
        builder::seal(&mut b);
        UniversalDplReader::from_bytes(b).unwrap_err()
    };
    assert_eq!(with(H_FLAGS, 4), DplError::UnknownFeatures(4));
    assert!(matches!(
        with(H_HEADER_LEN, 200),
        DplError::BadHeader {
            what: "header length",
            ..
        }
    ));
    assert!(matches!(
        with(H_ENTRY_COUNT, 6),
        DplError::BadHeader {
            what: "file section offset",
            ..
        }
    ));
    assert!(matches!(
        with(H_META_FLAGS, 4),
        DplError::BadHeader {
            what: "meta flags",
            ..
        }
    ));
    let mut b = bytes.clone();
    b[H_CHECKSUM] ^= 1;
    assert!(matches!(
        UniversalDplReader::from_bytes(b).unwrap_err(),
        DplError::HeaderChecksum { .. }
    ));
}

#[test]
fn build_rejections_name_the_package() {
    let mut lock = sample();
    lock.packages[2].dependencies.push("missing".into());
    assert_eq!(
        lock.dpl_bytes().unwrap_err(),
        DplBuildError::UnknownDependency {
            package: "App".into(),
            dependency: "missing".into()
        }
    );
    let mut lock = sample();
    lock.packages[3].marker = Some("sys_platform =".into());
    assert!(matches!(
        lock.dpl_bytes().unwrap_err(),
        DplBuildError::InvalidMarker { package, .. } if package == "pywin32"
    ));
    let mut lock = sample();
    lock.packages.push(lock.packages[0].clone());
    assert_eq!(
        lock.dpl_bytes().unwrap_err(),
        DplBuildError::DuplicatePackage("numpy".into())
    );
    let mut lock = sample();
    lock.packages[2].wheels[0].filename = "app-1.0.zip".into();
    assert!(matches!(
        lock.dpl_bytes().unwrap_err(),
        DplBuildError::InvalidWheel { .. }
    ));
}

proptest! {
    #[test]
    fn generated_locks_round_trip(lock in arb_universal_lock(24)) {
        let bytes = lock.dpl_bytes().unwrap();
        let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
        reader.verify().unwrap();
        prop_assert_eq!(reader.to_universal_lock().unwrap(), canonical(&lock));
        // Every name is found with every entry it has.
        for p in &lock.packages {
            let found = reader.get(&p.name.to_uppercase()).unwrap();
            let same = lock.packages.iter().filter(|q| normalize_name(&q.name) == normalize_name(&p.name)).count();
            prop_assert_eq!(found.len(), same);
        }
    }

    /// A crafted file (edited, then every hash recomputed) is read or refused, never a panic.
    #[test]
    fn crafted_files_never_panic(
        lock in arb_universal_lock(6),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = lock.dpl_bytes().unwrap();
        for (at, v) in edits {
            let at = at.index(bytes.len());
            bytes[at] = v;
        }
        builder::seal(&mut bytes);
        if let Ok(reader) = UniversalDplReader::from_bytes(&bytes[..]) {
            let _ = reader.verify();
            let _ = reader.to_universal_lock();
            let _ = reader.get("pkg-0");
            let _ = reader.environments();
            for e in reader.entries().flatten() {
                let _ = (e.wheels().count(), e.sdist(), e.dependencies().count());
            }
        }
    }
}

#[test]
fn inconsistent_local_source_flags_are_refused() {
    let bytes = sample().dpl_bytes().unwrap();
    let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
    let at = |name: &str| {
        let i = reader.get(name).unwrap()[0].index() as usize;
        let entries = crate::dpl::format::u64_at(&bytes, H_ENTRIES_OFF).unwrap() as usize;
        entries + i * ENTRY_LEN + E_FLAGS
    };
    let (lib, only_sdist, app) = (at("lib"), at("only-sdist"), at("App"));
    for (at, flags) in [
        // A directory and an sdist in one slot.
        (lib, EF_DIRECTORY | EF_EDITABLE | EF_SDIST),
        // Editable without a directory, an archive without an sdist.
        (only_sdist, EF_SDIST | EF_EDITABLE),
        (app, EF_ARCHIVE),
    ] {
        let mut b = bytes.clone();
        let old = crate::dpl::format::u32_at(&b, at).unwrap();
        crate::dpl::format::put_u32(&mut b, at, (old & (EF_REQUIRES_PYTHON | EF_INDEX)) | flags);
        builder::seal(&mut b);
        let reader = UniversalDplReader::from_bytes(&b[..]).unwrap();
        let e = reader.verify().unwrap_err();
        assert!(
            matches!(
                e,
                DplError::BadEntry {
                    what: "inconsistent local source flags",
                    ..
                }
            ),
            "{flags:#x}: {e}"
        );
    }
}

#[test]
fn the_built_directories_flag_must_match_the_entries() {
    let bytes = sample().dpl_bytes().unwrap();
    let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
    assert!(
        reader.has_built_directories(),
        "`tool` is a directory, not editable"
    );
    let mut b = bytes.clone();
    crate::dpl::format::put_u32(&mut b, H_META_FLAGS, META_REQUIRES_PYTHON);
    builder::seal(&mut b);
    let reader = UniversalDplReader::from_bytes(&b[..]).unwrap();
    assert!(matches!(
        reader.verify(),
        Err(DplError::Inconsistent(
            "the header's built-directories flag does not match the entries"
        ))
    ));
    // Editable directories only: no flag.
    let mut lock = sample();
    lock.packages.retain(|p| p.name != "tool");
    let reader = UniversalDplReader::from_bytes(lock.dpl_bytes().unwrap()).unwrap();
    assert!(!reader.has_built_directories());
    reader.verify().unwrap();
}

#[test]
fn dumps_show_local_source() {
    let bytes = sample().dpl_bytes().unwrap();
    let reader = UniversalDplReader::from_bytes(&bytes[..]).unwrap();
    let lib = reader.render_entry(&reader.get("lib").unwrap()[0]).unwrap();
    assert!(
        lib.contains("directory        ../lib-0.2  (editable)"),
        "{lib}"
    );
    let vendored = reader
        .render_entry(&reader.get("vendored").unwrap()[0])
        .unwrap();
    assert!(
        vendored.contains("archive          vendored-1.0.tar.gz"),
        "{vendored}"
    );
    let json = reader.to_json().unwrap();
    let entries = json["entries"].as_array().unwrap();
    let tool = entries.iter().find(|e| e["name"] == "tool").unwrap();
    assert_eq!(tool["directory"]["path"], "../tool-0.3");
    assert_eq!(tool["directory"]["editable"], false);
    assert!(tool["sdist"].is_null());
}
