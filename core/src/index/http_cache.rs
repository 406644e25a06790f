//! The HTTP cache of project pages (and find-links pages): each page is kept on disk with its
//! HTTP caching policy (RFC 9111, through the `http-cache-semantics` crate), so that a page
//! still fresh by its `Cache-Control: max-age` costs no request, and a stale one is revalidated
//! with `If-None-Match` / `If-Modified-Since` and reused on `304 Not Modified`.
//!
//! ```text
//! {cache}/pages/{blake3(url, accept)}   one entry per page; temporaries in {cache}/pages/
//!
//! entry:  0..4    magic `DXPG`
//!         4       format version (1)
//!         5..8    zero
//!         8..12   n: length of the JSON header, u32 little-endian
//!         12..20  length of the body, u64 little-endian (a cut entry is a miss)
//!         20..    JSON header {policy, url, content_type}: the caching policy (request and
//!                 response headers, response time), the page's URL after redirects (relative
//!                 links resolve against it), its Content-Type
//!         20+n..  the page body as received
//! ```
//!
//! An entry is replaced in one rename, so readers see the old page or the new one. An entry
//! that cannot be read (damaged, or from another format version) is a miss, and is replaced by
//! the next fetch. Credentials in a URL are never written: the key is a hash and the policy is
//! made for the URL without them.
//!
//! The cache is private to the user (`private` responses are kept) and applies no heuristic
//! freshness: a page without `max-age` or `Expires` is revalidated every time it is needed,
//! because an index page changes when a release is published and only the server can say for
//! how long a page may be reused.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http_cache_semantics::{CacheOptions, CachePolicy};
use serde::{Deserialize, Serialize};
use ureq::http;
use url::Url;

const MAGIC: &[u8; 4] = b"DXPG";
const VERSION: u8 = 1;
const HEADER: usize = 20;

/// A page as stored.
#[derive(Debug)]
pub(super) struct Stored {
    pub(super) policy: CachePolicy,
    /// The page's URL after redirects.
    pub(super) url: Url,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    policy: CachePolicy,
    url: String,
    content_type: Option<String>,
}

/// The directory of stored pages; `None` keeps nothing.
#[derive(Clone, Debug)]
pub(super) struct PageCache {
    dir: Option<PathBuf>,
}

impl PageCache {
    pub(super) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Where the page `url` fetched with `accept` is kept.
    pub(super) fn entry(&self, url: &Url, accept: &str) -> Option<PathBuf> {
        let mut h = blake3::Hasher::new();
        h.update(url.as_str().as_bytes());
        h.update(b"\n");
        h.update(accept.as_bytes());
        Some(self.dir.as_ref()?.join(h.finalize().to_hex().as_str()))
    }

    /// The stored page at `entry`, if there is a readable one.
    pub(super) fn load(entry: &Path) -> Option<Stored> {
        let bytes = fs_err::read(entry).ok()?;
        let parsed = decode(bytes);
        if parsed.is_none() {
            tracing::debug!("Ignoring unreadable cached page `{}`", entry.display());
        }
        parsed
    }

    /// The caching policy of the page stored at `entry`, and a key that changes whenever the
    /// entry is replaced (a hash of its header: the policy holds the response time), read
    /// without the body.
    pub(super) fn load_head(entry: &Path) -> Option<(CachePolicy, [u8; 32])> {
        use std::io::Read;
        let mut file = std::fs::File::open(entry).ok()?;
        let mut fixed = [0u8; HEADER];
        file.read_exact(&mut fixed).ok()?;
        if fixed.get(..4)? != MAGIC || fixed[4] != VERSION {
            return None;
        }
        let len = u32::from_le_bytes(fixed.get(8..12)?.try_into().ok()?);
        let mut meta = vec![0u8; usize::try_from(len).ok()?];
        file.read_exact(&mut meta).ok()?;
        let parsed: Meta = serde_json::from_slice(&meta).ok()?;
        let mut h = blake3::Hasher::new();
        h.update(&fixed);
        h.update(&meta);
        Some((parsed.policy, *h.finalize().as_bytes()))
    }

