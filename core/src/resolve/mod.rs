//! Resolution: from requirements to one version of every package needed, for one target
//! environment, on the PubGrub algorithm (the `pubgrub` crate).
//!
//! ```text
//! Manifest (requirements, constraints, overrides, preferences, upgrade, requires-python)
//!    │  Target (marker environment, wheel tag priority)      PackageSource (files, metadata)
//!    ▼                                                                │
//! solver::Provider ── pubgrub::resolve ── choose_version / get_dependencies ◄─┘
//!    │   packages: root, `name`, `name[extra]` (depends on `name` at the same version)
//!    │   versions: ranges::specifiers_to_ranges (PEP 440 → Ranges<Version>)
//!    │   prefetch: the metadata of each new dependency's best candidate, on worker threads
//!    ▼
//! Resolution (sorted by name)          or ResolveError (report: the derivation tree as sentences)
//! ```
//!
//! One call of [`resolve`] solves for one environment; [`resolve_universal`] solves for every
//! environment of a marker, one solve per fork, and merges them (`universal.rs`).
mod binary;
mod environment;
mod package;
pub mod ranges;
mod report;
mod solver;
mod source;
#[cfg(test)]
mod tests;
mod universal;

use std::collections::{BTreeMap, BTreeSet};

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement};

use crate::index::IndexFile;
use crate::wheel::Tag;

pub use binary::{BinaryPolicy, BinaryPolicyError};
pub use environment::{python_floor, python_range};
pub use package::Package;
pub use source::{InMemorySource, IndexSource, PackageSource, SourceError};
pub use universal::{LockedVersion, UniversalPackage, UniversalResolution, resolve_universal};

/// What to resolve.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// The requirements (markers evaluated on the target; URL requirements are refused).
    pub requirements: Vec<Requirement>,
    /// `-c`: version limits on packages when something requires them; they add no package.
    pub constraints: Vec<Requirement>,
    /// Replace every requirement on the same package, direct or transitive, by these.
    pub overrides: Vec<Requirement>,
    /// Versions from an existing lock, tried first when the requirements allow them.
    pub preferences: BTreeMap<PackageName, Version>,
    /// Which preferences to drop.
    pub upgrade: Upgrade,
    /// The project's `requires-python`; the target's Python must satisfy it.
    pub requires_python: Option<VersionSpecifiers>,
}

impl Manifest {
    /// The preferences `upgrade` leaves.
    pub(crate) fn kept_preferences(&self) -> BTreeMap<PackageName, Version> {
        self.preferences
            .iter()
            .filter(|(name, _)| match &self.upgrade {
                Upgrade::None => true,
                Upgrade::All => false,
                Upgrade::Packages(set) => !set.contains(*name),
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}

/// Which locked versions stop being preferred.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Upgrade {
    /// Keep every preference.
    #[default]
    None,
    /// `--upgrade`: drop them all.
    All,
    /// `--upgrade-package P`: drop these.
    Packages(BTreeSet<PackageName>),
}

/// When pre-releases may be chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrereleaseMode {
    /// Any version, pre-release or not, highest first.
    Allow,
    /// Never a pre-release.
    Disallow,
    /// uv's default: final releases first; a package's pre-releases when a requirement of the
    /// manifest (requirements, constraints, overrides) names a pre-release in a specifier, or
    /// when only pre-releases satisfy its range.
    #[default]
    IfNecessaryOrExplicit,
}

/// The one environment a solve is for.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// Markers are evaluated on it; its `python_full_version` is the target Python.
    pub markers: &'a MarkerEnvironment,
    /// The priority of a wheel's tags on the target (lower is better), `None` when it cannot
    /// install there: `Interpreter::tag_priority`, as `index::select_wheel` takes it.
    pub tag_priority: &'a (dyn Fn(&[Tag]) -> Option<usize> + Sync),
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("python", &self.markers.python_full_version().string)
            .finish_non_exhaustive()
    }
}

/// How the solver works.
#[derive(Clone, Debug)]
pub struct ResolveOptions {
    /// Pre-release policy.
    pub prerelease: PrereleaseMode,
    /// Threads fetching the metadata of likely next candidates while the solver works; 0 for
    /// none.
    pub prefetch_threads: usize,
    /// A version with only sdists for the target may be chosen (the newest that fits, as pip
    /// and uv choose; without builds one with a wheel comes first); the source must then answer
    /// metadata for its sdist (by building it).
    pub build_sdists: bool,
    /// `--no-binary` / `--only-binary`: packages whose wheels, or whose sdists, are ignored.
    pub binary: BinaryPolicy,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        Self {
            prerelease: PrereleaseMode::default(),
            prefetch_threads: 6,
            build_sdists: false,
            binary: BinaryPolicy::default(),
        }
    }
}

/// The packages chosen, sorted by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// One entry per package.
    pub packages: Vec<ResolvedPackage>,
}

/// One chosen package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// The normalized name.
    pub name: PackageName,
    /// The version chosen.
    pub version: Version,
    /// The extras something asked of it, sorted.
    pub extras: Vec<ExtraName>,
    /// The wheel for the target (best tag priority, then as `select_wheel` orders them).
    pub file: IndexFile,
    /// The packages it (with its extras) depends on here, sorted.
    pub dependencies: Vec<PackageName>,
}

/// Why there is no resolution.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The requirements cannot all hold; the text explains why, in sentences.
    #[error("No solution was found for the requirements:\n{0}")]
    NoSolution(String),
    /// The version the solver would choose has no wheel for the target, only sdists.
    #[error(
        "`{name}=={version}` needs a build from source, and building is turned off \
         (`--no-build`): it has no wheel for this environment, only {}; require another version \
         (e.g. `{name}!={version}`), provide a wheel with `--find-links`, or allow builds",
        sdists.join(", ")
    )]
    NeedsBuild {
        /// The package.
        name: PackageName,
        /// The version.
        version: Version,
        /// Its source distributions.
        sdists: Vec<String>,
    },
    /// The index could not answer (unknown package, network failure with its URL, …).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A requirement given by URL: not resolved yet.
    #[error("Requirement `{0}` is a direct URL, which the resolver does not take yet")]
    UrlRequirement(String),
    /// A universal solve split into more forks than it allows.
    #[error(
        "The requirements split into more than {0} marker forks; narrow the environments \
         (`[tool.dx-py] environments`) or the markers that differ"
    )]
    TooManyForks(usize),
    /// A universal solve failed in one fork.
    #[error("For environments where `{marker}`: {source}")]
    InFork {
        /// The fork's marker.
        marker: String,
        /// Why it failed there.
        source: Box<ResolveError>,
    },
    /// The target Python is outside the project's `requires-python`.
    #[error(
        "The target Python {python} does not satisfy the project's `requires-python = \
         \"{requires_python}\"`: choose a Python in that range"
    )]
    ProjectRequiresPython {
        /// The target's Python version.
        python: String,
        /// The project's specifiers.
        requires_python: String,
    },
}

/// Resolves `manifest` for `target`, asking `source` for files and metadata.
pub fn resolve(
    manifest: &Manifest,
    target: Target<'_>,
    options: &ResolveOptions,
    source: &dyn PackageSource,
) -> Result<Resolution, ResolveError> {
    let env = environment::Environment::One {
        markers: target.markers,
        tag_priority: target.tag_priority,
    };
    solver::solve(manifest, env, options, source)
}
