//! Building source distributions with their PEP 517 backend.
//!
//! ```text
//! Builder::metadata(sdist)  ─┐  cached: built wheel's METADATA, else prepared METADATA
//! Builder::wheel(sdist)     ─┤  cached: built wheel ({cache}/builds/wheels, cache.rs)
//!                            ▼
//! download (sha256-checked) → unpack.rs (safe, bounded) → build_system.rs ([build-system])
//!   → env.rs: requires resolved by dx-py, installed into a fresh venv (layout hit = 1 symlink)
//!   → driver.rs: get_requires_for_build_wheel (extras: env again), then
//!     prepare_metadata_for_build_wheel (fallback: build_wheel) or build_wheel
//!   → the wheel checked like a downloaded one, published atomically by sdist sha256 + key
//! ```
//!
//! The key names what makes a build differ: the interpreter's tag (`cp311-linux_x86_64`) and,
//! when given, a fingerprint of the config settings. A build runs in an owned temporary
//! directory under `{cache}/builds`: a failure leaves no entry, and neither does a Ctrl-C, which
//! stops every backend with its children and removes the temporaries (`stop.rs`); a `kill -9`
//! leaves a temporary that the next command sweeps. Failed builds keep their log at
//! `{cache}/builds/logs/{name}-{version}.log`.
//!
//! Local source trees (a project, a `./path` requirement) take the same path without the
//! download and unpacking, built in place with `build_editable` (PEP 660) or `build_wheel`, and
//! cached by a key of their path and build inputs (`local.rs`).
mod build_system;
mod cache;
pub mod driver;
mod env;
mod error;
mod local;
mod stop;
mod unpack;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pep508_rs::{PackageName, Requirement};

pub use build_system::{BuildSystem, LEGACY_BACKEND, LEGACY_REQUIRES};
pub use cache::{BuildCache, BuiltWheel};
pub use driver::{ConfigSettings, Hook};
pub use env::{EnvContext, EnvOutcome, install_env};
pub use error::BuildError;
pub use local::{LocalMode, local_key, source_fingerprint};
pub use stop::{
    UndoOnInterrupt, arm as catch_interrupts, is_stopping, undo_on_interrupt, wait_if_stopping,
};
pub use unpack::{ArchiveKind, UnpackError, UnpackLimits, unpack_sdist};

use crate::cache::Cache;
use crate::index::{IndexClient, IndexFile};
use crate::names::normalize_name;
use crate::python::{Interpreter, Venv};
use crate::wheel::{WheelFilename, WheelMetadata};

/// Where a build runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// In a fresh venv holding exactly the build requirements (the default).
    #[default]
    Isolated,
    /// `--no-build-isolation`: with the target interpreter and what its environment holds.
    Shared,
}

/// How sdists are built.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Where builds run.
    pub isolation: Isolation,
    /// `--config-settings`, passed to every hook.
    pub config_settings: ConfigSettings,
    /// The longest one hook may run.
    pub timeout: Duration,
    /// Bounds on what an sdist may unpack to.
    pub limits: UnpackLimits,
    /// How many sdists are built at once, at most (a build is CPU-bound: by default one per
    /// core; resolution and install ask for several at a time).
    pub jobs: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            isolation: Isolation::Isolated,
            config_settings: ConfigSettings::default(),
            timeout: Duration::from_secs(30 * 60),
            limits: UnpackLimits::default(),
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        }
    }
}

/// What a builder did, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// Wheels built now.
    pub built: usize,
    /// Metadata prepared now without building.
    pub prepared: usize,
    /// Answers found in the cache (built wheels or prepared metadata).
    pub cached: usize,
    /// Build environments whose requirements were resolved.
    pub env_resolutions: usize,
    /// Build environments that got a cached layout (one symlink).
    pub env_layout_hits: usize,
}

/// Builds sdists for one interpreter, sharing its work between threads: the same sdist is
/// built once even when the resolver's prefetch threads ask for it at the same time.
pub struct Builder<'a> {
    cache: &'a Cache,
    builds: BuildCache,
    interp: &'a Interpreter,
    client: &'a IndexClient,
    options: BuildOptions,
    /// One lock per sdist and kind of work, held while it is done.
    running: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Failures, so that a failing build runs once per process.
    failed: Mutex<HashMap<String, Arc<BuildError>>>,
    /// Sessions whose metadata was prepared, by sdist and key, for the build that follows.
    sessions: Mutex<HashMap<String, Session>>,
    /// `options.jobs` slots: a session (unpacking, environment, hooks) holds one while it works.
    slots: crate::parallel::CpuSlots,
    stats: Mutex<BuildStats>,
}

