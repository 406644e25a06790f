//! The index dx-py uses when nothing names one: the default of the interpreter's own pip, read
//! from pip at run time, below every configured source.
use dx_py_core::testing::TestIndex;
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, assert_printed, assert_success, pip_default_index_reachable, printed,
    python_executable, venv_python, write_wheels,
};

const MESSAGE: &str = "'s pip: ";

/// `PIP_INDEX_URL` (the lowest configured source but pip.conf and uv.toml) wins over pip's
/// default: the install is served by the local test index alone, and `-v` names no pip.
#[test]
fn a_configured_index_wins_over_the_default_of_pip() {
    let cx = TestContext::new();
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[WheelBuilder::new("localonly", "1.0").file("localonly.py", b"X = 1\n")],
    );
    let index = TestIndex::serve(&wheels).unwrap();
    std::fs::write(cx.project().join("r.txt"), "localonly==1.0\n").unwrap();
    let python = python_executable();
    let out = cx
        .dx_py_unconfigured()
        .env("PIP_INDEX_URL", index.index_url())
        .args([
            "-v", "install", "-r", "r.txt", "--venv", ".venv", "--python",
        ])
        .arg(&python)
        .output()
        .unwrap();
    assert_success(&out, "dx-py -v install with PIP_INDEX_URL");
    assert!(!printed(&out).contains(MESSAGE), "{}", printed(&out));
    assert!(
        index.requests().iter().any(|r| r == "/simple/localonly/"),
        "{:?}",
        index.requests()
    );
    venv_python(&cx.project().join(".venv"), "import localonly");

    // The command line wins over the variable: a dead index there is the one asked.
    let dead = "http://127.0.0.1:9/simple/";
    let out = cx
        .dx_py_unconfigured()
        .env("PIP_INDEX_URL", index.index_url())
        .args(["lock", "-r", "r.txt", "--index-url", dead, "--python"])
        .arg(&python)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_printed(&out, "127.0.0.1:9");
}

/// With nothing configured at all, `six` comes from the index the machine's pip uses, and `-v`
/// says so. Skipped (with the reason) where that index cannot be reached.
#[test]
fn installs_from_the_default_index_of_pip_with_nothing_configured() {
    let url = match pip_default_index_reachable() {
        Ok(url) => url,
        Err(why) => {
            dx_py_tests::skip(why);
            return;
        }
    };
    let cx = TestContext::new();
    std::fs::write(cx.project().join("r.txt"), "six==1.16.0\n").unwrap();
    let python = python_executable();
    let out = cx
        .dx_py_unconfigured()
        .args([
            "-v", "install", "-r", "r.txt", "--venv", ".venv", "--python",
        ])
        .arg(&python)
        .output()
        .unwrap();
    assert_success(&out, "dx-py -v install with no index configured");
    let url = url.trim_end_matches('/');
    let said = format!("Using the index of {}'s pip: {url}/", python.display());
    assert_eq!(printed(&out).matches(&said).count(), 1, "{}", printed(&out));
    let version = venv_python(
        &cx.project().join(".venv"),
        "import six; print(six.__version__)",
    );
    assert_eq!(version.trim(), "1.16.0");
}
