//! Fetching project pages and files: HTTP(S) with ureq (rustls), `file://` URLs and paths.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use http_cache_semantics::{AfterResponse, BeforeRequest};
use url::Url;

use super::config::{FindLinks, PackageSources};
use super::dist_metadata::MetadataCache;
use super::http::{Transport, TransportKey};
use super::http_cache::{self, PageCache, Stored};
use super::listing::Listing;
use super::listing_cache::{CachedListing, ListingCache};
use super::simple::{self, PageFormat};
use super::stats::{ClientStats, Counters};
use super::{DistFilename, IndexError, IndexFile, find_links, redact_url};
use crate::cache::Cache;
use crate::hash::sha256_hex;
use crate::names::normalize_name;

/// How the client behaves on the network.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Where verified downloads are kept, by sha256 (`{cache_dir}/sha256/ab/abcd…`); `None`
    /// keeps nothing.
    pub cache_dir: Option<PathBuf>,
    /// Attempts per request before giving up on connection errors, timeouts and 5xx/429.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub backoff: Duration,
    /// Time allowed to connect (including TLS).
    pub connect_timeout: Duration,
    /// Time allowed for the response headers, and for each read of the body.
    pub read_timeout: Duration,
    /// Largest project page accepted.
    pub max_page_bytes: u64,
    /// Largest file download accepted.
    pub max_download_bytes: u64,
    /// A PEM CA bundle to trust instead of the built-in roots; overrides the sources' `cert`.
    pub ca_bundle: Option<PathBuf>,
    /// Requests in flight to one host at a time, which also bounds the connections opened to
    /// it (they are kept and reused; see `index::http`).
    pub max_connections_per_host: usize,
    /// Where core metadata is kept, by the sha256 of its distribution file; `None` keeps none.
    pub metadata_dir: Option<PathBuf>,
    /// Where project pages are kept with their HTTP caching policy; `None` keeps none.
    pub pages_dir: Option<PathBuf>,
    /// Never use the network: pages, metadata and files come from the caches (a page is used
    /// however old), and anything not cached is [`IndexError::Offline`].
    pub offline: bool,
    /// Revalidate every cached page with the server, even one its `max-age` says is fresh
    /// (once per page and process).
    pub refresh: bool,
}

impl ClientOptions {
    /// The defaults, keeping downloads, metadata and pages in `cache`'s directories.
    pub fn cached_in(cache: &Cache) -> Self {
        Self {
            cache_dir: Some(cache.downloads_dir()),
            metadata_dir: Some(cache.metadata_dir()),
            pages_dir: Some(cache.pages_dir()),
            ..Self::default()
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            attempts: 3,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_page_bytes: 256 << 20,
            max_download_bytes: 4 << 30,
            ca_bundle: None,
            max_connections_per_host: 6,
            metadata_dir: None,
            pages_dir: None,
            offline: false,
            refresh: false,
        }
    }
}

/// Lists and downloads distribution files from configured sources. Cheap to share between
/// threads (`&self` everywhere). Every client of the process with the same network settings
/// uses one HTTP transport: one connection pool, DNS looked up once per host, a cap on the
/// requests in flight per host.
#[derive(Debug)]
pub struct IndexClient {
    sources: PackageSources,
    pub(super) options: ClientOptions,
    transport: Arc<Transport>,
    /// Each find-links location's listing, made on first use and kept for the client's life
    /// (one directory scan or page fetch per run, not one per project); `Some(None)`: skipped.
    listings: Vec<Mutex<Option<FindLinksListing>>>,
    /// Each project's files, listed once per client: the resolver asks for a project many
    /// times, and a page must be fetched (or revalidated) once per run.
    projects: Mutex<HashMap<String, ProjectSlot>>,
    pages: PageCache,
    pub(super) metadata_cache: MetadataCache,
    /// What this client fetched and what it took from its caches.
    pub(super) counters: Counters,
}

/// A project's files once listed; its lock makes concurrent askers wait for one listing.
type ProjectSlot = Arc<Mutex<Option<Arc<Listing>>>>;

/// A find-links location as listed: its files, or `None` when it was skipped.
type FindLinksListing = Option<Arc<Vec<IndexFile>>>;

/// The most of an error response's body that is read (to reuse its connection).
const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// What one GET asks for.
pub(super) struct Get<'a> {
    pub(super) accept: Option<&'a str>,
    /// Further headers: validators, `Range`.
    pub(super) headers: Vec<(&'static str, String)>,
    /// Largest body accepted.
    pub(super) limit: u64,
}

/// A page or file as fetched.
pub(super) struct Fetched {
    /// 2xx, or 304 (with an empty body) when validators were sent.
    pub(super) status: u16,
    pub(super) headers: ureq::http::HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) content_type: Option<String>,
    /// The URL the body came from, after redirects.
    pub(super) url: Url,
}

impl Fetched {
    fn from_stored(page: Stored) -> Self {
        Self {
            status: 200,
            headers: ureq::http::HeaderMap::new(),
            body: page.body,
            content_type: page.content_type,
            url: page.url,
        }
    }

    fn response_parts(&self) -> ureq::http::response::Parts {
        let mut response = ureq::http::Response::new(());
        *response.status_mut() = ureq::http::StatusCode::from_u16(self.status).unwrap_or_default();
        *response.headers_mut() = self.headers.clone();
        response.into_parts().0
    }
}

