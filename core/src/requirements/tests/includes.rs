//! Included, constraints and overrides files, each relative to the file that names it.
use super::*;

#[test]
fn includes_are_relative_and_cycle_safe() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs_err::create_dir(&sub).unwrap();
    fs_err::write(
        dir.path().join("top.txt"),
        "-r sub/a.txt\ntop==1\n--find-links wheels\n",
    )
    .unwrap();
    // a includes b (relative to sub/), b includes a and top again: cycles end quietly.
    fs_err::write(sub.join("a.txt"), "a==1\n-r b.txt\n").unwrap();
    fs_err::write(
        sub.join("b.txt"),
        "-r a.txt\n-r ../top.txt\nb==2 \\\n  ; os_name == 'nt'\n",
    )
    .unwrap();
    let r = Requirements::from_file(&dir.path().join("top.txt")).unwrap();
    let names: Vec<_> = r
        .entries
        .iter()
        .map(|e| e.normalized_name().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "top"]);
    assert_eq!(r.entries[1].location.path, sub.join("b.txt"));
    assert_eq!(r.entries[1].location.line, 3);
    assert_eq!(
        r.find_links,
        [dir.path().join("wheels").to_string_lossy().into_owned()]
    );
    // Errors in an included file name that file.
    fs_err::write(sub.join("b.txt"), "\nb>=\n").unwrap();
    let e = Requirements::from_file(&dir.path().join("top.txt")).unwrap_err();
    assert!(
        matches!(&e, RequirementsError::Invalid { at, .. } if at.path == sub.join("b.txt") && at.line == 2),
        "{e}"
    );
}

#[test]
fn constraints_files_are_relative_to_the_including_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs_err::create_dir(&sub).unwrap();
    fs_err::write(
        dir.path().join("reqs.txt"),
        "-c sub/c.txt\nfoo\n-r sub/more.txt\n",
    )
    .unwrap();
    // Constraints may include more constraints with `-r`; a requirements file included from a
    // requirements file may add constraints of its own.
    fs_err::write(
        sub.join("c.txt"),
        "foo<2\n-r c2.txt\n-i https://c.invalid/simple\n",
    )
    .unwrap();
    fs_err::write(sub.join("c2.txt"), "bar[x]==1.5 ; os_name == 'nt'\n").unwrap();
    fs_err::write(sub.join("more.txt"), "baz\n--constraint=c3.txt\n").unwrap();
    fs_err::write(sub.join("c3.txt"), "baz!=3\n").unwrap();
    let r = Requirements::from_file(&dir.path().join("reqs.txt")).unwrap();
    let names = |list: &[RequirementEntry]| -> Vec<String> {
        list.iter().map(|e| e.normalized_name().unwrap()).collect()
    };
    assert_eq!(names(&r.entries), ["foo", "baz"]);
    assert_eq!(names(&r.constraints), ["foo", "bar", "baz"]);
    assert_eq!(r.constraints[1].location.path, sub.join("c2.txt"));
    assert_eq!(r.index_url.as_deref(), Some("https://c.invalid/simple"));
    let c = r.constraints_to_pep508().unwrap();
    assert_eq!(c[0].to_string(), "foo<2");
    // Constraints keep a pinned file off the fast path: only resolution applies them.
    fs_err::write(dir.path().join("pinned.txt"), "foo==1\n-c sub/c.txt\n").unwrap();
    let r = Requirements::from_file(&dir.path().join("pinned.txt")).unwrap();
    let e = r.pinned().unwrap_err();
    assert!(e.to_string().contains("is a constraint"), "{e}");
    // A constraint must name a package.
    fs_err::write(sub.join("bad.txt"), "\n./project\n").unwrap();
    let e = Requirements::parse_str("-c sub/bad.txt\n", &dir.path().join("r.txt")).unwrap_err();
    assert!(
        matches!(&e, RequirementsError::NotAllowedHere { at, kind: "a constraints file", .. } if at.line == 2),
        "{e}"
    );
    fs_err::write(sub.join("bad.txt"), "-e .\n").unwrap();
    assert!(matches!(
        Requirements::parse_str("-c sub/bad.txt\n", &dir.path().join("r.txt")),
        Err(RequirementsError::NotAllowedHere { .. })
    ));
    // Given on its own.
    let r = Requirements::from_constraints_file(&sub.join("c.txt")).unwrap();
    assert!(r.entries.is_empty());
    assert_eq!(names(&r.constraints), ["foo", "bar"]);
}

#[test]
fn overrides_files() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("more.txt"), "bar>=3\n").unwrap();
    let o = Overrides::parse_str(
        "foo<2 ; python_version < '3.12'\nfoo>=2 ; python_version >= '3.12'\n-r more.txt\n",
        &dir.path().join("o.txt"),
    )
    .unwrap();
    assert_eq!(o.entries.len(), 3);
    let overrides = o.to_requirements().unwrap();
    // Every requirement on `foo` is replaced by both overrides; the extra it was under is kept.
    let original: pep508_rs::Requirement = "Foo>=5 ; extra == 'cli'".parse().unwrap();
    let applied = apply_overrides(&original, &overrides);
    assert_eq!(applied.len(), 2);
    for a in &applied {
        let marker = a.marker.try_to_string().unwrap();
        assert!(marker.contains("extra == 'cli'"), "{marker}");
        assert!(marker.contains("python_full_version"), "{marker}");
        assert!(!a.to_string().contains(">=5"), "{a}");
    }
    let untouched: pep508_rs::Requirement = "baz>=1".parse().unwrap();
    assert_eq!(
        apply_overrides(&untouched, &overrides),
        std::slice::from_ref(&untouched)
    );
    // Options and source to build are not overrides.
    for (text, want) in [
        (
            "-i https://h.invalid/simple\n",
            "holds requirements and `-r` includes only",
        ),
        ("-c c.txt\n", "holds requirements and `-r` includes only"),
        ("./project\n", "not source to build"),
    ] {
        let e = Overrides::parse_str(text, &dir.path().join("o.txt")).unwrap_err();
        assert!(e.to_string().contains(want), "{text}: {e}");
        assert!(e.to_string().contains("an overrides file"), "{e}");
    }
    let o = Overrides::from_file(&dir.path().join("more.txt")).unwrap();
    assert_eq!(o.entries[0].specifiers.to_string(), ">=3");
}

#[test]
fn paths_are_absolute_even_for_a_relative_file() {
    let r = Requirements::parse_str("./x-1.0-py3-none-any.whl\n", Path::new("r.txt")).unwrap();
    let RequirementSource::Wheel(w) = &r.entries[0].source else {
        panic!("{:?}", r.entries[0].source)
    };
    let path: &PathBuf = w.path.as_ref().unwrap();
    assert!(path.is_absolute(), "{}", path.display());
    assert!(path.ends_with("x-1.0-py3-none-any.whl"));
}
