//! dx-py-core: the content-addressed package store (`.dxpkg`), the binary lock (DPL), the layout
//! cache (DXLC), wheels, interpreters and venvs, and the install pipeline built from them.
//!
//! On-disk layout of a cache root:
//!
//! ```text
//! {cache}/
//! ├── store/                      PackageStore (may live elsewhere with --store)
//! │   ├── ab/cd/abcd….dxpkg       one immutable object per package, named by its blake3
//! │   └── unpacked/abcd…/         read-only unpacked copy, made lazily for link layouts
//! ├── layouts/                    LayoutCache
//! │   ├── index.dxlc              mmap'd hash table: project hash -> layout
//! │   └── <project-hash>/         a ready site-packages tree
//! └── .writers/{pid}-{start}      processes that may have temporaries ([`temp`])
//! ```
//!
//! Temporaries anywhere are `.tmp-{pid}-{start}-…`: see [`temp`].
#![deny(missing_docs)]

pub mod atomic;
pub mod cache;
pub mod cache_lock;
pub mod closure;
pub mod dpl;
pub mod dxpkg;
pub mod hash;
pub mod index;
pub mod install;
pub mod layout;
pub mod mmap;
pub mod mountinfo;
pub mod names;
mod parallel;
pub mod plural;
pub mod python;
pub mod requirements;
pub mod scripts;
pub mod store;
pub mod temp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tree;
pub mod wheel;
