//! Running a command inside a venv, as `dx-py run` does and as an activated shell would: the
//! venv's `bin` first on `PATH`, `VIRTUAL_ENV` set, `PYTHONHOME` unset (it would point the
//! venv's interpreter at another prefix).
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

/// A failure to start the command.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (not found, not executable).
    #[error("Failed to run `{}`", program.to_string_lossy())]
    Spawn {
        /// The program as given.
        program: OsString,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `PATH` could not be extended with the venv's `bin` (it holds the separator).
    #[error("Cannot put `{}` on PATH", dir.display())]
    Path {
        /// The venv's `bin`.
        dir: std::path::PathBuf,
    },
}

/// `program args…` set up to run inside the venv at `venv` (whose `bin` holds `bin_dir`).
pub fn venv_command(
    venv: &Path,
    bin_dir: &Path,
    program: &OsStr,
    args: &[OsString],
) -> Result<Command, RunError> {
    let mut path = vec![bin_dir.to_path_buf()];
    if let Some(old) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&old));
    }
    let path = std::env::join_paths(path).map_err(|_| RunError::Path {
        dir: bin_dir.to_path_buf(),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("PATH", path)
        .env("VIRTUAL_ENV", venv)
        .env_remove("PYTHONHOME");
    Ok(cmd)
}

/// Runs `cmd` and returns its exit code. On Unix the process becomes the command (exec), so
/// that signals and the exit status reach the caller's shell unchanged, and this returns only
/// on failure to start it.
pub fn run_replacing(mut cmd: Command) -> Result<i32, RunError> {
    let program = cmd.get_program().to_owned();
    let spawn = |source| RunError::Spawn {
        program: program.clone(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        Err(spawn(cmd.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(spawn)?;
        Ok(status.code().unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_bin_comes_first_and_pythonhome_goes() {
        let venv = Path::new("/some/venv");
        let cmd = venv_command(venv, &venv.join("bin"), OsStr::new("python"), &[]).unwrap();
        let envs: Vec<_> = cmd.get_envs().collect();
        let path = envs
            .iter()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| *v)
            .unwrap();
        let first = std::env::split_paths(path).next().unwrap();
        assert_eq!(first, venv.join("bin"));
        assert!(envs.contains(&(OsStr::new("VIRTUAL_ENV"), Some(venv.as_os_str()))));
        assert!(envs.contains(&(OsStr::new("PYTHONHOME"), None)));
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = venv_command(
            dir.path(),
            &dir.path().join("bin"),
            OsStr::new("dx-py-no-such-program"),
            &[],
        )
        .unwrap();
        let err = run_replacing(cmd).unwrap_err();
        assert!(err.to_string().contains("dx-py-no-such-program"), "{err}");
    }
}
