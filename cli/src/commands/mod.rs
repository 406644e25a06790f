//! One module per subcommand.
pub(crate) mod cache;
pub(crate) mod dpl;
pub(crate) mod install;
pub(crate) mod lock;
#[cfg(target_os = "linux")]
pub(crate) mod mount;
#[cfg(target_os = "linux")]
mod mount_after;
#[cfg(target_os = "linux")]
mod mount_tree_build;
pub(crate) mod store;
pub(crate) mod venv;

/// Exit 1 for errors in what the user asked (bad input, missing packages), 2 for the rest
/// (I/O failures the user did not cause).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    let io_root = err
        .chain()
        .last()
        .and_then(|e| e.downcast_ref::<std::io::Error>());
    match io_root {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound => 1,
        Some(_) => 2,
        None => 1,
    }
}
