//! The `dx-py` command line.
fn main() {}
