//! Fuzzes `Requirements::parse_str` and `to_requirements_txt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::requirements(data));
