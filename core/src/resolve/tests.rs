//! Resolver scenarios written as data, on an in-memory source and on the local test index.
//!
//! An index is one line per version: `name version [!attr]… [-> dep | dep …]`, where attrs are
//! `!yanked`, `!sdist` (only an sdist), `!sdist+` (a wheel and an sdist), `!tag=TAG` (the wheel's
//! tag, default `py3-none-any`), `!index-python=SPEC` (the index's Requires-Python of the files)
//! and `!python=SPEC` (the metadata's Requires-Python); deps are PEP 508 lines.
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use pep508_rs::{PackageName, Requirement};

use super::*;
use crate::index::IndexFile;
use crate::wheel::WheelMetadata;

use crate::testing::{cp311_tag_priority as cp311, linux_cp311_markers as linux_311};

fn name(s: &str) -> PackageName {
    PackageName::from_str(s).unwrap()
}

/// Builds the in-memory source an index table describes.
pub(super) fn source(table: &str) -> InMemorySource {
    let mut source = InMemorySource::new();
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (head, deps) = line.split_once("->").unwrap_or((line, ""));
        let mut words = head.split_whitespace();
        let (n, v) = (words.next().unwrap(), words.next().unwrap());
        let mut tag = "py3-none-any".to_string();
        let (mut yanked, mut wheel, mut sdist) = (false, true, false);
        let (mut index_python, mut python) = (None, None);
        for attr in words {
            match attr.split_once('=') {
                Some(("!tag", t)) => tag = t.to_string(),
                Some(("!index-python", s)) => index_python = Some(s.to_string()),
                Some(("!python", s)) => python = Some(s.to_string()),
                _ if attr == "!yanked" => yanked = true,
                _ if attr == "!sdist" => (wheel, sdist) = (false, true),
                _ if attr == "!sdist+" => sdist = true,
                _ => panic!("unknown attribute `{attr}` in `{line}`"),
            }
        }
        let file = |filename: String| IndexFile {
            url: format!("mem://{filename}"),
            filename,
            sha256: None,
            requires_python: index_python.clone(),
            yanked,
            yanked_reason: None,
            size: None,
            ..IndexFile::default()
        };
        let requires_dist: Vec<String> = deps
            .split('|')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| d.replace('\'', "\""))
            .collect();
        let metadata = WheelMetadata {
            metadata_version: Some("2.1".into()),
            name: n.to_string(),
            version: v.to_string(),
            requires_dist,
            requires_python: python.clone(),
            provides_extra: vec![],
        };
        if wheel {
            source.add(
                name(n),
                file(format!("{n}-{v}-{tag}.whl")),
                Some(metadata.clone()),
            );
        }
        if sdist {
            // What a build would prepare; asked for only when builds are allowed.
            source.add(name(n), file(format!("{n}-{v}.tar.gz")), Some(metadata));
        }
    }
    source
}

/// One scenario: an index, a manifest, and the expected resolution (`name[extras]==version`
/// separated by spaces) or error text.
struct Scenario {
    name: &'static str,
    index: &'static str,
    requires: &'static [&'static str],
    constraints: &'static [&'static str],
    overrides: &'static [&'static str],
    prefer: &'static [(&'static str, &'static str)],
    upgrade: Option<&'static [&'static str]>,
    requires_python: Option<&'static str>,
    prerelease: PrereleaseMode,
    expect: &'static str,
}

const BASE: Scenario = Scenario {
    name: "",
    index: "",
    requires: &[],
    constraints: &[],
    overrides: &[],
    prefer: &[],
    upgrade: None,
    requires_python: None,
    prerelease: PrereleaseMode::IfNecessaryOrExplicit,
    expect: "",
};

fn reqs(lines: &[&str]) -> Vec<Requirement> {
    lines
        .iter()
        .map(|l| Requirement::from_str(l).unwrap())
        .collect()
}

