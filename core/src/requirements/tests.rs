//! Requirements files: parsing, the pinned view, the inputs hash and writing back.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use pep508_rs::VersionOrUrl;
use proptest::prelude::*;

use super::*;
use crate::names::normalize_name;

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123";

fn parse(text: &str) -> Result<Requirements, RequirementsError> {
    Requirements::parse_str(text, Path::new("/nonexistent/requirements.txt"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn pins(text: &str) -> Vec<PinnedRequirement> {
    parse(text).unwrap().pinned().unwrap()
}

fn hex(h: [u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn plain_pins_extras_markers_and_comments() {
    let r = pins(
        "\u{feff}# a comment\n\
         \n\
         Foo_Bar==1.0.0   # trailing comment\n\
         requests[socks,Security]==2.31.0 ; python_version < \"3.12\"\n\
         six===1.16.0\n\
         zope.interface==6.0+local.1\n",
    );
    assert_eq!(r.len(), 4);
    let e = &r[0];
    assert_eq!(
        (e.name.as_str(), e.normalized.as_str(), e.version.as_str()),
        ("Foo_Bar", "foo-bar", "1.0.0")
    );
    assert_eq!(e.line, 3);
    assert_eq!(e.marker, None);
    let e = &r[1];
    assert_eq!(e.extras, ["security", "socks"]);
    assert_eq!(e.marker_string().unwrap(), "python_full_version < '3.12'");
    assert_eq!(e.line, 4);
    assert_eq!(r[2].version, "1.16.0");
    assert_eq!(r[3].normalized, "zope-interface");
    assert_eq!(r[3].version, "6.0+local.1");
}

#[test]
fn hashes_on_continuation_lines() {
    let text = format!(
        "foo==1.0 \\\n    --hash=sha256:{H1} \\\n    --hash sha256:{} # why\nbar>=2.0 --hash=sha256:{H1}\n",
        H2.to_uppercase()
    );
    let r = parse(&text).unwrap();
    assert_eq!(r.entries[0].hashes, [H1, H2]);
    assert_eq!(r.entries[0].location.line, 1);
    // A hash on a range: the file chosen must have it.
    assert_eq!(r.entries[1].hashes, [H1]);
    assert_eq!(r.entries[1].location.line, 4);
    assert!(r.require_hashes);
}

#[test]
fn global_options() {
    let r = parse(
        "--index-url https://index.invalid/simple\n\
         -i=https://second.invalid/simple\n\
         --extra-index-url=https://extra.invalid/simple\n\
         --extra-index-url https://extra.invalid/simple\n\
         -f wheels\n\
         --find-links /abs/dir\n\
         --find-links=file:///x/y\n\
         --no-index\n\
         --only-binary :all:\n\
         --only-binary=Foo_Bar,baz\n\
         --trusted-host h.invalid\n\
         foo==1\n",
    )
    .unwrap();
    assert_eq!(
        r.index_url.as_deref(),
        Some("https://second.invalid/simple")
    );
    assert_eq!(r.extra_index_urls, ["https://extra.invalid/simple"]);
    assert_eq!(
        r.find_links,
        ["/nonexistent/wheels", "/abs/dir", "file:///x/y"]
    );
    assert!(r.no_index);
    assert_eq!(r.only_binary, [":all:", "foo-bar", "baz"]);
    assert!(!r.pre && !r.prefer_binary);
    let r = parse("--pre\n--prefer-binary\nfoo\n").unwrap();
    assert!(r.pre && r.prefer_binary);
}

#[test]
fn env_vars_expand_in_lines() {
    // Cargo sets this variable for test runs.
    let r = parse("-i https://u:${CARGO_PKG_NAME}@h.invalid/${lower}\nfoo==1\n").unwrap();
    assert_eq!(
        r.index_url.as_deref(),
        Some("https://u:dx-py-core@h.invalid/${lower}")
    );
}

#[test]
fn ranges_and_bare_names_parse_and_leave_the_pinned_path() {
    for (text, line) in [
        ("foo>=1.0", 1),
        ("\nfoo", 2),
        ("foo==1.*", 1),
        ("foo==1.0,<2", 1),
        ("foo~=1.0", 1),
        ("foo!=1.0", 1),
        ("bar==1\nfoo[x] >= 1 ; os_name == 'nt'", 2),
    ] {
        let r = parse(text).unwrap();
        let e = r.pinned().unwrap_err();
        assert_eq!(e.at.line, line, "{text}");
        assert_eq!(e.name.as_deref(), Some("foo"));
        assert!(
            e.to_string().contains("is not pinned to one version"),
            "{e}"
        );
    }
    assert_eq!(
        parse("foo>=1.0").unwrap().pinned().unwrap_err().to_string(),
        "Requirement `foo>=1.0` at `/nonexistent/requirements.txt:1` is not pinned to one version \
         with `==`"
    );
    let r = parse("Foo[B,a] >=1.0, <2 ; python_version >= '3.9'\n").unwrap();
    let e = &r.entries[0];
    assert_eq!(e.name.as_deref(), Some("Foo"));
    assert_eq!(e.extras, ["a", "b"]);
    assert_eq!(e.specifiers.to_string(), ">=1.0, <2");
    assert_eq!(e.source, RequirementSource::Index);
    let req = r.to_pep508().unwrap();
    assert_eq!(
        req[0].to_string(),
        "foo[a,b]>=1.0,<2 ; python_full_version >= '3.9'"
    );
}

#[test]
fn wheel_files_by_path_and_url() {
    let r = parse(
        "./dist/Foo_Bar-1.0-py3-none-any.whl\n\
         /abs/baz-2.0rc1-1-py3-none-any.whl[x] ; os_name == 'nt'\n\
         qux @ file:///abs/wheels/qux-3.0-py3-none-any.whl\n\
         Remote[y] @ https://files.invalid/a/remote-4.0-py3-none-any.whl#sha256=00 ; sys_platform == 'linux'\n\
         spaced @ file:///abs/my%20dir/spaced-1.0-py3-none-any.whl\n",
    )
    .unwrap();
    let wheel = |i: usize| match &r.entries[i].source {
        RequirementSource::Wheel(w) => w.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(r.entries[0].name.as_deref(), Some("Foo_Bar"));
    assert_eq!(
        wheel(0).path.as_deref(),
        Some(Path::new("/nonexistent/dist/Foo_Bar-1.0-py3-none-any.whl"))
    );
    assert_eq!(wheel(0).version.to_string(), "1.0");
    assert_eq!(r.entries[1].name.as_deref(), Some("baz"));
    assert_eq!(r.entries[1].extras, ["x"]);
    assert!(r.entries[1].marker.is_some());
    assert_eq!(wheel(1).version.to_string(), "2.0rc1");
    assert_eq!(
        wheel(2).path.as_deref(),
        Some(Path::new("/abs/wheels/qux-3.0-py3-none-any.whl"))
    );
    assert_eq!(wheel(3).path, None);
    assert_eq!(
        wheel(3).url.as_str(),
        "https://files.invalid/a/remote-4.0-py3-none-any.whl#sha256=00"
    );
    assert_eq!(
        wheel(4).path.as_deref(),
        Some(Path::new("/abs/my dir/spaced-1.0-py3-none-any.whl"))
    );
    // The resolver gets `name @ URL`.
    let reqs = r.to_pep508().unwrap();
    match &reqs[2].version_or_url {
        Some(VersionOrUrl::Url(url)) => {
            assert_eq!(url.as_str(), "file:///abs/wheels/qux-3.0-py3-none-any.whl")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reqs[0].name.as_ref(), "foo-bar");
    // Not a pinned file: wheels are read by resolution.
    let e = r.pinned().unwrap_err();
    assert!(e.to_string().contains("names a wheel file"), "{e}");
    // A name that the file contradicts, and a URL that names no distribution file.
    let msg = err("foo @ file:///abs/bar-1.0-py3-none-any.whl");
    assert!(
        msg.contains("the name `foo` does not match the wheel's `bar`"),
        "{msg}"
    );
    let msg = err("foo @ https://h.invalid/simple/foo/");
    assert!(msg.contains("a URL must name a wheel"), "{msg}");
    assert!(err("./bad.whl").contains("Invalid wheel file name"));
}

#[test]
fn local_projects_parse_and_resolution_refuses_them() {
    let freeze = "# Editable install with no version control (foo==0.1)\n\
                  -e /home/u/foo\n\
                  ./libs/bar[extra]\n\
                  baz @ file:///abs/baz\n\
                  -e .#egg=proj[dev]\n\
                  ./sdists/qux-1.0.tar.gz ; python_version >= '3.9'\n\
                  --editable=../up\n";
    let r = parse(freeze).unwrap();
    let build = |i: usize| match &r.entries[i].source {
        RequirementSource::Build(b) => b.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(build(0).path.as_deref(), Some(Path::new("/home/u/foo")));
    assert!(build(0).editable && r.entries[0].is_editable());
    assert_eq!(build(0).kind, BuildKind::Directory);
    assert_eq!(r.entries[0].name, None);
    assert_eq!(
        build(1).path.as_deref(),
        Some(Path::new("/nonexistent/libs/bar"))
    );
    assert_eq!(r.entries[1].extras, ["extra"]);
    assert!(!build(1).editable);
    assert_eq!(r.entries[2].name.as_deref(), Some("baz"));
    assert_eq!(build(3).path.as_deref(), Some(Path::new("/nonexistent")));
    assert_eq!(r.entries[3].name.as_deref(), Some("proj"));
    assert_eq!(r.entries[3].extras, ["dev"]);
    assert_eq!(build(4).kind, BuildKind::Archive);
    assert_eq!(build(5).path.as_deref(), Some(Path::new("/up")));
    let e = r.to_pep508().unwrap_err();
    assert!(
        matches!(&e, RequirementsError::NeedsBuild { at, .. } if at.line == 2),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "Requirement `-e file:///home/u/foo` at `/nonexistent/requirements.txt:2` needs a build: \
         building local projects is not supported yet, build a wheel and name the wheel file \
         instead"
    );
    assert!(
        r.pinned()
            .unwrap_err()
            .to_string()
            .contains("source to build")
    );
}

#[test]
fn refuses_what_cannot_be_installed() {
    for (text, want) in [
        (
            "foo@ git+https://host.invalid/x/y@abc",
            "version control URLs are not supported",
        ),
        (
            "-e git+https://host.invalid/x/y@abc#egg=y",
            "version control URLs are not supported",
        ),
        ("foo @ ftp://h.invalid/foo-1.0.tar.gz", "only `file:`"),
        (
            "-e ./dist/foo-1.0-py3-none-any.whl",
            "only a local project directory can be installed editable",
        ),
        ("-e ./foo-1.0.tar.gz", "only a local project directory"),
        ("-e . ; os_name == 'nt'", "Unsupported option `;`"),
        ("foo @ file://remote-host/x.whl", "absolute local path"),
    ] {
        let e = parse(&format!("bar==1\n{text}\n")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{text}: {msg}");
        assert!(msg.contains("requirements.txt:2"), "{text}: {msg}");
    }
}

#[test]
fn refuses_bad_options_and_hashes() {
    let cases = [
        ("--no-binary :all:", "building from source is not supported"),
        ("--frobnicate", "Unsupported option `--frobnicate`"),
        ("foo==1 --install-option=x", "only `--hash` may follow"),
        (
            "-i",
            "Option `-i` at `/nonexistent/requirements.txt:1` needs a value",
        ),
        (
            "-c",
            "Option `-c` at `/nonexistent/requirements.txt:1` needs a value",
        ),
        ("foo==1 --hash", "Option `--hash`"),
        (
            "foo==1 --hash=md5:abc",
            "only `sha256` hashes are supported",
        ),
        ("foo==1 --hash=sha256:abc", "expected 64 hex digits"),
        ("foo==1 --hash=abc", "expected `sha256:<64 hex digits>`"),
        ("--hash=sha256:00", "must follow a requirement"),
        (
            "-r https://host.invalid/r.txt",
            "only local files can be included",
        ),
        (
            "-c https://host.invalid/c.txt",
            "only local files can be included",
        ),
        (
            "foo==1 ; nonsense marker",
            "Invalid requirement `foo==1 ; nonsense marker`",
        ),
        ("foo[=1", "Invalid requirement"),
        ("0_~", "`0_` is not a valid package name"),
        ("foo[a_]==1", "`a_` is not a valid extra name"),
        ("foo[ok, x- ]==1", "`x-` is not a valid extra name"),
        ("foo[a_", "`a_` is not a valid extra name"),
        ("[x]==1", "`` is not a valid package name"),
        ("foo>=1.0/2", "Invalid requirement `foo>=1.0/2`"),
        (
            "-r missing.txt",
            "Failed to read requirements file `/nonexistent/missing.txt`",
        ),
        (
            "-c constraints.txt",
            "Failed to read requirements file `/nonexistent/constraints.txt`",
        ),
    ];
    for (text, want) in cases {
        let msg = err(text);
        assert!(msg.contains(want), "{text}: {msg}");
    }
}

#[test]
fn duplicate_pins_merge_or_conflict() {
    let r = parse(&format!(
        "foo==1.0 --hash=sha256:{H1}\nFOO[x]==1.0.0 --hash=sha256:{H2}\n"
    ))
    .unwrap();
    // As written: two entries; pinned: one.
    assert_eq!(r.entries.len(), 2);
    let p = r.pinned().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].hashes, [H1, H2]);
    assert_eq!(p[0].extras, ["x"]);
    assert_eq!(
        err("foo==1.0\nbar==2\nfoo==2.0\n"),
        "Conflicting pins for `foo`: `1.0` at `/nonexistent/requirements.txt:1` and `2.0` at \
         `/nonexistent/requirements.txt:3`"
    );
    // Different versions under markers that never hold together are fine.
    let p = pins("foo==1.0 ; python_version < '3.9'\nfoo==2.0 ; python_version >= '3.9'\n");
    assert_eq!(p.len(), 2);
    assert!(matches!(
        parse("foo==1.0 ; python_version < '3.10'\nfoo==2.0 ; python_version >= '3.9'\n"),
        Err(RequirementsError::Conflict(_))
    ));
    // Same version under two markers: one entry under either marker.
    let p = pins("foo==1.0 ; sys_platform == 'linux'\nfoo==1.0 ; sys_platform == 'win32'\n");
    assert_eq!(p.len(), 1);
    let m = p[0].marker_string().unwrap();
    assert!(m.contains("linux") && m.contains("win32"), "{m}");
    let p = pins("foo==1.0 ; sys_platform == 'linux'\nfoo==1.0\n");
    assert_eq!(p[0].marker, None);
    // A range beside a pin is for the resolver to intersect, not a conflict.
    assert!(parse("foo==1.0\nfoo>=2\n").is_ok());
}

#[test]
fn hash_checking_mode_needs_every_hash() {
    let msg = err(&format!("foo==1 --hash=sha256:{H1}\nbar>=2\n"));
    assert!(
        msg.contains("`bar` at `/nonexistent/requirements.txt:2` has no `--hash`"),
        "{msg}"
    );
    assert!(matches!(
        parse("--require-hashes\nfoo==1\n"),
        Err(RequirementsError::MissingHashes { .. })
    ));
    let r = parse(&format!("--require-hashes\nfoo==1 --hash=sha256:{H1}\n")).unwrap();
    assert!(r.require_hashes);
}

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
fn version_normal_form() {
    let p = pins("foo==1.0-Alpha1\nbar==V2.0.POST1\n");
    assert_eq!(p[0].version, "1.0a1");
    assert_eq!(p[1].version, "2.0.post1");
}

#[test]
fn inputs_hash_examples() {
    let a = parse("foo==1.0\nbar==2.0\n").unwrap().inputs_hash();
    let b = parse("# hi\nbar==2.0   # x\n\nfoo==1.0\n")
        .unwrap()
        .inputs_hash();
    assert_eq!(a, b);
    assert_ne!(a, parse("foo==1.0\nbar==2.1\n").unwrap().inputs_hash());
    assert_ne!(a, parse("foo==1.0\nbar[x]==2.0\n").unwrap().inputs_hash());
    assert_ne!(
        a,
        parse("foo==1.0\nbar==2.0 ; os_name == 'nt'\n")
            .unwrap()
            .inputs_hash()
    );
    assert_ne!(
        a,
        parse("-i https://h.invalid/simple\nfoo==1.0\nbar==2.0\n")
            .unwrap()
            .inputs_hash()
    );
    // Unpinned files: every range, option and constraint counts; order does not.
    let r = |t: &str| parse(t).unwrap().inputs_hash();
    let base = r("foo>=1\nbar\n");
    assert_eq!(base, r("bar\n# c\nfoo >= 1\n"));
    for other in [
        "foo>=1.1\nbar\n",
        "foo>=1\nbar[x]\n",
        "--pre\nfoo>=1\nbar\n",
        "--only-binary=bar\nfoo>=1\nbar\n",
        "foo>=1\nbar ; os_name == 'nt'\n",
        "foo>=1\nbar\n./x-1.0-py3-none-any.whl\n",
    ] {
        assert_ne!(base, r(other), "{other}");
    }
}

/// Locks written before resolution arrived recorded these hashes of fully pinned files: they
/// must not change, or every existing lock would be stale (the values were computed by the
/// parser as it was then).
#[test]
fn inputs_hash_of_pinned_files_is_unchanged() {
    let cases = [
        (
            "foo==1.0\nbar==2.0\n",
            "b133a3a80b36fc6f20bfc2de439331c301860ee7b226cd1695a4760749b71e6a",
        ),
        (
            concat!(
                "--index-url https://i.invalid/simple\n",
                "--extra-index-url https://e.invalid/simple\n",
                "Foo_Bar[x,y]==1.0-Alpha1 ; python_version < '3.12' --hash=sha256:1111111111111111111111111111111111111111111111111111111111111111\n",
                "foo-bar==1.0a1 ; sys_platform == 'win32' --hash=sha256:abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123\n",
                "six===1.16.0 --hash=sha256:2222222222222222222222222222222222222222222222222222222222222222\n",
            ),
            "f9914a806f6082507a4b65000921abd0f4a912ac39cb7c58d23a348f4dcc70aa",
        ),
        (
            "--no-index\n--pre\n-f wheels\nzope.interface==6.0+local.1\n",
            "132953ff97548a71d5e6d3e43cbe335dc9020a53367e1d2272be160eeaf0bed6",
        ),
    ];
    for (text, want) in cases {
        let r = Requirements::parse_str(text, Path::new("/x/r.txt")).unwrap();
        assert_eq!(hex(r.inputs_hash()), want, "{text}");
    }
}

/// Found by the `requirements` fuzz target: pep508_rs 0.9 panics on these (a character
/// count used as a byte length); they are refused first.
#[test]
fn non_ascii_requirements_are_refused_before_pep508_sees_them() {
    for text in [
        "foo==1.0 ; python_version >= \"3.8\" a\u{445}",
        "foo==1.0 ; (python_version >= \"3.8\")\u{e9}",
        "foo==1.0 ; python_version >= \"3.8\" and\"\u{e9}\" == sys_platform",
        "foo==1.0 ; sys_platform == \"\u{e9}\"",
        "foo @ file:///x/foo-1.0-py3-none-any.whl ; sys_platform == \"\u{e9}\"",
        "./p\u{e9}/x ; os_name == 'nt' a\u{445}",
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.to_string().contains("non-ASCII character"), "{text}: {e}");
    }
    // A path may be non-ASCII; a wheel's name may not.
    let r = parse("./wheels/caf\u{e9}/x-1.0-py3-none-any.whl").unwrap();
    assert_eq!(r.entries[0].name.as_deref(), Some("x"));
    let e = parse("./wheels/\u{e9}-1.0-py3-none-any.whl").unwrap_err();
    assert!(e.to_string().contains("is not a valid package name"), "{e}");
}

/// Found by the `requirements` fuzz target: `--index-url=#x` was written back as
/// `--index-url #x`, which reads as an option without a value and a comment.
#[test]
fn option_values_that_start_like_comments_are_written_back() {
    let r = parse("--index-url=#x\n--extra-index-url=#y\n-f=#z\nfoo==1.0\n").unwrap();
    assert_eq!(r.index_url.as_deref(), Some("#x"));
    let again = parse(&r.to_requirements_txt()).unwrap();
    assert_eq!(again.index_url.as_deref(), Some("#x"));
    assert_eq!(again.extra_index_urls, ["#y"]);
    assert_eq!(again.find_links, r.find_links);
}

/// Found by the `requirements` fuzz target: pep508_rs displays `python_version < '0'` in a
/// form that reads back as another (`python_full_version < '0'`); the written marker is
/// the settled form, so a written file reads back to the same markers and inputs hash.
#[test]
fn markers_are_written_in_a_form_that_reads_back_as_itself() {
    let r = parse("foo==1.0 ; python_version < '0'\n").unwrap();
    let again = parse(&r.to_requirements_txt()).unwrap();
    assert_eq!(
        again.entries[0].marker_string(),
        r.entries[0].marker_string()
    );
    assert_eq!(again.inputs_hash(), r.inputs_hash());
}

#[test]
fn every_kind_of_entry_is_written_back() {
    let text = format!(
        "--pre\n--only-binary=a,b\n--prefer-binary\n\
         foo[x]>=1,!=1.5 ; os_name == 'nt' --hash=sha256:{H1}\n\
         ./dist/w-1.0-py3-none-any.whl[e] ; python_version >= '3.9' --hash=sha256:{H2}\n\
         -e ./proj#egg=proj[dev]\n\
         ./other-dir[e]\n\
         named @ file:///abs/named\n\
         remote @ https://h.invalid/remote-1.0.tar.gz ; os_name == 'posix'\n\
         https://h.invalid/x/y/z-2.0-py3-none-any.whl --hash=sha256:{H1}\n"
    );
    let r = parse(&text).unwrap();
    let written = r.to_requirements_txt();
    let again = parse(&written).unwrap();
    assert_eq!(strip(&again), strip(&r), "{written}");
    assert_eq!(
        (again.pre, again.prefer_binary, &again.only_binary),
        (true, true, &r.only_binary)
    );
    assert_eq!(again.inputs_hash(), r.inputs_hash());
}

/// The entries without their line numbers (a written file puts them on other lines).
fn strip(r: &Requirements) -> Vec<RequirementEntry> {
    r.entries
        .iter()
        .cloned()
        .map(|mut e| {
            e.location.line = 0;
            e
        })
        .collect()
}

// --- properties ---------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{0,6}([-_.][A-Za-z0-9]{1,4})?"
}

fn version() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(0u32..30, 1..4),
        prop::option::of(prop_oneof![
            Just("a1"),
            Just("rc2"),
            Just(".post3"),
            Just(".dev1")
        ]),
    )
        .prop_map(|(parts, suffix)| {
            let mut v = parts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(".");
            v.push_str(suffix.unwrap_or_default());
            v
        })
}

fn marker() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop_oneof![
        Just("python_version < '3.12'"),
        Just("sys_platform == 'linux'"),
        Just("os_name == 'nt' and platform_machine == 'x86_64'"),
    ])
}

#[derive(Clone, Debug)]
struct Pin {
    name: String,
    version: String,
    extras: Vec<String>,
    marker: Option<&'static str>,
    hashes: Vec<String>,
}

fn pin(with_hashes: bool) -> impl Strategy<Value = Pin> {
    let hashes = if with_hashes { 1..3usize } else { 0..1usize };
    (
        name(),
        version(),
        prop::collection::vec("[a-z]{1,5}", 0..3),
        marker(),
        prop::collection::vec("[0-9a-f]{64}", hashes),
    )
        .prop_map(|(name, version, extras, marker, hashes)| Pin {
            name,
            version,
            extras,
            marker,
            hashes,
        })
}

fn pin_list() -> impl Strategy<Value = Vec<Pin>> {
    any::<bool>()
        .prop_flat_map(|h| prop::collection::vec(pin(h), 0..8))
        .prop_map(|mut v| {
            let mut seen = HashSet::new();
            v.retain(|p| seen.insert(normalize_name(&p.name)));
            v
        })
}

fn write(pins: &[Pin], comments: bool) -> String {
    let mut out = String::new();
    for p in pins {
        if comments {
            out.push_str("# pinned by hand\n\n");
        }
        out.push_str(&p.name);
        if !p.extras.is_empty() {
            out.push_str(&format!("[{}]", p.extras.join(",")));
        }
        out.push_str(&format!("=={}", p.version));
        if let Some(m) = p.marker {
            out.push_str(&format!("; {m}"));
        }
        for h in &p.hashes {
            out.push_str(&format!(" \\\n  --hash=sha256:{h}"));
        }
        if comments {
            out.push_str("  # why");
        }
        out.push('\n');
    }
    out
}

/// One line of any kind this module reads, written as a person might.
fn any_line() -> impl Strategy<Value = String> {
    let spec = prop_oneof![
        Just(String::new()),
        version().prop_map(|v| format!(">={v}")),
        (version(), version()).prop_map(|(a, b)| format!(" >= {a}, <{b}")),
        version().prop_map(|v| format!("~={v}.0")),
        version().prop_map(|v| format!("!={v}")),
        (0u32..9).prop_map(|v| format!("=={v}.*")),
    ];
    let extras = prop::collection::vec("[a-z]{1,5}", 0..3).prop_map(|x| {
        if x.is_empty() {
            String::new()
        } else {
            format!("[{}]", x.join(","))
        }
    });
    let marker = || marker().prop_map(|m| m.map(|m| format!(" ; {m}")).unwrap_or_default());
    let hashes = prop::collection::vec("[0-9a-f]{64}", 0..2).prop_map(|hs| {
        hs.iter()
            .map(|h| format!(" --hash=sha256:{h}"))
            .collect::<String>()
    });
    prop_oneof![
        (name(), extras.clone(), spec, marker(), hashes.clone())
            .prop_map(|(n, x, s, m, h)| format!("{n}{x}{s}{m}{h}")),
        (
            "[a-z]{1,5}",
            name(),
            version(),
            extras.clone(),
            marker(),
            hashes
        )
            .prop_map(|(d, n, v, x, m, h)| format!("./{d}/{n}-{v}-py3-none-any.whl{x}{m}{h}")),
        (name(), extras.clone(), "[a-z]{1,5}", marker())
            .prop_map(|(n, x, d, m)| format!("{n}{x} @ file:///abs/{d}{m}")),
        ("[a-z]{1,5}", extras).prop_map(|(d, x)| format!("-e ../{d}{x}")),
    ]
}

proptest! {
    #[test]
    fn written_pins_parse_back(pins in pin_list()) {
        let r = parse(&write(&pins, false)).unwrap();
        let p = r.pinned().unwrap();
        prop_assert_eq!(p.len(), pins.len());
        for (want, e) in pins.iter().zip(&p) {
            prop_assert_eq!(&e.name, &want.name);
            prop_assert_eq!(&e.normalized, &normalize_name(&want.name));
            prop_assert_eq!(&e.pep440_version, &want.version.parse::<Version>().unwrap());
            let mut extras = want.extras.clone();
            extras.sort();
            extras.dedup();
            prop_assert_eq!(&e.extras, &extras);
            prop_assert_eq!(e.marker.is_some(), want.marker.is_some());
            let mut hashes = want.hashes.clone();
            hashes.sort();
            hashes.dedup();
            prop_assert_eq!(&e.hashes, &hashes);
        }
        // And our own writer round-trips exactly.
        let again = parse(&r.to_requirements_txt()).unwrap();
        prop_assert_eq!(strip(&again), strip(&r));
        prop_assert_eq!(again.inputs_hash(), r.inputs_hash());
    }

    /// Writing a parsed file and reading it back gives the same requirements, whatever their
    /// kinds, and the same inputs hash.
    #[test]
    fn written_requirements_parse_back(lines in prop::collection::vec(any_line(), 0..8)) {
        let text = lines.join("\n");
        // Hash-checking mode needs every requirement hashed: such inputs are refused, fine.
        let Ok(r) = parse(&text) else { return Ok(()) };
        prop_assert_eq!(r.entries.len(), lines.len());
        let written = r.to_requirements_txt();
        let again = parse(&written).unwrap();
        prop_assert_eq!(strip(&again), strip(&r), "{}", written);
        prop_assert_eq!(again.inputs_hash(), r.inputs_hash());
    }

    #[test]
    fn inputs_hash_ignores_order_and_comments(
        pins in pin_list(),
        seed in any::<u64>(),
    ) {
        let base = parse(&write(&pins, false)).unwrap().inputs_hash();
        let mut shuffled = pins.clone();
        // A deterministic shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(parse(&write(&shuffled, true)).unwrap().inputs_hash(), base);
    }

    #[test]
    fn inputs_hash_sees_every_pin_and_hash(
        pins in pin_list().prop_filter("non-empty", |p| !p.is_empty()),
        which in any::<prop::sample::Index>(),
        change_hash in any::<bool>(),
    ) {
        let base = parse(&write(&pins, false)).unwrap().inputs_hash();
        let mut changed = pins.clone();
        let p = which.get_mut(&mut changed);
        if change_hash && !p.hashes.is_empty() {
            let h = &mut p.hashes[0];
            let flipped = if h.starts_with('0') { "1" } else { "0" };
            h.replace_range(0..1, flipped);
        } else {
            p.version.insert(0, '9');
        }
        prop_assert_ne!(parse(&write(&changed, false)).unwrap().inputs_hash(), base);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(\\PC{0,40}\n?){0,5}") {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_requirement_like_text_never_panics(
        text in "[a-zA-Z_.\\-\\[\\],;<>=!~*@ '\"()0-9:/+#\u{e9}\u{4e2d}]{0,40}"
    ) {
        if let Ok(r) = parse(&text) {
            let _ = r.to_pep508();
            let _ = r.to_requirements_txt();
        }
    }

    #[test]
    fn arbitrary_markers_never_panic(
        marker in "(python_version|os_name|extra|sys_platform|and|or|in|not| |'|\"|<|=|>|!|~|\\(|\\)|3\\.1|[a-z_.0-9*]){0,20}"
    ) {
        let _ = parse(&format!("foo==1 ; {marker}"));
        let _ = parse(&format!("./x.whl ; {marker}"));
    }
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

/// pip merges two lines on one pin, hashes included: a line without a hash is covered by
/// another with one (as `-r base.txt` without hashes beside the same pin with them).
#[test]
fn hash_checking_mode_merges_lines_on_one_pin() {
    let r = parse(&format!("foo==1.0\nFoo==1.0.0 --hash=sha256:{H1}\n")).unwrap();
    assert_eq!(r.pinned().unwrap()[0].hashes, [H1]);
    assert!(matches!(
        parse(&format!(
            "foo==1.0\nfoo==2 ; os_name == 'nt' --hash=sha256:{H1}\n"
        )),
        Err(RequirementsError::Conflict(_) | RequirementsError::MissingHashes { .. })
    ));
    assert!(matches!(
        parse(&format!("foo>=1\nfoo>=2 --hash=sha256:{H1}\n")),
        Err(RequirementsError::MissingHashes { .. })
    ));
}
