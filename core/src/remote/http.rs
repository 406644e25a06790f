//! The HTTP tier: a static directory of the store's files behind any web server or CDN, read
//! through the index client's transport (one connection pool and DNS cache per process, a cap
//! on requests per host, retries with backoff on connection errors, timeouts and 5xx).
use crate::index::{ClientOptions, IndexClient, IndexError, PackageSources, Url, redact_url};

use super::RemoteError;

pub(super) struct HttpTier {
    /// The tier's root, ending in `/` so that keys join below it.
    base: Url,
    client: IndexClient,
}

pub(super) enum OpenError {
    Url(String),
    Client(IndexError),
}

impl HttpTier {
    pub(super) fn open(url: &str, options: &ClientOptions) -> Result<Self, OpenError> {
        let mut base = Url::parse(url).map_err(|e| OpenError::Url(e.to_string()))?;
        if base.host_str().is_none_or(str::is_empty) {
            return Err(OpenError::Url("no host".to_string()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // No index and nothing cached: the tier checks every object's blake3 itself, and its
        // files are never index pages.
        let sources = PackageSources {
            no_index: true,
            ..PackageSources::default()
        };
        let options = ClientOptions {
            cache_dir: None,
            metadata_dir: None,
            pages_dir: None,
            offline: false,
            ..options.clone()
        };
        let client = IndexClient::new(sources, options).map_err(OpenError::Client)?;
        Ok(Self { base, client })
    }

    fn url(&self, key: &str) -> Url {
        // Keys are built by this module from hex names and checked tags: they always join.
        self.base.join(key).unwrap_or_else(|_| self.base.clone())
    }

    pub(super) fn location(&self, key: &str) -> String {
        redact_url(self.url(key).as_str())
    }

    pub(super) fn get(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        self.client
            .get_optional(&self.url(key), limit)
            .map_err(|source| RemoteError::Http {
                url: self.location(key),
                source: Box::new(source),
            })
    }

    pub(super) fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        self.client
            .get_range_optional(&self.url(key), range, limit)
            .map_err(|source| RemoteError::Http {
                url: self.location(key),
                source: Box::new(source),
            })
    }
}