pub(super) enum FetchError {
    /// 404 (or a missing local file).
    NotFound,
    /// Anything else, already final.
    Failed(IndexError),
}

/// The outcome of one attempt.
enum Attempt {
    Retry(String),
    Fail(FetchError),
}

impl IndexClient {
    /// A client for `sources`.
    pub fn new(sources: PackageSources, options: ClientOptions) -> Result<Self, IndexError> {
        let ca_bundle = options
            .ca_bundle
            .as_ref()
            .or(sources.cert.as_ref())
            .cloned();
        let key = TransportKey {
            ca_bundle: ca_bundle.clone(),
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
            per_host: options.max_connections_per_host,
        };
        let transport = Transport::shared(&key, || {
            let mut tls = ureq::tls::TlsConfig::builder();
            if let Some(bundle) = &ca_bundle {
                tls = tls.root_certs(load_certificates(bundle)?);
            }
            Ok::<_, IndexError>(tls.build())
        })?;
        Ok(Self {
            listings: sources
                .find_links
                .iter()
                .map(|_| Mutex::default())
                .collect(),
            projects: Mutex::default(),
            pages: PageCache::new(options.pages_dir.clone()),
            metadata_cache: MetadataCache::new(options.metadata_dir.clone()),
            counters: Counters::default(),
            sources,
            options,
            transport,
        })
    }

    /// What this client fetched and took from its caches so far.
    pub fn stats(&self) -> ClientStats {
        self.counters.snapshot()
    }

    /// The sources this client searches.
    pub fn sources(&self) -> &PackageSources {
        &self.sources
    }

    /// Every distribution file (wheels *and* source distributions, so that selection can say
    /// when only a source distribution exists) of the project `name` (normalized here), from
    /// the find-links locations first, then every index in order. A project no source knows is
    /// [`IndexError::NotFound`]; an unreadable find-links directory is skipped with a warning;
    /// any other failure is an error.
    ///
    /// A project is listed once per client: later calls return the same files without a
    /// request (failures are not kept, so a later call tries again).
    pub fn wheels(&self, name: &str) -> Result<Arc<[IndexFile]>, IndexError> {
        Ok(self.listing(name)?.to_vec().into())
    }

    /// The files of [`Self::wheels`] as a [`Listing`]: pages kept parsed from an earlier run are
    /// read in place, and a file becomes an [`IndexFile`] only when asked for.
    pub fn listing(&self, name: &str) -> Result<Arc<Listing>, IndexError> {
        let name = normalize_name(name);
        let slot = lock(&self.projects)
            .entry(name.clone())
            .or_default()
            .clone();
        // Concurrent callers for one project wait for the one listing.
        let mut slot = lock(&slot);
        if let Some(files) = &*slot {
            return Ok(files.clone());
        }
        let files = Arc::new(self.list(name)?);
        *slot = Some(files.clone());
        Ok(files)
    }

    fn list(&self, name: String) -> Result<Listing, IndexError> {
        let mut files = Listing::default();
        let mut searched = Vec::new();
        let mut known = false;
        for (slot, location) in self.listings.iter().zip(&self.sources.find_links) {
            searched.push(location.to_string());
            let Some(listed) = self.find_links_listing(slot, location)? else {
                continue;
            };
            files.push_files(
                listed
                    .iter()
                    .filter(|f| DistFilename::parse_for(&f.filename, &name).is_some())
                    .cloned()
                    .collect(),
            );
        }
        for index in self.sources.indexes() {
            let page_url =
                index
                    .url
                    .join(&format!("{name}/"))
                    .map_err(|e| IndexError::InvalidUrl {
                        url: redact_url(index.url.as_str()),
                        reason: e.to_string(),
                    })?;
            searched.push(redact_url(page_url.as_str()));
            if let Some(listed) = self.parsed_without_request(&page_url) {
                Counters::bump(&self.counters.pages_cached);
                known = true;
                if self.any_credentials() {
                    files.push_files(self.with_credentials_all(listed.to_vec()));
                } else {
                    files.push_cached(listed);
                }
                continue;
            }
            match self.fetch_page(&page_url, simple::ACCEPT) {
                Ok(page) => {
                    let format = PageFormat::detect(page.content_type.as_deref(), &page.body);
                    let entry = self.pages.entry(&page_url, simple::ACCEPT);
                    let head = entry.as_deref().and_then(PageCache::load_head);
                    let keep = entry.as_deref().zip(head.as_ref().map(|(_, key)| key));
                    let listed = ListingCache::parse(&page.body, format, &page.url, &name, keep)?;
                    known = true;
                    files.push_files(self.with_credentials_all(listed));
                }
                Err(FetchError::NotFound) => {}
                Err(FetchError::Failed(e)) => return Err(e),
            }
        }
        if files.is_empty() && !known {
            return Err(IndexError::NotFound { name, searched });
        }
        Ok(files)
    }

