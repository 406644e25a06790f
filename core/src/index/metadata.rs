//! [`IndexClient::metadata`]: a distribution file's core metadata, fetched the cheapest way the
//! source allows.
//!
//! ```text
//! cached by the file's sha256 ({cache}/metadata)                 no request
//! local file (find-links directory, file:// index)               read in place
//! wheel already in the download cache                            no request
//! wheel with a PEP 658 `.metadata` file (sha256 checked)         one small request
//! wheel over HTTP: ranges for the tail, the directory, METADATA  1–3 requests of a few KiB
//!   server ignores Range (200): that answer is the whole wheel   kept in the download cache
//! otherwise the whole wheel (`download`)                         kept in the download cache
//! sdist: download, PKG-INFO if PEP 643 marks it static            else IndexError::NeedsBuild
//! ```
//!
//! Wheels fetched whole are kept in the download cache because the install (or lock) that
//! follows needs the same file.
use url::Url;

use super::client::{FetchError, Get, IndexClient};
use super::dist_metadata::{SdistArchive, sdist_pkg_info, static_pkg_info};
use super::remote_zip::{self, MAX_MEMBER, MemberError, ReadAt, Wanted, ZipError};
use super::stats::Counters;
use super::{DistFilename, IndexError, IndexFile, redact_url};
use crate::hash::sha256_hex;
use crate::wheel::WheelMetadata;

impl IndexClient {
    /// The core metadata of `file` (a wheel's `METADATA`, or a source distribution's `PKG-INFO`
    /// where PEP 643 marks its dependencies static), cached by the file's sha256. An sdist whose
    /// dependencies only a build can tell is [`IndexError::NeedsBuild`].
    pub fn metadata(&self, file: &IndexFile) -> Result<WheelMetadata, IndexError> {
        let invalid = |reason: String| IndexError::InvalidMetadata {
            filename: file.filename.clone(),
            url: redact_url(&file.url),
            reason,
        };
        let dist = DistFilename::parse(&file.filename)
            .ok_or_else(|| invalid("not a wheel or source distribution file name".into()))?;
        let sha256 = file.sha256.as_deref().map(str::to_ascii_lowercase);
        if let Some(hit) = sha256.as_deref().and_then(|h| self.metadata_cache.get(h)) {
            Counters::bump(&self.counters.metadata_cached);
            return Ok(hit);
        }
        Counters::bump(&self.counters.metadata_fetched);
        let (bytes, parsed) = match &dist {
            DistFilename::Wheel(wheel) => {
                let wanted = Wanted::WheelMetadata {
                    name: wheel.name_as_written(),
                    version: wheel.version_as_written(),
                };
                let bytes = self.wheel_metadata(file, wanted)?;
                let parsed = WheelMetadata::parse(&bytes).map_err(|e| invalid(e.to_string()))?;
                (bytes, parsed)
            }
            DistFilename::Sdist { name, version } => {
                let needs_build = || IndexError::NeedsBuild {
                    name: name.clone(),
                    version: version.clone(),
                    filename: file.filename.clone(),
                };
                let archive = SdistArchive::of(&file.filename).ok_or_else(needs_build)?;
                let sdist = self.download(&file.url, sha256.as_deref())?;
                let bytes = sdist_pkg_info(&sdist, archive).map_err(invalid)?;
                let parsed = static_pkg_info(&bytes)
                    .map_err(|e| invalid(e.to_string()))?
                    .ok_or_else(needs_build)?;
                (bytes, parsed)
            }
        };
        if let Some(h) = &sha256 {
            self.metadata_cache.put(h, &bytes);
        }
        Ok(parsed)
    }

