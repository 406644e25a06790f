//! Fuzzes `LayoutIndex::new` (DXLC), `get`, `entries`, `verify` and `encode_index`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::layout_index(data));
