//! The version normal form and the inputs hash, pinned for locks written earlier.
use super::*;

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
