//! Fuzzes `PageFormat::detect` and `parse_page` (PEP 691 JSON, PEP 503 HTML), then `select_wheel`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::simple_page(data));