    /// The files `location` lists, read once (the first caller lists, concurrent ones wait for
    /// it). An unreadable directory or a missing page is skipped with one warning.
    fn find_links_listing(
        &self,
        slot: &Mutex<Option<FindLinksListing>>,
        location: &FindLinks,
    ) -> Result<FindLinksListing, IndexError> {
        let mut slot = lock(slot);
        if let Some(listed) = &*slot {
            return Ok(listed.clone());
        }
        let listed = match location {
            FindLinks::Dir(dir) => match find_links::scan(dir) {
                Ok(list) => Some(list),
                Err(e) => {
                    tracing::warn!("Skipping find-links location: {e}");
                    None
                }
            },
            FindLinks::Page(url) => {
                match self.fetch_page(url, "text/html") {
                    Ok(page) => Some(simple::parse_html(
                        &String::from_utf8_lossy(&page.body),
                        &page.url,
                    )),
                    Err(FetchError::NotFound) => {
                        tracing::warn!(
                            "Skipping find-links page `{}`: not found",
                            redact_url(url.as_str())
                        );
                        None
                    }
                    // Not kept: a later project may try again.
                    Err(FetchError::Failed(e)) => return Err(e),
                }
            }
        };
        let listed = listed.map(Arc::new);
        *slot = Some(listed.clone());
        Ok(listed)
    }

    /// GETs `url` (`http`, `https` or `file`) through this client's transport and retries, at
    /// most `limit` bytes; `Ok(None)` when the server has no such file (404). For callers
    /// that check what they get themselves (the remote store tier checks every object's
    /// blake3), so nothing is cached or hashed here.
    pub fn get_optional(&self, url: &Url, limit: u64) -> Result<Option<Vec<u8>>, IndexError> {
        let get = Get {
            accept: None,
            headers: Vec::new(),
            limit,
        };
        match self.fetch(url, &get) {
            Ok(f) => {
                self.counters.downloaded(f.body.len());
                Ok(Some(f.body))
            }
            Err(FetchError::NotFound) => Ok(None),
            Err(FetchError::Failed(e)) => Err(e),
        }
    }

    /// GETs bytes `range` of `url` as [`IndexClient::get_optional`] does the whole file:
    /// `Ok(None)` for a 404. A server that ignores `Range` answers the whole file (200): the
    /// asked bytes are cut out of it, so the caller always gets exactly `range` (or fewer, at
    /// the end of the file).
    pub fn get_range_optional(
        &self,
        url: &Url,
        range: std::ops::Range<u64>,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, IndexError> {
        if range.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let get = Get {
            accept: None,
            // Ranges count bytes of the encoded body: ask for it unencoded.
            headers: vec![
                ("Range", format!("bytes={}-{}", range.start, range.end - 1)),
                ("Accept-Encoding", "identity".into()),
            ],
            limit,
        };
        match self.fetch(url, &get) {
            Ok(f) => {
                self.counters.downloaded(f.body.len());
                let mut body = f.body;
                if f.status != 206 {
                    let start = usize::try_from(range.start).unwrap_or(usize::MAX);
                    let end = usize::try_from(range.end).unwrap_or(usize::MAX);
                    body = body
                        .get(start.min(body.len())..end.min(body.len()))
                        .unwrap_or_default()
                        .to_vec();
                }
                Ok(Some(body))
            }
            Err(FetchError::NotFound) => Ok(None),
            Err(FetchError::Failed(e)) => Err(e),
        }
    }

    /// Downloads `url` (`http`, `https`, `file`, or a local path), checks its sha256 when one is
    /// expected, and enforces the size limit. With a cache directory and an expected hash, a
    /// verified copy is kept and later served without the network.
    pub fn download(
        &self,
        url: &str,
        expected_sha256: Option<&str>,
    ) -> Result<Vec<u8>, IndexError> {
        let expected = match expected_sha256 {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(h.to_ascii_lowercase())
            }
            Some(h) => {
                return Err(IndexError::InvalidUrl {
                    url: redact_url(url),
                    reason: format!("expected sha256 `{h}` is not 64 hex digits"),
                });
            }
            None => None,
        };
        let cached = expected
            .as_deref()
            .and_then(|h| self.options.cache_dir.as_ref().map(|d| cache_path(d, h)));
        if let (Some(path), Some(h)) = (&cached, &expected)
            && let Some(bytes) = read_cached(path, h, self.options.max_download_bytes)
        {
            Counters::bump(&self.counters.downloads_cached);
            return Ok(bytes);
        }
        let limit = self.options.max_download_bytes;
        let bytes = match Url::parse(url) {
            Ok(u) if u.scheme() == "file" => {
                let path = u.to_file_path().map_err(|()| IndexError::InvalidUrl {
                    url: redact_url(url),
                    reason: "not a local file URL".to_string(),
                })?;
                Counters::bump(&self.counters.downloads_cached);
                read_limited(&path, limit, url)?
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                let u = Url::parse(&self.with_credentials(u.as_str())).unwrap_or(u);
                let get = Get {
                    accept: None,
                    headers: Vec::new(),
                    limit,
                };
                match self.fetch(&u, &get) {
                    Ok(f) => {
                        self.counters.downloaded(f.body.len());
                        f.body
                    }
                    Err(FetchError::NotFound) => {
                        return Err(IndexError::Status {
                            url: redact_url(url),
                            status: 404,
                            hint: "",
                        });
                    }
                    Err(FetchError::Failed(e)) => return Err(e),
                }
            }
            Ok(u) => {
                return Err(IndexError::InvalidUrl {
                    url: redact_url(url),
                    reason: format!("unsupported scheme `{}`", u.scheme()),
                });
            }
            Err(_) => {
                Counters::bump(&self.counters.downloads_cached);
                read_limited(Path::new(url), limit, url)?
            }
        };
        self.keep_download(url, expected.as_deref(), bytes)
    }

