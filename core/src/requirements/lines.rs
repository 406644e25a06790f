//! The lexical layer of a requirements file: `\` continuations joined, comments removed,
//! `${VAR}` expanded, and `--option=value` split.

/// A `\`-joined, comment-free line and where it started.
pub(super) struct LogicalLine {
    /// 1-based number of its first physical line.
    pub(super) line: usize,
    /// The joined text.
    pub(super) text: String,
}

/// Joins continuation lines and strips comments (`#` at the start or after whitespace).
pub(super) fn logical_lines(content: &str) -> Vec<LogicalLine> {
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
pub(super) fn expand_env(text: &str) -> String {
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

/// `--opt=value` -> (`--opt`, Some(value)); `-rfile` -> (`-r`, Some(file)).
pub(super) fn split_option(token: &str) -> (&str, Option<&str>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_expand() {
        // Cargo sets this variable for test runs.
        assert_eq!(
            expand_env("https://u:${CARGO_PKG_NAME}@h.invalid/${lower}"),
            "https://u:dx-py-core@h.invalid/${lower}"
        );
        assert_eq!(expand_env("${"), "${");
        assert_eq!(expand_env("a${NOPE_NOT_SET_123}b"), "a${NOPE_NOT_SET_123}b");
    }

    #[test]
    fn continuations_and_comments() {
        let lines = logical_lines("\u{feff}a \\\n  b # c\n#x\n\nd#not-a-comment\n\\\n");
        let got: Vec<(usize, &str)> = lines.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(got, [(1, "a b"), (5, "d#not-a-comment")]);
    }

    #[test]
    fn options_split() {
        assert_eq!(
            split_option("--index-url=x=y"),
            ("--index-url", Some("x=y"))
        );
        assert_eq!(split_option("-rfile.txt"), ("-r", Some("file.txt")));
        assert_eq!(split_option("-c=c.txt"), ("-c", Some("c.txt")));
        assert_eq!(split_option("-e"), ("-e", None));
    }
}
