//! Which index and find-links locations to use.
//!
//! No index URL is built in. The index comes from the command line, the requirements file, the
//! environment or the user's existing pip/uv configuration, and only when none of them names
//! one, from the interpreter's own pip: its built-in default, as the installed pip reports it
//! (see [`PipDefaultIndex`]). Each setting is taken from the first place, in this order, that
//! sets it:
//!
//! 1. the command line (`--index-url`, `--extra-index-url`, `--find-links`, `--no-index`);
//! 2. the requirements file's option lines (list settings add to the command line's);
//! 3. `DX_PY_INDEX_URL`, `DX_PY_EXTRA_INDEX_URL`, `DX_PY_FIND_LINKS`;
//! 4. `UV_DEFAULT_INDEX`, `UV_INDEX_URL`, `UV_INDEX`, `UV_EXTRA_INDEX_URL`, `UV_FIND_LINKS`;
//! 5. `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`, `PIP_NO_INDEX`;
//! 6. pip configuration files, `[install]` over `[global]`: `$PIP_CONFIG_FILE`,
//!    `$XDG_CONFIG_HOME/pip/pip.conf` (or `~/.config/pip/pip.conf`), `~/.pip/pip.conf`,
//!    `/etc/pip.conf`, `/etc/xdg/pip/pip.conf` (`PIP_CONFIG_FILE=/dev/null` turns them off);
//! 7. uv configuration files, `[pip]` over the top level: `$UV_CONFIG_FILE` or
//!    `$XDG_CONFIG_HOME/uv/uv.toml` (or `~/.config/uv/uv.toml`), `/etc/xdg/uv/uv.toml`,
//!    `/etc/uv/uv.toml` (`index-url`, `extra-index-url`, `find-links`, `no-index`, and
//!    `[[index]]` tables: the one with `default = true` is the index, the others that are not
//!    `explicit` are extra indexes);
//! 8. for the index alone, the default of the interpreter's pip. Not when `--find-links` is
//!    given on the command line and nothing names an index: that means an install from those
//!    locations alone, as it did before this fallback existed.
//!
//! The CA bundle comes from `SSL_CERT_FILE`, `PIP_CERT`, or `cert` in a pip configuration file.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use url::Url;

use super::redact_url;
use crate::requirements::Requirements;

/// An index URL (always ending in `/`) and where it was configured.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexUrl {
    /// The base URL; project pages are at `{url}{name}/`.
    pub url: Url,
    /// Where it was set, for messages: an option, a variable or a file.
    pub origin: String,
}

/// Hides the password, so that debug logs of the configuration do not leak it.
impl std::fmt::Debug for IndexUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexUrl")
            .field("url", &redact_url(self.url.as_str()))
            .field("origin", &self.origin)
            .finish()
    }
}

/// A `--find-links` location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindLinks {
    /// A local directory of distribution files.
    Dir(PathBuf),
    /// An HTML page linking to distribution files.
    Page(Url),
}

impl std::fmt::Display for FindLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(p) => write!(f, "{}", p.display()),
            Self::Page(u) => f.write_str(&redact_url(u.as_str())),
        }
    }
}

/// Everything the client searches, in order of preference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageSources {
    /// The main index; `None` only with `--no-index`.
    pub index_url: Option<IndexUrl>,
    /// More indexes, searched as well.
    pub extra_index_urls: Vec<IndexUrl>,
    /// Find-links locations, searched before the indexes.
    pub find_links: Vec<FindLinks>,
    /// `--no-index`: only find-links locations are searched.
    pub no_index: bool,
    /// A PEM bundle of CA certificates to trust instead of the built-in roots.
    pub cert: Option<PathBuf>,
    /// The interpreter whose pip supplied the index, when nothing configured one.
    pub index_from_pip: Option<PathBuf>,
}

/// The index an interpreter's own pip uses when nothing is configured: pip's built-in default,
/// read from the installed pip at run time (the interpreter query script asks pip's own model of
/// it), so that dx-py never writes a registry host itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipDefaultIndex {
    /// The index URL pip reported.
    pub url: String,
    /// The interpreter whose pip reported it.
    pub python: PathBuf,
}

impl PackageSources {
    /// Sources with just one index, e.g. one given on the command line.
    pub fn with_index(url: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            index_url: Some(parse_index_url(url, "the caller")?),
            ..Self::default()
        })
    }

    /// Every index URL in search order: the main index, then the extra ones.
    pub fn indexes(&self) -> impl Iterator<Item = &IndexUrl> {
        self.index_url.iter().chain(&self.extra_index_urls)
    }
}

/// Index settings given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceOverrides {
    /// `--index-url`.
    pub index_url: Option<String>,
    /// `--extra-index-url`, repeatable.
    pub extra_index_urls: Vec<String>,
    /// `--find-links`, repeatable.
    pub find_links: Vec<String>,
    /// `--no-index`.
    pub no_index: bool,
}

