//! Fuzz target `host`: see `switchyard_fuzz::host` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::host(data));
