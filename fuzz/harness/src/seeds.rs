//! Valid inputs for every target, made by dx-py's own writers (and the wheel builder its tests
//! use), so that a fuzzer starts past the magic bytes, headers and checksums.
use std::path::Path;

use dx_py_core::dpl::{DplBuilder, Lock, LockMeta, LockedPackage, LockedWheel};
use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use dx_py_core::hash::ContentHash;
use dx_py_core::layout::{LayoutEntry, LinkMode, ProjectHash, encode_index};
use dx_py_core::requirements::Requirements;
use dx_py_core::store::PackageStore;
use dx_py_core::tree::{PackPlacement, SyntheticFile, TreeSpec};
use dx_py_core::wheel::convert_wheel;
use dx_py_core::wheel::testing::WheelBuilder;

use crate::wheel::WHEEL_NAMES;

/// One starting input of a target.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The target (a name in [`crate::TARGETS`]).
    pub target: &'static str,
    /// The file name in the corpus.
    pub name: String,
    /// The input, mode byte included for the targets that take one.
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: &str, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name: name.to_string(),
        bytes: bytes.into(),
    }
}

/// The input with a mode byte in front.
fn moded(mode: u8, bytes: &[u8]) -> Vec<u8> {
    [&[mode][..], bytes].concat()
}

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A few packages with extras, markers, URLs and dependencies, as `dx-py lock` makes them.
pub(crate) fn sample_lock() -> Lock {
    let package = |name: &str, version: &str, deps: &[&str]| LockedPackage {
        name: name.to_string(),
        version: version.to_string(),
        marker: None,
        requires_python: None,
        index_url: Some("http://127.0.0.1:3141/simple/".to_string()),
        extras: Vec::new(),
        extras_bitmap: 0,
        wheel: LockedWheel {
            filename: format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
            url: Some(format!("http://127.0.0.1:3141/files/{name}.whl")),
            path: None,
            sha256: [7; 32],
            size: Some(1234),
        },
        sdist: None,
        local: None,
        store_hash: None,
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
    };
    let mut requests = package("Requests", "2.31.0", &["idna", "Charset_Normalizer"]);
    requests.extras = vec!["socks".into(), "use_chardet_on_py3".into()];
    requests.extras_bitmap = 0b01;
    requests.marker = Some("python_version >= \"3.8\"".into());
    requests.requires_python = Some(">=3.7".into());
    requests.store_hash = Some(ContentHash::of(b"requests"));
    let mut local = package("local-pkg", "0.1", &[]);
    local.wheel.url = None;
    local.wheel.path = Some("wheels/local_pkg-0.1-py3-none-any.whl".into());
    Lock {
        meta: LockMeta {
            environment: "cp312-manylinux_2_17_x86_64".into(),
            python_version: "3.12.1".into(),
            requires_python: Some(">=3.10, !=3.11.0".into()),
            inputs_hash: ContentHash::of(b"fuzz seed inputs"),
        },
        packages: vec![
            requests,
            package("idna", "3.7", &[]),
            package("charset-normalizer", "3.3.2", &[]),
            local,
        ],
    }
}

/// One wheel per name in [`WHEEL_NAMES`], with files of every scheme, scripts and a symlink.
pub(crate) fn sample_wheels() -> Vec<(&'static str, Vec<u8>)> {
    let builders = [
        WheelBuilder::new("demo", "1.0"),
        WheelBuilder::new("demo", "1.0").tag("cp311-cp311-linux_x86_64"),
        WheelBuilder::new("demo", "1.0")
            .build_tag("1")
            .tag("py2.py3-none-any"),
        WheelBuilder::new("Demo-Pkg", "2.0rc1"),
    ];
    WHEEL_NAMES
        .iter()
        .zip(builders)
        .map(|(&name, b)| {
            let b = b
                .file("demo/__init__.py", b"from .core import run\n")
                .file("demo/core.py", b"def run():\n    return 1\n")
                .symlink("demo/alias.py", "core.py")
                .data_file("scripts", "demo-sh", b"#!python\nprint('hi')\n")
                .data_file("headers", "demo.h", b"#define DEMO 1\n")
                .data_file("data", "share/demo.txt", b"data\n")
                .dist_info_file("LICENSE", b"MIT\n")
                .console_script("demo", "demo.core:run")
                .requires_dist("idna>=3; extra == 'net'")
                .provides_extra("net")
                .requires_python(">=3.8");
            assert_eq!(b.filename(), name, "WHEEL_NAMES and the builders agree");
            (name, b.build())
        })
        .collect()
}

fn sample_dxpkg() -> Vec<u8> {
    let mut w = DxpkgWriter::new("pkg", "1.0", "pkg-1.0.dist-info");
    for (p, d) in [("pkg/__init__.py", &b"x = 1\n"[..]), ("pkg/a.py", b"")] {
        w.add(Scheme::SitePackages, p, EntryKind::File, 0o644, d.to_vec());
    }
    w.add(
        Scheme::Scripts,
        "run",
        EntryKind::File,
        0o755,
        b"#!".to_vec(),
    );
    w.finish().expect("sample package")
}

