//! uv configuration files: where they are, and the settings read from them, as serde structs
//! (kebab-case keys, as uv spells them). Every other key of uv's is ignored; a known key of the
//! wrong type is an error that names it.
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::{ConfigEnv, ConfigError, Layer, read_optional};

/// What is wrong with a uv configuration file.
#[derive(Debug, thiserror::Error)]
pub enum UvTomlError {
    /// Not TOML, or a setting of the wrong type (the message says which, and where).
    #[error("{0}")]
    Toml(#[from] toml_edit::de::Error),
    /// An `[[index]]` table without its `url`.
    #[error("every `[[index]]` needs a `url` string (the one at position {position} has none)")]
    IndexWithoutUrl {
        /// Which `[[index]]`, counting from 1.
        position: usize,
    },
}

/// The parts of a `uv.toml` that name package sources.
#[derive(Debug, Default, Deserialize)]
struct UvToml {
    #[serde(flatten)]
    top: UvSources,
    /// `[pip]`: the settings of `uv pip`, which win over the top level's.
    #[serde(default, deserialize_with = "pip_table")]
    pip: Option<UvSources>,
    #[serde(default, deserialize_with = "index_tables")]
    index: Option<Vec<UvIndex>>,
}

/// The source settings of the top level or of `[pip]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvSources {
    #[serde(default, deserialize_with = "index_url")]
    index_url: Option<String>,
    #[serde(default, deserialize_with = "extra_index_url")]
    extra_index_url: Option<Vec<String>>,
    #[serde(default, deserialize_with = "find_links")]
    find_links: Option<Vec<String>>,
    #[serde(default, deserialize_with = "no_index")]
    no_index: Option<bool>,
}

/// One `[[index]]` table.
#[derive(Debug, Deserialize)]
struct UvIndex {
    // Optional here so that a missing `url` gets the same message as one of the wrong type.
    #[serde(default, deserialize_with = "index_entry_url")]
    url: Option<String>,
    /// The index that replaces the default one.
    #[serde(default, deserialize_with = "default_flag")]
    default: bool,
    /// Searched only for packages pinned to it: not an extra index here.
    #[serde(default, deserialize_with = "explicit_flag")]
    explicit: bool,
}

/// Deserializes `T`, and replaces a failure (a wrong type: these values hold nothing nested that
/// could fail otherwise) with `message`, which names the key as the file spells it.
fn typed<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    message: &'static str,
) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|_| de::Error::custom(message))
}

fn index_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    typed(d, "`index-url` must be a string")
}

fn extra_index_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    typed(d, "`extra-index-url` must be an array of strings")
}

fn find_links<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    typed(d, "`find-links` must be an array of strings")
}

fn no_index<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    typed(d, "`no-index` must be true or false")
}

fn index_entry_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    typed(d, "every `[[index]]` needs a `url` string")
}

fn default_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    typed(d, "`default` of an `[[index]]` must be true or false")
}

fn explicit_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    typed(d, "`explicit` of an `[[index]]` must be true or false")
}

