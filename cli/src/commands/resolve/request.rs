//! What the resolver is asked: the requirements of files or of a project, with the command's
//! constraints, overrides, pre-release policy and upgrades, and the versions of the lock already
//! there as preferences.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use dx_py_core::build::{BuildOptions, ConfigSettings, Isolation};
use dx_py_core::dpl::Lock;
use dx_py_core::install::ResolveRequest;
use dx_py_core::project::{DevGroup, ExtrasSelection, GroupsSelection};
use dx_py_core::requirements::{Overrides, Requirements};
use dx_py_core::resolve::{BinaryPolicy, PrereleaseMode, Upgrade};
use pep508_rs::PackageName;

use super::Inputs;
use crate::cli::{PrereleaseArg, ResolveArgs};
use crate::commands::PYLOCK;

/// The resolver's request for `inputs`.
pub(super) fn request(inputs: &Inputs<'_>, args: &ResolveArgs) -> Result<ResolveRequest> {
    let mut request = ResolveRequest {
        prerelease: match args.prerelease {
            Some(PrereleaseArg::Allow) => PrereleaseMode::Allow,
            Some(PrereleaseArg::Disallow) => PrereleaseMode::Disallow,
            Some(PrereleaseArg::IfNecessaryOrExplicit) | None => {
                PrereleaseMode::IfNecessaryOrExplicit
            }
        },
        upgrade: if args.upgrade {
            Upgrade::All
        } else if args.upgrade_package.is_empty() {
            Upgrade::None
        } else {
            Upgrade::Packages(
                args.upgrade_package
                    .iter()
                    .map(|p| {
                        PackageName::new(p.clone())
                            .with_context(|| format!("Invalid package name `{p}`"))
                    })
                    .collect::<Result<_>>()?,
            )
        },
        no_build: args.no_build,
        config_settings: config_settings(args),
        binary: BinaryPolicy::new(&args.no_binary, &args.only_binary)?,
        ..ResolveRequest::default()
    };
    match inputs {
        Inputs::Files(files) => {
            for (_, reqs) in *files {
                request.requirements.extend(reqs.to_pep508()?);
                request.constraints.extend(reqs.constraints_to_pep508()?);
                if reqs.pre && args.prerelease.is_none() {
                    request.prerelease = PrereleaseMode::Allow;
                }
                let mut hashes: BTreeMap<PackageName, Vec<String>> = BTreeMap::new();
                for entry in &reqs.entries {
                    if let (Some(name), false) = (&entry.name, entry.hashes.is_empty()) {
                        let name = PackageName::new(name.clone())
                            .with_context(|| format!("Invalid package name `{name}`"))?;
                        hashes.entry(name).or_default().extend(entry.hashes.clone());
                    }
                }
                request.hashes.extend(hashes);
            }
        }
        Inputs::Project(project, selection) => {
            let extras = if selection.all_extras {
                ExtrasSelection::All
            } else if selection.extra.is_empty() {
                ExtrasSelection::None
            } else {
                ExtrasSelection::Some(selection.extra.clone())
            };
            let groups = GroupsSelection {
                groups: selection.group.clone(),
                all: selection.all_groups,
                dev: if selection.no_dev {
                    DevGroup::Exclude
                } else {
                    DevGroup::Include
                },
            };
            request.requirements = project.requirements(&extras, &groups)?;
            request.constraints = project.constraint_dependencies.clone();
            request.overrides = project.override_dependencies.clone();
            request.requires_python = project.requires_python.clone();
        }
    }
    for path in &args.constraint {
        request
            .constraints
            .extend(Requirements::from_constraints_file(path)?.constraints_to_pep508()?);
    }
    for path in &args.overrides {
        request
            .overrides
            .extend(Overrides::from_file(path)?.to_requirements()?);
    }
    Ok(request)
}

/// `--config-settings` as the builder takes them (each was checked to hold `=` when parsed).
pub(super) fn config_settings(args: &ResolveArgs) -> ConfigSettings {
    let mut settings = ConfigSettings::default();
    for pair in &args.config_settings {
        let _ = settings.add(pair);
    }
    settings
}

/// How sdists are built for `args`; the timeout of one backend hook is `--build-timeout`,
/// else `DX_PY_BUILD_TIMEOUT` (seconds) when set.
pub(crate) fn build_options(args: &ResolveArgs) -> Result<BuildOptions> {
    let mut options = BuildOptions {
        isolation: if args.no_build_isolation {
            Isolation::Shared
        } else {
            Isolation::Isolated
        },
        config_settings: config_settings(args),
        ..BuildOptions::default()
    };
    if let Ok(text) = std::env::var("DX_PY_BUILD_TIMEOUT") {
        let seconds: u64 = text.trim().parse().with_context(|| {
            format!("Invalid `DX_PY_BUILD_TIMEOUT={text}`: expected a number of seconds")
        })?;
        options.timeout = std::time::Duration::from_secs(seconds);
    }
    if let Some(seconds) = args.build_timeout {
        options.timeout = std::time::Duration::from_secs(seconds);
    }
    Ok(options)
}

/// The versions of the lock already in `dir`, preferred by the resolver (stable re-locks).
pub(super) fn preferences(dir: &Path) -> BTreeMap<PackageName, pep440_rs::Version> {
    let Ok(text) = std::fs::read_to_string(dir.join(PYLOCK)) else {
        return BTreeMap::new();
    };
    let Ok(lock) = Lock::from_pylock_str(&text) else {
        return BTreeMap::new();
    };
    lock.packages
        .iter()
        .filter_map(|p| {
            Some((
                PackageName::new(p.name.clone()).ok()?,
                p.version.parse().ok()?,
            ))
        })
        .collect()
}
