//! Requirements files of *pinned* requirements: what `pip freeze`, `pip-compile` and
//! `uv pip compile` write.
//!
//! Accepted, line by line (after `\` continuations are joined and `#` comments removed):
//!
//! ```text
//! name==1.2.3                                  a pin (`===` too)
//! name[extra1,extra2]==1.2.3 ; python_version < "3.12"
//! name==1.2.3 --hash=sha256:<64 hex> \         one or more hashes, also on continuation lines
//!     --hash=sha256:<64 hex>
//! -r other.txt / --requirement other.txt       included, relative to this file, each file once
//! -i URL / --index-url URL                     the index (the last one given wins)
//! --extra-index-url URL                        more indexes
//! -f DIR|URL / --find-links DIR|URL            flat directories or pages of files
//! --no-index, --require-hashes
//! --pre, --prefer-binary, --only-binary X, --trusted-host X    accepted and ignored
//! ```
//!
//! Refused with an error naming the file and line: anything not pinned to one version (there is
//! no resolver yet), editables (`-e`), direct references (`name @ URL`, paths, archive URLs),
//! constraints files, and options this tool cannot honour. `${VAR}` is expanded from the
//! environment, as pip does.
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::{Operator, Version};
use pep508_rs::{MarkerTree, Requirement, VersionOrUrl};

use crate::names::normalize_name;

/// Where a line came from: a file and a 1-based line number (the first physical line of a
/// `\`-continued one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The requirements file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// One requirement pinned to exactly one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRequirement {
    /// The name as written.
    pub name: String,
    /// The PEP 503-normalized name.
    pub normalized: String,
    /// The pinned version in PEP 440 normal form (`1.0-Alpha1` is written `1.0a1`).
    pub version: String,
    /// The pinned version, parsed.
    pub pep440_version: Version,
    /// Extras, normalized, sorted, without duplicates.
    pub extras: Vec<String>,
    /// The environment marker, `None` when the requirement always applies.
    pub marker: Option<MarkerTree>,
    /// Allowed sha256 digests of the distribution file, lowercase hex, sorted, without duplicates.
    pub hashes: Vec<String>,
    /// 1-based line of the requirement in `source`.
    pub line: usize,
    /// The file the requirement was read from.
    pub source: PathBuf,
}

impl PinnedRequirement {
    /// Where the requirement was written.
    pub fn location(&self) -> Location {
        Location {
            path: self.source.clone(),
            line: self.line,
        }
    }

    /// The marker in PEP 508 canonical form, `None` when it always applies.
    pub fn marker_string(&self) -> Option<String> {
        let mut text = self.marker.as_ref().and_then(MarkerTree::try_to_string)?;
        // pep508_rs's display is not always a fixed point: it may normalize again what it wrote
        // (`python_version < '0'` reads back as `python_full_version < '0'`). Settle on the form
        // that reads back as itself, so that a written file reads back to the same markers and
        // the same inputs hash (found by the requirements fuzz target).
        for _ in 0..4 {
            let again = text
                .parse::<MarkerTree>()
                .ok()
                .and_then(|m| m.try_to_string());
            match again {
                Some(again) if again != text => text = again,
                _ => break,
            }
        }
        Some(text)
    }
}

/// A parsed requirements file, with its includes followed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// The requirements in file order (includes expanded where they appear), duplicates merged.
    pub entries: Vec<PinnedRequirement>,
    /// `--index-url`, the last one given.
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order, without duplicates.
    pub extra_index_urls: Vec<String>,
    /// `--find-links`: URLs as written, local paths made relative to the including file's
    /// directory, in order, without duplicates.
    pub find_links: Vec<String>,
    /// `--no-index` was given.
    pub no_index: bool,
    /// Hash-checking mode: `--require-hashes` was given or some requirement has a hash, so every
    /// requirement has at least one.
    pub require_hashes: bool,
}

/// Why a requirements file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    /// The file could not be read.
    #[error("Failed to read requirements file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a valid requirement.
    #[error("Invalid requirement `{text}` at `{at}`: {reason}")]
    Invalid {
        /// Where.
        at: Location,
        /// The line.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A requirement that allows more than one version.
    #[error(
        "Requirement `{text}` at `{at}` is not pinned to one version: resolution is not supported \
         yet, pin it exactly with `==` (e.g. `{name}==1.2.3`)"
    )]
    NotPinned {
        /// Where.
        at: Location,
        /// The requirement as written.
        text: String,
        /// The package name.
        name: String,
    },
    /// `-e` / `--editable`.
    #[error(
        "Editable requirement `{text}` at `{at}` is not supported: pin a released version with \
         `name==version` instead"
    )]
    Editable {
        /// Where.
        at: Location,
        /// The line.
        text: String,
    },
    /// `name @ URL`, a path or an archive URL.
    #[error(
        "Direct reference `{text}` at `{at}` is not supported yet (`pip freeze` writes these for \
         local, editable and VCS installs): pin a version from an index with `name==version`"
    )]
    DirectReference {
        /// Where.
        at: Location,
        /// The line.
        text: String,
    },
    /// An option this tool does not honour.
    #[error("Unsupported option `{option}` at `{at}`: {hint}")]
    UnsupportedOption {
        /// Where.
        at: Location,
        /// The option.
        option: String,
        /// Why, and what to do instead.
        hint: &'static str,
    },
    /// An option given without its value.
    #[error("Option `{option}` at `{at}` needs a value")]
    MissingValue {
        /// Where.
        at: Location,
        /// The option.
        option: String,
    },
    /// A malformed `--hash`.
    #[error("Invalid hash `{hash}` at `{at}`: {reason}")]
    InvalidHash {
        /// Where.
        at: Location,
        /// The value given.
        hash: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `-r URL`.
    #[error(
        "Cannot include `{target}` at `{at}`: only local files can be included, download it first"
    )]
    RemoteInclude {
        /// Where.
        at: Location,
        /// The URL.
        target: String,
    },
    /// The same package pinned to two versions that can apply together.
    #[error(transparent)]
    Conflict(Box<PinConflict>),
    /// Hash-checking mode with a requirement that has no hash.
    #[error(
        "Requirement `{name}` at `{at}` has no `--hash`: in hash-checking mode (`--require-hashes`, \
         or any requirement with a hash) every requirement needs one"
    )]
    MissingHashes {
        /// Where.
        at: Location,
        /// The package name.
        name: String,
    },
}

