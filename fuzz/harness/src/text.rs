//! Text files a project or a user hands to dx-py: requirements files and `pylock.toml`.
use std::cell::RefCell;
use std::path::PathBuf;

use dx_py_core::dpl::{DplBuilder, DplReader, Lock, LockedWheel, PylockSelector};
use dx_py_core::requirements::{PinnedRequirement, Requirements};

thread_local! {
    /// A directory per thread holding `base.txt`, a file the fuzzer can include with `-r`
    /// (parallel tests must not share files).
    static REQUIREMENTS_DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// The path the input is parsed as: `{dir}/requirements.txt`, beside `base.txt`.
pub(crate) fn requirements_path() -> PathBuf {
    REQUIREMENTS_DIR.with_borrow_mut(|dir| {
        let dir = dir.get_or_insert_with(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            std::fs::write(dir.path().join("base.txt"), "base-pkg==1.0\n").expect("write base.txt");
            dir
        });
        dir.path().join("requirements.txt")
    })
}

/// Includes of these are refused by the harness, not by the parser: reading a device or a
/// kernel file (`-r /dev/zero`, `-r /dev/stdin`) never ends, as it would for pip. That is the
/// user's own doing, not a parser bug.
const SPECIAL_FILES: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// What a pin is, without where it was written: name, normalized name, version, extras,
/// marker, hashes.
type Pin = (
    String,
    String,
    String,
    Vec<String>,
    Option<String>,
    Vec<String>,
);

/// The pinned view, when the file is pinned.
fn pins(r: &Requirements) -> Option<Vec<Pin>> {
    let pinned = r.pinned().ok()?;
    Some(
        pinned
            .iter()
            .map(|e: &PinnedRequirement| {
                (
                    e.name.clone(),
                    e.normalized.clone(),
                    e.version.clone(),
                    e.extras.clone(),
                    e.marker_string(),
                    e.hashes.clone(),
                )
            })
            .collect(),
    )
}

/// Every entry as written back (its requirement and hashes), without where it was written.
fn entries(r: &Requirements) -> Vec<(String, Vec<String>)> {
    r.entries
        .iter()
        .map(|e| (e.requirement_text(), e.hashes.clone()))
        .collect()
}

/// `Requirements::parse_str`, `pinned`, `to_pep508` and `inputs_hash`; what it accepts,
/// `to_requirements_txt` writes back as a file that parses to the same entries, pins and
/// options (constraints come from files of their own and are not written back).
pub fn requirements(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if SPECIAL_FILES.iter().any(|s| text.contains(s)) {
        return;
    }
    let path = requirements_path();
    let Ok(parsed) = Requirements::parse_str(text, &path) else {
        return;
    };
    let hash = parsed.inputs_hash();
    let _ = parsed.to_pep508();
    // A value ending in `\` was followed by another option on its line; written alone on a
    // line it would continue the line (see `to_requirements_txt`).
    let options = parsed.index_url.iter().chain(&parsed.extra_index_urls);
    if options.chain(&parsed.find_links).any(|v| v.ends_with('\\')) {
        return;
    }
    let written = parsed.to_requirements_txt();
    let again = Requirements::parse_str(&written, &path)
        .unwrap_or_else(|e| panic!("written file reads back: {e}\n{written}"));
    assert_eq!(entries(&again), entries(&parsed), "{written}");
    assert_eq!(
        (&again.index_url, &again.extra_index_urls, &again.find_links),
        (
            &parsed.index_url,
            &parsed.extra_index_urls,
            &parsed.find_links
        )
    );
    assert_eq!(
        (again.no_index, again.require_hashes, again.pre),
        (parsed.no_index, parsed.require_hashes, parsed.pre)
    );
    assert_eq!(
        (again.prefer_binary, &again.only_binary),
        (parsed.prefer_binary, &parsed.only_binary)
    );
    if !parsed.constraints.is_empty() {
        return;
    }
    assert_eq!(pins(&again), pins(&parsed), "{written}");
    assert_eq!(again.inputs_hash(), hash, "{written}");
}

/// Takes every entry and the first of several wheels: the choices a multi-environment lock
/// leaves to the installer, made so that the most input reaches the reader's later checks.
struct TakeFirst;

impl PylockSelector for TakeFirst {
    fn choose_wheel(&mut self, _name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        (!wheels.is_empty()).then_some(0)
    }
}

/// `Lock::from_pylock_str` (and `from_pylock_str_with`); a lock it accepts writes back as a
/// pylock.toml that reads the same, and builds a DPL that verifies.
pub fn pylock(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Lock::from_pylock_str_with(text, &mut TakeFirst);
    let Ok(lock) = Lock::from_pylock_str(text) else {
        return;
    };
    let written = lock.to_pylock_string();
    let again = Lock::from_pylock_str(&written)
        .unwrap_or_else(|e| panic!("written lock reads back: {e}\n{written}"));
    assert_eq!(again, lock, "{written}");
    if let Ok(bytes) = DplBuilder::from_lock(&lock).to_bytes() {
        let dpl = DplReader::from_bytes(bytes).expect("builder output opens");
        dpl.verify().expect("builder output verifies");
    }
}
