//! A package index on `127.0.0.1` serving a directory of distribution files through the
//! simple API, as PEP 691 JSON or PEP 503 HTML, with knobs to misbehave.
//!
//! ```text
//! GET /simple/                 project list (HTML)
//! GET /simple/{name}           301 to /simple/{name}/
//! GET /simple/{name}/          project page: JSON if the Accept header asks for it, else HTML
//! GET /files/{filename}        the file's bytes
//! ```
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
    log: Vec<String>,
    /// Every accepted connection, shut down when the server stops (kept-alive ones would
    /// otherwise go on answering after it is dropped).
    connections: Vec<TcpStream>,
}

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

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state().log.clone()
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
                }
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let (stall, fail) = {
            let mut s = lock(state);
            s.log.push(path.clone());
            let stall = (s.stall_next > 0).then_some(s.stall_for);
            s.stall_next = s.stall_next.saturating_sub(1);
            let fail = s.fail_next > 0;
            s.fail_next = s.fail_next.saturating_sub(1);
            (stall, fail)
        };
        if let Some(wait) = stall {
            std::thread::sleep(wait);
        }
        let response = if fail {
            Response::new("503 Service Unavailable", "text/plain", "try again")
        } else {
            route(&path, &accept, &lock(state), addr)
        };
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

fn route(path: &str, accept: &str, state: &State, addr: SocketAddr) -> Response {
    if let Some(filename) = path.strip_prefix("/files/") {
        if filename.contains('/') || filename.starts_with('.') {
            return Response::not_found();
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
            let sha256 = if state.wrong_hash {
                sha256_hex(&[bytes.as_slice(), b"wrong"].concat())
            } else {
                sha256_hex(&bytes)
            };
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
            serde_json::json!({
                "filename": f.filename,
                "url": f.url,
                "hashes": { "sha256": f.sha256 },
                "requires-python": f.requires_python,
                "yanked": yanked,
                "size": f.size,
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
