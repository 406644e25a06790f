use std::path::{Path, PathBuf};

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives in fuzz/")
        .to_path_buf()
}

fn body(target: &str) -> Body {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target `{target}`"))
        .1
}

/// Replays every kept crash file through its target's body.
#[test]
fn regressions_replay() {
    let mut replayed = 0;
    for (target, body) in TARGETS {
        let dir = fuzz_dir().join("regressions").join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("regression directory entry").path();
            if path.file_name().is_some_and(|n| n != ".keep") {
                body(&std::fs::read(&path).expect("regression file"));
                replayed += 1;
            }
        }
    }
    assert!(
        replayed > 0,
        "fuzz/regressions/ holds crash files to replay"
    );
}

/// Every target has its libFuzzer binary, declared in `fuzz/Cargo.toml`, and a directory for
/// its crash files; every binary runs a target.
#[test]
fn each_target_has_a_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (target, _) in TARGETS {
        let source = format!("fuzz_targets/{target}.rs");
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} in fuzz/Cargo.toml"
        );
        assert!(
            manifest.contains(&format!("path = \"{source}\"")),
            "{source} in fuzz/Cargo.toml"
        );
        let code = std::fs::read_to_string(fuzz_dir().join(&source)).expect("target source");
        assert!(
            code.contains(&format!("dx_py_fuzz_harness::{target}(")),
            "{source}"
        );
        assert!(
            fuzz_dir().join("regressions").join(target).is_dir(),
            "regressions/{target}"
        );
    }
    let binaries = manifest.matches("[[bin]]").count();
    assert_eq!(binaries, TARGETS.len(), "one binary per target");
}

/// Every target has seeds, and its body accepts them (which runs the checks behind acceptance).
#[test]
fn seeds_cover_every_target_and_pass_their_checks() {
    let seeds = seeds();
    for (target, body) in TARGETS {
        let mine: Vec<_> = seeds.iter().filter(|s| s.target == *target).collect();
        assert!(!mine.is_empty(), "{target} has seeds");
        for s in mine {
            body(&s.bytes);
        }
    }
}

/// The seeds reach the deep checks: each is accepted by its parser's full check.
#[test]
fn seeds_are_valid_inputs() {
    use dx_py_core::dpl::DplReader;
    use dx_py_core::dxpkg::DxpkgReader;
    use dx_py_core::layout::LayoutIndex;
    use dx_py_core::tree::Tree;

    for s in seeds() {
        let rest = &s.bytes[1.min(s.bytes.len())..];
        let ok = match s.target {
            "dpl_reader" if dx_py_core::dpl::format_version(rest) == Ok(2) => {
                dx_py_core::dpl::UniversalDplReader::from_bytes(rest)
                    .is_ok_and(|r| r.verify().is_ok() && !r.is_empty())
            }
            "dpl_reader" => DplReader::from_bytes(rest).is_ok_and(|r| r.verify().is_ok()),
            "dxpkg_reader" => DxpkgReader::new(&s.bytes[..]).is_ok_and(|r| r.validate().is_ok()),
            "tree_reader" => Tree::new(rest).is_ok_and(|t| t.verify().is_ok()),
            "layout_index" => LayoutIndex::new(rest).is_ok_and(|i| i.verify().is_ok()),
            "wheel" => {
                let name = wheel::WHEEL_NAMES[usize::from(s.bytes[0])];
                dx_py_core::wheel::convert_wheel(name, rest).is_ok()
            }
            "requirements" => {
                let text = std::str::from_utf8(&s.bytes).expect("UTF-8 seed");
                let path = text::requirements_path();
                let parsed = dx_py_core::requirements::Requirements::parse_str(text, &path);
                parsed.is_ok_and(|r| !r.entries.is_empty())
            }
            "pylock" => std::str::from_utf8(&s.bytes)
                .ok()
                .and_then(|t| dx_py_core::dpl::Lock::from_pylock_str(t).ok())
                .is_some_and(|l| !l.packages.is_empty()),
            _ => true,
        };
        assert!(ok, "seed {}/{} is valid", s.target, s.name);
    }
}

#[test]
fn simple_page_seeds_list_files() {
    use dx_py_core::index::Url;
    use dx_py_core::index::simple::{PageFormat, parse_page};

    let page = Url::parse("https://idx.invalid/simple/demo/").unwrap();
    for s in seeds().iter().filter(|s| s.target == "simple_page") {
        let body = &s.bytes[1..];
        let format = PageFormat::detect(None, body);
        assert_eq!(
            parse_page(body, format, &page).unwrap().len(),
            3,
            "{}",
            s.name
        );
    }
}

#[test]
fn seed_corpus_is_written_per_target() {
    let dir = tempfile::tempdir().unwrap();
    write_seed_corpus(dir.path()).unwrap();
    for (target, _) in TARGETS {
        assert!(
            std::fs::read_dir(dir.path().join(target)).unwrap().count() > 0,
            "{target}"
        );
    }
}

/// Writes the seeds to `fuzz/corpus/<target>/` as starting points for `cargo fuzz run`
/// (`scripts/fuzz.sh` runs this first).
#[test]
#[ignore = "writes files; run with --ignored to seed a fuzz corpus"]
fn write_fuzz_corpus() {
    write_seed_corpus(&fuzz_dir().join("corpus")).unwrap();
}

/// Built once: making them converts wheels and builds a tree.
static SEEDS: std::sync::LazyLock<Vec<seeds::Seed>> = std::sync::LazyLock::new(seeds);

/// Byte edits and cuts of the seeds; mode bytes are left alone so that a forged (resealed)
/// seed stays forged.
fn mutated(bytes: &[u8], edits: &[(usize, u8)], cut: usize) -> [Vec<u8>; 2] {
    let mut out = bytes.to_vec();
    if out.len() > 1 {
        for &(at, v) in edits {
            let at = 1 + at % (out.len() - 1);
            out[at] = v;
        }
    }
    let short = out[..cut % (out.len() + 1)].to_vec();
    [out, short]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes(data in vec(any::<u8>(), 0..1024)) {
        for (_, body) in TARGETS {
            body(&data);
        }
    }

    #[test]
    fn mutated_seeds(edits in vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        for s in SEEDS.iter() {
            for input in mutated(&s.bytes, &edits, cut) {
                body(s.target)(&input);
            }
        }
    }
}
