//! Creating venvs (what `python -m venv --without-pip` makes, with fewer files) and reading them
//! back.
//!
//! Each file created costs up to a millisecond on the machines dx-py targets, so a venv is only
//! what an interpreter and the shells need: `pyvenv.cfg`, three interpreter links, three
//! activation scripts, the `site-packages` directory and the `lib64` link (see the tree in the
//! [module docs](super)). No `include/`, no `Activate.ps1`, no `.gitignore`.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::interpreter::{Interpreter, PythonVersion};

mod shape;
pub use shape::VenvShape;

/// Choices for [`create_venv`].
#[derive(Clone, Debug, Default)]
pub struct VenvOptions {
    /// The prompt prefix shown by the activation scripts; the venv directory's name when `None`.
    pub prompt: Option<String>,
    /// Let the venv see the base interpreter's site-packages
    /// (`include-system-site-packages = true`).
    pub system_site_packages: bool,
    /// Leave out the `site-packages` directory itself (its parent is made): for an installer that
    /// links a ready site-packages there next, which saves making and removing a directory.
    pub without_site_packages: bool,
    /// What to do with a venv already at the path.
    pub existing: ExistingVenv,
}

/// What [`create_venv`] does with a venv (a directory with a `pyvenv.cfg`) already at its path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExistingVenv {
    /// Refuse ([`VenvError::Exists`]): replacing it loses whatever was installed there, so a
    /// user asks for it (`dx-py venv --clear`, as uv does).
    #[default]
    Refuse,
    /// Clear its contents and create the venv afresh (an installer making a venv match a lock).
    Clear,
}

/// A venv on disk, as described by its `pyvenv.cfg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Venv {
    root: PathBuf,
    version: PythonVersion,
    implementation: Option<String>,
    home: Option<PathBuf>,
    include_system_site_packages: bool,
    prompt: Option<String>,
    site_packages: PathBuf,
}

