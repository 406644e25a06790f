//! The dx-py venv filesystem for Windows, over Dokan: the same read-only tree that `fs-linux`
//! serves through FUSE, every file read out of the memory-mapped `.dxpkg` store objects.
//!
//! - [`policy`]: which opens a read-only volume allows, name comparison, Windows name rules
//!   (platform-neutral, tested everywhere);
//! - `view` (Windows): Windows paths resolved in a `.dxtree`, file bytes from the mapped packs;
//! - `handler` (Windows): the `dokan::FileSystemHandler`, and `mount`/`unmount`.
//!
//! Compiled only on Windows; elsewhere this crate is empty (but for the tests of [`policy`]) so
//! that the workspace builds everywhere. It is type-checked from Linux by
//! `scripts/check-windows.sh` and has never been run: see `docs/design/windows.md`.
#![deny(missing_docs)]

#[cfg(any(windows, test))]
pub mod policy;

// `view` has no Dokan dependency, so its tests run on every platform.
#[cfg(any(windows, test))]
pub mod view;

#[cfg(windows)]
mod handler;
#[cfg(windows)]
pub use handler::{MountError, OpenFile, TreeHandler, mount, unmount};
