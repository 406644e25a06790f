//! The environment configuration is read from (`ConfigEnv`), and the layers its variables make:
//! `DX_PY_*`, then `UV_*`, then `PIP_*`, as the parent module lists them.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Layer;

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
    pub(super) fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn system_path(&self, absolute: &str) -> PathBuf {
        self.system_root.join(absolute.trim_start_matches('/'))
    }

    pub(super) fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    pub(super) fn config_home(&self) -> Option<PathBuf> {
        self.var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".config")))
    }

    /// `$XDG_CONFIG_DIRS` (by default `/etc/xdg`) under the system root, earlier ones first:
    /// they take precedence.
    pub(super) fn system_config_dirs(&self) -> impl Iterator<Item = PathBuf> {
        let dirs = self.var("XDG_CONFIG_DIRS").unwrap_or("/etc/xdg");
        dirs.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| self.system_path(d))
    }
}

/// Adds a layer per variable that is set, most specific first.
pub(super) fn env_layers(env: &ConfigEnv, layers: &mut Vec<Layer>) {
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

/// pip's and uv's reading of a boolean setting.
pub(super) fn is_truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// `~/` at the start of a path is the user's home, as pip reads it.
pub(super) fn expand_home(value: &str, env: &ConfigEnv) -> PathBuf {
    match (value.strip_prefix("~/"), env.home()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(value),
    }
}

#[cfg(test)]
mod tests {
    use crate::index::config::test_util::{discover, env, index};
    use crate::index::config::{FindLinks, SourceOverrides};
    use crate::requirements::Requirements;
    use std::path::Path;

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
