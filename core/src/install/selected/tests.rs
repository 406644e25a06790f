//! The selection from a universal DPL against `read_pylock_for` on the same lock as
//! pylock.toml (the oracle), for interpreters of several platforms; the cache; each error.
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::dpl::UniversalLock;
use crate::dpl::v2::tests::{arb_universal_lock, entry, localized};
use crate::install::{PylockSelectError, read_pylock_for};
use crate::python::{InterpreterInfo, Libc, MarkerValues, PythonVersion, SchemePaths};

/// A CPython 3.`minor` interpreter of `platform` (`linux-x86_64`, `linux-aarch64`,
/// `win-amd64`, `macosx-11.0-arm64`), described as the query script would.
fn interpreter(platform: &str, minor: u32) -> Interpreter {
    let (os_name, sys_platform, system, machine, libc) = match platform {
        "linux-x86_64" => (
            "posix",
            "linux",
            "Linux",
            "x86_64",
            Libc::Glibc {
                major: 2,
                minor: 36,
            },
        ),
        "linux-aarch64" => (
            "posix",
            "linux",
            "Linux",
            "aarch64",
            Libc::Glibc {
                major: 2,
                minor: 36,
            },
        ),
        "win-amd64" => ("nt", "win32", "Windows", "AMD64", Libc::None),
        "macosx-11.0-arm64" => ("posix", "darwin", "Darwin", "arm64", Libc::None),
        other => panic!("no such test platform {other}"),
    };
    let info = InterpreterInfo {
        version: PythonVersion {
            major: 3,
            minor,
            patch: 1,
        },
        implementation: "cpython".into(),
        executable: "/x/bin/python".into(),
        base_executable: "/x/bin/python".into(),
        prefix: "/x".into(),
        base_prefix: "/x".into(),
        sysconfig_platform: platform.into(),
        scheme: SchemePaths {
            purelib: "lib/site-packages".into(),
            platlib: "lib/site-packages".into(),
            scripts: "bin".into(),
            include: "include".into(),
            data: ".".into(),
        },
        cache_tag: Some(format!("cpython-3{minor}")),
        libc,
        markers: MarkerValues {
            implementation_name: "cpython".into(),
            implementation_version: format!("3.{minor}.1"),
            os_name: os_name.into(),
            platform_machine: machine.into(),
            platform_python_implementation: "CPython".into(),
            platform_release: String::new(),
            platform_system: system.into(),
            platform_version: String::new(),
            python_full_version: format!("3.{minor}.1"),
            python_version: format!("3.{minor}"),
            sys_platform: sys_platform.into(),
        },
        pointer_bits: 64,
        abiflags: String::new(),
        gil_disabled: false,
        py_debug: false,
        pymalloc: true,
        ext_suffix: None,
        py_version_nodot: Some(format!("3{minor}")),
        pip_index_url: None,
    };
    Interpreter::from_info("/x/bin/python".into(), info).unwrap()
}

const ENVIRONMENTS: [(&str, u32); 7] = [
    ("linux-x86_64", 11),
    ("linux-x86_64", 12),
    ("linux-x86_64", 8),
    ("linux-aarch64", 11),
    ("win-amd64", 11),
    ("win-amd64", 12),
    ("macosx-11.0-arm64", 12),
];

/// Writes `lock` as pylock.toml and as `dx-py.dpl` (v2) into a new directory.
fn both(lock: &UniversalLock) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pylock = dir.path().join("pylock.toml");
    fs_err::write(&pylock, lock.to_pylock_string()).unwrap();
    let dpl = dir.path().join(DPL);
    lock.write_dpl(&dpl).unwrap();
    (dir, pylock, dpl)
}

fn select(dpl: &Path, interp: &Interpreter) -> Result<Lock, SelectionError> {
    let reader = UniversalDplReader::open(dpl).unwrap();
    select_for(&reader, dpl, interp)
}

