//! The fuzz corpora (`fuzz/corpus/<target>/`) replayed as ordinary tests, on the stable
//! toolchain and without libFuzzer: every file goes through the same checks as under the fuzz
//! target (`fuzz/checks.rs`, included here), so an input the fuzzer once found interesting
//! keeps being checked by `cargo test`. A missing or empty corpus fails, so this can never
//! pass by testing nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>/`; fails naming each file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} cannot be read: {e}", dir.display()));
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.is_file());
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs fail (their panics are printed above): {failed:#?}",
        failed.len(),
        files.len(),
    );
}

#[test]
fn request_head_corpus_passes() {
    replay("request_head", checks::request_head);
}

#[test]
fn response_head_corpus_passes() {
    replay("response_head", checks::response_head);
}

#[test]
fn chunked_corpus_passes() {
    replay("chunked", checks::chunked);
}

#[test]
fn proxy_header_corpus_passes() {
    replay("proxy_header", checks::proxy_header);
}

#[test]
fn host_corpus_passes() {
    replay("host", checks::host);
}

#[test]
fn path_corpus_passes() {
    replay("path", checks::path);
}

#[test]
fn config_corpus_passes() {
    replay("config", checks::config);
}

#[test]
fn a_failing_input_fails_the_replay() {
    let result = catch_unwind(|| replay("host", |_| panic!("planted failure")));
    assert!(result.is_err(), "a panicking check went unnoticed");
    let result = catch_unwind(|| replay("no_such_target", |_| {}));
    assert!(result.is_err(), "a missing corpus went unnoticed");
}
