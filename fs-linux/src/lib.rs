//! FUSE filesystem that serves a dx-py venv read-only, straight from memory-mapped `.dxpkg` files.
//!
//! - [`tree`]: the `.dxtree` file, the venv's merged directory tree built once per package set
//!   (re-exported from `dx_py_core::tree`);
//! - [`fs`]: the `fuser::Filesystem` that answers from a mapped tree and the mapped packs;
//! - [`late`]: bytecode compiled after mounting, added to a running mount;
//! - [`serve`]: checks that FUSE is usable, mount options, foreground and in-process sessions;
//! - [`server`]: the mount server process: serves a `dx_py_core::mount::ServerSpec`, reports its
//!   `ServerStatus`, and completes a first tree after mounting;
//! - [`daemon`]: starting that server detached and reading its states, the pid and log records;
//! - [`prewarm`]: a trace of what a mount is asked first, replayed by the next mount of the tree;
//! - [`mounts`]: finding, unmounting and cleaning up (dead) dx-py mounts.
//!
//! The mount tests are an integration suite (`tests/fuse/`): they use only this public API.
#![cfg(target_os = "linux")]
// No unsafe code: mmap and the system calls rustix lacks live in `dx_py_core::sys`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod daemon;
pub mod fs;
pub mod late;
pub mod mounts;
pub mod prewarm;
pub mod serve;
pub mod server;
mod sys;
/// The `.dxtree` format, shared with `fs-windows`; it lives in core.
pub use dx_py_core::tree;
