//! Helpers for tests of this crate and of the end-to-end suite (feature `testing`).
mod index_server;

pub use index_server::{ServedFormat, TestIndex};
