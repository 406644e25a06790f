//! Project pages of the simple repository API (PEP 691 JSON, PEP 503 HTML), as an index or a
//! find-links page serves them.
use std::str::FromStr;

use dx_py_core::index::simple::{PageFormat, parse_page};
use dx_py_core::index::{DistFilename, Url, is_dist_filename, select_wheel};
use pep440_rs::Version;

/// `Content-Type` headers the first byte of an input chooses from.
const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/vnd.pypi.simple.v1+json"),
    Some("text/html; charset=utf-8"),
    Some("application/octet-stream"),
];

/// `PageFormat::detect` and `parse_page` (the first byte picks the `Content-Type`), then
/// `select_wheel` for each listed distribution: every file listed has a usable URL, a
/// distribution file name and a well-formed sha256.
pub fn simple_page(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let page = Url::parse("https://idx.invalid/simple/demo/").expect("constant URL");
    let format = PageFormat::detect(CONTENT_TYPES[usize::from(mode) % 4], body);
    let Ok(files) = parse_page(body, format, &page) else {
        return;
    };
    let python = Version::from_str("3.12.1").expect("constant version");
    for file in &files {
        let url = Url::parse(&file.url).expect("listed URLs parse");
        assert!(matches!(url.scheme(), "http" | "https" | "file"), "{url}");
        assert_eq!(url.fragment(), None, "{url}");
        assert!(is_dist_filename(&file.filename), "{}", file.filename);
        if let Some(sha) = &file.sha256 {
            assert!(sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        assert!(
            file.requires_python
                .as_ref()
                .is_none_or(|r| !r.trim().is_empty())
        );
    }
    for file in files.iter().take(16) {
        if let Some(dist) = DistFilename::parse(&file.filename) {
            let name = dist.normalized_name();
            let _ = select_wheel(&files, &name, dist.version(), |_| Some(0), &python);
        }
    }
}
