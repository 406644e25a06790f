//! `RECORD`: the CSV list of `path,algorithm=urlsafe-b64-digest,size` lines that a wheel ships and
//! an installed distribution keeps (PEP 376, PEP 427).
use sha2::Digest;

/// A `RECORD` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Not UTF-8.
    #[error("RECORD is not valid UTF-8 (at byte {0})")]
    NotUtf8(usize),
    /// A quoted field runs to the end of the file.
    #[error("RECORD line {line}: unterminated quoted field")]
    UnterminatedQuote {
        /// 1-based line number where the field starts.
        line: usize,
    },
    /// A row without exactly three fields.
    #[error("RECORD line {line}: expected 3 fields (path, hash, size), got {got}")]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// Fields found.
        got: usize,
    },
    /// A row with an empty path.
    #[error("RECORD line {line}: empty path")]
    EmptyPath {
        /// 1-based line number.
        line: usize,
    },
    /// A hash that is not `algorithm=digest`.
    #[error("RECORD line {line}: hash `{text}` is not `sha256=<urlsafe base64 digest>`")]
    BadHash {
        /// 1-based line number.
        line: usize,
        /// The field given.
        text: String,
    },
    /// A hash algorithm weaker than sha256, or unknown.
    #[error(
        "RECORD line {line}: hash algorithm `{algorithm}` is not allowed (use sha256, sha384 or sha512)"
    )]
    WeakHash {
        /// 1-based line number.
        line: usize,
        /// The algorithm named.
        algorithm: String,
    },
    /// A size that is not a decimal integer.
    #[error("RECORD line {line}: size `{text}` is not a decimal integer")]
    BadSize {
        /// 1-based line number.
        line: usize,
        /// The field given.
        text: String,
    },
}

/// A hash algorithm RECORD may use: sha256 "or better" (PEP 427).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordHashAlgorithm {
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl RecordHashAlgorithm {
    /// The digest of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(bytes).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
        }
    }

    /// The name RECORD uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// A decoded hash of a RECORD row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordHash {
    /// The algorithm.
    pub algorithm: RecordHashAlgorithm,
    /// The raw digest bytes.
    pub digest: Vec<u8>,
}

/// One RECORD row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    /// 1-based line number where the row starts.
    pub line: usize,
    /// The path, `/`-separated, relative to the wheel root (or site-packages once installed).
    pub path: String,
    /// The hash, when given.
    pub hash: Option<RecordHash>,
    /// The size in bytes, when given.
    pub size: Option<u64>,
}

/// Splits CSV text into rows of fields (RFC 4180 quoting, `\n` or `\r\n` line ends), with the
/// 1-based line each row starts on. Empty lines are skipped.
fn csv_rows(text: &str) -> Result<Vec<(usize, Vec<String>)>, RecordError> {
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut in_quotes = false;
    let mut quote_line = 0;
    let mut row_has_content = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                quote_line = line;
                row_has_content = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                row_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row_has_content {
                    fields.push(std::mem::take(&mut field));
                    rows.push((row_line, std::mem::take(&mut fields)));
                }
                row_has_content = false;
                line += 1;
                row_line = line;
            }
            _ => {
                field.push(c);
                row_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err(RecordError::UnterminatedQuote { line: quote_line });
    }
    if row_has_content {
        fields.push(field);
        rows.push((row_line, fields));
    }
    Ok(rows)
}

fn parse_hash(line: usize, text: &str) -> Result<Option<RecordHash>, RecordError> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || RecordError::BadHash {
        line,
        text: text.chars().take(120).collect(),
    };
    let (algorithm, digest) = text.split_once('=').ok_or_else(bad)?;
    let algorithm = match algorithm {
        "sha256" => RecordHashAlgorithm::Sha256,
        "sha384" => RecordHashAlgorithm::Sha384,
        "sha512" => RecordHashAlgorithm::Sha512,
        other => {
            return Err(RecordError::WeakHash {
                line,
                algorithm: other.chars().take(40).collect(),
            });
        }
    };
    // Some writers keep the base64 padding; it carries no information.
    let digest = data_encoding::BASE64URL_NOPAD
        .decode(digest.trim_end_matches('=').as_bytes())
        .map_err(|_| bad())?;
    if digest.len() != algorithm.digest_len() {
        return Err(bad());
    }
    Ok(Some(RecordHash { algorithm, digest }))
}

