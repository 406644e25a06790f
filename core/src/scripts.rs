//! Script launchers that work from any venv: no venv path is baked in.
//!
//! A launcher is a `/bin/sh` script that execs the `python` next to the path it was run as; the
//! same bytes are valid Python, because `'''exec' …` opens a string that the third line closes.
//! So one launcher file can be shared by every layout and every venv.

const TRAMPOLINE: &str =
    "#!/bin/sh\n'''exec' \"$(dirname -- \"$0\")/python\" \"$0\" \"$@\"\n' '''\n";

/// If `script` starts with `#!python` (or `#!pythonw`), returns it with that line replaced by the
/// trampoline; otherwise `None` (the script is kept as it is).
pub fn rewrite_shebang(script: &[u8]) -> Option<Vec<u8>> {
    let rest = script.strip_prefix(b"#!python")?;
    let line_end = rest
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |i| i + 1);
    let first = &rest[..line_end];
    // Only `#!python`, `#!pythonw`, maybe with trailing args/whitespace.
    if !(first.is_empty() || first[0] == b'w' || first[0].is_ascii_whitespace()) {
        return None;
    }
    let mut out = TRAMPOLINE.as_bytes().to_vec();
    out.extend_from_slice(&rest[line_end..]);
    Some(out)
}

/// A console/GUI script launcher that runs `module:attr`.
pub fn launcher(module: &str, attr: Option<&str>) -> String {
    let (import, call) = match attr {
        Some(attr) => {
            let head = attr.split('.').next().unwrap_or(attr);
            (format!("from {module} import {head}"), attr.to_string())
        }
        None => (format!("import {module}"), module.to_string()),
    };
    format!(
        "{TRAMPOLINE}# -*- coding: utf-8 -*-\nimport re\nimport sys\n{import}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({call}())\n"
    )
}

/// The console and GUI script launchers a package's `entry_points.txt` asks for, as
/// `(file name in bin/, bytes)`. A package without entry points, or with an unreadable file,
/// gets none (pip refuses such wheels at install; conversion already checked the file).
pub fn launchers_for<B: AsRef<[u8]>>(
    package: &crate::dxpkg::DxpkgReader<B>,
) -> Vec<(String, Vec<u8>)> {
    let path = format!("{}/entry_points.txt", package.dist_info());
    match package.get_file(&path) {
        Ok(Some(entry)) => launchers_from(entry.data),
        _ => Vec::new(),
    }
}

/// The launchers an installed `entry_points.txt` with bytes `text` asks for (none when it
/// cannot be read), as [`launchers_for`] gives them.
pub fn launchers_from(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Vec::new();
    };
    let Ok(points) = crate::wheel::EntryPoints::parse(text) else {
        return Vec::new();
    };
    points
        .console_scripts
        .iter()
        .chain(&points.gui_scripts)
        .map(|ep| {
            (
                ep.name.clone(),
                launcher(&ep.module, ep.attr.as_deref()).into_bytes(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_python_shebangs() {
        let out = rewrite_shebang(b"#!python\nprint(1)\n").unwrap();
        assert!(out.starts_with(b"#!/bin/sh\n"));
        assert!(out.ends_with(b"' '''\nprint(1)\n"));
        assert!(rewrite_shebang(b"#!/usr/bin/env bash\necho\n").is_none());
        assert!(rewrite_shebang(b"#!python3.11-config\n").is_none());
        assert!(rewrite_shebang(b"#!pythonw\nx\n").is_some());
    }

    #[test]
    fn launcher_imports_the_head_of_a_dotted_attr() {
        let l = launcher("pkg.cli", Some("App.main"));
        assert!(l.contains("from pkg.cli import App\n"));
        assert!(l.contains("sys.exit(App.main())"));
    }
}
