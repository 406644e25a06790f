//! Settings resolved from flags and the environment.
use std::path::PathBuf;

use dx_py_core::remote::RemoteTier;

use crate::cli::Cli;

/// Where the cache and the store live.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) cache_dir: PathBuf,
    pub(crate) store_dir: PathBuf,
    /// `--store-url`: the remote tier below the store.
    pub(crate) store_url: Option<String>,
    /// That tier, opened on first use (shared by the clones of these settings).
    remote: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<RemoteTier>>>,
}

impl Settings {
    pub(crate) fn from_cli(cli: &Cli) -> Self {
        let cache_dir = cli
            .cache_dir
            .clone()
            .or_else(|| {
                std::env::var_os("DX_PY_CACHE_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(default_cache_dir);
        let store_dir = cli.store.clone().unwrap_or_else(|| cache_dir.join("store"));
        Self {
            cache_dir,
            store_dir,
            store_url: cli.store_url.clone().filter(|u| !u.is_empty()),
            remote: std::sync::Arc::default(),
        }
    }

    /// These settings with the store moved to `store` when a subcommand names one.
    pub(crate) fn with_store(&self, store: Option<&std::path::Path>) -> Self {
        let mut s = self.clone();
        if let Some(store) = store {
            s.store_dir = store.to_path_buf();
        }
        s
    }

    pub(crate) fn layouts_dir(&self) -> PathBuf {
        self.cache().layouts_dir()
    }

    /// The cache, with its store where these settings put it.
    pub(crate) fn cache(&self) -> dx_py_core::cache::Cache {
        let default = self.cache_dir.join("store");
        let store = (self.store_dir != default).then_some(self.store_dir.as_path());
        dx_py_core::cache::Cache::new(&self.cache_dir, store)
    }

    /// Every directory where dx-py makes temporaries in this cache and store (see
    /// `dx_py_core::temp`): what a sweep reads, and all it reads.
    pub(crate) fn temp_dirs(&self) -> Vec<PathBuf> {
        self.cache().temp_dirs()
    }

    /// Removes what interrupted dx-py processes left behind, if a record says one was (one
    /// `readdir` otherwise: cheap enough for a warm install). Called by commands that write to
    /// the cache, after taking the cache lock.
    pub(crate) fn sweep_after_crashes(&self) {
        let swept = dx_py_core::temp::sweep_after_crashes(&self.cache_dir, || self.temp_dirs());
        if swept.count > 0 {
            tracing::info!(
                "Removed {} temporaries ({} bytes) left by interrupted dx-py processes",
                swept.count,
                swept.bytes
            );
        }
    }
}

/// `$XDG_CACHE_HOME/dx-py`, else `~/.cache/dx-py` (`%LOCALAPPDATA%\dx-py` on Windows).
fn default_cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("LOCALAPPDATA").filter(|_| cfg!(windows)) {
        return d.join("dx-py");
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return d.join("dx-py");
    }
    if let Some(home) = env("HOME") {
        return home.join(".cache").join("dx-py");
    }
    std::env::temp_dir().join("dx-py-cache")
}

impl Settings {
    /// The package store; a read-only one keeps its unpacked trees in the user's cache.
    pub(crate) fn store(&self) -> dx_py_core::store::PackageStore {
        self.cache().store()
    }

    /// The remote tier of `--store-url`, if one is given (opened once per process).
    pub(crate) fn remote(
        &self,
    ) -> Result<Option<std::sync::Arc<RemoteTier>>, dx_py_core::remote::RemoteError> {
        let Some(url) = &self.store_url else {
            return Ok(None);
        };
        if let Some(tier) = self.remote.get() {
            return Ok(Some(tier.clone()));
        }
        let options = dx_py_core::index::ClientOptions::default();
        let tier = std::sync::Arc::new(RemoteTier::open(url, &options)?);
        Ok(Some(self.remote.get_or_init(|| tier).clone()))
    }

    /// [`Settings::store`] with the remote tier of `--store-url` below it.
    pub(crate) fn store_with_remote(&self) -> anyhow::Result<dx_py_core::store::PackageStore> {
        let store = self.store();
        Ok(match self.remote()? {
            Some(tier) => store.with_remote(tier),
            None => store,
        })
    }

    /// Says under `-v` what the remote tier fetched, and which packages it did not have.
    pub(crate) fn report_remote(&self, printer: &crate::printer::Printer) {
        let Some(tier) = self.remote.get() else {
            return;
        };
        let stats = tier.stats();
        printer.verbose(format_args!(
            "Remote store {}: fetched {} ({} bytes)",
            tier.url(),
            dx_py_core::plural::count(stats.objects as usize, "object"),
            stats.bytes
        ));
        if !stats.missing.is_empty() {
            printer.verbose(format_args!(
                "Not in the remote store, taken from their wheels: {}",
                stats.missing.join(", ")
            ));
        }
    }

    /// Finds the interpreter (`--python`, else `fallback`, else `python3`), cached by path and mtime.
    pub(crate) fn interpreter(
        &self,
        request: Option<&str>,
    ) -> Result<dx_py_core::python::Interpreter, dx_py_core::python::InterpreterError> {
        dx_py_core::python::Interpreter::find(request, &self.cache_dir)
    }
}

/// The package sources from flags, the requirements file and the user's configuration, else
/// the default index of `interp`'s pip (said under `-v`).
pub(crate) fn sources(
    args: &crate::cli::SourceArgs,
    requirements: Option<&dx_py_core::requirements::Requirements>,
    interp: &dx_py_core::python::Interpreter,
    settings: &Settings,
    printer: &crate::printer::Printer,
) -> anyhow::Result<dx_py_core::index::PackageSources> {
    let overrides = dx_py_core::index::SourceOverrides {
        index_url: args.index_url.clone(),
        extra_index_urls: args.extra_index_url.clone(),
        find_links: args.find_links.clone(),
        no_index: args.no_index,
    };
    let env = dx_py_core::index::ConfigEnv::from_process();
    let sources = dx_py_core::index::config::discover(&overrides, requirements, &env, || {
        interp.pip_default_index(&settings.cache_dir)
    })?;
    // Said once: an install from requirements asks for the sources to lock, then to sync.
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let (Some(python), Some(index)) = (&sources.index_from_pip, &sources.index_url)
        && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        printer.verbose(format_args!(
            "Using the index of {}'s pip: {}",
            python.display(),
            dx_py_core::index::redact_url(index.url.as_str())
        ));
    }
    Ok(sources)
}

/// An index client over `sources`, keeping verified downloads, metadata and index pages in the
/// cache (`--offline`: only those; `--refresh`: pages revalidated).
pub(crate) fn client(
    settings: &Settings,
    sources: dx_py_core::index::PackageSources,
    flags: &crate::cli::SourceArgs,
) -> anyhow::Result<dx_py_core::index::IndexClient> {
    let options = dx_py_core::index::ClientOptions {
        offline: flags.offline,
        refresh: flags.refresh,
        ..dx_py_core::index::ClientOptions::cached_in(&settings.cache())
    };
    Ok(dx_py_core::index::IndexClient::new(sources, options)?)
}
