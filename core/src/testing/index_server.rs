//! A package index on `127.0.0.1` serving a directory of distribution files through the
//! simple API, as PEP 691 JSON or PEP 503 HTML, with knobs to misbehave.
//!
//! ```text
//! GET /simple/                 project list (HTML)
//! GET /simple/{name}           301 to /simple/{name}/
//! GET /simple/{name}/          project page: JSON if the Accept header asks for it, else HTML
//! GET /files/{filename}        the file's bytes; `Range: bytes=…` answered with 206
//! GET /files/{wheel}.metadata  the wheel's METADATA (PEP 658), advertised on project pages
//! ```
//!
//! Pages and files carry an `ETag` (a hash of the body) and a fixed `Last-Modified`, and
//! conditional requests are answered with 304: `If-None-Match` by the ETag, else
//! `If-Modified-Since` by that date (so with ETags turned off, a changed page still looks
//! unmodified to a client that only sends the date). Knobs turn off the `.metadata` files,
//! `Range` support and ETags, and set a `Cache-Control` for pages; every request is logged
//! with its range and validators ([`TestIndex::requests_for`]).
//!
//! The directory is read on every request, so files may be added while the server runs.
//! Connections are kept alive (HTTP/1.1) until the client closes them or asks to, and the
//! server counts the connections it accepted, so that tests can see whether a client reuses them.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::hash::sha256_hex;
use crate::index::DistFilename;
use crate::names::normalize_name;

/// Which page format the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedFormat {
    /// JSON when the `Accept` header names the PEP 691 JSON type, else HTML.
    Negotiate,
    /// Always PEP 691 JSON.
    Json,
    /// Always PEP 503 HTML.
    Html,
}

struct State {
    dir: PathBuf,
    format: ServedFormat,
    fail_next: usize,
    stall_next: usize,
    stall_for: Duration,
    wrong_hash: bool,
    absolute_urls: bool,
    requires_python: HashMap<String, String>,
    yanked: HashMap<String, Option<String>>,
    serve_metadata: bool,
    honour_ranges: bool,
    etags: bool,
    cache_control: Option<String>,
    log: Vec<Logged>,
    /// Every accepted connection, shut down when the server stops (kept-alive ones would
    /// otherwise go on answering after it is dropped).
    connections: Vec<TcpStream>,
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The request path.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Whether it carried `If-None-Match` or `If-Modified-Since`.
    pub conditional: bool,
    /// The status answered (0 until it is).
    pub status: u16,
}

/// The `Last-Modified` of every page and file.
pub const LAST_MODIFIED: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

/// A running test index; it stops when dropped.
pub struct TestIndex {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestIndex {
    /// Serves the distribution files in `dir` on a free port of `127.0.0.1`.
    pub fn serve(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            dir: dir.into(),
            format: ServedFormat::Negotiate,
            fail_next: 0,
            stall_next: 0,
            stall_for: Duration::ZERO,
            wrong_hash: false,
            absolute_urls: false,
            requires_python: HashMap::new(),
            yanked: HashMap::new(),
            serve_metadata: true,
            honour_ranges: true,
            etags: true,
            cache_control: None,
            log: Vec::new(),
            connections: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Ok(clone) = stream.try_clone() {
                        lock(&state).connections.push(clone);
                    }
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = handle(stream, &state, addr);
                    });
                }
            })
        };
        Ok(Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The index URL, `http://127.0.0.1:{port}/simple/`.
    pub fn index_url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    /// The URL the server serves `filename` at.
    pub fn file_url(&self, filename: &str) -> String {
        format!("http://{}/files/{filename}", self.addr)
    }

    /// Chooses the page format.
    pub fn set_format(&self, format: ServedFormat) {
        self.state().format = format;
    }

    /// Answers the next `n` requests with `503 Service Unavailable`.
    pub fn fail_next(&self, n: usize) {
        self.state().fail_next = n;
    }

    /// Waits `wait` before answering each of the next `n` requests.
    pub fn stall_next(&self, n: usize, wait: Duration) {
        let mut s = self.state();
        s.stall_next = n;
        s.stall_for = wait;
    }

    /// Advertises wrong sha256 digests on project pages.
    pub fn set_wrong_hash(&self, wrong: bool) {
        self.state().wrong_hash = wrong;
    }

    /// Links files with absolute URLs instead of relative ones (`../../files/…`).
    pub fn set_absolute_urls(&self, absolute: bool) {
        self.state().absolute_urls = absolute;
    }

    /// Gives `filename` a `Requires-Python`.
    pub fn set_requires_python(&self, filename: &str, spec: &str) {
        self.state()
            .requires_python
            .insert(filename.to_string(), spec.to_string());
    }

    /// Marks `filename` yanked, with an optional reason.
    pub fn yank(&self, filename: &str, reason: Option<&str>) {
        self.state()
            .yanked
            .insert(filename.to_string(), reason.map(str::to_string));
    }

    /// Serves and advertises the PEP 658 `.metadata` file of each wheel (on by default).
    pub fn set_serve_metadata(&self, serve: bool) {
        self.state().serve_metadata = serve;
    }

    /// Answers `Range` requests with 206 (on by default); off, the whole file comes with 200.
    pub fn set_honour_ranges(&self, honour: bool) {
        self.state().honour_ranges = honour;
    }

    /// Sends `ETag`s (on by default); off, only `Last-Modified` validates.
    pub fn set_etags(&self, etags: bool) {
        self.state().etags = etags;
    }

    /// The `Cache-Control` header of project pages (none by default).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.state().cache_control = value.map(str::to_string);
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state().log.iter().map(|l| l.path.clone()).collect()
    }

    /// The requests made for `path` so far, in order.
    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.state()
            .log
            .iter()
            .filter(|l| l.path == path)
            .cloned()
            .collect()
    }

    /// The TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state().connections.len()
    }
}

