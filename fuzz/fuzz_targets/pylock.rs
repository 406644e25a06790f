//! Fuzzes `Lock::from_pylock_str` and `to_pylock_string`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::pylock(data));
