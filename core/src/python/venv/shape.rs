//! [`VenvShape`]: where a venv for one interpreter keeps its packages, scripts and interpreter
//! links. Venvs written to disk ([`super::create_venv`]), layouts pointed at from a venv, and
//! venvs served as a tree (FUSE mounts, `fs-windows`) all take their paths from it, so that a
//! free-threaded `3.13t` venv has its packages under `lib/python3.13t/` everywhere.
//!
//! ```text
//! POSIX                                  Windows
//! bin/  python python3 python3.13[t]     Scripts/
//! lib/python3.13[t]/site-packages/       Lib/site-packages/
//! include/site/python3.13[t]/<name>/     Include/site/python3.13[t]/<name>/
//! ```
use std::path::{Path, PathBuf};

use crate::python::interpreter::{Interpreter, PythonVersion};

/// The directories of a venv for one Python version and build, as `/`-separated paths relative
/// to the venv root.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VenvShape {
    major: u32,
    minor: u32,
    free_threaded: bool,
    windows: bool,
}

impl VenvShape {
    /// The shape of a venv of `interp` on this platform.
    pub fn of(interp: &Interpreter) -> Self {
        let info = interp.info();
        Self::new(info.version, info.gil_disabled)
    }

    /// The shape on this platform for Python `version`; `free_threaded` for builds without the
    /// GIL (`python3.13t`), whose `lib/` directory has a `t` suffix.
    pub fn new(version: PythonVersion, free_threaded: bool) -> Self {
        Self {
            major: version.major,
            minor: version.minor,
            free_threaded,
            windows: cfg!(windows),
        }
    }

    /// A POSIX venv of CPython `major.minor` with the GIL, whatever this platform is (trees
    /// built for Linux mounts, and tests).
    pub fn posix(major: u32, minor: u32) -> Self {
        Self {
            major,
            minor,
            free_threaded: false,
            windows: false,
        }
    }

    /// The same venv as laid out on Windows (for trees served by `fs-windows`, and tests).
    #[must_use]
    pub fn on_windows(self) -> Self {
        Self {
            windows: true,
            ..self
        }
    }

    /// `python3.13` or `python3.13t`: the name of the venv's `lib/` subdirectory and of the
    /// versioned interpreter link.
    fn versioned(&self) -> String {
        let t = if self.free_threaded { "t" } else { "" };
        format!("python{}.{}{t}", self.major, self.minor)
    }

    /// `lib/python3.13/site-packages` (`lib/python3.13t/…` free-threaded,
    /// `Lib/site-packages` on Windows).
    pub fn site_packages(&self) -> String {
        match self.windows {
            true => "Lib/site-packages".to_string(),
            false => format!("lib/{}/site-packages", self.versioned()),
        }
    }

    /// `bin` (`Scripts` on Windows): interpreter links, activation and console scripts.
    pub fn bin_dir(&self) -> &'static str {
        match self.windows {
            true => "Scripts",
            false => "bin",
        }
    }

    /// Where the C headers of the distribution `name` go, as pip installs them:
    /// `include/site/python3.13/<name>`.
    pub fn headers(&self, name: &str) -> String {
        let include = if self.windows { "Include" } else { "include" };
        let t = if self.free_threaded { "t" } else { "" };
        format!(
            "{include}/site/python{}.{}{t}/{name}",
            self.major, self.minor
        )
    }

    /// The links to `python` in the bin directory besides `python` itself: `python3`,
    /// `python3.13` and, free-threaded, `python3.13t` (as `python -m venv` makes them).
    pub fn python_links(&self) -> Vec<String> {
        let mut names = vec![
            format!("python{}", self.major),
            format!("python{}.{}", self.major, self.minor),
        ];
        if self.free_threaded {
            names.push(self.versioned());
        }
        names
    }

    /// [`Self::site_packages`] inside the venv at `root`.
    pub fn site_packages_in(&self, root: &Path) -> PathBuf {
        root.join(self.site_packages())
    }

    /// [`Self::bin_dir`] inside the venv at `root`.
    pub fn bin_dir_in(&self, root: &Path) -> PathBuf {
        root.join(self.bin_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> PythonVersion {
        PythonVersion {
            major: 3,
            minor,
            patch: 1,
        }
    }

    #[test]
    fn a_free_threaded_venv_has_a_t_suffix_on_its_lib_dir() {
        let shape = VenvShape::new(v(13), true);
        if cfg!(windows) {
            assert_eq!(shape.site_packages(), "Lib/site-packages");
        } else {
            assert_eq!(shape.site_packages(), "lib/python3.13t/site-packages");
            assert_eq!(shape.headers("x"), "include/site/python3.13t/x");
        }
        assert_eq!(
            shape.python_links(),
            ["python3", "python3.13", "python3.13t"]
        );
        let plain = VenvShape::new(v(12), false);
        assert_eq!(plain.python_links(), ["python3", "python3.12"]);
        if !cfg!(windows) {
            assert_eq!(plain.site_packages(), "lib/python3.12/site-packages");
            assert_eq!(plain.bin_dir(), "bin");
        }
    }

    #[test]
    fn the_windows_shape_has_one_lib_dir_for_every_version() {
        let shape = VenvShape::new(v(13), true).on_windows();
        assert_eq!(shape.site_packages(), "Lib/site-packages");
        assert_eq!(shape.bin_dir(), "Scripts");
        assert_eq!(shape.headers("x"), "Include/site/python3.13t/x");
        assert_eq!(
            shape.site_packages_in(Path::new("v")),
            Path::new("v").join("Lib/site-packages")
        );
    }
}