impl Drop for TestIndex {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.state().connections.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn not_found() -> Self {
        Self::new("404 Not Found", "text/plain", "not found")
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>, addr: SocketAddr) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut accept = String::new();
        let mut close = false;
        let mut range = None;
        let mut if_none_match = None;
        let mut if_modified_since = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("accept") {
                    accept = v.to_string();
                } else if k.eq_ignore_ascii_case("connection") {
                    close = v.eq_ignore_ascii_case("close");
                } else if k.eq_ignore_ascii_case("range") {
                    range = Some(v.to_string());
                } else if k.eq_ignore_ascii_case("if-none-match") {
                    if_none_match = Some(v.to_string());
                } else if k.eq_ignore_ascii_case("if-modified-since") {
                    if_modified_since = Some(v.to_string());
                }
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        // Logged on arrival (a client may give up before the answer), the status added after.
        let (stall, fail, logged) = {
            let mut s = lock(state);
            s.log.push(Logged {
                path: path.clone(),
                range: range.clone(),
                conditional: if_none_match.is_some() || if_modified_since.is_some(),
                status: 0,
            });
            let logged = s.log.len() - 1;
            let stall = (s.stall_next > 0).then_some(s.stall_for);
            s.stall_next = s.stall_next.saturating_sub(1);
            let fail = s.fail_next > 0;
            s.fail_next = s.fail_next.saturating_sub(1);
            (stall, fail, logged)
        };
        if let Some(wait) = stall {
            std::thread::sleep(wait);
        }
        let response = if fail {
            Response::new("503 Service Unavailable", "text/plain", "try again")
        } else {
            let s = lock(state);
            let response = route(&path, &accept, &s, addr);
            let validators = Validators {
                if_none_match: if_none_match.as_deref(),
                if_modified_since: if_modified_since.as_deref(),
            };
            finish(response, &s, range.as_deref(), validators)
        };
        if let Some(entry) = lock(state).log.get_mut(logged) {
            entry.status = response
                .status
                .split(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        }
        write!(
            out,
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            response.status,
            response.content_type,
            response.body.len()
        )?;
        if close {
            out.write_all(b"Connection: close\r\n")?;
        }
        for (k, v) in &response.headers {
            write!(out, "{k}: {v}\r\n")?;
        }
        out.write_all(b"\r\n")?;
        out.write_all(&response.body)?;
        out.flush()?;
        if close {
            // Drain anything left so that closing does not reset the connection under the
            // client.
            let _ = out.shutdown(std::net::Shutdown::Write);
            let _ = reader.read(&mut [0u8; 64]);
            return Ok(());
        }
    }
}