    /// A wheel's METADATA bytes, by the first path that applies (see the module docs).
    fn wheel_metadata(&self, file: &IndexFile, wanted: Wanted<'_>) -> Result<Vec<u8>, IndexError> {
        let zip_error = |e: ZipError| IndexError::InvalidMetadata {
            filename: file.filename.clone(),
            url: redact_url(&file.url),
            reason: e.to_string(),
        };
        let url = match Url::parse(&file.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            // A local wheel is read in place: its tail and one member.
            parsed => {
                let path = match parsed {
                    Ok(u) if u.scheme() == "file" => {
                        u.to_file_path().map_err(|()| IndexError::InvalidUrl {
                            url: redact_url(&file.url),
                            reason: "not a local file URL".into(),
                        })?
                    }
                    Ok(u) => {
                        return Err(IndexError::InvalidUrl {
                            url: redact_url(&file.url),
                            reason: format!("unsupported scheme `{}`", u.scheme()),
                        });
                    }
                    Err(_) => file.url.clone().into(),
                };
                let io = |source| IndexError::Io {
                    path: path.clone(),
                    source,
                };
                let mut local = fs_err::File::open(&path).map_err(io)?;
                return remote_zip::read_member(&mut local, wanted).map_err(|e| match e {
                    MemberError::Read(e) => io(e),
                    MemberError::Zip(e) => zip_error(e),
                });
            }
        };
        let sha256 = file.sha256.as_deref().map(str::to_ascii_lowercase);
        let whole = |bytes: &[u8]| {
            remote_zip::read_member(&mut { bytes }, wanted).map_err(|e| match e {
                MemberError::Zip(e) => zip_error(e),
                MemberError::Read(never) => match never {},
            })
        };
        if let Some(h) = &sha256
            && self.is_downloaded(h)
        {
            return whole(&self.download(&file.url, Some(h))?);
        }
        if let Some(core) = &file.core_metadata
            && let Some(bytes) = self.metadata_file(file, &url, core.sha256.as_deref())?
        {
            return Ok(bytes);
        }
        let mut ranges = HttpRanges {
            client: self,
            url: &url,
            sha256: sha256.as_deref(),
            whole: None,
        };
        match remote_zip::read_member(&mut ranges, wanted) {
            Ok(bytes) => return Ok(bytes),
            Err(MemberError::Zip(e)) if ranges.whole.is_some() => return Err(zip_error(e)),
            Err(MemberError::Read(
                e @ (IndexError::Offline { .. } | IndexError::HashMismatch { .. }),
            )) => {
                return Err(e);
            }
            Err(e) => tracing::debug!(
                "Reading `{}` by ranges failed ({}); fetching the whole wheel",
                redact_url(&file.url),
                match e {
                    MemberError::Read(e) => e.to_string(),
                    MemberError::Zip(e) => e.to_string(),
                }
            ),
        }
        whole(&self.download(&file.url, sha256.as_deref())?)
    }

    /// The PEP 658 file `{url}.metadata`, checked against `expected` when the index gave a
    /// hash; `None` when the index offered one but does not have it (404).
    fn metadata_file(
        &self,
        file: &IndexFile,
        url: &Url,
        expected: Option<&str>,
    ) -> Result<Option<Vec<u8>>, IndexError> {
        let mut metadata_url = url.clone();
        metadata_url.set_path(&format!("{}.metadata", url.path()));
        let get = Get {
            accept: None,
            headers: Vec::new(),
            limit: MAX_MEMBER,
        };
        let bytes = match self.fetch(&metadata_url, &get) {
            Ok(fetched) => fetched.body,
            Err(FetchError::NotFound) => {
                tracing::debug!(
                    "`{}` is advertised but missing",
                    redact_url(metadata_url.as_str())
                );
                return Ok(None);
            }
            Err(FetchError::Failed(e)) => return Err(e),
        };
        if let Some(expected) = expected {
            let got = sha256_hex(&bytes);
            if got != expected {
                return Err(IndexError::HashMismatch {
                    filename: format!("{}.metadata", file.filename),
                    url: redact_url(metadata_url.as_str()),
                    expected: expected.to_string(),
                    got,
                });
            }
        }
        Ok(Some(bytes))
    }
}

/// A remote wheel read through HTTP range requests. A server that ignores `Range` answers 200
/// with the whole file: that answer is checked, kept in the download cache, and serves every
/// later range.
struct HttpRanges<'a> {
    client: &'a IndexClient,
    url: &'a Url,
    sha256: Option<&'a str>,
    whole: Option<Vec<u8>>,
}

