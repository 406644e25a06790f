//! The solver: the manifest and the target turned into a `pubgrub::DependencyProvider`, the
//! choice of candidates (tags, Requires-Python, yanked, pre-releases, preferences), and the
//! prefetching of likely next metadata on worker threads.
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::str::FromStr;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use dashmap::DashMap;
use pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerTree, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics,
    PubGrubError,
};
use version_ranges::Ranges;

use super::binary::BinaryPolicy;
use super::environment::{Environment, TagPriority};
use super::ranges::{arbitrary_equality_holds, names_prerelease, specifiers_to_ranges};
use super::source::{Shared, once};
use super::{
    Manifest, Package, PackageSource, PrereleaseMode, Resolution, ResolveError, ResolveOptions,
    ResolvedPackage, SourceError,
};
use crate::index::{IndexFile, Listing, SelectedWheel, select_wheel};
use crate::wheel::{Tag, WheelMetadata};

/// The version the root package has.
fn root_version() -> Version {
    Version::new([0u64])
}

/// Why a version cannot be used, as the explanation says it after `name==version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Unavailable {
    /// The metadata's `Requires-Python` excludes the target.
    RequiresPython {
        /// As written.
        requires_python: String,
        /// The target Python.
        python: String,
    },
    /// A `Requires-Dist` line that does not parse.
    InvalidRequirement {
        /// The line.
        requirement: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RequiresPython {
                requires_python,
                python,
            } => write!(
                f,
                "requires Python {requires_python}, but the target is Python {python}"
            ),
            Self::InvalidRequirement {
                requirement,
                reason,
            } => write!(f, "has an invalid requirement `{requirement}` ({reason})"),
        }
    }
}

/// Whether a version's files offer something for the target.
#[derive(Debug)]
enum Status {
    /// A wheel fits.
    Usable(Box<SelectedWheel>),
    /// No wheel fits, but these sdists would (after a build); `file` is the one to build.
    NeedsBuild {
        sdists: Vec<String>,
        file: Box<IndexFile>,
    },
    /// Nothing fits (tags, Requires-Python of the files, yanked).
    Skipped,
}

/// One version of a package and its files.
#[derive(Debug)]
struct VersionEntry {
    version: Version,
    /// Its files, as positions in [`Versions::files`] (a page may list thousands of files:
    /// they are not copied).
    files: Vec<usize>,
    status: OnceLock<Status>,
}

/// A package's versions, highest first.
#[derive(Debug)]
pub(super) struct Versions {
    entries: Vec<VersionEntry>,
    /// Every file of the package, as the source listed them.
    files: Arc<Listing>,
}

impl Versions {
    fn get(&self, version: &Version) -> Option<&VersionEntry> {
        self.entries
            .binary_search_by(|e| version.cmp(&e.version))
            .ok()
            .and_then(|i| self.entries.get(i))
    }
}

/// Why a solve stopped: a failure, or a universal fork that must be split first.
#[derive(Debug, thiserror::Error)]
pub(super) enum SolveError {
    /// The resolution failed.
    #[error(transparent)]
    Resolve(ResolveError),
    /// Requirements on one package differ by marker inside the fork: solve the fork where this
    /// marker holds and where it does not, separately.
    #[error("the fork splits on `{}`", .0.try_to_string().unwrap_or_default())]
    Fork(MarkerTree),
}

impl From<ResolveError> for SolveError {
    fn from(e: ResolveError) -> Self {
        Self::Resolve(e)
    }
}

impl From<SourceError> for SolveError {
    fn from(e: SourceError) -> Self {
        Self::Resolve(e.into())
    }
}

/// Dependencies of one package version: the range and the marker under which each applies
/// (`TRUE` in one environment).
type Dependencies_ = BTreeMap<Package, (Ranges<Version>, MarkerTree)>;

/// Every wheel may serve some environment of a universal fork.
fn any_tag(_: &[Tag]) -> Option<usize> {
    Some(0)
}

/// A dependency to look at ahead of the solver.
type PrefetchJob = (PackageName, Ranges<Version>);

