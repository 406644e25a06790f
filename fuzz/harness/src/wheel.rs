//! Wheels: a zip archive with METADATA, WHEEL and RECORD, checked and converted into a `.dxpkg`.
use std::str::FromStr;
use std::sync::LazyLock;

use dx_py_core::closure::{Dist, analyze};
use dx_py_core::dxpkg::DxpkgReader;
use dx_py_core::names::PackageName;
use dx_py_core::wheel::{ConvertLimits, convert_wheel_with_limits, prepare_wheel};
use pep440_rs::Version;
use pep508_rs::ExtraName;

/// File names the first byte of an input chooses from (the name decides the dist-info
/// directory, the tags decide where headers go).
pub const WHEEL_NAMES: [&str; 4] = [
    "demo-1.0-py3-none-any.whl",
    "demo-1.0-cp311-cp311-linux_x86_64.whl",
    "demo-1.0-1-py2.py3-none-any.whl",
    "Demo_Pkg-2.0rc1-py3-none-any.whl",
];

/// The environment `Requires-Dist` markers are evaluated in.
static ENV: LazyLock<pep508_rs::MarkerEnvironment> = LazyLock::new(|| {
    pep508_rs::MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: "3.12.1",
        os_name: "posix",
        platform_machine: "x86_64",
        platform_python_implementation: "CPython",
        platform_release: "6.1.0",
        platform_system: "Linux",
        platform_version: "#1 SMP",
        python_full_version: "3.12.1",
        python_version: "3.12",
        sys_platform: "linux",
    }
    .try_into()
    .expect("constant marker environment")
});

/// Small enough that no input makes the fuzzer run out of memory, large enough for any seed; the
/// same checks run whatever the limits.
fn limits() -> ConvertLimits {
    ConvertLimits {
        max_total_size: 64 << 20,
        max_file_size: 16 << 20,
        ..ConvertLimits::default()
    }
}

/// `convert_wheel_with_limits` (every file decompressed and checked while validating) and
/// `prepare_wheel` + `write_to` (files streamed and checked as the package is written) on the
/// archive after the first byte: both accept the same wheels and give the same bytes, a
/// `.dxpkg` that passes its own full check. The `Requires-Dist` lines of a wheel accepted then
/// go through the lock's closure check (`closure::analyze`), which parses them.
pub fn wheel(data: &[u8]) {
    let Some((&mode, zip)) = data.split_first() else {
        return;
    };
    let name = WHEEL_NAMES[usize::from(mode) % WHEEL_NAMES.len()];
    let limits = limits();
    let whole = convert_wheel_with_limits(name, zip, &limits);
    let streamed = prepare_wheel(name, zip, &limits).map(|prepared| {
        let mut out = Vec::new();
        prepared.write_to(&mut out).map(|_| out)
    });
    match (whole, streamed) {
        (Ok(whole), Ok(Ok(streamed))) => {
            assert!(
                whole.dxpkg == streamed,
                "both conversions give the same bytes"
            );
            let reader = DxpkgReader::new(&whole.dxpkg[..]).expect("converted package opens");
            reader.validate().expect("converted package validates");
            assert_eq!(reader.name(), whole.name);
            assert_eq!(reader.dist_info(), whole.dist_info);
            // A converted wheel's METADATA name and version match its (valid) file name.
            let dist = Dist {
                name: PackageName::from_str(&whole.metadata.name).expect("checked name"),
                version: Version::from_str(&whole.metadata.version).expect("checked version"),
                requires_dist: whole.metadata.requires_dist.clone(),
                extras: (whole.metadata.provides_extra.iter())
                    .filter_map(|e| ExtraName::from_str(e).ok())
                    .collect(),
            };
            let _ = analyze(&[dist], &ENV);
        }
        (Err(_), Err(_) | Ok(Err(_))) => {}
        (whole, streamed) => panic!(
            "the conversions disagree: whole {:?}, streamed {:?}",
            whole.map(|w| w.name),
            streamed.map(|s| s.map(|b| b.len()))
        ),
    }
}
