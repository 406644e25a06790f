//! Fuzzes `DplReader::from_bytes`, `get`, `entry`, `verify` and the renderings.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::dpl_reader(data));