/// Everything a solve knows; shared with the prefetch workers.
pub(super) struct Context<'a> {
    source: &'a dyn PackageSource,
    env: Environment<'a>,
    mode: PrereleaseMode,
    /// Versions with only sdists may be chosen (the source builds them).
    build_sdists: bool,
    /// `--no-binary` / `--only-binary`.
    binary: BinaryPolicy,
    /// The target Python, release numbers only (Requires-Python compares those); in a fork,
    /// the lowest Python it allows.
    python: Version,
    requirements: Vec<Requirement>,
    constraints: HashMap<PackageName, Ranges<Version>>,
    overrides: HashMap<PackageName, Vec<Requirement>>,
    preferences: HashMap<PackageName, Version>,
    /// Packages a manifest specifier names a pre-release of.
    explicit_prereleases: HashSet<PackageName>,
    /// Versions pinned with `==`/`===` in the manifest: their yanked files may be used.
    pins: HashMap<PackageName, Vec<Ranges<Version>>>,
    /// `===` specifiers of the manifest, which ranges cannot express fully.
    arbitrary: HashMap<PackageName, Vec<VersionSpecifiers>>,
    versions: DashMap<PackageName, Shared<Arc<Versions>>>,
    /// The dependencies (extras apart, with the marker under which each applies) found for
    /// each package version, for the resolution.
    edges: Mutex<HashMap<(Package, Version), BTreeMap<Package, MarkerTree>>>,
    /// Order of first sight, the last tie-breaker of priorities (breadth first).
    discovered: Mutex<HashMap<Package, usize>>,
}

impl<'a> Context<'a> {
    fn new(
        manifest: &Manifest,
        env: Environment<'a>,
        options: &ResolveOptions,
        source: &'a dyn PackageSource,
    ) -> Result<Self, ResolveError> {
        let python = env.python();
        // A fork's marker holds the project's Python range already.
        if let Some(spec) = &manifest.requires_python
            && env.fork().is_none()
            && !spec.contains(&python)
        {
            return Err(ResolveError::ProjectRequiresPython {
                python: python.to_string(),
                requires_python: spec.to_string(),
            });
        }
        let applies = |r: &&Requirement| env.applies(&r.marker, &[]).is_some();
        let mut constraints: HashMap<PackageName, Ranges<Version>> = HashMap::new();
        for c in manifest.constraints.iter().filter(applies) {
            let range = requirement_range(c)?;
            let slot = constraints
                .entry(c.name.clone())
                .or_insert_with(Ranges::full);
            *slot = slot.intersection(&range);
        }
        let mut overrides: HashMap<PackageName, Vec<Requirement>> = HashMap::new();
        for o in manifest.overrides.iter().filter(applies) {
            requirement_range(o)?;
            overrides.entry(o.name.clone()).or_default().push(o.clone());
        }
        let manifest_requirements = manifest
            .requirements
            .iter()
            .chain(&manifest.constraints)
            .chain(&manifest.overrides);
        let mut explicit_prereleases = HashSet::new();
        let mut pins: HashMap<PackageName, Vec<Ranges<Version>>> = HashMap::new();
        let mut arbitrary: HashMap<PackageName, Vec<VersionSpecifiers>> = HashMap::new();
        for r in manifest_requirements {
            let Some(VersionOrUrl::VersionSpecifier(specs)) = &r.version_or_url else {
                continue;
            };
            if names_prerelease(specs) {
                explicit_prereleases.insert(r.name.clone());
            }
            for s in specs.iter() {
                if matches!(s.operator(), Operator::Equal | Operator::ExactEqual) {
                    pins.entry(r.name.clone())
                        .or_default()
                        .push(super::ranges::specifier_to_ranges(s));
                }
            }
            if specs.iter().any(|s| *s.operator() == Operator::ExactEqual) {
                arbitrary
                    .entry(r.name.clone())
                    .or_default()
                    .push(specs.clone());
            }
        }
        let preferences = manifest.kept_preferences().into_iter().collect();
        Ok(Self {
            source,
            env,
            mode: options.prerelease,
            build_sdists: options.build_sdists,
            binary: options.binary.clone(),
            python,
            requirements: manifest.requirements.clone(),
            constraints,
            overrides,
            preferences,
            explicit_prereleases,
            pins,
            arbitrary,
            versions: DashMap::new(),
            edges: Mutex::default(),
            discovered: Mutex::default(),
        })
    }