/// The environment configuration is read from: variables, and the root under which system
/// files (`/etc/pip.conf`) are looked up, so that tests need not touch the real ones.
#[derive(Clone, Debug, Default)]
pub struct ConfigEnv {
    vars: BTreeMap<String, String>,
    system_root: PathBuf,
}

impl ConfigEnv {
    /// This process's environment and the real `/`.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
            system_root: PathBuf::from("/"),
        }
    }

    /// Given variables, with system files under `system_root`.
    pub fn new(
        vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
        system_root: impl Into<PathBuf>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            system_root: system_root.into(),
        }
    }

    /// A variable, if set and not blank.
    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn system_path(&self, absolute: &str) -> PathBuf {
        self.system_root.join(absolute.trim_start_matches('/'))
    }

    fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    fn config_home(&self) -> Option<PathBuf> {
        self.var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".config")))
    }
}

/// Why no usable sources could be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Nothing names an index.
    #[error(
        "No package index is configured{}: pass `--index-url URL`, set `DX_PY_INDEX_URL`, or set \
         `index-url` under `[global]` in pip.conf (`~/.config/pip/pip.conf`); to install only \
         from find-links locations, pass `--no-index`",
        if find_links.is_empty() { String::new() } else { format!(" (find-links: {})", find_links.join(", ")) }
    )]
    NoIndex {
        /// The find-links locations that were configured, if any.
        find_links: Vec<String>,
    },
    /// `--no-index` and nothing else to search.
    #[error(
        "`--no-index` is set ({origin}) but no find-links location is: pass `--find-links DIR` or \
         drop `--no-index`"
    )]
    NothingToSearch {
        /// Where `--no-index` came from.
        origin: String,
    },
    /// An index or find-links URL that cannot be used.
    #[error("Invalid index URL `{value}` (from {origin}): {reason}")]
    InvalidUrl {
        /// The value, with any password hidden.
        value: String,
        /// Where it was set.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A configuration file that could not be read.
    #[error("Failed to read configuration file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file that could not be parsed.
    #[error("Invalid configuration file `{}`: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Settings from one place.
#[derive(Default, Debug)]
struct Layer {
    origin: String,
    index_url: Option<String>,
    extra_index_urls: Vec<String>,
    find_links: Vec<String>,
    no_index: bool,
    cert: Option<String>,
}

impl Layer {
    fn named(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            ..Self::default()
        }
    }
}

/// Works out the sources from the command line, the requirements file (if any) and the
/// environment, as the module documentation describes. `pip_default` is asked only when
/// nothing configures an index (it may start an interpreter).
pub fn discover(
    cli: &SourceOverrides,
    requirements: Option<&Requirements>,
    env: &ConfigEnv,
    pip_default: impl FnOnce() -> Option<PipDefaultIndex>,
) -> Result<PackageSources, ConfigError> {
    let mut layers = Vec::new();
    // The command line and the requirements file act as one layer for list settings.
    let mut explicit = Layer::named(if cli.index_url.is_some() {
        "`--index-url`"
    } else {
        "the command line or requirements file"
    });
    explicit.index_url.clone_from(&cli.index_url);
    explicit.extra_index_urls.clone_from(&cli.extra_index_urls);
    explicit.find_links.clone_from(&cli.find_links);
    explicit.no_index = cli.no_index;
    if let Some(req) = requirements {
        if explicit.index_url.is_none() && req.index_url.is_some() {
            explicit.index_url.clone_from(&req.index_url);
            explicit.origin = "the requirements file's `--index-url`".to_string();
        }
        explicit
            .extra_index_urls
            .extend(req.extra_index_urls.iter().cloned());
        explicit.find_links.extend(req.find_links.iter().cloned());
        explicit.no_index |= req.no_index;
    }
    layers.push(explicit);
    env_layers(env, &mut layers);
    pip_config_layers(env, &mut layers)?;
    uv_config_layers(env, &mut layers)?;
    if let Some(cert) = env.var("SSL_CERT_FILE") {
        let mut l = Layer::named("`SSL_CERT_FILE`");
        l.cert = Some(cert.to_string());
        // Checked before the pip settings: an explicit SSL_CERT_FILE is the most specific.
        layers.insert(1, l);
    }

    let find_links_layer = layers.iter().find(|l| !l.find_links.is_empty());
    let mut find_links = Vec::new();
    if let Some(layer) = find_links_layer {
        for value in &layer.find_links {
            let parsed = parse_find_links(value, &layer.origin, env)?;
            if !find_links.contains(&parsed) {
                find_links.push(parsed);
            }
        }
    }
    let cert = layers
        .iter()
        .find_map(|l| l.cert.as_deref())
        .map(|c| expand_home(c, env));

    let find_links_only = |find_links| PackageSources {
        index_url: None,
        extra_index_urls: Vec::new(),
        find_links,
        no_index: true,
        cert: cert.clone(),
        index_from_pip: None,
    };
    if let Some(layer) = layers.iter().find(|l| l.no_index) {
        if find_links.is_empty() {
            return Err(ConfigError::NothingToSearch {
                origin: layer.origin.clone(),
            });
        }
        return Ok(find_links_only(find_links));
    }

    let (index_url, index_from_pip) = match layers.iter().find(|l| l.index_url.is_some()) {
        Some(layer) => (
            parse_index_url(
                layer.index_url.as_deref().unwrap_or_default(),
                &layer.origin,
            )?,
            None,
        ),
        // `--find-links DIR` alone: an install from that directory, not from the network.
        None if !cli.find_links.is_empty() => return Ok(find_links_only(find_links)),
        None => match pip_default() {
            Some(pip) => {
                let origin = format!("the default index of `{}`'s pip", pip.python.display());
                (parse_index_url(&pip.url, &origin)?, Some(pip.python))
            }
            None => {
                return Err(ConfigError::NoIndex {
                    find_links: find_links.iter().map(ToString::to_string).collect(),
                });
            }
        },
    };
    let mut extra_index_urls: Vec<IndexUrl> = Vec::new();
    if let Some(layer) = layers.iter().find(|l| !l.extra_index_urls.is_empty()) {
        for value in &layer.extra_index_urls {
            let parsed = parse_index_url(value, &layer.origin)?;
            if parsed.url != index_url.url && !extra_index_urls.iter().any(|e| e.url == parsed.url)
            {
                extra_index_urls.push(parsed);
            }
        }
    }
    Ok(PackageSources {
        index_url: Some(index_url),
        extra_index_urls,
        find_links,
        no_index: false,
        cert,
        index_from_pip,
    })
}

