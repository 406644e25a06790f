//! Shared helpers for the end-to-end suites: a per-test context with its own cache, the `dx-py`
//! binary, and real wheels fetched once with `pip download` into `target/wheel-cache/`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Tests that need what a machine may lack check it first and say what they skip (see
/// `dx_py_core::testing`; `DX_PY_TEST_REQUIRE_ALL=1` makes a skip fail).
pub use dx_py_core::testing::{can_run, on_path, root, skip};

/// Whether `dx-py mount` can mount here (the checks it makes itself: `/dev/fuse`, and root or
/// `fusermount3`); where it cannot, prints what the calling test skips and why.
#[cfg(target_os = "linux")]
pub fn can_mount() -> bool {
    can_run(dx_py_fs_linux::serve::preflight(
        &dx_py_fs_linux::serve::MountOptions::default(),
    ))
}

/// The `dx-py` binary next to the test executables (`target/<profile>/dx-py`).
pub fn dx_py_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DX_PY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(format!("dx-py{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test --workspace` (it builds the binary)",
        bin.display()
    );
    bin
}

/// `target/` of the workspace, where downloaded wheels are cached between runs.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The interpreter the tests use: `$DX_PY_TEST_PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("DX_PY_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A second CPython from pyenv (3.12, else 3.10), for tests where the interpreter matters.
pub fn other_python() -> Option<PathBuf> {
    ["3.12", "3.10"].into_iter().find_map(pyenv_python)
}

/// The newest CPython `minor` (`3.9`) that pyenv has on this machine, if any.
pub fn pyenv_python(minor: &str) -> Option<PathBuf> {
    let versions = Path::new(&std::env::var_os("HOME")?).join(".pyenv/versions");
    let mut found: Vec<PathBuf> = std::fs::read_dir(versions)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{minor}."))
        })
        .map(|e| e.path().join("bin").join(format!("python{minor}")))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The test interpreter's real path (`sys.executable` of [`python`]), so that a command run
/// with another `HOME` still finds it without pyenv's shims.
pub fn python_executable() -> PathBuf {
    let out = run_python(Path::new(&python()), "import sys; print(sys.executable)");
    assert_success(&out, "python: sys.executable");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Why the index the machine's pip uses cannot be reached.
#[derive(Debug)]
pub struct PipIndexUnreachable(String);

impl std::fmt::Display for PipIndexUnreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "it needs the index this machine's pip uses: {}", self.0)
    }
}

/// The default index of the test interpreter's pip (asked from pip's own model at run time, as
/// dx-py does), once a TCP connection to its host succeeds within five seconds.
pub fn pip_default_index_reachable() -> Result<String, PipIndexUnreachable> {
    let out = run_python(
        Path::new(&python()),
        "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
    );
    if !out.status.success() {
        return Err(PipIndexUnreachable(
            "the test interpreter has no pip".to_string(),
        ));
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = if authority.contains(':') {
        authority.to_string()
    } else if url.starts_with("http://") {
        format!("{authority}:80")
    } else {
        format!("{authority}:443")
    };
    let unreachable = |why: String| PipIndexUnreachable(format!("`{url}` is unreachable ({why})"));
    let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    let timeout = std::time::Duration::from_secs(5);
    let mut last = "no address".to_string();
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(url),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
}

/// One test's world: a temp dir holding the cache, a project dir and venvs.
pub struct TestContext {
    /// Owns the directory; removed on drop.
    pub temp: tempfile::TempDir,
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    /// A fresh context.
    pub fn new() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("dx-py-e2e-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(temp.path().join("project")).unwrap();
        Self { temp }
    }

    /// The cache root this context's commands use.
    pub fn cache_dir(&self) -> PathBuf {
        self.temp.path().join("cache")
    }

    /// The project directory (the working directory of commands).
    pub fn project(&self) -> PathBuf {
        self.temp.path().join("project")
    }

    /// A `dx-py` command with this context's cache, run in the project directory.
    pub fn dx_py(&self) -> Command {
        let mut cmd = Command::new(dx_py_bin());
        cmd.current_dir(self.project())
            .env("DX_PY_CACHE_DIR", self.cache_dir())
            .env_remove("DX_PY_STORE")
            .env_remove("DX_PY_INDEX_URL")
            .env("NO_COLOR", "1");
        cmd
    }

    /// A `dx-py` command that sees no index configuration at all: no `PIP_*`, `UV_*` or
    /// `DX_PY_*` variables but the context's cache, and `HOME` and `XDG_CONFIG_HOME` in an empty
    /// directory, so that no user pip.conf or uv.toml is read.
    pub fn dx_py_unconfigured(&self) -> Command {
        let mut cmd = self.dx_py();
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if ["PIP_", "UV_", "DX_PY_"].iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(&*key);
            }
        }
        let home = self.temp.path().join("empty-home");
        std::fs::create_dir_all(&home).unwrap();
        cmd.env("DX_PY_CACHE_DIR", self.cache_dir())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"));
        cmd
    }

    /// `dx-py install -v -r requirements.txt --venv .venv` of `reqs` (written into `dir`,
    /// made), against the index at `url`, with `more` arguments.
    pub fn install_requirements(&self, dir: &Path, reqs: &str, url: &str, more: &[&str]) -> Output {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("requirements.txt"), reqs).unwrap();
        self.dx_py()
            .current_dir(dir)
            .args([
                "install",
                "-v",
                "-r",
                "requirements.txt",
                "--index-url",
                url,
            ])
            .args(["--venv", ".venv"])
            .args(more)
            .output()
            .expect("run dx-py")
    }

    /// Runs `dx-py ARGS`, asserting success; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.dx_py().args(args).output().expect("run dx-py");
        assert_success(&out, &format!("dx-py {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `dx-py ARGS`, asserting failure with exit code `code`; returns stderr.
    pub fn run_err(&self, args: &[&str], code: i32) -> String {
        let out = self.dx_py().args(args).output().expect("run dx-py");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "dx-py {}: stderr:\n{stderr}",
            args.join(" ")
        );
        assert!(!stderr.contains("panicked"), "dx-py panicked:\n{stderr}");
        stderr
    }
}

