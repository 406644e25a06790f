//! Reading a `pylock.toml` written for many environments (by uv, pip or dx-py) as the lock of
//! one interpreter, as PEP 751 asks of installers: the package entries whose `marker` holds for
//! the interpreter, and of each the wheel whose tags fit it best.
use std::path::Path;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerTree};

use crate::dpl::{DplFileError, Lock, LockedWheel, PylockDocument, PylockError, PylockSelector};
use crate::python::Interpreter;
use crate::wheel::WheelFilename;

/// Why a pylock.toml does not give a lock for the interpreter.
#[derive(Debug, thiserror::Error)]
pub enum PylockSelectError {
    /// The file is unreadable or not a valid pylock.toml.
    #[error(transparent)]
    File(#[from] DplFileError),
    /// A package's `marker` does not parse.
    #[error("Invalid marker `{marker}` of package `{package}` in `{}`", path.display())]
    Marker {
        /// The lock file.
        path: std::path::PathBuf,
        /// The package.
        package: String,
        /// The marker as written.
        marker: String,
        /// The parser's message.
        reason: String,
    },
    /// The lock's `requires-python` excludes the interpreter.
    #[error(
        "`{}` requires Python {requires}, but the interpreter is {version}; use another interpreter (`--python`) or re-lock",
        path.display()
    )]
    RequiresPython {
        /// The lock file.
        path: std::path::PathBuf,
        /// The lock's `requires-python`.
        requires: String,
        /// The interpreter's version.
        version: String,
    },
    /// None of a package's wheels fits the interpreter.
    #[error(
        "No wheel of `{package}` in `{}` fits this interpreter ({environment}): it lists {count}; re-lock for this interpreter",
        path.display()
    )]
    NoFittingWheel {
        /// The lock file.
        path: std::path::PathBuf,
        /// The package.
        package: String,
        /// How many wheels it lists.
        count: usize,
        /// The interpreter's tag.
        environment: String,
    },
}

/// Keeps the entries whose marker holds for an interpreter and picks each one's best wheel.
struct ForInterpreter<'a> {
    interp: &'a Interpreter,
    env: MarkerEnvironment,
    /// The first marker that failed to parse: (package, marker, reason).
    bad_marker: Option<(String, String, String)>,
    /// Packages none of whose wheels fit.
    no_fit: Option<String>,
}

impl PylockSelector for ForInterpreter<'_> {
    fn applies(&mut self, name: &str, _version: &str, marker: Option<&str>) -> bool {
        let Some(text) = marker else {
            return true;
        };
        match MarkerTree::from_str(text) {
            Ok(tree) => tree.evaluate(&self.env, &[]),
            Err(e) => {
                self.bad_marker
                    .get_or_insert_with(|| (name.to_owned(), text.to_owned(), e.to_string()));
                false
            }
        }
    }

    fn choose_wheel(&mut self, name: &str, wheels: &[LockedWheel]) -> Option<usize> {
        let best = wheels
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let parsed = WheelFilename::parse(&w.filename).ok()?;
                Some((self.interp.tag_priority(&parsed.tags)?, i))
            })
            .min()
            .map(|(_, i)| i);
        if best.is_none() {
            self.no_fit.get_or_insert_with(|| name.to_owned());
        }
        best
    }
}

/// Reads the pylock.toml at `path` as the lock for `interp` (see the module docs). A lock that
/// dx-py wrote for one environment reads as it was written.
pub fn read_pylock_for(path: &Path, interp: &Interpreter) -> Result<Lock, PylockSelectError> {
    let text = fs_err::read_to_string(path).map_err(|source| DplFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let pylock_err = |source| DplFileError::Pylock {
        path: path.to_path_buf(),
        source,
    };
    let document = PylockDocument::parse(&text).map_err(pylock_err)?;
    // Checked first: a lock for other Pythons has no wheel for this one either, and saying
    // which Pythons it is for is the clearer message.
    let version = interp.version().to_string();
    if let Some(requires) = document.requires_python().map(str::to_owned)
        && !super::selected::admits(&requires, &version)
    {
        return Err(PylockSelectError::RequiresPython {
            path: path.to_path_buf(),
            requires,
            version,
        });
    }
    let mut selector = ForInterpreter {
        interp,
        env: interp.marker_env(),
        bad_marker: None,
        no_fit: None,
    };
    let read = document.to_lock(&mut selector);
    if let Some((package, marker, reason)) = selector.bad_marker {
        return Err(PylockSelectError::Marker {
            path: path.to_path_buf(),
            package,
            marker,
            reason,
        });
    }
    let mut lock = match read {
        Ok(lock) => lock,
        Err(PylockError::AmbiguousWheel { package, count }) if selector.no_fit.is_some() => {
            return Err(PylockSelectError::NoFittingWheel {
                path: path.to_path_buf(),
                package,
                count,
                environment: interp.tag(),
            });
        }
        Err(source) => return Err(pylock_err(source).into()),
    };
    if let Some(dir) = path.parent() {
        super::directory_versions(&mut lock, dir);
    }
    if lock.meta.environment.is_empty() {
        // Chosen for this interpreter now: record it, so that the DPL made from it says so.
        lock.meta.environment = interp.tag();
        lock.meta.python_version = interp.version().to_string();
    }
    Ok(lock)
}
