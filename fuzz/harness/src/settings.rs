//! The user's pip and uv configuration files, read while working out where packages come from.
use std::cell::RefCell;

use dx_py_core::index::config::discover;
use dx_py_core::index::{ConfigEnv, PackageSources, SourceOverrides};

thread_local! {
    /// A directory per thread for the configuration file under test and an empty system root
    /// (parallel tests must not share files).
    static CONFIG_DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// Writes `data` as `{dir}/{file}`, points `variable` at it, and runs `discover` with nothing
/// else configured: no home, an empty system root, so only this file is read.
fn discover_with(variable: &str, file: &str, data: &[u8]) {
    let (env, path) = CONFIG_DIR.with_borrow_mut(|dir| {
        let dir = dir.get_or_insert_with(|| tempfile::tempdir().expect("temporary directory"));
        let root = dir.path().join("root");
        let path = dir.path().join(file);
        // Later entries win: the variable under test overrides the default that keeps pip's
        // files out when uv's is under test.
        let vars = [
            ("PIP_CONFIG_FILE", "/dev/null".to_string()),
            ("HOME", root.join("home").display().to_string()),
            (variable, path.display().to_string()),
        ];
        (ConfigEnv::new(vars, root), path)
    });
    // A new file each time: truncating one that has data makes ext4 flush it on close
    // (`auto_da_alloc`), which would cost milliseconds per input.
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, data).expect("write the configuration file");
    // No pip default: the fuzzer must not start an interpreter.
    if let Ok(sources) = discover(&SourceOverrides::default(), None, &env, || None) {
        check_sources(&sources);
    }
}

/// What `discover` promises about the sources it returns.
fn check_sources(s: &PackageSources) {
    if s.no_index {
        assert!(s.index_url.is_none() && s.extra_index_urls.is_empty());
        assert!(
            !s.find_links.is_empty(),
            "--no-index with nothing to search"
        );
    }
    let index = s.index_url.as_ref();
    assert_eq!(index.is_none(), s.no_index);
    for url in index.into_iter().chain(&s.extra_index_urls) {
        assert!(
            matches!(url.url.scheme(), "http" | "https" | "file"),
            "{url:?}"
        );
        assert!(url.url.path().ends_with('/'), "{url:?}");
        assert_eq!(
            (url.url.query(), url.url.fragment()),
            (None, None),
            "{url:?}"
        );
    }
    for extra in &s.extra_index_urls {
        assert!(
            index.is_none_or(|i| i.url != extra.url),
            "the index is not an extra index"
        );
    }
}

/// A `pip.conf` (`PIP_CONFIG_FILE`) through `discover`.
pub fn pip_conf(data: &[u8]) {
    discover_with("PIP_CONFIG_FILE", "pip.conf", data);
}

/// A `uv.toml` (`UV_CONFIG_FILE`) through `discover`.
pub fn uv_toml(data: &[u8]) {
    discover_with("UV_CONFIG_FILE", "uv.toml", data);
}