fn env_layers(env: &ConfigEnv, layers: &mut Vec<Layer>) {
    let single = |layers: &mut Vec<Layer>, name: &str| {
        if let Some(v) = env.var(name) {
            let mut l = Layer::named(format!("`{name}`"));
            l.index_url = Some(strip_index_name(v).to_string());
            layers.push(l);
        }
    };
    let list = |layers: &mut Vec<Layer>, name: &str, find_links: bool, sep: &[char]| {
        if let Some(v) = env.var(name) {
            let mut l = Layer::named(format!("`{name}`"));
            let items = v
                .split(sep)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| strip_index_name(s).to_string())
                .collect();
            if find_links {
                l.find_links = items;
            } else {
                l.extra_index_urls = items;
            }
            layers.push(l);
        }
    };
    let flag = |layers: &mut Vec<Layer>, name: &str| {
        if env.var(name).is_some_and(is_truthy) {
            let mut l = Layer::named(format!("`{name}`"));
            l.no_index = true;
            layers.push(l);
        }
    };
    const WS: &[char] = &[' ', '\t', '\n'];
    single(layers, "DX_PY_INDEX_URL");
    list(layers, "DX_PY_EXTRA_INDEX_URL", false, WS);
    list(layers, "DX_PY_FIND_LINKS", true, WS);
    single(layers, "UV_DEFAULT_INDEX");
    single(layers, "UV_INDEX_URL");
    list(layers, "UV_INDEX", false, WS);
    list(layers, "UV_EXTRA_INDEX_URL", false, WS);
    list(layers, "UV_FIND_LINKS", true, &[',']);
    flag(layers, "UV_NO_INDEX");
    single(layers, "PIP_INDEX_URL");
    list(layers, "PIP_EXTRA_INDEX_URL", false, WS);
    list(layers, "PIP_FIND_LINKS", true, WS);
    flag(layers, "PIP_NO_INDEX");
    if let Some(cert) = env.var("PIP_CERT") {
        let mut l = Layer::named("`PIP_CERT`");
        l.cert = Some(cert.to_string());
        layers.push(l);
    }
}

/// uv accepts `name=url` for named indexes; the name does not matter here.
fn strip_index_name(value: &str) -> &str {
    match value.split_once('=') {
        Some((name, url))
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            url
        }
        _ => value,
    }
}

fn is_truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Reads a configuration file; a missing file is `None`.
fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match fs_err::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn pip_config_files(env: &ConfigEnv) -> Vec<PathBuf> {
    let mut files = Vec::new();
    match env.var("PIP_CONFIG_FILE") {
        Some("/dev/null" | "nul" | "NUL") => return files,
        Some(file) => files.push(PathBuf::from(file)),
        None => {}
    }
    if let Some(dir) = env.config_home() {
        files.push(dir.join("pip/pip.conf"));
    }
    if let Some(home) = env.home() {
        files.push(home.join(".pip/pip.conf"));
    }
    files.push(env.system_path("/etc/pip.conf"));
    let xdg_dirs = env.var("XDG_CONFIG_DIRS").unwrap_or("/etc/xdg");
    // Earlier XDG directories take precedence.
    for dir in xdg_dirs.split(':').filter(|d| !d.is_empty()) {
        files.push(env.system_path(dir).join("pip/pip.conf"));
    }
    files
}

