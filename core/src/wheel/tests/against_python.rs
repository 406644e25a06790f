//! Installed trees checked by Python itself (`importlib.metadata`, `pip uninstall`), and a real wheel.
use super::*;

#[cfg(unix)]
fn python() -> Option<std::path::PathBuf> {
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg("import importlib.metadata")
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| "python3".into())
}

/// Unpacks a package as a POSIX venv would hold it (`bin/`, `lib/pythonX.Y/site-packages/`, the
/// root for data), and returns the site-packages directory.
#[cfg(unix)]
fn unpack(dxpkg: &[u8], root: &std::path::Path, py: &str) -> std::path::PathBuf {
    let r = DxpkgReader::new(dxpkg).unwrap();
    let site = root.join(format!("lib/python{py}/site-packages"));
    for e in r.entries() {
        let e = e.unwrap();
        let base = match e.scheme {
            Scheme::SitePackages => site.clone(),
            Scheme::Scripts => root.join("bin"),
            Scheme::Data => root.to_path_buf(),
            Scheme::Headers => root.join(format!("include/site/python{py}/{}", r.name())),
        };
        let dest = base.join(e.path);
        fs_err::create_dir_all(dest.parent().unwrap()).unwrap();
        match e.kind {
            EntryKind::File => fs_err::write(&dest, e.data).unwrap(),
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(std::str::from_utf8(e.data).unwrap(), &dest).unwrap();
            }
        }
    }
    site
}

/// Asks Python's `importlib.metadata` for the distribution in `site` and checks every RECORD row
/// with a hash against the installed file; prints `name version n_checked`.
#[cfg(unix)]
fn python_check(site: &std::path::Path, dist: &str) -> String {
    let script = r#"
import base64, hashlib, importlib.metadata as m, sys
site, name = sys.argv[1], sys.argv[2]
d = next(m.distributions(name=name, path=[site]))
n = 0
for f in d.files:
    if f.hash is None:
        continue
    data = f.locate().read_bytes()
    assert f.hash.mode == "sha256", f
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert digest == f.hash.value, (f, digest)
    assert len(data) == f.size, f
    n += 1
assert d.read_text("INSTALLER") == "dx-py\n"
print(d.metadata["Name"], d.version, n)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(site)
        .arg(dist)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[cfg(unix)]
#[test]
fn installed_tree_is_a_valid_distribution_for_python() {
    if python().is_none() {
        eprintln!("skipped: no python3 with importlib.metadata");
        return;
    }
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = unpack(&c.dxpkg, dir.path(), "3.11");
    // Every hashed row checks out: 5 package files, 5 dist-info files, bin/demo-sh, share/….
    assert_eq!(python_check(&site, "Demo.Pkg"), "Demo.Pkg 1.0 12");
}

/// pip reads the installed RECORD: `pip uninstall` in a venv removes every file the package put
/// there, in site-packages, `bin/` (scripts and entry-point wrappers) and the venv root.
#[cfg(unix)]
#[test]
fn pip_uninstall_removes_every_installed_file() {
    use std::process::Command;
    if python().is_none() {
        eprintln!("skipped: no python3");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    let pip_ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !made || !pip_ok {
        eprintln!("skipped: cannot make a venv or run pip");
        return;
    }
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let py = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let site = unpack(&c.dxpkg, &venv, &py);
    // The wrappers an installer generates for the entry points.
    for ep in c
        .entry_points
        .console_scripts
        .iter()
        .chain(&c.entry_points.gui_scripts)
    {
        fs_err::write(venv.join("bin").join(&ep.name), "#!/bin/sh\n").unwrap();
    }
    let installed = [
        site.join("demo_pkg/core.py"),
        site.join("demo_pkg/extra.py"),
        site.join(&c.dist_info).join("RECORD"),
        venv.join("bin/demo"),
        venv.join("bin/demo-gui"),
        venv.join("bin/demo-script"),
        venv.join("bin/demo-sh"),
        venv.join("share/man/man1/demo.1"),
    ];
    assert!(installed.iter().all(|p| p.exists()));
    let out = Command::new("python3")
        .args(["-m", "pip", "--python"])
        .arg(venv.join("bin/python"))
        .args(["uninstall", "-y", "Demo.Pkg"])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in &installed {
        assert!(!p.exists(), "{} survived pip uninstall", p.display());
    }
    assert!(!site.join("demo_pkg").exists());
    assert!(!site.join(&c.dist_info).exists());
}

/// A real wheel, downloaded once into `target/wheels` with the user's pip configuration; skipped
/// when neither the cache nor the download is available.
#[cfg(unix)]
#[test]
fn real_wheel_six() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wheels");
    let find = || {
        fs_err::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("six-") && n.ends_with(".whl"))
            })
    };
    if find().is_none() && python().is_some() {
        let _ = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
            ])
            .arg(&dir)
            .arg("six")
            .output();
    }
    let Some(path) = find() else {
        eprintln!(
            "skipped: no six wheel in {} and none could be downloaded",
            dir.display()
        );
        return;
    };
    let bytes = fs_err::read(&path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let c = convert_wheel(name, &bytes).unwrap();
    assert_eq!(c.name, "six");
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    r.validate().unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap();
    let mut six_py = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("six.py").unwrap(), &mut six_py).unwrap();
    assert_eq!(r.get_file("six.py").unwrap().unwrap().data, &six_py[..]);
    assert_eq!(convert_wheel(name, &bytes).unwrap().dxpkg, c.dxpkg);
    if python().is_some() {
        let tmp = tempfile::tempdir().unwrap();
        let site = unpack(&c.dxpkg, tmp.path(), "3.11");
        let out = python_check(&site, "six");
        assert!(out.starts_with(&format!("six {} ", c.version)), "{out}");
    }
}