/// A venv that could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum VenvError {
    /// Something that is not a venv is in the way.
    #[error(
        "Refusing to create a venv at `{}`: it {reason}; remove it or choose another path",
        path.display()
    )]
    Occupied {
        /// The path asked for.
        path: PathBuf,
        /// What is there.
        reason: &'static str,
    },
    /// A venv is there already and [`ExistingVenv::Refuse`] was asked for.
    #[error(
        "A venv already exists at `{}`; pass `--clear` to replace it (what is installed in it is lost)",
        path.display()
    )]
    Exists {
        /// The venv.
        path: PathBuf,
    },
    /// The directory has no `pyvenv.cfg`.
    #[error("`{}` is not a venv: no `pyvenv.cfg` in it", path.display())]
    NotAVenv {
        /// The directory.
        path: PathBuf,
    },
    /// `pyvenv.cfg` lacks a usable `version` (or `version_info`).
    #[error("Invalid `{}`: {reason}", path.display())]
    BadConfig {
        /// The `pyvenv.cfg` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The path cannot be written into the activation scripts.
    #[error("Cannot create a venv at `{}`: {reason}", path.display())]
    UnsupportedPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Creates a venv for `interp` at `path`, filling an empty directory or, as `opts.existing`
/// says, replacing an existing venv (a directory with a `pyvenv.cfg`); anything else there is
/// refused.
///
/// `bin/python` links to the interpreter's base executable (outside any venv, pyenv shims
/// resolved), `python3` and `python3.X` link to `python`.
pub fn create_venv(
    interp: &Interpreter,
    path: &Path,
    opts: &VenvOptions,
) -> Result<Venv, VenvError> {
    let root = std::path::absolute(path)?;
    let root_str = root.to_str().ok_or(VenvError::UnsupportedPath {
        path: root.clone(),
        reason: "the path is not valid UTF-8",
    })?;
    if root_str.chars().any(char::is_control) {
        return Err(VenvError::UnsupportedPath {
            path: root.clone(),
            reason: "the path contains control characters",
        });
    }
    prepare_directory(&root, opts.existing)?;

    let info = interp.info();
    let version = info.version;
    let prompt = match &opts.prompt {
        Some(p) => p.clone(),
        None => root
            .file_name()
            .map_or_else(|| "venv".to_string(), |n| n.to_string_lossy().into_owned()),
    };
    if prompt.chars().any(char::is_control) {
        return Err(VenvError::UnsupportedPath {
            path: root.clone(),
            reason: "the prompt contains control characters",
        });
    }

    let base = interp.base_executable();
    fs_err::write(
        root.join("pyvenv.cfg"),
        pyvenv_cfg(
            interp,
            &root,
            opts.system_site_packages,
            opts.prompt.as_deref(),
        ),
    )?;

    let shape = VenvShape::of(interp);
    let bin = shape.bin_dir_in(&root);
    fs_err::create_dir(&bin)?;
    symlink(base, &bin.join("python"))?;
    for name in shape.python_links() {
        symlink(Path::new("python"), &bin.join(name))?;
    }
    fs_err::write(bin.join("activate"), activate_sh(root_str, &prompt))?;
    fs_err::write(bin.join("activate.fish"), activate_fish(root_str, &prompt))?;
    fs_err::write(bin.join("activate.csh"), activate_csh(root_str, &prompt))?;

    let purelib = root.join(&info.scheme.purelib);
    if opts.without_site_packages {
        make_dirs(&root, purelib.parent().unwrap_or(&root))?;
    } else {
        make_dirs(&root, &purelib)?;
    }
    if cfg!(all(unix, not(target_os = "macos"))) && info.pointer_bits == 64 {
        symlink(Path::new("lib"), &root.join("lib64"))?;
    }
    let platlib = root.join(&info.scheme.platlib);
    if platlib != purelib && !opts.without_site_packages {
        make_dirs(&root, &platlib)?;
    }
    Ok(Venv {
        root,
        version,
        implementation: Some(info.markers.platform_python_implementation.clone()),
        home: base.parent().map(Path::to_path_buf),
        include_system_site_packages: opts.system_site_packages,
        prompt: opts.prompt.clone(),
        site_packages: purelib,
    })
}

/// Makes `dir` and the directories between it and `root` (which exists), top down: in a new venv
/// none exists yet, so each is one `mkdir` (`create_dir_all` tries the deepest first and fails
/// its way up).
fn make_dirs(root: &Path, dir: &Path) -> std::io::Result<()> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return fs_err::create_dir_all(dir);
    };
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match fs_err::create_dir(&at) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && at.is_dir() => {}
            other => other?,
        }
    }
    Ok(())
}

/// The text files of a venv at `root` (`pyvenv.cfg` and the activation scripts), as
/// `(path relative to root, contents)`, for venvs that are served rather than written (a FUSE
/// mount). The same bytes [`create_venv`] writes.
pub fn venv_text_files(
    interp: &Interpreter,
    root: &Path,
    opts: &VenvOptions,
) -> Vec<(String, String)> {
    let root_str = root.to_string_lossy();
    let bin = VenvShape::of(interp).bin_dir();
    let prompt = opts.prompt.clone().unwrap_or_else(|| {
        root.file_name()
            .map_or_else(|| "venv".to_string(), |n| n.to_string_lossy().into_owned())
    });
    vec![
        (
            "pyvenv.cfg".to_string(),
            pyvenv_cfg(
                interp,
                root,
                opts.system_site_packages,
                opts.prompt.as_deref(),
            ),
        ),
        (format!("{bin}/activate"), activate_sh(&root_str, &prompt)),
        (
            format!("{bin}/activate.fish"),
            activate_fish(&root_str, &prompt),
        ),
        (
            format!("{bin}/activate.csh"),
            activate_csh(&root_str, &prompt),
        ),
    ]
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    fs_err::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    if target.is_dir() || link.file_name() == Some("lib64".as_ref()) {
        fs_err::os::windows::fs::symlink_dir(target, link)
    } else {
        fs_err::os::windows::fs::symlink_file(target, link)
    }
}