/// A venv tree of two stored packages, synthetic files and a symlink, as `dx-py mount` builds it.
fn sample_tree(packages: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = PackageStore::open(dir.path());
    let spec = TreeSpec {
        packs: packages
            .iter()
            .map(|p| {
                let hash = store.store(p).expect("store a sample package");
                (
                    hash,
                    PackPlacement::venv(&dx_py_core::python::VenvShape::posix(3, 11), "demo"),
                )
            })
            .collect(),
        files: vec![SyntheticFile {
            path: "pyvenv.cfg".to_string(),
            bytes: b"home = /usr/bin\n".to_vec(),
            mode: 0o644,
        }],
        symlinks: vec![("bin/python".to_string(), "/usr/bin/python3.11".to_string())],
    };
    spec.build(&store).expect("sample tree")
}

fn sample_index() -> Vec<u8> {
    let entries: Vec<_> = (0..5u8)
        .map(|i| {
            let mut e = LayoutEntry::new(
                ProjectHash::from_bytes([i.wrapping_mul(37); 32]),
                "cp311-linux_x86_64",
                (3, 11),
            );
            e.created = 1_700_000_000 + u64::from(i);
            e.used = e.created + 60;
            e.total_bytes = 1 << 20;
            e.package_count = u32::from(i) + 1;
            e.file_count = 10 * u32::from(i);
            e.link_mode =
                [LinkMode::Hardlink, LinkMode::Symlink, LinkMode::Copy][usize::from(i) % 3];
            e
        })
        .collect();
    encode_index(&entries, 16, 3, 1_700_000_100).expect("sample index")
}

fn simple_html() -> String {
    format!(
        r#"<!DOCTYPE html><html><head><base href="https://idx.invalid/simple/demo/"></head><body>
<a href="../../files/demo-1.0-py3-none-any.whl#sha256={HEX}" data-requires-python="&gt;=3.8">demo-1.0-py3-none-any.whl</a><br/>
<a href="https://cdn.invalid/demo-1.0.tar.gz" data-yanked="bad &amp; old">demo-1.0.tar.gz</a>
<a href="/abs/demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl">demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl</a>
<!-- <a href="x-1.0.tar.gz"> --></body></html>"#
    )
}

fn simple_json() -> String {
    format!(
        r#"{{"meta": {{"api-version": "1.1"}}, "name": "demo", "files": [
{{"filename": "demo-1.0-py3-none-any.whl", "url": "../../files/demo-1.0-py3-none-any.whl", "hashes": {{"sha256": "{HEX}"}}, "requires-python": ">=3.8", "yanked": false, "size": 12}},
{{"filename": "demo-1.0.tar.gz", "url": "https://cdn.invalid/demo-1.0.tar.gz#sha256={HEX}", "hashes": {{}}, "yanked": "reason"}},
{{"filename": "demo-1.0-1-cp311-abi3-win_amd64.whl", "url": "file:///srv/demo-1.0-1-cp311-abi3-win_amd64.whl", "yanked": true}}]}}"#
    )
}

fn requirements_txt() -> String {
    format!(
        "# pinned by hand\n--index-url http://127.0.0.1:3141/simple/\n--extra-index-url https://idx.invalid/simple\n\
         -f ./wheels\n-r base.txt\nrequests[socks,security]==2.31.0 ; python_version >= \"3.8\" \\\n    \
         --hash=sha256:{HEX}\nidna===3.7 --hash sha256:{HEX}\nzope.interface==6.0 ; sys_platform == 'linux' --hash=sha256:{HEX}\n\
         base-pkg==1.0 --hash=sha256:{HEX}\n"
    )
}

const PIP_CONF: &str = "\u{feff}# user settings\n[global]\nindex-url = http://127.0.0.1:3141/simple\n\
extra-index-url =\n    https://idx.invalid/a\n    https://idx.invalid/b\ncert: ~/ca.pem\n\n\
[install]\nfind_links = /opt/wheels file:///opt/more\nno-index = off\n; done\n";

const UV_TOML: &str = "index-url = \"http://127.0.0.1:3141/simple\"\n\
extra-index-url = [\"https://idx.invalid/a\"]\nfind-links = [\"/opt/wheels\"]\nno-index = false\n\n\
[pip]\nindex-url = \"https://idx.invalid/pip\"\n\n[[index]]\nurl = \"https://idx.invalid/default\"\n\
default = true\n\n[[index]]\nurl = \"https://idx.invalid/extra\"\n\n[[index]]\nurl = \"https://idx.invalid/x\"\nexplicit = true\n";

