//! Local source built for an install: the project itself (`sync`), the local paths of
//! requirements files (`./project`, `-e ./project`, `name @ file:///abs/project`,
//! `./x-1.0.tar.gz`) and a project's path dependencies (`[tool.dx-py.sources]`). A wheel built
//! before is found by its key without an index client; the client and the builder are made only
//! when something must be built.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use dx_py_core::build::{
    BuildCache, BuildError, BuildOptions, Builder, BuiltWheel, LocalMode, local_key,
};
use dx_py_core::install::{ResolveRequest, local_fingerprint};
use dx_py_core::names::normalize_name;
use dx_py_core::project::Project;
use dx_py_core::python::Interpreter;
use dx_py_core::requirements::{BuildKind, BuildReference, Requirements};
use pep508_rs::{PackageName, VerbatimUrl, VersionOrUrl};
use url::Url;

use super::resolve::build_options;
use crate::cli::{ResolveArgs, SourceArgs};
use crate::printer::Printer;
use crate::settings::{self, Settings};

/// What local builds need: the interpreter, the options and where indexes are.
pub(crate) struct LocalBuilds<'a> {
    pub(crate) interp: &'a Interpreter,
    pub(crate) resolve: &'a ResolveArgs,
    pub(crate) sources: &'a SourceArgs,
    pub(crate) settings: &'a Settings,
    pub(crate) printer: &'a Printer,
}

/// One local source to build.
pub(crate) struct LocalSource<'a> {
    /// Its name, when known before the build.
    pub(crate) name: Option<&'a str>,
    /// The tree or archive.
    pub(crate) path: &'a Path,
    /// A tree (in `mode`) or an archive.
    pub(crate) kind: BuildKind,
    /// How a tree is built.
    pub(crate) mode: LocalMode,
}

impl LocalBuilds<'_> {
    fn options(&self) -> Result<BuildOptions> {
        build_options(self.resolve)
    }

    /// The build cache and the key of a tree's build in `mode`.
    pub(crate) fn tree_key(&self, tree: &Path, mode: LocalMode) -> Result<(BuildCache, String)> {
        let options = self.options()?;
        let builder_key =
            dx_py_core::build::build_key(&self.interp.tag(), &options.config_settings);
        let key = local_key(tree, mode, &builder_key)
            .with_context(|| format!("Failed to read the project at `{}`", tree.display()))?;
        Ok((BuildCache::new(self.settings.cache().builds_dir()), key))
    }

    /// The wheel of `source` when built before (a tree by its key, an archive by its sha256).
    fn cached(&self, source: &LocalSource<'_>) -> Result<Option<BuiltWheel>> {
        let path = canonical(source.path)?;
        match source.kind {
            BuildKind::Directory => {
                let (builds, key) = self.tree_key(&path, source.mode)?;
                Ok(builds.local_wheel(&key))
            }
            BuildKind::Archive => {
                let options = self.options()?;
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("Failed to read `{}`", path.display()))?;
                let sha256 = dx_py_core::hash::sha256_hex(&bytes);
                let key =
                    dx_py_core::build::build_key(&self.interp.tag(), &options.config_settings);
                Ok(BuildCache::new(self.settings.cache().builds_dir()).wheel(&sha256, &key))
            }
        }
    }

    /// The wheels of `sources`, in order: from the cache, else built (refused with
    /// `--no-build`).
    pub(crate) fn wheels(&self, sources: &[LocalSource<'_>]) -> Result<Vec<BuiltWheel>> {
        let mut wheels = Vec::with_capacity(sources.len());
        let mut missing = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            match self.cached(source)? {
                Some(w) => wheels.push(Some(w)),
                None => {
                    wheels.push(None);
                    missing.push(i);
                }
            }
        }
        if let Some(&first) = missing.first() {
            if self.resolve.no_build {
                let source = &sources[first];
                return Err(BuildError::BuildsOff {
                    package: source
                        .name
                        .map_or_else(|| label_of(source.path), str::to_owned),
                    path: source.path.to_path_buf(),
                }
                .into());
            }
            let cache = self.settings.cache();
            let found =
                settings::sources(self.sources, None, self.interp, self.settings, self.printer)?;
            let client = settings::client(self.settings, found, self.sources)?;
            let builder = Builder::new(&cache, self.interp, &client, self.options()?);
            for i in missing {
                let source = &sources[i];
                let start = Instant::now();
                let name = source
                    .name
                    .and_then(|n| PackageName::new(n.to_owned()).ok());
                let wheel = match source.kind {
                    BuildKind::Directory => {
                        builder.local(name.as_ref(), source.path, source.mode)?
                    }
                    BuildKind::Archive => builder.archive(name.as_ref(), source.path)?,
                };
                self.printer.info(format_args!(
                    "Built {} ({}) in {:.1} s",
                    wheel.filename,
                    match (source.kind, source.mode) {
                        (BuildKind::Archive, _) => "from a source archive",
                        (_, LocalMode::Editable) => "editable",
                        (_, LocalMode::Wheel) => "not editable",
                    },
                    start.elapsed().as_secs_f64()
                ));
                wheels[i] = Some(wheel);
            }
        }
        wheels
            .into_iter()
            .map(|w| w.ok_or_else(|| anyhow!("a local build gave no wheel")))
            .collect()
    }

    /// Reads the requirements file at `path`, its local source replaced by the wheels built
    /// from it (see `dx_py_core::requirements` local.rs).
    pub(crate) fn read_requirements(&self, path: &Path) -> Result<Requirements> {
        let mut reqs = Requirements::from_file(path)?;
        if !reqs.has_local_builds() {
            return Ok(reqs);
        }
        if let Some((entry, _, path)) = reqs.local_sources().find(|(_, _, p)| !p.exists()) {
            bail!(
                "Requirement `{}` at `{}` names `{}`, which does not exist",
                entry.requirement_text(),
                entry.location,
                path.display()
            );
        }
        let sources: Vec<LocalSource<'_>> = reqs
            .local_sources()
            .map(|(entry, reference, path)| LocalSource {
                name: entry.name.as_deref(),
                path,
                kind: reference.kind,
                mode: mode_of(reference),
            })
            .collect();
        let wheels: Vec<PathBuf> = self.wheels(&sources)?.into_iter().map(|w| w.path).collect();
        reqs.use_built(&wheels)?;
        Ok(reqs)
    }
}