/// Makes `root` an empty directory: creates it, keeps it when empty, clears it when it is a venv
/// and `existing` allows it.
fn prepare_directory(root: &Path, existing: ExistingVenv) -> Result<(), VenvError> {
    let occupied = |reason| VenvError::Occupied {
        path: root.to_path_buf(),
        reason,
    };
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs_err::create_dir_all(root)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
        Ok(meta) if !meta.is_dir() => return Err(occupied("is not a directory")),
        Ok(_) => {}
    }
    let mut entries = fs_err::read_dir(root)?.peekable();
    if entries.peek().is_none() {
        return Ok(());
    }
    if !root.join("pyvenv.cfg").is_file() {
        return Err(occupied("is a non-empty directory without `pyvenv.cfg`"));
    }
    if existing == ExistingVenv::Refuse {
        return Err(VenvError::Exists {
            path: root.to_path_buf(),
        });
    }
    // Clear the contents rather than the directory itself, so that a symlink to the venv,
    // the directory's permissions and a shell sitting in it survive.
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs_err::remove_dir_all(&path)?;
        } else {
            fs_err::remove_file(&path)?;
        }
    }
    Ok(())
}

fn pyvenv_cfg(interp: &Interpreter, root: &Path, system: bool, prompt: Option<&str>) -> String {
    let info = interp.info();
    let base = interp.base_executable();
    let home = base.parent().unwrap_or(Path::new(""));
    let executable = fs_err::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let mut cfg = String::new();
    let _ = writeln!(cfg, "home = {}", home.display());
    let _ = writeln!(
        cfg,
        "implementation = {}",
        info.markers.platform_python_implementation
    );
    let _ = writeln!(cfg, "version = {}", info.version);
    let _ = writeln!(cfg, "include-system-site-packages = {system}");
    let _ = writeln!(cfg, "executable = {}", executable.display());
    let _ = writeln!(
        cfg,
        "command = {} -m venv --without-pip {}",
        base.display(),
        root.display()
    );
    let _ = writeln!(cfg, "dx-py = {}", env!("CARGO_PKG_VERSION"));
    if let Some(prompt) = prompt {
        let _ = writeln!(cfg, "prompt = {prompt}");
    }
    cfg
}

/// A POSIX-shell word for `s`: single quotes, with `'` written as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A fish word for `s`: single quotes, in which only `\\` and `\'` are escapes.
fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// A csh word for `s`: single quotes, `'` closed and escaped, and `!` escaped because history
/// substitution happens even inside single quotes.
fn csh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''").replace('!', r"\!"))
}

/// bash/zsh: `source bin/activate`.
fn activate_sh(root: &str, prompt: &str) -> String {
    const TEMPLATE: &str = r#"# Source this file from bash or zsh (`source bin/activate`); it cannot be run on its own.
# `deactivate` puts the shell back as it was.

deactivate () {
    if [ -n "${_DX_OLD_PATH+set}" ]; then
        PATH="$_DX_OLD_PATH"
        export PATH
        unset _DX_OLD_PATH
    fi
    if [ -n "${_DX_OLD_PYTHONHOME+set}" ]; then
        PYTHONHOME="$_DX_OLD_PYTHONHOME"
        export PYTHONHOME
        unset _DX_OLD_PYTHONHOME
    fi
    if [ -n "${_DX_OLD_PS1+set}" ]; then
        PS1="$_DX_OLD_PS1"
        export PS1
        unset _DX_OLD_PS1
    fi
    unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT
    hash -r 2>/dev/null
    if [ "${1:-}" != "nondestructive" ]; then
        unset -f deactivate
    fi
}

# Undo any venv activated before this one.
deactivate nondestructive

VIRTUAL_ENV=@ROOT@
VIRTUAL_ENV_PROMPT=@PROMPT@
export VIRTUAL_ENV VIRTUAL_ENV_PROMPT

_DX_OLD_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH

if [ -n "${PYTHONHOME+set}" ]; then
    _DX_OLD_PYTHONHOME="$PYTHONHOME"
    unset PYTHONHOME
fi

if [ -z "${VIRTUAL_ENV_DISABLE_PROMPT:-}" ]; then
    _DX_OLD_PS1="${PS1-}"
    PS1="($VIRTUAL_ENV_PROMPT) ${PS1-}"
    export PS1
fi

hash -r 2>/dev/null
"#;
    TEMPLATE
        .replace("@ROOT@", &sh_quote(root))
        .replace("@PROMPT@", &sh_quote(prompt))
}

