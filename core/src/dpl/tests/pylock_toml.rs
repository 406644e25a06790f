//! pylock.toml: a foreign multi-environment file, its typed errors, and the PEP 751 shape of what is written.
use super::*;

const FOREIGN_PYLOCK: &str = r#"
lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.9"
created-by = "some-tool"

[[packages]]
name = "numpy"
version = "2.0.0"
marker = "python_version >= '3.10'"
requires-python = ">=3.9"
index = "http://127.0.0.1:3141/simple"
wheels = [
  { name = "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl", url = "http://127.0.0.1:3141/f/a.whl", size = 100, hashes = { sha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } },
  { name = "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl", url = "http://127.0.0.1:3141/f/b.whl", hashes = { sha256 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", md5 = "00" } },
]

[[packages]]
name = "numpy"
version = "1.26.4"
marker = "python_version < '3.10'"
[[packages.wheels]]
url = "http://127.0.0.1:3141/f/numpy-1.26.4-cp39-cp39-manylinux_2_17_x86_64.whl"
hashes = { sha256 = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" }

[[packages]]
name = "Pandas"
version = "2.2.2"
dependencies = [{ name = "numpy", version = "2.0.0" }, { name = "numpy", version = "1.26.4" }]
[[packages.wheels]]
name = "pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl"
path = "wheels/pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl"
upload-time = 2024-04-10T19:45:48Z
hashes = { sha256 = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd" }

[packages.tool.other-tool]
anything = 1
"#;

/// Keeps numpy 2 (python >= 3.10) and the cp311 wheel.
struct Py311;

impl PylockSelector for Py311 {
    fn applies(&mut self, _name: &str, _version: &str, marker: Option<&str>) -> bool {
        marker.is_none_or(|m| m.contains(">="))
    }

    fn choose_wheel(&mut self, _name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        wheels.iter().position(|w| w.filename.contains("cp311"))
    }
}

#[test]
fn reads_a_foreign_multi_environment_pylock() {
    // Without a selector the two numpy entries and the two numpy wheels are ambiguous.
    assert!(matches!(
        Lock::from_pylock_str(FOREIGN_PYLOCK).unwrap_err(),
        PylockError::AmbiguousWheel { count: 2, .. }
    ));
    let lock = Lock::from_pylock_str_with(FOREIGN_PYLOCK, &mut Py311).unwrap();
    assert_eq!(lock.meta.requires_python.as_deref(), Some(">=3.9"));
    assert_eq!(lock.meta.environment, "");
    assert_eq!(lock.packages.len(), 2);
    let numpy = lock.get("numpy").unwrap();
    assert_eq!(numpy.version, "2.0.0");
    assert_eq!(numpy.wheel.sha256, [0xaa; 32]);
    assert_eq!(numpy.wheel.size, Some(100));
    assert_eq!(
        numpy.index_url.as_deref(),
        Some("http://127.0.0.1:3141/simple")
    );
    let pandas = lock.get("pandas").unwrap();
    assert_eq!(pandas.dependencies, ["numpy"]);
    assert_eq!(
        pandas.wheel.path.as_deref(),
        Some("wheels/pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl")
    );

    // It converts to a DPL and back to pylock.toml without loss of what both express.
    let bytes = build(&lock);
    let back = DplReader::from_bytes(&bytes[..])
        .unwrap()
        .to_lock()
        .unwrap();
    assert_eq!(back, canonical(&lock));
    let again = Lock::from_pylock_str(&back.to_pylock_string()).unwrap();
    assert_eq!(again, back);

    // A wheel without `name` gets its file name from the URL.
    struct Old;
    impl PylockSelector for Old {
        fn applies(&mut self, _: &str, _: &str, marker: Option<&str>) -> bool {
            marker.is_none_or(|m| m.contains('<'))
        }
    }
    let lock = Lock::from_pylock_str_with(FOREIGN_PYLOCK, &mut Old).unwrap();
    assert_eq!(
        lock.get("numpy").unwrap().wheel.filename,
        "numpy-1.26.4-cp39-cp39-manylinux_2_17_x86_64.whl"
    );
}

#[test]
fn pylock_errors_are_typed() {
    let err = |text: &str| Lock::from_pylock_str(text).unwrap_err();
    assert!(matches!(err("lock-version = "), PylockError::Toml(_)));
    assert!(matches!(
        err("created-by = 'x'\npackages = []"),
        PylockError::Missing {
            key: "lock-version",
            ..
        }
    ));
    assert!(matches!(
        err("lock-version = '2.0'\npackages = []"),
        PylockError::UnsupportedLockVersion(v) if v == "2.0"
    ));
    assert!(matches!(
        err("lock-version = '1.0'"),
        PylockError::Missing {
            key: "packages",
            ..
        }
    ));
    assert!(matches!(
        err("lock-version = '1.0'\npackages = 3"),
        PylockError::WrongType {
            key: "packages",
            ..
        }
    ));
    let one = |pkg: &str| format!("lock-version = '1.0'\n[[packages]]\n{pkg}");
    assert!(matches!(
        err(&one("name = 'a'\nversion = '1'")),
        PylockError::NoWheel(n) if n == "a"
    ));
    assert!(matches!(
        err(&one(
            "name = 'a'\nversion = '1'\n[packages.sdist]\nname = 'a-1.tar.gz'"
        )),
        PylockError::Missing { key: "hashes", .. }
    ));
    assert!(matches!(
        err(&one("name = 'a'")),
        PylockError::Missing { key: "version", .. }
    ));
    assert!(matches!(
        err(&one("name = 'a'\nversion = 1")),
        PylockError::WrongType { key: "version", .. }
    ));
    let wheel = "[[packages.wheels]]\nname = 'a-1-py3-none-any.whl'\n";
    assert!(matches!(
        err(&one(&format!(
            "name = 'a'\nversion = '1'\n{wheel}hashes = {{ md5 = '00' }}"
        ))),
        PylockError::MissingSha256 { .. }
    ));
    assert!(matches!(
        err(&one(&format!(
            "name = 'a'\nversion = '1'\n{wheel}hashes = {{ sha256 = 'xyz' }}"
        ))),
        PylockError::InvalidHash { .. }
    ));
    let sha = format!("hashes = {{ sha256 = '{}' }}\n", "0".repeat(64));
    assert!(matches!(
        err(&one(&format!(
            "name = 'a'\nversion = '1'\n{wheel}size = -1\n{sha}"
        ))),
        PylockError::WrongType { key: "size", .. }
    ));
    assert!(matches!(
        err(&one(&format!("name = 'a'\nversion = '1'\ndependencies = [{{ name = 'b' }}]\n{wheel}{sha}"))),
        PylockError::UnknownDependency { dependency, .. } if dependency == "b"
    ));
    assert!(matches!(
        err(&one(&format!("name = 'a'\nversion = '1'\n{wheel}{sha}[packages.tool.dx-py]\nextras = ['x']\nselected-extras = ['y']"))),
        PylockError::UnknownExtra { extra, .. } if extra == "y"
    ));
    let twice = format!(
        "{}\n[[packages]]\nname = 'A'\nversion = '2'\n{wheel}{sha}",
        one(&format!("name = 'a'\nversion = '1'\n{wheel}{sha}"))
    );
    assert!(matches!(err(&twice), PylockError::DuplicatePackage(_)));
    // The error names where the problem is.
    let e = err(&one("name = 'a'\nversion = 1"));
    assert_eq!(
        e.to_string(),
        "`version` in packages[0] (`a`) must be a string"
    );
}

#[test]
fn written_pylock_is_pep751_shaped() {
    let text = sample().to_pylock_string();
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    assert_eq!(doc["lock-version"].as_str(), Some("1.0"));
    assert_eq!(doc["created-by"].as_str(), Some("dx-py"));
    let packages = doc["packages"].as_array_of_tables().unwrap();
    let requests = packages
        .iter()
        .find(|p| p["name"].as_str() == Some("Requests"))
        .unwrap();
    let wheel = requests["wheels"]
        .as_array_of_tables()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(
        wheel["hashes"]["sha256"].as_str(),
        Some("07".repeat(32).as_str())
    );
    assert_eq!(wheel["size"].as_integer(), Some(1234));
    assert_eq!(
        requests["tool"]["dx-py"]["selected-extras"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        doc["tool"]["dx-py"]["environment"].as_str(),
        Some("cp311-linux_x86_64")
    );
    assert!(!text.contains("pypi"));
    // Reading back gives the same lock.
    let back = Lock::from_pylock_str(&text).unwrap();
    assert_eq!(canonical(&back), canonical(&sample()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pylock.toml");
    sample().write_pylock(&path).unwrap();
    assert_eq!(
        canonical(&Lock::read_pylock(&path).unwrap()),
        canonical(&sample())
    );
}

/// The pylock.toml writer as it was before the serde structs: built key by key with toml_edit.
/// The serde writer must give the same bytes (see `properties::pylock_writer_matches_the_hand_built_one`).
pub(super) fn hand_built_pylock(lock: &Lock) -> String {
    use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};
    let mut doc = DocumentMut::new();
    doc["lock-version"] = toml_edit::value("1.0");
    if let Some(rp) = &lock.meta.requires_python {
        doc["requires-python"] = toml_edit::value(rp.as_str());
    }
    doc["created-by"] = toml_edit::value("dx-py");
    let mut packages = ArrayOfTables::new();
    for p in &lock.packages {
        let mut t = Table::new();
        t["name"] = toml_edit::value(p.name.as_str());
        t["version"] = toml_edit::value(p.version.as_str());
        let optional = [
            ("marker", &p.marker),
            ("requires-python", &p.requires_python),
            ("index", &p.index_url),
        ];
        for (key, v) in optional {
            if let Some(v) = v {
                t[key] = toml_edit::value(v.as_str());
            }
        }
        if !p.dependencies.is_empty() {
            let mut deps = Array::new();
            for d in &p.dependencies {
                let mut r = InlineTable::new();
                r.insert("name", d.as_str().into());
                deps.push(r);
            }
            t["dependencies"] = toml_edit::value(deps);
        }
        let file = |w: &LockedWheel| {
            let mut wt = InlineTable::new();
            wt.insert("name", w.filename.as_str().into());
            for (key, v) in [("url", &w.url), ("path", &w.path)] {
                if let Some(v) = v {
                    wt.insert(key, v.as_str().into());
                }
            }
            if let Some(size) = w.size {
                wt.insert("size", i64::try_from(size).unwrap_or(i64::MAX).into());
            }
            let mut hashes = InlineTable::new();
            hashes.insert("sha256", w.sha256_hex().into());
            wt.insert("hashes", hashes.into());
            wt
        };
        match (&p.sdist, &p.local) {
            // A local archive or directory is written inline; no wheel is listed.
            (Some(sdist), Some(LocalSource::Archive)) => {
                t["archive"] = toml_edit::value(file(sdist));
            }
            (_, Some(LocalSource::Directory { path, editable })) => {
                let mut dt = InlineTable::new();
                dt.insert("path", path.as_str().into());
                dt.insert("editable", (*editable).into());
                t["directory"] = toml_edit::value(dt);
            }
            // An sdist is written inline; no wheel is listed.
            (Some(sdist), _) => t["sdist"] = toml_edit::value(file(sdist)),
            (None, _) => {
                let mut wheels = ArrayOfTables::new();
                wheels.push(file(&p.wheel).into_table());
                t["wheels"] = Item::ArrayOfTables(wheels);
            }
        }
        let mut ours = Table::new();
        if let Some(h) = &p.store_hash {
            ours["store-hash"] = toml_edit::value(h.to_hex());
        }
        if !p.extras.is_empty() {
            ours["extras"] = toml_edit::value(p.extras.iter().collect::<Array>());
        }
        if p.extras_bitmap != 0 {
            ours["selected-extras"] = toml_edit::value(p.selected_extras().collect::<Array>());
        }
        if p.sdist.is_some() || p.local.is_some() {
            ours["built-wheel"] = toml_edit::value(p.wheel.filename.as_str());
        }
        if !ours.is_empty() {
            let mut tool = Table::new();
            tool.set_implicit(true);
            tool["dx-py"] = Item::Table(ours);
            t["tool"] = Item::Table(tool);
        }
        packages.push(t);
    }
    doc["packages"] = if packages.is_empty() {
        toml_edit::value(Array::new())
    } else {
        Item::ArrayOfTables(packages)
    };
    let mut ours = Table::new();
    ours["environment"] = toml_edit::value(lock.meta.environment.as_str());
    ours["python-version"] = toml_edit::value(lock.meta.python_version.as_str());
    ours["inputs-hash"] = toml_edit::value(lock.meta.inputs_hash.to_hex());
    let mut tool = Table::new();
    tool.set_implicit(true);
    tool["dx-py"] = Item::Table(ours);
    doc["tool"] = Item::Table(tool);
    doc.to_string()
}

/// What dx-py writes, byte for byte (the serde writer must not change a byte of it).
#[test]
fn written_pylock_bytes_are_pinned() {
    assert_eq!(sample().to_pylock_string(), hand_built_pylock(&sample()));
    let empty = Lock::default();
    assert_eq!(
        empty.to_pylock_string(),
        "lock-version = \"1.0\"\ncreated-by = \"dx-py\"\npackages = []\n\n[tool.dx-py]\nenvironment = \"\"\npython-version = \"\"\ninputs-hash = \"0000000000000000000000000000000000000000000000000000000000000000\"\n"
    );
    assert_eq!(sample().to_pylock_string(), SAMPLE_PYLOCK);
}

/// `sample()` as dx-py writes it.
const SAMPLE_PYLOCK: &str = r#"lock-version = "1.0"
requires-python = ">=3.9"
created-by = "dx-py"

[[packages]]
name = "Requests"
version = "2.31.0"
marker = 'python_version >= "3.8"'
requires-python = ">=3.7"
index = "http://127.0.0.1:3141/simple/"
dependencies = [{ name = "idna" }, { name = "Charset_Normalizer" }, { name = "certifi" }]

[[packages.wheels]]
name = "Requests-2.31.0-py3-none-any.whl"
url = "http://127.0.0.1:3141/files/requests-2.31.0-py3-none-any.whl"
size = 1234
hashes = { sha256 = "0707070707070707070707070707070707070707070707070707070707070707" }

[packages.tool.dx-py]
store-hash = "cf4025cbb37217dae462d13f1aaafdb65641870ada1907a4c03a4e12d2263332"
extras = ["socks", "use_chardet_on_py3"]
selected-extras = ["socks"]

[[packages]]
name = "idna"
version = "3.7"

[[packages.wheels]]
name = "idna-3.7-py3-none-any.whl"
size = 1234
hashes = { sha256 = "0707070707070707070707070707070707070707070707070707070707070707" }

[[packages]]
name = "charset-normalizer"
version = "3.3.2"

[[packages.wheels]]
name = "charset_normalizer-3.3.2-py3-none-any.whl"
size = 1234
hashes = { sha256 = "0707070707070707070707070707070707070707070707070707070707070707" }

[[packages]]
name = "certifi"
version = "2024.2.2"

[[packages.wheels]]
name = "certifi-2024.2.2-py3-none-any.whl"
size = 1234
hashes = { sha256 = "0707070707070707070707070707070707070707070707070707070707070707" }

[tool.dx-py]
environment = "cp311-linux_x86_64"
python-version = "3.11.9"
inputs-hash = "4ef38b30ffb3de577678f8ce50bdd27db4100701977bff9a633fb57459aa2115"
"#;

/// A key of the wrong type is named with its table, at any depth; unknown keys are ignored.
#[test]
fn wrong_types_name_their_table_and_key() {
    let err = |text: &str| Lock::from_pylock_str(text).unwrap_err().to_string();
    let sha = format!("hashes = {{ sha256 = '{}' }}\n", "0".repeat(64));
    let pkg = "lock-version = '1.0'\nunknown = [1, 'x']\n[[packages]]\nname = 'a'\nversion = '1'\n";
    let wheel = "[[packages.wheels]]\nname = 'a-1-py3-none-any.whl'\n";
    let cases = [
        (
            "lock-version = '1.0'\npackages = []\n[tool.dx-py]\nenvironment = 1".to_string(),
            "`environment` in [tool.dx-py] must be a string",
        ),
        (
            "lock-version = '1.0'\npackages = []\ntool = 'x'".to_string(),
            "`tool` in the top level must be a table",
        ),
        (
            format!("{pkg}wheels = 3"),
            "`wheels` in packages[0] (`a`) must be an array of tables",
        ),
        (
            format!("{pkg}dependencies = ['b']\n{wheel}{sha}"),
            "`dependencies` in packages[0] (`a`) must be an array of tables",
        ),
        (
            format!("{pkg}{wheel}hashes = 'x'"),
            "`hashes` in packages[0] (`a`).wheels[0] must be a table",
        ),
        (
            format!("{pkg}{wheel}{sha}[packages.tool.dx-py]\nextras = [1]"),
            "`extras` in packages[0] (`a`).tool.dx-py must be an array of strings",
        ),
        (
            format!("{pkg}index = true\n{wheel}{sha}"),
            "`index` in packages[0] (`a`) must be a string",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(err(&text), message, "{text}");
    }
    // Other tools' keys and tables, at any level, are not read.
    let ok = format!(
        "{pkg}sdist = {{ name = 'a-1.tar.gz' }}\n[packages.tool.other]\nx = 1\n{wheel}upload-time = 2024-04-10T19:45:48Z\n{sha}\n[tool.other]\ny = [{{ z = 1 }}]"
    );
    assert_eq!(Lock::from_pylock_str(&ok).unwrap().packages.len(), 1);
}
