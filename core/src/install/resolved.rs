//! Locking requirements that need resolving: resolve them for one interpreter, then make the
//! resolution a lock: for each package the wheel chosen for the target with its sha256, its
//! extras table, `Requires-Python` and dependencies. Nothing is downloaded or stored here unless
//! the index gave no hash for a remote wheel: the install that follows stores what it needs (as
//! for any lock without store hashes), so a lock costs what its metadata costs.
//!
//! Wheels named by path or URL (`name @ file:///…/name-1.0-py3-none-any.whl`) are the only file
//! of their package the resolver sees.
use std::collections::BTreeMap;
use std::sync::Arc;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{PackageName, Requirement, VersionOrUrl};

use super::report::PhaseTimer;
use super::{InstallError, Reporter};
use crate::build::Builder;
use crate::dpl::{Lock, LockMeta, LockedPackage, LockedWheel};
use crate::hash::{ContentHash, sha256_hex};
use crate::index::{IndexClient, IndexError, IndexFile, Listing, PackageSources};
use crate::names::normalize_name;
use crate::python::{TagPriorities, Target};
use crate::resolve::{
    BinaryPolicy, IndexSource, Manifest, PackageSource, PrereleaseMode, Resolution, ResolveError,
    ResolveOptions, ResolvedPackage, SourceError, Target as SolveTarget, Upgrade,
};
use crate::wheel::WheelMetadata;

/// What to resolve, and the choices that shape the result.
#[derive(Clone, Debug, Default)]
pub struct ResolveRequest {
    /// The root requirements; a wheel may be named by URL (`name @ file:///…/x.whl`).
    pub requirements: Vec<Requirement>,
    /// Constraints (`-c`).
    pub constraints: Vec<Requirement>,
    /// Overrides (`--override`).
    pub overrides: Vec<Requirement>,
    /// Allowed sha256 digests per package (hash-checking mode).
    pub hashes: BTreeMap<PackageName, Vec<String>>,
    /// The project's `requires-python`.
    pub requires_python: Option<VersionSpecifiers>,
    /// Versions of an existing lock, kept when the requirements allow.
    pub preferences: BTreeMap<PackageName, Version>,
    /// Which preferences to drop.
    pub upgrade: Upgrade,
    /// When pre-releases may be chosen.
    pub prerelease: PrereleaseMode,
    /// `--no-build`: sdists are refused (the resolution may differ, so the hash records it).
    pub no_build: bool,
    /// `--config-settings` for builds (the built wheels may differ, so the hash records them).
    pub config_settings: crate::build::ConfigSettings,
    /// `--no-binary` / `--only-binary` (the files chosen differ, so the hash records them).
    pub binary: BinaryPolicy,
    /// The local source the requirements name, each as `install::local_fingerprint` writes
    /// it: where it is relative to the lock and what its metadata is, never a machine's cache
    /// path, so a universal lock stays fresh in another checkout and goes stale when a local
    /// project's dependencies change.
    pub local_sources: Vec<String>,
}

impl ResolveRequest {
    /// The hash a lock made from this request records: everything that shapes the result (the
    /// requirements, constraints, overrides, hashes, `requires-python`, the pre-release policy,
    /// the interpreter and the sources). A lock recording the same hash needs no resolution;
    /// preferences and upgrades are left out (they only matter when resolving anyway).
    pub fn inputs_hash(&self, target: &Target, sources: &PackageSources) -> ContentHash {
        self.hash_with(
            "dx-py resolve inputs v1",
            &[
                ("tag", &target.tags.key()),
                ("python", &target.markers.python_full_version().string),
            ],
            sources,
        )
    }

    /// The hash a universal lock of this request for `scope` records: as [`Self::inputs_hash`],
    /// with the scope's marker in place of the interpreter (the lock is the same on every
    /// machine).
    pub fn universal_inputs_hash(
        &self,
        scope: &pep508_rs::MarkerTree,
        sources: &PackageSources,
    ) -> ContentHash {
        let scope = scope.try_to_string().unwrap_or_default();
        self.hash_with("dx-py universal inputs v1", &[("scope", &scope)], sources)
    }