/// Panics with both streams when a command failed.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything a command printed, stdout then stderr.
pub fn printed(out: &Output) -> String {
    String::from_utf8_lossy(&[out.stdout.as_slice(), &out.stderr].concat()).into_owned()
}

/// Asserts that a command printed `text` (on either stream).
pub fn assert_printed(out: &Output, text: &str) {
    let all = printed(out);
    assert!(all.contains(text), "expected {text:?} in:\n{all}");
}

/// Runs `python -c CODE` with the interpreter at `python`, bytecode writing as the caller means it.
pub fn run_python(python: &Path, code: &str) -> Output {
    Command::new(python)
        .args(["-c", code])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .output()
        .expect("run python")
}

/// Real wheels for `requirements` (pinned), downloaded once with `pip download` into
/// `target/wheel-cache/<name>/` and reused; `None` when the registry is unreachable.
pub fn fetch_wheels(name: &str, requirements: &[&str]) -> Option<PathBuf> {
    let dir = target_dir().join("wheel-cache").join(name);
    let done = dir.join(".complete");
    if done.is_file() {
        return Some(dir);
    }
    std::fs::create_dir_all(&dir).ok()?;
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
        ])
        .arg(&dir)
        .args(requirements)
        .env("PIP_FIND_LINKS", "")
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    std::fs::write(&done, requirements.join("\n")).ok()?;
    Some(dir)
}

/// `name==version` lines for every wheel in `dir` (the closure `pip download` fetched).
pub fn pins_for(dir: &Path) -> String {
    let mut pins: Vec<String> = std::fs::read_dir(dir)
        .expect("wheel dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let w = dx_py_core::wheel::WheelFilename::parse(&name).ok()?;
            Some(format!("{}=={}", w.name, w.version))
        })
        .collect();
    pins.sort();
    pins.join("\n") + "\n"
}

/// Writes synthetic wheels into `dir` and returns it.
pub fn write_wheels(dir: &Path, wheels: &[dx_py_core::wheel::testing::WheelBuilder]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for w in wheels {
        std::fs::write(dir.join(w.filename()), w.build()).unwrap();
    }
    dir.to_path_buf()
}

