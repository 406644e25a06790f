//! Helpers for tests of this crate and of the end-to-end suite (feature `testing`).
mod index_server;
mod needs;
mod noise;
mod target;

pub use index_server::{LAST_MODIFIED, Logged, ServedFormat, TestIndex};
pub use needs::{NotOnPath, NotRoot, REQUIRE_ALL, can_run, fuse_passthrough, on_path, root, skip};
pub use noise::noise;
pub use target::{cp311_tag_priority, linux_cp311_markers};
