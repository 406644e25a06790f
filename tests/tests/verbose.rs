//! `-v` end to end: the real binary on a cold cache against the local test index says what it
//! fetched and cached, and times every phase so that the phases add up to the command's time.
use std::process::Output;
use std::time::{Duration, Instant};

use dx_py_core::testing::TestIndex;
use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{TestContext, assert_success, printed, venv_python, write_wheels};

/// Three packages: `top` needs `mid`, which needs `leaf`.
fn index(cx: &TestContext) -> TestIndex {
    let wheels = write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("top", "1.0")
                .file("top.py", b"import mid\n")
                .requires_dist("mid>=1"),
            WheelBuilder::new("mid", "1.0")
                .file("mid.py", b"import leaf\n")
                .requires_dist("leaf"),
            WheelBuilder::new("mid", "2.0")
                .file("mid.py", b"import leaf\n")
                .requires_dist("leaf"),
            WheelBuilder::new("leaf", "1.0").file("leaf.py", b""),
        ],
    );
    TestIndex::serve(&wheels).unwrap()
}

/// Runs `dx-py -v ARGS` on the index, asserting success; the output and the wall time.
fn run_verbose(cx: &TestContext, index: &TestIndex, args: &[&str]) -> (String, Duration) {
    let start = Instant::now();
    let out: Output = cx
        .dx_py()
        .arg("-v")
        .args(args)
        .args(["--index-url", &index.index_url()])
        .output()
        .expect("run dx-py");
    let wall = start.elapsed();
    assert_success(&out, &format!("dx-py -v {}", args.join(" ")));
    (printed(&out), wall)
}

/// The timings `-v` printed: each phase with its milliseconds, `other` and `total` included.
fn timings(out: &str) -> Vec<(String, f64)> {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.starts_with("Timings"))
        .skip(1);
    let mut phases = Vec::new();
    for line in lines.by_ref() {
        let Some(ms) = line.trim().strip_suffix(" ms") else {
            break;
        };
        let (name, value) = ms.rsplit_once(' ').expect("`name value ms`");
        phases.push((
            name.trim().to_string(),
            value.parse().expect("milliseconds"),
        ));
    }
    assert!(!phases.is_empty(), "no timings in:\n{out}");
    phases
}

/// Checks that the report names the phases `wanted`, that the phases and `other` add up to
/// `total`, and `total` to about the process's wall time as the test measured it (never more).
fn check_report(out: &str, wall: Duration, wanted: &[&str]) {
    let phases = timings(out);
    let (total_name, total) = phases.last().unwrap().clone();
    assert_eq!(total_name, "total", "{out}");
    let sum: f64 = phases[..phases.len() - 1].iter().map(|(_, ms)| ms).sum();
    // Each value is rounded to 0.1 ms.
    let rounding = 0.05 * phases.len() as f64;
    assert!(
        (sum - total).abs() <= rounding,
        "sum {sum} != total {total}:\n{out}"
    );
    let wall_ms = wall.as_secs_f64() * 1e3;
    assert!(
        total <= wall_ms,
        "total {total} ms > process {wall_ms} ms:\n{out}"
    );
    // What the timeline cannot see: exec and loading before `main`, exit after the report
    // (bounds loose enough for a loaded 2-core machine, where a process may wait seconds for
    // a CPU; they catch a timeline that misses a whole phase).
    assert!(
        wall_ms - total < 2_000.0 || total > 0.25 * wall_ms,
        "total {total} ms of a {wall_ms} ms process:\n{out}"
    );
    let other = phases.iter().find(|(n, _)| n == "other").unwrap().1;
    assert!(
        other < 0.5 * total.max(1.0) + 50.0,
        "`other` {other} ms:\n{out}"
    );
    for w in wanted {
        assert!(
            phases.iter().any(|(n, _)| n == w),
            "no phase `{w}` in:\n{out}"
        );
    }
}

#[test]
fn a_cold_pinned_install_times_every_phase_and_counts_its_downloads() {
    let cx = TestContext::new();
    let index = index(&cx);
    std::fs::write(
        cx.project().join("pinned.txt"),
        "top==1.0\nmid==2.0\nleaf==1.0\n",
    )
    .unwrap();
    let (out, wall) = run_verbose(&cx, &index, &["install", "-r", "pinned.txt"]);
    check_report(
        &out,
        wall,
        &[
            "startup",
            "python",
            "inputs",
            "index pages",
            "download+store",
            "write lock",
            "venv",
            "layout",
            "link",
        ],
    );
    assert!(
        out.contains("pages: 3 fetched, 0 revalidated, 0 cached"),
        "{out}"
    );
    assert!(out.contains("downloads: 3 ("), "{out}");
    venv_python(&cx.project().join(".venv"), "import top");

    // Again, into a new venv: the lock made above is fresh, so no request at all.
    let (out, wall) = run_verbose(
        &cx,
        &index,
        &["install", "-r", "pinned.txt", "--venv", "other"],
    );
    check_report(&out, wall, &["startup", "inputs", "link"]);
    assert!(
        out.contains("pages: 0 fetched, 0 revalidated, 0 cached"),
        "{out}"
    );
    assert!(out.contains("downloads: 0 ("), "{out}");
}

#[test]
fn a_cold_resolution_counts_pages_and_metadata_and_times_the_solver() {
    let cx = TestContext::new();
    let index = index(&cx);
    std::fs::write(cx.project().join("unpinned.in"), "top\n").unwrap();
    let (out, wall) = run_verbose(&cx, &index, &["lock", "-r", "unpinned.in"]);
    check_report(
        &out,
        wall,
        &[
            "startup",
            "python",
            "inputs",
            "resolve",
            "lock files",
            "write lock",
        ],
    );
    assert!(out.contains("pages: 3 fetched"), "{out}");
    assert!(out.contains("metadata: 3 fetched, 0 cached"), "{out}");
    // Resolution reads metadata only: no wheel is downloaded.
    assert!(out.contains("downloads: 0 ("), "{out}");

    // `install -r` of the same file, in another cold cache: resolved, then three downloads.
    let cx = TestContext::new();
    std::fs::write(cx.project().join("unpinned.in"), "top\n").unwrap();
    let (out, wall) = run_verbose(&cx, &index, &["install", "-r", "unpinned.in"]);
    check_report(
        &out,
        wall,
        &[
            "resolve",
            "lock files",
            "fetch",
            "bytecode",
            "layout",
            "link",
        ],
    );
    assert!(out.contains("downloads: 3 ("), "{out}");
    venv_python(&cx.project().join(".venv"), "import top");
}
