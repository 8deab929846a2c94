//! Fuzz target `chunked`: see `switchyard_fuzz::chunked` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::chunked(data));