fn render(result: Result<Resolution, ResolveError>) -> String {
    match result {
        Ok(r) => r
            .packages
            .iter()
            .map(|p| {
                let extras: Vec<String> = p.extras.iter().map(ToString::to_string).collect();
                if extras.is_empty() {
                    format!("{}=={}", p.name, p.version)
                } else {
                    format!("{}[{}]=={}", p.name, extras.join(","), p.version)
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(e) => e.to_string(),
    }
}

fn run(s: &Scenario, prefetch_threads: usize) -> String {
    let manifest = Manifest {
        requirements: reqs(s.requires),
        constraints: reqs(s.constraints),
        overrides: reqs(s.overrides),
        preferences: s
            .prefer
            .iter()
            .map(|(n, v)| (name(n), v.parse().unwrap()))
            .collect(),
        upgrade: match s.upgrade {
            None => Upgrade::None,
            Some([]) => Upgrade::All,
            Some(names) => Upgrade::Packages(names.iter().map(|n| name(n)).collect()),
        },
        requires_python: s.requires_python.map(|r| r.parse().unwrap()),
    };
    let markers = linux_311();
    let target = Target {
        markers: &markers,
        tag_priority: &cp311,
    };
    let options = ResolveOptions {
        prerelease: s.prerelease,
        prefetch_threads,
        build_sdists: false,
        binary: BinaryPolicy::default(),
    };
    render(resolve(&manifest, target, &options, &source(s.index)))
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "highest versions",
        index: "a 1.0\na 2.0 -> b>=1\nb 1.0\nb 1.1",
        requires: &["a"],
        expect: "a==2.0 b==1.1",
        ..BASE
    },
    Scenario {
        name: "final releases before pre-releases",
        index: "a 1.0\na 2.0b1",
        requires: &["a"],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "a specifier naming a pre-release allows them",
        index: "a 1.0\na 2.0b1",
        requires: &["a>=2.0b1"],
        expect: "a==2.0b1",
        ..BASE
    },
    Scenario {
        name: "explicit pre-release allows all of the package's pre-releases",
        index: "a 1.0\na 2.0\na 2.1a1",
        requires: &["a>=1.0rc1"],
        expect: "a==2.1a1",
        ..BASE
    },
    Scenario {
        name: "pre-releases when only they exist",
        index: "a 1.0a1\na 1.0a2",
        requires: &["a"],
        expect: "a==1.0a2",
        ..BASE
    },
    Scenario {
        name: "pre-releases when only they satisfy a transitive range",
        index: "a 1.0 -> b>2\nb 1.0\nb 3.0b1",
        requires: &["a"],
        expect: "a==1.0 b==3.0b1",
        ..BASE
    },
    Scenario {
        name: "pre-releases disallowed",
        index: "a 1.0a1",
        requires: &["a"],
        prerelease: PrereleaseMode::Disallow,
        expect: "No solution was found for the requirements:\nBecause a has no final release (pre-releases are not allowed) and you require a, the requirements cannot be satisfied.",
        ..BASE
    },
    Scenario {
        name: "pre-releases allowed",
        index: "a 1.0\na 2.0b1",
        requires: &["a"],
        prerelease: PrereleaseMode::Allow,
        expect: "a==2.0b1",
        ..BASE
    },
    Scenario {
        name: "yanked versions skipped",
        index: "a 1.0\na 2.0 !yanked",
        requires: &["a"],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "yanked version pinned exactly",
        index: "a 1.0\na 2.0 !yanked",
        requires: &["a==2.0"],
        expect: "a==2.0",
        ..BASE
    },
    Scenario {
        name: "yanked version not pinned by a range",
        index: "a 1.0\na 2.0 !yanked",
        requires: &["a>=2.0"],
        expect: "No solution was found for the requirements:\nBecause only a==1.0 is available and you require a>=2.0, the requirements cannot be satisfied.",
        ..BASE
    },
    Scenario {
        name: "index requires-python",
        index: "a 1.0\na 2.0 !index-python=>=3.12",
        requires: &["a"],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "metadata requires-python",
        index: "a 1.0\na 2.0 !python=>=3.12",
        requires: &["a"],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "metadata requires-python explained",
        index: "a 2.0 !python=>=3.12",
        requires: &["a==2.0"],
        expect: "No solution was found for the requirements:\nBecause a==2.0 requires Python >=3.12, but the target is Python 3.11.7 and you require a==2.0, the requirements cannot be satisfied.",
        ..BASE
    },
    Scenario {
        name: "project requires-python",
        index: "a 1.0",
        requires: &["a"],
        requires_python: Some(">=3.12"),
        expect: "The target Python 3.11.7 does not satisfy the project's `requires-python = \">=3.12\"`: choose a Python in that range",
        ..BASE
    },
    Scenario {
        name: "markers on the target",
        index: "a 1.0 -> b; sys_platform == 'win32' | c; python_version >= '3.8'\nb 1.0\nc 1.0",
        requires: &["a", "d; sys_platform == 'win32'"],
        expect: "a==1.0 c==1.0",
        ..BASE
    },
    Scenario {
        name: "extras",
        index: "a 1.0 -> b; extra == 'x' | c\nb 1.0\nc 1.0",
        requires: &["a[x]"],
        expect: "a[x]==1.0 b==1.0 c==1.0",
        ..BASE
    },
    Scenario {
        name: "an extra of an extra",
        index: "a 1.0 -> a[x]; extra == 'all' | b; extra == 'x'\nb 1.0",
        requires: &["a[all]"],
        expect: "a[all,x]==1.0 b==1.0",
        ..BASE
    },
    Scenario {
        name: "an extra pins its base",
        index: "a 1.0 -> b; extra == 'x'\na 2.0 -> c; extra == 'x'\nb 1.0\nc 1.0",
        requires: &["a[x]", "a<2"],
        expect: "a[x]==1.0 b==1.0",
        ..BASE
    },
    Scenario {
        name: "wheel tags",
        index: "a 1.0\na 2.0 !tag=cp39-cp39-win_amd64\na 1.5 !tag=cp311-cp311-manylinux_2_17_x86_64",
        requires: &["a"],
        expect: "a==1.5",
        ..BASE
    },
    Scenario {
        name: "an older version with a wheel before a newer one that needs a build",
        index: "a 1.0\na 2.0 !sdist",
        requires: &["a"],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "a preference that needs a build is passed over",
        index: "a 1.0\na 1.5 !sdist\na 2.0",
        requires: &["a"],
        prefer: &[("a", "1.5")],
        expect: "a==2.0",
        ..BASE
    },
    Scenario {
        name: "only an sdist",
        index: "a 1.0\na 2.0 !sdist",
        requires: &["a>=2"],
        expect: "`a==2.0` needs a build from source, and building is turned off (`--no-build`): it has no wheel for this environment, only a-2.0.tar.gz; require another version (e.g. `a!=2.0`), provide a wheel with `--find-links`, or allow builds",
        ..BASE
    },
    Scenario {
        name: "a wheel beside the sdist",
        index: "a 2.0 !sdist+",
        requires: &["a"],
        expect: "a==2.0",
        ..BASE
    },
    Scenario {
        name: "backtracking across levels",
        index: "a 1.0 -> b==1.0\na 2.0 -> b==2.0\nb 1.0 -> c==1.0\nb 2.0 -> c==2.0\nc 1.0 -> d<2\nc 2.0 -> d>=5\nd 1.0\nd 2.0",
        requires: &["a"],
        expect: "a==1.0 b==1.0 c==1.0 d==1.0",
        ..BASE
    },
    Scenario {
        name: "conflict explained",
        index: "a 1.0 -> b>=2\nb 1.0",
        requires: &["a==1.0"],
        expect: "No solution was found for the requirements:\nBecause only b==1.0 is available and a==1.0 depends on b>=2, a==1.0 cannot be used.\nAnd because you require a==1.0, the requirements cannot be satisfied.",
        ..BASE
    },
    Scenario {
        name: "conflict between two packages",
        index: "a 1.0 -> c<2\nb 1.0 -> c>=2\nc 1.0\nc 2.0",
        requires: &["a", "b"],
        expect: "No solution was found for the requirements:\nBecause only a==1.0 is available and a==1.0 depends on c<2, a depends on c<2.\nAnd because b==1.0 depends on c>=2 and only b==1.0 is available, a and b cannot be used together.\nAnd because you require a and b, the requirements cannot be satisfied.",
        ..BASE
    },
    Scenario {
        name: "constraints limit",
        index: "a 1.0\na 2.0",
        requires: &["a"],
        constraints: &["a<2", "z<1"],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "overrides replace transitive requirements",
        index: "a 1.0 -> b<2\nb 1.0\nb 3.0",
        requires: &["a"],
        overrides: &["b>=3"],
        expect: "a==1.0 b==3.0",
        ..BASE
    },
    Scenario {
        name: "preferences first",
        index: "a 1.0\na 2.0",
        requires: &["a"],
        prefer: &[("a", "1.0")],
        expect: "a==1.0",
        ..BASE
    },
    Scenario {
        name: "preference outside the range",
        index: "a 1.0\na 2.0",
        requires: &["a>=2"],
        prefer: &[("a", "1.0")],
        expect: "a==2.0",
        ..BASE
    },
    Scenario {
        name: "upgrade all",
        index: "a 1.0\na 2.0\nb 1.0\nb 2.0",
        requires: &["a", "b"],
        prefer: &[("a", "1.0"), ("b", "1.0")],
        upgrade: Some(&[]),
        expect: "a==2.0 b==2.0",
        ..BASE
    },
    Scenario {
        name: "upgrade one package",
        index: "a 1.0\na 2.0\nb 1.0\nb 2.0",
        requires: &["a", "b"],
        prefer: &[("a", "1.0"), ("b", "1.0")],
        upgrade: Some(&["b"]),
        expect: "a==1.0 b==2.0",
        ..BASE
    },
    Scenario {
        name: "unknown package",
        index: "a 1.0",
        requires: &["zz"],
        expect: "Package `zz` was not found in memory",
        ..BASE
    },
    Scenario {
        name: "arbitrary equality",
        index: "a 1.0.0\na 2.0",
        requires: &["a===1.0.0"],
        expect: "a==1.0.0",
        ..BASE
    },
];

#[test]
fn scenarios() {
    let mut failures = Vec::new();
    for s in SCENARIOS {
        for threads in [0, 3] {
            let got = run(s, threads);
            if got != s.expect {
                failures.push(format!(
                    "{} (prefetch {threads}):\n  expected: {}\n  got:      {}",
                    s.name, s.expect, got
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resolution_carries_files_and_dependencies() {
    let markers = linux_311();
    let source =
        source("a 1.0 !tag=cp311-cp311-manylinux_2_17_x86_64 -> b | c; extra == 'x'\nb 1.0\nc 1.0");
    // A second, worse wheel of a 1.0: the best tag wins.
    let mut source = source;
    source.add(
        name("a"),
        IndexFile {
            filename: "a-1.0-py3-none-any.whl".into(),
            url: "mem://a-1.0-py3-none-any.whl".into(),
            sha256: None,
            requires_python: None,
            yanked: false,
            yanked_reason: None,
            size: None,
            ..IndexFile::default()
        },
        None,
    );
    let manifest = Manifest {
        requirements: reqs(&["a[x]"]),
        ..Manifest::default()
    };
    let target = Target {
        markers: &markers,
        tag_priority: &cp311,
    };
    let r = resolve(&manifest, target, &ResolveOptions::default(), &source).unwrap();
    let a = &r.packages[0];
    assert_eq!(
        a.file.filename,
        "a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    );
    assert_eq!(a.dependencies, vec![name("b"), name("c")]);
    assert_eq!(a.extras.len(), 1);
    let order: Vec<String> = r.packages.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(order, ["a", "b", "c"]);
}

#[test]
fn url_requirements_are_refused() {
    let markers = linux_311();
    let manifest = Manifest {
        requirements: reqs(&["a @ file:///tmp/a-1.0-py3-none-any.whl"]),
        ..Manifest::default()
    };
    let target = Target {
        markers: &markers,
        tag_priority: &cp311,
    };
    let e = resolve(
        &manifest,
        target,
        &ResolveOptions::default(),
        &source("a 1.0"),
    )
    .unwrap_err();
    assert!(matches!(e, ResolveError::UrlRequirement(_)), "{e}");
}

/// Through the local test index: pages and wheels over HTTP, metadata read from the wheels,
/// fetched once each (in-flight requests shared with the prefetch workers).
#[test]
fn index_source_on_the_test_index() {
    use crate::index::{ClientOptions, IndexClient, PackageSources};
    use crate::testing::TestIndex;
    use crate::wheel::testing::WheelBuilder;

    let dir = tempfile::tempdir().unwrap();
    let wheels = [
        WheelBuilder::new("app", "1.0")
            .requires_dist("lib>=2")
            .requires_dist("extra-dep; extra == \"x\""),
        WheelBuilder::new("lib", "1.0"),
        WheelBuilder::new("lib", "2.0").requires_dist("leaf<2"),
        WheelBuilder::new("lib", "3.0").requires_python(">=3.12"),
        WheelBuilder::new("leaf", "1.5"),
        WheelBuilder::new("leaf", "2.0"),
        WheelBuilder::new("extra-dep", "1.0"),
    ];
    for w in &wheels {
        fs_err::write(dir.path().join(w.filename()), w.build()).unwrap();
    }
    let server = TestIndex::serve(dir.path()).unwrap();
    let client = IndexClient::new(
        PackageSources::with_index(&server.index_url()).unwrap(),
        ClientOptions::default(),
    )
    .unwrap();
    let index = IndexSource::new(&client);
    let markers = linux_311();
    let target = Target {
        markers: &markers,
        tag_priority: &cp311,
    };
    let manifest = Manifest {
        requirements: reqs(&["app[x]"]),
        ..Manifest::default()
    };
    let r = resolve(&manifest, target, &ResolveOptions::default(), &index).unwrap();
    assert_eq!(
        render(Ok(r.clone())),
        "app[x]==1.0 extra-dep==1.0 leaf==1.5 lib==2.0"
    );
    let files: BTreeSet<&str> = r
        .packages
        .iter()
        .map(|p| p.file.filename.as_str())
        .collect();
    assert!(files.contains("lib-2.0-py3-none-any.whl"), "{files:?}");
    // Every page and wheel was requested at most once, with the prefetch workers on.
    let requests = server.requests();
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for r in &requests {
        *counts.entry(r).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");

    // A package the index does not know names the index.
    let manifest = Manifest {
        requirements: reqs(&["nope"]),
        ..Manifest::default()
    };
    let e = resolve(&manifest, target, &ResolveOptions::default(), &index).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Package `nope` was not found in http://127.0.0.1:"),
        "{e}"
    );
}

/// With builds allowed, the newest version that fits is chosen even when it has only an sdist
/// (and an older one a wheel), as pip and uv choose, and the resolution names the sdist as its
/// file; without builds the older version with a wheel is chosen.
#[test]
fn builds_allowed_choose_the_newest_version_even_from_an_sdist() {
    let markers = linux_311();
    let target = Target {
        markers: &markers,
        tag_priority: &cp311,
    };
    let options = ResolveOptions {
        build_sdists: true,
        ..ResolveOptions::default()
    };
    let manifest = |r: &[&str]| Manifest {
        requirements: reqs(r),
        ..Manifest::default()
    };
    let src = source("a 1.0 !sdist -> b\nb 1.0\nc 1.0\nc 2.0 !sdist");
    let r = resolve(&manifest(&["a"]), target, &options, &src).unwrap();
    let files: Vec<&str> = r
        .packages
        .iter()
        .map(|p| p.file.filename.as_str())
        .collect();
    assert_eq!(files, ["a-1.0.tar.gz", "b-1.0-py3-none-any.whl"]);
    let r = resolve(&manifest(&["c"]), target, &options, &src).unwrap();
    assert_eq!(r.packages[0].file.filename, "c-2.0.tar.gz");
    let no_build = ResolveOptions {
        build_sdists: false,
        ..options.clone()
    };
    let r = resolve(&manifest(&["c"]), target, &no_build, &src).unwrap();
    assert_eq!(render(Ok(r)), "c==1.0");
    let r = resolve(&manifest(&["c>1"]), target, &options, &src).unwrap();
    assert_eq!(r.packages[0].file.filename, "c-2.0.tar.gz");
    // A locked version that needs a build is kept when builds are allowed.
    let mut pinned = manifest(&["c"]);
    pinned.preferences.insert(name("c"), "2.0".parse().unwrap());
    let r = resolve(&pinned, target, &options, &src).unwrap();
    assert_eq!(render(Ok(r)), "c==2.0");
}