/// The path dependencies of a project that a request names, each with its normalized name.
pub(crate) type ProjectLocals = Vec<(String, BuildReference)>;

/// The path dependencies of `project` that `request` names; their fingerprints (relative to
/// the lock's directory `lock_dir`, metadata) go into the request's inputs hash. A path that
/// does not exist is refused naming where it was declared.
pub(crate) fn project_locals(
    project: &Project,
    request: &mut ResolveRequest,
    lock_dir: &Path,
) -> Result<ProjectLocals> {
    let named: std::collections::BTreeSet<String> = (request.requirements.iter())
        .map(|r| normalize_name(r.name.as_ref()))
        .collect();
    let mut out = Vec::new();
    for d in &project.local_dependencies {
        if !named.contains(&d.name) {
            continue;
        }
        if !d.path.exists() {
            bail!(
                "`{}` in `{}` names `{}`, which does not exist",
                d.field,
                project.path.display(),
                d.path.display()
            );
        }
        let absolute = std::path::absolute(&d.path)
            .with_context(|| format!("Failed to read `{}`", d.path.display()))?;
        let reference = BuildReference {
            url: Url::from_file_path(&absolute)
                .map_err(|()| anyhow!("`{}` is not a local path", absolute.display()))?,
            path: Some(d.path.clone()),
            kind: d.kind,
            editable: d.editable,
        };
        request
            .local_sources
            .push(local_fingerprint(&d.path, &reference, lock_dir)?);
        out.push((d.name.clone(), reference));
    }
    Ok(out)
}

/// `request` (of the requirements `files`, whose local source was built already) as its
/// universal inputs hash sees it: a requirement on a wheel built from local source names the
/// package alone, and the source is fingerprinted as a project's path dependency is, so that
/// the hash holds no build-cache path (another checkout or interpreter finds the lock fresh).
pub(crate) fn portable_request(
    request: &ResolveRequest,
    files: &[(PathBuf, Requirements)],
    lock_dir: &Path,
) -> Result<ResolveRequest> {
    let built: Vec<(&Path, &BuildReference)> = (files.iter())
        .flat_map(|(_, reqs)| reqs.built_sources())
        .collect();
    let mut portable = request.clone();
    if built.is_empty() {
        return Ok(portable);
    }
    // The lock's directory anchors the relative paths; it is about to hold the lock anyway.
    std::fs::create_dir_all(lock_dir)
        .with_context(|| format!("Failed to create `{}`", lock_dir.display()))?;
    for requirement in &mut portable.requirements {
        let Some(VersionOrUrl::Url(url)) = &requirement.version_or_url else {
            continue;
        };
        let wheel = url.to_url().to_file_path().ok();
        if built.iter().any(|(w, _)| wheel.as_deref() == Some(*w)) {
            requirement.version_or_url = None;
        }
    }
    for (_, from) in &built {
        if let Some(source) = &from.path {
            portable
                .local_sources
                .push(local_fingerprint(source, from, lock_dir)?);
        }
    }
    Ok(portable)
}

impl LocalBuilds<'_> {
    /// Builds each of `locals` (or finds it built) and points the requirements of `request`
    /// on it at the wheel, as the resolver takes local wheels; returns each wheel with the
    /// source it was built from, for the lock to name the source instead.
    pub(crate) fn use_project_locals(
        &self,
        locals: &ProjectLocals,
        request: &mut ResolveRequest,
    ) -> Result<Vec<(PathBuf, BuildReference)>> {
        let sources: Vec<LocalSource<'_>> = locals
            .iter()
            .filter_map(|(name, r)| {
                Some(LocalSource {
                    name: Some(name),
                    path: r.path.as_deref()?,
                    kind: r.kind,
                    mode: mode_of(r),
                })
            })
            .collect();
        let wheels = self.wheels(&sources)?;
        for requirement in &mut request.requirements {
            let name = normalize_name(requirement.name.as_ref());
            if let Some(i) = locals.iter().position(|(n, _)| *n == name) {
                let url = Url::from_file_path(&wheels[i].path).map_err(|()| {
                    anyhow!("`{}` is not an absolute path", wheels[i].path.display())
                })?;
                requirement.version_or_url = Some(VersionOrUrl::Url(VerbatimUrl::from_url(url)));
            }
        }
        Ok(wheels
            .into_iter()
            .map(|w| w.path)
            .zip(locals.iter().map(|(_, r)| r.clone()))
            .collect())
    }
}

/// `-e`: editable; otherwise built.
fn mode_of(reference: &BuildReference) -> LocalMode {
    if reference.editable {
        LocalMode::Editable
    } else {
        LocalMode::Wheel
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("Failed to read `{}`", path.display()))
}

/// A name for a source without one: its last path component.
fn label_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
