//! Tests that need something a machine may lack (root, FUSE, `fusermount3`, the network) check
//! for it first: where it is missing they say what they skip and why, and pass, so that the
//! README's `cargo test --workspace` works on a fresh machine. CI sets [`REQUIRE_ALL`], which
//! makes every such skip a failure, so that there every test really runs.
use std::fmt::Display;

/// The environment variable that turns a skipped test into a failed one (`.ci/run` sets it).
pub const REQUIRE_ALL: &str = "DX_PY_TEST_REQUIRE_ALL";

/// Whether the calling test can run, given the check of what it needs: `Ok` runs it; `Err(why)`
/// prints (to stderr) that the test is skipped and why, and returns false — or, when
/// [`REQUIRE_ALL`] is set, fails the test with that reason.
pub fn can_run<T, E: Display>(need: Result<T, E>) -> bool {
    match need {
        Ok(_) => true,
        Err(why) => {
            skip(why);
            false
        }
    }
}

/// Skips the calling test because of `why` (see [`can_run`]); panics under [`REQUIRE_ALL`].
pub fn skip(why: impl Display) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    assert!(
        !required(),
        "{test} cannot run: {why} ({REQUIRE_ALL} is set, so a skipped test fails)"
    );
    eprintln!("skipping {test}: {why}");
}

fn required() -> bool {
    std::env::var_os(REQUIRE_ALL).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The calling process does not run as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("it needs root (it mounts file systems or tests what root may do)")]
pub struct NotRoot;

/// `Ok` when this process runs as root (effective uid 0, read from `/proc/self/status`; where
/// that cannot be read, not root).
pub fn root() -> Result<(), NotRoot> {
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            // Real, effective, saved set, file system uid.
            line["Uid:".len()..]
                .split_whitespace()
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
    if euid == Some(0) {
        Ok(())
    } else {
        Err(NotRoot)
    }
}

/// A program a test runs is not on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("it needs `{0}`, which is not on PATH")]
pub struct NotOnPath(pub String);

/// `Ok` when `program` is on `PATH`.
pub fn on_path(program: &str) -> Result<(), NotOnPath> {
    if which::which(program).is_ok() {
        Ok(())
    } else {
        Err(NotOnPath(program.to_string()))
    }
}

/// Whether a FUSE server here may open files with passthrough: Linux ≥ 6.9 (read from
/// `/proc/sys/kernel/osrelease`) and root (the kernel asks `CAP_SYS_ADMIN` of a server that
/// registers a backing file). Tests of passthrough check the fallback where this is false.
pub fn fuse_passthrough() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().ok());
    let version = (parts.next().flatten(), parts.next().flatten());
    let new_enough = matches!(version, (Some(major), Some(minor)) if (major, minor) >= (6, 9));
    new_enough && root().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_there_runs_and_what_is_missing_is_named() {
        assert!(can_run(Ok::<(), NotRoot>(())));
        assert!(on_path("sh").is_ok());
        let missing = on_path("no-such-program-dx-py").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "it needs `no-such-program-dx-py`, which is not on PATH"
        );
        // `root()` agrees with the uid the kernel reports for a file this process creates.
        #[cfg(unix)]
        {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("f");
            std::fs::write(&file, b"").unwrap();
            let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&file).unwrap());
            assert_eq!(root().is_ok(), uid == 0);
        }
    }

    /// A skip under `DX_PY_TEST_REQUIRE_ALL` fails; run in a child process, since the variable is
    /// read from this process's environment.
    #[test]
    fn require_all_turns_a_skip_into_a_failure() {
        if std::env::var_os("DX_PY_TEST_SKIP_CHILD").is_some() {
            assert!(!can_run(Err::<(), _>("the moon is missing")));
            return;
        }
        let run = |require: &str| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "testing::needs::tests::require_all_turns_a_skip_into_a_failure",
                    "--nocapture",
                ])
                .env("DX_PY_TEST_SKIP_CHILD", "1")
                .env(REQUIRE_ALL, require)
                .output()
                .unwrap()
        };
        let skipped = run("0");
        let err = String::from_utf8_lossy(&skipped.stderr);
        assert!(skipped.status.success(), "{err}");
        assert!(
            err.contains("skipping testing::needs::tests::require_all_turns_a_skip_into_a_failure: the moon is missing"),
            "{err}"
        );
        let failed = run("1");
        let out = String::from_utf8_lossy(&failed.stdout).into_owned()
            + &String::from_utf8_lossy(&failed.stderr);
        assert!(!failed.status.success(), "{out}");
        assert!(
            out.contains("cannot run: the moon is missing") && out.contains(REQUIRE_ALL),
            "{out}"
        );
    }
}