/// Runs the venv's python with `code`, writing no bytecode, and returns stdout (asserting success).
pub fn venv_python(venv: &Path, code: &str) -> String {
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", code])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .expect("run venv python");
    assert_success(&out, &format!("{}/bin/python -c {code}", venv.display()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lib/pythonX.Y/site-packages` of `venv`: its own directory.
pub fn venv_site_packages(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    let py = std::fs::read_dir(&lib)
        .expect("lib/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("python"))
        .expect("lib/pythonX.Y");
    lib.join(py).join("site-packages")
}

/// The shared layout's `site-packages` that `venv`'s `.pth` file adds to `sys.path`.
pub fn layout_site_packages(venv: &Path) -> PathBuf {
    let sp = venv_site_packages(venv);
    let py = sp.parent().unwrap().file_name().unwrap().to_string_lossy();
    let (major, minor) = py["python".len()..].split_once('.').expect("pythonX.Y");
    let version = (major.parse().unwrap(), minor.parse().unwrap());
    dx_py_core::layout::venv_layout(venv, version)
        .expect("a dx-py layout marker")
        .layout
        .join("site-packages")
}

/// Every file under `root` (following the tree, not symlinked directories' targets) with its
/// bytes, and every symlink with its target.
pub fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The sha256 digests of a wheel's RECORD rows, by path.
pub fn wheel_record(wheel: &Path) -> BTreeMap<String, Vec<u8>> {
    use dx_py_core::wheel::{RecordHashAlgorithm, parse_record};
    let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel).unwrap()).unwrap();
    let name = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .find(|n| n.ends_with(".dist-info/RECORD"))
        .expect("a RECORD");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(&name).unwrap(), &mut bytes).unwrap();
    parse_record(&bytes)
        .unwrap()
        .into_iter()
        .filter_map(|row| {
            let hash = row.hash?;
            assert_eq!(hash.algorithm, RecordHashAlgorithm::Sha256);
            Some((row.path, hash.digest))
        })
        .collect()
}

/// Checks a package's files as a venv holds them (`files`: site-packages paths starting with
/// `prefix`, with their bytes) against its wheel's RECORD: every file RECORD lists under
/// `prefix` has its bytes, every source has bytecode for `tag` (the wheel's own pyc where it
/// ships one, else dx-py's unchecked-hash one), and nothing else was added. Returns (compiled
/// pycs, shipped pycs for `tag`). `what` names the venv in messages.
pub fn check_bytecode(
    files: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
    record: &BTreeMap<String, Vec<u8>>,
    tag: &str,
    what: &str,
) -> (usize, usize) {
    use sha2::Digest;
    for (path, digest) in record.iter().filter(|(p, _)| p.starts_with(prefix)) {
        let bytes = files
            .get(path)
            .unwrap_or_else(|| panic!("{what}: `{path}` of RECORD is missing"));
        assert_eq!(
            sha2::Sha256::digest(bytes).as_slice(),
            digest.as_slice(),
            "{what}: `{path}` differs from RECORD"
        );
    }
    let (mut compiled, mut shipped) = (0, 0);
    for source in files.keys().filter(|p| p.ends_with(".py")) {
        let stem = source.strip_suffix(".py").unwrap();
        let pyc = match stem.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/__pycache__/{name}.{tag}.pyc"),
            None => format!("__pycache__/{stem}.{tag}.pyc"),
        };
        let bytes = files
            .get(&pyc)
            .unwrap_or_else(|| panic!("{what}: `{source}` has no bytecode"));
        if record.contains_key(&pyc) {
            shipped += 1;
        } else {
            // PEP 552 flags: 0b01 = hash-based, unchecked.
            assert_eq!(
                bytes[4..8],
                [1, 0, 0, 0],
                "{what}: `{pyc}` is not unchecked-hash"
            );
            compiled += 1;
        }
    }
    let added: Vec<&String> = files.keys().filter(|p| !record.contains_key(*p)).collect();
    assert_eq!(added.len(), compiled, "{what}: added files {added:?}");
    (compiled, shipped)
}

/// The bytecode cache tag of the test interpreter ([`python`]), e.g. `cpython-311` (asked once
/// per test process).
pub fn cache_tag() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let out = run_python(
            Path::new(&python()),
            "import sys; print(sys.implementation.cache_tag)",
        );
        assert_success(&out, "python: sys.implementation.cache_tag");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
    .clone()
}

/// The files of the top-level directory `top` of `site_packages`, keyed by their
/// site-packages path (`top/…`, as RECORD names them), with their bytes.
pub fn package_files(site_packages: &Path, top: &str) -> BTreeMap<String, Vec<u8>> {
    snapshot(&site_packages.join(top))
        .into_iter()
        .map(|(rel, bytes)| (format!("{top}/{rel}"), bytes))
        .collect()
}

/// The one `.whl` file in `dir` whose name starts with `prefix`.
pub fn wheel_file(dir: &Path, prefix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("wheel dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".whl")
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{prefix}*.whl in {}: {found:?}",
        dir.display()
    );
    found.pop().unwrap()
}

/// Installs the wheels in `dir` (all of them pinned) into `venv` with find-links only; returns
/// what the command printed on stderr.
pub fn install_dir(cx: &TestContext, dir: &Path, venv: &str) -> String {
    std::fs::write(cx.project().join("requirements.txt"), pins_for(dir)).unwrap();
    let out = install_from(cx, dir, venv);
    assert_success(&out, "dx-py install");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `dx-py install -r requirements.txt` (the project's own file) into `venv` with the
/// wheels of `dir` only, whatever its outcome.
pub fn install_from(cx: &TestContext, dir: &Path, venv: &str) -> Output {
    cx.dx_py()
        .args([
            "install",
            "-r",
            "requirements.txt",
            "--no-index",
            "--find-links",
        ])
        .arg(dir)
        .args(["--venv", venv])
        .output()
        .unwrap()
}

/// Checks a whole `site-packages` (a venv's layout, or a mounted venv's) against the wheels it
/// was installed from: every file of every wheel's RECORD has its bytes, every source has its
/// bytecode for [`cache_tag`] (see [`check_bytecode`]), and nothing else is there but the
/// `.dist-info` files an installer writes (`RECORD`, `INSTALLER`). Files of `.data/` schemes
/// other than the site-packages ones are not looked at. `what` names the venv in messages.
pub fn check_site_packages(site_packages: &Path, wheels: &[PathBuf], what: &str) {
    let mut record = BTreeMap::new();
    for wheel in wheels {
        record.extend(
            wheel_record(wheel)
                .into_iter()
                .filter(|(path, _)| !path.split('/').next().unwrap().ends_with(".data")),
        );
    }
    let mut files = snapshot(site_packages);
    files.retain(|path, _| {
        let installer_file = path.rsplit_once('/').is_some_and(|(dir, name)| {
            dir.ends_with(".dist-info")
                && !dir.contains('/')
                && matches!(name, "RECORD" | "INSTALLER")
        });
        !installer_file
    });
    check_bytecode(&files, "", &record, &cache_tag(), what);
}

/// The uv release the interoperability tests read the files of (locks it writes, venvs it reads).
pub const UV_VERSION: &str = "0.13.10";

/// A `uv` binary for interoperability tests: `$DX_PY_TEST_UV`, else uv [`UV_VERSION`] installed
/// once with pip into `target/test-tools/` (it comes from the registry pip uses, like the
/// wheels of [`fetch_wheels`]); `None`, after saying what is skipped, when neither works.
pub fn uv() -> Option<PathBuf> {
    static UV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let found = UV.get_or_init(|| {
        if let Some(given) = std::env::var_os("DX_PY_TEST_UV") {
            return Some(PathBuf::from(given));
        }
        let tools = target_dir().join("test-tools");
        let uv = tools.join(format!("uv-{UV_VERSION}"));
        if uv.is_file() {
            return Some(uv);
        }
        std::fs::create_dir_all(&tools).ok()?;
        // Installed into a venv of its own, then the binary (which needs nothing of the venv)
        // is renamed into place, so that concurrent test processes never see half of it.
        let venv = tempfile::tempdir_in(&tools).ok()?;
        let ok = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
        if !ok(Command::new(python()).args(["-m", "venv"]).arg(venv.path()))
            || !ok(Command::new(venv.path().join("bin/python"))
                .args(["-m", "pip", "install", "--quiet"])
                .arg(format!("uv=={UV_VERSION}"))
                .env("PIP_FIND_LINKS", ""))
        {
            return None;
        }
        std::fs::rename(venv.path().join("bin/uv"), &uv).ok()?;
        Some(uv)
    });
    if found.is_none() {
        skip(format_args!(
            "uv {UV_VERSION} could not be installed with pip (set DX_PY_TEST_UV)"
        ));
    }
    found.clone()
}

/// `uv pip compile --universal` of `dir/requirements.in` from the wheels in `dir/wheels` into
/// `dir/pylock.toml`, for the Python that `python_args` name (`--python X` or
/// `--python-version X.Y`); asserts that it succeeds.
pub fn uv_compile_universal(uv: &Path, cache: &Path, dir: &Path, python_args: &[&std::ffi::OsStr]) {
    let out = uv_command(uv, cache)
        .current_dir(dir)
        .args([
            "pip",
            "compile",
            "--universal",
            "--no-index",
            "--find-links",
            "wheels",
            "requirements.in",
            "-o",
            "pylock.toml",
        ])
        .args(python_args)
        .output()
        .unwrap();
    assert_success(&out, "uv pip compile --universal");
}

/// A venv `dir/uv-venv` made by uv for the test interpreter, into which uv installs
/// `dir/pylock.toml`; asserts that both succeed and returns the venv.
pub fn uv_install_pylock(uv: &Path, cache: &Path, dir: &Path) -> PathBuf {
    let out = uv_command(uv, cache)
        .current_dir(dir)
        .args(["venv", "uv-venv", "--python"])
        .arg(python_executable())
        .output()
        .unwrap();
    assert_success(&out, "uv venv");
    let venv = dir.join("uv-venv");
    let out = uv_command(uv, cache)
        .current_dir(dir)
        .args(["pip", "install", "-r", "pylock.toml", "--python"])
        .arg(venv.join("bin/python"))
        .output()
        .unwrap();
    assert_success(&out, "uv pip install -r pylock.toml");
    venv
}

/// `uv ARGS…` with the test environment: no downloads of interpreters, no user config.
pub fn uv_command(uv: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(uv);
    cmd.env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_CONFIG", "1")
        .env("UV_CACHE_DIR", cache)
        .env_remove("UV_INDEX_URL")
        .env_remove("UV_DEFAULT_INDEX");
    cmd
}