    /// `name`'s versions, listed once (the prefetch workers share the listing).
    fn versions(&self, name: &PackageName) -> Result<Arc<Versions>, SourceError> {
        once(&self.versions, name.clone(), || {
            let files = self.source.files(name)?;
            let mut by_version: BTreeMap<Version, Vec<usize>> = BTreeMap::new();
            // One parse per version as written, not per file.
            files.versions(
                name.as_ref(),
                |written, positions| match Version::from_str(written) {
                    Ok(version) => by_version.entry(version).or_default().extend(positions),
                    Err(_) => tracing::debug!("Skipping `{name}` {written}: invalid version"),
                },
            );
            let entries = by_version
                .into_iter()
                .rev()
                .map(|(version, mut files)| {
                    // In the order listed, whichever way the version was written.
                    files.sort_unstable();
                    VersionEntry {
                        version,
                        files,
                        status: OnceLock::new(),
                    }
                })
                .collect();
            Ok(Arc::new(Versions { entries, files }))
        })
    }

    /// What `entry`'s files offer the target, decided on first use.
    fn status<'v>(&self, name: &PackageName, all: &Listing, entry: &'v VersionEntry) -> &'v Status {
        entry.status.get_or_init(|| {
            let pinned = self
                .pins
                .get(name)
                .is_some_and(|p| p.iter().any(|r| r.contains(&entry.version)));
            // PEP 592: yanked files only for a version pinned exactly.
            let pool: Vec<IndexFile> = entry
                .files
                .iter()
                .filter_map(|&i| all.file(i))
                .filter(|f| pinned || !f.yanked)
                .collect();
            let tag_priority: TagPriority<'_> = match self.env {
                Environment::One { tag_priority, .. } => tag_priority,
                Environment::Fork { .. } => &any_tag,
            };
            // `--no-binary`: the wheels are not candidates, the sdist is built.
            if !self.binary.no_binary(name) {
                match select_wheel(
                    &pool,
                    name.as_ref(),
                    &entry.version.to_string(),
                    tag_priority,
                    &self.python,
                ) {
                    Ok(selected) => return Status::Usable(Box::new(selected)),
                    Err(why) => tracing::debug!("{name}=={}: {why}", entry.version),
                }
            }
            // `--only-binary`: the sdists are not candidates either.
            if self.binary.only_binary(name) {
                return Status::Skipped;
            }
            let fitting: Vec<&IndexFile> = pool
                .iter()
                .filter(|f| !f.filename.ends_with(".whl") && self.python_admits(f))
                .collect();
            // The archive to build: one that can be unpacked, `.tar.gz` first.
            let rank = |f: &&&IndexFile| match crate::build::ArchiveKind::of(&f.filename) {
                Some(crate::build::ArchiveKind::TarGz) => 0,
                Some(_) => 1,
                None => 2,
            };
            match fitting.iter().min_by_key(rank) {
                None => Status::Skipped,
                Some(file) => Status::NeedsBuild {
                    sdists: fitting.iter().map(|f| f.filename.clone()).collect(),
                    file: Box::new((**file).clone()),
                },
            }
        })
    }

    /// Whether the index's Requires-Python of `file` admits the target (an invalid one is
    /// ignored, as pip does).
    fn python_admits(&self, file: &IndexFile) -> bool {
        file.requires_python
            .as_deref()
            .and_then(|s| VersionSpecifiers::from_str(s).ok())
            .is_none_or(|s| s.contains(&self.python))
    }

    /// The version of `name` to try in `range`: the preference, else the highest allowed.
    fn best(
        &self,
        name: &PackageName,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, SourceError> {
        let versions = self.versions(name)?;
        let arbitrary = self.arbitrary.get(name);
        let fits = |e: &VersionEntry| {
            range.contains(&e.version)
                && arbitrary
                    .is_none_or(|a| a.iter().all(|s| arbitrary_equality_holds(s, &e.version)))
                && !matches!(self.status(name, &versions.files, e), Status::Skipped)
        };
        // Builds allowed: the newest version that fits, built from its sdist when it has no
        // wheel for the target, as pip and uv choose. Without builds (`--no-build`), versions
        // with a wheel come first (as uv's `--no-build` and pip's `--only-binary :all:`): one
        // that needs a build is chosen, and reported, only when no other fits.
        let has_wheel =
            |e: &VersionEntry| matches!(self.status(name, &versions.files, e), Status::Usable(_));
        let buildable = |e: &VersionEntry| {
            self.build_sdists
                && matches!(
                    self.status(name, &versions.files, e),
                    Status::NeedsBuild { .. }
                )
        };
        if let Some(preferred) = self.preferences.get(name)
            && let Some(e) = versions.get(preferred)
            && (self.mode != PrereleaseMode::Disallow || !e.version.any_prerelease())
            && fits(e)
            && (has_wheel(e) || buildable(e))
        {
            return Ok(Some(e.version.clone()));
        }
        let allow_prereleases = match self.mode {
            PrereleaseMode::Allow => true,
            PrereleaseMode::Disallow => false,
            PrereleaseMode::IfNecessaryOrExplicit => self.explicit_prereleases.contains(name),
        };
        let pick = |prereleases: bool| {
            let mut candidates = versions
                .entries
                .iter()
                .filter(|e| (prereleases || !e.version.any_prerelease()) && fits(e));
            let first = candidates.next()?;
            if self.build_sdists || has_wheel(first) {
                return Some(first);
            }
            Some(candidates.find(|e| has_wheel(e)).unwrap_or(first))
        };
        let mut found = pick(allow_prereleases);
        if found.is_none()
            && !allow_prereleases
            && self.mode == PrereleaseMode::IfNecessaryOrExplicit
        {
            // Only pre-releases satisfy the range: use them.
            found = pick(true);
        }
        Ok(found.map(|e| e.version.clone()))
    }

    /// The file chosen for `name==version`, after the solver picked it: its wheel, or its
    /// sdist when builds are allowed.
    fn file(&self, name: &PackageName, version: &Version) -> Result<IndexFile, ResolveError> {
        let versions = self.versions(name)?;
        let entry = versions
            .get(version)
            .ok_or_else(|| missing(name, version))?;
        match self.status(name, &versions.files, entry) {
            Status::Usable(w) => Ok(w.file.clone()),
            Status::NeedsBuild { file, .. } if self.build_sdists => Ok((**file).clone()),
            Status::NeedsBuild { sdists, .. } => Err(ResolveError::NeedsBuild {
                name: name.clone(),
                version: version.clone(),
                sdists: sdists.clone(),
            }),
            Status::Skipped => Err(missing(name, version)),
        }
    }

    /// The usable versions of `name` already listed (for explanations).
    pub(super) fn listed_versions(&self, name: &PackageName) -> Vec<Version> {
        let Some(cell) = self.versions.get(name).map(|c| c.clone()) else {
            return Vec::new();
        };
        let Some(Ok(versions)) = cell.get() else {
            return Vec::new();
        };
        versions
            .entries
            .iter()
            .filter(|e| !matches!(self.status(name, &versions.files, e), Status::Skipped))
            .map(|e| e.version.clone())
            .collect()
    }
}

