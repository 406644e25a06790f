//! Shared test fixtures: synthetic packages in a temporary store.
use dx_py_core::dxpkg::{DxpkgWriter, EntryKind, Scheme};
use dx_py_core::hash::ContentHash;
use dx_py_core::store::PackageStore;

/// One entry of a synthetic package.
pub struct E<'a>(
    pub Scheme,
    pub &'a str,
    pub EntryKind,
    pub u32,
    pub &'a [u8],
);

/// A site-packages file with mode 0o644.
pub fn sp<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E(Scheme::SitePackages, path, EntryKind::File, 0o644, data)
}

/// Writes a package and stores it; returns its hash.
pub fn add_pack(store: &PackageStore, name: &str, entries: &[E<'_>]) -> ContentHash {
    let mut w = DxpkgWriter::new(name, "1.0", &format!("{name}-1.0.dist-info"));
    for E(scheme, path, kind, mode, data) in entries {
        w.add(*scheme, path, *kind, *mode, data.to_vec());
    }
    store.store(&w.finish().unwrap()).unwrap()
}

/// Whether the calling test can mount here (`/dev/fuse`, and root or `fusermount3`): where it
/// cannot, prints what is skipped and why (a failure under `DX_PY_TEST_REQUIRE_ALL`).
pub fn can_mount() -> bool {
    dx_py_core::testing::can_run(dx_py_fs_linux::serve::preflight(
        &dx_py_fs_linux::serve::MountOptions::default(),
    ))
}

/// Whether `fusermount3` is on PATH (for its auto-unmount), saying what is skipped otherwise.
pub fn has_fusermount() -> bool {
    dx_py_core::testing::can_run(dx_py_core::testing::on_path("fusermount3"))
}
