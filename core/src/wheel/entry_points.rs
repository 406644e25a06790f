//! `entry_points.txt` (INI style): the `[console_scripts]` and `[gui_scripts]` sections, which
//! become wrapper scripts in `bin/` at install time.
//!
//! A value is `module(.sub)*` optionally followed by `:attr(.sub)*` and an `[extras]` suffix,
//! which is ignored (extras of an entry point have no effect on the wrapper). Other sections are
//! skipped without being checked, as installers do.

/// An `entry_points.txt` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryPointsError {
    /// A line of a script section has no `=`.
    #[error("entry_points.txt line {line}: expected `name = module:attr`, got `{text}`")]
    MissingEquals {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// A `[` line that does not close.
    #[error("entry_points.txt line {line}: unterminated section header `{text}`")]
    BadSection {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// A script name that cannot be a file in `bin/`.
    #[error(
        "entry_points.txt line {line}: script name `{name}` must be a non-empty file name without `/`, `\\`, `:` or NUL"
    )]
    InvalidName {
        /// 1-based line number.
        line: usize,
        /// The name given.
        name: String,
    },
    /// A value that is not `module[:attr] [extras]`.
    #[error(
        "entry_points.txt line {line}: `{value}` is not `module:attr` with dotted Python identifiers"
    )]
    InvalidValue {
        /// 1-based line number.
        line: usize,
        /// The value given.
        value: String,
    },
    /// The same script name twice in one section.
    #[error("entry_points.txt line {line}: script `{name}` is defined twice in `[{section}]`")]
    Duplicate {
        /// 1-based line number of the second definition.
        line: usize,
        /// The section.
        section: &'static str,
        /// The name.
        name: String,
    },
}

/// One script entry point: `name = module:attr`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryPoint {
    /// The script's file name in `bin/`.
    pub name: String,
    /// The dotted module path to import.
    pub module: String,
    /// The dotted attribute path to call, if any.
    pub attr: Option<String>,
}

/// The script entry points of a distribution, each list in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryPoints {
    /// `[console_scripts]`.
    pub console_scripts: Vec<EntryPoint>,
    /// `[gui_scripts]`.
    pub gui_scripts: Vec<EntryPoint>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Console,
    Gui,
    Other,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn is_dotted(s: &str) -> bool {
    s.split('.').all(|p| is_identifier(p.trim()))
}

/// A name is usable when it is one plain path component on every platform.
fn is_script_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains(['/', '\\', ':', '\0'])
        && !s.chars().any(char::is_control)
}

fn parse_value(value: &str) -> Option<(String, Option<String>)> {
    let mut v = value.trim();
    if let Some(open) = v.find('[') {
        let extras = v.get(open..)?.trim_end();
        if !extras.ends_with(']') || extras.get(1..)?.contains('[') {
            return None;
        }
        v = v.get(..open)?.trim_end();
    }
    let (module, attr) = match v.split_once(':') {
        Some((m, a)) => (m.trim(), Some(a.trim())),
        None => (v, None),
    };
    if !is_dotted(module) {
        return None;
    }
    let module: String = module
        .split('.')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(".");
    match attr {
        Some(a) if !is_dotted(a) => None,
        Some(a) => Some((
            module,
            Some(a.split('.').map(str::trim).collect::<Vec<_>>().join(".")),
        )),
        None => Some((module, None)),
    }
}