/// fish: `source bin/activate.fish`.
fn activate_fish(root: &str, prompt: &str) -> String {
    const TEMPLATE: &str = r#"# Source this file from fish (`source bin/activate.fish`); `deactivate` undoes it.

function deactivate --description 'Leave the venv'
    if set -q _DX_OLD_PATH
        set -gx PATH $_DX_OLD_PATH
        set -e _DX_OLD_PATH
    end
    if set -q _DX_OLD_PYTHONHOME
        set -gx PYTHONHOME $_DX_OLD_PYTHONHOME
        set -e _DX_OLD_PYTHONHOME
    end
    if functions -q _dx_old_fish_prompt
        functions -e fish_prompt
        functions -c _dx_old_fish_prompt fish_prompt
        functions -e _dx_old_fish_prompt
    end
    set -e VIRTUAL_ENV
    set -e VIRTUAL_ENV_PROMPT
    if test "$argv[1]" != nondestructive
        functions -e deactivate
    end
end

# Undo any venv activated before this one.
deactivate nondestructive

set -gx VIRTUAL_ENV @ROOT@
set -gx VIRTUAL_ENV_PROMPT @PROMPT@
set -gx _DX_OLD_PATH $PATH
set -gx PATH "$VIRTUAL_ENV/bin" $PATH

if set -q PYTHONHOME
    set -gx _DX_OLD_PYTHONHOME $PYTHONHOME
    set -e PYTHONHOME
end

if test -z "$VIRTUAL_ENV_DISABLE_PROMPT"; and functions -q fish_prompt
    functions -c fish_prompt _dx_old_fish_prompt
    function fish_prompt
        # Keep $status for the original prompt, which may show it.
        set -l last_status $status
        printf '(%s) ' $VIRTUAL_ENV_PROMPT
        echo "exit $last_status" | source
        _dx_old_fish_prompt
    end
end
"#;
    TEMPLATE
        .replace("@ROOT@", &fish_quote(root))
        .replace("@PROMPT@", &fish_quote(prompt))
}

/// csh/tcsh: `source bin/activate.csh`.
fn activate_csh(root: &str, prompt: &str) -> String {
    const TEMPLATE: &str = r#"# Source this file from csh or tcsh (`source bin/activate.csh`); `deactivate` undoes it.

alias deactivate 'if ($?_DX_OLD_PATH) setenv PATH "$_DX_OLD_PATH"; unset _DX_OLD_PATH; if ($?_DX_OLD_PROMPT) set prompt="$_DX_OLD_PROMPT"; unset _DX_OLD_PROMPT; unsetenv VIRTUAL_ENV; unsetenv VIRTUAL_ENV_PROMPT; rehash; if ("\!:*" != "nondestructive") unalias deactivate'

# Undo any venv activated before this one.
deactivate nondestructive

setenv VIRTUAL_ENV @ROOT@
setenv VIRTUAL_ENV_PROMPT @PROMPT@
set _DX_OLD_PATH="$PATH"
setenv PATH "${VIRTUAL_ENV}/bin:${PATH}"

if ($?prompt && ! $?VIRTUAL_ENV_DISABLE_PROMPT) then
    set _DX_OLD_PROMPT="$prompt"
    set prompt="(${VIRTUAL_ENV_PROMPT}) $prompt"
endif

rehash
"#;
    TEMPLATE
        .replace("@ROOT@", &csh_quote(root))
        .replace("@PROMPT@", &csh_quote(prompt))
}