fn pip_config_layers(env: &ConfigEnv, layers: &mut Vec<Layer>) -> Result<(), ConfigError> {
    for path in pip_config_files(env) {
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        let sections = parse_ini(&text).map_err(|reason| ConfigError::Invalid {
            path: path.clone(),
            reason,
        })?;
        let mut merged: BTreeMap<&str, &str> = BTreeMap::new();
        for section in ["global", "install"] {
            if let Some(keys) = sections.get(section) {
                merged.extend(keys.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
        }
        let mut l = Layer::named(format!("`{}`", path.display()));
        l.index_url = merged.get("index-url").map(|s| s.trim().to_string());
        let split = |key| {
            merged
                .get(key)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        l.extra_index_urls = split("extra-index-url");
        l.find_links = split("find-links");
        l.no_index = merged.get("no-index").is_some_and(|v| is_truthy(v.trim()));
        l.cert = merged.get("cert").map(|s| s.trim().to_string());
        layers.push(l);
    }
    Ok(())
}

/// A small INI reader with Python `configparser`'s default rules, as pip uses them: `[section]`,
/// `key = value` or `key: value`; a line indented deeper than its key's line continues the value,
/// also after blank lines (kept as empty lines, as `empty_lines_in_values` does); `#` and `;`
/// comment lines are skipped anywhere; values are trimmed at both ends.
/// Keys are lowercased with `_` read as `-`.
fn parse_ini(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    // The key a deeper-indented line continues, and its line's indent.
    let mut last_key: Option<(String, usize)> = None;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let current = match (&section, &last_key) {
            (Some(s), Some((k, indent))) => Some((s, k, *indent)),
            _ => None,
        };
        if trimmed.is_empty() {
            if let Some((s, k, _)) = current
                && let Some(v) = out.get_mut(s).and_then(|m| m.get_mut(k))
            {
                v.push('\n');
            }
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if let Some((s, k, key_indent)) = current
            && indent > key_indent
            && let Some(v) = out.get_mut(s).and_then(|m| m.get_mut(k))
        {
            v.push('\n');
            v.push_str(trimmed);
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: unclosed section header `{trimmed}`", i + 1))?;
            section = Some(name.trim().to_string());
            out.entry(name.trim().to_string()).or_default();
            last_key = None;
            continue;
        }
        let Some(s) = &section else {
            return Err(format!(
                "line {}: `{trimmed}` comes before any `[section]` header",
                i + 1
            ));
        };
        let split = trimmed
            .find(['=', ':'])
            .ok_or_else(|| format!("line {}: expected `key = value`, got `{trimmed}`", i + 1))?;
        let key = trimmed[..split]
            .trim()
            .to_ascii_lowercase()
            .replace('_', "-");
        let value = trimmed[split + 1..].trim().to_string();
        out.entry(s.clone()).or_default().insert(key.clone(), value);
        last_key = Some((key, indent));
    }
    // configparser joins a value's lines and strips the whole: blank lines at the end go.
    for values in out.values_mut() {
        for v in values.values_mut() {
            let end = v.trim_end().len();
            v.truncate(end);
        }
    }
    Ok(out)
}

fn uv_config_files(env: &ConfigEnv) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = env.var("UV_CONFIG_FILE") {
        files.push(PathBuf::from(file));
    } else if let Some(dir) = env.config_home() {
        files.push(dir.join("uv/uv.toml"));
    }
    let xdg_dirs = env.var("XDG_CONFIG_DIRS").unwrap_or("/etc/xdg");
    for dir in xdg_dirs.split(':').filter(|d| !d.is_empty()) {
        files.push(env.system_path(dir).join("uv/uv.toml"));
    }
    files.push(env.system_path("/etc/uv/uv.toml"));
    files
}

fn uv_config_layers(env: &ConfigEnv, layers: &mut Vec<Layer>) -> Result<(), ConfigError> {
    for path in uv_config_files(env) {
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.clone(),
            reason,
        };
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| invalid(format!("{e}")))?;
        let mut l = Layer::named(format!("`{}`", path.display()));
        let top = doc.as_table();
        for table in [Some(top), top.get("pip").and_then(|p| p.as_table())]
            .into_iter()
            .flatten()
        {
            read_uv_table(table, &mut l).map_err(invalid)?;
        }
        if let Some(indexes) = top.get("index") {
            let indexes = indexes.as_array_of_tables().ok_or_else(|| {
                invalid("`index` must be an array of tables (`[[index]]`)".into())
            })?;
            let mut extra = Vec::new();
            for index in indexes {
                let url = index
                    .get("url")
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| invalid("every `[[index]]` needs a `url` string".into()))?;
                let flag = |k| index.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
                if flag("default") {
                    l.index_url = Some(url.to_string());
                } else if !flag("explicit") {
                    extra.push(url.to_string());
                }
            }
            if !extra.is_empty() {
                // uv searches `[[index]]` entries before the default index; here they join the
                // extra indexes, which are searched as well.
                extra.extend(std::mem::take(&mut l.extra_index_urls));
                l.extra_index_urls = extra;
            }
        }
        layers.push(l);
    }
    Ok(())
}

