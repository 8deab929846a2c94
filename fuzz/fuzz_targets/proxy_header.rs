//! Fuzz target `proxy_header`: see `switchyard_fuzz::proxy_header` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::proxy_header(data));
