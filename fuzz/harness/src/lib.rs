//! Bodies of the dx-py fuzz targets: one per parser of untrusted bytes, shared by the
//! libFuzzer binaries in `fuzz/fuzz_targets/` and by the stable tests of this crate, which
//! replay every kept crash file (`fuzz/regressions/<target>/`) and run each body over random and
//! mutated inputs.
//!
//! Each body feeds arbitrary bytes to a parser's public entry point and checks what must hold for
//! any input: no panic, and, when the parser accepts the input, answers that agree with each
//! other (lookups find what listings list, writers' output reads back the same).
mod binary;
mod pages;
mod seeds;
mod settings;
#[cfg(test)]
mod tests;
mod text;
mod wheel;

pub use binary::{dpl_reader, dxpkg_reader, layout_index, thin_reader, tree_reader};
pub use pages::simple_page;
pub use seeds::{seeds, write_seed_corpus};
pub use settings::{pip_conf, uv_toml};
pub use text::{pylock, requirements};
pub use wheel::wheel;

/// A target's body: any bytes in, a panic when something that must hold does not.
pub type Body = fn(&[u8]);

/// Every target by name: the names of the binaries in `fuzz/fuzz_targets/` and of the
/// directories under `fuzz/regressions/` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, Body)] = &[
    ("dpl_reader", dpl_reader),
    ("dxpkg_reader", dxpkg_reader),
    ("tree_reader", tree_reader),
    ("layout_index", layout_index),
    ("simple_page", simple_page),
    ("requirements", requirements),
    ("pylock", pylock),
    ("pip_conf", pip_conf),
    ("uv_toml", uv_toml),
    ("wheel", wheel),
    ("thin_reader", thin_reader),
];