    /// Checks a downloaded file against `expected` (lowercase hex) and, when it matches and a
    /// cache directory is set, keeps it there by its hash.
    pub(super) fn keep_download(
        &self,
        url: &str,
        expected: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, IndexError> {
        if let Some(expected) = expected {
            let got = sha256_hex(&bytes);
            if got != expected {
                return Err(IndexError::HashMismatch {
                    filename: file_name_of(url),
                    url: redact_url(url),
                    expected: expected.to_string(),
                    got,
                });
            }
            if let Some(root) = &self.options.cache_dir {
                let path = cache_path(root, expected);
                if let Err(e) = write_cached(root, &path, &bytes) {
                    tracing::warn!("Could not cache `{}`: {e}", path.display());
                }
            }
        }
        Ok(bytes)
    }

    /// Whether a verified copy of the file with this sha256 is in the download cache (then
    /// [`Self::download`] reads it without the network).
    pub(super) fn is_downloaded(&self, sha256: &str) -> bool {
        self.options
            .cache_dir
            .as_ref()
            .is_some_and(|d| cache_path(d, &sha256.to_ascii_lowercase()).is_file())
    }

    /// Copies the credentials of a configured index on the same host onto `url` when it has
    /// none, so that files linked from a private index can be downloaded.
    /// `files` with [`Self::with_credentials`] applied to their URLs; as they are (no copy)
    /// when no index has credentials, the usual case: a page lists thousands of URLs.
    fn with_credentials_all(&self, mut files: Vec<IndexFile>) -> Vec<IndexFile> {
        if self.any_credentials() {
            for f in &mut files {
                f.url = self.with_credentials(&f.url);
            }
        }
        files
    }

    /// Whether an index URL holds credentials.
    fn any_credentials(&self) -> bool {
        self.sources.indexes().any(|i| !i.url.username().is_empty())
    }

    fn with_credentials(&self, url: &str) -> String {
        let Ok(mut u) = Url::parse(url) else {
            return url.to_string();
        };
        if !u.username().is_empty() {
            return url.to_string();
        }
        let same = self.sources.indexes().find(|i| {
            !i.url.username().is_empty()
                && i.url.scheme() == u.scheme()
                && i.url.host_str() == u.host_str()
                && i.url.port_or_known_default() == u.port_or_known_default()
        });
        if let Some(index) = same {
            let _ = u.set_username(index.url.username());
            let _ = u.set_password(index.url.password());
        }
        u.into()
    }

    /// The files of the project page `url` when its cached copy may be used without a request
    /// (fresh, or `--offline`) and was parsed before: neither the page's body nor a request.
    fn parsed_without_request(&self, url: &Url) -> Option<CachedListing> {
        let entry = self.pages.entry(url, simple::ACCEPT)?;
        let (policy, key) = PageCache::load_head(&entry)?;
        let request = http_cache::request(url, simple::ACCEPT);
        let usable = self.options.offline
            || (!self.options.refresh
                && matches!(
                    policy.before_request(&request, SystemTime::now()),
                    BeforeRequest::Fresh(_)
                ));
        if !usable {
            return None;
        }
        ListingCache::get(&entry, &key)
    }

    /// A project or find-links page, through the HTTP cache: a stored page that is fresh (and
    /// not to be refreshed) costs no request; a stale one is revalidated and reused on 304;
    /// offline, any stored page is used. Local `file://` pages are read as they are.
    fn fetch_page(&self, url: &Url, accept: &str) -> Result<Fetched, FetchError> {
        let limit = self.options.max_page_bytes;
        if url.scheme() == "file" {
            Counters::bump(&self.counters.pages_fetched);
            return fetch_file(url, limit);
        }
        let entry = self.pages.entry(url, accept);
        let mut stored = entry.as_deref().and_then(PageCache::load);
        let request = http_cache::request(url, accept);
        let now = SystemTime::now();
        let mut validators = Vec::new();
        let reusable = stored.take_if(|page| {
            if self.options.offline {
                return true;
            }
            match page.policy.before_request(&request, now) {
                BeforeRequest::Fresh(_) if !self.options.refresh => true,
                BeforeRequest::Fresh(cached) => {
                    validators = http_cache::validators(&cached.headers);
                    false
                }
                BeforeRequest::Stale { request, .. } => {
                    validators = http_cache::conditional(&request);
                    false
                }
            }
        });
        if let Some(page) = reusable {
            tracing::debug!("Using the cached page `{}`", redact_url(url.as_str()));
            Counters::bump(&self.counters.pages_cached);
            return Ok(Fetched::from_stored(page));
        }
        let mut get = Get {
            accept: Some(accept),
            headers: validators,
            limit,
        };
        let mut fetched = self.fetch(url, &get)?;
        if fetched.status == 304 {
            let after = stored.as_ref().map(|page| {
                page.policy
                    .after_response(&request, &fetched.response_parts(), now)
            });
            match (after, stored) {
                (Some(AfterResponse::NotModified(policy, _)), Some(page)) => {
                    tracing::debug!("Cached page `{}` not modified", redact_url(url.as_str()));
                    Counters::bump(&self.counters.pages_revalidated);
                    let page = Stored { policy, ..page };
                    if let Some(entry) = &entry {
                        self.pages.store(entry, &page);
                    }
                    return Ok(Fetched::from_stored(page));
                }
                // A 304 that matches nothing stored: ask again without validators.
                _ => {
                    get.headers.clear();
                    fetched = self.fetch(url, &get)?;
                }
            }
        }
        Counters::bump(&self.counters.pages_fetched);
        if let Some(entry) = &entry {
            let policy = http_cache::policy(&request, &fetched.response_parts(), now);
            if policy.is_storable() {
                let page = Stored {
                    policy,
                    url: fetched.url.clone(),
                    content_type: fetched.content_type.clone(),
                    body: std::mem::take(&mut fetched.body),
                };
                self.pages.store(entry, &page);
                return Ok(Fetched::from_stored(page));
            }
        }
        Ok(fetched)
    }

    /// GETs `url` with retries; local `file://` URLs are read from disk (a directory serves its
    /// `index.html`, as pip does for local indexes).
    pub(super) fn fetch(&self, url: &Url, get: &Get<'_>) -> Result<Fetched, FetchError> {
        if url.scheme() == "file" {
            return fetch_file(url, get.limit);
        }
        if self.options.offline {
            return Err(FetchError::Failed(IndexError::Offline {
                url: redact_url(url.as_str()),
            }));
        }
        let attempts = self.options.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                let wait = self
                    .options
                    .backoff
                    .saturating_mul(1 << (attempt - 2).min(16));
                tracing::warn!(
                    "Retrying `{}` in {wait:?} (attempt {attempt} of {attempts}): {last}",
                    redact_url(url.as_str())
                );
                std::thread::sleep(wait);
            }
            match self.try_fetch(url, get) {
                Ok(fetched) => return Ok(fetched),
                Err(Attempt::Retry(why)) => last = why,
                Err(Attempt::Fail(e)) => return Err(e),
            }
        }
        Err(FetchError::Failed(IndexError::Fetch {
            url: redact_url(url.as_str()),
            attempts,
            last,
        }))
    }

    fn try_fetch(&self, url: &Url, get: &Get<'_>) -> Result<Fetched, Attempt> {
        let limit = get.limit;
        let _slot = self.transport.slot(url);
        let mut request = self.transport.agent().get(url.as_str());
        if let Some(accept) = get.accept {
            request = request.header("Accept", accept);
        }
        for (name, value) in &get.headers {
            request = request.header(*name, value);
        }
        let mut response = request.call().map_err(|e| classify(e, url, limit))?;
        let status = response.status().as_u16();
        if !(200..=299).contains(&status) {
            // Read a short error body to its end, so that the connection goes back to the pool
            // instead of being closed (a 404 per unknown project is common with extra indexes).
            let _ = response
                .body_mut()
                .with_config()
                .limit(ERROR_BODY_LIMIT)
                .read_to_vec();
        }
        match status {
            200..=299 | 304 => {}
            404 => return Err(Attempt::Fail(FetchError::NotFound)),
            429 | 500..=599 => return Err(Attempt::Retry(format!("HTTP {status}"))),
            _ => {
                let hint = match status {
                    401 | 403 => {
                        ": check the credentials for this index (user:password in the URL)"
                    }
                    _ => "",
                };
                return Err(Attempt::Fail(FetchError::Failed(IndexError::Status {
                    url: redact_url(url.as_str()),
                    status,
                    hint,
                })));
            }
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if response
            .body()
            .content_length()
            .is_some_and(|len| len > limit)
        {
            return Err(too_large(url, limit));
        }
        let final_url = {
            use ureq::ResponseExt;
            let uri = response.get_uri().to_string();
            match Url::parse(&uri) {
                // Unchanged (no redirect): keep the original, which may carry credentials.
                Ok(u) if u.host_str() == url.host_str() && u.path() == url.path() => url.clone(),
                Ok(u) => Url::parse(&self.with_credentials(u.as_str())).unwrap_or(u),
                Err(_) => url.clone(),
            }
        };
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| classify(e, url, limit))?;
        Ok(Fetched {
            status,
            headers: response.headers().clone(),
            body,
            content_type,
            url: final_url,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn too_large(url: &Url, limit: u64) -> Attempt {
    Attempt::Fail(FetchError::Failed(IndexError::TooLarge {
        url: redact_url(url.as_str()),
        limit,
    }))
}

/// Which transport failures are worth another attempt.
fn classify(error: ureq::Error, url: &Url, limit: u64) -> Attempt {
    use ureq::Error as E;
    match error {
        E::BodyExceedsLimit(_) => too_large(url, limit),
        E::Io(_) | E::Timeout(_) | E::ConnectionFailed | E::HostNotFound | E::Protocol(_) => {
            Attempt::Retry(error.to_string())
        }
        other => Attempt::Fail(FetchError::Failed(IndexError::Fetch {
            url: redact_url(url.as_str()),
            attempts: 1,
            last: other.to_string(),
        })),
    }
}

fn fetch_file(url: &Url, limit: u64) -> Result<Fetched, FetchError> {
    let path = url.to_file_path().map_err(|()| {
        FetchError::Failed(IndexError::InvalidUrl {
            url: redact_url(url.as_str()),
            reason: "not a local file URL".to_string(),
        })
    })?;
    let (path, url) = if path.is_dir() {
        let index = path.join("index.html");
        let url = Url::from_file_path(&index).unwrap_or_else(|()| url.clone());
        (index, url)
    } else {
        (path, url.clone())
    };
    if !path.exists() {
        return Err(FetchError::NotFound);
    }
    let body = read_limited(&path, limit, url.as_str()).map_err(FetchError::Failed)?;
    let content_type = path
        .extension()
        .is_some_and(|e| e == "json")
        .then(|| "application/vnd.pypi.simple.v1+json".to_string());
    Ok(Fetched {
        status: 200,
        headers: ureq::http::HeaderMap::new(),
        body,
        content_type,
        url,
    })
}

fn read_limited(path: &Path, limit: u64, url: &str) -> Result<Vec<u8>, IndexError> {
    use std::io::Read;
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(IndexError::TooLarge {
            url: redact_url(url),
            limit,
        });
    }
    Ok(bytes)
}

fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    simple::percent_decode(path.rsplit(['/', '\\']).next().unwrap_or(path))
}

fn cache_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join("sha256")
        .join(sha256.get(..2).unwrap_or("xx"))
        .join(sha256)
}

