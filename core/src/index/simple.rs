//! Project pages of the simple repository API: PEP 691 JSON and PEP 503 HTML.
//!
//! Both parsers treat the page as untrusted input: a malformed page is an error or (for HTML,
//! which is parsed leniently like browsers and pip do) a link that is skipped, never a panic.
use std::collections::HashMap;
use std::convert::Infallible;

use html5gum::Tokenizer;
use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};

use serde::Deserialize;
use url::Url;

use super::filename::is_dist_filename;
use super::{CoreMetadata, IndexFile};

/// The `Accept` header for project pages: JSON first, HTML as fallback.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Which format a page is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFormat {
    /// PEP 691 JSON.
    Json,
    /// PEP 503 HTML.
    Html,
}

impl PageFormat {
    /// Decides the format from the `Content-Type` header, sniffing the body when the header is
    /// missing or generic.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> Self {
        let ct = content_type.unwrap_or_default().to_ascii_lowercase();
        if ct.contains("json") {
            return Self::Json;
        }
        if ct.contains("html") {
            return Self::Html;
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            Self::Json
        } else {
            Self::Html
        }
    }
}

/// Parses a project page in `format`, resolving file URLs against `page_url`.
pub fn parse_page(
    body: &[u8],
    format: PageFormat,
    page_url: &Url,
) -> Result<Vec<IndexFile>, String> {
    match format {
        PageFormat::Json => parse_json(body, page_url),
        PageFormat::Html => {
            let text = String::from_utf8_lossy(body);
            Ok(parse_html(&text, page_url))
        }
    }
}

#[derive(Deserialize)]
struct JsonPage {
    meta: JsonMeta,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: String,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<JsonYanked>,
    #[serde(default)]
    size: Option<u64>,
    /// PEP 714's name; read as a value so that an odd one cannot fail the whole page.
    #[serde(rename = "core-metadata", default)]
    core_metadata: Option<serde_json::Value>,
    /// PEP 658's original name, still served by older indexes.
    #[serde(rename = "dist-info-metadata", default)]
    dist_info_metadata: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonYanked {
    Flag(bool),
    Reason(String),
}

/// Parses a PEP 691 JSON project page (API version 1.x).
pub fn parse_json(body: &[u8], page_url: &Url) -> Result<Vec<IndexFile>, String> {
    let page: JsonPage =
        serde_json::from_slice(body).map_err(|e| format!("invalid PEP 691 JSON: {e}"))?;
    let major = page.meta.api_version.split('.').next().unwrap_or_default();
    if major != "1" {
        return Err(format!(
            "unsupported simple API version `{}`: expected 1.x",
            page.meta.api_version
        ));
    }
    let mut out = Vec::with_capacity(page.files.len());
    for file in page.files {
        if !is_dist_filename(&file.filename) {
            continue;
        }
        let Some((url, fragment_hash)) = resolve(page_url, &file.url) else {
            tracing::debug!("Skipping `{}`: unusable URL `{}`", file.filename, file.url);
            continue;
        };
        let sha256 = file
            .hashes
            .get("sha256")
            .and_then(|h| valid_sha256(h))
            .or(fragment_hash);
        let (yanked, yanked_reason) = match file.yanked {
            None | Some(JsonYanked::Flag(false)) => (false, None),
            Some(JsonYanked::Flag(true)) => (true, None),
            Some(JsonYanked::Reason(r)) => (true, (!r.is_empty()).then_some(r)),
        };
        out.push(IndexFile {
            filename: file.filename,
            url,
            sha256,
            requires_python: file.requires_python.filter(|s| !s.trim().is_empty()),
            yanked,
            yanked_reason,
            size: file.size,
            core_metadata: file
                .core_metadata
                .or(file.dist_info_metadata)
                .and_then(|v| json_core_metadata(&v)),
        });
    }
    Ok(out)
}

/// PEP 658/714 in JSON: `true`, or a dict of hashes (possibly empty); `false`, `null` or anything
/// else means no metadata file.
fn json_core_metadata(value: &serde_json::Value) -> Option<CoreMetadata> {
    match value {
        serde_json::Value::Bool(true) => Some(CoreMetadata::default()),
        serde_json::Value::Object(hashes) => Some(CoreMetadata {
            sha256: hashes
                .get("sha256")
                .and_then(serde_json::Value::as_str)
                .and_then(valid_sha256),
        }),
        _ => None,
    }
}

/// PEP 658/714 in HTML: `true` or `<hashname>=<hex>`; `false` means none. A bare attribute or
/// a value in another form still says that the file exists (as pip reads it), without a hash.
fn html_core_metadata(value: &str) -> Option<CoreMetadata> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("false") {
        return None;
    }
    let sha256 = value.split_once('=').and_then(|(name, hex)| {
        name.trim()
            .eq_ignore_ascii_case("sha256")
            .then(|| valid_sha256(hex.trim()))
            .flatten()
    });
    Some(CoreMetadata { sha256 })
}

