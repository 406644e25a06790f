//! Universal scenarios on an in-memory index (the table format of `resolve::tests`).
use std::str::FromStr;

use pep508_rs::{MarkerTree, Requirement};

use super::super::tests::source;
use super::*;

/// Resolves `requires` on `index` for `scope`, rendered one `name==version ; marker` per line.
fn universal(index: &str, requires: &[&str], scope: &str) -> String {
    relock(index, requires, scope, "", Upgrade::None)
}

/// [`universal`] with the lock it replaces (in the same rendering) and an upgrade.
fn relock(index: &str, requires: &[&str], scope: &str, existing: &str, upgrade: Upgrade) -> String {
    let manifest = Manifest {
        requirements: requires
            .iter()
            .map(|r| Requirement::from_str(r).unwrap())
            .collect(),
        upgrade,
        ..Manifest::default()
    };
    let existing: Vec<LockedVersion> = existing
        .lines()
        .map(|line| {
            let (pin, marker) = line.split_once(" ; ").unwrap_or((line, ""));
            let (name, version) = pin.split_once("==").unwrap();
            LockedVersion::parse(name, version, Some(marker).filter(|m| !m.is_empty())).unwrap()
        })
        .collect();
    let scope = MarkerTree::from_str(scope).unwrap();
    let options = ResolveOptions {
        prefetch_threads: 0,
        ..ResolveOptions::default()
    };
    match resolve_universal(&manifest, &scope, &existing, &options, &source(index)) {
        Ok(r) => r
            .packages
            .iter()
            .map(|p| match p.marker.try_to_string() {
                Some(m) => format!("{}=={} ; {m}", p.name, p.version),
                None => format!("{}=={}", p.name, p.version),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("error: {e}"),
    }
}

const PY38: &str = "python_full_version >= '3.8'";

#[test]
fn requirements_that_differ_by_python_fork() {
    let index = "
        a 1.0 -> b<2; python_version < '3.10' | b>=2; python_version >= '3.10'
        b 1.0
        b 2.0
    ";
    assert_eq!(
        universal(index, &["a"], PY38),
        "a==1.0\n\
         b==1.0 ; python_full_version < '3.10'\n\
         b==2.0 ; python_full_version >= '3.10'"
    );
}

#[test]
fn a_dependency_of_one_platform_carries_its_marker() {
    let index = "
        a 1.0 -> pywin32; sys_platform == 'win32' | idna
        pywin32 306 !tag=cp311-cp311-win_amd64
        idna 3.7
    ";
    assert_eq!(
        universal(index, &["a"], PY38),
        "a==1.0\nidna==3.7\npywin32==306 ; sys_platform == 'win32'"
    );
}

#[test]
fn markers_propagate_through_the_graph_and_extras() {
    let index = "
        a 1.0 -> c; extra == 'x' | d; extra == 'x' and python_version < '3.12'
        c 1.0 -> e
        d 1.0
        e 1.0
    ";
    assert_eq!(
        universal(index, &["a[x]; sys_platform == 'linux'"], PY38),
        "a==1.0 ; sys_platform == 'linux'\n\
         c==1.0 ; sys_platform == 'linux'\n\
         d==1.0 ; python_full_version < '3.12' and sys_platform == 'linux'\n\
         e==1.0 ; sys_platform == 'linux'"
    );
}

#[test]
fn forks_that_cannot_share_a_version_get_one_each() {
    let index = "
        a 1.0
        a 2.0
    ";
    assert_eq!(
        universal(
            index,
            &[
                "a>=2; sys_platform == 'linux'",
                "a<2; sys_platform == 'win32'"
            ],
            PY38
        ),
        "a==1.0 ; sys_platform == 'win32'\na==2.0 ; sys_platform == 'linux'"
    );
}

#[test]
fn forks_share_what_they_can() {
    let index = "
        x 1.0 -> c
        x 2.0 -> c
        c 1.0
        c 2.0
    ";
    assert_eq!(
        universal(
            index,
            &[
                "x<2; python_version < '3.10'",
                "x>=2; python_version >= '3.10'"
            ],
            PY38
        ),
        "c==2.0\n\
         x==1.0 ; python_full_version < '3.10'\n\
         x==2.0 ; python_full_version >= '3.10'"
    );
}

#[test]
fn a_failing_fork_is_named() {
    let index = "
        a 1.0
        a 2.0
    ";
    let out = universal(
        index,
        &[
            "a>=3; sys_platform == 'win32'",
            "a; sys_platform != 'win32'",
        ],
        PY38,
    );
    assert!(
        out.starts_with("error: For environments where `sys_platform == 'win32'`: No solution"),
        "{out}"
    );
}

#[test]
fn a_newest_version_that_drops_old_pythons_forks_by_python() {
    // The index's Requires-Python (b) and the metadata's (c): newer Pythons get the newest,
    // the older ones keep what still supports them.
    let index = "
        b 1.0
        b 2.0 !index-python=>=3.10
        c 1.0
        c 2.0 !python=>=3.10
    ";
    assert_eq!(
        universal(index, &["b", "c"], PY38),
        "b==1.0 ; python_full_version < '3.10'\n\
         b==2.0 ; python_full_version >= '3.10'\n\
         c==1.0 ; python_full_version < '3.10'\n\
         c==2.0 ; python_full_version >= '3.10'"
    );
    assert_eq!(
        universal(index, &["b", "c"], "python_full_version >= '3.10'"),
        "b==2.0\nc==2.0"
    );
}

#[test]
fn a_version_that_no_python_of_the_scope_can_use_is_skipped() {
    let index = "
        b 1.0
        b 2.0 !index-python=<3.0
    ";
    assert_eq!(universal(index, &["b"], PY38), "b==1.0");
}

#[test]
fn a_requirement_outside_the_scope_is_dropped() {
    let index = "
        a 1.0 -> old; python_version < '3.8'
        old 1.0
    ";
    assert_eq!(universal(index, &["a"], PY38), "a==1.0");
}

/// The files a universal resolution lists for `a` on `index` under `options`, or the error.
fn files_of_a(index: &str, options: &ResolveOptions) -> Result<Vec<String>, String> {
    let manifest = Manifest {
        requirements: vec![Requirement::from_str("a").unwrap()],
        ..Manifest::default()
    };
    let scope = MarkerTree::from_str(PY38).unwrap();
    let r = resolve_universal(&manifest, &scope, &[], options, &source(index))
        .map_err(|e| e.to_string())?;
    Ok(r.packages[0]
        .files
        .iter()
        .map(|f| f.filename.clone())
        .collect())
}

#[test]
fn every_file_of_the_version_is_listed() {
    let files = files_of_a("a 1.0 !sdist+", &ResolveOptions::default()).unwrap();
    assert_eq!(files, ["a-1.0-py3-none-any.whl", "a-1.0.tar.gz"]);
}

/// `--only-binary` leaves the sdists out of the lock, `--no-binary` the wheels (the version is
/// then built at install time, so only with builds allowed); a version with nothing left is
/// not chosen.
#[test]
fn binary_flags_decide_the_files_a_universal_lock_lists() {
    let with = |no: &[&str], only: &[&str], build_sdists| ResolveOptions {
        binary: crate::resolve::BinaryPolicy::new(
            &no.iter().map(ToString::to_string).collect::<Vec<_>>(),
            &only.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
        .unwrap(),
        build_sdists,
        ..ResolveOptions::default()
    };
    let index = "a 1.0 !sdist+";
    assert_eq!(
        files_of_a(index, &with(&[], &["a"], false)).unwrap(),
        ["a-1.0-py3-none-any.whl"]
    );
    assert_eq!(
        files_of_a(index, &with(&[":all:"], &[], true)).unwrap(),
        ["a-1.0.tar.gz"]
    );
    // Another package named: `a` keeps both.
    assert_eq!(
        files_of_a(index, &with(&["b"], &["c"], false))
            .unwrap()
            .len(),
        2
    );
    // Without builds, `--no-binary a` leaves no file to install `a` from.
    assert!(files_of_a(index, &with(&["a"], &[], false)).is_err());
    // With builds allowed the newest version is locked even when it has only an sdist (as pip
    // and uv choose); without, an older version with a wheel wins. `--only-binary` refuses an
    // sdist-only version.
    let index = "a 1.0\na 2.0 !sdist";
    assert_eq!(
        files_of_a(index, &with(&[], &[], true)).unwrap(),
        ["a-2.0.tar.gz"]
    );
    assert_eq!(
        files_of_a(index, &with(&[], &[], false)).unwrap(),
        ["a-1.0-py3-none-any.whl"]
    );
    assert_eq!(
        files_of_a(index, &with(&[], &["a"], true)).unwrap(),
        ["a-1.0-py3-none-any.whl"]
    );
    assert_eq!(
        files_of_a("a 2.0 !sdist", &with(&[], &[], true)).unwrap(),
        ["a-2.0.tar.gz"]
    );
    assert!(files_of_a("a 2.0 !sdist", &with(&[], &["a"], true)).is_err());
}

#[test]
fn a_relock_keeps_each_forks_versions_and_upgrades_one_package_in_every_fork() {
    // Locked when b had 1.0 and 2.0 and c had 1.0; everything has a newer version since.
    let index = "
        a 1.0 -> b<2; python_version < '3.10' | b>=2; python_version >= '3.10'
        b 1.0
        b 1.1
        b 2.0
        b 2.1
        c 1.0
        c 1.1
        d 1.0
    ";
    let locked = "a==1.0\n\
                  b==1.0 ; python_full_version < '3.10'\n\
                  b==2.0 ; python_full_version >= '3.10'\n\
                  c==1.0";
    let keep = |requires: &[&str], upgrade| relock(index, requires, PY38, locked, upgrade);
    assert_eq!(keep(&["a", "c"], Upgrade::None), locked);
    // An unrelated new dependency moves nothing else.
    assert_eq!(
        keep(&["a", "c", "d"], Upgrade::None),
        format!("{locked}\nd==1.0")
    );
    // `-P b` frees b on both sides of the fork, and only b.
    let b = Upgrade::Packages([PackageName::from_str("b").unwrap()].into());
    assert_eq!(
        keep(&["a", "c"], b),
        "a==1.0\n\
         b==1.1 ; python_full_version < '3.10'\n\
         b==2.1 ; python_full_version >= '3.10'\n\
         c==1.0"
    );
    assert_eq!(
        keep(&["a", "c"], Upgrade::All),
        "a==1.0\n\
         b==1.1 ; python_full_version < '3.10'\n\
         b==2.1 ; python_full_version >= '3.10'\n\
         c==1.1"
    );
}

#[test]
fn a_relock_keeps_the_older_version_of_a_python_fork() {
    // b 2.0 dropped Python < 3.10 and b 3.0 came out since the lock: each side keeps its own.
    let index = "
        b 1.0
        b 2.0 !index-python=>=3.10
        b 3.0 !index-python=>=3.10
    ";
    let locked = "b==1.0 ; python_full_version < '3.10'\n\
                  b==2.0 ; python_full_version >= '3.10'";
    assert_eq!(relock(index, &["b"], PY38, locked, Upgrade::None), locked);
    assert_eq!(
        relock(index, &["b"], PY38, "", Upgrade::None),
        "b==1.0 ; python_full_version < '3.10'\n\
         b==3.0 ; python_full_version >= '3.10'"
    );
}

#[test]
fn a_dependency_of_one_implementation_carries_its_marker() {
    let index = "
        a 1.0 -> cffi; platform_python_implementation != 'PyPy' | speedups; implementation_name == 'cpython'
        cffi 1.17
        speedups 2.0
    ";
    assert_eq!(
        universal(index, &["a"], PY38),
        "a==1.0\n\
         cffi==1.17 ; platform_python_implementation != 'PyPy'\n\
         speedups==2.0 ; implementation_name == 'cpython'"
    );
}

#[test]
fn an_extra_asked_for_on_one_platform_only() {
    // `a[gui]` on macOS only: the extra's dependencies are macOS's, `a` is everyone's.
    let index = "
        a 1.0 -> guikit; extra == 'gui' | core
        guikit 1.0
        core 1.0
    ";
    assert_eq!(
        universal(index, &["a", "a[gui]; sys_platform == 'darwin'"], PY38),
        "a==1.0\ncore==1.0\nguikit==1.0 ; sys_platform == 'darwin'"
    );
}

#[test]
fn forks_whose_requirements_conflict_where_they_overlap_are_an_error() {
    // Linux wants a 1.x, Python 3.12 wants a 2.x: Linux on 3.12 has no answer, and the error
    // says which environments.
    let index = "
        a 1.0
        a 2.0
    ";
    let out = universal(
        index,
        &[
            "a<2; sys_platform == 'linux'",
            "a>=2; python_version >= '3.12'",
        ],
        PY38,
    );
    assert!(out.starts_with("error: For environments where `"), "{out}");
    assert!(
        out.contains("sys_platform == 'linux'") && out.contains("3.12"),
        "{out}"
    );
    assert!(out.contains("No solution"), "{out}");
}
