//! Cargo builds the `dx-py` binary for this test, so `cargo test --workspace` always has a fresh
//! binary for the end-to-end suites in `tests/` as well.
use std::process::Command;

#[test]
fn prints_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_dx-py"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("dx-py "));
}

#[test]
fn unknown_hash_path_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("dx-py-smoke-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_dx-py"))
        .args(["--cache-dir"])
        .arg(&dir)
        .args(["store", "path", &"0".repeat(64)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in the store"));
    let out = Command::new(env!("CARGO_BIN_EXE_dx-py"))
        .args(["store", "path", "nothex"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