/// One sdist being built: its scratch directory, tree and build environment.
struct Session {
    /// Removed when the session ends (owned, so a killed process's is swept later).
    scratch: tempfile::TempDir,
    tree: PathBuf,
    system: BuildSystem,
    python: PathBuf,
    bin: Option<PathBuf>,
    driver: PathBuf,
}

impl Session {
    /// The build log (every hook's output).
    fn log(&self) -> PathBuf {
        self.scratch.path().join("build.log")
    }
}

impl<'a> Builder<'a> {
    /// A builder for `interp`, fetching sdists and build requirements through `client`.
    pub fn new(
        cache: &'a Cache,
        interp: &'a Interpreter,
        client: &'a IndexClient,
        options: BuildOptions,
    ) -> Self {
        // Hooks run in process groups of their own, which the terminal's Ctrl-C no longer
        // reaches: from now on this process stops them itself (once per process).
        stop::arm(cache.temp_dirs());
        Self {
            builds: BuildCache::new(cache.builds_dir()),
            cache,
            interp,
            client,
            slots: crate::parallel::CpuSlots::new(options.jobs),
            options,
            running: Mutex::default(),
            failed: Mutex::default(),
            sessions: Mutex::default(),
            stats: Mutex::default(),
        }
    }

    /// What this builder did so far.
    pub fn stats(&self) -> BuildStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut BuildStats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The cache key of this builder's builds.
    fn key(&self) -> String {
        build_key(&self.interp.tag(), &self.options.config_settings)
    }

    /// The key of a pure-Python build (tags `*-none-any`), which any interpreter whose tags it
    /// fits may take, as pip's wheel cache does: one build of such an sdist serves them all.
    fn pure_key(&self) -> String {
        build_key("py-none-any", &self.options.config_settings)
    }

    /// The wheel built before from the sdist `sha256`: under this interpreter's `key`, else a
    /// pure-Python one another interpreter built, when its tags fit this one.
    fn cached_wheel(&self, sha256: &str, key: &str) -> Option<BuiltWheel> {
        self.builds.wheel(sha256, key).or_else(|| {
            let pure = self.builds.wheel(sha256, &self.pure_key())?;
            let parsed = WheelFilename::parse(&pure.filename).ok()?;
            self.interp.tag_priority(&parsed.tags)?;
            Some(pure)
        })
    }

    /// Publishes the wheel built from the sdist `sha256` under `key` and, when it is
    /// pure-Python, under [`Self::pure_key`] too (a failure there only costs a later rebuild).
    fn publish_built(
        &self,
        sha256: &str,
        key: &str,
        wheel: &Path,
        log: &Path,
    ) -> std::io::Result<BuiltWheel> {
        let built = self.builds.publish_wheel(sha256, key, wheel, log)?;
        let pure = WheelFilename::parse(&built.filename).is_ok_and(|w| {
            w.tags
                .iter()
                .all(|t| t.abi == "none" && t.platform == "any")
        });
        if pure
            && let Err(e) = self
                .builds
                .publish_wheel(sha256, &self.pure_key(), &built.path, log)
        {
            tracing::debug!(
                "Not keeping `{}` for other interpreters: {e}",
                built.filename
            );
        }
        Ok(built)
    }

    /// The key under which the store records the package built from the sdist with sha256
    /// `sdist_sha256` by this builder (`PackageStore::record_wheel`): the sdist's sha256 alone
    /// would not do, since the same sdist builds different wheels for other interpreters or
    /// config settings. 64 hex digits, as a wheel's sha256.
    pub fn store_key(&self, sdist_sha256: &str) -> String {
        let mut h = blake3::Hasher::new();
        for part in ["dx-py built wheel v1", sdist_sha256, &self.key()] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        h.finalize().to_hex().to_string()
    }

