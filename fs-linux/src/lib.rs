//! FUSE filesystem that serves a dx-py venv read-only, straight from memory-mapped `.dxpkg` files.