/// A universal lock: one name at two versions under complementary markers, several wheels, an
/// sdist, a dependency on both versions.
fn sample_universal_lock() -> dx_py_core::dpl::UniversalLock {
    let file = |filename: &str, seed: u8| LockedWheel {
        filename: filename.to_owned(),
        url: Some(format!("http://127.0.0.1:3141/files/{filename}")),
        path: None,
        sha256: [seed; 32],
        size: Some(1000 + u64::from(seed)),
    };
    let entry = |name: &str, version: &str, marker: Option<&str>, wheels: Vec<LockedWheel>| {
        dx_py_core::dpl::UniversalLockedPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            marker: marker.map(str::to_owned),
            requires_python: Some(">=3.9".into()),
            index_url: Some("http://127.0.0.1:3141/simple/".into()),
            dependencies: Vec::new(),
            wheels,
            sdist: None,
            local: None,
        }
    };
    let mut app = entry(
        "app",
        "1.0",
        None,
        vec![file("app-1.0-py3-none-any.whl", 1)],
    );
    app.dependencies = vec!["lib".into()];
    let mut old = entry(
        "lib",
        "1.0",
        Some("python_full_version < '3.10'"),
        vec![
            file("lib-1.0-cp39-cp39-manylinux_2_17_x86_64.whl", 2),
            file("lib-1.0-cp39-cp39-win_amd64.whl", 3),
        ],
    );
    old.sdist = Some(file("lib-1.0.tar.gz", 4));
    let new = entry(
        "lib",
        "2.0",
        Some("python_full_version >= '3.10'"),
        vec![file("lib-2.0-py3-none-any.whl", 5)],
    );
    dx_py_core::dpl::UniversalLock {
        requires_python: Some(">=3.9".into()),
        environments: vec!["sys_platform != 'emscripten'".into()],
        inputs_hash: dx_py_core::hash::ContentHash::of(b"universal"),
        packages: vec![app, old, new],
    }
}

/// Every seed of every target.
pub fn seeds() -> Vec<Seed> {
    let dpl = DplBuilder::from_lock(&sample_lock())
        .to_bytes()
        .expect("sample lock builds");
    let universal = sample_universal_lock()
        .dpl_bytes()
        .expect("sample universal lock builds");
    let wheels = sample_wheels();
    let converted: Vec<Vec<u8>> = wheels
        .iter()
        .map(|(name, bytes)| {
            convert_wheel(name, bytes)
                .expect("sample wheel converts")
                .dxpkg
        })
        .collect();
    let tree = sample_tree(&[converted[0].clone(), sample_dxpkg()]);
    let index = sample_index();
    let empty_index = encode_index(&[], 16, 0, 0).expect("empty index");
    let (_dir, _, thin) = crate::binary::thin_store();
    let req = requirements_txt();
    let written = Requirements::parse_str(&req, &crate::text::requirements_path())
        .expect("sample requirements parse")
        .to_requirements_txt();
    let mut out = vec![
        seed("dpl_reader", "seed", moded(0, &dpl)),
        seed("dpl_reader", "seed-forged", moded(1, &dpl)),
        seed("dpl_reader", "seed-v2", moded(0, &universal)),
        seed("dpl_reader", "seed-v2-forged", moded(1, &universal)),
        seed("dxpkg_reader", "seed", sample_dxpkg()),
        seed("dxpkg_reader", "seed-wheel", converted[1].clone()),
        seed("thin_reader", "seed", moded(0, &thin)),
        seed("thin_reader", "seed-forged", moded(1, &thin)),
        seed("tree_reader", "seed", moded(0, &tree)),
        seed("tree_reader", "seed-forged", moded(1, &tree)),
        seed("layout_index", "seed", moded(0, &index)),
        seed("layout_index", "seed-forged", moded(1, &index)),
        seed("layout_index", "seed-empty", moded(1, &empty_index)),
        seed(
            "simple_page",
            "seed-html",
            moded(0, simple_html().as_bytes()),
        ),
        seed(
            "simple_page",
            "seed-html-typed",
            moded(2, simple_html().as_bytes()),
        ),
        seed(
            "simple_page",
            "seed-json",
            moded(1, simple_json().as_bytes()),
        ),
        seed(
            "simple_page",
            "seed-json-sniffed",
            moded(0, simple_json().as_bytes()),
        ),
        seed("requirements", "seed", req),
        seed("requirements", "seed-written", written),
        seed("pylock", "seed", sample_lock().to_pylock_string()),
        seed("pip_conf", "seed", PIP_CONF),
        seed("uv_toml", "seed", UV_TOML),
    ];
    for (i, (_, bytes)) in wheels.iter().enumerate() {
        out.push(seed("wheel", &format!("seed-{i}"), moded(i as u8, bytes)));
    }
    out
}

/// Writes every seed to `{dir}/{target}/{name}`, the corpus layout `cargo fuzz run` reads.
pub fn write_seed_corpus(dir: &Path) -> std::io::Result<()> {
    for s in seeds() {
        std::fs::create_dir_all(dir.join(s.target))?;
        std::fs::write(dir.join(s.target).join(&s.name), &s.bytes)?;
    }
    Ok(())
}