fn pip_table<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UvSources>, D::Error> {
    // Not `typed`: a wrong type inside `[pip]` keeps its own message.
    struct PipTable;
    impl<'de> de::Visitor<'de> for PipTable {
        type Value = Option<UvSources>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a `[pip]` table")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            UvSources::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_map(PipTable)
}

fn index_tables<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<UvIndex>>, D::Error> {
    // Not `typed`: a wrong type inside an `[[index]]` keeps its own message.
    struct IndexTables;
    impl<'de> de::Visitor<'de> for IndexTables {
        type Value = Option<Vec<UvIndex>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("`index` as an array of tables (`[[index]]`)")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(index) = seq.next_element()? {
                out.push(index);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_seq(IndexTables)
}

/// Reads one file's settings into a layer.
fn parse_uv_toml(text: &str, l: &mut Layer) -> Result<(), UvTomlError> {
    let doc: UvToml = toml_edit::de::from_str(text)?;
    for table in [Some(doc.top), doc.pip].into_iter().flatten() {
        if let Some(url) = table.index_url {
            l.index_url = Some(url);
        }
        if let Some(v) = table.extra_index_url {
            l.extra_index_urls = v;
        }
        if let Some(v) = table.find_links {
            l.find_links = v;
        }
        if let Some(v) = table.no_index {
            l.no_index = v;
        }
    }
    if let Some(indexes) = doc.index {
        let mut extra = Vec::new();
        for (i, index) in indexes.into_iter().enumerate() {
            let url = index
                .url
                .ok_or(UvTomlError::IndexWithoutUrl { position: i + 1 })?;
            if index.default {
                l.index_url = Some(url);
            } else if !index.explicit {
                extra.push(url);
            }
        }
        if !extra.is_empty() {
            // uv searches `[[index]]` entries before the default index; here they join the
            // extra indexes, which are searched as well.
            extra.extend(std::mem::take(&mut l.extra_index_urls));
            l.extra_index_urls = extra;
        }
    }
    Ok(())
}

/// Adds a layer per uv configuration file that exists, the user's before the system's.
pub(super) fn uv_config_layers(
    env: &ConfigEnv,
    layers: &mut Vec<Layer>,
) -> Result<(), ConfigError> {
    for path in uv_config_files(env) {
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        let mut l = Layer::named(format!("`{}`", path.display()));
        parse_uv_toml(&text, &mut l)
            .map_err(|reason| ConfigError::InvalidUvToml { path, reason })?;
        layers.push(l);
    }
    Ok(())
}

/// The uv configuration files that may exist, the most specific first.
fn uv_config_files(env: &ConfigEnv) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = env.var("UV_CONFIG_FILE") {
        files.push(PathBuf::from(file));
    } else if let Some(dir) = env.config_home() {
        files.push(dir.join("uv/uv.toml"));
    }
    files.extend(env.system_config_dirs().map(|d| d.join("uv/uv.toml")));
    files.push(env.system_path("/etc/uv/uv.toml"));
    files
}

#[cfg(test)]
mod tests {
    use super::{Layer, UvTomlError, parse_uv_toml};
    use crate::index::config::test_util::{discover, env, index, write};
    use crate::index::config::{FindLinks, SourceOverrides};

    fn parse(text: &str) -> Result<Layer, UvTomlError> {
        let mut l = Layer::named("t");
        parse_uv_toml(text, &mut l).map(|()| l)
    }

    /// uv's other settings, and misspellings of ours (`index_url`), are not errors: the file is
    /// uv's, and dx-py reads only the keys that name package sources.
    #[test]
    fn other_keys_are_ignored_and_pip_wins_over_the_top_level() {
        let l = parse(
            "cache-dir = \"/c\"\npython-preference = \"only-system\"\nindex_url = 3\n\
             index-url = \"https://top.invalid/\"\nextra-index-url = [\"https://e.invalid/\"]\n\
             no-index = false\n\
             [pip]\nindex-url = \"https://pip.invalid/\"\nno-index = true\ncompile-bytecode = true\n\
             [[index]]\nname = \"x\"\nurl = \"https://x.invalid/\"\npublish-url = \"https://p.invalid/\"\n",
        )
        .unwrap();
        assert_eq!(l.index_url.as_deref(), Some("https://pip.invalid/"));
        assert_eq!(
            l.extra_index_urls,
            ["https://x.invalid/", "https://e.invalid/"]
        );
        assert!(l.no_index);
        assert!(l.find_links.is_empty());
        // An inline array of tables is the same TOML as `[[index]]`.
        let l = parse("index = [{ url = \"https://m.invalid/\", default = true }]\n").unwrap();
        assert_eq!(l.index_url.as_deref(), Some("https://m.invalid/"));
        assert!(parse("").unwrap().index_url.is_none());
    }

    /// A known key of the wrong type is an error naming the key, with its line.
    #[test]
    fn mistyped_settings_name_the_key() {
        for (text, expected) in [
            ("index-url = 3\n", "`index-url` must be a string"),
            (
                "[pip]\nindex-url = [\"u\"]\n",
                "`index-url` must be a string",
            ),
            (
                "extra-index-url = \"https://x.invalid/\"\n",
                "`extra-index-url` must be an array of strings",
            ),
            (
                "extra-index-url = [1]\n",
                "`extra-index-url` must be an array of strings",
            ),
            (
                "find-links = [true]\n",
                "`find-links` must be an array of strings",
            ),
            ("no-index = \"yes\"\n", "`no-index` must be true or false"),
            ("[pip]\nno-index = 1\n", "`no-index` must be true or false"),
            ("pip = 3\n", "expected a `[pip]` table"),
            (
                "index = 3\n",
                "expected `index` as an array of tables (`[[index]]`)",
            ),
            (
                "[[index]]\nurl = 1\n",
                "every `[[index]]` needs a `url` string",
            ),
            (
                "[[index]]\nurl = \"u\"\ndefault = \"yes\"\n",
                "`default` of an `[[index]]` must be true or false",
            ),
            (
                "[[index]]\nurl = \"u\"\nexplicit = 1\n",
                "`explicit` of an `[[index]]` must be true or false",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, UvTomlError::Toml(_)), "{text}: {e:?}");
            let message = e.to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(
                message.contains("line "),
                "{text}: no position in {message}"
            );
        }
        let e = parse("[[index]]\nurl = \"u\"\n[[index]]\nname = \"a\"\n").unwrap_err();
        assert!(
            matches!(e, UvTomlError::IndexWithoutUrl { position: 2 }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "every `[[index]]` needs a `url` string (the one at position 2 has none)"
        );
        assert!(matches!(parse("index-url = ["), Err(UvTomlError::Toml(_))));
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
}