/// Parses a PEP 503 HTML project page (or a `--find-links` page): every anchor that links to a
/// wheel or source distribution. A `<base href>` changes what relative links resolve against.
///
/// The page is read by `html5gum`'s WHATWG tokenizer, so attributes and character references
/// are read as a browser reads them (any case, any quoting, every named reference, duplicate
/// attributes). Measured against the hand-written scanner it replaced (`index_pages` bench,
/// docs/design/index.md): 1.15–1.5x its time on a page as large indexes serve them.
pub fn parse_html(html: &str, page_url: &Url) -> Vec<IndexFile> {
    let mut links = LinkCollector::new(page_url);
    let mut emitter = CallbackEmitter::new(|event: CallbackEvent<'_>, _: html5gum::Span<()>| {
        links.event(event);
        None::<Infallible>
    });
    // Switches to raw text after `<script>`, `<style>`, `<textarea>`... as a browser's tree
    // builder would, so that a link written inside a script is not taken for one.
    emitter.naively_switch_states(true);
    let Ok(()) = Tokenizer::new_with_emitter(html, emitter).finish();
    links.end_text();
    links.out
}

/// The attributes of a link that matter, as the tokenizer gives them: names lowercased,
/// character references decoded, a bare attribute read as the empty string.
#[derive(Default)]
struct Anchor {
    href: Option<String>,
    requires_python: Option<String>,
    yanked: Option<String>,
    core_metadata: Option<String>,
    dist_info_metadata: Option<String>,
    /// The link's text, up to the next tag.
    text: String,
}

/// Which attribute the tokenizer is reading.
#[derive(Clone, Copy)]
enum Slot {
    Href,
    RequiresPython,
    Yanked,
    CoreMetadata,
    DistInfoMetadata,
    BaseHref,
}

/// Which start tag the tokenizer is reading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenTag {
    A,
    Base,
    Other,
}

/// Turns tokenizer events into files: the state between the events of one page.
struct LinkCollector<'u> {
    page_url: &'u Url,
    base: Url,
    out: Vec<IndexFile>,
    tag: OpenTag,
    slot: Option<Slot>,
    anchor: Anchor,
    base_href: Option<String>,
    /// Between an anchor's start tag and the next tag: its text is being read.
    in_text: bool,
}

