//! One module per subcommand, and what several share (`resolve`: locking by resolution;
//! `which_lock`: the lock an install takes).
pub(crate) mod cache;
pub(crate) mod dpl;
pub(crate) mod export;
pub(crate) mod install;
pub(crate) mod local_builds;
pub(crate) mod lock;
#[cfg(target_os = "linux")]
pub(crate) mod mount;
#[cfg(target_os = "linux")]
pub(crate) mod mount_serve;
pub(crate) mod project;
mod project_build;
mod project_local;
pub(crate) mod resolve;
pub(crate) mod store;
#[cfg(target_os = "linux")]
pub(crate) mod unmount;
pub(crate) mod venv;
pub(crate) mod which_lock;

/// File names of the two lock forms.
pub(crate) const PYLOCK: &str = "pylock.toml";
pub(crate) const DPL: &str = "dx-py.dpl";

/// Exit 1 for errors in what the user asked (bad input, missing packages), 2 for the rest
/// (I/O failures the user did not cause).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    let io_root = err
        .chain()
        .last()
        .and_then(|e| e.downcast_ref::<std::io::Error>());
    match io_root {
        // A missing file, or a file whose bytes are not what it claims (a lock that is not
        // UTF-8): the user's input.
        Some(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ) =>
        {
            1
        }
        Some(_) => 2,
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;
    use std::io::{Error, ErrorKind};

    #[test]
    fn input_errors_exit_1_and_other_io_errors_2() {
        let io = |kind| anyhow::Error::new(Error::from(kind)).context("Failed to read `x`");
        assert_eq!(exit_code(&io(ErrorKind::NotFound)), 1);
        assert_eq!(exit_code(&io(ErrorKind::InvalidData)), 1);
        assert_eq!(exit_code(&io(ErrorKind::PermissionDenied)), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("Bad requirement")), 1);
    }
}
