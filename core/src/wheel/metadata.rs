//! The core metadata file (`METADATA`, email-header style) of a wheel's `.dist-info` directory.
//!
//! Only the header block is read: it ends at the first empty line, after which comes the long
//! description. Field names compare case-insensitively; a line starting with a space or a tab
//! continues the previous field (RFC 822 folding).
use std::str::FromStr;

/// A `METADATA` file that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    /// The file is not UTF-8.
    #[error("METADATA is not valid UTF-8 (at byte {0})")]
    NotUtf8(usize),
    /// A header line has no `:`.
    #[error("METADATA line {line} is not a `Field: value` header: `{text}`")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// A required field is absent.
    #[error("METADATA has no `{0}` field")]
    MissingField(&'static str),
    /// A single-valued field is given more than once.
    #[error("METADATA gives `{field}` twice: `{first}` and `{second}`")]
    DuplicateField {
        /// The field name.
        field: &'static str,
        /// The first value.
        first: String,
        /// The second value.
        second: String,
    },
    /// A required field is empty.
    #[error("METADATA field `{0}` is empty")]
    EmptyField(&'static str),
    /// `Version` is not a PEP 440 version.
    #[error("METADATA version `{version}` is not a PEP 440 version: {reason}")]
    InvalidVersion {
        /// The version string given.
        version: String,
        /// Why the parser refused it.
        reason: String,
    },
}

/// The fields of `METADATA` that installing and resolving need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelMetadata {
    /// `Metadata-Version`, if given.
    pub metadata_version: Option<String>,
    /// `Name`, as written (not normalized).
    pub name: String,
    /// `Version`, as written; known to parse as a PEP 440 version.
    pub version: String,
    /// Every `Requires-Dist`, as written (PEP 508 strings, markers included).
    pub requires_dist: Vec<String>,
    /// `Requires-Python`, as written.
    pub requires_python: Option<String>,
    /// Every `Provides-Extra`, as written.
    pub provides_extra: Vec<String>,
}

/// The header fields of a core metadata file (`METADATA`, `PKG-INFO`), in order, with folded
/// lines joined; the body after the first empty line is not read.
pub(crate) fn headers(bytes: &[u8]) -> Result<Vec<(&str, String)>, MetadataError> {
    let text = std::str::from_utf8(bytes).map_err(|e| MetadataError::NotUtf8(e.valid_up_to()))?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
                None => {
                    return Err(MetadataError::MalformedLine {
                        line: i + 1,
                        text: line.chars().take(80).collect(),
                    });
                }
            }
        }
        let Some((field, value)) = line.split_once(':') else {
            return Err(MetadataError::MalformedLine {
                line: i + 1,
                text: line.chars().take(80).collect(),
            });
        };
        headers.push((field.trim(), value.trim().to_string()));
    }

    Ok(headers)
}