    /// The core metadata of the sdist `file` of `name`: from its built wheel or prepared
    /// metadata when cached, else from `prepare_metadata_for_build_wheel` (the build when the
    /// backend lacks that hook; its wheel is then kept).
    pub fn metadata(
        &self,
        name: &PackageName,
        version: &str,
        file: &IndexFile,
    ) -> Result<WheelMetadata, BuildError> {
        let sha256 = self.sha256(file)?;
        let key = self.key();
        self.once(format!("m {sha256} {key}"), || {
            if let Some(built) = self.cached_wheel(&sha256, &key) {
                self.count(|s| s.cached += 1);
                return Ok(self.check_wheel(name, version, file, &built.path)?.1);
            }
            if let Some(bytes) = self.builds.metadata(&sha256, &key)
                && let Ok(m) = WheelMetadata::parse(&bytes)
            {
                self.count(|s| s.cached += 1);
                return Ok(m);
            }
            let label = format!("{name}=={version}");
            let hook = Hook::PrepareMetadataForBuildWheel;
            let (session, answer) = self.run_in_session(&label, file, &sha256, hook)?;
            if let Some(wheel) = answer.wheel {
                let checked = self.check_wheel(name, version, file, &wheel)?.1;
                self.publish_built(&sha256, &key, &wheel, &session.log())?;
                self.count(|s| s.built += 1);
                return Ok(checked);
            }
            let bad = |reason: String| BuildError::BadAnswer {
                package: label.clone(),
                hook: hook.name(),
                reason,
            };
            let dir = answer
                .metadata
                .ok_or_else(|| bad("neither a metadata directory nor a wheel".into()))?;
            let bytes = fs_err::read(dir.join("METADATA")).map_err(|e| bad(e.to_string()))?;
            let metadata = WheelMetadata::parse(&bytes).map_err(|e| bad(e.to_string()))?;
            check_identity(&metadata.name, &metadata.version, name, version)
                .map_err(|reason| bad(format!("its METADATA {reason}")))?;
            self.builds.put_metadata(&sha256, &key, &bytes)?;
            self.count(|s| s.prepared += 1);
            // Kept for the build that usually follows (locking builds what was resolved): it
            // skips unpacking, the environment and `get_requires_for_build_wheel`.
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(format!("{sha256} {key}"), session);
            Ok(metadata)
        })
    }