impl HttpRanges<'_> {
    /// GETs `range` (`bytes=…`); `Ok(Some(total))` with the body for a 206, `Ok(None)` when
    /// the whole file came instead (now in `self.whole`).
    fn get(&mut self, range: String) -> Result<(Vec<u8>, Option<u64>), IndexError> {
        let get = Get {
            accept: None,
            // Ranges count bytes of the encoded body: ask for it unencoded.
            headers: vec![("Range", range), ("Accept-Encoding", "identity".into())],
            limit: self.client.options.max_download_bytes,
        };
        let fetched = match self.client.fetch(self.url, &get) {
            Ok(f) => f,
            Err(FetchError::NotFound) => {
                return Err(IndexError::Status {
                    url: redact_url(self.url.as_str()),
                    status: 404,
                    hint: "",
                });
            }
            Err(FetchError::Failed(e)) => return Err(e),
        };
        if fetched.status == 206 {
            let total = fetched
                .headers
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, total)| total.trim().parse::<u64>().ok());
            return Ok((fetched.body, total));
        }
        tracing::debug!(
            "`{}` ignored a range request; using the whole file",
            redact_url(self.url.as_str())
        );
        let whole = self
            .client
            .keep_download(self.url.as_str(), self.sha256, fetched.body)?;
        self.whole = Some(whole);
        Ok((Vec::new(), None))
    }

    fn bad_range(&self, why: &str) -> IndexError {
        IndexError::Fetch {
            url: redact_url(self.url.as_str()),
            attempts: 1,
            last: format!("unusable range response: {why}"),
        }
    }
}