    fn hash_with(
        &self,
        version: &str,
        target: &[(&str, &str)],
        sources: &PackageSources,
    ) -> ContentHash {
        let mut h = blake3::Hasher::new();
        let mut field = |tag: &str, value: &str| {
            h.update(tag.as_bytes());
            h.update(b"\0");
            h.update(value.as_bytes());
            h.update(b"\0");
        };
        field("v", version);
        for r in &self.requirements {
            field("r", &r.to_string());
        }
        for r in &self.constraints {
            field("c", &r.to_string());
        }
        for r in &self.overrides {
            field("o", &r.to_string());
        }
        for (name, digests) in &self.hashes {
            field("h", &format!("{name} {}", digests.join(" ")));
        }
        if let Some(rp) = &self.requires_python {
            field("p", &rp.to_string());
        }
        field("pre", &format!("{:?}", self.prerelease));
        // Recorded only when set, so that locks made before builds existed stay fresh.
        if self.no_build {
            field("nb", "");
        }
        if !self.config_settings.is_empty() {
            field("cs", &self.config_settings.fingerprint());
        }
        if !self.binary.is_default() {
            field("bin", &self.binary.fingerprint());
        }
        for local in &self.local_sources {
            field("l", local);
        }
        for (tag, value) in target {
            field(tag, value);
        }
        if let Some(index) = &sources.index_url {
            field("i", index.url.as_str());
        }
        for index in &sources.extra_index_urls {
            field("x", index.url.as_str());
        }
        for location in &sources.find_links {
            field("f", &location.to_string());
        }
        ContentHash::from_bytes(*h.finalize().as_bytes())
    }
}

/// Resolves `request` for `target` (an interpreter's, or this platform with another Python)
/// through `client` and returns the lock, with `meta`'s inputs hash; its environment and Python
/// version are the target's. With a `builder`, a package with only an sdist is built (for its
/// metadata while resolving, then its wheel, which the lock names by its path in the cache);
/// without one it is refused.
pub fn resolve_and_lock(
    request: &ResolveRequest,
    target: &Target,
    client: &IndexClient,
    meta: LockMeta,
    reporter: &dyn Reporter,
    builder: Option<&Builder<'_>>,
) -> Result<Lock, InstallError> {
    let meta = LockMeta {
        environment: target.tags.key(),
        python_version: target.markers.python_full_version().string.clone(),
        ..meta
    };
    let index = IndexSource::new(client);
    let (source, requirements) = WithDirectFiles::new(&index, reporter, builder, request)?;
    let manifest = Manifest {
        requirements,
        constraints: request.constraints.clone(),
        overrides: request.overrides.clone(),
        preferences: request.preferences.clone(),
        upgrade: request.upgrade.clone(),
        requires_python: request.requires_python.clone(),
    };
    let priorities = TagPriorities::new(&target.tags);
    let priority = |tags: &[crate::wheel::Tag]| priorities.priority(tags);
    let solve_for = SolveTarget {
        markers: &target.markers,
        tag_priority: &priority,
    };
    let options = ResolveOptions {
        prerelease: request.prerelease,
        build_sdists: builder.is_some(),
        binary: request.binary.clone(),
        ..ResolveOptions::default()
    };
    let mut timer = PhaseTimer::start();
    let resolution = crate::resolve::resolve(&manifest, solve_for, &options, &source)
        .map_err(|e| InstallError::Resolve(Box::new(e)))?;
    // Includes the waits for pages and metadata the solver needed (fetched in parallel).
    timer.report(reporter, "resolve");
    let lock = lock_resolution(&resolution, &source, client, &request.hashes, meta, builder)?;
    timer.report(reporter, "lock files");
    Ok(lock)
}

/// A source where packages named by a wheel URL have that one file; it tells `reporter` of
/// each package whose files are asked for (progress). Sdists whose `PKG-INFO` cannot be trusted
/// for their dependencies get the metadata `builder` prepares, when there is one.
pub(super) struct WithDirectFiles<'a> {
    inner: &'a dyn PackageSource,
    direct: BTreeMap<PackageName, IndexFile>,
    reporter: &'a dyn Reporter,
    builder: Option<&'a Builder<'a>>,
}