/// Two pins of one package to different versions that can apply together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "Conflicting pins for `{name}`: `{first_version}` at `{first}` and `{second_version}` at \
     `{second}`"
)]
pub struct PinConflict {
    /// The normalized name.
    pub name: String,
    /// The first pin's location.
    pub first: Location,
    /// The first pin.
    pub first_version: String,
    /// The second pin's location.
    pub second: Location,
    /// The second pin.
    pub second_version: String,
}

impl Requirements {
    /// Reads `path` and every file it includes.
    pub fn from_file(path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        parser.include(path, None)?;
        parser.finish()
    }

    /// Parses `content` as if read from `path` (used for messages and to resolve relative
    /// includes, which are read from disk).
    pub fn parse_str(content: &str, path: &Path) -> Result<Self, RequirementsError> {
        let mut parser = Parser::default();
        if let Ok(canonical) = fs_err::canonicalize(path) {
            parser.visited.insert(canonical);
        }
        parser.parse_content(content, path)?;
        parser.finish()
    }

    /// A blake3 digest of what decides the outcome of installing these requirements: the pins
    /// (normalized name, version, extras, marker, hashes) and the index URLs. Independent of
    /// line order, comments, formatting, include structure and find-links locations (local
    /// paths that differ between checkouts but cannot change a pinned, hashed result).
    pub fn inputs_hash(&self) -> [u8; 32] {
        fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let mut h = blake3::Hasher::new();
        field(&mut h, b"dx-py requirements inputs v1");
        field(
            &mut h,
            self.index_url.as_deref().unwrap_or_default().as_bytes(),
        );
        let mut extra: Vec<&str> = self.extra_index_urls.iter().map(String::as_str).collect();
        extra.sort_unstable();
        extra.dedup();
        h.update(&(extra.len() as u64).to_le_bytes());
        for url in extra {
            field(&mut h, url.as_bytes());
        }
        h.update(&[u8::from(self.no_index), u8::from(self.require_hashes)]);
        let mut entries: Vec<(&str, &str, String, &PinnedRequirement)> = self
            .entries
            .iter()
            .map(|e| {
                (
                    e.normalized.as_str(),
                    e.version.as_str(),
                    e.marker_string().unwrap_or_default(),
                    e,
                )
            })
            .collect();
        entries.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        h.update(&(entries.len() as u64).to_le_bytes());
        for (name, version, marker, e) in entries {
            field(&mut h, name.as_bytes());
            field(&mut h, version.as_bytes());
            field(&mut h, marker.as_bytes());
            h.update(&(e.extras.len() as u64).to_le_bytes());
            for x in &e.extras {
                field(&mut h, x.as_bytes());
            }
            h.update(&(e.hashes.len() as u64).to_le_bytes());
            for x in &e.hashes {
                field(&mut h, x.as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    /// Writes these requirements as a requirements file that parses back to the same entries
    /// (options first, then one requirement per line, hashes on continuation lines).
    ///
    /// Option values are written as `--option=value`, so that one starting with `#` is not read
    /// as a comment. One ending in `\` (possible only where another option followed it on its
    /// line) cannot be written at the end of a line, where it would continue the line.
    pub fn to_requirements_txt(&self) -> String {
        let mut out = String::new();
        if let Some(url) = &self.index_url {
            out.push_str(&format!("--index-url={url}\n"));
        }
        for url in &self.extra_index_urls {
            out.push_str(&format!("--extra-index-url={url}\n"));
        }
        for dir in &self.find_links {
            out.push_str(&format!("--find-links={dir}\n"));
        }
        if self.no_index {
            out.push_str("--no-index\n");
        }
        if self.require_hashes {
            out.push_str("--require-hashes\n");
        }
        for e in &self.entries {
            out.push_str(&e.name);
            if !e.extras.is_empty() {
                out.push_str(&format!("[{}]", e.extras.join(",")));
            }
            out.push_str("==");
            out.push_str(&e.version);
            if let Some(marker) = e.marker_string() {
                out.push_str(" ; ");
                out.push_str(&marker);
            }
            for hash in &e.hashes {
                out.push_str(" \\\n    --hash=sha256:");
                out.push_str(hash);
            }
            out.push('\n');
        }
        out
    }
}

/// A `\`-joined, comment-free line and where it started.
struct LogicalLine {
    line: usize,
    text: String,
}

/// Joins continuation lines and strips comments (`#` at the start or after whitespace).
fn logical_lines(content: &str) -> Vec<LogicalLine> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut out = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (i, raw) in content.lines().enumerate() {
        let stripped = strip_comment(raw).trim_end();
        let (piece, continues) = match stripped.strip_suffix('\\') {
            Some(rest) => (rest, true),
            None => (stripped, false),
        };
        let logical = current.get_or_insert_with(|| LogicalLine {
            line: i + 1,
            text: String::new(),
        });
        if !logical.text.is_empty() {
            logical.text.push(' ');
        }
        logical.text.push_str(piece.trim());
        if !continues
            && let Some(done) = current.take()
            && !done.text.trim().is_empty()
        {
            out.push(done);
        }
    }
    if let Some(done) = current.take()
        && !done.text.trim().is_empty()
    {
        out.push(done);
    }
    out
}

fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Expands `${NAME}` (uppercase letters, digits, `_`) from the environment, leaving unknown
/// variables as written, like pip.
fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}');
        let expanded = end.and_then(|end| {
            let name = &after[..end];
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if valid {
                std::env::var(name).ok().map(|v| (v, end))
            } else {
                None
            }
        });
        match expanded {
            Some((value, end)) => {
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Default)]
struct Parser {
    visited: HashSet<PathBuf>,
    out: Requirements,
    require_hashes_explicit: bool,
}

/// Options of requirement lines that are accepted and have no effect here.
const IGNORED_FLAGS: &[&str] = &["--pre", "--prefer-binary"];
/// Options with a value that are accepted and have no effect here.
const IGNORED_WITH_VALUE: &[&str] = &["--only-binary", "--trusted-host"];

impl Parser {
    fn include(&mut self, path: &Path, at: Option<&Location>) -> Result<(), RequirementsError> {
        let read_err = |source| RequirementsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let canonical = fs_err::canonicalize(path).map_err(read_err)?;
        if !self.visited.insert(canonical) {
            tracing::debug!(
                "Skipping `{}`{}: already read",
                path.display(),
                at.map(|a| format!(" (included at `{a}`)"))
                    .unwrap_or_default()
            );
            return Ok(());
        }
        let content = fs_err::read_to_string(path).map_err(read_err)?;
        self.parse_content(&content, path)
    }

    fn parse_content(&mut self, content: &str, path: &Path) -> Result<(), RequirementsError> {
        for logical in logical_lines(content) {
            let at = Location {
                path: path.to_path_buf(),
                line: logical.line,
            };
            let text = expand_env(logical.text.trim());
            self.parse_line(&text, at)?;
        }
        Ok(())
    }

    fn parse_line(&mut self, text: &str, at: Location) -> Result<(), RequirementsError> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let split = tokens
            .iter()
            .position(|t| t.starts_with('-'))
            .unwrap_or(tokens.len());
        let (args, options) = tokens.split_at(split);
        if args.is_empty() {
            return self.parse_global_options(options, text, &at);
        }
        let requirement = args.join(" ");
        let hashes = parse_requirement_options(options, &at)?;
        let entry = parse_requirement(&requirement, hashes, &at)?;
        self.add(entry)
    }

    fn parse_global_options(
        &mut self,
        options: &[&str],
        text: &str,
        at: &Location,
    ) -> Result<(), RequirementsError> {
        let mut i = 0;
        while let Some(&token) = options.get(i) {
            i += 1;
            let (option, inline) = split_option(token);
            let value = |i: &mut usize| -> Result<String, RequirementsError> {
                if let Some(v) = inline {
                    return Ok(v.to_string());
                }
                let v = options
                    .get(*i)
                    .ok_or_else(|| RequirementsError::MissingValue {
                        at: at.clone(),
                        option: option.to_string(),
                    })?;
                *i += 1;
                Ok((*v).to_string())
            };
            match option {
                "-r" | "--requirement" => {
                    let target = value(&mut i)?;
                    if target.contains("://") {
                        return Err(RequirementsError::RemoteInclude {
                            at: at.clone(),
                            target,
                        });
                    }
                    let base = at.path.parent().unwrap_or(Path::new(""));
                    let included = base.join(&target);
                    self.include(&included, Some(at))?;
                }
                "-i" | "--index-url" => self.out.index_url = Some(value(&mut i)?),
                "--extra-index-url" => push_unique(&mut self.out.extra_index_urls, value(&mut i)?),
                "-f" | "--find-links" => {
                    let target = value(&mut i)?;
                    let resolved = if target.contains("://") || Path::new(&target).is_absolute() {
                        target
                    } else {
                        let base = at.path.parent().unwrap_or(Path::new(""));
                        base.join(&target).to_string_lossy().into_owned()
                    };
                    push_unique(&mut self.out.find_links, resolved);
                }
                "--no-index" => self.out.no_index = true,
                "--require-hashes" => self.require_hashes_explicit = true,
                "-e" | "--editable" => {
                    return Err(RequirementsError::Editable {
                        at: at.clone(),
                        text: text.to_string(),
                    });
                }
                "-c" | "--constraint" => {
                    return Err(RequirementsError::UnsupportedOption {
                        at: at.clone(),
                        option: option.to_string(),
                        hint: "constraints files are not supported yet, pin the packages in the \
                               requirements file instead",
                    });
                }
                "--no-binary" => {
                    return Err(RequirementsError::UnsupportedOption {
                        at: at.clone(),
                        option: option.to_string(),
                        hint: "building from source is not supported, only wheels are installed",
                    });
                }
                "--hash" => {
                    return Err(RequirementsError::Invalid {
                        at: at.clone(),
                        text: text.to_string(),
                        reason: "`--hash` must follow a requirement on the same (or a `\\`-continued) line"
                            .to_string(),
                    });
                }
                o if IGNORED_FLAGS.contains(&o) => {
                    tracing::debug!("Ignoring `{o}` at `{at}`");
                }
                o if IGNORED_WITH_VALUE.contains(&o) => {
                    let _ = value(&mut i)?;
                    tracing::debug!("Ignoring `{o}` at `{at}`");
                }
                _ => {
                    return Err(RequirementsError::UnsupportedOption {
                        at: at.clone(),
                        option: option.to_string(),
                        hint: "remove it; supported options are `-r`, `-i`/`--index-url`, \
                               `--extra-index-url`, `-f`/`--find-links`, `--no-index`, \
                               `--require-hashes` and `--hash`",
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds an entry, merging it with an earlier pin of the same package under the same version.
    fn add(&mut self, entry: PinnedRequirement) -> Result<(), RequirementsError> {
        let same =
            self.out.entries.iter_mut().find(|e| {
                e.normalized == entry.normalized && e.pep440_version == entry.pep440_version
            });
        if let Some(existing) = same {
            for x in entry.extras {
                push_unique(&mut existing.extras, x);
            }
            existing.extras.sort();
            for x in entry.hashes {
                push_unique(&mut existing.hashes, x);
            }
            existing.hashes.sort();
            existing.marker = match (existing.marker.take(), entry.marker) {
                (Some(mut a), Some(b)) => {
                    a.or(b);
                    (!a.is_true()).then_some(a)
                }
                _ => None,
            };
            return Ok(());
        }
        self.out.entries.push(entry);
        Ok(())
    }

    fn finish(mut self) -> Result<Requirements, RequirementsError> {
        // Two versions of one package may only appear under markers that never hold together.
        let entries = &self.out.entries;
        for (i, a) in entries.iter().enumerate() {
            for b in entries.iter().skip(i + 1) {
                if a.normalized != b.normalized {
                    continue;
                }
                let disjoint = match (&a.marker, &b.marker) {
                    (Some(ma), Some(mb)) => ma.is_disjoint(mb),
                    _ => false,
                };
                if !disjoint {
                    return Err(RequirementsError::Conflict(Box::new(PinConflict {
                        name: a.normalized.clone(),
                        first: a.location(),
                        first_version: a.version.clone(),
                        second: b.location(),
                        second_version: b.version.clone(),
                    })));
                }
            }
        }
        let any_hash = entries.iter().any(|e| !e.hashes.is_empty());
        self.out.require_hashes = self.require_hashes_explicit || any_hash;
        if self.out.require_hashes
            && let Some(e) = entries.iter().find(|e| e.hashes.is_empty())
        {
            return Err(RequirementsError::MissingHashes {
                at: e.location(),
                name: e.name.clone(),
            });
        }
        Ok(self.out)
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// `--opt=value` -> (`--opt`, Some(value)); `-rfile` -> (`-r`, Some(file)).
fn split_option(token: &str) -> (&str, Option<&str>) {
    if token.starts_with("--") {
        match token.split_once('=') {
            Some((o, v)) => (o, Some(v)),
            None => (token, None),
        }
    } else if token.len() > 2 && token.is_char_boundary(2) {
        let (o, v) = token.split_at(2);
        (o, Some(v.strip_prefix('=').unwrap_or(v)))
    } else {
        (token, None)
    }
}

/// The per-requirement options: only `--hash`.
fn parse_requirement_options(
    options: &[&str],
    at: &Location,
) -> Result<Vec<String>, RequirementsError> {
    let mut hashes = Vec::new();
    let mut i = 0;
    while let Some(&token) = options.get(i) {
        i += 1;
        let (option, inline) = split_option(token);
        if option != "--hash" {
            return Err(RequirementsError::UnsupportedOption {
                at: at.clone(),
                option: option.to_string(),
                hint: "only `--hash` may follow a requirement",
            });
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = options
                    .get(i)
                    .ok_or_else(|| RequirementsError::MissingValue {
                        at: at.clone(),
                        option: option.to_string(),
                    })?;
                i += 1;
                v
            }
        };
        let bad = |reason| RequirementsError::InvalidHash {
            at: at.clone(),
            hash: value.to_string(),
            reason,
        };
        let (algorithm, hex) = value
            .split_once(':')
            .ok_or_else(|| bad("expected `sha256:<64 hex digits>`"))?;
        if algorithm != "sha256" {
            return Err(bad("only `sha256` hashes are supported"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected 64 hex digits after `sha256:`"));
        }
        push_unique(&mut hashes, hex.to_ascii_lowercase());
    }
    hashes.sort();
    Ok(hashes)
}

/// Whether the text is a path or URL rather than a PEP 508 requirement.
fn looks_like_direct_reference(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or(text);
    text.contains('@')
        || first.contains("://")
        || first.starts_with('.')
        || first.starts_with('/')
        || first.starts_with('~')
        || [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
            .iter()
            .any(|ext| first.ends_with(ext))
}

fn parse_requirement(
    text: &str,
    hashes: Vec<String>,
    at: &Location,
) -> Result<PinnedRequirement, RequirementsError> {
    match check_names(text) {
        Ok(true) => {}
        Ok(false) => {
            return Err(RequirementsError::DirectReference {
                at: at.clone(),
                text: text.to_string(),
            });
        }
        Err(reason) => {
            return Err(RequirementsError::Invalid {
                at: at.clone(),
                text: text.to_string(),
                reason,
            });
        }
    }
    let requirement: Requirement = match Requirement::from_str(text) {
        Ok(r) => r,
        Err(_) if looks_like_direct_reference(text) => {
            return Err(RequirementsError::DirectReference {
                at: at.clone(),
                text: text.to_string(),
            });
        }
        Err(err) => {
            return Err(RequirementsError::Invalid {
                at: at.clone(),
                text: text.to_string(),
                // The message only: the underlined form is meant for a terminal.
                reason: err.message.to_string(),
            });
        }
    };
    let name_as_written = written_name(text).unwrap_or_else(|| requirement.name.to_string());
    let not_pinned = || RequirementsError::NotPinned {
        at: at.clone(),
        text: text.to_string(),
        name: name_as_written.clone(),
    };
    let version = match &requirement.version_or_url {
        None => return Err(not_pinned()),
        Some(VersionOrUrl::Url(_)) => {
            return Err(RequirementsError::DirectReference {
                at: at.clone(),
                text: text.to_string(),
            });
        }
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => match specifiers.as_ref() {
            [only] if matches!(only.operator(), Operator::Equal | Operator::ExactEqual) => {
                only.version().clone()
            }
            _ => return Err(not_pinned()),
        },
    };
    let mut extras: Vec<String> = requirement.extras.iter().map(ToString::to_string).collect();
    extras.sort();
    extras.dedup();
    let marker = (!requirement.marker.is_true()).then_some(requirement.marker);
    Ok(PinnedRequirement {
        normalized: normalize_name(&name_as_written),
        name: name_as_written,
        version: version.to_string(),
        pep440_version: version,
        extras,
        marker,
        hashes,
        line: at.line,
        source: at.path.clone(),
    })
}

/// PEP 508 identifier: ASCII letters and digits, with `-`, `_`, `.` inside.
fn is_identifier(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a requirement before `pep508_rs` sees it. Returns `Ok(false)` when the text does not
/// start with a valid name, or is not ASCII, and looks like a path or URL instead.
fn check_names(text: &str) -> Result<bool, String> {
    let name = written_name(text).unwrap_or_default();
    if (!is_identifier(&name) || !text.is_ascii()) && looks_like_direct_reference(text) {
        return Ok(false);
    }
    pep508_guard(text)?;
    Ok(true)
}

/// Refuses what `pep508_rs` 0.9 panics on instead of failing: a name or extra that ends in `-`,
/// `_` or `.` when another character follows (`foo_~`, `foo[a_]`), and a non-ASCII character
/// where a marker's `and`/`or` may follow (`foo; python_version > "3" aх`: it slices a count of
/// characters as a count of bytes). All non-ASCII text is refused: names, versions and operators
/// are ASCII, and so are the marker values of real requirements. Call it on any untrusted
/// requirement (requirements files, wheels' `Requires-Dist`) before parsing it.
pub(crate) fn pep508_guard(text: &str) -> Result<(), String> {
    let name = written_name(text).unwrap_or_default();
    if !is_identifier(&name) {
        return Err(format!(
            "`{name}` is not a valid package name: expected ASCII letters, digits, `-`, `_` and \
             `.`, starting and ending with a letter or digit"
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "non-ASCII character `{c}`: names, versions and markers must be ASCII"
        ));
    }
    let rest = text.get(name.len()..).unwrap_or_default().trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let inside = extras.split(']').next().unwrap_or_default();
        for piece in inside.split(',') {
            let piece = piece.trim_start();
            let end = piece
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(piece.len());
            let extra = piece.get(..end).unwrap_or_default();
            if !extra.is_empty() && !is_identifier(extra) {
                return Err(format!("`{extra}` is not a valid extra name"));
            }
        }
    }
    Ok(())
}

/// The leading name of a requirement exactly as written.
fn written_name(text: &str) -> Option<String> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len());
    let name = text.get(..end)?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123";

    fn parse(text: &str) -> Result<Requirements, RequirementsError> {
        Requirements::parse_str(text, Path::new("/nonexistent/requirements.txt"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn plain_pins_extras_markers_and_comments() {
        let r = parse(
            "\u{feff}# a comment\n\
             \n\
             Foo_Bar==1.0.0   # trailing comment\n\
             requests[socks,Security]==2.31.0 ; python_version < \"3.12\"\n\
             six===1.16.0\n\
             zope.interface==6.0+local.1\n",
        )
        .unwrap();
        assert_eq!(r.entries.len(), 4);
        let e = &r.entries[0];
        assert_eq!(
            (e.name.as_str(), e.normalized.as_str(), e.version.as_str()),
            ("Foo_Bar", "foo-bar", "1.0.0")
        );
        assert_eq!(e.line, 3);
        assert_eq!(e.marker, None);
        let e = &r.entries[1];
        assert_eq!(e.extras, ["security", "socks"]);
        assert_eq!(e.marker_string().unwrap(), "python_full_version < '3.12'");
        assert_eq!(e.line, 4);
        assert_eq!(r.entries[2].version, "1.16.0");
        assert_eq!(r.entries[3].normalized, "zope-interface");
        assert_eq!(r.entries[3].version, "6.0+local.1");
        assert!(!r.require_hashes);
    }

    #[test]
    fn hashes_on_continuation_lines() {
        let text = format!(
            "foo==1.0 \\\n    --hash=sha256:{H1} \\\n    --hash sha256:{} # why\nbar==2.0 --hash=sha256:{H1}\n",
            H2.to_uppercase()
        );
        let r = parse(&text).unwrap();
        assert_eq!(r.entries[0].hashes, [H1, H2]);
        assert_eq!(r.entries[0].line, 1);
        assert_eq!(r.entries[1].line, 4);
        assert!(r.require_hashes);
    }

    #[test]
    fn global_options() {
        let r = parse(
            "--index-url https://index.invalid/simple\n\
             -i=https://second.invalid/simple\n\
             --extra-index-url=https://extra.invalid/simple\n\
             --extra-index-url https://extra.invalid/simple\n\
             -f wheels\n\
             --find-links /abs/dir\n\
             --find-links=file:///x/y\n\
             --no-index\n\
             --pre\n\
             --only-binary :all:\n\
             foo==1\n",
        )
        .unwrap();
        assert_eq!(
            r.index_url.as_deref(),
            Some("https://second.invalid/simple")
        );
        assert_eq!(r.extra_index_urls, ["https://extra.invalid/simple"]);
        assert_eq!(
            r.find_links,
            ["/nonexistent/wheels", "/abs/dir", "file:///x/y"]
        );
        assert!(r.no_index);
    }

    #[test]
    fn env_vars_expand() {
        // Cargo sets this variable for test runs.
        let r = parse("-i https://u:${CARGO_PKG_NAME}@h.invalid/${lower}\nfoo==1\n").unwrap();
        assert_eq!(
            r.index_url.as_deref(),
            Some("https://u:dx-py-core@h.invalid/${lower}")
        );
        assert_eq!(expand_env("${"), "${");
        assert_eq!(expand_env("a${NOPE_NOT_SET_123}b"), "a${NOPE_NOT_SET_123}b");
    }

    #[test]
    fn refuses_unpinned() {
        for (text, line) in [
            ("foo>=1.0", 1),
            ("\nfoo", 2),
            ("foo==1.*", 1),
            ("foo==1.0,<2", 1),
            ("foo~=1.0", 1),
            ("foo!=1.0", 1),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                matches!(&e, RequirementsError::NotPinned { at, .. } if at.line == line),
                "{text}: {e}"
            );
            let msg = e.to_string();
            assert!(msg.contains("resolution is not supported yet"), "{msg}");
            assert!(msg.contains("foo==1.2.3"), "{msg}");
        }
        assert_eq!(
            err("foo>=1.0"),
            "Requirement `foo>=1.0` at `/nonexistent/requirements.txt:1` is not pinned to one \
             version: resolution is not supported yet, pin it exactly with `==` (e.g. \
             `foo==1.2.3`)"
        );
    }

    #[test]
    fn refuses_pip_freeze_local_installs() {
        let freeze = "# Editable install with no version control (foo==0.1)\n\
                      -e /home/u/foo\n";
        let e = parse(freeze).unwrap_err();
        assert!(
            matches!(&e, RequirementsError::Editable { at, .. } if at.line == 2),
            "{e}"
        );
        assert!(e.to_string().contains("`-e /home/u/foo`"));
        for text in ["-e git+https://host.invalid/x/y@abc#egg=y", "--editable=."] {
            assert!(
                matches!(parse(text), Err(RequirementsError::Editable { .. })),
                "{text}"
            );
        }
        for text in [
            "foo @ file:///home/u/foo-1.0-py3-none-any.whl",
            "foo@ git+https://host.invalid/x/y@abc",
            "./foo-1.0-py3-none-any.whl",
            "https://host.invalid/foo-1.0.tar.gz",
        ] {
            let e = parse(&format!("bar==1\n{text}\n")).unwrap_err();
            assert!(
                matches!(&e, RequirementsError::DirectReference { at, .. } if at.line == 2),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn refuses_bad_options_and_hashes() {
        let cases = [
            ("-c constraints.txt", "Unsupported option `-c`"),
            ("--no-binary :all:", "building from source is not supported"),
            ("--frobnicate", "Unsupported option `--frobnicate`"),
            ("foo==1 --install-option=x", "only `--hash` may follow"),
            (
                "-i",
                "Option `-i` at `/nonexistent/requirements.txt:1` needs a value",
            ),
            ("foo==1 --hash", "Option `--hash`"),
            (
                "foo==1 --hash=md5:abc",
                "only `sha256` hashes are supported",
            ),
            ("foo==1 --hash=sha256:abc", "expected 64 hex digits"),
            ("foo==1 --hash=abc", "expected `sha256:<64 hex digits>`"),
            ("--hash=sha256:00", "must follow a requirement"),
            (
                "-r https://host.invalid/r.txt",
                "only local files can be included",
            ),
            (
                "foo==1 ; nonsense marker",
                "Invalid requirement `foo==1 ; nonsense marker`",
            ),
            ("foo[=1", "Invalid requirement"),
            ("0_~", "`0_` is not a valid package name"),
            ("foo[a_]==1", "`a_` is not a valid extra name"),
            ("foo[ok, x- ]==1", "`x-` is not a valid extra name"),
            ("foo[a_", "`a_` is not a valid extra name"),
            ("[x]==1", "`` is not a valid package name"),
            (
                "-r missing.txt",
                "Failed to read requirements file `/nonexistent/missing.txt`",
            ),
        ];
        for (text, want) in cases {
            let msg = err(text);
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn duplicates_merge_or_conflict() {
        let r = parse(&format!(
            "foo==1.0 --hash=sha256:{H1}\nFOO[x]==1.0.0 --hash=sha256:{H2}\n"
        ))
        .unwrap();
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries[0].hashes, [H1, H2]);
        assert_eq!(r.entries[0].extras, ["x"]);
        assert_eq!(
            err("foo==1.0\nbar==2\nfoo==2.0\n"),
            "Conflicting pins for `foo`: `1.0` at `/nonexistent/requirements.txt:1` and `2.0` at \
             `/nonexistent/requirements.txt:3`"
        );
        // Different versions under markers that never hold together are fine.
        let r = parse("foo==1.0 ; python_version < '3.9'\nfoo==2.0 ; python_version >= '3.9'\n")
            .unwrap();
        assert_eq!(r.entries.len(), 2);
        assert!(matches!(
            parse("foo==1.0 ; python_version < '3.10'\nfoo==2.0 ; python_version >= '3.9'\n"),
            Err(RequirementsError::Conflict(_))
        ));
        // Same version under two markers: one entry under either marker.
        let r = parse("foo==1.0 ; sys_platform == 'linux'\nfoo==1.0 ; sys_platform == 'win32'\n")
            .unwrap();
        assert_eq!(r.entries.len(), 1);
        let m = r.entries[0].marker_string().unwrap();
        assert!(m.contains("linux") && m.contains("win32"), "{m}");
        let r = parse("foo==1.0 ; sys_platform == 'linux'\nfoo==1.0\n").unwrap();
        assert_eq!(r.entries[0].marker, None);
    }

    #[test]
    fn hash_checking_mode_needs_every_hash() {
        let msg = err(&format!("foo==1 --hash=sha256:{H1}\nbar==2\n"));
        assert!(
            msg.contains("`bar` at `/nonexistent/requirements.txt:2` has no `--hash`"),
            "{msg}"
        );
        assert!(matches!(
            parse("--require-hashes\nfoo==1\n"),
            Err(RequirementsError::MissingHashes { .. })
        ));
        let r = parse(&format!("--require-hashes\nfoo==1 --hash=sha256:{H1}\n")).unwrap();
        assert!(r.require_hashes);
    }

    #[test]
    fn includes_are_relative_and_cycle_safe() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs_err::create_dir(&sub).unwrap();
        fs_err::write(
            dir.path().join("top.txt"),
            "-r sub/a.txt\ntop==1\n--find-links wheels\n",
        )
        .unwrap();
        // a includes b (relative to sub/), b includes a and top again: cycles end quietly.
        fs_err::write(sub.join("a.txt"), "a==1\n-r b.txt\n").unwrap();
        fs_err::write(
            sub.join("b.txt"),
            "-r a.txt\n-r ../top.txt\nb==2 \\\n  ; os_name == 'nt'\n",
        )
        .unwrap();
        let r = Requirements::from_file(&dir.path().join("top.txt")).unwrap();
        let names: Vec<_> = r.entries.iter().map(|e| e.normalized.as_str()).collect();
        assert_eq!(names, ["a", "b", "top"]);
        assert_eq!(r.entries[1].source, sub.join("b.txt"));
        assert_eq!(r.entries[1].line, 3);
        assert_eq!(
            r.find_links,
            [dir.path().join("wheels").to_string_lossy().into_owned()]
        );
        // Errors in an included file name that file.
        fs_err::write(sub.join("b.txt"), "\nb>=2\n").unwrap();
        let e = Requirements::from_file(&dir.path().join("top.txt")).unwrap_err();
        assert!(
            matches!(&e, RequirementsError::NotPinned { at, .. } if at.path == sub.join("b.txt") && at.line == 2),
            "{e}"
        );
    }

    #[test]
    fn version_normal_form() {
        let r = parse("foo==1.0-Alpha1\nbar==V2.0.POST1\n").unwrap();
        assert_eq!(r.entries[0].version, "1.0a1");
        assert_eq!(r.entries[1].version, "2.0.post1");
    }

    #[test]
    fn inputs_hash_examples() {
        let a = parse("foo==1.0\nbar==2.0\n").unwrap().inputs_hash();
        let b = parse("# hi\nbar==2.0   # x\n\nfoo==1.0\n")
            .unwrap()
            .inputs_hash();
        assert_eq!(a, b);
        assert_ne!(a, parse("foo==1.0\nbar==2.1\n").unwrap().inputs_hash());
        assert_ne!(a, parse("foo==1.0\nbar[x]==2.0\n").unwrap().inputs_hash());
        assert_ne!(
            a,
            parse("foo==1.0\nbar==2.0 ; os_name == 'nt'\n")
                .unwrap()
                .inputs_hash()
        );
        assert_ne!(
            a,
            parse("-i https://h.invalid/simple\nfoo==1.0\nbar==2.0\n")
                .unwrap()
                .inputs_hash()
        );
    }

    // --- properties ---------------------------------------------------------------------------

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9]{0,6}([-_.][A-Za-z0-9]{1,4})?"
    }

    fn version() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(0u32..30, 1..4),
            prop::option::of(prop_oneof![
                Just("a1"),
                Just("rc2"),
                Just(".post3"),
                Just(".dev1")
            ]),
        )
            .prop_map(|(parts, suffix)| {
                let mut v = parts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(".");
                v.push_str(suffix.unwrap_or_default());
                v
            })
    }

    fn marker() -> impl Strategy<Value = Option<&'static str>> {
        prop::option::of(prop_oneof![
            Just("python_version < '3.12'"),
            Just("sys_platform == 'linux'"),
            Just("os_name == 'nt' and platform_machine == 'x86_64'"),
        ])
    }

    #[derive(Clone, Debug)]
    struct Pin {
        name: String,
        version: String,
        extras: Vec<String>,
        marker: Option<&'static str>,
        hashes: Vec<String>,
    }

    fn pin(with_hashes: bool) -> impl Strategy<Value = Pin> {
        let hashes = if with_hashes { 1..3usize } else { 0..1usize };
        (
            name(),
            version(),
            prop::collection::vec("[a-z]{1,5}", 0..3),
            marker(),
            prop::collection::vec("[0-9a-f]{64}", hashes),
        )
            .prop_map(|(name, version, extras, marker, hashes)| Pin {
                name,
                version,
                extras,
                marker,
                hashes,
            })
    }

    fn pins() -> impl Strategy<Value = Vec<Pin>> {
        any::<bool>()
            .prop_flat_map(|h| prop::collection::vec(pin(h), 0..8))
            .prop_map(|mut v| {
                let mut seen = HashSet::new();
                v.retain(|p| seen.insert(normalize_name(&p.name)));
                v
            })
    }

    fn write(pins: &[Pin], comments: bool) -> String {
        let mut out = String::new();
        for p in pins {
            if comments {
                out.push_str("# pinned by hand\n\n");
            }
            out.push_str(&p.name);
            if !p.extras.is_empty() {
                out.push_str(&format!("[{}]", p.extras.join(",")));
            }
            out.push_str(&format!("=={}", p.version));
            if let Some(m) = p.marker {
                out.push_str(&format!("; {m}"));
            }
            for h in &p.hashes {
                out.push_str(&format!(" \\\n  --hash=sha256:{h}"));
            }
            if comments {
                out.push_str("  # why");
            }
            out.push('\n');
        }
        out
    }

    /// Found by the `requirements` fuzz target: pep508_rs 0.9 panics on these (a character
    /// count used as a byte length); they are refused first.
    #[test]
    fn non_ascii_requirements_are_refused_before_pep508_sees_them() {
        for text in [
            "foo==1.0 ; python_version >= \"3.8\" a\u{445}",
            "foo==1.0 ; (python_version >= \"3.8\")\u{e9}",
            "foo==1.0 ; python_version >= \"3.8\" and\"\u{e9}\" == sys_platform",
            "foo==1.0 ; sys_platform == \"\u{e9}\"",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains("non-ASCII character"), "{text}: {e}");
        }
        // A path or URL is still named as such.
        assert!(matches!(
            parse("./wheels/\u{e9}-1.0-py3-none-any.whl").unwrap_err(),
            RequirementsError::DirectReference { .. }
        ));
    }

    /// Found by the `requirements` fuzz target: `--index-url=#x` was written back as
    /// `--index-url #x`, which reads as an option without a value and a comment.
    #[test]
    fn option_values_that_start_like_comments_are_written_back() {
        let r = parse("--index-url=#x\n--extra-index-url=#y\n-f=#z\nfoo==1.0\n").unwrap();
        assert_eq!(r.index_url.as_deref(), Some("#x"));
        let again = parse(&r.to_requirements_txt()).unwrap();
        assert_eq!(again.index_url.as_deref(), Some("#x"));
        assert_eq!(again.extra_index_urls, ["#y"]);
        assert_eq!(again.find_links, r.find_links);
    }

    /// Found by the `requirements` fuzz target: pep508_rs displays `python_version < '0'` in a
    /// form that reads back as another (`python_full_version < '0'`); the written marker is
    /// the settled form, so a written file reads back to the same markers and inputs hash.
    #[test]
    fn markers_are_written_in_a_form_that_reads_back_as_itself() {
        let r = parse("foo==1.0 ; python_version < '0'\n").unwrap();
        let again = parse(&r.to_requirements_txt()).unwrap();
        assert_eq!(
            again.entries[0].marker_string(),
            r.entries[0].marker_string()
        );
        assert_eq!(again.inputs_hash(), r.inputs_hash());
    }

    proptest! {
        #[test]
        fn written_pins_parse_back(pins in pins()) {
            let r = parse(&write(&pins, false)).unwrap();
            prop_assert_eq!(r.entries.len(), pins.len());
            for (p, e) in pins.iter().zip(&r.entries) {
                prop_assert_eq!(&e.name, &p.name);
                prop_assert_eq!(&e.normalized, &normalize_name(&p.name));
                prop_assert_eq!(&e.pep440_version, &p.version.parse::<Version>().unwrap());
                let mut extras = p.extras.clone();
                extras.sort();
                extras.dedup();
                prop_assert_eq!(&e.extras, &extras);
                prop_assert_eq!(e.marker.is_some(), p.marker.is_some());
                let mut hashes = p.hashes.clone();
                hashes.sort();
                hashes.dedup();
                prop_assert_eq!(&e.hashes, &hashes);
            }
            // And our own writer round-trips exactly.
            let again = parse(&r.to_requirements_txt()).unwrap();
            let strip = |r: &Requirements| -> Vec<PinnedRequirement> {
                r.entries.iter().cloned().map(|mut e| { e.line = 0; e }).collect()
            };
            prop_assert_eq!(strip(&again), strip(&r));
            prop_assert_eq!(again.inputs_hash(), r.inputs_hash());
        }

        #[test]
        fn inputs_hash_ignores_order_and_comments(
            pins in pins(),
            seed in any::<u64>(),
        ) {
            let base = parse(&write(&pins, false)).unwrap().inputs_hash();
            let mut shuffled = pins.clone();
            // A deterministic shuffle driven by the seed.
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(parse(&write(&shuffled, true)).unwrap().inputs_hash(), base);
        }

        #[test]
        fn inputs_hash_sees_every_pin_and_hash(
            pins in pins().prop_filter("non-empty", |p| !p.is_empty()),
            which in any::<prop::sample::Index>(),
            change_hash in any::<bool>(),
        ) {
            let base = parse(&write(&pins, false)).unwrap().inputs_hash();
            let mut changed = pins.clone();
            let p = which.get_mut(&mut changed);
            if change_hash && !p.hashes.is_empty() {
                let h = &mut p.hashes[0];
                let flipped = if h.starts_with('0') { "1" } else { "0" };
                h.replace_range(0..1, flipped);
            } else {
                p.version.insert(0, '9');
            }
            prop_assert_ne!(parse(&write(&changed, false)).unwrap().inputs_hash(), base);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "(\\PC{0,40}\n?){0,5}") {
            let _ = parse(&text);
        }

        #[test]
        fn arbitrary_requirement_like_text_never_panics(
            text in "[a-zA-Z_.\\-\\[\\],;<>=!~*@ '\"()0-9:/+\u{e9}\u{4e2d}]{0,40}"
        ) {
            let _ = parse(&text);
        }

        #[test]
        fn arbitrary_markers_never_panic(
            marker in "(python_version|os_name|extra|sys_platform|and|or|in|not| |'|\"|<|=|>|!|~|\\(|\\)|3\\.1|[a-z_.0-9*]){0,20}"
        ) {
            let _ = parse(&format!("foo==1 ; {marker}"));
        }
    }
}
