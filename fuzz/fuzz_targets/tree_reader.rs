//! Fuzzes `Tree::new` (`.dxtree`), `node`, `child`, `lookup`, `resolve` and `verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::tree_reader(data));
