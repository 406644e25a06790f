//! Properties of the DPL format and of the pylock.toml round trip, over generated locks.
use super::*;

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
                let wheel = LockedWheel {
                    filename: format!("{escaped}-{version}-py3-none-any.whl"),
                    url,
                    path,
                    sha256,
                    size,
                };
                // Half the packages are locked as sdists: the same location, size and
                // sha256, ending in the sdist's name, and a wheel with none of its own.
                let (wheel, sdist) = if seed >> 63 == 1 {
                    let filename = format!("{escaped}-{version}.tar.gz");
                    let under = |dir: String| format!("{dir}/{filename}");
                    let sdist = LockedWheel {
                        url: wheel.url.map(under),
                        path: Some(wheel.path.map_or_else(|| filename.clone(), under)),
                        filename,
                        ..wheel
                    };
                    let built = LockedWheel {
                        url: None,
                        path: None,
                        size: None,
                        ..sdist.clone()
                    };
                    let built = LockedWheel {
                        filename: format!("{escaped}-{version}-py3-none-any.whl"),
                        ..built
                    };
                    (built, Some(sdist))
                } else {
                    (wheel, None)
                };
                // A quarter of each kind is local source: an sdist by path becomes a local
                // archive, a wheel a directory (no location, size or hash of its own).
                let (wheel, sdist, local) = match (sdist, (seed >> 62) & 1 == 1) {
                    (Some(mut sdist), true) => {
                        sdist.url = None;
                        (wheel, Some(sdist), Some(LocalSource::Archive))
                    }
                    (None, true) => {
                        let path = (wheel.path.clone())
                            .filter(|p| !p.is_empty())
                            .unwrap_or_else(|| "lib".into());
                        let built = LockedWheel {
                            url: None,
                            path: None,
                            size: None,
                            sha256: [0; 32],
                            ..wheel
                        };
                        let editable = (seed >> 61) & 1 == 1;
                        (built, None, Some(LocalSource::Directory { path, editable }))
                    }
                    (sdist, false) => (wheel, sdist, None),
                };
                LockedPackage {
                    wheel,
                    sdist,
                    local,
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

    /// The serde writer gives, byte for byte, what the hand-built writer gave.
    #[test]
    fn pylock_writer_matches_the_hand_built_one(lock in arb_lock(16)) {
        prop_assert_eq!(lock.to_pylock_string(), super::pylock_toml::hand_built_pylock(&lock));
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