impl<'a> WithDirectFiles<'a> {
    /// The source over `inner` for `request`, and the request's requirements as the resolver
    /// takes them (a wheel URL made a bare name whose one file is that wheel).
    pub(super) fn new(
        inner: &'a dyn PackageSource,
        reporter: &'a dyn Reporter,
        builder: Option<&'a Builder<'a>>,
        request: &ResolveRequest,
    ) -> Result<(Self, Vec<Requirement>), InstallError> {
        let mut source = Self {
            inner,
            direct: BTreeMap::new(),
            reporter,
            builder,
        };
        let requirements = (request.requirements.iter())
            .map(|r| source.take_direct(r))
            .collect::<Result<_, _>>()?;
        Ok((source, requirements))
    }

    /// `req` as the resolver takes it: a wheel URL becomes the package's only file and the
    /// requirement a bare name (with its extras and marker).
    fn take_direct(&mut self, req: &Requirement) -> Result<Requirement, InstallError> {
        let Some(VersionOrUrl::Url(url)) = &req.version_or_url else {
            return Ok(req.clone());
        };
        let url = url.to_url();
        let filename = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|f| f.ends_with(".whl"))
            .map(crate::index::simple::percent_decode)
            .ok_or_else(|| {
                InstallError::Resolve(Box::new(ResolveError::UrlRequirement(req.to_string())))
            })?;
        let mut file = IndexFile {
            filename,
            url: url.to_string(),
            ..IndexFile::default()
        };
        file.url
            .truncate(file.url.find('#').unwrap_or(file.url.len()));
        self.direct.insert(req.name.clone(), file);
        let mut bare = req.clone();
        bare.version_or_url = None;
        Ok(bare)
    }
}

impl PackageSource for WithDirectFiles<'_> {
    fn files(&self, name: &PackageName) -> Result<Arc<Listing>, SourceError> {
        self.reporter.on_resolving(name);
        match self.direct.get(name) {
            Some(file) => Ok(Arc::new(vec![file.clone()].into())),
            None => self.inner.files(name),
        }
    }

    fn metadata(
        &self,
        name: &PackageName,
        file: &IndexFile,
    ) -> Result<Arc<WheelMetadata>, SourceError> {
        or_built(self.inner.metadata(name, file), self.builder, name, file)
    }
}

/// `answer` (a source's metadata of `file`), unless it says the file is an sdist whose PKG-INFO
/// cannot be trusted for its dependencies: then the metadata its backend prepares, when
/// `builder` is given (once per process: the builder keeps answers and failures).
pub(super) fn or_built(
    answer: Result<Arc<WheelMetadata>, SourceError>,
    builder: Option<&Builder<'_>>,
    name: &PackageName,
    file: &IndexFile,
) -> Result<Arc<WheelMetadata>, SourceError> {
    if let (Some(builder), Err(SourceError::Index(e))) = (builder, &answer)
        && let IndexError::NeedsBuild { version, .. } = &**e
    {
        return builder
            .metadata(name, version, file)
            .map(Arc::new)
            .map_err(|e| SourceError::Build(Arc::new(e)));
    }
    answer
}

/// The wheel built from `p`'s sdist (for its file name and metadata: the lock names the sdist).
fn built_file(builder: &Builder<'_>, p: &ResolvedPackage) -> Result<IndexFile, InstallError> {
    let built = builder
        .wheel(&p.name, &p.version.to_string(), &p.file)
        .map_err(|e| InstallError::Build(Box::new(e)))?;
    let url = url::Url::from_file_path(&built.path)
        .map(String::from)
        .unwrap_or_else(|()| built.path.to_string_lossy().into_owned());
    Ok(IndexFile {
        filename: built.filename,
        url,
        sha256: Some(built.sha256),
        size: Some(built.size),
        ..IndexFile::default()
    })
}

