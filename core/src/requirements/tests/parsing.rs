//! Parsing: pins, extras, markers, continuation lines, options, environment variables, ranges, wheel files, local projects.
use super::*;

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
