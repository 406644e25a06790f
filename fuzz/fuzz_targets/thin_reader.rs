//! Fuzzes the `.dxthin` reader: `PackageStore::get` of a thin object, `read`, `entry_data`,
//! `verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dx_py_fuzz_harness::thin_reader(data));