/// A version the solver got from `best` that the listing does not have: cannot happen, but
/// reported rather than panicking.
fn missing(name: &PackageName, version: &Version) -> ResolveError {
    ResolveError::Source(SourceError::NoMetadata(format!("{name}=={version}")))
}

/// The versions a requirement allows; a URL requirement is refused.
fn requirement_range(r: &Requirement) -> Result<Ranges<Version>, ResolveError> {
    match &r.version_or_url {
        None => Ok(Ranges::full()),
        Some(VersionOrUrl::VersionSpecifier(specs)) => Ok(specifiers_to_ranges(specs)),
        Some(VersionOrUrl::Url(_)) => Err(ResolveError::UrlRequirement(r.to_string())),
    }
}

impl Context<'_> {
    /// The dependencies of `package` at `version`, by package, with constraints applied and
    /// overrides substituted; `Err(Unavailable)` when that version cannot be used.
    fn dependencies(
        &self,
        package: &Package,
        version: &Version,
    ) -> Result<Result<Dependencies_, Unavailable>, SolveError> {
        let mut out = Vec::new();
        let (name, extra) = match package {
            Package::Root => {
                for r in &self.requirements {
                    if let Some(marker) = self.env.applies(&r.marker, &[]) {
                        self.add(package, r, &marker, &mut out)?;
                    }
                }
                return Ok(Ok(self.combine(out)?));
            }
            Package::Base(name) => (name, None),
            Package::Extra(name, extra) => (name, Some(extra)),
        };
        let file = self.file(name, version)?;
        let metadata: Arc<WheelMetadata> = self.source.metadata(name, &file)?;
        if let Some(spec) = &metadata.requires_python
            && let Ok(specs) = VersionSpecifiers::from_str(spec)
            && !specs.contains(&self.python)
        {
            if let Some(split) = self.python_split(&specs) {
                return Err(SolveError::Fork(split));
            }
            return Ok(Err(Unavailable::RequiresPython {
                requires_python: specs.to_string(),
                python: self.python.to_string(),
            }));
        }
        let mut requirements = Vec::new();
        for line in &metadata.requires_dist {
            // Lines from wheels are untrusted: guarded against what makes pep508_rs panic.
            let parsed = crate::requirements::pep508_guard(line)
                .and_then(|()| Requirement::from_str(line).map_err(|e| e.to_string()));
            match parsed {
                Ok(r) => requirements.push(r),
                Err(reason) => {
                    return Ok(Err(Unavailable::InvalidRequirement {
                        requirement: line.clone(),
                        reason,
                    }));
                }
            }
        }
        match extra {
            None => {
                for r in &requirements {
                    if let Some(marker) = self.env.applies(&r.marker, &[]) {
                        self.add(package, r, &marker, &mut out)?;
                    }
                }
            }
            Some(extra) => {
                // The extra pins its base to the same version, and adds what only the extra
                // brings.
                out.push((
                    Package::Base(name.clone()),
                    Ranges::singleton(version.clone()),
                    MarkerTree::TRUE,
                ));
                for r in &requirements {
                    if let Some(marker) = self.env.applies_only_with(&r.marker, extra) {
                        self.add(package, r, &marker, &mut out)?;
                    }
                }
            }
        }
        Ok(Ok(self.combine(out)?))
    }

    /// Adds requirement `r` of `parent`, applying under `marker`, to `out`: overridden if an
    /// override names its package, limited by the constraints on it, as its base package and
    /// one package per extra.
    fn add(
        &self,
        parent: &Package,
        r: &Requirement,
        marker: &MarkerTree,
        out: &mut Vec<(Package, Ranges<Version>, MarkerTree)>,
    ) -> Result<(), ResolveError> {
        let replaced = self.overrides.get(&r.name);
        for r in replaced.map_or_else(|| vec![r], |o| o.iter().collect()) {
            let mut range = requirement_range(r)?;
            if let Some(c) = self.constraints.get(&r.name) {
                range = range.intersection(c);
            }
            let targets = std::iter::once(Package::Base(r.name.clone())).chain(
                r.extras
                    .iter()
                    .map(|e| Package::Extra(r.name.clone(), e.clone())),
            );
            for p in targets {
                // A package asking for itself (`foo[a]` naming `foo[a]`) adds nothing.
                if p == *parent || (matches!(parent, Package::Base(_)) && p.name() == parent.name())
                {
                    continue;
                }
                out.push((p, range.clone(), marker.clone()));
            }
        }
        Ok(())
    }

    /// One range per package. Requirements on a package under the same marker intersect;
    /// under different markers with the same range, the markers are joined; otherwise (only
    /// in a fork: in one environment every marker is `TRUE`) the fork must be split.
    fn combine(
        &self,
        entries: Vec<(Package, Ranges<Version>, MarkerTree)>,
    ) -> Result<Dependencies_, SolveError> {
        let mut grouped: BTreeMap<Package, Vec<(Ranges<Version>, MarkerTree)>> = BTreeMap::new();
        for (package, range, marker) in entries {
            grouped.entry(package).or_default().push((range, marker));
        }
        let mut out = BTreeMap::new();
        for (package, mut list) in grouped {
            let (first_range, first_marker) = list.swap_remove(0);
            let combined = if list.iter().all(|(_, m)| *m == first_marker) {
                let range = list
                    .iter()
                    .fold(first_range, |acc, (r, _)| acc.intersection(r));
                (range, first_marker)
            } else if list.iter().all(|(r, _)| *r == first_range) {
                let marker = list.into_iter().fold(first_marker, |mut acc, (_, m)| {
                    acc.or(m);
                    acc
                });
                (first_range, marker)
            } else {
                let fork = self.env.fork().cloned().unwrap_or(MarkerTree::TRUE);
                let split = std::iter::once(first_marker)
                    .chain(list.into_iter().map(|(_, m)| m))
                    .find(|m| *m != fork && !m.is_false());
                return Err(SolveError::Fork(split.unwrap_or(fork)));
            };
            out.insert(package, combined);
        }
        Ok(out)
    }

    /// In a fork, the marker `python_full_version >= X` when the Requires-Python `specs`
    /// (lower bound X) holds on part of the fork's Pythons only: solving each side apart gives
    /// the newer Pythons the newest versions and keeps older ones for the rest.
    fn python_split(&self, specs: &VersionSpecifiers) -> Option<MarkerTree> {
        let fork = self.env.fork()?;
        let range = specifiers_to_ranges(specs);
        let (lower, _) = range.bounding_range()?;
        let (Bound::Included(floor) | Bound::Excluded(floor)) = lower else {
            return None;
        };
        let split = MarkerTree::from_str(&format!("python_full_version >= '{floor}'")).ok()?;
        let (mut inside, mut outside) = (fork.clone(), fork.clone());
        inside.and(split.clone());
        outside.and(split.negate());
        (!inside.is_false() && !outside.is_false()).then_some(split)
    }

    /// In a fork, a split by Python when the highest final version in `range` is left out only
    /// because the index's Requires-Python of its files excludes the fork's lowest Python.
    fn python_fork(
        &self,
        name: &PackageName,
        range: &Ranges<Version>,
    ) -> Result<Option<MarkerTree>, SourceError> {
        if self.env.fork().is_none() {
            return Ok(None);
        }
        let versions = self.versions(name)?;
        let Some(top) = versions
            .entries
            .iter()
            .find(|e| range.contains(&e.version) && !e.version.any_prerelease())
        else {
            return Ok(None);
        };
        if !matches!(self.status(name, &versions.files, top), Status::Skipped) {
            return Ok(None);
        }
        let specs = top
            .files
            .iter()
            .filter_map(|&i| versions.files.file(i))
            .filter(|f| !f.yanked)
            .find_map(|f| VersionSpecifiers::from_str(f.requires_python.as_deref()?).ok());
        Ok(specs.and_then(|s| self.python_split(&s)))
    }

    /// All files of `name==version` a lock may list for the fork: wheels and sdists whose
    /// Requires-Python admits it, yanked ones only when pinned.
    pub(super) fn files_for(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<Vec<IndexFile>, ResolveError> {
        let versions = self.versions(name)?;
        let entry = versions
            .get(version)
            .ok_or_else(|| missing(name, version))?;
        let pinned = self
            .pins
            .get(name)
            .is_some_and(|p| p.iter().any(|r| r.contains(version)));
        // `--no-binary` / `--only-binary` leave out what a lock may not name either.
        let (no_wheels, no_sdists) = (self.binary.no_binary(name), self.binary.only_binary(name));
        Ok(entry
            .files
            .iter()
            .filter_map(|&i| versions.files.file(i))
            .filter(|f| (pinned || !f.yanked) && self.python_admits(f))
            .filter(|f| {
                if f.filename.ends_with(".whl") {
                    !no_wheels
                } else {
                    !no_sdists
                }
            })
            .collect())
    }
}

