//! Index and find-links values, as configured, turned into URLs and paths.
use url::Url;

use super::env::expand_home;
use super::{ConfigEnv, ConfigError, FindLinks, IndexUrl};
use crate::index::redact_url;

/// Parses an index URL: `http`, `https` or `file`, or a local directory path; the result
/// ends in `/` so that project pages can be joined onto it.
pub fn parse_index_url(value: &str, origin: &str) -> Result<IndexUrl, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidUrl {
        value: redact_url(value),
        origin: origin.to_string(),
        reason,
    };
    let value = value.trim();
    let mut url = match Url::parse(value) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let path = std::path::absolute(value).map_err(|e| invalid(e.to_string()))?;
            Url::from_directory_path(&path)
                .map_err(|()| invalid("not a URL or an absolute path".to_string()))?
        }
        Err(e) => return Err(invalid(e.to_string())),
    };
    if !matches!(url.scheme(), "http" | "https" | "file") {
        return Err(invalid(format!(
            "unsupported scheme `{}`: expected `https`, `http` or `file`",
            url.scheme()
        )));
    }
    if url.cannot_be_a_base() {
        return Err(invalid("not a hierarchical URL".to_string()));
    }
    url.set_fragment(None);
    url.set_query(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(IndexUrl {
        url,
        origin: origin.to_string(),
    })
}

/// Parses a find-links value: a directory path (or a `file:` URL of one), or a page's URL.
pub(super) fn parse_find_links(
    value: &str,
    origin: &str,
    env: &ConfigEnv,
) -> Result<FindLinks, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidUrl {
        value: redact_url(value),
        origin: origin.to_string(),
        reason,
    };
    if !value.contains("://") {
        return Ok(FindLinks::Dir(expand_home(value, env)));
    }
    let url = Url::parse(value).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| invalid("not a local file URL".to_string()))?;
            if path.is_dir() {
                Ok(FindLinks::Dir(path))
            } else {
                Ok(FindLinks::Page(url))
            }
        }
        "http" | "https" => Ok(FindLinks::Page(url)),
        other => Err(invalid(format!(
            "unsupported scheme `{other}`: expected `https`, `http` or `file`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_url_forms() {
        let u = parse_index_url("https://u:pw@h.invalid:8443/simple?x=1#f", "t").unwrap();
        assert_eq!(u.url.as_str(), "https://u:pw@h.invalid:8443/simple/");
        let dir = tempfile::tempdir().unwrap();
        let u = parse_index_url(dir.path().to_str().unwrap(), "t").unwrap();
        assert_eq!(u.url.scheme(), "file");
        assert!(u.url.as_str().ends_with('/'));
        let e = parse_index_url("ftp://u:secret@h.invalid/", "`X`").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid index URL `ftp://u:****@h.invalid/` (from `X`): unsupported scheme `ftp`: \
             expected `https`, `http` or `file`"
        );
        assert!(parse_index_url("https://", "t").is_err());
        assert!(parse_index_url("mailto:x@y", "t").is_err());
    }
}