fn read_uv_table(table: &toml_edit::Table, l: &mut Layer) -> Result<(), String> {
    let strings = |key: &str| -> Result<Option<Vec<String>>, String> {
        let Some(item) = table.get(key) else {
            return Ok(None);
        };
        let array = item
            .as_array()
            .ok_or_else(|| format!("`{key}` must be an array of strings"))?;
        array
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{key}` must be an array of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    if let Some(item) = table.get("index-url") {
        let url = item
            .as_str()
            .ok_or_else(|| "`index-url` must be a string".to_string())?;
        l.index_url = Some(url.to_string());
    }
    if let Some(v) = strings("extra-index-url")? {
        l.extra_index_urls = v;
    }
    if let Some(v) = strings("find-links")? {
        l.find_links = v;
    }
    if let Some(v) = table.get("no-index") {
        l.no_index = v
            .as_bool()
            .ok_or_else(|| "`no-index` must be true or false".to_string())?;
    }
    Ok(())
}

fn expand_home(value: &str, env: &ConfigEnv) -> PathBuf {
    match (value.strip_prefix("~/"), env.home()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(value),
    }
}

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

fn parse_find_links(value: &str, origin: &str, env: &ConfigEnv) -> Result<FindLinks, ConfigError> {
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

    fn env(vars: &[(&str, &str)], root: &Path) -> ConfigEnv {
        ConfigEnv::new(vars.iter().copied(), root)
    }

    /// Discovery on an interpreter without pip (the tests of configured sources).
    fn discover(
        cli: &SourceOverrides,
        requirements: Option<&Requirements>,
        env: &ConfigEnv,
    ) -> Result<PackageSources, ConfigError> {
        super::discover(cli, requirements, env, || None)
    }

    /// What a fake interpreter's pip answers; no registry host appears in the tests either.
    fn fake_pip() -> PipDefaultIndex {
        PipDefaultIndex {
            url: "https://pip-default.invalid/simple".to_string(),
            python: PathBuf::from("/fake/bin/python3"),
        }
    }

    #[test]
    fn pip_default_is_used_only_when_nothing_names_an_index() {
        let root = tempfile::tempdir().unwrap();
        let asked = std::cell::Cell::new(0);
        let pip = || {
            asked.set(asked.get() + 1);
            Some(fake_pip())
        };
        // Nothing configured: pip's default, with where it came from.
        let s = super::discover(
            &SourceOverrides::default(),
            None,
            &env(&[], root.path()),
            pip,
        )
        .unwrap();
        assert_eq!(
            index(&s),
            (
                "https://pip-default.invalid/simple/",
                "the default index of `/fake/bin/python3`'s pip"
            )
        );
        assert_eq!(
            s.index_from_pip.as_deref(),
            Some(Path::new("/fake/bin/python3"))
        );
        assert_eq!(asked.get(), 1);
        // Extra indexes and find-links from the environment join it (pip does the same).
        let s = super::discover(
            &SourceOverrides::default(),
            None,
            &env(
                &[
                    ("PIP_EXTRA_INDEX_URL", "https://extra.invalid/"),
                    ("PIP_FIND_LINKS", "/opt/wheels"),
                ],
                root.path(),
            ),
            pip,
        )
        .unwrap();
        assert_eq!(index(&s).0, "https://pip-default.invalid/simple/");
        assert_eq!(s.extra_index_urls[0].url.as_str(), "https://extra.invalid/");
        assert_eq!(s.find_links, [FindLinks::Dir("/opt/wheels".into())]);
        assert_eq!(asked.get(), 2);

        // Every configured source wins over it, and pip is not even asked.
        let asked_before = asked.get();
        let req = Requirements::parse_str("--index-url https://req.invalid/\n", Path::new("r.txt"))
            .unwrap();
        let cli = SourceOverrides {
            index_url: Some("https://cli.invalid/".into()),
            ..SourceOverrides::default()
        };
        assert_eq!(
            index(&super::discover(&cli, None, &env(&[], root.path()), pip).unwrap()).0,
            "https://cli.invalid/"
        );
        let s = super::discover(
            &SourceOverrides::default(),
            Some(&req),
            &env(&[], root.path()),
            pip,
        )
        .unwrap();
        assert_eq!(index(&s).0, "https://req.invalid/");
        for var in [
            "DX_PY_INDEX_URL",
            "UV_DEFAULT_INDEX",
            "UV_INDEX_URL",
            "PIP_INDEX_URL",
        ] {
            let s = super::discover(
                &SourceOverrides::default(),
                None,
                &env(&[(var, "https://var.invalid/")], root.path()),
                pip,
            )
            .unwrap();
            assert_eq!(
                index(&s),
                ("https://var.invalid/", format!("`{var}`").as_str())
            );
            assert!(s.index_from_pip.is_none());
        }
        // The user's pip.conf, then (without it) the user's uv.toml.
        let home = root.path().join("home");
        for (file, text, expected) in [
            (
                ".config/pip/pip.conf",
                "[global]\nindex-url = https://pipconf.invalid/\n",
                "https://pipconf.invalid/",
            ),
            (
                ".config/uv/uv.toml",
                "[[index]]\nurl = \"https://uvtoml.invalid/\"\ndefault = true\n",
                "https://uvtoml.invalid/",
            ),
        ] {
            write(&home.join(file), text);
            let vars = [("HOME", home.to_str().unwrap())];
            let s = super::discover(
                &SourceOverrides::default(),
                None,
                &env(&vars, root.path()),
                pip,
            )
            .unwrap();
            assert_eq!(index(&s).0, expected);
            fs_err::remove_file(home.join(file)).unwrap();
        }
        assert_eq!(
            asked.get(),
            asked_before,
            "pip asked although an index was configured"
        );

        // `--no-index`, and `--find-links` alone on the command line, mean no index at all.
        let cli = SourceOverrides {
            find_links: vec!["/w".into()],
            ..SourceOverrides::default()
        };
        let s = super::discover(&cli, None, &env(&[], root.path()), pip).unwrap();
        assert!(s.no_index && s.index_url.is_none() && s.index_from_pip.is_none());
        let cli = SourceOverrides {
            no_index: true,
            find_links: vec!["/w".into()],
            ..SourceOverrides::default()
        };
        let s = super::discover(&cli, None, &env(&[], root.path()), pip).unwrap();
        assert!(s.no_index && s.index_url.is_none());
        assert_eq!(asked.get(), asked_before);
    }

    #[test]
    fn without_pip_nothing_configured_is_still_the_error() {
        let root = tempfile::tempdir().unwrap();
        let e = super::discover(
            &SourceOverrides::default(),
            None,
            &env(&[], root.path()),
            || None,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::NoIndex { .. }), "{e}");
        // A pip that reports something unusable is named in the error.
        let e = super::discover(
            &SourceOverrides::default(),
            None,
            &env(&[], root.path()),
            || {
                Some(PipDefaultIndex {
                    url: "ftp://nope.invalid/".into(),
                    python: "/fake/python".into(),
                })
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid index URL `ftp://nope.invalid/` (from the default index of `/fake/python`'s \
             pip): unsupported scheme `ftp`: expected `https`, `http` or `file`"
        );
    }

    fn write(path: &Path, text: &str) {
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }

    fn index(s: &PackageSources) -> (&str, &str) {
        let i = s.index_url.as_ref().unwrap();
        (i.url.as_str(), i.origin.as_str())
    }

    #[test]
    fn nothing_configured_is_an_error_that_says_how() {
        let root = tempfile::tempdir().unwrap();
        // This machine's situation: find-links set, no index.
        let e = discover(
            &SourceOverrides::default(),
            None,
            &env(
                &[("PIP_FIND_LINKS", "/opt/wheels"), ("HOME", "/nonexistent")],
                root.path(),
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "No package index is configured (find-links: /opt/wheels): pass `--index-url URL`, \
             set `DX_PY_INDEX_URL`, or set `index-url` under `[global]` in pip.conf \
             (`~/.config/pip/pip.conf`); to install only from find-links locations, pass \
             `--no-index`"
        );
        let e = discover(&SourceOverrides::default(), None, &env(&[], root.path())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("No package index is configured: pass"),
            "{e}"
        );
    }

    #[test]
    fn precedence_of_variables() {
        let root = tempfile::tempdir().unwrap();
        let all = [
            ("PIP_INDEX_URL", "https://pip.invalid/simple"),
            ("UV_INDEX_URL", "https://uvold.invalid/simple"),
            ("UV_DEFAULT_INDEX", "https://uv.invalid/simple"),
            ("DX_PY_INDEX_URL", "https://dx.invalid/simple"),
        ];
        let cli = SourceOverrides::default();
        for n in (1..=all.len()).rev() {
            let s = discover(&cli, None, &env(&all[..n], root.path())).unwrap();
            let (url, origin) = index(&s);
            assert_eq!(url, format!("{}/", all[n - 1].1));
            assert_eq!(origin, format!("`{}`", all[n - 1].0));
        }
        // The requirements file beats the environment, the command line beats both.
        let req = Requirements {
            index_url: Some("https://req.invalid/simple/".into()),
            extra_index_urls: vec!["https://req-extra.invalid/".into()],
            ..Requirements::default()
        };
        let s = discover(&cli, Some(&req), &env(&all, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://req.invalid/simple/");
        assert_eq!(s.extra_index_urls.len(), 1);
        let cli = SourceOverrides {
            index_url: Some("file:///srv/index".into()),
            extra_index_urls: vec!["https://cli-extra.invalid/x".into()],
            ..SourceOverrides::default()
        };
        let s = discover(&cli, Some(&req), &env(&all, root.path())).unwrap();
        assert_eq!(index(&s), ("file:///srv/index/", "`--index-url`"));
        let extras: Vec<_> = s.extra_index_urls.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            extras,
            ["https://cli-extra.invalid/x/", "https://req-extra.invalid/"]
        );
    }

    #[test]
    fn uv_named_indexes_and_lists() {
        let root = tempfile::tempdir().unwrap();
        let s = discover(
            &SourceOverrides::default(),
            None,
            &env(
                &[
                    ("UV_DEFAULT_INDEX", "main=https://m.invalid/simple"),
                    ("UV_INDEX", "a=https://a.invalid/ https://b.invalid/"),
                    ("PIP_EXTRA_INDEX_URL", "https://ignored.invalid/"),
                    ("UV_FIND_LINKS", "/w1,/w2"),
                ],
                root.path(),
            ),
        )
        .unwrap();
        assert_eq!(index(&s).0, "https://m.invalid/simple/");
        let extras: Vec<_> = s.extra_index_urls.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(extras, ["https://a.invalid/", "https://b.invalid/"]);
        assert_eq!(
            s.find_links,
            [FindLinks::Dir("/w1".into()), FindLinks::Dir("/w2".into())]
        );
    }

    #[test]
    fn pip_conf_files_in_order() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home/u");
        let vars = [("HOME", home.to_str().unwrap())];
        let sys_xdg = root.path().join("etc/xdg/pip/pip.conf");
        write(
            &sys_xdg,
            "[global]\nindex-url = https://xdg.invalid/simple\ncert = /ca.pem\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://xdg.invalid/simple/");
        assert_eq!(s.cert.as_deref(), Some(Path::new("/ca.pem")));

        write(
            &root.path().join("etc/pip.conf"),
            "[global]\nindex_url=https://etc.invalid/simple\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://etc.invalid/simple/");

        write(
            &home.join(".pip/pip.conf"),
            "# legacy\n[global]\nindex-url: https://legacy.invalid/simple\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://legacy.invalid/simple/");

        write(
            &home.join(".config/pip/pip.conf"),
            "[global]\nindex-url = https://user.invalid/simple\nextra-index-url =\n    \
             https://e1.invalid/\n    https://e2.invalid/\n\n[install]\nindex-url = \
             https://install.invalid/simple\nfind-links = ~/wheels\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://install.invalid/simple/");
        assert!(index(&s).1.ends_with(".config/pip/pip.conf`"));
        assert_eq!(s.extra_index_urls.len(), 2);
        assert_eq!(s.find_links, [FindLinks::Dir(home.join("wheels"))]);

        let explicit = root.path().join("explicit.conf");
        write(
            &explicit,
            "[global]\nindex-url = https://explicit.invalid/simple\n",
        );
        let vars2 = [
            ("HOME", home.to_str().unwrap()),
            ("PIP_CONFIG_FILE", explicit.to_str().unwrap()),
        ];
        let s = discover(&SourceOverrides::default(), None, &env(&vars2, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://explicit.invalid/simple/");
        // PIP_INDEX_URL beats every file; /dev/null turns files off.
        let vars3 = [
            ("HOME", home.to_str().unwrap()),
            ("PIP_CONFIG_FILE", "/dev/null"),
        ];
        assert!(matches!(
            discover(&SourceOverrides::default(), None, &env(&vars3, root.path())),
            Err(ConfigError::NoIndex { .. })
        ));
    }

    #[test]
    fn malformed_pip_conf_names_file_and_line() {
        let root = tempfile::tempdir().unwrap();
        let f = root.path().join("etc/pip.conf");
        write(&f, "[global]\nthis is not ini\n");
        let e = discover(&SourceOverrides::default(), None, &env(&[], root.path())).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Invalid configuration file `{}`: line 2: expected `key = value`, got `this is not ini`",
                f.display()
            )
        );
        write(&f, "index-url = x\n");
        assert!(discover(&SourceOverrides::default(), None, &env(&[], root.path())).is_err());
    }

    #[test]
    fn uv_toml() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let vars = [("HOME", home.to_str().unwrap())];
        let f = home.join(".config/uv/uv.toml");
        write(
            &f,
            "[[index]]\nname = \"a\"\nurl = \"https://a.invalid/simple\"\n\n\
             [[index]]\nurl = \"https://private.invalid/simple\"\nexplicit = true\n\n\
             [[index]]\nurl = \"https://main.invalid/simple\"\ndefault = true\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://main.invalid/simple/");
        let extras: Vec<_> = s.extra_index_urls.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(extras, ["https://a.invalid/simple/"]);

        write(
            &f,
            "index-url = \"https://old.invalid/simple\"\n[pip]\nfind-links = [\"/w\"]\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://old.invalid/simple/");
        assert_eq!(s.find_links, [FindLinks::Dir("/w".into())]);

        // pip configuration is consulted before uv's.
        write(
            &home.join(".config/pip/pip.conf"),
            "[global]\nindex-url = https://pip.invalid/\n",
        );
        let s = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap();
        assert_eq!(index(&s).0, "https://pip.invalid/");

        write(&f, "index-url = 3\n");
        let e = discover(&SourceOverrides::default(), None, &env(&vars, root.path())).unwrap_err();
        assert!(
            e.to_string().contains("`index-url` must be a string"),
            "{e}"
        );
    }

    #[test]
    fn no_index_uses_find_links_only() {
        let root = tempfile::tempdir().unwrap();
        let cli = SourceOverrides {
            no_index: true,
            find_links: vec!["/w".into()],
            ..SourceOverrides::default()
        };
        let s = discover(
            &cli,
            None,
            &env(&[("PIP_INDEX_URL", "https://x.invalid/")], root.path()),
        )
        .unwrap();
        assert!(s.no_index && s.index_url.is_none());
        assert_eq!(s.find_links, [FindLinks::Dir("/w".into())]);
        let cli = SourceOverrides {
            no_index: true,
            ..SourceOverrides::default()
        };
        let e = discover(&cli, None, &env(&[], root.path())).unwrap_err();
        assert!(matches!(e, ConfigError::NothingToSearch { .. }), "{e}");
    }

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

    /// `parse_ini` reads what Python's `configparser` (pip's reader) reads: multi-line values
    /// across blank lines and comment lines, continuation by deeper indentation, trailing blank
    /// lines dropped. Checked against the real `configparser` when `python3` is there.
    #[test]
    fn ini_values_match_configparser() {
        let cases = [
            // Two URLs separated by a blank line: both stay (one was lost before).
            "[global]\nextra-index-url =\n    http://127.0.0.1:1/a/simple\n\n    http://127.0.0.1:1/b/simple\n",
            "[global]\nfind-links =\n  /a\n  # a comment inside\n  ; another\n  /b\n\n\n[install]\nno-index = true\n",
            "[global]\nindex-url: http://127.0.0.1:1/simple\n\n\n",
            "[g]\n  a = 1\n   b\n  c = 2\n\tnot-deeper = 3\n",
            "[g]\nA_Key = x\n\ty\n\n\n\tz\n",
        ];
        let ours: Vec<BTreeMap<String, BTreeMap<String, String>>> =
            cases.iter().map(|c| parse_ini(c).unwrap()).collect();
        let extra = &ours[0]["global"]["extra-index-url"];
        assert_eq!(
            extra.split_whitespace().collect::<Vec<_>>(),
            ["http://127.0.0.1:1/a/simple", "http://127.0.0.1:1/b/simple"]
        );
        let script = "import configparser, json, sys\n\
            out = []\n\
            for text in json.load(sys.stdin):\n\
            \x20   cp = configparser.RawConfigParser()\n\
            \x20   cp.read_string(text)\n\
            \x20   out.append({s: {k.replace('_', '-'): v for k, v in cp.items(s)} for s in cp.sections()})\n\
            json.dump(out, sys.stdout)\n";
        let Ok(mut child) = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("skipped the configparser comparison: no python3");
            return;
        };
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let theirs: Vec<BTreeMap<String, BTreeMap<String, String>>> =
            serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn debug_output_hides_passwords() {
        let u = parse_index_url("https://u:secret@h.invalid/simple", "t").unwrap();
        let debug = format!("{u:?}");
        assert!(
            !debug.contains("secret") && debug.contains("u:****@h.invalid"),
            "{debug}"
        );
    }

    #[test]
    fn ssl_cert_file_wins() {
        let root = tempfile::tempdir().unwrap();
        let s = discover(
            &SourceOverrides::default(),
            None,
            &env(
                &[
                    ("PIP_INDEX_URL", "https://x.invalid/"),
                    ("PIP_CERT", "/pip.pem"),
                    ("SSL_CERT_FILE", "/ssl.pem"),
                ],
                root.path(),
            ),
        )
        .unwrap();
        assert_eq!(s.cert.as_deref(), Some(Path::new("/ssl.pem")));
    }
}