/// The `pubgrub` view of a [`Context`], with the prefetch queue.
struct Provider<'c, 'a> {
    cx: &'c Context<'a>,
    prefetch: Option<Mutex<Sender<PrefetchJob>>>,
    prefetched: Mutex<HashSet<PackageName>>,
}

impl Provider<'_, '_> {
    /// Queues the best candidate of each new dependency for a metadata fetch.
    fn queue(&self, dependencies: &Dependencies_) {
        let Some(sender) = &self.prefetch else {
            return;
        };
        let mut seen = self
            .prefetched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let sender = sender.lock().unwrap_or_else(PoisonError::into_inner);
        for (package, (range, _)) in dependencies {
            if let Some(name) = package.name()
                && seen.insert(name.clone())
            {
                // A closed queue only means the workers are gone: the solver fetches itself.
                let _ = sender.send((name.clone(), range.clone()));
            }
        }
    }
}

impl DependencyProvider for Provider<'_, '_> {
    type P = Package;
    type V = Version;
    type VS = Ranges<Version>;
    type M = Unavailable;
    type Err = SolveError;
    /// Root first, then exact pins, then the packages in the most conflicts, then the first
    /// seen (breadth first).
    type Priority = (u8, u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Package,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let class = match package {
            Package::Root => 3,
            _ if range.as_singleton().is_some() => 2,
            _ => 1,
        };
        let mut discovered = self
            .cx
            .discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let next = discovered.len();
        let order = *discovered.entry(package.clone()).or_insert(next);
        (class, stats.conflict_count(), Reverse(order))
    }

