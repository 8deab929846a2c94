//! Fuzz target `response_head`: see `switchyard_fuzz::response_head` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::response_head(data));
