//! The remote store tier end to end: `dx-py store push` publishes a lock's objects, bytecode and
//! records to a directory that a real nginx serves on 127.0.0.1 (or to a real S3-compatible
//! server, moto's, in a venv under `target/`), then `dx-py install --store-url` into an empty
//! cache with no index and no wheels: files as the wheels' RECORD says, bytecode fetched (none
//! compiled), each file fetched once; a corrupt object refused, a server down reported, a
//! package the remote lacks taken from its wheel. Servers listen on a free port and are stopped
//! by their pid when the test ends, also when it fails.
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dx_py_core::wheel::testing::WheelBuilder;
use dx_py_tests::{
    TestContext, assert_printed, assert_success, can_run, check_site_packages, install_dir,
    layout_site_packages, on_path, printed, skip, target_dir, venv_python, venv_site_packages,
    write_wheels,
};

/// A server process, stopped (by its pid) and reaped when dropped.
struct Server {
    child: Child,
    port: u16,
    /// nginx's access log, where it has one.
    access_log: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `(path, status)` of every GET, in order, from the access log.
    fn requests(&self) -> Vec<(String, u16)> {
        let log = std::fs::read_to_string(self.access_log.as_ref().unwrap()).unwrap_or_default();
        let mut requests = Vec::new();
        for line in log.lines() {
            if let Some(rest) = line.split("\"GET ").nth(1) {
                let path = rest.split(' ').next().unwrap_or_default().to_string();
                let status = rest
                    .split('"')
                    .nth(1)
                    .and_then(|after| after.split_whitespace().next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                requests.push((path, status));
            }
        }
        requests
    }

    /// GET requests per path, from the access log.
    fn gets(&self) -> BTreeMap<String, usize> {
        let log = std::fs::read_to_string(self.access_log.as_ref().unwrap()).unwrap_or_default();
        let mut gets = BTreeMap::new();
        for line in log.lines() {
            if let Some(rest) = line.split("\"GET ").nth(1) {
                let path = rest.split(' ').next().unwrap_or_default().to_string();
                *gets.entry(path).or_default() += 1;
            }
        }
        gets
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (or `child` exits, or 20 s pass).
fn wait_listening(child: &mut Child, port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} does not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx serving `root` on 127.0.0.1 (one process, in the foreground, its files under `dir`);
/// `None`, after saying so, when nginx is missing.
fn nginx(root: &Path, dir: &Path) -> Option<Server> {
    if !can_run(on_path("nginx")) {
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let access_log = dir.join("access.log");
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {log};\n  client_body_temp_path {dir}/body;\n  \
         proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n  \
         uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
        dir = dir.display(),
        log = access_log.display(),
        root = root.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    wait_listening(&mut child, port, "nginx");
    Some(Server {
        child,
        port,
        access_log: Some(access_log),
    })
}

/// The synthetic packages of these tests: two with Python sources (compiled to bytecode), one
/// larger.
fn wheels(cx: &TestContext) -> PathBuf {
    write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("alpha", "1.0")
                .file("alpha/__init__.py", b"from alpha.core import VALUE\n")
                .file("alpha/core.py", b"VALUE = 41 + 1\n"),
            WheelBuilder::new("beta", "2.0")
                .file("beta/__init__.py", b"NAME = 'beta'\n")
                .file("beta/data.bin", &[7u8; 300_000]),
        ],
    )
}

/// Installs the wheels into a first cache (compiling bytecode), pushes the lock to `target`
/// and returns the lock and the wheels (moved away, so no later install can read them).
fn installed_and_pushed(
    cx: &TestContext,
    target: &str,
    env: &[(&str, &str)],
) -> (PathBuf, Vec<PathBuf>) {
    let dir = wheels(cx);
    pushed_wheels(cx, &dir, target, env, 4)
}

/// Installs the wheels in `dir` into a first cache (compiling bytecode), pushes the lock to
/// `target` (`objects` objects: packages and bytecode packs) and returns the lock and the
/// wheels (moved away, so no later install can read them).
fn pushed_wheels(
    cx: &TestContext,
    dir: &Path,
    target: &str,
    env: &[(&str, &str)],
    objects: usize,
) -> (PathBuf, Vec<PathBuf>) {
    install_dir(cx, dir, ".venv");
    let out = cx
        .dx_py()
        .args(["store", "push", target, "--lock", "dx-py.dpl"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_success(&out, "dx-py store push");
    assert_printed(&out, &format!("Pushed {objects} objects"));
    let hidden = cx.temp.path().join("wheels-hidden");
    std::fs::rename(dir, &hidden).unwrap();
    let wheels = std::fs::read_dir(&hidden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    (cx.project().join("dx-py.dpl"), wheels)
}

/// [`installed_and_pushed`] to a directory that nginx then serves: the lock, the wheels, the
/// server and the directory; `None` when nginx is missing. `damage` changes the directory
/// before the server starts.
fn pushed_and_served(
    cx: &TestContext,
    damage: impl FnOnce(&Path, &[PathBuf]),
) -> Option<(PathBuf, Vec<PathBuf>, Server)> {
    let served = cx.temp.path().join("served");
    let (lock, wheels) = installed_and_pushed(cx, served.to_str().unwrap(), &[]);
    damage(&served, &wheels);
    let server = nginx(&served, &cx.temp.path().join("nginx"))?;
    Some((lock, wheels, server))
}

/// A second machine: a fresh cache, the lock copied into its project.
fn fresh_machine(lock: &Path) -> TestContext {
    let cx = TestContext::new();
    std::fs::copy(lock, cx.project().join("dx-py.dpl")).unwrap();
    cx
}

fn install_remote(cx: &TestContext, url: &str, env: &[(&str, &str)]) -> Output {
    cx.dx_py()
        .args([
            "install",
            "--lock",
            "dx-py.dpl",
            "--no-index",
            "-v",
            "--store-url",
            url,
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Checks the venv of `cx` against the wheels' RECORD (with bytecode), and that it imports.
fn check_installed(cx: &TestContext, wheels: &[PathBuf]) {
    let venv = cx.project().join(".venv");
    check_site_packages(&layout_site_packages(&venv), wheels, "the remote install");
    let got = venv_python(&venv, "import alpha, beta; print(alpha.VALUE, beta.NAME)");
    assert_eq!(got.trim(), "42 beta");
}

#[test]
fn install_from_nginx_with_no_index_and_no_wheels() {
    let cx = TestContext::new();
    let Some((lock, wheels, server)) = pushed_and_served(&cx, |_, _| {}) else {
        return;
    };
    let machine = fresh_machine(&lock);
    let out = install_remote(&machine, &server.url(), &[]);
    assert_success(&out, "install from the remote store");
    // Two packages and their two bytecode packs, nothing compiled here.
    assert_printed(&out, "fetched 4 objects");
    assert_printed(&out, "bytecode packs compiled: 0");
    check_installed(&machine, &wheels);
    let gets = server.gets();
    assert!(gets.keys().any(|p| p.ends_with(".dxpkg")), "{gets:?}");
    for (path, n) in &gets {
        assert_eq!(*n, 1, "{path} was fetched {n} times: {gets:?}");
    }
    // Again into another venv: everything is local now, the server is not asked.
    let again = machine
        .dx_py()
        .args([
            "install",
            "--lock",
            "dx-py.dpl",
            "--no-index",
            "--venv",
            "other",
        ])
        .args(["--store-url", &server.url()])
        .output()
        .unwrap();
    assert_success(&again, "second install");
    assert_eq!(server.gets(), gets);
}

#[test]
fn a_corrupt_object_on_the_server_is_refused_and_never_stored() {
    let cx = TestContext::new();
    let mut object = PathBuf::new();
    let flip = |served: &Path, _: &[PathBuf]| {
        // The largest object (beta's) gets one byte flipped on the server.
        object = largest_object(served);
        let mut bytes = std::fs::read(&object).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::remove_file(&object).unwrap();
        std::fs::write(&object, &bytes).unwrap();
    };
    let Some((lock, _, server)) = pushed_and_served(&cx, flip) else {
        return;
    };
    let machine = fresh_machine(&lock);
    let out = install_remote(&machine, &server.url(), &[]);
    assert!(!out.status.success(), "{}", printed(&out));
    let name = object.file_name().unwrap().to_str().unwrap();
    let hex = name.trim_end_matches(".dxpkg");
    let text = printed(&out);
    assert!(text.contains(&format!("Object `{hex}`")), "{text}");
    assert!(
        text.contains(&format!("{}/{name}", server.url())) || text.contains(name),
        "{text}"
    );
    assert!(text.contains("is corrupt"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let stored = machine
        .cache_dir()
        .join("store")
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(name);
    assert!(!stored.exists(), "the corrupt object was stored");
}

#[test]
fn a_server_that_is_down_is_a_clear_error() {
    let cx = TestContext::new();
    let served = cx.temp.path().join("served");
    let (lock, _) = installed_and_pushed(&cx, served.to_str().unwrap(), &[]);
    // Nothing listens there.
    let url = format!("http://127.0.0.1:{}/store", free_port());
    let machine = fresh_machine(&lock);
    let out = install_remote(&machine, &url, &[]);
    let text = printed(&out);
    assert!(matches!(out.status.code(), Some(1 | 2)), "{text}");
    assert!(text.contains(&format!("{url}/")), "{text}");
    assert!(text.contains("remote store"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_package_the_remote_lacks_comes_from_its_wheel() {
    let cx = TestContext::new();
    let forget = |served: &Path, wheels: &[PathBuf]| {
        // The server forgets alpha's wheel record.
        let sha = dx_py_core::hash::sha256_hex(&std::fs::read(alpha_wheel(wheels)).unwrap());
        std::fs::remove_file(served.join("wheels").join(&sha)).unwrap();
    };
    let Some((lock, wheels, server)) = pushed_and_served(&cx, forget) else {
        return;
    };
    let alpha = alpha_wheel(&wheels);
    let machine = fresh_machine(&lock);
    let out = machine
        .dx_py()
        .args(["install", "--lock", "dx-py.dpl", "--no-index", "-v"])
        .args(["--store-url", &server.url(), "--find-links"])
        .arg(alpha.parent().unwrap())
        .output()
        .unwrap();
    assert_success(&out, "install with one package from its wheel");
    assert_printed(
        &out,
        "Not in the remote store, taken from their wheels: alpha",
    );
    check_installed(&machine, &wheels);
}

#[test]
fn push_skips_what_is_there_and_refuses_http() {
    let cx = TestContext::new();
    let served = cx.temp.path().join("served");
    let _ = installed_and_pushed(&cx, served.to_str().unwrap(), &[]);
    let url = format!("file://{}", served.display());
    let out = cx.run_ok(&["store", "push", &url, "--lock", "dx-py.dpl"]);
    let _ = out;
    let again = cx
        .dx_py()
        .args(["store", "push", &url, "--lock", "dx-py.dpl"])
        .output()
        .unwrap();
    assert_printed(&again, "Pushed 0 objects (0 bytes) and 0 records");
    assert_printed(&again, "4 already there");
    let http = cx.run_err(
        &[
            "store",
            "push",
            "http://127.0.0.1:9/x",
            "--lock",
            "dx-py.dpl",
        ],
        1,
    );
    assert!(http.contains("http://127.0.0.1:9/x"), "{http}");
    let bad = cx.run_err(&["install", "--store-url", "ftp://x/y", "--no-index"], 1);
    assert!(bad.contains("Invalid store URL `ftp://x/y`"), "{bad}");
}

/// The packages of the lazy mount tests: each object larger than one 16 KiB group (so it has a
/// sidecar and its index is read by ranges), one with a console script and a script file
/// (which the tree copies: read by ranges too).
fn lazy_wheels(cx: &TestContext) -> PathBuf {
    write_wheels(
        &cx.temp.path().join("wheels"),
        &[
            WheelBuilder::new("alpha", "1.0")
                .file("alpha/__init__.py", b"from alpha.core import VALUE\n")
                .file("alpha/core.py", b"VALUE = 41 + 1\n")
                .file("alpha/blob.bin", &[1u8; 100_000]),
            WheelBuilder::new("beta", "2.0")
                .file("beta/__init__.py", b"NAME = 'beta'\n")
                .file("beta/data.bin", &[7u8; 300_000]),
            WheelBuilder::new("gamma", "3.0")
                .file("gamma/__init__.py", b"def main():\n    print('gamma')\n")
                .file("gamma/pad.bin", &[3u8; 40_000])
                .console_script("gamma", "gamma:main")
                .data_file("scripts", "gamma-tool", b"#!/bin/sh\necho tool\n"),
        ],
    )
}

/// [`lazy_wheels`] installed and pushed to a directory that nginx serves: the directory, the
/// lock, the wheels and the server; `None` when this machine cannot mount or has no nginx.
#[cfg(target_os = "linux")]
fn lazy_served(cx: &TestContext) -> Option<(PathBuf, PathBuf, Vec<PathBuf>, Server)> {
    if !dx_py_tests::can_mount() {
        return None;
    }
    let served = cx.temp.path().join("served");
    let dir = lazy_wheels(cx);
    let (lock, wheels) = pushed_wheels(cx, &dir, served.to_str().unwrap(), &[], 6);
    let server = nginx(&served, &cx.temp.path().join("nginx"))?;
    Some((served, lock, wheels, server))
}

/// The remote's object key (`/ab/cd/{hex}.dxpkg`) of the package of `wheel`, by the pushed
/// wheel record under `served`.
fn object_key_of(served: &Path, wheel: &Path) -> String {
    let sha = dx_py_core::hash::sha256_hex(&std::fs::read(wheel).unwrap());
    let hex = std::fs::read_to_string(served.join("wheels").join(sha)).unwrap();
    let hex = hex.trim();
    format!("/{}/{}/{hex}.dxpkg", &hex[0..2], &hex[2..4])
}

fn wheel_named<'a>(wheels: &'a [PathBuf], prefix: &str) -> &'a Path {
    wheels
        .iter()
        .find(|w| w.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap()
}

/// Statuses of the GETs of `path` in `requests`.
fn statuses(requests: &[(String, u16)], path: &str) -> Vec<u16> {
    requests
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, s)| *s)
        .collect()
}

/// Imports alpha and reads a file of its object (its modules come from its bytecode pack).
const IMPORT_ALPHA: &str = "import alpha, pathlib; \
    print(alpha.VALUE, len((pathlib.Path(alpha.__file__).parent / 'blob.bin').read_bytes()))";

/// Unmounts when the test ends, also when it fails.
#[cfg(target_os = "linux")]
struct Unmount<'a>(&'a TestContext, PathBuf);

#[cfg(target_os = "linux")]
impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = self.0.dx_py().arg("unmount").arg(&self.1).output();
        let _ = Command::new("umount").arg("-l").arg(&self.1).output();
    }
}

/// Mounts `mnt` in `machine` from the store at `url` (`dx-py mount --store-url`), asserting
/// success; the guard unmounts it.
#[cfg(target_os = "linux")]
fn mount_remote<'a>(machine: &'a TestContext, url: &str, env: &[(&str, &str)]) -> Unmount<'a> {
    let out = machine
        .dx_py()
        .args(["mount", "mnt", "--lock", "dx-py.dpl", "--no-index", "-v"])
        .args(["--store-url", url])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let guard = Unmount(machine, machine.project().join("mnt"));
    assert_success(&out, "mount from the remote store");
    guard
}

/// The mount server's log (its stderr) in `machine`'s cache.
#[cfg(target_os = "linux")]
fn server_log(machine: &TestContext) -> String {
    let dir = machine.cache_dir().join("mounts");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

/// Whether `machine`'s local store holds the object at the remote key `key` (full, or thin:
/// docs/design/store-one-copy.md).
fn stored_locally(machine: &TestContext, key: &str) -> bool {
    let full = local_object(machine, key);
    full.is_file() || full.with_extension("dxthin").is_file()
}

/// Where `machine`'s local store keeps the full object of the remote key `key`.
fn local_object(machine: &TestContext, key: &str) -> PathBuf {
    machine
        .cache_dir()
        .join("store")
        .join(key.trim_start_matches('/'))
}

/// An object a lazy mount fetched (full) and is serving is made thin by an install of the same
/// lock on that machine (its `.dxpkg` removed under the mount); the objects the install fetches
/// are written once. The mount keeps serving every file right: those it mapped, and those it
/// reads first from the thin objects.
#[cfg(target_os = "linux")]
#[test]
fn a_lazily_fetched_object_made_thin_by_an_install_keeps_being_served() {
    let cx = TestContext::new();
    let Some((served, lock, wheels, server)) = lazy_served(&cx) else {
        return;
    };
    let key = |prefix| object_key_of(&served, wheel_named(&wheels, prefix));
    let (alpha, beta) = (key("alpha"), key("beta"));
    let machine = fresh_machine(&lock);
    let _unmount = mount_remote(&machine, &server.url(), &[]);
    let venv = machine.project().join("mnt");
    assert_eq!(venv_python(&venv, IMPORT_ALPHA).trim(), "42 100000");
    assert!(
        local_object(&machine, &alpha).is_file(),
        "fetched full for the mount"
    );

    let out = install_remote(&machine, &server.url(), &[]);
    assert_success(&out, "install on the mounting machine");
    check_installed(&machine, &wheels);
    for object in [&alpha, &beta] {
        let full = local_object(&machine, object);
        assert!(
            !full.is_file() && full.with_extension("dxthin").is_file(),
            "{object} is thin after the install"
        );
    }
    assert_eq!(venv_python(&venv, IMPORT_ALPHA).trim(), "42 100000");
    let site = venv_site_packages(&venv);
    check_site_packages(&site, &wheels, "the mount after the install");
}

/// `mount --store-url` on an empty cache with no index and no wheels returns before any object
/// is fetched (the server saw only records, sidecars and ranges of the objects); the first
/// import of one package fetches that package's object only; every file then matches RECORD
/// (bytecode included, none compiled) and each object was fetched whole exactly once.
#[cfg(target_os = "linux")]
#[test]
fn a_lazy_mount_fetches_a_package_on_the_first_read_of_its_files() {
    let cx = TestContext::new();
    let Some((served, lock, wheels, server)) = lazy_served(&cx) else {
        return;
    };
    let key = |prefix| object_key_of(&served, wheel_named(&wheels, prefix));
    let (alpha, beta, gamma) = (key("alpha"), key("beta"), key("gamma"));
    let machine = fresh_machine(&lock);
    let _unmount = mount_remote(&machine, &server.url(), &[]);
    let venv = machine.project().join("mnt");
    let after_mount = server.requests();
    for object in [&alpha, &beta, &gamma] {
        let got = statuses(&after_mount, object);
        assert!(
            !got.is_empty() && got.iter().all(|&s| s == 206),
            "{object}: {after_mount:?}"
        );
        assert!(
            !stored_locally(&machine, object),
            "{object} was fetched before mounting"
        );
    }
    // The launcher came from a range of gamma's object.
    assert!(venv.join("bin/gamma").is_file());
    let got = venv_python(&venv, IMPORT_ALPHA);
    assert_eq!(got.trim(), "42 100000");
    let after_import = server.requests();
    assert_eq!(
        statuses(&after_import, &alpha).last(),
        Some(&200),
        "{after_import:?}"
    );
    for object in [&beta, &gamma] {
        assert!(
            statuses(&after_import, object).iter().all(|&s| s == 206),
            "{object} fetched by an import of alpha: {after_import:?}"
        );
    }
    check_site_packages(&venv_site_packages(&venv), &wheels, "the lazy mount");
    let tool = std::fs::read(venv.join("bin/gamma-tool")).unwrap();
    assert_eq!(tool, b"#!/bin/sh\necho tool\n");
    let out = Command::new(venv.join("bin/gamma")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "gamma");
    let all = server.requests();
    for object in [&alpha, &beta, &gamma] {
        let whole = statuses(&all, object).iter().filter(|&&s| s == 200).count();
        assert_eq!(whole, 1, "{object}: {all:?}");
        assert!(stored_locally(&machine, object));
    }
    // Only the sidecars of small objects (one group: none pushed) are absent.
    let failed = |(path, status): &&(String, u16)| *status >= 400 && !path.ends_with(".dxcv");
    assert!(!all.iter().any(|r| failed(&r)), "{all:?}");
}

/// An object corrupted on the server (a byte of its data, past its index) is refused when a
/// read fetches it: that package's files give EIO, with one log line naming the package, the
/// object and its URL, and are not asked again before the backoff; other packages are served;
/// nothing wrong is stored.
#[cfg(target_os = "linux")]
#[test]
fn a_corrupt_object_gives_eio_for_its_package_only() {
    let cx = TestContext::new();
    let Some((served, lock, wheels, server)) = lazy_served(&cx) else {
        return;
    };
    // nginx reads the file on each request: changed while it serves.
    let beta = object_key_of(&served, wheel_named(&wheels, "beta"));
    let path = served.join(beta.trim_start_matches('/'));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let machine = fresh_machine(&lock);
    let _unmount = mount_remote(&machine, &server.url(), &[]);
    let venv = machine.project().join("mnt");
    let site = venv_site_packages(&venv);
    let reading = Instant::now();
    for file in ["beta/data.bin", "beta/__init__.py", "beta/data.bin"] {
        let err = std::fs::read(site.join(file)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(5), "{file}: {err}"); // EIO
    }
    // The reads normally take milliseconds; on a machine so loaded that they outlasted the
    // first backoff (2 s), a second fetch was allowed.
    let attempts = if reading.elapsed() < Duration::from_millis(1_500) {
        1
    } else {
        statuses(&server.requests(), &beta)
            .iter()
            .filter(|&&s| s == 200)
            .count()
            .max(1)
    };
    // nginx logs a request once it is done, which may be after the client has its bytes.
    let whole = || {
        statuses(&server.requests(), &beta)
            .iter()
            .filter(|&&s| s == 200)
            .count()
    };
    let start = Instant::now();
    while whole() < attempts && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        whole(),
        attempts,
        "asked again before the backoff: {:?}",
        server.requests()
    );
    let got = venv_python(&venv, "import alpha; print(alpha.VALUE)");
    assert_eq!(got.trim(), "42");
    let log = server_log(&machine);
    let hex = beta.rsplit('/').next().unwrap().trim_end_matches(".dxpkg");
    let line = log
        .lines()
        .find(|l| l.contains("Cannot fetch package"))
        .unwrap_or_else(|| panic!("no log line: {log}"));
    assert!(line.contains("`beta 2.0`") && line.contains(hex), "{line}");
    assert!(line.contains(&format!("{}{beta}", server.url())), "{line}");
    assert_eq!(
        log.matches("Cannot fetch package").count(),
        attempts,
        "{log}"
    );
    assert!(!stored_locally(&machine, &beta));
}

/// The server stopped mid-mount: packages fetched before keep being served, the others give
/// EIO.
#[cfg(target_os = "linux")]
#[test]
fn a_server_stopped_mid_mount_fails_only_packages_not_fetched() {
    let cx = TestContext::new();
    let Some((_, lock, _, server)) = lazy_served(&cx) else {
        return;
    };
    let machine = fresh_machine(&lock);
    let _unmount = mount_remote(&machine, &server.url(), &[]);
    let venv = machine.project().join("mnt");
    let got = venv_python(&venv, IMPORT_ALPHA);
    assert_eq!(got.trim(), "42 100000");
    drop(server);
    let site = venv_site_packages(&venv);
    let err = std::fs::read(site.join("beta/data.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}"); // EIO
    assert_eq!(
        std::fs::read(site.join("alpha/blob.bin")).unwrap(),
        vec![1u8; 100_000]
    );
    let got = venv_python(&venv, "import alpha.core; print(alpha.core.VALUE)");
    assert_eq!(got.trim(), "42");
    assert!(server_log(&machine).contains("`beta 2.0`"));
}

fn alpha_wheel(wheels: &[PathBuf]) -> &Path {
    let name = |w: &&PathBuf| {
        w.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("alpha")
    };
    wheels.iter().find(name).unwrap()
}

fn largest_object(root: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dxpkg") {
                found.push((e.metadata().unwrap().len(), p));
            }
        }
    }
    found.sort();
    found.pop().unwrap().1
}

/// moto's S3 server in a venv under `target/test-tools/moto` (installed with pip from the
/// default index on first use), on a free port; `None`, after saying so, when it cannot be had.
fn moto() -> Option<(Server, PathBuf)> {
    let venv = target_dir().join("test-tools").join("moto");
    let python = venv.join("bin").join("python");
    let server = venv.join("bin").join("moto_server");
    if !server.is_file() {
        let made = Command::new(dx_py_tests::python())
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "-q", "moto[server]"])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !server.is_file() {
            skip("moto[server] cannot be installed (pip from the default index)");
            return None;
        }
    }
    let port = free_port();
    let mut child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    wait_listening(&mut child, port, "moto_server");
    Some((
        Server {
            child,
            port,
            access_log: None,
        },
        python,
    ))
}

/// The `AWS_*` variables that point the S3 tier at moto's server at `endpoint`.
fn s3_env(endpoint: &str) -> [(&'static str, &str); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
}

/// Makes bucket `name` on moto's server, through moto's own client library (boto3 comes with
/// it), run by `python`.
fn make_bucket(python: &Path, endpoint: &str, name: &str) {
    let made = Command::new(python)
        .args([
            "-c",
            "import boto3, sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket=sys.argv[2])",
            endpoint,
            name,
        ])
        .output()
        .unwrap();
    assert_success(&made, "create the bucket");
}

#[test]
fn install_from_s3_with_no_index_and_no_wheels() {
    let Some((server, python)) = moto() else {
        return;
    };
    let endpoint = server.url();
    let env = s3_env(&endpoint);
    make_bucket(&python, &endpoint, "dxpy");
    let cx = TestContext::new();
    let (lock, wheels) = installed_and_pushed(&cx, "s3://dxpy/store/v1", &env);
    let machine = fresh_machine(&lock);
    let out = install_remote(&machine, "s3://dxpy/store/v1", &env);
    assert_success(&out, "install from S3");
    assert_printed(&out, "fetched 4 objects");
    assert_printed(&out, "bytecode packs compiled: 0");
    check_installed(&machine, &wheels);
    // Pushed again: all there.
    let again = cx
        .dx_py()
        .args(["store", "push", "s3://dxpy/store/v1", "--lock", "dx-py.dpl"])
        .envs(env)
        .output()
        .unwrap();
    assert_printed(&again, "4 already there");
    // The server stopped: a clear error naming the object's URL.
    drop(server);
    let down = fresh_machine(&lock);
    let out = install_remote(&down, "s3://dxpy/store/v1", &env);
    let text = printed(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("s3://dxpy/store/v1/"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// The `.dxpkg` files in `machine`'s local store.
fn local_objects(machine: &TestContext) -> usize {
    let mut n = 0;
    let mut stack = vec![machine.cache_dir().join("store")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dxpkg") {
                n += 1;
            }
        }
    }
    n
}

/// The lazy mount over S3 (moto): the mount fetches the three small bytecode packs whole and
/// no package object; an import fetches its package's; every file then matches RECORD.
#[cfg(target_os = "linux")]
#[test]
fn a_lazy_mount_from_s3_fetches_on_first_read() {
    if !dx_py_tests::can_mount() {
        return;
    }
    let Some((server, python)) = moto() else {
        return;
    };
    let endpoint = server.url();
    let env = s3_env(&endpoint);
    make_bucket(&python, &endpoint, "lazy");
    let cx = TestContext::new();
    let dir = lazy_wheels(&cx);
    let (lock, wheels) = pushed_wheels(&cx, &dir, "s3://lazy/store", &env, 6);
    let machine = fresh_machine(&lock);
    let _unmount = mount_remote(&machine, "s3://lazy/store", &env);
    assert_eq!(local_objects(&machine), 3, "only the small bytecode packs");
    let venv = machine.project().join("mnt");
    let got = venv_python(&venv, IMPORT_ALPHA);
    assert_eq!(got.trim(), "42 100000");
    assert_eq!(local_objects(&machine), 4, "alpha's object only");
    check_site_packages(
        &venv_site_packages(&venv),
        &wheels,
        "the lazy mount from S3",
    );
    assert_eq!(local_objects(&machine), 6);
}
