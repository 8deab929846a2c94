//! The `switchyard` binary's one-shot commands: `--help`, `check` (every problem with its
//! path, exit codes) and `run` refusing a bad config or a busy port. Reloads are in
//! `cli_reload.rs`, SIGTERM and drain in `cli_drain.rs`; the child-process helpers are in
//! `common::proc`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::proc::{EXIT_CONFIG, check, config_text, free_ports, stderr, switchyard, write};
use std::path::Path;

#[test]
fn help_lists_the_subcommands() {
    let out = switchyard(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "check", "demo"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help does not list `{command}`:\n{text}"
        );
    }
}

#[test]
fn check_accepts_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = check(&example);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok (3 services"), "{stdout}");
}

#[test]
fn check_prints_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.toml",
        r#"
[admin]
listen = "nowhere"

[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[services]]
name = "two"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9001"

[[services]]
name = "three"
listen = "127.0.0.1:8082"
[[services.endpoints]]
address = "10.0.0.1"

[[services]]
name = "four"
listen = "127.0.0.1:8083"
"#,
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
    for line in [
        r#"admin.listen: invalid socket address "nowhere""#,
        "services[1].listen: tcp 127.0.0.1:8080 is already used by services[0]",
        r#"services[2].endpoints[0].address: invalid socket address "10.0.0.1""#,
        "services[3].endpoints: a service needs at least one endpoint",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

#[test]
fn check_paths_name_the_right_service_after_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "shifted.toml",
        r#"
[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[services]]
name = "two"
listen = "127.0.0.1:8081"
[[services.endpoints]]
address = "10.0.0.1"

[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9001"
"#,
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    for line in [
        r#"services[1].endpoints[0].address: invalid socket address "10.0.0.1""#,
        r#"services[2].name: duplicate name "one" (first used by services[0])"#,
        "services[2].listen: tcp 127.0.0.1:8080 is already used by services[0]",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

#[test]
fn check_reports_a_duplicate_listen_on_a_service_that_has_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "masked.toml",
        r#"
[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[services]]
name = "two"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "10.0.0.1"
"#,
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    for line in [
        r#"services[1].endpoints[0].address: invalid socket address "10.0.0.1""#,
        "services[1].listen: tcp 127.0.0.1:8080 is already used by services[0]",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

#[test]
fn check_names_an_unknown_key_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "typo.toml",
        "[[services]]\nname = \"web\"\nlistne = \"127.0.0.1:8080\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9000\"\n",
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("services[0].listne"), "{err}");
    assert!(err.contains("unknown field `listne`"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line per error: {err}");
}

#[test]
fn check_a_missing_file_exits_64_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(
        err.contains(&format!("cannot read {}", path.display())),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn check_malformed_or_empty_toml_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(&dir, "garbage.toml", "this is = = not toml\n");
    let out = check(&garbage);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(
        err.contains(&garbage.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("TOML parse error"), "{err}");

    let empty = write(&dir, "empty.toml", "# nothing here\n\n");
    let out = check(&empty);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("the file is empty"), "{err}");
}

#[test]
fn run_refuses_a_bad_config_with_64_and_a_busy_port_with_1() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(&dir, "garbage.toml", "[[services]\n");
    let out = switchyard(&["run", "--config", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{}", stderr(&out));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let (_, listen) = free_ports();
    let path = write(
        &dir,
        "busy.toml",
        &config_text(busy, listen, "127.0.0.1:9".parse().unwrap(), ""),
    );
    let out = switchyard(&["run", "--config", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on tcp {busy} for admin")),
        "{err}"
    );
}

/// The README's validation step works on every config we ship, run as a user would: the
/// Kubernetes one with `--kubernetes` (its certificates come from TLS Secrets), the demo one
/// once the demo has written its certificate.
#[test]
fn check_accepts_every_shipped_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let path = |name: &str| dir.join(name);
    let ok = |args: &[&str]| {
        let out = switchyard(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    };
    ok(&["check", "--config", path("example.toml").to_str().unwrap()]);
    let kube = path("kubernetes.toml");
    ok(&["check", "--kubernetes", "--config", kube.to_str().unwrap()]);
    let plain = check(&kube);
    assert_eq!(plain.status.code(), Some(EXIT_CONFIG));
    assert!(
        stderr(&plain).contains("--kubernetes"),
        "{}",
        stderr(&plain)
    );
    let demo = path("demo.toml");
    let config = switchyard::config::Config::load(&demo).unwrap();
    switchyard::demo::write_certificates(&config).unwrap();
    ok(&["check", "--config", demo.to_str().unwrap()]);
    let listed: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert_eq!(
        listed.len(),
        3,
        "a new config file needs a line here: {listed:?}"
    );
}

/// A certificate that cannot be read is a config error for `run` as for `check` (64, so that
/// systemd does not restart it every second), and its cause is printed once.
#[test]
fn run_with_a_missing_certificate_exits_64_and_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, listen) = free_ports();
    let text = format!(
        "[admin]\nlisten = \"{admin}\"\n\
         [[listeners]]\nname = \"https\"\nlisten = \"{listen}\"\ntls = true\n\
         [[certificates]]\ncert = \"missing.crt\"\nkey = \"missing.key\"\nhosts = [\"a.test\"]\n"
    );
    let path = write(&dir, "tls.toml", &text);
    let out = switchyard(&["run", "--config", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "each cause once: {err}"
    );
    assert_eq!(check(&path).status.code(), Some(EXIT_CONFIG));
}

/// A one-line file of a megabyte gets an error message of a line, not of a megabyte.
#[test]
fn a_huge_line_is_not_quoted_whole_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("x = \"{}", "a".repeat(1 << 20));
    let path = write(&dir, "huge.toml", &text);
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.len() < 1000, "{} bytes: {}", err.len(), &err[..200]);
}