impl Venv {
    /// Reads the venv at `path` from its `pyvenv.cfg`.
    pub fn open(path: &Path) -> Result<Self, VenvError> {
        let root = std::path::absolute(path)?;
        let cfg_path = root.join("pyvenv.cfg");
        let text = match fs_err::read_to_string(&cfg_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VenvError::NotAVenv { path: root });
            }
            Err(e) => return Err(e.into()),
        };
        let bad = |reason: String| VenvError::BadConfig {
            path: cfg_path.clone(),
            reason,
        };
        let mut version = None;
        let mut implementation = None;
        let mut home = None;
        let mut system = false;
        let mut prompt = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match key.to_ascii_lowercase().as_str() {
                // `python -m venv` writes `version`, uv and virtualenv `version_info`.
                "version" | "version_info" if version.is_none() => {
                    version = Some(parse_version(value).ok_or_else(|| {
                        bad(format!("expected a version like `3.12.1`, got `{value}`"))
                    })?);
                }
                "implementation" => implementation = Some(value.to_string()),
                "home" => home = Some(PathBuf::from(value)),
                "include-system-site-packages" => system = value.eq_ignore_ascii_case("true"),
                "prompt" => prompt = Some(value.to_string()),
                _ => {}
            }
        }
        let version =
            version.ok_or_else(|| bad("expected a `version` or `version_info` key".into()))?;
        let site_packages = site_packages_of(&root, version);
        Ok(Self {
            root,
            version,
            implementation,
            home,
            include_system_site_packages: system,
            prompt,
            site_packages,
        })
    }

    /// The venv directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The Python version the venv was made for.
    pub fn version(&self) -> PythonVersion {
        self.version
    }

    /// The implementation named in `pyvenv.cfg` (`CPython`), when given.
    pub fn implementation(&self) -> Option<&str> {
        self.implementation.as_deref()
    }

    /// The directory of the base interpreter (`home`), when given.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// Whether the base interpreter's site-packages are visible too.
    pub fn include_system_site_packages(&self) -> bool {
        self.include_system_site_packages
    }

    /// The prompt written in `pyvenv.cfg`, when one was chosen.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    /// `lib/pythonX.Y/site-packages` (or `lib/pythonX.Yt/…` for a free-threaded venv).
    pub fn site_packages(&self) -> &Path {
        &self.site_packages
    }

    /// `bin` (`Scripts` on Windows): the interpreter links, activation and console scripts.
    pub fn bin_dir(&self) -> PathBuf {
        self.shape().bin_dir_in(&self.root)
    }

    /// The venv's shape; free-threaded when its `lib/python3.Yt` directory is the one there.
    pub fn shape(&self) -> VenvShape {
        let threaded = VenvShape::new(self.version, true);
        let free_threaded = threaded.site_packages_in(&self.root) == self.site_packages;
        VenvShape::new(self.version, free_threaded && !cfg!(windows))
    }

    /// The venv's `python`.
    pub fn python(&self) -> PathBuf {
        self.bin_dir().join(if cfg!(windows) {
            "python.exe"
        } else {
            "python"
        })
    }
}

/// `3.12.1`, `3.12.1.final.0`, `3.12` (patch 0).
fn parse_version(s: &str) -> Option<PythonVersion> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        None => 0,
        Some(p) => {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()?
        }
    };
    Some(PythonVersion {
        major,
        minor,
        patch,
    })
}

