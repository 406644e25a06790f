//! Local source entries (`LocalSource`): PEP 751 `directory` and `archive` in pylock.toml, flags
//! `F_DIRECTORY`, `F_EDITABLE` and `F_ARCHIVE` in a DPL.
use super::*;

/// The sample with `idna` as an editable directory and `certifi` as a local archive.
fn with_local() -> Lock {
    let mut lock = sample();
    for p in &mut lock.packages {
        match p.name.as_str() {
            "idna" => {
                p.wheel = LockedWheel {
                    sha256: [0; 32],
                    size: None,
                    url: None,
                    path: None,
                    ..p.wheel.clone()
                };
                p.local = Some(LocalSource::Directory {
                    path: "../libs/idna".into(),
                    editable: true,
                });
            }
            "certifi" => {
                p.sdist = Some(LockedWheel {
                    filename: "certifi-2024.2.2.tar.gz".into(),
                    url: None,
                    path: Some("dist/certifi-2024.2.2.tar.gz".into()),
                    sha256: [5; 32],
                    size: Some(300),
                });
                p.wheel = LockedWheel {
                    sha256: [5; 32],
                    size: None,
                    url: None,
                    path: None,
                    ..p.wheel.clone()
                };
                p.local = Some(LocalSource::Archive);
            }
            _ => {}
        }
    }
    lock
}

#[test]
fn local_entries_read_back_from_a_dpl_and_a_pylock() {
    let lock = with_local();
    let bytes = build(&lock);
    let r = DplReader::from_bytes(&bytes[..]).unwrap();
    r.verify().unwrap();
    let idna = r.get("idna").unwrap().unwrap();
    assert_eq!(
        idna.local(),
        Some(LocalSource::Directory {
            path: "../libs/idna".into(),
            editable: true
        })
    );
    assert_eq!(
        idna.wheel().path,
        None,
        "the directory is not the wheel's path"
    );
    assert_eq!(
        r.get("certifi").unwrap().unwrap().local(),
        Some(LocalSource::Archive)
    );
    assert_eq!(r.to_lock().unwrap(), canonical(&lock));

    let text = lock.to_pylock_string();
    assert!(
        text.contains("directory = { path = \"../libs/idna\", editable = true }"),
        "{text}"
    );
    assert!(
        text.contains("archive = { name = \"certifi-2024.2.2.tar.gz\", path = \"dist/certifi-2024.2.2.tar.gz\""),
        "{text}"
    );
    assert!(!text.contains("sdist ="), "{text}");
    assert_eq!(
        canonical(&Lock::from_pylock_str(&text).unwrap()),
        canonical(&lock)
    );
}

#[test]
fn a_non_editable_directory_keeps_its_flag() {
    let mut lock = with_local();
    let p = lock.packages.iter_mut().find(|p| p.name == "idna").unwrap();
    p.local = Some(LocalSource::Directory {
        path: "lib".into(),
        editable: false,
    });
    let bytes = build(&lock);
    let r = DplReader::from_bytes(&bytes[..]).unwrap();
    assert_eq!(r.to_lock().unwrap(), canonical(&lock));
    let text = lock.to_pylock_string();
    assert!(text.contains("editable = false"), "{text}");
}

/// What another tool writes: a directory entry without our table, an archive by path.
#[test]
fn other_tools_directory_and_archive_entries_are_read() {
    let text = "lock-version = '1.0'\n\
        [[packages]]\nname = 'lib'\nversion = '0.1'\n\
        directory = { path = 'lib', editable = true }\n\
        [[packages]]\nname = 'arc'\nversion = '2.0'\n\
        archive = { path = 'dist/arc-2.0.tar.gz', hashes = { sha256 = '"
        .to_owned()
        + &"ab".repeat(32)
        + "' } }\n";
    let lock = Lock::from_pylock_str(&text).unwrap();
    let lib = lock.get("lib").unwrap();
    assert_eq!(lib.directory(), Some(("lib", true)));
    assert_eq!(lib.wheel.filename, "lib-0.1-py3-none-any.whl");
    let arc = lock.get("arc").unwrap();
    assert_eq!(arc.local, Some(LocalSource::Archive));
    assert_eq!(arc.sdist.as_ref().unwrap().filename, "arc-2.0.tar.gz");
    build(&lock);

    let remote = "lock-version = '1.0'\n[[packages]]\nname = 'arc'\nversion = '2.0'\n\
        archive = { url = 'http://127.0.0.1:1/arc-2.0.tar.gz', hashes = { sha256 = '"
        .to_owned()
        + &"ab".repeat(32)
        + "' } }\n";
    let e = Lock::from_pylock_str(&remote).unwrap_err();
    assert!(e.to_string().contains("archive named by URL"), "{e}");
    let nothing = "lock-version = '1.0'\n[[packages]]\nname = 'x'\nversion = '1'\n\
        directory = { editable = true }\n";
    let e = Lock::from_pylock_str(nothing).unwrap_err();
    assert!(e.to_string().contains("path"), "{e}");
}

#[test]
fn builder_refuses_bad_local_entries() {
    let with = |f: &dyn Fn(&mut LockedPackage)| {
        let mut lock = with_local();
        for p in &mut lock.packages {
            f(p);
        }
        match DplBuilder::from_lock(&lock).to_bytes().unwrap_err() {
            DplBuildError::InvalidLocal { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    };
    let idna = |f: fn(&mut LockedPackage)| {
        move |p: &mut LockedPackage| {
            if p.name == "idna" {
                f(p);
            }
        }
    };
    assert_eq!(
        with(&idna(|p| p.wheel.sha256 = [1; 32])),
        "the wheel built from a directory has a URL, path, size or sha256 of its own"
    );
    assert_eq!(
        with(&idna(|p| p.local = Some(LocalSource::Directory {
            path: String::new(),
            editable: false
        }))),
        "its directory path is empty"
    );
    assert_eq!(
        with(&idna(|p| p.local = Some(LocalSource::Archive))),
        "an archive entry needs a local sdist named by path"
    );
}

#[test]
fn forged_local_flags_are_refused() {
    let lock = with_local();
    let b = build(&lock);
    let entries = u64_at(&b, H_ENTRIES_OFF).unwrap() as usize;
    let r = DplReader::from_bytes(&b[..]).unwrap();
    let at =
        |name: &str| entries + r.get(name).unwrap().unwrap().index() as usize * ENTRY_LEN + E_FLAGS;
    let forged = |rec: usize, f: &dyn Fn(u32) -> u32| {
        let mut b = b.clone();
        let flags = u32_at(&b, rec).unwrap();
        put_u32(&mut b, rec, f(flags));
        reseal(&mut b);
        let r = DplReader::from_bytes(&b[..]).unwrap();
        let i = (rec - entries) / ENTRY_LEN;
        match r.entry(i).unwrap_err() {
            DplError::BadEntry { what, .. } => what,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        forged(at("idna"), &|f| f | F_SDIST),
        "a directory entry names an sdist"
    );
    assert_eq!(
        forged(at("requests"), &|f| f | F_EDITABLE),
        "an editable entry is not a directory"
    );
    assert_eq!(
        forged(at("requests"), &|f| f | F_ARCHIVE),
        "an archive entry needs an sdist named by path"
    );
    assert_eq!(
        forged(at("requests"), &|f| f | F_DIRECTORY),
        "a directory entry needs a path and no URL or size"
    );
}
