//! Where a source's pyc goes, and which interpreters can make unchecked-hash pycs.
use super::BytecodeError;
use crate::python::interpreter::Interpreter;

/// A compiled file: its pyc path relative to site-packages and the pyc bytes.
pub type Pyc = (String, Vec<u8>);

/// The cache tag of an interpreter that can compile unchecked-hash pycs (3.7 or newer).
pub(super) fn checked_cache_tag(interp: &Interpreter) -> Result<String, BytecodeError> {
    let info = interp.info();
    if (info.version.major, info.version.minor) < (3, 7) {
        return Err(BytecodeError::Unsupported {
            path: interp.path().to_path_buf(),
            version: info.version.to_string(),
        });
    }
    info.cache_tag
        .clone()
        .ok_or_else(|| BytecodeError::NoCacheTag {
            path: interp.path().to_path_buf(),
        })
}

/// `pkg/mod.py` -> `pkg/__pycache__/mod.{tag}.pyc` (`importlib.util.cache_from_source`);
/// `None` for non-`.py`, absolute or `..` paths.
pub(super) fn pyc_path(name: &str, cache_tag: &str) -> Option<String> {
    let stem_path = name.strip_suffix(".py")?;
    if name.starts_with('/') || name.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    let (dir, stem) = match stem_path.rsplit_once('/') {
        Some((dir, stem)) => (format!("{dir}/"), stem),
        None => (String::new(), stem_path),
    };
    if stem.is_empty() {
        return None;
    }
    Some(format!("{dir}__pycache__/{stem}.{cache_tag}.pyc"))
}