impl<'u> LinkCollector<'u> {
    fn new(page_url: &'u Url) -> Self {
        Self {
            page_url,
            base: page_url.clone(),
            out: Vec::new(),
            tag: OpenTag::Other,
            slot: None,
            anchor: Anchor::default(),
            base_href: None,
            in_text: false,
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Option<String> {
        match slot {
            Slot::Href => &mut self.anchor.href,
            Slot::RequiresPython => &mut self.anchor.requires_python,
            Slot::Yanked => &mut self.anchor.yanked,
            Slot::CoreMetadata => &mut self.anchor.core_metadata,
            Slot::DistInfoMetadata => &mut self.anchor.dist_info_metadata,
            Slot::BaseHref => &mut self.base_href,
        }
    }

    fn event(&mut self, event: CallbackEvent<'_>) {
        match event {
            CallbackEvent::OpenStartTag { name } => {
                self.end_text();
                self.slot = None;
                self.tag = match name {
                    b"a" => {
                        self.anchor = Anchor::default();
                        OpenTag::A
                    }
                    b"base" => {
                        self.base_href = None;
                        OpenTag::Base
                    }
                    _ => OpenTag::Other,
                };
            }
            CallbackEvent::AttributeName { name } => {
                let slot = match (self.tag, name) {
                    (OpenTag::A, b"href") => Some(Slot::Href),
                    (OpenTag::A, b"data-requires-python") => Some(Slot::RequiresPython),
                    (OpenTag::A, b"data-yanked") => Some(Slot::Yanked),
                    (OpenTag::A, b"data-core-metadata") => Some(Slot::CoreMetadata),
                    (OpenTag::A, b"data-dist-info-metadata") => Some(Slot::DistInfoMetadata),
                    (OpenTag::Base, b"href") => Some(Slot::BaseHref),
                    _ => None,
                };
                // The first of duplicate attributes counts, as in a browser.
                self.slot = slot.filter(|&s| {
                    let value = self.slot_mut(s);
                    let first = value.is_none();
                    if first {
                        *value = Some(String::new());
                    }
                    first
                });
            }
            CallbackEvent::AttributeValue { value } => {
                if let Some(slot) = self.slot.take() {
                    *self.slot_mut(slot) = Some(String::from_utf8_lossy(value).into_owned());
                }
            }
            CallbackEvent::CloseStartTag { .. } => {
                match self.tag {
                    OpenTag::A => self.in_text = self.anchor.href.is_some(),
                    OpenTag::Base => {
                        if let Some(href) = &self.base_href
                            && let Ok(url) = self.page_url.join(href.trim())
                        {
                            self.base = url;
                        }
                    }
                    OpenTag::Other => {}
                }
                self.tag = OpenTag::Other;
                self.slot = None;
            }
            CallbackEvent::String { value } => {
                if self.in_text {
                    self.anchor.text.push_str(&String::from_utf8_lossy(value));
                }
            }
            CallbackEvent::EndTag { .. }
            | CallbackEvent::Comment { .. }
            | CallbackEvent::Doctype { .. } => self.end_text(),
            CallbackEvent::Error(_) => {}
        }
    }

    /// Ends the text of the open anchor, if any, and turns it into a file.
    fn end_text(&mut self) {
        if std::mem::take(&mut self.in_text)
            && let Some(file) = anchor_file(&self.base, &self.anchor)
        {
            self.out.push(file);
        }
    }
}

/// The file an anchor links to, if it is a wheel or source distribution: named by the URL's
/// last segment, else by the link's text.
fn anchor_file(base: &Url, anchor: &Anchor) -> Option<IndexFile> {
    let (url, sha256) = resolve(base, anchor.href.as_deref()?.trim())?;
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let from_url = path
        .rsplit_once('/')
        .map(|(_, last)| percent_decode(last))
        .unwrap_or_default();
    let text = anchor.text.trim();
    let filename = if is_dist_filename(&from_url) {
        from_url
    } else if is_dist_filename(text) {
        text.to_string()
    } else {
        return None;
    };
    let yanked = anchor.yanked.as_deref();
    Some(IndexFile {
        filename,
        url,
        sha256,
        requires_python: anchor
            .requires_python
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        yanked: yanked.is_some(),
        yanked_reason: yanked.filter(|r| !r.is_empty()).map(str::to_string),
        size: None,
        // PEP 714: the new name wins over the old one when both are given.
        core_metadata: anchor
            .core_metadata
            .as_deref()
            .or(anchor.dist_info_metadata.as_deref())
            .and_then(html_core_metadata),
    })
}

/// Resolves a link against `base`, returning the URL without its fragment and the sha256 that
/// the fragment names (`#sha256=...`), if any. Only `http`, `https` and `file` URLs are kept.
fn resolve(base: &Url, href: &str) -> Option<(String, Option<String>)> {
    // Most indexes give absolute URLs already in normal form: taken as they are, since parsing
    // thousands of them was most of the time a large cached page took (a page of pydantic-core
    // lists some 4,000 files).
    if is_plain_absolute(href) {
        return Some((href.to_owned(), None));
    }
    let mut url = base.join(href).ok()?;
    if !matches!(url.scheme(), "http" | "https" | "file") {
        return None;
    }
    let sha256 = url.fragment().and_then(|fragment| {
        fragment
            .split('&')
            .find_map(|kv| kv.strip_prefix("sha256="))
            .and_then(valid_sha256)
    });
    url.set_fragment(None);
    Some((url.into(), sha256))
}

/// Whether `href` is an `http`/`https` URL that `Url::parse` would give back unchanged: a
/// lowercase host without a port, a path of unreserved characters and `%XX` escapes with no
/// `.` or `..` segment, no query, no fragment.
fn is_plain_absolute(href: &str) -> bool {
    let Some(rest) = href
        .strip_prefix("https://")
        .or_else(|| href.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return false;
    };
    // Labels of lowercase letters, digits and `-`; the last one not a number (a host that ends
    // in a number is an IPv4 address, which parsing rewrites).
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let last = host.rsplit('.').next().unwrap_or_default();
    let host_ok = labels_ok
        && !last.bytes().all(|b| b.is_ascii_digit())
        && !last.starts_with("0x")
        && !host.starts_with("xn--")
        && !host.contains(".xn--");
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b'+'))
        && path
            .split('/')
            .all(|segment| segment != "." && segment != "..");
    host_ok && path_ok
}