/// The oracle: `read_pylock_for` chooses the same entries and wheels. Where it keeps a lone
/// wheel that does not fit (the install would then fail), the selection refuses at once.
fn check_consistent(lock: &UniversalLock) -> Result<(), TestCaseError> {
    let (_dir, pylock, dpl) = both(lock);
    for (platform, minor) in ENVIRONMENTS {
        let interp = interpreter(platform, minor);
        let ours = select(&dpl, &interp);
        match read_pylock_for(&pylock, &interp) {
            Ok(oracle) => {
                let misfit = oracle.packages.iter().find(|p| {
                    crate::wheel::WheelFilename::parse(&p.wheel.filename)
                        .ok()
                        .and_then(|w| interp.tag_priority(&w.tags))
                        .is_none()
                });
                match (misfit, ours) {
                    (None, Ok(ours)) => {
                        // Dependency order carries no meaning (the DPL sorts edges).
                        let sorted = |lock: &Lock| {
                            let mut packages = lock.packages.clone();
                            for p in &mut packages {
                                p.dependencies.sort();
                                p.dependencies.dedup();
                            }
                            packages
                        };
                        prop_assert_eq!(sorted(&ours), sorted(&oracle), "{} 3.{}", platform, minor);
                        prop_assert_eq!(&ours.meta.requires_python, &oracle.meta.requires_python);
                        prop_assert_eq!(ours.meta.environment, interp.tag());
                    }
                    (
                        Some(p),
                        Err(
                            SelectionError::NoFittingWheel { package, .. }
                            | SelectionError::SdistOnly { package, .. },
                        ),
                    ) => {
                        prop_assert_eq!(&package, &p.name);
                    }
                    (misfit, ours) => prop_assert!(
                        false,
                        "{platform} 3.{minor}: misfit {misfit:?}, ours {ours:?}"
                    ),
                }
            }
            Err(PylockSelectError::RequiresPython { .. }) => {
                prop_assert!(
                    matches!(ours, Err(SelectionError::RequiresPython { .. })),
                    "{ours:?}"
                );
            }
            // No wheel at all (only an sdist), no wheel that fits, or two overlapping entries.
            Err(e) => prop_assert!(
                ours.is_err(),
                "{platform} 3.{minor}: oracle {e}, ours {ours:?}"
            ),
        }
    }
    Ok(())
}

fn sample() -> UniversalLock {
    UniversalLock {
        requires_python: Some(">=3.9".into()),
        environments: Vec::new(),
        inputs_hash: ContentHash::of(b"sample"),
        packages: vec![
            entry("app", "1.0", None, 1, false, &["numpy", "pywin32"]),
            // cp311/cp312 linux and cp312 windows wheels, for Python 3.12 on
            entry(
                "numpy",
                "2.1.0",
                Some("python_full_version >= '3.12'"),
                0b100_0110,
                true,
                &[],
            ),
            // cp311 linux / aarch64 / windows / mac, for Pythons before 3.12
            entry(
                "numpy",
                "1.26.4",
                Some("python_full_version < '3.12'"),
                0b1011_0010,
                true,
                &[],
            ),
            entry(
                "pywin32",
                "306",
                Some("sys_platform == 'win32'"),
                0b110_0000,
                false,
                &[],
            ),
        ],
    }
}

fn chosen(lock: &Lock) -> Vec<String> {
    lock.packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.wheel.filename))
        .collect()
}

#[test]
fn chooses_entries_by_marker_and_wheels_by_tag() {
    let (_dir, _, dpl) = both(&sample());
    let linux = select(&dpl, &interpreter("linux-x86_64", 11)).unwrap();
    assert_eq!(
        chosen(&linux),
        [
            "app app-1.0-py3-none-any.whl",
            "numpy numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl",
        ]
    );
    assert_eq!(linux.packages[0].dependencies, ["numpy"]);
    let windows = select(&dpl, &interpreter("win-amd64", 12)).unwrap();
    assert_eq!(
        chosen(&windows),
        [
            "app app-1.0-py3-none-any.whl",
            "numpy numpy-2.1.0-cp312-cp312-win_amd64.whl",
            "pywin32 pywin32-306-cp312-cp312-win_amd64.whl",
        ]
    );
    assert_eq!(windows.packages[0].dependencies, ["numpy", "pywin32"]);
    check_consistent(&sample()).unwrap();
}