fn site_packages_of(root: &Path, v: PythonVersion) -> PathBuf {
    let plain = VenvShape::new(v, false).site_packages_in(root);
    let threaded = VenvShape::new(v, true).site_packages_in(root);
    if !plain.is_dir() && threaded.is_dir() {
        threaded
    } else {
        plain
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::python::interpreter::tests::pyenv_python;

    fn interp(minor: u32, cache: &Path) -> Option<Interpreter> {
        let python = pyenv_python(minor)?;
        Some(Interpreter::find(python.to_str(), cache).unwrap())
    }

    #[test]
    fn without_site_packages_leaves_only_its_parent() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(11, cache.path()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = VenvOptions {
            without_site_packages: true,
            ..VenvOptions::default()
        };
        let venv = create_venv(&interp, &dir.path().join("v"), &opts).unwrap();
        assert!(!venv.site_packages().exists());
        assert!(venv.site_packages().parent().unwrap().is_dir());
        assert_eq!(Venv::open(venv.root()).unwrap().version(), interp.version());
    }

    fn run(cmd: &mut Command) -> String {
        let out = cmd.env_remove("PYTHONHOME").output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn venvs_work_for_several_pythons() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut made = 0;
        for minor in [11, 12, 8, 13] {
            let Some(interp) = interp(minor, cache.path()) else {
                continue;
            };
            let path = dir.path().join(format!("venv with space '{minor}'"));
            let venv = create_venv(&interp, &path, &VenvOptions::default()).unwrap();
            let out = run(Command::new(venv.python()).args([
                "-c",
                "import sys, sysconfig; print(sys.prefix != sys.base_prefix); \
                 print(sysconfig.get_paths()['purelib'] in sys.path); print(sys.prefix)",
            ]));
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines[..2], ["True", "True"], "3.{minor}: {out}");
            assert_eq!(Path::new(lines[2]), venv.root());
            assert!(venv.site_packages().is_dir());
            let site = run(Command::new(venv.python())
                .args(["-c", "import site; print(site.getsitepackages()[0])"]));
            assert_eq!(Path::new(site.trim()), venv.site_packages(), "3.{minor}");

            // `source activate` puts the venv first on PATH; `deactivate` restores it.
            let script = r#"source "$1/bin/activate" && command -v python && echo "$VIRTUAL_ENV" && deactivate && echo "$PATH""#;
            let out = run(Command::new("bash")
                .args(["-c", script, "bash"])
                .arg(&path)
                .env("PATH", "/usr/bin:/bin"));
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(Path::new(lines[0]), venv.python());
            assert_eq!(Path::new(lines[1]), venv.root());
            assert_eq!(lines[2], "/usr/bin:/bin");

            let opened = Venv::open(&path).unwrap();
            assert_eq!(
                opened,
                Venv {
                    prompt: None,
                    ..venv
                }
            );
            assert_eq!(opened.version(), interp.version());
            made += 1;
        }
        eprintln!("made {made} venvs");
    }

    #[test]
    fn creates_only_the_listed_files() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(11, cache.path()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".venv");
        create_venv(&interp, &path, &VenvOptions::default()).unwrap();
        let mut found = Vec::new();
        let mut stack = vec![path.clone()];
        while let Some(d) = stack.pop() {
            for e in fs_err::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(&path).unwrap().display().to_string();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
                found.push(rel);
            }
        }
        found.sort();
        assert_eq!(
            found,
            [
                "bin",
                "bin/activate",
                "bin/activate.csh",
                "bin/activate.fish",
                "bin/python",
                "bin/python3",
                "bin/python3.11",
                "lib",
                "lib/python3.11",
                "lib/python3.11/site-packages",
                "lib64",
                "pyvenv.cfg",
            ]
        );
        let cfg = fs_err::read_to_string(path.join("pyvenv.cfg")).unwrap();
        assert!(
            cfg.contains("include-system-site-packages = false\n"),
            "{cfg}"
        );
        assert!(cfg.contains("implementation = CPython\n"), "{cfg}");
        assert!(cfg.contains("version = 3.11."), "{cfg}");
        assert_eq!(
            fs_err::read_link(path.join("bin/python")).unwrap(),
            interp.base_executable()
        );
        assert_eq!(
            fs_err::read_link(path.join("lib64")).unwrap(),
            Path::new("lib")
        );
    }

    #[test]
    fn replaces_venvs_and_empty_dirs_but_nothing_else() {
        let cache = tempfile::tempdir().unwrap();
        let Some(interp) = interp(11, cache.path()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = VenvOptions {
            prompt: Some("proj".into()),
            existing: ExistingVenv::Clear,
            ..VenvOptions::default()
        };

        let venv = dir.path().join("venv");
        create_venv(&interp, &venv, &opts).unwrap();
        fs_err::write(venv.join("lib/python3.11/site-packages/stale.py"), "").unwrap();
        // Not without being asked: what is installed there would be lost.
        let refuse = VenvOptions {
            existing: ExistingVenv::Refuse,
            ..opts.clone()
        };
        let err = create_venv(&interp, &venv, &refuse).unwrap_err();
        assert!(matches!(err, VenvError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("--clear"), "{err}");
        assert!(venv.join("lib/python3.11/site-packages/stale.py").exists());
        let again = create_venv(&interp, &venv, &opts).unwrap();
        assert!(!again.site_packages().join("stale.py").exists());
        assert_eq!(Venv::open(&venv).unwrap().prompt(), Some("proj"));

        let empty = dir.path().join("empty");
        fs_err::create_dir(&empty).unwrap();
        create_venv(&interp, &empty, &opts).unwrap();

        let project = dir.path().join("project");
        fs_err::create_dir(&project).unwrap();
        fs_err::write(project.join("main.py"), "").unwrap();
        let err = create_venv(&interp, &project, &opts).unwrap_err();
        assert!(matches!(err, VenvError::Occupied { .. }), "{err}");
        assert!(err.to_string().contains("without `pyvenv.cfg`"), "{err}");
        assert!(project.join("main.py").exists());

        let file = dir.path().join("file");
        fs_err::write(&file, "x").unwrap();
        let err = create_venv(&interp, &file, &opts).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");

        let err = create_venv(&interp, &dir.path().join("a\nb"), &opts).unwrap_err();
        assert!(matches!(err, VenvError::UnsupportedPath { .. }), "{err}");
    }

    #[test]
    fn open_reads_other_tools_configs_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let err = Venv::open(dir.path()).unwrap_err();
        assert!(matches!(err, VenvError::NotAVenv { .. }), "{err}");

        fs_err::write(
            dir.path().join("pyvenv.cfg"),
            "home = /usr/bin\nimplementation = CPython\nuv = 0.5.0\nversion_info = 3.12.1.final.0\n\
             include-system-site-packages = TRUE\nprompt = x\n",
        )
        .unwrap();
        let v = Venv::open(dir.path()).unwrap();
        assert_eq!(v.version().to_string(), "3.12.1");
        assert!(v.include_system_site_packages());
        assert_eq!(v.home(), Some(Path::new("/usr/bin")));
        assert!(v.site_packages().ends_with("lib/python3.12/site-packages"));
        assert_eq!(v.bin_dir(), dir.path().join("bin"));

        for bad in [
            "home = /usr/bin\n",
            "version = three\n",
            "version = 3\n",
            "",
        ] {
            fs_err::write(dir.path().join("pyvenv.cfg"), bad).unwrap();
            let err = Venv::open(dir.path()).unwrap_err();
            assert!(matches!(err, VenvError::BadConfig { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn quoting_survives_hostile_paths() {
        for s in [
            "plain", "sp ace", "it's", "a\\b", "$HOME", "`x`", "!bang", "\"q\"",
        ] {
            let out = run(Command::new("bash").args(["-c", &format!("printf %s {}", sh_quote(s))]));
            assert_eq!(out, s);
            let out = run(Command::new("dash").args(["-c", &format!("printf %s {}", sh_quote(s))]));
            assert_eq!(out, s);
        }
        assert_eq!(fish_quote(r"it's a\b"), r"'it\'s a\\b'");
        assert_eq!(csh_quote("it's!"), r"'it'\''s\!'");
        let sh = activate_sh("/v/it's", "p");
        assert!(sh.contains(r"VIRTUAL_ENV='/v/it'\''s'"));
        assert!(activate_fish("/v", "p").contains("set -gx VIRTUAL_ENV '/v'"));
        assert!(activate_csh("/v", "p").contains("setenv VIRTUAL_ENV '/v'"));
    }
}
