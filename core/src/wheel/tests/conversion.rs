//! Conversion of well-formed wheels: every scheme, headers, determinism, skipped entries, the pinned demo package.
use super::*;

#[test]
fn converts_a_wheel_with_every_scheme() {
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    assert_eq!(c.name, "Demo.Pkg");
    assert_eq!(c.version, "1.0");
    assert_eq!(c.dist_info, "Demo_Pkg-1.0.dist-info");
    assert_eq!(
        c.metadata.requires_dist,
        ["six>=1.0", "attrs; extra == 'x'"]
    );
    assert_eq!(c.metadata.requires_python.as_deref(), Some(">=3.8"));
    assert_eq!(c.metadata.provides_extra, ["x"]);
    assert_eq!(c.entry_points.console_scripts[0].name, "demo");
    assert_eq!(c.entry_points.gui_scripts[0].attr.as_deref(), Some("main"));

    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    r.validate().unwrap();
    assert_eq!(
        (r.name(), r.version(), r.dist_info()),
        ("Demo.Pkg", "1.0", "Demo_Pkg-1.0.dist-info")
    );
    let get = |scheme, path: &str| {
        r.get(scheme, path)
            .unwrap()
            .unwrap_or_else(|| panic!("{path}"))
    };
    assert_eq!(get(Scheme::SitePackages, "demo_pkg/core.py").mode, 0o644);
    assert_eq!(get(Scheme::SitePackages, "demo_pkg/tool.sh").mode, 0o755);
    assert_eq!(
        get(Scheme::SitePackages, "demo_pkg/extra.py").data,
        b"EXTRA = 1\n"
    );
    assert_eq!(
        get(Scheme::SitePackages, "demo_pkg/_native.so").data,
        b"\x7fELF fake"
    );
    assert_eq!(
        get(Scheme::Scripts, "demo-script").data,
        b"#!python\nprint('hi')\n"
    );
    assert_eq!(get(Scheme::Scripts, "demo-script").mode, 0o755);
    assert_eq!(get(Scheme::Headers, "demo.h").data, b"int demo(void);\n");
    assert_eq!(
        get(Scheme::Data, "share/man/man1/demo.1").data,
        b".TH DEMO 1\n"
    );
    assert_eq!(
        get(Scheme::SitePackages, "Demo_Pkg-1.0.dist-info/LICENSE").data,
        b"MIT\n"
    );
    assert_eq!(
        get(Scheme::SitePackages, "Demo_Pkg-1.0.dist-info/INSTALLER").data,
        b"dx-py\n"
    );
    // Nothing of the .data directory itself is installed.
    assert!(r.entries().all(|e| !e.unwrap().path.contains(".data")));

    let record =
        std::str::from_utf8(get(Scheme::SitePackages, "Demo_Pkg-1.0.dist-info/RECORD").data)
            .unwrap();
    let h = |d: &[u8]| format!("sha256={},{}", sha256_record(d), d.len());
    let want = [
        "../../../bin/demo,,".to_string(),
        "../../../bin/demo-gui,,".to_string(),
        // `#!python` scripts get their shebang rewritten at install: no hash.
        "../../../bin/demo-script,,".to_string(),
        format!("../../../bin/demo-sh,{}", h(b"#!/bin/sh\necho sh\n")),
        format!("../../../share/man/man1/demo.1,{}", h(b".TH DEMO 1\n")),
        format!("Demo_Pkg-1.0.dist-info/INSTALLER,{}", h(b"dx-py\n")),
        format!("Demo_Pkg-1.0.dist-info/LICENSE,{}", h(b"MIT\n")),
        format!(
            "Demo_Pkg-1.0.dist-info/METADATA,{}",
            h(w.metadata_text().as_bytes())
        ),
        "Demo_Pkg-1.0.dist-info/RECORD,,".to_string(),
    ];
    let lines: Vec<&str> = record.lines().collect();
    for line in &want {
        assert!(lines.contains(&line.as_str()), "{line} not in\n{record}");
    }
    assert!(lines.contains(&format!("demo_pkg/extra.py,{}", h(b"EXTRA = 1\n")).as_str()));
    // A py3 wheel does not say which Python's include directory the header goes to.
    assert!(!record.contains("demo.h"));
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    // Every installed file but RECORD and headers has a row; rows name no .data path.
    assert_eq!(lines.len(), r.len() - 1 + 2);
    assert!(!record.contains(".data/"));
}

