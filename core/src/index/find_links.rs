//! `--find-links DIR`: a flat directory of wheels and source distributions.
use std::path::Path;

use super::{IndexError, IndexFile, is_dist_filename};

/// Lists the wheels and source distributions directly in `dir` (not in subdirectories), sorted
/// by file name. URLs are `file://` URLs of the absolute paths; sizes come from the file
/// system; there are no hashes (the download is hashed instead).
pub fn scan(dir: &Path) -> Result<Vec<IndexFile>, IndexError> {
    let io = |source| IndexError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let absolute = std::path::absolute(dir).map_err(io)?;
    let mut out = Vec::new();
    for entry in fs_err::read_dir(&absolute).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(filename) = entry.file_name().into_string() else {
            continue;
        };
        if !is_dist_filename(&filename) {
            continue;
        }
        // Follows symlinks: a directory of links into a wheel cache is a fine find-links dir.
        let Ok(meta) = fs_err::metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let Ok(url) = url::Url::from_file_path(entry.path()) else {
            continue;
        };
        out.push(IndexFile {
            filename,
            url: url.into(),
            sha256: None,
            requires_python: None,
            yanked: false,
            yanked_reason: None,
            size: Some(meta.len()),
            core_metadata: None,
        });
    }
    out.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_distributions_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "foo-1.0-py3-none-any.whl",
            "foo-1.0.tar.gz",
            "README.txt",
            "bar-2.0.zip",
        ] {
            fs_err::write(dir.path().join(name), b"abc").unwrap();
        }
        fs_err::create_dir(dir.path().join("baz-1.0-py3-none-any.whl")).unwrap();
        let files = scan(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            ["bar-2.0.zip", "foo-1.0-py3-none-any.whl", "foo-1.0.tar.gz"]
        );
        assert_eq!(files[0].size, Some(3));
        let path = url::Url::parse(&files[1].url)
            .unwrap()
            .to_file_path()
            .unwrap();
        assert_eq!(path, dir.path().join("foo-1.0-py3-none-any.whl"));
    }

    #[test]
    fn missing_dir_is_an_error_naming_it() {
        let e = scan(Path::new("/nonexistent/wheels")).unwrap_err();
        assert_eq!(e.to_string(), "Failed to read `/nonexistent/wheels`");
    }
}
