//! `dx-py dpl build | dump | get` end to end, including corrupt input.
use dx_py_tests::TestContext;

const PYLOCK: &str = r#"lock-version = "1.0"
created-by = "test"
requires-python = ">=3.8"

[[packages]]
name = "Foo_Bar"
version = "1.2.3"
marker = "python_version >= '3.8'"
dependencies = [{ name = "idna" }]

[[packages.wheels]]
name = "foo_bar-1.2.3-py3-none-any.whl"
url = "http://127.0.0.1:1/foo_bar-1.2.3-py3-none-any.whl"
hashes = { sha256 = "1111111111111111111111111111111111111111111111111111111111111111" }

[[packages]]
name = "idna"
version = "3.7"

[[packages.wheels]]
name = "idna-3.7-py3-none-any.whl"
url = "http://127.0.0.1:1/idna-3.7-py3-none-any.whl"
hashes = { sha256 = "2222222222222222222222222222222222222222222222222222222222222222" }
"#;

#[test]
fn build_dump_get() {
    let cx = TestContext::new();
    std::fs::write(cx.project().join("pylock.toml"), PYLOCK).unwrap();
    cx.run_ok(&["dpl", "build", "pylock.toml", "-o", "dx-py.dpl"]);
    let dump = cx.run_ok(&["dpl", "dump", "dx-py.dpl"]);
    assert!(
        dump.contains("Foo_Bar") && dump.contains("1.2.3") && dump.contains("idna"),
        "{dump}"
    );
    let json = cx.run_ok(&["dpl", "dump", "dx-py.dpl", "--json"]);
    assert!(
        json.trim_start().starts_with('{') && json.contains("\"1.2.3\""),
        "{json}"
    );
    // PEP 503 normalization: any spelling finds the entry.
    for spelling in ["foo-bar", "FOO.BAR", "foo_bar"] {
        let one = cx.run_ok(&["dpl", "get", "dx-py.dpl", spelling]);
        assert!(one.contains("1.2.3") && one.contains("1111"), "{one}");
    }
    let err = cx.run_err(&["dpl", "get", "dx-py.dpl", "absent"], 1);
    assert!(err.contains("absent"), "{err}");
}

#[test]
fn corrupt_dpl_exits_with_the_typed_error() {
    let cx = TestContext::new();
    std::fs::write(cx.project().join("pylock.toml"), PYLOCK).unwrap();
    cx.run_ok(&["dpl", "build", "pylock.toml", "-o", "dx-py.dpl"]);
    let good = std::fs::read(cx.project().join("dx-py.dpl")).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("truncated".into(), good[..good.len() / 3].to_vec()),
        ("empty".into(), Vec::new()),
        (
            "garbage".into(),
            b"this is not a lock file at all, not even close".to_vec(),
        ),
    ];
    let mut magic = good.clone();
    magic[0] ^= 0xff;
    cases.push(("magic".into(), magic));
    for at in [good.len() / 2, good.len() - 5] {
        let mut flipped = good.clone();
        flipped[at] ^= 0x55;
        cases.push((format!("flip{at}"), flipped));
    }
    for (name, bytes) in cases {
        let file = format!("{name}.dpl");
        std::fs::write(cx.project().join(&file), bytes).unwrap();
        let out = cx.dx_py().args(["dpl", "dump", &file]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{name}: dump must fail");
        assert_ne!(out.status.code(), Some(101), "{name}: panicked: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        let out = cx
            .dx_py()
            .args(["dpl", "get", &file, "idna"])
            .output()
            .unwrap();
        // A flipped byte elsewhere may leave `idna` intact: then the answer must be right.
        if out.status.success() {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("3.7"),
                "{name}: wrong answer"
            );
        } else {
            assert_ne!(out.status.code(), Some(101), "{name}: panicked");
        }
    }
}
