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
            return Ok(hit);
        }
        let (bytes, parsed) = match &dist {
            DistFilename::Wheel(wheel) => {
                let wanted = Wanted::WheelMetadata {
                    name: &wheel.name,
                    version: &wheel.version,
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
