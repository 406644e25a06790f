//! Installing into a venv: link modes, filesystem fallback, the venv's own packages, the `.pth` file, Python's view.
use super::*;

#[test]
fn symlink_and_copy_modes_are_recorded_and_verified() {
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(0);
    let spec = spec_of(&fx.store, &pkgs);
    for (mode, name) in [(LinkMode::Symlink, "s"), (LinkMode::Copy, "c")] {
        let layouts = fx.dir.path().join(format!("layouts-{name}"));
        let mut cache = LayoutCache::open(&layouts, &fx.store).unwrap();
        cache.set_link_mode(mode);
        let layout = cache.build_layout(&spec).unwrap();
        assert_eq!(layout.link_mode, mode);
        let init = layout.site_packages().join("alpha/__init__.py");
        let is_link = std::fs::symlink_metadata(&init)
            .unwrap()
            .file_type()
            .is_symlink();
        assert_eq!(is_link, mode == LinkMode::Symlink);
        if mode == LinkMode::Symlink {
            // realpath lands in the package's own complete site-packages tree.
            let real = std::fs::canonicalize(&init).unwrap();
            assert!(
                real.ends_with("site-packages/alpha/__init__.py"),
                "{}",
                real.display()
            );
            assert!(real.starts_with(std::fs::canonicalize(fx.store.root()).unwrap()));
        }
        let venv = fx.venv(name);
        assert!(cache.install(&spec, &venv).unwrap().hit);
        assert_venv_is(&venv, &pkgs);
        assert_eq!(cache.get(&spec.project_hash()).unwrap().link_mode, mode);
        assert!(
            cache
                .verify_layout(&spec.project_hash(), VerifyLevel::Full)
                .unwrap()
                .is_ok()
        );
        // A copy of the wrong size is caught.
        std::fs::remove_file(&init).unwrap();
        std::fs::write(&init, b"changed size").unwrap();
        let report = cache
            .verify_layout(&spec.project_hash(), VerifyLevel::Full)
            .unwrap();
        assert!(!report.is_ok());
    }
}

#[test]
fn another_filesystem_falls_back_to_symlinks() {
    // /dev/shm is tmpfs on Linux CI machines; skip where it is not a separate filesystem.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let store = PackageStore::open(shm.path().join("store"));
    let fx = Fixture::new();
    let pkgs = fixed_sets().remove(0);
    let spec = spec_of(&store, &pkgs);
    let cache = LayoutCache::open(&fx.layouts(), &store).unwrap();
    let layout = cache.build_layout(&spec).unwrap();
    let same_fs = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(shm.path()).unwrap().dev()
            == std::fs::metadata(fx.dir.path()).unwrap().dev()
    };
    let want = if same_fs {
        LinkMode::Hardlink
    } else {
        LinkMode::Symlink
    };
    assert_eq!(layout.link_mode, want);
    let venv = fx.venv("x");
    cache.install(&spec, &venv).unwrap();
    assert_venv_is(&venv, &pkgs);
}

#[test]
fn install_keeps_the_venvs_own_packages_and_replaces_stale_launchers_only() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let cache = fx.cache();
    let venv = fx.venv("v");
    let sp = venv_site_packages(&venv);
    std::fs::create_dir_all(sp.join("own_pkg")).unwrap();
    std::fs::write(sp.join("own_pkg/x.py"), b"mine").unwrap();
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    for own in ["python", "python3.11", "activate", "activate.fish"] {
        std::fs::write(venv.join("bin").join(own), own).unwrap();
    }
    cache.install(&spec_of(&fx.store, &sets[0]), &venv).unwrap();
    assert_venv_is(&venv, &sets[0]);
    assert!(venv.join("bin/alpha-cli").exists());
    // The user replaces one launcher with their own file: switching layouts keeps it.
    std::fs::remove_file(venv.join("bin/beta")).unwrap();
    std::fs::write(venv.join("bin/beta"), b"mine").unwrap();
    cache.install(&spec_of(&fx.store, &sets[2]), &venv).unwrap();
    assert_eq!(snapshot(&layout_site_packages(&venv)), oracle(&sets[2]));
    assert!(venv.join("bin/alpha-cli").exists());
    assert_eq!(std::fs::read(venv.join("bin/beta")).unwrap(), b"mine");
    for own in ["python", "python3.11", "activate", "activate.fish"] {
        assert_eq!(
            std::fs::read(venv.join("bin").join(own)).unwrap(),
            own.as_bytes()
        );
    }
    // Back to a set with `beta`: the user's file is replaced by the launcher, as pip would.
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_venv_is(&venv, &sets[1]);
    assert!(!venv.join("bin/alpha-cli").exists());
    // What the venv holds of its own stays, beside the `.pth` file and nothing else.
    let mut own: Vec<_> = std::fs::read_dir(&sp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    own.sort();
    assert_eq!(own, [install::PTH_NAME, "own_pkg"]);
    assert_eq!(std::fs::read(sp.join("own_pkg/x.py")).unwrap(), b"mine");
}

