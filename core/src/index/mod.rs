//! Where packages come from: package indexes (the PEP 503/691 simple API) and `--find-links`
//! locations, the configuration that names them, and choosing the one wheel of a pinned version
//! that fits an interpreter.
//!
//! ```text
//! config::discover      --index-url / requirements file / DX_PY_* / UV_* / PIP_* / pip.conf / uv.toml
//!        │               / else the default of the interpreter's pip, read from pip at run time
//!        │                         -> PackageSources (no index URL built in)
//! IndexClient::listing  find-links dirs and pages, then each index's `{index}/{name}/` page
//!        │                         -> Listing (pages kept parsed are read in place;
//!        │                            `wheels` gives the same as IndexFiles)
//! select::select_wheel  exact version, Requires-Python, best tag   -> SelectedWheel
//! IndexClient::download bytes, sha256-checked, size-limited, cached by sha256
//! IndexClient::metadata a file's METADATA / PKG-INFO: `.metadata` file, range requests or the
//!                       whole file; cached by the file's sha256 (see `metadata`)
//! ```
//!
//! Project pages go through an HTTP cache on disk (`http_cache`) that follows the server's
//! `Cache-Control`, `ETag` and `Last-Modified`; `ClientOptions::offline` and `refresh` decide
//! whether the network may be asked and whether fresh pages are revalidated.
mod client;
pub mod config;
mod dist_metadata;
mod filename;
pub mod find_links;
#[cfg(test)]
mod fixture;
mod http;
mod http_cache;
mod listing;
mod listing_cache;
mod metadata;
mod remote_zip;
pub mod select;
pub mod simple;
mod stats;

use std::path::PathBuf;

pub use client::{ClientOptions, IndexClient};
pub use config::{
    ConfigEnv, ConfigError, FindLinks, IndexUrl, PackageSources, PipDefaultIndex, SourceOverrides,
};
pub use filename::{DistFilename, SDIST_EXTENSIONS, is_dist_filename};
pub use listing::Listing;
pub use select::{SelectError, SelectedWheel, select_wheel};
pub use stats::ClientStats;
/// URLs as this module takes and gives them.
pub use url::Url;

/// One distribution file of a project, as an index page or a find-links location lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// The file name, e.g. `foo-1.0-py3-none-any.whl`.
    pub filename: String,
    /// Absolute `http`, `https` or `file` URL, without a fragment.
    pub url: String,
    /// The sha256 the index gives, lowercase hex.
    pub sha256: Option<String>,
    /// The `Requires-Python` specifiers the index gives, as written.
    pub requires_python: Option<String>,
    /// PEP 592: the file was yanked.
    pub yanked: bool,
    /// Why it was yanked, when the index says.
    pub yanked_reason: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// PEP 658/714: the index serves this file's core metadata at `{url}.metadata`.
    pub core_metadata: Option<CoreMetadata>,
}

/// A PEP 658 metadata file that an index offers next to a distribution file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    /// The sha256 of the `.metadata` file, lowercase hex, when the index gives one.
    pub sha256: Option<String>,
}

/// A failure to list or fetch files.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A request failed on every attempt (connection errors, timeouts, 5xx answers).
    #[error("Failed to fetch `{url}` after {attempts} attempt(s): {last}")]
    Fetch {
        /// The URL, with any password hidden.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// An answer that retrying cannot fix (401, 403, 410, …).
    #[error("`{url}` answered HTTP {status}{hint}")]
    Status {
        /// The URL, with any password hidden.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// A suggestion for the status, may be empty.
        hint: &'static str,
    },
    /// No index or find-links location knows the project.
    #[error("Package `{name}` was not found in {}", searched.join(", "))]
    NotFound {
        /// The normalized name.
        name: String,
        /// Every location searched (passwords hidden).
        searched: Vec<String>,
    },
    /// A project page that could not be parsed.
    #[error("Invalid index page `{url}`: {reason}")]
    InvalidPage {
        /// The page URL, with any password hidden.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Downloaded bytes whose sha256 is not the expected one.
    #[error(
        "Hash mismatch for `{filename}` from `{url}`: expected sha256 `{expected}`, got `{got}`"
    )]
    HashMismatch {
        /// The file name.
        filename: String,
        /// Where it came from, with any password hidden.
        url: String,
        /// The sha256 the lock, requirements file or index gave.
        expected: String,
        /// The sha256 of the bytes received.
        got: String,
    },
    /// A response or file larger than the configured limit.
    #[error("`{url}` is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL, with any password hidden.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A local file (a `file://` URL, a path, a find-links directory) could not be read.
    #[error("Failed to read `{}`", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A URL that cannot be used.
    #[error("Invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, with any password hidden.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The network was needed but `ClientOptions::offline` forbids it.
    #[error("`{url}` is not in the cache and `--offline` forbids fetching it")]
    Offline {
        /// The URL, with any password hidden.
        url: String,
    },
    /// A source distribution whose dependencies are only known after building it (PEP 643).
    #[error(
        "`{name}` {version} has no wheel whose metadata could be read, and its source distribution `{filename}` must be built to know its dependencies, and building is turned off"
    )]
    NeedsBuild {
        /// The project name, as the file name gives it.
        name: String,
        /// The version, as the file name gives it.
        version: String,
        /// The source distribution's file name.
        filename: String,
    },
    /// A distribution file whose core metadata could not be read.
    #[error("Invalid metadata in `{filename}` from `{url}`: {reason}")]
    InvalidMetadata {
        /// The distribution (or `.metadata`) file name.
        filename: String,
        /// Where it came from, with any password hidden.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A CA bundle that could not be used.
    #[error("Invalid CA certificate bundle `{}`: {reason}", path.display())]
    Certificates {
        /// The bundle.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// `url` with its password replaced by `****`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.into()
        }
        _ => url.to_string(),
    }
}
