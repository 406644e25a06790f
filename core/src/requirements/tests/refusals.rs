//! Typed refusals: what cannot be installed, bad options and hashes, text pep508_rs would panic on.
use super::*;

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