#[test]
fn a_venv_of_the_symlink_design_is_converted() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let cache = fx.cache();
    let old = cache.build_layout(&spec_of(&fx.store, &sets[0])).unwrap();
    let venv = fx.venv("v");
    let sp = venv_site_packages(&venv);
    std::fs::create_dir_all(sp.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(old.site_packages(), &sp).unwrap();
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::os::unix::fs::symlink(old.path.join("bin/alpha-cli"), venv.join("bin/alpha-cli")).unwrap();
    let legacy = format!(
        "{{\"format\":1,\"project_hash\":\"{}\",\"layout\":\"{}\",\"launchers\":[\"alpha-cli\"]}}",
        old.project_hash.to_hex(),
        old.path.display()
    );
    std::fs::write(venv.join(install::LEGACY_MARKER_NAME), legacy).unwrap();
    assert_eq!(
        crate::layout::venv_layout(&venv, (3, 11))
            .unwrap()
            .launchers,
        ["alpha-cli"]
    );
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_venv_is(&venv, &sets[1]);
    // The old layout was not touched through the symlink, and the old marker is gone.
    assert_eq!(snapshot(&old.site_packages()), oracle(&sets[0]));
    assert!(!venv.join(install::LEGACY_MARKER_NAME).exists());
    assert!(!venv.join("bin/alpha-cli").exists());
}

#[test]
fn the_pth_names_any_path_as_python_reads_it() {
    // Python reads the literal back as the same path, whatever characters it holds.
    let paths = [
        "/plain/path",
        "/with space/and'quote/back\\slash",
        "/caf\u{e9}/\u{65e5}\u{672c}/\u{1f40d}",
        "/tab\there",
    ];
    let mut code = String::from("import sys\n");
    for p in paths {
        code.push_str(&format!(
            "sys.stdout.buffer.write(({}).encode('utf-8') + b'\\0')\n",
            install::python_str(p)
        ));
    }
    let Ok(out) = std::process::Command::new("python3")
        .args(["-c", &code])
        .output()
    else {
        eprintln!("skipped: no python3 on PATH");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<&[u8]> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    let want: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
    assert_eq!(got, want);
    for p in paths {
        assert!(install::python_str(p).is_ascii());
    }
}

#[test]
fn an_empty_site_packages_and_a_torn_marker_are_handled() {
    let fx = Fixture::new();
    let sets = fixed_sets();
    let cache = fx.cache();
    let venv = fx.venv("v");
    std::fs::create_dir_all(venv_site_packages(&venv)).unwrap();
    cache.install(&spec_of(&fx.store, &sets[0]), &venv).unwrap();
    assert_venv_is(&venv, &sets[0]);
    // A marker cut short by a crash is ignored: the next install still ends whole, except that
    // a launcher only the lost marker named (`alpha-cli`) stays, still a working link.
    let pth = venv_site_packages(&venv).join(install::PTH_NAME);
    std::fs::write(&pth, b"# dx-py-layout: {\"format\":2,\"proj").unwrap();
    assert!(install::read_marker(&pth).is_none());
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_eq!(snapshot(&layout_site_packages(&venv)), oracle(&sets[1]));
    let marker = install::read_marker(&pth).unwrap();
    assert_eq!(marker.launchers, launchers_of(&sets[1]));
    assert!(venv.join("bin/alpha-cli").is_file());
    // With a whole marker again, switching layouts cleans up as usual.
    cache.install(&spec_of(&fx.store, &sets[2]), &venv).unwrap();
    cache.install(&spec_of(&fx.store, &sets[1]), &venv).unwrap();
    assert_venv_is(&venv, &sets[1]);
    // A venv directory that does not exist yet is created.
    let new = fx.dir.path().join("not/yet/venv");
    assert!(
        cache
            .install_cached(&spec_of(&fx.store, &sets[0]).project_hash(), &new)
            .unwrap()
            .is_some()
    );
    assert_venv_is(&new, &sets[0]);
}

#[test]
fn realpath_sibling_lookups_work_from_python() {
    let Ok(out) = std::process::Command::new("python3")
        .arg("--version")
        .output()
    else {
        return;
    };
    if !out.status.success() {
        return;
    }
    let fx = Fixture::new();
    // Like numpy: the package finds its vendored libraries next to itself through realpath.
    let numpyish = Pkg::new(
        "numpyish",
        &[
            (
                "numpyish/__init__.py",
                "import os\nhere = os.path.dirname(os.path.realpath(__file__))\nLIBS = os.path.join(os.path.dirname(here), 'numpyish.libs')\nFOUND = sorted(os.listdir(LIBS))\n",
            ),
            ("numpyish.libs/libfake.so", "ELF"),
        ],
        &[],
    );
    let other = Pkg::new("other", &[("other.py", "")], &[]);
    let spec = spec_of(&fx.store, &[numpyish, other]);
    let mut results = Vec::new();
    for mode in [LinkMode::Hardlink, LinkMode::Symlink] {
        let mut cache =
            LayoutCache::open(&fx.dir.path().join(format!("layouts-{mode}")), &fx.store).unwrap();
        cache.set_link_mode(mode);
        let venv = fx.venv(&mode.to_string());
        let installed = cache.install(&spec, &venv).unwrap();
        let out = std::process::Command::new("python3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // Through the venv's `.pth` file, as `site` processes it at start-up.
            .args([
                "-S",
                "-c",
                "import site, sys; site.addsitedir(sys.argv[1]); import numpyish, other; print(numpyish.FOUND)",
            ])
            .arg(&installed.site_packages)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        results.push(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(results, vec!["['libfake.so']\n"; 2]);
}