    /// The wheel built from the sdist `file` of `name` (from the cache when built before).
    pub fn wheel(
        &self,
        name: &PackageName,
        version: &str,
        file: &IndexFile,
    ) -> Result<BuiltWheel, BuildError> {
        let sha256 = self.sha256(file)?;
        let key = self.key();
        self.once(format!("w {sha256} {key}"), || {
            if let Some(built) = self.cached_wheel(&sha256, &key) {
                self.count(|s| s.cached += 1);
                return Ok(built);
            }
            let label = format!("{name}=={version}");
            let kept = self
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&format!("{sha256} {key}"));
            let (session, answer) = match kept {
                Some(session) => {
                    let out = session.scratch.path().join("wheel");
                    let answer = self
                        .slots
                        .run(0, || {
                            self.runner(&session, &label)
                                .run(Hook::BuildWheel, &out, None)
                        })
                        .map_err(|e| self.keep_log(e, &label))?;
                    (session, answer)
                }
                None => self.run_in_session(&label, file, &sha256, Hook::BuildWheel)?,
            };
            let wheel = answer.wheel.ok_or_else(|| BuildError::BadAnswer {
                package: label.clone(),
                hook: Hook::BuildWheel.name(),
                reason: "no wheel file name".into(),
            })?;
            self.check_wheel(name, version, file, &wheel)?;
            let built = self.publish_built(&sha256, &key, &wheel, &session.log())?;
            self.count(|s| s.built += 1);
            Ok(built)
        })
    }

    /// The sdist's sha256: the index's, else its bytes' (downloaded once, kept by the client).
    fn sha256(&self, file: &IndexFile) -> Result<String, BuildError> {
        match &file.sha256 {
            Some(h) => Ok(h.to_ascii_lowercase()),
            None => Ok(crate::hash::sha256_hex(&self.download(file, None)?)),
        }
    }

    fn download(&self, file: &IndexFile, sha256: Option<&str>) -> Result<Vec<u8>, BuildError> {
        self.client
            .download(&file.url, sha256)
            .map_err(|e| BuildError::Index(Box::new(e)))
    }

    /// Runs `work` once per `key` at a time; a failure is remembered and returned to later
    /// callers without running it again.
    fn once<T>(
        &self,
        key: String,
        work: impl FnOnce() -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        let earlier = |key: &str| {
            self.failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .cloned()
        };
        if let Some(e) = earlier(&key) {
            return Err(BuildError::Earlier(e));
        }
        let slot = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let _held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = earlier(&key) {
            return Err(BuildError::Earlier(e));
        }
        work().map_err(|e| {
            let e = Arc::new(e);
            self.failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, e.clone());
            BuildError::Earlier(e)
        })
    }

    /// Downloads and unpacks the sdist and makes its build environment (isolated: a venv of its
    /// build requirements and of what `get_requires_for_build_wheel` adds). `then` is the hook
    /// the caller runs next (output in `{scratch}/out`): when `get_requires_for_build_wheel`
    /// adds nothing, it runs in the same process and its answer comes back with the session.
    fn session(
        &self,
        label: &str,
        file: &IndexFile,
        sha256: &str,
        then: Hook,
    ) -> Result<(Session, Option<driver::Answer>), BuildError> {
        let bytes = self.download(file, Some(sha256))?;
        fs_err::create_dir_all(self.builds.root())?;
        let scratch = crate::temp::dir_in(self.builds.root())?;
        let src = scratch.path().join("src");
        fs_err::create_dir(&src)?;
        let tree =
            unpack_sdist(&file.filename, &bytes, &src, self.options.limits).map_err(|source| {
                BuildError::Unpack {
                    package: label.to_string(),
                    source,
                }
            })?;
        self.tree_session(
            label,
            scratch,
            tree,
            Hook::GetRequiresForBuildWheel,
            Some(then),
        )
    }

    /// A session for the source `tree`: its build system read and, isolated, its build
    /// environment made with what `requires_hook` adds. `then`, when given, runs in the same
    /// process as `requires_hook` when that asks for nothing (output in `{scratch}/out`): its
    /// answer is returned; otherwise the caller runs it.
    fn tree_session(
        &self,
        label: &str,
        scratch: tempfile::TempDir,
        tree: PathBuf,
        requires_hook: Hook,
        then: Option<Hook>,
    ) -> Result<(Session, Option<driver::Answer>), BuildError> {
        let system = BuildSystem::read(&tree).map_err(|reason| BuildError::BuildSystem {
            package: label.to_string(),
            path: tree.join("pyproject.toml"),
            reason,
        })?;
        let driver = driver::write_driver(self.builds.root())?;
        let mut session = Session {
            tree,
            system,
            // Absolute: hooks run in the source tree, where a relative `.venv/bin/python`
            // would not be found.
            python: std::path::absolute(self.interp.path())?,
            bin: None,
            driver,
            scratch,
        };
        if self.options.isolation == Isolation::Shared {
            return Ok((session, None));
        }
        let venv = session.scratch.path().join("env");
        let requires = session.system.requires.clone();
        self.environment(label, &requires, &venv)?;
        let opened = Venv::open(&venv).map_err(|e| BuildError::Environment {
            package: label.to_string(),
            requires: join(&requires),
            source: Box::new(e.into()),
        })?;
        session.python = opened.python();
        session.bin = Some(opened.bin_dir());
        let runner = self.runner(&session, label);
        let requires_out = session.scratch.path().join("requires");
        let answer = match then {
            Some(then) => runner.run_then(
                requires_hook,
                &requires_out,
                then,
                &session.scratch.path().join("out"),
            ),
            None => runner.run(requires_hook, &requires_out, None),
        }
        .map_err(|e| self.keep_log(e, label))?;
        // `then` ran: its answer came back with the requirements' (none).
        if answer.wheel.is_some() || answer.metadata.is_some() || answer.missing.is_some() {
            return Ok((session, Some(answer)));
        }
        let extra = answer.requires;
        if !extra.is_empty() {
            let mut all = requires;
            for r in &extra {
                let parsed = crate::requirements::pep508_guard(r)
                    .and_then(|()| Requirement::from_str(r).map_err(|e| e.to_string()))
                    .map_err(|reason| BuildError::BadAnswer {
                        package: label.to_string(),
                        hook: requires_hook.name(),
                        reason: format!("invalid requirement `{r}`: {reason}"),
                    })?;
                all.push(parsed);
            }
            self.environment(label, &all, &venv)?;
        }
        Ok((session, None))
    }

    /// Makes `venv` hold `requires`, counting what it cost.
    fn environment(
        &self,
        label: &str,
        requires: &[Requirement],
        venv: &Path,
    ) -> Result<(), BuildError> {
        let cx = EnvContext {
            cache: self.cache,
            builds: &self.builds,
            interp: self.interp,
            client: self.client,
        };
        let outcome = install_env(&cx, requires, venv).map_err(|e| BuildError::Environment {
            package: label.to_string(),
            requires: join(requires),
            source: Box::new(e),
        })?;
        self.count(|s| {
            s.env_resolutions += usize::from(outcome.resolved);
            s.env_layout_hits += usize::from(outcome.layout_hit);
        });
        Ok(())
    }

    /// A session for the sdist, with `hook` run in it (output in `{scratch}/out`).
    fn run_in_session(
        &self,
        label: &str,
        file: &IndexFile,
        sha256: &str,
        hook: Hook,
    ) -> Result<(Session, driver::Answer), BuildError> {
        // One slot for the whole session: its steps run one after the other.
        self.slots.run(0, || {
            let (session, chained) = self.session(label, file, sha256, hook)?;
            let answer = match chained {
                Some(answer) => answer,
                None => {
                    let out = session.scratch.path().join("out");
                    self.runner(&session, label)
                        .run(hook, &out, None)
                        .map_err(|e| self.keep_log(e, label))?
                }
            };
            Ok((session, answer))
        })
    }

    fn runner<'s>(&'s self, session: &'s Session, label: &'s str) -> driver::HookRunner<'s> {
        driver::HookRunner {
            python: session.python.clone(),
            bin: session.bin.clone(),
            driver: &session.driver,
            tree: &session.tree,
            system: &session.system,
            config_settings: &self.options.config_settings,
            dir: session.scratch.path(),
            timeout: self.options.timeout,
            package: label,
        }
    }

    /// Copies the log of a failed hook out of the scratch directory (removed with the session)
    /// and points the error at the copy.
    fn keep_log(&self, e: BuildError, label: &str) -> BuildError {
        let keep = |log: &mut PathBuf| {
            let kept = self.builds.failed_log(&label.replace("==", "-"));
            let copied = kept
                .parent()
                .map_or(Ok(()), fs_err::create_dir_all)
                .and_then(|()| fs_err::copy(&*log, &kept));
            if copied.is_ok() {
                *log = kept;
            }
        };
        let mut e = e;
        match &mut e {
            BuildError::Backend { log, .. } | BuildError::Timeout { log, .. } => keep(log),
            _ => {}
        }
        e
    }

    /// Checks a wheel the backend made as any downloaded wheel, and that it is the package
    /// asked for and fits the interpreter; returns its file name and metadata.
    fn check_wheel(
        &self,
        name: &PackageName,
        version: &str,
        file: &IndexFile,
        wheel: &Path,
    ) -> Result<(String, WheelMetadata), BuildError> {
        let label = format!("{name}=={version}");
        self.check_built(&label, &file.filename, wheel, Some(name), Some(version))
    }

    /// [`Self::check_wheel`] for any source (`source` names it in errors), checking the name
    /// and the version only when known.
    fn check_built(
        &self,
        label: &str,
        source: &str,
        wheel: &Path,
        name: Option<&PackageName>,
        version: Option<&str>,
    ) -> Result<(String, WheelMetadata), BuildError> {
        let filename = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bad = |reason: String| BuildError::BadAnswer {
            package: label.to_string(),
            hook: Hook::BuildWheel.name(),
            reason,
        };
        let parsed = WheelFilename::parse(&filename).map_err(|e| bad(e.to_string()))?;
        if self.interp.tag_priority(&parsed.tags).is_none() {
            return Err(bad(format!("`{filename}` does not fit this interpreter")));
        }
        let bytes = fs_err::read(wheel)?;
        let prepared =
            crate::install::prepare_checked(&filename, &bytes).map_err(|e| BuildError::Wheel {
                sdist: source.to_string(),
                source: Box::new(e),
            })?;
        let metadata = prepared.info.metadata;
        if let Some(name) = name {
            let version = version.unwrap_or(&metadata.version);
            check_identity(&metadata.name, &metadata.version, name, version)
                .map_err(|reason| bad(format!("`{filename}` {reason}")))?;
        }
        Ok((filename, metadata))
    }
}

/// The key naming what makes builds differ: the interpreter tag `tag` (`cp311-linux_x86_64`)
/// and, when given, a fingerprint of the config settings.
pub fn build_key(tag: &str, config_settings: &ConfigSettings) -> String {
    if config_settings.is_empty() {
        tag.to_string()
    } else {
        format!("{tag}-{}", config_settings.fingerprint())
    }
}

/// Whether metadata's `got_name`/`got_version` are the sdist's (names normalized, versions
/// compared as PEP 440 versions); `Err` says what differs.
fn check_identity(
    got_name: &str,
    got_version: &str,
    name: &PackageName,
    version: &str,
) -> Result<(), String> {
    if normalize_name(got_name) != name.as_ref() {
        return Err(format!("is for `{got_name}`, not `{name}`"));
    }
    let same = match (
        pep440_rs::Version::from_str(got_version),
        pep440_rs::Version::from_str(version),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => got_version == version,
    };
    if !same {
        return Err(format!("has version {got_version}, not {version}"));
    }
    Ok(())
}

fn join(requires: &[Requirement]) -> String {
    requires
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