fn valid_sha256(hex: &str) -> Option<String> {
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Decodes `%XX` escapes (invalid escapes are kept as written; invalid UTF-8 is replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A URL taken as written must be what parsing it would have given.
        #[test]
        fn plain_absolute_urls_are_their_own_normal_form(
            href in prop_oneof![
                "(https?://)?[a-zA-Z0-9.:-]{0,12}(/[a-zA-Z0-9._~+%?#-]{0,10}){0,4}",
                "https?://[a-z0-9.-]{1,10}(/[a-zA-Z0-9._~+-]{0,8}){0,4}",
            ],
        ) {
            if is_plain_absolute(&href) {
                let parsed = Url::parse(&href).expect("a plain URL parses");
                prop_assert_eq!(parsed.as_str(), href.as_str());
                let base = Url::parse("https://example.invalid/simple/x/").unwrap();
                let joined = base.join(&href).unwrap();
                prop_assert_eq!(joined.as_str(), href.as_str());
            }
        }
    }

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn page() -> Url {
        Url::parse("https://idx.invalid/simple/foo/").unwrap()
    }

    #[test]
    fn html_anchors() {
        let html = format!(
            r#"<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1"><title>Links for foo</title></head>
<body><h1>Links for foo</h1>
<!-- <a href="commented-1.0.tar.gz">no</a> -->
<a href="../../files/foo-1.0-py3-none-any.whl#sha256={upper}" data-requires-python="&gt;=3.8,&lt;4">foo-1.0-py3-none-any.whl</a><br/>
<A HREF='https://cdn.invalid/p/foo-1.0.tar.gz#md5=abc' data-yanked>foo-1.0.tar.gz</A>
<a href=/abs/foo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl data-yanked="broken &amp; bad" data-requires-python="">foo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl</a>
<a href="foo%2B-3.0-py3-none-any.whl">foo+-3.0-py3-none-any.whl</a>
<a href="javascript:alert(1)">foo-9.0.tar.gz</a>
<a href="other/">not a file</a>
<a>no href</a>
<script>var s = '<a href="x-1.0.tar.gz">';</script>
</body></html>"#,
            upper = H.to_uppercase()
        );
        let files = parse_html(&html, &page());
        assert_eq!(files.len(), 4, "{files:#?}");
        assert_eq!(files[0].filename, "foo-1.0-py3-none-any.whl");
        assert_eq!(
            files[0].url,
            "https://idx.invalid/files/foo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some(H));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8,<4"));
        assert!(!files[0].yanked);
        assert_eq!(files[1].url, "https://cdn.invalid/p/foo-1.0.tar.gz");
        assert_eq!(files[1].sha256, None);
        assert!(files[1].yanked);
        assert_eq!(files[1].yanked_reason, None);
        assert_eq!(
            files[2].url,
            "https://idx.invalid/abs/foo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl"
        );
        assert_eq!(files[2].yanked_reason.as_deref(), Some("broken & bad"));
        assert_eq!(files[2].requires_python, None);
        assert_eq!(files[3].filename, "foo+-3.0-py3-none-any.whl");
    }

    /// Attributes as HTML allows them to be written: any case, single, double or no quotes,
    /// spaces around `=`, character references in values.
    #[test]
    fn html_attributes_in_every_spelling() {
        let upper = H.to_uppercase();
        let html = format!(
            r#"<a href="a-1.0.tar.gz" DATA-REQUIRES-PYTHON='&gt;=3.9' Data-Yanked = 'old &amp; slow' data-core-metadata=true>a</a>
<a href=b-1.0.tar.gz data-requires-python=&gt;=3.10 data-core-metadata = "sha256&#61;{upper}">b</a>
<a href="c-1.0.tar.gz" data-dist-info-metadata="sha256={H}">c</a>
<a href="d-1.0.tar.gz" data-dist-info-metadata="sha256={H}" data-core-metadata="true">d</a>
<a href="e-1.0.tar.gz" data-core-metadata="false" data-requires-python="   ">e</a>
<a href="f-1.0.tar.gz" data-core-metadata data-yanked="">f</a>
<a href="g-1.0.tar.gz" data-core-metadata="md5=abc">g</a>
<a href="h-1.0.tar.gz" DATA-CORE-METADATA="SHA256={H}" data-dist-info-metadata="false">h</a>"#
        );
        let files = parse_html(&html, &page());
        let f = |name: &str| files.iter().find(|f| f.filename == name).unwrap();
        let with = |sha: Option<&str>| {
            Some(CoreMetadata {
                sha256: sha.map(str::to_string),
            })
        };
        let a = f("a-1.0.tar.gz");
        assert_eq!(a.requires_python.as_deref(), Some(">=3.9"));
        assert!(a.yanked);
        assert_eq!(a.yanked_reason.as_deref(), Some("old & slow"));
        assert_eq!(a.core_metadata, with(None));
        let b = f("b-1.0.tar.gz");
        assert_eq!(b.requires_python.as_deref(), Some(">=3.10"));
        assert_eq!(b.core_metadata, with(Some(H)));
        assert_eq!(f("c-1.0.tar.gz").core_metadata, with(Some(H)));
        // PEP 714: the new name wins.
        assert_eq!(f("d-1.0.tar.gz").core_metadata, with(None));
        let e = f("e-1.0.tar.gz");
        assert_eq!(e.core_metadata, None);
        assert_eq!(e.requires_python, None);
        let bare = f("f-1.0.tar.gz");
        assert_eq!(bare.core_metadata, with(None));
        assert!(bare.yanked && bare.yanked_reason.is_none());
        assert_eq!(f("g-1.0.tar.gz").core_metadata, with(None));
        assert_eq!(f("h-1.0.tar.gz").core_metadata, with(Some(H)));
    }

    #[test]
    fn json_core_metadata_and_its_legacy_name() {
        let file = |extra: &str| {
            let body = format!(
                r#"{{"meta": {{"api-version": "1.1"}}, "files": [{{"filename": "foo-1.0.tar.gz",
                "url": "foo-1.0.tar.gz", "hashes": {{}}{extra}}}]}}"#
            );
            parse_json(body.as_bytes(), &page()).unwrap()[0]
                .core_metadata
                .clone()
        };
        let with = |sha: Option<&str>| {
            Some(CoreMetadata {
                sha256: sha.map(str::to_string),
            })
        };
        assert_eq!(file(""), None);
        assert_eq!(file(r#", "core-metadata": true"#), with(None));
        assert_eq!(file(r#", "core-metadata": false"#), None);
        assert_eq!(file(r#", "core-metadata": {}"#), with(None));
        assert_eq!(
            file(&format!(r#", "core-metadata": {{"sha256": "{H}"}}"#)),
            with(Some(H))
        );
        assert_eq!(
            file(&format!(r#", "dist-info-metadata": {{"sha256": "{H}"}}"#)),
            with(Some(H))
        );
        assert_eq!(
            file(&format!(
                r#", "dist-info-metadata": {{"sha256": "{H}"}}, "core-metadata": true"#
            )),
            with(None)
        );
        // An odd value does not fail the page.
        assert_eq!(file(r#", "core-metadata": "yes""#), None);
    }

    #[test]
    fn html_base_href() {
        let html =
            r#"<base href="https://mirror.invalid/pkgs/"><a href="foo-1.0.zip">foo-1.0.zip</a>"#;
        let files = parse_html(html, &page());
        assert_eq!(files[0].url, "https://mirror.invalid/pkgs/foo-1.0.zip");
    }

    #[test]
    fn html_is_forgiving() {
        for html in [
            "<a href=\"foo-1.0.zip",
            "<a href='foo-1.0.zip' data-yanked=",
            "<<<a",
            "<!--",
            "<a href=foo-1.0.zip>foo-1.0.zip",
            "</",
            "<a\u{e9}>",
        ] {
            let _ = parse_html(html, &page());
        }
        let files = parse_html("<a href=foo-1.0.zip>foo-1.0.zip", &page());
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn json_page() {
        let body = format!(
            r#"{{"meta": {{"api-version": "1.1", "_last-serial": 3}}, "name": "foo", "versions": ["1.0"],
            "files": [
              {{"filename": "foo-1.0-py3-none-any.whl", "url": "../../files/foo-1.0-py3-none-any.whl",
                "hashes": {{"sha256": "{H}", "md5": "x"}}, "requires-python": ">=3.8", "yanked": false,
                "size": 1234, "upload-time": "2024-01-01T00:00:00Z"}},
              {{"filename": "foo-1.0.tar.gz", "url": "https://cdn.invalid/foo-1.0.tar.gz#sha256={H}",
                "hashes": {{}}, "yanked": "security issue"}},
              {{"filename": "foo-0.9.tar.gz", "url": "https://cdn.invalid/foo-0.9.tar.gz",
                "hashes": {{}}, "requires-python": null, "yanked": true}},
              {{"filename": "foo-1.0.exe", "url": "x", "hashes": {{}}}}
            ]}}"#
        );
        let files = parse_json(body.as_bytes(), &page()).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(
            files[0].url,
            "https://idx.invalid/files/foo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some(H));
        assert_eq!(files[0].size, Some(1234));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[1].sha256.as_deref(), Some(H));
        assert_eq!(files[1].yanked_reason.as_deref(), Some("security issue"));
        assert!(files[2].yanked && files[2].yanked_reason.is_none());
    }

    #[test]
    fn json_errors() {
        let e =
            parse_json(br#"{"meta": {"api-version": "2.0"}, "files": []}"#, &page()).unwrap_err();
        assert_eq!(e, "unsupported simple API version `2.0`: expected 1.x");
        let e = parse_json(b"{\"files\": []}", &page()).unwrap_err();
        assert!(
            e.starts_with("invalid PEP 691 JSON: missing field `meta`"),
            "{e}"
        );
        assert!(parse_json(b"[", &page()).is_err());
    }

    #[test]
    fn format_detection() {
        use PageFormat::*;
        assert_eq!(
            PageFormat::detect(Some("application/vnd.pypi.simple.v1+json"), b""),
            Json
        );
        assert_eq!(
            PageFormat::detect(Some("text/html; charset=utf-8"), b"{"),
            Html
        );
        assert_eq!(PageFormat::detect(None, b"  {\"meta\""), Json);
        assert_eq!(
            PageFormat::detect(Some("application/octet-stream"), b"<html>"),
            Html
        );
    }

    /// Character references as the HTML standard reads them, in attribute values and text.
    #[test]
    fn entities() {
        let spec = |value: &str| {
            let html = format!("<a href=\"a-1.0.tar.gz\" data-requires-python=\"{value}\">x</a>");
            parse_html(&html, &page())[0]
                .requires_python
                .clone()
                .unwrap()
        };
        assert_eq!(
            spec("&gt;=3.8&#44;&#x3c;4 &amp;&bogus; &#xZZ; &"),
            ">=3.8,<4 &&bogus; &#xZZ; &"
        );
        // Every named reference, not only the few an index uses.
        assert_eq!(
            spec("&GreaterEqual;3&comma;&NotANamedOne;"),
            "\u{2265}3,&NotANamedOne;"
        );
        // Out of range: the replacement character.
        assert_eq!(spec("&#1114112;"), "\u{fffd}");
        // Without the semicolon, as browsers still accept in attributes not followed by `=`.
        assert_eq!(spec("&gt=3.8"), "&gt=3.8");
        assert_eq!(spec("&gt 3.8"), "> 3.8");
        let text = parse_html("<a href=\"sub/\">b-1.0&#46;tar&period;gz</a>", &page());
        assert_eq!(text[0].filename, "b-1.0.tar.gz");
        assert_eq!(percent_decode("a%2Bb%zz%4"), "a+b%zz%4");
        assert_eq!(percent_decode("%FF%e9"), "\u{fffd}\u{fffd}");
    }

    /// The first of duplicate attributes counts; end tags' attributes are no attributes.
    #[test]
    fn duplicate_attributes_and_odd_tags() {
        let html = r#"<a href="a-1.0.tar.gz" data-yanked="first" data-yanked="second" href="b-1.0.tar.gz">x</a data-yanked>
<a href="c-1.0.tar.gz"></a data-requires-python=">=4">
<!--> <a href="d-1.0.tar.gz">d</a>
<style><a href="e-1.0.tar.gz">e</a></style><textarea><a href="f-1.0.tar.gz"></textarea>"#;
        let files = parse_html(html, &page());
        let names: Vec<_> = files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["a-1.0.tar.gz", "c-1.0.tar.gz", "d-1.0.tar.gz"]);
        assert_eq!(files[0].yanked_reason.as_deref(), Some("first"));
        assert_eq!(files[1].requires_python, None);
    }

    proptest! {
        #[test]
        fn html_never_panics(pieces in prop::collection::vec(prop::sample::select(vec![
            "<a ", "<a", "<!--", "-->", "<base ", "<script>", "</script", "href", "=", "\"", "'",
            "&", "&#x3e;", "#sha256=", ";", "/", "!", "-", ">", " ", "x", "1.0", ".whl", ".tar.gz",
            "\u{e9}", "\u{4e2d}", "data-yanked", "data-requires-python",
        ]), 0..40)) {
            let _ = parse_html(&pieces.concat(), &page());
        }

        #[test]
        fn anchors_round_trip(
            names in prop::collection::vec("[a-z]{1,8}-[0-9]{1,3}\\.[0-9]{1,3}-py3-none-any\\.whl", 0..6),
            spec in "[<>=!~,.0-9 ]{0,12}",
        ) {
            let mut html = String::from("<html><body>\n");
            for n in &names {
                let escaped = spec.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                html.push_str(&format!(
                    "<a href=\"../../f/{n}#sha256={H}\" data-requires-python=\"{escaped}\">{n}</a>\n"
                ));
            }
            let files = parse_html(&html, &page());
            prop_assert_eq!(files.len(), names.len());
            for (f, n) in files.iter().zip(&names) {
                prop_assert_eq!(&f.filename, n);
                prop_assert_eq!(f.url.clone(), format!("https://idx.invalid/f/{n}"));
                let want = spec.trim();
                prop_assert_eq!(f.requires_python.as_deref(), (!want.is_empty()).then_some(want));
            }
        }

        /// A page written from random files, each attribute escaped and quoted as a server may
        /// write it, parses back to the same files.
        #[test]
        fn written_pages_parse_back(entries in prop::collection::vec(entry(), 0..8)) {
            let mut html = String::from("<!DOCTYPE html>\n<html><body><h1>Links</h1>\n");
            for (file, quote, href) in &entries {
                html.push_str(&anchor_html(file, *quote, href));
            }
            html.push_str("</body></html>\n");
            let parsed = parse_html(&html, &page());
            let want: Vec<IndexFile> = entries.into_iter().map(|(file, ..)| file).collect();
            prop_assert_eq!(parsed, want, "{}", html);
        }
    }

    /// Attribute quoting styles of [`anchor_html`].
    #[derive(Clone, Copy, Debug)]
    enum Quote {
        Double,
        Single,
        /// Unquoted where the value allows it (no space, quote, `=`, `<`, `>` or backtick), else
        /// double quotes.
        None,
    }

    /// A file as a page lists it, how its attributes are quoted, and the `href` that links it.
    fn entry() -> impl Strategy<Value = (IndexFile, Quote, String)> {
        let spec = "[<>=!~,.0-9 &*]{0,14}";
        let reason = "[a-zA-Z0-9 \"'&<>=;#]{0,14}";
        (
            "[a-z][a-z0-9_]{0,6}",
            "[0-9]{1,2}\\.[0-9]{1,2}",
            prop::bool::ANY,
            prop::option::of("[0-9a-f]{64}"),
            prop::option::of(spec),
            prop::option::of(reason),
            prop::option::of(prop::option::of("[0-9a-f]{64}")),
            prop::sample::select(vec![Quote::Double, Quote::Single, Quote::None]),
            prop::bool::ANY,
        )
            .prop_map(
                |(name, version, wheel, sha256, spec, yanked, metadata, quote, absolute)| {
                    let filename = if wheel {
                        format!("{name}-{version}-py3-none-any.whl")
                    } else {
                        format!("{name}-{version}.tar.gz")
                    };
                    let on_index = format!("https://idx.invalid/p/{filename}");
                    let (href, url) = match (&sha256, absolute) {
                        (Some(h), _) => (format!("/p/{filename}#sha256={h}"), on_index),
                        (None, true) => {
                            let cdn = format!("https://files.invalid/p/{filename}");
                            (cdn.clone(), cdn)
                        }
                        (None, false) => (format!("../../p/{filename}"), on_index),
                    };
                    let requires_python =
                        spec.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
                    let file = IndexFile {
                        filename,
                        url,
                        sha256,
                        requires_python,
                        yanked: yanked.is_some(),
                        yanked_reason: yanked.filter(|r| !r.is_empty()),
                        size: None,
                        core_metadata: metadata.map(|sha256| CoreMetadata { sha256 }),
                    };
                    (file, quote, href)
                },
            )
    }

    /// `value` escaped and quoted as an attribute value.
    fn attr(name: &str, value: &str, quote: Quote) -> String {
        let escaped = value
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let bare = !value.is_empty()
            && !value.contains(|c: char| c.is_ascii_whitespace() || "\"'=<>`&".contains(c));
        match quote {
            Quote::Single => format!(" {name}='{}'", escaped.replace('\'', "&#39;")),
            Quote::None if bare => format!(" {name}={escaped}"),
            _ => format!(" {name}=\"{}\"", escaped.replace('"', "&quot;")),
        }
    }

    /// One anchor for `file`, linked by `href`; `data-yanked` without a value when yanked
    /// without a reason.
    fn anchor_html(file: &IndexFile, quote: Quote, href: &str) -> String {
        let mut a = format!("<a{}", attr("href", href, quote));
        if let Some(spec) = &file.requires_python {
            a.push_str(&attr("data-requires-python", spec, quote));
        }
        match (&file.yanked_reason, file.yanked) {
            (Some(reason), _) => a.push_str(&attr("data-yanked", reason, quote)),
            (None, true) => a.push_str(" data-yanked"),
            (None, false) => {}
        }
        match &file.core_metadata {
            Some(CoreMetadata { sha256: Some(h) }) => {
                a.push_str(&attr("data-core-metadata", &format!("sha256={h}"), quote));
            }
            Some(CoreMetadata { sha256: None }) => {
                a.push_str(&attr("data-core-metadata", "true", quote));
            }
            None => {}
        }
        format!("{a}>{}</a><br/>\n", file.filename)
    }
}
