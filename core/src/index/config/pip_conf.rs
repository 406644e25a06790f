//! pip configuration files: where they are, and a reader with `configparser`'s rules (pip's own
//! reader), `[install]` over `[global]`.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::env::is_truthy;
use super::{ConfigEnv, ConfigError, Layer, read_optional};

/// A line a pip configuration file cannot have (lines count from 1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// `[name` without its `]`.
    #[error("line {line}: unclosed section header `{text}`")]
    UnclosedSection {
        /// The line number.
        line: usize,
        /// The line, trimmed.
        text: String,
    },
    /// A setting before the first `[section]`.
    #[error("line {line}: `{text}` comes before any `[section]` header")]
    OutsideSection {
        /// The line number.
        line: usize,
        /// The line, trimmed.
        text: String,
    },
    /// A line that is neither a header, a comment, a continuation nor `key = value`.
    #[error("line {line}: expected `key = value`, got `{text}`")]
    NotKeyValue {
        /// The line number.
        line: usize,
        /// The line, trimmed.
        text: String,
    },
}

/// The values of one file: section, then key (lowercase, `-` for `_`), then value.
type Sections = BTreeMap<String, BTreeMap<String, String>>;

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
    files.extend(env.system_config_dirs().map(|d| d.join("pip/pip.conf")));
    files
}

/// Adds a layer per pip configuration file that exists, in the order pip gives them precedence.
pub(super) fn pip_config_layers(
    env: &ConfigEnv,
    layers: &mut Vec<Layer>,
) -> Result<(), ConfigError> {
    for path in pip_config_files(env) {
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        let sections = parse_ini(&text).map_err(|reason| ConfigError::InvalidPipConf {
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
fn parse_ini(text: &str) -> Result<Sections, IniError> {
    let mut out = Sections::new();
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
                .ok_or_else(|| IniError::UnclosedSection {
                    line: i + 1,
                    text: trimmed.to_string(),
                })?;
            section = Some(name.trim().to_string());
            out.entry(name.trim().to_string()).or_default();
            last_key = None;
            continue;
        }
        let Some(s) = &section else {
            return Err(IniError::OutsideSection {
                line: i + 1,
                text: trimmed.to_string(),
            });
        };
        let split = trimmed
            .find(['=', ':'])
            .ok_or_else(|| IniError::NotKeyValue {
                line: i + 1,
                text: trimmed.to_string(),
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::config::test_util::{discover, env, index, write};
    use crate::index::config::{FindLinks, SourceOverrides};
    use std::path::Path;

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
    fn each_malformed_line_is_its_own_error() {
        assert_eq!(
            parse_ini("[global\n"),
            Err(IniError::UnclosedSection {
                line: 1,
                text: "[global".into()
            })
        );
        assert_eq!(
            parse_ini("# c\nindex-url = x\n"),
            Err(IniError::OutsideSection {
                line: 2,
                text: "index-url = x".into()
            })
        );
        assert_eq!(
            parse_ini("[g]\na = 1\nnot a pair\n"),
            Err(IniError::NotKeyValue {
                line: 3,
                text: "not a pair".into()
            })
        );
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
        let ours: Vec<Sections> = cases.iter().map(|c| parse_ini(c).unwrap()).collect();
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
        let theirs: Vec<Sections> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(ours, theirs);
    }
}
