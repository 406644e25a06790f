//! Fuzzes `convert_wheel_with_limits` and `prepare_wheel` + `write_to` on a zip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::wheel(data));