/// Makes `resolution` a lock with `meta`. `hashes` holds, per package, the sha256 digests the
/// requirements allow (hash-checking mode); a wheel with another digest is refused.
pub fn lock_resolution(
    resolution: &Resolution,
    source: &dyn PackageSource,
    client: &IndexClient,
    hashes: &BTreeMap<PackageName, Vec<String>>,
    meta: LockMeta,
    builder: Option<&Builder<'_>>,
) -> Result<Lock, InstallError> {
    let packages = crate::parallel::map_in_order(&resolution.packages, 8, |p| {
        locked_package(p, source, client, hashes.get(&p.name), builder)
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let mut lock = Lock { meta, packages };
    lock.canonicalize();
    Ok(lock)
}

fn locked_package(
    p: &ResolvedPackage,
    source: &dyn PackageSource,
    client: &IndexClient,
    allowed: Option<&Vec<String>>,
    builder: Option<&Builder<'_>>,
) -> Result<LockedPackage, InstallError> {
    let name = p.name.to_string();
    // Hash-checking mode checks the file the lock names: the wheel, or the sdist.
    let (sha256, digest) = file_digest(&p.file, client, &name)?;
    if let Some(allowed) = allowed
        && !allowed.contains(&sha256)
    {
        return Err(InstallError::HashMismatch {
            name,
            filename: p.file.filename.clone(),
            expected: allowed.join(" or "),
            actual: sha256,
        });
    }
    let built = match (builder, p.file.filename.ends_with(".whl")) {
        (Some(builder), false) => Some(built_file(builder, p)?),
        _ => None,
    };
    let file = built.as_ref().unwrap_or(&p.file);
    let metadata = source
        .metadata(&p.name, file)
        .map_err(|e| InstallError::Resolve(Box::new(e.into())))?;
    let mut extras: Vec<String> = Vec::new();
    for e in &metadata.provides_extra {
        let e = normalize_name(e);
        if !extras.contains(&e) && extras.len() < 64 {
            extras.push(e);
        }
    }
    let mut extras_bitmap = 0u64;
    for wanted in &p.extras {
        if let Some(i) = extras.iter().position(|e| e == wanted.as_ref()) {
            extras_bitmap |= 1 << i;
        }
    }
    let (url, path) = file_location(&p.file);
    let located = LockedWheel {
        filename: p.file.filename.clone(),
        url,
        path,
        sha256: digest,
        size: p.file.size,
    };
    // Built: the lock names the sdist (portable), not the wheel in this machine's cache; the
    // wheel keeps only its name, and the sdist's sha256 by which an install finds what it built.
    let (wheel, sdist) = match built {
        Some(built) => {
            let sdist = LockedWheel {
                filename: located
                    .location()
                    .and_then(crate::dpl::last_segment)
                    .map_or_else(|| located.filename.clone(), str::to_owned),
                ..located
            };
            let wheel = LockedWheel {
                filename: built.filename,
                url: None,
                path: None,
                sha256: digest,
                size: None,
            };
            (wheel, Some(sdist))
        }
        None => (located, None),
    };
    Ok(LockedPackage {
        name: metadata.name.clone(),
        version: metadata.version.clone(),
        marker: None,
        requires_python: metadata.requires_python.clone(),
        index_url: None,
        extras,
        extras_bitmap,
        wheel,
        sdist,
        local: None,
        store_hash: None,
        dependencies: p.dependencies.iter().map(ToString::to_string).collect(),
    })
}

/// The sha256 of `file` (of package `name`), as hex and bytes: the index's, else a local file
/// hashed in place, else the remote file downloaded (into the download cache, so the install
/// that follows does not fetch it again).
pub(super) fn file_digest(
    file: &IndexFile,
    client: &IndexClient,
    name: &str,
) -> Result<(String, [u8; 32]), InstallError> {
    let sha256 =
        match &file.sha256 {
            Some(h) => h.clone(),
            None => sha256_hex(&client.download(&file.url, None).map_err(|source| {
                InstallError::Index {
                    name: name.to_owned(),
                    source: Box::new(source),
                }
            })?),
        };
    let mut digest = [0u8; 32];
    data_encoding::HEXLOWER
        .decode_mut(sha256.as_bytes(), &mut digest)
        .map_err(|_| InstallError::HashMismatch {
            name: name.to_owned(),
            filename: file.filename.clone(),
            expected: "64 hex digits".to_owned(),
            actual: sha256.clone(),
        })?;
    Ok((sha256, digest))
}

/// Where a lock says `file` is: a URL, or a path for a `file:` URL.
pub(super) fn file_location(file: &IndexFile) -> (Option<String>, Option<String>) {
    match url::Url::parse(&file.url) {
        Ok(u) if u.scheme() == "file" => (
            None,
            u.to_file_path()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        ),
        _ => (Some(file.url.clone()), None),
    }
}
