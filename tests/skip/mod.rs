//! A test that cannot run here says so, and is counted as skipped, not passed.
//!
//! The Rust test harness has no "skipped" outcome for a test that finds out at run time that
//! its tool or kernel is missing: such a test returns and would count as passed. So it calls
//! [`skip`], which prints the reason (shown with `--nocapture`) and, when the environment
//! names a file in `SWITCHYARD_SKIP_LOG`, appends a line to it. `.ci/run` sets that file and
//! reports those tests as skipped in its closing line, taking them off the passed count.

use std::io::Write;

/// Records that `test` did not run, and why.
#[allow(unreachable_pub, reason = "a module of several test crates")]
pub fn skip(test: &str, why: &str) {
    println!("SKIP {test}: {why}");
    if let Some(path) = std::env::var_os("SWITCHYARD_SKIP_LOG") {
        let line = format!("test\t{test}\t{why}\n");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(error) = appended {
            eprintln!("cannot record the skip of {test}: {error}");
        }
    }
}