/// Parses the bytes of a RECORD file.
pub fn parse_record(bytes: &[u8]) -> Result<Vec<RecordEntry>, RecordError> {
    let text = std::str::from_utf8(bytes).map_err(|e| RecordError::NotUtf8(e.valid_up_to()))?;
    let mut out = Vec::new();
    for (line, fields) in csv_rows(text)? {
        let [path, hash, size] = <[String; 3]>::try_from(fields)
            .map_err(|f| RecordError::FieldCount { line, got: f.len() })?;
        if path.is_empty() {
            return Err(RecordError::EmptyPath { line });
        }
        let hash = parse_hash(line, &hash)?;
        let size = if size.is_empty() {
            None
        } else {
            Some(size.parse::<u64>().map_err(|_| RecordError::BadSize {
                line,
                text: size.chars().take(40).collect(),
            })?)
        };
        out.push(RecordEntry {
            line,
            path,
            hash,
            size,
        });
    }
    Ok(out)
}

fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Writes RECORD rows `(path, Some(sha256 digest of the content), size)` or `(path, None, _)`
/// for an unhashed row, sorted by path, one `\n`-terminated line each.
pub fn write_record(rows: &[(String, Option<(String, u64)>)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, Option<(String, u64)>)> = rows.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (path, hash) in sorted {
        push_csv_field(&mut out, path);
        match hash {
            Some((digest, size)) => {
                out.push_str(",sha256=");
                out.push_str(digest);
                out.push(',');
                out.push_str(&size.to_string());
            }
            None => out.push_str(",,"),
        }
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256_record;
    use proptest::prelude::*;

    #[test]
    fn parses_rows() {
        let h = sha256_record(b"x");
        let text = format!(
            "a/b.py,sha256={h},1\r\n\"we,ird\"\"name\",sha256={h}=,1\n\ndemo-1.dist-info/RECORD,,\n"
        );
        let rows = parse_record(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].path, "a/b.py");
        assert_eq!(rows[0].size, Some(1));
        assert_eq!(
            rows[0].hash.as_ref().unwrap().digest,
            RecordHashAlgorithm::Sha256.digest(b"x")
        );
        assert_eq!(rows[1].path, "we,ird\"name");
        assert_eq!(rows[1].line, 2);
        assert_eq!(rows[2].line, 4);
        assert_eq!(rows[2].hash, None);
        assert_eq!(rows[2].size, None);
    }

    #[test]
    fn each_refusal_is_typed() {
        assert_eq!(
            parse_record(b"a,b\n").unwrap_err(),
            RecordError::FieldCount { line: 1, got: 2 }
        );
        assert_eq!(
            parse_record(b"a,,\n\"b,,\n").unwrap_err(),
            RecordError::UnterminatedQuote { line: 2 }
        );
        assert_eq!(
            parse_record(b",,\n").unwrap_err(),
            RecordError::EmptyPath { line: 1 }
        );
        assert!(matches!(
            parse_record(b"a,sha256=!!,1\n").unwrap_err(),
            RecordError::BadHash { line: 1, .. }
        ));
        assert!(matches!(
            parse_record(b"a,sha256=AAAA,1\n").unwrap_err(),
            RecordError::BadHash { line: 1, .. }
        ));
        assert!(matches!(
            parse_record(b"a,md5=AAAA,1\n").unwrap_err(),
            RecordError::WeakHash { line: 1, .. }
        ));
        assert!(matches!(
            parse_record(b"a,,-1\n").unwrap_err(),
            RecordError::BadSize { line: 1, .. }
        ));
        assert_eq!(parse_record(b"\xff").unwrap_err(), RecordError::NotUtf8(0));
    }

    proptest! {
        /// What `write_record` writes, `parse_record` reads back.
        #[test]
        fn write_then_parse(rows in proptest::collection::btree_map(
            "[a-z,\" \n]{1,12}", proptest::option::of((any::<Vec<u8>>(), 0u64..1_000_000)), 0..10,
        )) {
            let rows: Vec<(String, Option<(String, u64)>)> = rows
                .into_iter()
                .map(|(p, h)| (p, h.map(|(d, s)| (sha256_record(&d), s))))
                .collect();
            let parsed = parse_record(&write_record(&rows)).unwrap();
            prop_assert_eq!(parsed.len(), rows.len());
            for (row, (path, hash)) in parsed.iter().zip(&rows) {
                prop_assert_eq!(&row.path, path);
                prop_assert_eq!(row.size, hash.as_ref().map(|h| h.1));
                prop_assert_eq!(
                    row.hash.as_ref().map(|h| data_encoding::BASE64URL_NOPAD.encode(&h.digest)),
                    hash.as_ref().map(|h| h.0.clone())
                );
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_record(&bytes);
        }
    }
}