/// The distribution files in the directory: (file name, normalized project name).
fn list(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Some(dist) = DistFilename::parse(&name) {
                out.push((name, dist.normalized_name()));
            }
        }
    }
    out.sort();
    out
}

/// The conditional headers of a request.
struct Validators<'a> {
    if_none_match: Option<&'a str>,
    if_modified_since: Option<&'a str>,
}

/// Adds validators (and `Cache-Control` to pages) to a 200 answer, then turns it into a 304
/// when the request's validators match, or into a 206 for a `Range` on a file.
fn finish(
    mut response: Response,
    state: &State,
    range: Option<&str>,
    validators: Validators<'_>,
) -> Response {
    if response.status != "200 OK" {
        return response;
    }
    let etag = format!("\"{}\"", &sha256_hex(&response.body)[..16]);
    if state.etags {
        response.headers.push(("ETag".into(), etag.clone()));
    }
    response
        .headers
        .push(("Last-Modified".into(), LAST_MODIFIED.into()));
    let is_page = response.content_type.contains("html") || response.content_type.contains("json");
    if is_page && let Some(cc) = &state.cache_control {
        response.headers.push(("Cache-Control".into(), cc.clone()));
    }
    // RFC 9110: If-None-Match wins over If-Modified-Since.
    let not_modified = match (validators.if_none_match, validators.if_modified_since) {
        (Some(inm), _) => state.etags && inm.split(',').any(|t| t.trim() == etag),
        (None, Some(ims)) => ims == LAST_MODIFIED,
        (None, None) => false,
    };
    if not_modified {
        response.status = "304 Not Modified";
        response.body.clear();
        return response;
    }
    if let Some(range) = range.filter(|_| state.honour_ranges && !is_page) {
        let total = response.body.len() as u64;
        let Some((start, end)) = byte_range(range, total) else {
            let mut r = Response::new("416 Range Not Satisfiable", "text/plain", "");
            r.headers
                .push(("Content-Range".into(), format!("bytes */{total}")));
            return r;
        };
        response.status = "206 Partial Content";
        response.body = response.body[start as usize..=end as usize].to_vec();
        response.headers.push((
            "Content-Range".into(),
            format!("bytes {start}-{end}/{total}"),
        ));
    }
    response
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as an inclusive range within `total` bytes.
fn byte_range(range: &str, total: u64) -> Option<(u64, u64)> {
    let (a, b) = range.trim().strip_prefix("bytes=")?.split_once('-')?;
    let last = total.checked_sub(1)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => (total.saturating_sub(n.parse().ok()?), last),
        (a, "") => (a.parse().ok()?, last),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(last)),
    };
    (start <= end).then_some((start, end))
}

/// The METADATA of a wheel's bytes.
fn wheel_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)?
        .into_owned();
    let mut out = Vec::new();
    zip.by_name(&name).ok()?.read_to_end(&mut out).ok()?;
    Some(out)
}