/// A cached copy, if present, within the limit and still matching its hash; a damaged copy
/// is removed.
fn read_cached(path: &Path, sha256: &str, limit: u64) -> Option<Vec<u8>> {
    let bytes = read_limited(path, limit, &path.to_string_lossy()).ok()?;
    if sha256_hex(&bytes) == sha256 {
        return Some(bytes);
    }
    tracing::warn!("Removing damaged cached download `{}`", path.display());
    let _ = fs_err::remove_file(path);
    None
}

/// Writes a download into the cache at `root`; the temporary file sits in `root` itself, so
/// that leftovers of a crash are found without reading the fan-out.
fn write_cached(root: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    crate::atomic::replace_via(root, path, bytes)
}

fn load_certificates(path: &Path) -> Result<ureq::tls::RootCerts, IndexError> {
    let bad = |reason: String| IndexError::Certificates {
        path: path.to_path_buf(),
        reason,
    };
    let pem = fs_err::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificates in it".to_string()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::config::parse_index_url;
    use crate::testing::{ServedFormat, TestIndex};

    const WHEEL: &str = "foo-1.0-py3-none-any.whl";
    const SDIST: &str = "foo-1.0.tar.gz";

    fn fixture() -> (tempfile::TempDir, TestIndex) {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(WHEEL), b"wheel bytes").unwrap();
        fs_err::write(dir.path().join(SDIST), b"sdist bytes").unwrap();
        fs_err::write(dir.path().join("bar-2.0-py3-none-any.whl"), b"bar").unwrap();
        let server = TestIndex::serve(dir.path()).unwrap();
        (dir, server)
    }

    fn fast() -> ClientOptions {
        ClientOptions {
            backoff: Duration::from_millis(1),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        }
    }

    fn client(index: &str, options: ClientOptions) -> IndexClient {
        IndexClient::new(PackageSources::with_index(index).unwrap(), options).unwrap()
    }

    fn names(files: &[IndexFile]) -> Vec<&str> {
        files.iter().map(|f| f.filename.as_str()).collect()
    }

    #[test]
    fn json_and_html_pages_list_the_same_files() {
        let (_dir, server) = fixture();
        server.set_requires_python(WHEEL, ">=3.8,<4");
        server.yank(SDIST, Some("bad & broken"));
        let mut seen = Vec::new();
        for (format, absolute) in [
            (ServedFormat::Negotiate, false),
            (ServedFormat::Html, false),
            (ServedFormat::Html, true),
            (ServedFormat::Json, true),
        ] {
            server.set_format(format);
            server.set_absolute_urls(absolute);
            // A client per format: each lists a project once.
            let c = client(&server.index_url(), fast());
            let files = c.wheels("FOO").unwrap();
            assert_eq!(c.wheels("foo").unwrap(), files);
            assert_eq!(names(&files), [WHEEL, SDIST], "{format:?}");
            let w = &files[0];
            assert_eq!(w.url, server.file_url(WHEEL));
            assert_eq!(
                w.sha256.as_deref(),
                Some(sha256_hex(b"wheel bytes").as_str())
            );
            assert_eq!(w.requires_python.as_deref(), Some(">=3.8,<4"));
            assert!(!w.yanked);
            assert!(files[1].yanked);
            assert_eq!(files[1].yanked_reason.as_deref(), Some("bad & broken"));
            seen.push(files.to_vec());
        }
        // Sizes are only in JSON; everything else is the same either way.
        for files in &mut seen {
            for f in files.iter_mut() {
                f.size = None;
            }
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
        assert!(server.requests().iter().all(|p| p == "/simple/foo/"));
    }

    #[test]
    fn downloads_are_verified() {
        let (_dir, server) = fixture();
        let c = client(&server.index_url(), fast());
        let files = c.wheels("foo").unwrap();
        let bytes = c
            .download(&files[0].url, files[0].sha256.as_deref())
            .unwrap();
        assert_eq!(bytes, b"wheel bytes");
        assert_eq!(c.download(&files[0].url, None).unwrap(), b"wheel bytes");

        server.set_wrong_hash(true);
        // A new client: this one has listed `foo` already.
        let files = client(&server.index_url(), fast()).wheels("foo").unwrap();
        let e = c
            .download(&files[0].url, files[0].sha256.as_deref())
            .unwrap_err();
        let expected = sha256_hex(b"wheel byteswrong");
        let got = sha256_hex(b"wheel bytes");
        assert_eq!(
            e.to_string(),
            format!(
                "Hash mismatch for `{WHEEL}` from `{}`: expected sha256 `{expected}`, got `{got}`",
                server.file_url(WHEEL)
            )
        );
        let e = c.download(&server.file_url("nope.whl"), None).unwrap_err();
        assert!(matches!(e, IndexError::Status { status: 404, .. }), "{e}");
        assert!(matches!(
            c.download(&files[0].url, Some("abc")),
            Err(IndexError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn size_limit() {
        let (dir, server) = fixture();
        let c = client(
            &server.index_url(),
            ClientOptions {
                max_download_bytes: 4,
                ..fast()
            },
        );
        let e = c.download(&server.file_url(WHEEL), None).unwrap_err();
        assert!(matches!(e, IndexError::TooLarge { limit: 4, .. }), "{e}");
        let path = dir.path().join(WHEEL);
        let e = c.download(path.to_str().unwrap(), None).unwrap_err();
        assert!(matches!(e, IndexError::TooLarge { .. }), "{e}");
    }

    /// Many projects listed and downloaded by 8 threads (as locking does): every request reuses
    /// one of at most `max_connections_per_host` connections, and `localhost` is looked up once.
    #[test]
    fn connections_are_reused_and_capped_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..40).map(|i| format!("pkg{i}")).collect();
        for name in &names {
            fs_err::write(
                dir.path().join(format!("{name}-1.0-py3-none-any.whl")),
                name.as_bytes(),
            )
            .unwrap();
        }
        let server = TestIndex::serve(dir.path()).unwrap();
        let port = Url::parse(&server.index_url()).unwrap().port().unwrap();
        let index = server.index_url().replace("127.0.0.1", "localhost");
        let c = client(
            &index,
            ClientOptions {
                max_connections_per_host: 3,
                ..fast()
            },
        );
        let done = crate::parallel::map_in_order(&names, 8, |name| {
            let files = c.wheels(name).unwrap();
            c.download(&files[0].url, files[0].sha256.as_deref())
                .unwrap()
        });
        assert_eq!(done.len(), 40);
        assert_eq!(server.requests().len(), 80);
        let connections = server.connections();
        assert!(
            (1..=3).contains(&connections),
            "{connections} connections for 80 requests"
        );
        assert_eq!(
            super::super::http::dns_lookups(&format!("localhost:{port}")),
            1
        );
    }

    #[test]
    fn retries_then_succeeds() {
        let (_dir, server) = fixture();
        server.fail_next(2);
        let c = client(&server.index_url(), fast());
        assert_eq!(names(&c.wheels("foo").unwrap()).len(), 2);
        assert_eq!(server.requests().len(), 3);
        server.fail_next(2);
        assert_eq!(
            c.download(&server.file_url(WHEEL), None).unwrap(),
            b"wheel bytes"
        );
    }

    #[test]
    fn retries_then_fails_naming_the_url() {
        let (_dir, server) = fixture();
        server.fail_next(10);
        let c = client(&server.index_url(), fast());
        let e = c.wheels("foo").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Failed to fetch `{}foo/` after 3 attempt(s): HTTP 503",
                server.index_url()
            )
        );
        assert_eq!(server.requests().len(), 3);
    }

    #[test]
    fn retries_timeouts() {
        let (_dir, server) = fixture();
        server.stall_next(1, Duration::from_millis(1500));
        let c = client(
            &server.index_url(),
            ClientOptions {
                read_timeout: Duration::from_millis(300),
                ..fast()
            },
        );
        assert_eq!(c.wheels("foo").unwrap().len(), 2);
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn connection_refused_is_retried_then_reported() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = client(
            &format!("http://user:secret@127.0.0.1:{port}/simple"),
            fast(),
        );
        let e = c.wheels("foo").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "Failed to fetch `http://user:****@127.0.0.1:{port}/simple/foo/` after 3 attempt(s): "
            )),
            "{msg}"
        );
        assert!(!msg.contains("secret"));
    }

    #[test]
    fn unknown_project_is_not_found() {
        let (_dir, server) = fixture();
        let c = client(&server.index_url(), fast());
        let e = c.wheels("nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Package `nope` was not found in {}nope/",
                server.index_url()
            )
        );
    }

    #[test]
    fn file_index_and_paths() {
        let root = tempfile::tempdir().unwrap();
        let files = root.path().join("files");
        fs_err::create_dir_all(root.path().join("simple/foo")).unwrap();
        fs_err::create_dir_all(&files).unwrap();
        fs_err::write(files.join(WHEEL), b"local wheel").unwrap();
        let sha = sha256_hex(b"local wheel");
        fs_err::write(
            root.path().join("simple/foo/index.html"),
            format!("<a href=\"../../files/{WHEEL}#sha256={sha}\">{WHEEL}</a>"),
        )
        .unwrap();
        let index = url::Url::from_directory_path(root.path().join("simple")).unwrap();
        let c = client(index.as_str(), fast());
        let listed = c.wheels("foo").unwrap();
        assert_eq!(names(&listed), [WHEEL]);
        assert_eq!(
            listed[0].url,
            url::Url::from_file_path(files.join(WHEEL))
                .unwrap()
                .as_str()
        );
        assert_eq!(
            c.download(&listed[0].url, Some(&sha)).unwrap(),
            b"local wheel"
        );
        let path = files.join(WHEEL);
        assert_eq!(
            c.download(path.to_str().unwrap(), Some(&sha)).unwrap(),
            b"local wheel"
        );
        assert!(matches!(c.wheels("bar"), Err(IndexError::NotFound { .. })));
        let e = c.download("/nonexistent/x.whl", None).unwrap_err();
        assert_eq!(e.to_string(), "Failed to read `/nonexistent/x.whl`");
    }

    #[test]
    fn find_links_come_first_and_missing_dirs_are_skipped() {
        let (_dir, server) = fixture();
        let local = tempfile::tempdir().unwrap();
        fs_err::write(
            local.path().join("foo-1.0-cp311-cp311-linux_x86_64.whl"),
            b"x",
        )
        .unwrap();
        fs_err::write(local.path().join("foobar-1.0-py3-none-any.whl"), b"x").unwrap();
        let mut sources = PackageSources::with_index(&server.index_url()).unwrap();
        sources.find_links = vec![
            FindLinks::Dir("/nonexistent/wheels".into()),
            FindLinks::Dir(local.path().to_path_buf()),
            FindLinks::Page(Url::parse(&format!("{}bar", server.index_url())).unwrap()),
        ];
        let c = IndexClient::new(sources.clone(), fast()).unwrap();
        let files = c.wheels("foo").unwrap();
        assert_eq!(
            names(&files),
            ["foo-1.0-cp311-cp311-linux_x86_64.whl", WHEEL, SDIST]
        );
        // The find-links page (redirected to `/simple/bar/`) lists bar's wheel, then the index.
        let files = c.wheels("bar").unwrap();
        assert_eq!(names(&files), ["bar-2.0-py3-none-any.whl"; 2]);
        assert_eq!(files[0].url, server.file_url("bar-2.0-py3-none-any.whl"));
        // Each location is listed once for every project asked about.
        assert_eq!(c.wheels("foo").unwrap().len(), 3);
        let page_fetches = server
            .requests()
            .iter()
            .filter(|r| *r == "/simple/bar")
            .count();
        assert_eq!(page_fetches, 1, "{:?}", server.requests());
        // With --no-index only find-links are searched.
        sources.index_url = None;
        sources.no_index = true;
        let c = IndexClient::new(sources, fast()).unwrap();
        assert_eq!(c.wheels("foo").unwrap().len(), 1);
        let e = c.wheels("baz").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Package `baz` was not found in /nonexistent/wheels, "),
            "{e}"
        );
    }

    #[test]
    fn download_cache_serves_verified_copies() {
        let (_dir, server) = fixture();
        let cache = tempfile::tempdir().unwrap();
        let options = ClientOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            ..fast()
        };
        let c = client(&server.index_url(), options);
        let sha = sha256_hex(b"wheel bytes");
        let url = server.file_url(WHEEL);
        assert_eq!(c.download(&url, Some(&sha)).unwrap(), b"wheel bytes");
        let cached = cache_path(cache.path(), &sha);
        assert!(cached.is_file());
        drop(server);
        assert_eq!(
            c.download(&url, Some(&sha.to_uppercase())).unwrap(),
            b"wheel bytes"
        );
        // A damaged copy is dropped and the network is tried again (and fails: server gone).
        fs_err::write(&cached, b"damaged").unwrap();
        assert!(c.download(&url, Some(&sha)).is_err());
        assert!(!cached.exists());
    }

    #[test]
    fn cached_in_uses_the_caches_directories() {
        let cache = Cache::new("/c", None);
        let o = ClientOptions::cached_in(&cache);
        assert_eq!(o.cache_dir, Some(cache.downloads_dir()));
        assert_eq!(o.metadata_dir, Some(cache.metadata_dir()));
        assert_eq!(o.pages_dir, Some(cache.pages_dir()));
        assert!(!o.offline && !o.refresh);
    }

    #[test]
    fn credentials_follow_to_the_same_host() {
        let mut sources = PackageSources::with_index("https://u:pw@h.invalid/simple").unwrap();
        sources
            .extra_index_urls
            .push(parse_index_url("https://other.invalid/", "t").unwrap());
        let c = IndexClient::new(sources, fast()).unwrap();
        assert_eq!(
            c.with_credentials("https://h.invalid/files/x.whl"),
            "https://u:pw@h.invalid/files/x.whl"
        );
        assert_eq!(
            c.with_credentials("https://h.invalid:8443/x.whl"),
            "https://h.invalid:8443/x.whl"
        );
        assert_eq!(
            c.with_credentials("https://v@h.invalid/x.whl"),
            "https://v@h.invalid/x.whl"
        );
        assert_eq!(
            c.with_credentials("https://other.invalid/x.whl"),
            "https://other.invalid/x.whl"
        );
    }

    #[test]
    fn bad_ca_bundle_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        fs_err::write(&pem, "not a certificate").unwrap();
        let e = IndexClient::new(
            PackageSources::with_index("https://h.invalid/").unwrap(),
            ClientOptions {
                ca_bundle: Some(pem.clone()),
                ..fast()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Invalid CA certificate bundle `{}`: no PEM certificates in it",
                pem.display()
            )
        );
    }

    #[test]
    fn system_ca_bundle_loads_when_present() {
        let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if system.is_file() {
            let options = ClientOptions {
                ca_bundle: Some(system.to_path_buf()),
                ..fast()
            };
            IndexClient::new(
                PackageSources::with_index("https://h.invalid/").unwrap(),
                options,
            )
            .unwrap();
        }
    }
}
