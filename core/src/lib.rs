//! dx-py-core: the content-addressed package store (`.dxpkg`), the binary lock (DPL), the layout
//! cache (DXLC), wheels, interpreters and venvs, and the install pipeline built from them.
//!
//! The cache root's directories are listed, and spelled, in one place: [`cache::Cache`].
//! Temporaries anywhere are `.tmp-{pid}-{start}-…`: see [`temp`].
#![deny(missing_docs)]
// All unsafe code lives in `sys`, which allows it for itself.
#![deny(unsafe_code)]

pub mod atomic;
pub mod build;
pub mod cache;
pub mod cache_lock;
pub mod closure;
pub mod dpl;
pub mod dxpkg;
pub mod format;
pub mod hash;
pub mod index;
pub mod install;
pub mod interrupt;
pub mod layout;
pub mod mount;
pub mod mountinfo;
pub mod names;
mod parallel;
pub mod plural;
pub mod project;
pub mod python;
pub mod remote;
pub mod requirements;
pub mod resolve;
pub mod scripts;
pub mod store;
pub mod sys;
pub mod temp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tree;
pub mod wheel;