#[test]
fn errors_name_the_package_and_the_environment() {
    let (_dir, _, dpl) = both(&sample());
    let err = select(&dpl, &interpreter("linux-x86_64", 8)).unwrap_err();
    assert!(
        matches!(err, SelectionError::RequiresPython { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("requires Python >=3.9, but the interpreter is 3.8.1"),
        "{err}"
    );

    // numpy 2.1.0 has no aarch64 wheel, only its sdist.
    let err = select(&dpl, &interpreter("linux-aarch64", 12)).unwrap_err();
    assert!(
        matches!(&err, SelectionError::SdistOnly { package, .. } if package == "numpy"),
        "{err}"
    );
    assert!(err.to_string().contains("cp312-linux_aarch64"), "{err}");

    let mut lock = sample();
    lock.packages[1].sdist = None;
    let (_dir, _, dpl) = both(&lock);
    let err = select(&dpl, &interpreter("linux-aarch64", 12)).unwrap_err();
    assert!(
        matches!(&err, SelectionError::NoFittingWheel { package, count: 3, .. } if package == "numpy"),
        "{err}"
    );

    // Markers that overlap give two versions on Python 3.11.
    let mut lock = sample();
    lock.packages[1].marker = Some("python_full_version >= '3.10'".into());
    let (_dir, _, dpl) = both(&lock);
    let err = select(&dpl, &interpreter("linux-x86_64", 11)).unwrap_err();
    assert!(
        matches!(&err, SelectionError::Overlapping { package, .. } if package == "numpy"),
        "{err}"
    );
}

#[test]
fn the_selection_is_kept_and_read_back() {
    let (dir, _, dpl) = both(&sample());
    let cache = tempfile::tempdir().unwrap();
    let linux = interpreter("linux-x86_64", 11);
    let kept = selected_lock(dir.path(), &linux, cache.path()).unwrap();
    assert!(kept.starts_with(crate::cache::Cache::new(cache.path(), None).selected_dir()));
    let reader = DplReader::open(&kept).unwrap();
    assert_eq!(reader.environment(), linux.tag());
    assert_eq!(reader.len(), 2);
    // Warm: the kept file is returned as it is (an edit made to it survives).
    crate::dpl::Lock::default().write_dpl(&kept).unwrap();
    assert_eq!(
        selected_lock(dir.path(), &linux, cache.path()).unwrap(),
        kept
    );
    assert_eq!(DplReader::open(&kept).unwrap().len(), 0);
    // A damaged kept file is made again.
    fs_err::write(&kept, b"DXDPL\0\r\n").unwrap();
    assert_eq!(
        selected_lock(dir.path(), &linux, cache.path()).unwrap(),
        kept
    );
    assert_eq!(DplReader::open(&kept).unwrap().len(), 2);
    // Another interpreter, another selection; another lock, another one too.
    let windows = selected_lock(dir.path(), &interpreter("win-amd64", 12), cache.path()).unwrap();
    assert_ne!(windows, kept);
    let mut other = sample();
    other.packages.remove(3);
    other.packages[0].dependencies.pop();
    other.write_dpl(&dpl).unwrap();
    assert_ne!(
        selected_lock(dir.path(), &linux, cache.path()).unwrap(),
        kept
    );
    // A version 1 lock is its own selection.
    let v1 = dir.path().join("one.dpl");
    crate::dpl::Lock::default().write_dpl(&v1).unwrap();
    assert_eq!(selected_lock_at(&v1, &linux, cache.path()).unwrap(), v1);
}

#[test]
fn unreadable_locks_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let linux = interpreter("linux-x86_64", 11);
    let err = selected_lock(dir.path(), &linux, cache.path()).unwrap_err();
    assert!(err.to_string().contains("dx-py.dpl"), "{err}");
    let mut bytes = sample().dpl_bytes().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs_err::write(dir.path().join(DPL), &bytes).unwrap();
    let err = selected_lock(dir.path(), &linux, cache.path()).unwrap_err();
    assert!(err.to_string().contains("dx-py.dpl"), "{err}");
    assert!(
        matches!(
            err,
            InstallError::Selection(ref e) if matches!(**e, SelectionError::File(DplFileError::Invalid { .. }))
        ),
        "{err:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn selection_equals_the_pylock_reading(lock in arb_universal_lock(16)) {
        check_consistent(&lock)?;
    }
}

#[test]
fn local_wheels_are_named_from_the_locks_directory() {
    let mut lock = sample();
    lock.packages.truncate(1);
    lock.packages[0].dependencies.clear();
    let wheel = &mut lock.packages[0].wheels[0];
    wheel.url = None;
    wheel.path = Some(format!("wheels/{}", wheel.filename));
    let (dir, _, _) = both(&lock);
    let cache = tempfile::tempdir().unwrap();
    let linux = interpreter("linux-x86_64", 11);
    let kept = selected_lock(dir.path(), &linux, cache.path()).unwrap();
    let reader = DplReader::open(&kept).unwrap();
    let entry = reader.entry(0).unwrap().wheel().to_owned();
    let want = dir.path().join("wheels").join(&entry.filename);
    assert_eq!(entry.path.as_deref(), Some(want.to_str().unwrap()));
    // The same lock bytes elsewhere: another selection, naming its own directory.
    let (other, _, _) = both(&lock);
    assert_ne!(
        selected_lock(other.path(), &linux, cache.path()).unwrap(),
        kept
    );
}

#[test]
fn local_source_is_named_from_the_locks_directory_and_built_trees_key_the_selection() {
    let lock = UniversalLock {
        requires_python: None,
        environments: Vec::new(),
        inputs_hash: ContentHash::of(b"local"),
        packages: vec![
            localized(entry("lib", "0.2", None, 0, false, &[]), 1),
            localized(entry("elib", "0.3", None, 0, false, &["lib"]), 2),
            localized(entry("vendored", "1.0", None, 0, false, &[]), 3),
        ],
    };
    let (dir, _, _) = both(&lock);
    let root = dir.path().join("sub");
    fs_err::create_dir_all(&root).unwrap();
    // The lock lies in `sub`: its directories are `../lib-0.2` and `../elib-0.3`.
    fs_err::rename(dir.path().join(DPL), root.join(DPL)).unwrap();
    fs_err::create_dir_all(dir.path().join("lib-0.2")).unwrap();
    fs_err::write(dir.path().join("lib-0.2/setup.py"), "").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let linux = interpreter("linux-x86_64", 11);
    let kept = selected_lock(&root, &linux, cache.path()).unwrap();
    let reader = DplReader::open(&kept).unwrap();
    let local = |name: &str| {
        let e = (0..reader.len())
            .map(|i| reader.entry(i).unwrap())
            .find(|e| e.name() == name)
            .unwrap();
        (e.local(), e.sdist().and_then(|s| s.path.map(str::to_owned)))
    };
    let at = |rel: &str| root.join(rel).to_string_lossy().into_owned();
    assert_eq!(
        local("lib"),
        (
            Some(LocalSource::Directory {
                path: at("../lib-0.2"),
                editable: false
            }),
            None
        )
    );
    assert_eq!(
        local("elib").0,
        Some(LocalSource::Directory {
            path: at("../elib-0.3"),
            editable: true
        })
    );
    assert_eq!(
        local("vendored"),
        (
            Some(LocalSource::Archive),
            Some(at("dist/vendored-1.0.tar.gz"))
        )
    );
    // Unchanged: the same selection. A file of the tree installed built changed: another one
    // (into which an install records the new build).
    assert_eq!(selected_lock(&root, &linux, cache.path()).unwrap(), kept);
    fs_err::write(dir.path().join("lib-0.2/setup.py"), "# changed").unwrap();
    assert_ne!(selected_lock(&root, &linux, cache.path()).unwrap(), kept);
}
