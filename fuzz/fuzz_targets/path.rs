//! Fuzz target `path`: see `switchyard_fuzz::path` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::path(data));