    /// Keeps `page` at `entry`; a failure only costs a later request, so it is a warning.
    pub(super) fn store(&self, entry: &Path, page: &Stored) {
        let Some(dir) = &self.dir else { return };
        let written = encode(page).and_then(|bytes| {
            fs_err::create_dir_all(dir)?;
            crate::atomic::replace_via(dir, entry, &bytes)
        });
        if let Err(e) = written {
            tracing::warn!("Could not cache the page `{}`: {e}", entry.display());
        }
    }
}

fn encode(page: &Stored) -> std::io::Result<Vec<u8>> {
    let meta = serde_json::to_vec(&Meta {
        policy: page.policy.clone(),
        url: page.url.to_string(),
        content_type: page.content_type.clone(),
    })?;
    let len = u32::try_from(meta.len()).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(HEADER + meta.len() + page.body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(page.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&page.body);
    Ok(out)
}

fn decode(mut bytes: Vec<u8>) -> Option<Stored> {
    if bytes.get(..4)? != MAGIC || *bytes.get(4)? != VERSION {
        return None;
    }
    let len = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
    let body_len = u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?);
    let end = HEADER.checked_add(usize::try_from(len).ok()?)?;
    if end.checked_add(usize::try_from(body_len).ok()?)? != bytes.len() {
        return None;
    }
    let meta: Meta = serde_json::from_slice(bytes.get(HEADER..end)?).ok()?;
    let body = bytes.split_off(end);
    Some(Stored {
        policy: meta.policy,
        url: Url::parse(&meta.url).ok()?,
        content_type: meta.content_type,
        body,
    })
}

/// The request a policy is made for and checked against: `GET url` with `Accept`, the URL
/// without credentials (so that none are written to disk).
pub(super) fn request(url: &Url, accept: &str) -> http::Request<()> {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let mut request = http::Request::new(());
    if let Ok(uri) = bare.as_str().parse() {
        *request.uri_mut() = uri;
    }
    if let Ok(v) = http::HeaderValue::from_str(accept) {
        request.headers_mut().insert(http::header::ACCEPT, v);
    }
    request
}

/// The policy for a response just received.
pub(super) fn policy(
    request: &http::Request<()>,
    response: &http::response::Parts,
    now: SystemTime,
) -> CachePolicy {
    let options = CacheOptions {
        shared: false,
        cache_heuristic: 0.0,
        ..CacheOptions::default()
    };
    CachePolicy::new_options(request, response, now, options)
}

/// The conditional headers that revalidate a stored response with these headers.
pub(super) fn validators(stored: &http::HeaderMap) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (from, to) in [
        (http::header::ETAG, "If-None-Match"),
        (http::header::LAST_MODIFIED, "If-Modified-Since"),
    ] {
        if let Some(v) = stored.get(from).and_then(|v| v.to_str().ok()) {
            out.push((to, v.to_string()));
        }
    }
    out
}