impl ReadAt for HttpRanges<'_> {
    type Error = IndexError;

    fn tail(&mut self, n: u64) -> Result<(Vec<u8>, u64), IndexError> {
        if self.whole.is_none() {
            let (body, total) = self.get(format!("bytes=-{n}"))?;
            if self.whole.is_none() {
                let total = total.ok_or_else(|| self.bad_range("no total size"))?;
                if body.len() as u64 > n || body.len() as u64 > total {
                    return Err(self.bad_range("more bytes than asked for"));
                }
                return Ok((body, total));
            }
        }
        let whole = self.whole.as_deref().unwrap_or_default();
        { whole }.tail(n).map_err(|never| match never {})
    }

    fn range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, IndexError> {
        if self.whole.is_none() {
            let (body, _) = self.get(format!("bytes={start}-{}", end.saturating_sub(1)))?;
            if self.whole.is_none() {
                if body.len() as u64 != end - start {
                    return Err(self.bad_range("not the bytes asked for"));
                }
                return Ok(body);
            }
        }
        let whole = self.whole.as_deref().unwrap_or_default();
        { whole }.range(start, end).map_err(|never| match never {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::dist_metadata::tar_gz;
    use crate::index::fixture::Fixture;
    use crate::index::{ClientOptions, FindLinks, PackageSources};
    use crate::testing::ServedFormat;
    use crate::wheel::testing::WheelBuilder;

    const WHEEL: &str = "foo-1.0-py3-none-any.whl";

    /// A wheel of about 600 KiB (incompressible), so that reading it by ranges is visibly
    /// cheaper than reading it whole.
    fn wheel() -> Vec<u8> {
        WheelBuilder::new("foo", "1.0")
            .file("foo/blob.bin", &crate::testing::noise(600 << 10, 3))
            .requires_dist("bar>=1")
            .requires_python(">=3.8")
            .build()
    }

    fn fixture() -> Fixture {
        Fixture::serving(&[(WHEEL, &wheel())])
    }

    /// The listed file `filename` of the project `name`.
    fn listed(c: &IndexClient, name: &str, filename: &str) -> IndexFile {
        let files = c.wheels(name).unwrap();
        files
            .iter()
            .find(|f| f.filename == filename)
            .unwrap()
            .clone()
    }

    fn wheel_requests(fx: &Fixture) -> Vec<crate::testing::Logged> {
        fx.server.requests_for(&format!("/files/{WHEEL}"))
    }

    fn assert_foo(m: &WheelMetadata) {
        assert_eq!(m.name, "foo");
        assert_eq!(m.version, "1.0");
        assert_eq!(m.requires_dist, ["bar>=1"]);
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
    }

    #[test]
    fn metadata_from_the_pep_658_file_in_both_page_formats() {
        let fx = fixture();
        for format in [ServedFormat::Html, ServedFormat::Json] {
            fx.server.set_format(format);
            // No metadata cache: each format fetches the file.
            let c = fx.client_with(ClientOptions {
                metadata_dir: None,
                ..fx.options()
            });
            let file = listed(&c, "foo", WHEEL);
            let core = file.core_metadata.clone().expect("advertised");
            assert_eq!(core.sha256.as_ref().map(String::len), Some(64));
            assert_foo(&c.metadata(&file).unwrap());
        }
        assert_eq!(
            fx.server
                .requests_for(&format!("/files/{WHEEL}.metadata"))
                .len(),
            2
        );
        assert!(wheel_requests(&fx).is_empty(), "{:?}", wheel_requests(&fx));
    }

    #[test]
    fn metadata_by_ranges_never_fetches_the_whole_wheel() {
        let fx = fixture();
        fx.server.set_serve_metadata(false);
        let c = fx.client();
        let file = listed(&c, "foo", WHEEL);
        assert_eq!(file.core_metadata, None);
        assert_foo(&c.metadata(&file).unwrap());
        let requests = wheel_requests(&fx);
        assert!((1..=3).contains(&requests.len()), "{requests:?}");
        assert!(
            requests
                .iter()
                .all(|r| r.range.is_some() && r.status == 206),
            "{requests:?}"
        );
        // Cached by the wheel's sha256: a new client asks nothing but the page.
        let again = fx.client();
        let file = listed(&again, "foo", WHEEL);
        assert_foo(&again.metadata(&file).unwrap());
        assert_eq!(wheel_requests(&fx).len(), requests.len());
    }

    #[test]
    fn metadata_from_the_whole_wheel_when_ranges_are_ignored() {
        let fx = fixture();
        fx.server.set_serve_metadata(false);
        fx.server.set_honour_ranges(false);
        let c = fx.client();
        let file = listed(&c, "foo", WHEEL);
        assert_foo(&c.metadata(&file).unwrap());
        let requests = wheel_requests(&fx);
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert_eq!(requests[0].status, 200);
        // The answer was the whole wheel: it is in the download cache for the install.
        let bytes = c.download(&file.url, file.sha256.as_deref()).unwrap();
        assert_eq!(bytes, fs_err::read(fx.dir.path().join(WHEEL)).unwrap());
        assert_eq!(wheel_requests(&fx).len(), 1);
    }

    #[test]
    fn a_downloaded_wheel_is_read_without_a_request() {
        let fx = fixture();
        let c = fx.client_with(ClientOptions {
            metadata_dir: None,
            ..fx.options()
        });
        let file = listed(&c, "foo", WHEEL);
        c.download(&file.url, file.sha256.as_deref()).unwrap();
        assert_foo(&c.metadata(&file).unwrap());
        assert_eq!(wheel_requests(&fx).len(), 1);
        assert!(
            fx.server
                .requests_for(&format!("/files/{WHEEL}.metadata"))
                .is_empty()
        );
    }

    #[test]
    fn a_wrong_metadata_file_hash_is_an_error() {
        let fx = fixture();
        fx.server.set_wrong_hash(true);
        let c = fx.client();
        let file = listed(&c, "foo", WHEEL);
        let e = c.metadata(&file).unwrap_err();
        match &e {
            IndexError::HashMismatch { filename, url, .. } => {
                assert_eq!(filename, &format!("{WHEEL}.metadata"));
                assert_eq!(url, &format!("{}.metadata", fx.server.file_url(WHEEL)));
            }
            other => panic!("{other}"),
        }
        // Nothing was cached from it.
        let metadata_dir = fx.cache.path().join("metadata");
        assert!(!metadata_dir.exists() || fs_err::read_dir(&metadata_dir).unwrap().count() == 0);
    }

    #[test]
    fn an_advertised_metadata_file_that_is_missing_falls_back_to_ranges() {
        let fx = fixture();
        let c = fx.client();
        let file = listed(&c, "foo", WHEEL);
        fx.server.set_serve_metadata(false);
        assert_foo(&c.metadata(&file).unwrap());
        assert!(wheel_requests(&fx).iter().all(|r| r.range.is_some()));
    }

    #[test]
    fn sdists_static_pkg_info_or_needs_build() {
        let fx = fixture();
        let pkg_info = |version: &str, dynamic: &str| {
            format!(
                "Metadata-Version: {version}\nName: baz\nVersion: 2.0\n{dynamic}Requires-Dist: qux\n\n"
            )
        };
        let write = |name: &str, text: &str| {
            let top = name.strip_suffix(".tar.gz").unwrap();
            let archive = tar_gz(&[(&format!("{top}/PKG-INFO"), text.as_bytes())]);
            fs_err::write(fx.dir.path().join(name), archive).unwrap();
        };
        write("baz-2.0.tar.gz", &pkg_info("2.2", "Dynamic: Description\n"));
        write("old-1.0.tar.gz", &pkg_info("2.1", ""));
        write(
            "dyn-1.0.tar.gz",
            &pkg_info("2.4", "Dynamic: Requires-Dist\n"),
        );
        let c = fx.client();
        let file = listed(&c, "baz", "baz-2.0.tar.gz");
        let m = c.metadata(&file).unwrap();
        assert_eq!(
            (m.name.as_str(), m.requires_dist.as_slice()),
            ("baz", &["qux".to_string()][..])
        );
        for (project, filename) in [("old", "old-1.0.tar.gz"), ("dyn", "dyn-1.0.tar.gz")] {
            let file = listed(&c, project, filename);
            let e = c.metadata(&file).unwrap_err();
            assert!(
                matches!(&e, IndexError::NeedsBuild { name, version, filename: f }
                    if name == project && version == "1.0" && f == filename),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "`{project}` 1.0 has no wheel whose metadata could be read, and its source \
                     distribution `{filename}` must be built to know its dependencies, and \
                     building is turned off"
                )
            );
        }
    }

    #[test]
    fn a_local_wheel_is_read_in_place() {
        let fx = fixture();
        let sources = PackageSources {
            no_index: true,
            find_links: vec![FindLinks::Dir(fx.dir.path().to_path_buf())],
            ..PackageSources::default()
        };
        let c = IndexClient::new(sources, fx.options()).unwrap();
        let file = c.wheels("foo").unwrap()[0].clone();
        assert!(file.url.starts_with("file://"));
        assert_foo(&c.metadata(&file).unwrap());
        assert!(fx.server.requests().is_empty());
        // A damaged local wheel names the file.
        fs_err::write(fx.dir.path().join(WHEEL), b"not a zip").unwrap();
        let e = c.metadata(&file).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("Invalid metadata in `{WHEEL}` from `file://")),
            "{e}"
        );
    }

    #[test]
    fn offline_reads_caches_and_names_what_is_missing() {
        let fx = fixture();
        let online = fx.client();
        let file = listed(&online, "foo", WHEEL);
        assert_foo(&online.metadata(&file).unwrap());
        let before = fx.server.requests().len();
        let offline = fx.client_with(ClientOptions {
            offline: true,
            ..fx.options()
        });
        // The page (however old) and the metadata come from the caches.
        let file = listed(&offline, "foo", WHEEL);
        assert_foo(&offline.metadata(&file).unwrap());
        let e = offline
            .download(&file.url, file.sha256.as_deref())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "`{}` is not in the cache and `--offline` forbids fetching it",
                file.url
            )
        );
        let e = offline.wheels("bar").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "`{}bar/` is not in the cache and `--offline` forbids fetching it",
                fx.server.index_url()
            )
        );
        assert_eq!(fx.server.requests().len(), before);
    }
}
