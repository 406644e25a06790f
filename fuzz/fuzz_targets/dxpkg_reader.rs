//! Fuzzes `DxpkgReader::new`, `validate` and `get_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::dxpkg_reader(data));