fn route(path: &str, accept: &str, state: &State, addr: SocketAddr) -> Response {
    if let Some(filename) = path.strip_prefix("/files/") {
        if filename.contains('/') || filename.starts_with('.') {
            return Response::not_found();
        }
        if let Some(wheel) = filename.strip_suffix(".metadata") {
            let metadata = (state.serve_metadata && wheel.ends_with(".whl"))
                .then(|| fs_err::read(state.dir.join(wheel)).ok())
                .flatten()
                .and_then(|b| wheel_metadata(&b));
            return match metadata {
                Some(m) => Response::new("200 OK", "application/octet-stream", m),
                None => Response::not_found(),
            };
        }
        return match fs_err::read(state.dir.join(filename)) {
            Ok(bytes) => Response::new("200 OK", "application/octet-stream", bytes),
            Err(_) => Response::not_found(),
        };
    }
    let Some(rest) = path.strip_prefix("/simple/") else {
        return Response::not_found();
    };
    let files = list(&state.dir);
    if rest.is_empty() {
        let mut projects: Vec<&str> = files.iter().map(|(_, p)| p.as_str()).collect();
        projects.dedup();
        let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
        for p in projects {
            html.push_str(&format!("<a href=\"{p}/\">{p}</a>\n"));
        }
        html.push_str("</body></html>\n");
        return Response::new("200 OK", "text/html", html);
    }
    let Some(name) = rest.strip_suffix('/') else {
        let mut r = Response::new("301 Moved Permanently", "text/plain", "");
        r.headers
            .push(("Location".to_string(), format!("/simple/{rest}/")));
        return r;
    };
    let project = normalize_name(name);
    let mine: Vec<&String> = files
        .iter()
        .filter(|(_, p)| *p == project)
        .map(|(f, _)| f)
        .collect();
    if mine.is_empty() {
        return Response::not_found();
    }
    let json = match state.format {
        ServedFormat::Json => true,
        ServedFormat::Html => false,
        ServedFormat::Negotiate => accept.contains("application/vnd.pypi.simple.v1+json"),
    };
    let entries: Vec<FileEntry> = mine
        .iter()
        .map(|f| {
            let bytes = fs_err::read(state.dir.join(f)).unwrap_or_default();
            let hash = |bytes: &[u8]| {
                if state.wrong_hash {
                    sha256_hex(&[bytes, b"wrong"].concat())
                } else {
                    sha256_hex(bytes)
                }
            };
            let sha256 = hash(&bytes);
            let metadata_sha256 = (state.serve_metadata && f.ends_with(".whl"))
                .then(|| wheel_metadata(&bytes))
                .flatten()
                .map(|m| hash(&m));
            FileEntry {
                filename: (*f).clone(),
                url: if state.absolute_urls {
                    format!("http://{addr}/files/{f}")
                } else {
                    format!("../../files/{f}")
                },
                sha256,
                size: bytes.len() as u64,
                requires_python: state.requires_python.get(*f).cloned(),
                yanked: state.yanked.get(*f).cloned(),
                metadata_sha256,
            }
        })
        .collect();
    if json {
        Response::new(
            "200 OK",
            "application/vnd.pypi.simple.v1+json",
            json_page(&project, &entries),
        )
    } else {
        Response::new(
            "200 OK",
            "application/vnd.pypi.simple.v1+html",
            html_page(&project, &entries),
        )
    }
}

struct FileEntry {
    filename: String,
    url: String,
    sha256: String,
    size: u64,
    requires_python: Option<String>,
    yanked: Option<Option<String>>,
    /// The sha256 of the PEP 658 file, when one is served.
    metadata_sha256: Option<String>,
}

fn json_page(project: &str, files: &[FileEntry]) -> String {
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let yanked = match &f.yanked {
                None => serde_json::Value::Bool(false),
                Some(None) => serde_json::Value::Bool(true),
                Some(Some(reason)) => serde_json::Value::String(reason.clone()),
            };
            let core_metadata = match &f.metadata_sha256 {
                Some(h) => serde_json::json!({ "sha256": h }),
                None => serde_json::Value::Bool(false),
            };
            serde_json::json!({
                "filename": f.filename,
                "url": f.url,
                "hashes": { "sha256": f.sha256 },
                "requires-python": f.requires_python,
                "yanked": yanked,
                "size": f.size,
                "core-metadata": core_metadata,
            })
        })
        .collect();
    serde_json::json!({
        "meta": { "api-version": "1.1" },
        "name": project,
        "files": files,
    })
    .to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_page(project: &str, files: &[FileEntry]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\">\
         <title>Links for {project}</title></head>\n<body>\n<h1>Links for {project}</h1>\n"
    );
    for f in files {
        html.push_str(&format!(
            "<a href=\"{}#sha256={}\"",
            escape(&f.url),
            f.sha256
        ));
        if let Some(spec) = &f.requires_python {
            html.push_str(&format!(" data-requires-python=\"{}\"", escape(spec)));
        }
        if let Some(h) = &f.metadata_sha256 {
            html.push_str(&format!(" data-core-metadata=\"sha256={h}\""));
        }
        match &f.yanked {
            None => {}
            Some(None) => html.push_str(" data-yanked"),
            Some(Some(reason)) => html.push_str(&format!(" data-yanked=\"{}\"", escape(reason))),
        }
        html.push_str(&format!(">{}</a><br/>\n", escape(&f.filename)));
    }
    html.push_str("</body>\n</html>\n");
    html
}