impl EntryPoints {
    /// Parses the text of an `entry_points.txt`.
    pub fn parse(text: &str) -> Result<Self, EntryPointsError> {
        let mut out = Self::default();
        let mut section = Section::Other;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| EntryPointsError::BadSection {
                        line: line_no,
                        text: line.chars().take(80).collect(),
                    })?
                    .trim();
                section = match name {
                    "console_scripts" => Section::Console,
                    "gui_scripts" => Section::Gui,
                    _ => Section::Other,
                };
                continue;
            }
            let (list, section_name) = match section {
                Section::Other => continue,
                Section::Console => (&mut out.console_scripts, "console_scripts"),
                Section::Gui => (&mut out.gui_scripts, "gui_scripts"),
            };
            let (name, value) =
                line.split_once('=')
                    .ok_or_else(|| EntryPointsError::MissingEquals {
                        line: line_no,
                        text: line.chars().take(80).collect(),
                    })?;
            let name = name.trim();
            if !is_script_name(name) {
                return Err(EntryPointsError::InvalidName {
                    line: line_no,
                    name: name.to_string(),
                });
            }
            let (module, attr) =
                parse_value(value).ok_or_else(|| EntryPointsError::InvalidValue {
                    line: line_no,
                    value: value.trim().to_string(),
                })?;
            if list.iter().any(|e| e.name == name) {
                return Err(EntryPointsError::Duplicate {
                    line: line_no,
                    section: section_name,
                    name: name.to_string(),
                });
            }
            list.push(EntryPoint {
                name: name.to_string(),
                module,
                attr,
            });
        }
        Ok(out)
    }

    /// True when there are no scripts at all.
    pub fn is_empty(&self) -> bool {
        self.console_scripts.is_empty() && self.gui_scripts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ep(name: &str, module: &str, attr: Option<&str>) -> EntryPoint {
        EntryPoint {
            name: name.into(),
            module: module.into(),
            attr: attr.map(Into::into),
        }
    }

    #[test]
    fn parses_script_sections() {
        let text = "\
# comment
[console_scripts]
demo = demo.cli:main
demo-x = demo.cli:App.run [fast, tls]
bare=demo.__main__

[gui_scripts]
demo-gui = demo.gui : main

[demo.plugins]
anything goes here
";
        let e = EntryPoints::parse(text).unwrap();
        assert_eq!(
            e.console_scripts,
            [
                ep("demo", "demo.cli", Some("main")),
                ep("demo-x", "demo.cli", Some("App.run")),
                ep("bare", "demo.__main__", None),
            ]
        );
        assert_eq!(e.gui_scripts, [ep("demo-gui", "demo.gui", Some("main"))]);
        assert!(EntryPoints::parse("").unwrap().is_empty());
    }

    #[test]
    fn each_refusal_is_typed() {
        type Check = fn(&EntryPointsError) -> bool;
        let cases: [(&str, Check); 7] = [
            ("[console_scripts]\ndemo demo:main\n", |e| {
                matches!(e, EntryPointsError::MissingEquals { line: 2, .. })
            }),
            ("[console_scripts\n", |e| {
                matches!(e, EntryPointsError::BadSection { line: 1, .. })
            }),
            ("[console_scripts]\n../evil = demo:main\n", |e| {
                matches!(e, EntryPointsError::InvalidName { .. })
            }),
            ("[console_scripts]\n = demo:main\n", |e| {
                matches!(e, EntryPointsError::InvalidName { .. })
            }),
            ("[gui_scripts]\ndemo = demo-x:main\n", |e| {
                matches!(e, EntryPointsError::InvalidValue { .. })
            }),
            ("[gui_scripts]\ndemo = demo:main [x\n", |e| {
                matches!(e, EntryPointsError::InvalidValue { .. })
            }),
            ("[console_scripts]\na = m:f\na = m:g\n", |e| {
                matches!(e, EntryPointsError::Duplicate { line: 3, .. })
            }),
        ];
        for (text, check) in cases {
            let err = EntryPoints::parse(text).unwrap_err();
            assert!(check(&err), "{text:?} gave {err:?}");
        }
        // Other sections are not checked.
        assert!(EntryPoints::parse("[other]\nno equals here\n").is_ok());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = EntryPoints::parse(&text);
            let _ = EntryPoints::parse(&format!("[console_scripts]\n{text}"));
        }

        /// Well-formed lines come back as the oracle built them.
        #[test]
        fn round_trips(items in proptest::collection::btree_map(
            "[a-z][a-z0-9-]{0,8}",
            ("[a-z_][a-z0-9_]{0,5}(\\.[a-z_][a-z0-9_]{0,5}){0,2}",
             proptest::option::of("[A-Za-z_][A-Za-z0-9_]{0,5}(\\.[a-z_]{1,4})?"),
             any::<bool>()),
            0..6,
        )) {
            let mut text = String::from("[console_scripts]\n");
            let mut want = Vec::new();
            for (name, (module, attr, extras)) in &items {
                let mut line = format!("{name} = {module}");
                if let Some(a) = attr {
                    line.push_str(&format!(":{a}"));
                }
                if *extras {
                    line.push_str(" [e1,e2]");
                }
                text.push_str(&line);
                text.push('\n');
                want.push(ep(name, module, attr.as_deref()));
            }
            let got = EntryPoints::parse(&text).unwrap();
            prop_assert_eq!(got.console_scripts, want);
        }
    }
}
