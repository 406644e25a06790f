//! Helpers shared by the configuration tests: a made-up environment, discovery without pip, and
//! files written under a temporary root.
use std::path::{Path, PathBuf};

use super::{ConfigEnv, ConfigError, PackageSources, PipDefaultIndex, SourceOverrides};
use crate::requirements::Requirements;

pub(super) fn env(vars: &[(&str, &str)], root: &Path) -> ConfigEnv {
    ConfigEnv::new(vars.iter().copied(), root)
}

/// Discovery on an interpreter without pip (the tests of configured sources).
pub(super) fn discover(
    cli: &SourceOverrides,
    requirements: Option<&Requirements>,
    env: &ConfigEnv,
) -> Result<PackageSources, ConfigError> {
    super::discover(cli, requirements, env, || None)
}

/// What a fake interpreter's pip answers; no registry host appears in the tests either.
pub(super) fn fake_pip() -> PipDefaultIndex {
    PipDefaultIndex {
        url: "https://pip-default.invalid/simple".to_string(),
        python: PathBuf::from("/fake/bin/python3"),
    }
}

pub(super) fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// The main index's URL and origin.
pub(super) fn index(s: &PackageSources) -> (&str, &str) {
    let i = s.index_url.as_ref().unwrap();
    (i.url.as_str(), i.origin.as_str())
}