#[test]
fn headers_are_recorded_for_a_single_cpython() {
    let w = WheelBuilder::new("h", "1")
        .tag("cp311-cp311-manylinux_2_17_x86_64")
        .data_file("headers", "h.h", b"x");
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    let record = r.get_file("h-1.dist-info/RECORD").unwrap().unwrap().data;
    assert!(std::str::from_utf8(record).unwrap().contains(&format!(
        "../../../include/site/python3.11/h/h.h,sha256={},1\n",
        sha256_record(b"x")
    )));
}

#[test]
fn same_wheel_same_bytes_and_no_timestamps() {
    let w = demo();
    let a = convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg;
    let b = convert_wheel(&w.filename(), &w.build()).unwrap().dxpkg;
    assert_eq!(a, b);
    // Another modification time in every header changes the zip, not the package.
    let mut zipped = w.build();
    for e in w.entries() {
        let (local, central) = header_positions(&zipped, e.path.as_bytes());
        for at in local {
            put_u16(&mut zipped, at + 10, 0x6000);
        }
        for at in central {
            put_u16(&mut zipped, at + 12, 0x6000);
        }
    }
    assert_ne!(zipped, w.build());
    assert_eq!(convert_wheel(&w.filename(), &zipped).unwrap().dxpkg, a);
}

#[test]
fn directories_are_skipped_and_symlinks_inside_kept() {
    let w = WheelBuilder::new("links", "1.0")
        .raw(RawEntry::dir("pkg"))
        .file("pkg/__init__.py", b"")
        .file("pkg/sub/impl.py", b"X = 1\n")
        .symlink("pkg/alias.py", "sub/impl.py")
        .symlink("pkg/subdir", "./sub/")
        .symlink("pkg/chain.py", "../pkg/alias.py")
        .raw(RawEntry::dir("pkg/empty"));
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    let alias = r.get_file("pkg/alias.py").unwrap().unwrap();
    assert_eq!(
        (alias.kind, alias.data, alias.mode),
        (EntryKind::Symlink, &b"sub/impl.py"[..], 0o777)
    );
    assert_eq!(
        r.get_file("pkg/subdir").unwrap().unwrap().kind,
        EntryKind::Symlink
    );
    assert!(r.get_file("pkg").unwrap().is_none());
    assert!(r.get_file("pkg/empty").unwrap().is_none());
    let record = std::str::from_utf8(
        r.get_file("links-1.0.dist-info/RECORD")
            .unwrap()
            .unwrap()
            .data,
    )
    .unwrap();
    assert!(record.contains("pkg/alias.py,,\n"));
}

#[test]
fn wheel_installer_file_is_replaced() {
    let w = WheelBuilder::new("p", "1").dist_info_file("INSTALLER", b"pip\n");
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    let r = DxpkgReader::new(&c.dxpkg[..]).unwrap();
    assert_eq!(
        r.get_file("p-1.dist-info/INSTALLER").unwrap().unwrap().data,
        b"dx-py\n"
    );
}

#[test]
fn raw_kinds_round_trip_through_the_builder() {
    // The builder's own output is what the converter expects: a guard for the helpers above.
    let w = WheelBuilder::new("p", "1")
        .symlink("p/l", "x.py")
        .file("p/x.py", b"");
    let kinds: Vec<RawKind> = w.entries().iter().map(|e| e.kind).collect();
    assert_eq!(kinds[0], RawKind::Symlink);
    convert_wheel(&w.filename(), &w.build()).unwrap();
}

/// The package made from the demo wheel, pinned: conversion changes that alter bytes (the
/// installed RECORD, modes, paths) must be deliberate.
#[test]
fn demo_package_bytes_are_pinned() {
    let w = demo();
    let c = convert_wheel(&w.filename(), &w.build()).unwrap();
    assert_eq!(
        crate::hash::ContentHash::of(&c.dxpkg).to_hex(),
        "ee99beeb0c74dc8aa20fb110e61c678883ca328bbeb3c3192bf862c5f7b1c406"
    );
}
