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
//!
//! ```text
//! mod.rs       the public types, the layers and `discover`, which picks from them
//! env.rs       `ConfigEnv` and the layers of environment variables
//! pip_conf.rs  pip configuration files (a `configparser`-compatible reader)
//! uv_toml.rs   uv configuration files (serde structs over `toml_edit`)
//! location.rs  index and find-links values as URLs and paths
//! ```
use std::path::{Path, PathBuf};

use url::Url;

use super::redact_url;
use crate::requirements::Requirements;

mod env;
mod location;
mod pip_conf;
#[cfg(test)]
mod test_util;
mod uv_toml;

pub use env::ConfigEnv;
use env::{env_layers, expand_home};
use location::parse_find_links;
pub use location::parse_index_url;
pub use pip_conf::IniError;
use pip_conf::pip_config_layers;
pub use uv_toml::UvTomlError;
use uv_toml::uv_config_layers;

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
    // The two below show their reason inline rather than as a `#[source]`: the message is one
    // line that names the file and the line in it.
    /// A pip configuration file that could not be parsed.
    #[error("Invalid configuration file `{}`: {reason}", path.display())]
    InvalidPipConf {
        /// The file.
        path: PathBuf,
        /// What is wrong, and on which line.
        reason: IniError,
    },
    /// A uv configuration file that could not be parsed, or holds a setting of the wrong type.
    #[error("Invalid configuration file `{}`: {reason}", path.display())]
    InvalidUvToml {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: UvTomlError,
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

#[cfg(test)]
mod tests {
    use super::test_util::{discover, env, fake_pip, index, write};
    use super::*;
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
    fn debug_output_hides_passwords() {
        let u = parse_index_url("https://u:secret@h.invalid/simple", "t").unwrap();
        let debug = format!("{u:?}");
        assert!(
            !debug.contains("secret") && debug.contains("u:****@h.invalid"),
            "{debug}"
        );
    }
}
