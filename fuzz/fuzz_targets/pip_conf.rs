//! Fuzzes a pip.conf read by `index::config::discover`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::pip_conf(data));