    fn choose_version(
        &self,
        package: &Package,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, SolveError> {
        match package.name() {
            None => Ok(Some(root_version()).filter(|v| range.contains(v))),
            Some(name) => {
                if let Some(split) = self.cx.python_fork(name, range)? {
                    return Err(SolveError::Fork(split));
                }
                Ok(self.cx.best(name, range)?)
            }
        }
    }

    fn get_dependencies(
        &self,
        package: &Package,
        version: &Version,
    ) -> Result<Dependencies<Package, Ranges<Version>, Unavailable>, SolveError> {
        match self.cx.dependencies(package, version)? {
            Err(why) => Ok(Dependencies::Unavailable(why)),
            Ok(dependencies) => {
                self.queue(&dependencies);
                let mut names: BTreeMap<Package, MarkerTree> = BTreeMap::new();
                for (dependency, (_, marker)) in &dependencies {
                    if dependency.name().is_some() && dependency != package {
                        names
                            .entry(dependency.clone())
                            .or_insert(MarkerTree::FALSE)
                            .or(marker.clone());
                    }
                }
                self.cx
                    .edges
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((package.clone(), version.clone()), names);
                Ok(Dependencies::Available(
                    dependencies
                        .into_iter()
                        .map(|(p, (range, _))| (p, range))
                        .collect::<DependencyConstraints<_, _>>(),
                ))
            }
        }
    }
}

/// One package of a solve, before it becomes a [`ResolvedPackage`] or a universal entry.
pub(super) struct Solved {
    /// The normalized name.
    pub(super) name: PackageName,
    /// The version chosen.
    pub(super) version: Version,
    /// The extras something asked of it, sorted.
    pub(super) extras: Vec<ExtraName>,
    /// The file to install: the wheel `select_wheel` picks, or the sdist to build (in a fork:
    /// any wheel, for its metadata).
    pub(super) file: IndexFile,
    /// In a fork, every file the lock may list; empty for one environment.
    pub(super) files: Vec<IndexFile>,
    /// What it (with its extras) depends on, with the marker under which each applies.
    pub(super) dependencies: BTreeMap<PackageName, MarkerTree>,
}

/// What one solve chose.
pub(super) struct SolvedFork {
    /// The requirements' packages (a package with an extra apart from the package), with the
    /// marker under which each applies.
    pub(super) root: BTreeMap<Package, MarkerTree>,
    /// The same for each package chosen, and each extra of it asked for: so that what an extra
    /// brings in gets the marker under which the extra was asked for, not the package's.
    pub(super) graph: BTreeMap<Package, BTreeMap<Package, MarkerTree>>,
    /// The packages, sorted by name.
    pub(super) packages: Vec<Solved>,
}

/// Runs one solve; see [`super::resolve`].
pub(super) fn solve(
    manifest: &Manifest,
    env: Environment<'_>,
    options: &ResolveOptions,
    source: &dyn PackageSource,
) -> Result<Resolution, ResolveError> {
    let solved = match solve_in(manifest, env, options, source) {
        Ok(solved) => solved,
        Err(SolveError::Resolve(e)) => return Err(e),
        // In one environment every marker is decided (`TRUE`): requirements never differ by
        // one, so this is never reached; reported rather than panicking.
        Err(SolveError::Fork(m)) => {
            return Err(ResolveError::NoSolution(format!(
                "requirements differ by the marker `{}` in one environment",
                m.try_to_string().unwrap_or_default()
            )));
        }
    };
    let packages = solved
        .packages
        .into_iter()
        .map(|p| ResolvedPackage {
            name: p.name,
            version: p.version,
            extras: p.extras,
            file: p.file,
            dependencies: p.dependencies.into_keys().collect(),
        })
        .collect();
    Ok(Resolution { packages })
}

/// Runs one solve in `env`: the packages chosen, sorted by name.
pub(super) fn solve_in(
    manifest: &Manifest,
    env: Environment<'_>,
    options: &ResolveOptions,
    source: &dyn PackageSource,
) -> Result<SolvedFork, SolveError> {
    let cx = Context::new(manifest, env, options, source)?;
    let (sender, receiver) = std::sync::mpsc::channel::<PrefetchJob>();
    let receiver = Mutex::new(receiver);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let solution = std::thread::scope(|scope| {
        for _ in 0..options.prefetch_threads {
            scope.spawn(|| prefetch_worker(&cx, &receiver, &stop));
        }
        let provider = Provider {
            cx: &cx,
            prefetch: (options.prefetch_threads > 0).then(|| Mutex::new(sender)),
            prefetched: Mutex::default(),
        };
        let solution = pubgrub::resolve(&provider, Package::Root, root_version());
        // Queued jobs are dropped; the workers finish the fetch in hand and return.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(provider);
        // The derivation tree makes the error large: boxed on its way out.
        solution.map_err(Box::new)
    });
    let solution = match solution.map_err(|e| *e) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(tree)) => {
            return Err(ResolveError::NoSolution(super::report::explain(&tree, &cx)).into());
        }
        Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
    };
    let mut extras: BTreeMap<PackageName, Vec<ExtraName>> = BTreeMap::new();
    let mut bases: BTreeMap<PackageName, Version> = BTreeMap::new();
    for (package, version) in solution {
        match package {
            Package::Root => {}
            Package::Base(name) => {
                bases.insert(name, version);
            }
            Package::Extra(name, extra) => extras.entry(name).or_default().push(extra),
        }
    }
    let edges = cx.edges.lock().unwrap_or_else(PoisonError::into_inner);
    let mut packages = Vec::with_capacity(bases.len());
    let mut graph = BTreeMap::new();
    for (name, version) in bases {
        let mut extras = extras.remove(&name).unwrap_or_default();
        extras.sort();
        let mut dependencies: BTreeMap<PackageName, MarkerTree> = BTreeMap::new();
        let nodes = std::iter::once(Package::Base(name.clone())).chain(
            extras
                .iter()
                .map(|e| Package::Extra(name.clone(), e.clone())),
        );
        for node in nodes {
            let out = edges.get(&(node.clone(), version.clone()));
            for (dependency, marker) in out.into_iter().flatten() {
                if let Some(dependency) = dependency.name()
                    && *dependency != name
                {
                    dependencies
                        .entry(dependency.clone())
                        .or_insert(MarkerTree::FALSE)
                        .or(marker.clone());
                }
            }
            if matches!(cx.env, Environment::Fork { .. }) {
                graph.insert(node, out.cloned().unwrap_or_default());
            }
        }
        let file = cx.file(&name, &version)?;
        let files = match cx.env {
            Environment::One { .. } => Vec::new(),
            Environment::Fork { .. } => cx.files_for(&name, &version)?,
        };
        packages.push(Solved {
            name,
            version,
            extras,
            file,
            files,
            dependencies,
        });
    }
    let root = edges
        .get(&(Package::Root, root_version()))
        .cloned()
        .unwrap_or_default();
    Ok(SolvedFork {
        root,
        graph,
        packages,
    })
}

/// Takes dependencies off the queue and fetches the metadata of each one's best candidate, so
/// that it is in the source's cache when the solver gets there. Failures are left for the
/// solver to meet (and report) itself.
fn prefetch_worker(
    cx: &Context<'_>,
    queue: &Mutex<Receiver<PrefetchJob>>,
    stop: &std::sync::atomic::AtomicBool,
) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((name, range)) = job else {
            return;
        };
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Ok(Some(version)) = cx.best(&name, &range)
            && let Ok(file) = cx.file(&name, &version)
        {
            let _ = cx.source.metadata(&name, &file);
        }
    }
}