/// The conditional headers of a revalidation request made by the policy.
pub(super) fn conditional(request: &http::request::Parts) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, header) in [
        (http::header::IF_NONE_MATCH, "If-None-Match"),
        (http::header::IF_MODIFIED_SINCE, "If-Modified-Since"),
    ] {
        if let Some(v) = request.headers.get(name).and_then(|v| v.to_str().ok()) {
            out.push((header, v.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(headers: &[(&str, &str)]) -> http::response::Parts {
        let mut r = http::Response::new(());
        for (k, v) in headers {
            r.headers_mut().append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        r.into_parts().0
    }

    #[test]
    fn entries_round_trip_and_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PageCache::new(Some(dir.path().to_path_buf()));
        let url = Url::parse("https://user:secret@idx.invalid/simple/foo/").unwrap();
        let req = request(&url, "text/html");
        assert_eq!(req.uri().to_string(), "https://idx.invalid/simple/foo/");
        let entry = cache.entry(&url, "text/html").unwrap();
        assert_ne!(entry, cache.entry(&url, "application/json").unwrap());
        let page = Stored {
            policy: policy(
                &req,
                &response(&[("cache-control", "max-age=60"), ("etag", "\"x\"")]),
                SystemTime::now(),
            ),
            url: Url::parse("https://idx.invalid/simple/foo/").unwrap(),
            content_type: Some("text/html".into()),
            body: b"<a href=x>".to_vec(),
        };
        cache.store(&entry, &page);
        let bytes = fs_err::read(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
        let back = PageCache::load(&entry).unwrap();
        assert_eq!(back.body, page.body);
        assert_eq!(back.url, page.url);
        assert_eq!(back.content_type, page.content_type);
        assert!(!back.policy.is_stale(SystemTime::now()));
        // Cut anywhere, or another version: a miss, never a panic.
        for cut in [0, 3, 5, 11, 12, 19, 20, 40, bytes.len() - 1] {
            fs_err::write(&entry, &bytes[..cut]).unwrap();
            assert!(PageCache::load(&entry).is_none(), "{cut}");
        }
        let mut other = bytes.clone();
        other[4] = 2;
        fs_err::write(&entry, &other).unwrap();
        assert!(PageCache::load(&entry).is_none());
    }

    #[test]
    fn no_heuristic_freshness() {
        let req = request(&Url::parse("https://idx.invalid/simple/foo/").unwrap(), "x");
        let old = response(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        assert!(policy(&req, &old, SystemTime::now()).is_stale(SystemTime::now()));
        assert_eq!(
            validators(&old.headers),
            [(
                "If-Modified-Since",
                "Mon, 01 Jan 2024 00:00:00 GMT".to_string()
            )]
        );
    }

    /// Through the client, against the test index.
    mod client {
        use crate::index::fixture::Fixture;
        use crate::index::{ClientOptions, IndexClient};

        const PAGE: &str = "/simple/foo/";

        fn fixture() -> Fixture {
            Fixture::serving(&[("foo-1.0-py3-none-any.whl", b"x")])
        }

        /// A new run's client, keeping pages only.
        fn run(fx: &Fixture, refresh: bool) -> IndexClient {
            fx.client_with(ClientOptions {
                cache_dir: None,
                metadata_dir: None,
                refresh,
                ..fx.options()
            })
        }

        /// A new run's listing of `foo`.
        fn list(fx: &Fixture, refresh: bool) -> Vec<String> {
            let files = run(fx, refresh).wheels("foo").unwrap();
            files.iter().map(|f| f.filename.clone()).collect()
        }

        /// (conditional, status) of each request for the page.
        fn page_requests(fx: &Fixture) -> Vec<(bool, u16)> {
            let requests = fx.server.requests_for(PAGE);
            requests.iter().map(|r| (r.conditional, r.status)).collect()
        }

        #[test]
        fn a_stale_page_is_revalidated_and_its_body_reused_on_304() {
            let fx = fixture();
            let first = list(&fx, false);
            let second = list(&fx, false);
            assert_eq!(first, second);
            assert_eq!(page_requests(&fx), [(false, 200), (true, 304)]);
            // A change on the server is seen at the next revalidation.
            fs_err::write(fx.dir.path().join("foo-2.0-py3-none-any.whl"), b"y").unwrap();
            assert_eq!(list(&fx, false).len(), 2);
            assert_eq!(page_requests(&fx)[2], (true, 200));
            // And the new page is what is stored now.
            assert_eq!(list(&fx, false).len(), 2);
            assert_eq!(page_requests(&fx)[3], (true, 304));
        }

        #[test]
        fn last_modified_alone_revalidates() {
            let fx = fixture();
            fx.server.set_etags(false);
            assert_eq!(list(&fx, false), list(&fx, false));
            assert_eq!(page_requests(&fx), [(false, 200), (true, 304)]);
        }

        #[test]
        fn max_age_means_no_request_until_refresh() {
            let fx = fixture();
            fx.server.set_cache_control(Some("max-age=600"));
            let first = list(&fx, false);
            assert_eq!(list(&fx, false), first);
            assert_eq!(list(&fx, false), first);
            assert_eq!(page_requests(&fx), [(false, 200)]);
            // --refresh revalidates a fresh page, once per run.
            let c = run(&fx, true);
            c.wheels("foo").unwrap();
            c.wheels("foo").unwrap();
            assert_eq!(page_requests(&fx), [(false, 200), (true, 304)]);
        }

        #[test]
        fn no_store_is_not_kept() {
            let fx = fixture();
            fx.server.set_cache_control(Some("no-store"));
            list(&fx, false);
            list(&fx, false);
            assert_eq!(page_requests(&fx), [(false, 200), (false, 200)]);
        }
    }
}