impl WheelMetadata {
    /// Parses the bytes of a `METADATA` file.
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        let headers = headers(bytes)?;
        let mut metadata_version = None;
        let mut name = None;
        let mut version = None;
        let mut requires_python = None;
        let mut requires_dist = Vec::new();
        let mut provides_extra = Vec::new();
        for (field, value) in headers {
            let single = |slot: &mut Option<String>, field: &'static str| match slot {
                Some(first) => Err(MetadataError::DuplicateField {
                    field,
                    first: first.clone(),
                    second: value.clone(),
                }),
                None => {
                    *slot = Some(value.clone());
                    Ok(())
                }
            };
            if field.eq_ignore_ascii_case("Metadata-Version") {
                single(&mut metadata_version, "Metadata-Version")?;
            } else if field.eq_ignore_ascii_case("Name") {
                single(&mut name, "Name")?;
            } else if field.eq_ignore_ascii_case("Version") {
                single(&mut version, "Version")?;
            } else if field.eq_ignore_ascii_case("Requires-Python") {
                single(&mut requires_python, "Requires-Python")?;
            } else if field.eq_ignore_ascii_case("Requires-Dist") {
                requires_dist.push(value);
            } else if field.eq_ignore_ascii_case("Provides-Extra") {
                provides_extra.push(value);
            }
        }
        let name = name.ok_or(MetadataError::MissingField("Name"))?;
        let version = version.ok_or(MetadataError::MissingField("Version"))?;
        if name.is_empty() {
            return Err(MetadataError::EmptyField("Name"));
        }
        if version.is_empty() {
            return Err(MetadataError::EmptyField("Version"));
        }
        pep440_rs::Version::from_str(&version).map_err(|e| MetadataError::InvalidVersion {
            version: version.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            metadata_version,
            name,
            version,
            requires_dist,
            requires_python,
            provides_extra,
        })
    }

    /// The version, parsed (it is checked to parse when the metadata is read).
    pub fn parsed_version(&self) -> Option<pep440_rs::Version> {
        pep440_rs::Version::from_str(&self.version).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = concat!(
        "Metadata-Version: 2.1\r\n",
        "Name: Demo_Pkg\r\n",
        "Version: 1.0.post1\r\n",
        "Summary: A demo\r\n",
        "Requires-Python: >=3.8\r\n",
        "Requires-Dist: six (>=1.0)\r\n",
        "requires-dist: attrs ; extra == 'x'\r\n",
        "Provides-Extra: x\r\n",
        "Description: first\r\n",
        "        |second\r\n",
        "\r\n",
        "Name: not-a-header\r\n",
    );

    #[test]
    fn parses_fields_and_stops_at_the_body() {
        let m = WheelMetadata::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(m.metadata_version.as_deref(), Some("2.1"));
        assert_eq!(m.name, "Demo_Pkg");
        assert_eq!(m.version, "1.0.post1");
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(m.requires_dist, ["six (>=1.0)", "attrs ; extra == 'x'"]);
        assert_eq!(m.provides_extra, ["x"]);
        assert_eq!(m.parsed_version().unwrap().to_string(), "1.0.post1");
    }

    #[test]
    fn folded_lines_join() {
        let m =
            WheelMetadata::parse(b"Name: a\nVersion: 1\nRequires-Dist: b;\n  python_version<'4'\n")
                .unwrap();
        assert_eq!(m.requires_dist, ["b; python_version<'4'"]);
    }

    #[test]
    fn each_refusal_is_typed() {
        assert_eq!(
            WheelMetadata::parse(b"Version: 1\n").unwrap_err(),
            MetadataError::MissingField("Name")
        );
        assert_eq!(
            WheelMetadata::parse(b"Name: a\n").unwrap_err(),
            MetadataError::MissingField("Version")
        );
        assert_eq!(
            WheelMetadata::parse(b"Name: a\nName: b\nVersion: 1\n").unwrap_err(),
            MetadataError::DuplicateField {
                field: "Name",
                first: "a".into(),
                second: "b".into()
            }
        );
        assert_eq!(
            WheelMetadata::parse(b"Name:\nVersion: 1\n").unwrap_err(),
            MetadataError::EmptyField("Name")
        );
        assert!(matches!(
            WheelMetadata::parse(b"Name: a\nVersion: one\n").unwrap_err(),
            MetadataError::InvalidVersion { .. }
        ));
        assert_eq!(
            WheelMetadata::parse(b"Name: a\nno colon here\n").unwrap_err(),
            MetadataError::MalformedLine {
                line: 2,
                text: "no colon here".into()
            }
        );
        assert_eq!(
            WheelMetadata::parse(b" Name: a\n").unwrap_err(),
            MetadataError::MalformedLine {
                line: 1,
                text: " Name: a".into()
            }
        );
        assert_eq!(
            WheelMetadata::parse(b"Name: \xff\n").unwrap_err(),
            MetadataError::NotUtf8(6)
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = WheelMetadata::parse(&bytes);
        }

        /// Written fields come back as written, whatever else surrounds them.
        #[test]
        fn round_trips_written_fields(
            name in "[A-Za-z][A-Za-z0-9._-]{0,20}",
            version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
            reqs in proptest::collection::vec("[a-z]{1,8}( *\\(>=[0-9]\\))?", 0..5),
        ) {
            let mut text = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
            for r in &reqs {
                text.push_str(&format!("Requires-Dist: {r}\n"));
            }
            text.push_str("\nbody: ignored\n");
            let m = WheelMetadata::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(m.name, name);
            prop_assert_eq!(m.version, version);
            prop_assert_eq!(m.requires_dist, reqs);
        }
    }
}
