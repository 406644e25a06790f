//! Settings resolved from flags and the environment.
use std::path::PathBuf;

use crate::cli::Cli;

/// Where the cache and the store live.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) cache_dir: PathBuf,
    pub(crate) store_dir: PathBuf,
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
        }
    }

    pub(crate) fn layouts_dir(&self) -> PathBuf {
        self.cache_dir.join("layouts")
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
