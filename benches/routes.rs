//! Route table at scale: 10,000 rules (100 hosts × 100 paths), a tenth of them with header or
//! query conditions, and 100 regular-expression paths (10 hosts with 10 each); build and lookup
//! timed separately. Each lookup is one representative request: an exact hit, a deep prefix, a
//! header- and query-matched canary, and a regex path. Run with `cargo bench --bench routes`.
//!
//! Medians measured on the shared 2-core dev VM (`-- --warm-up-time 1 --measurement-time 3`):
//! build 9.3 ms; exact hit 22 ns, deep prefix (9 elements) 69 ns, header- and query-matched
//! canary 112 ns, regex path (one combined automaton per host group) 59 ns.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use switchyard::ingress::{
    Conditions, HostPattern, Hostname, NamedMatch, PathType, RequestView, RouteTable, Rule,
    ValueMatch,
};

const HOSTS: usize = 100;
const PATHS: usize = 100;

fn canary() -> Conditions {
    let named = |name: &str, value: ValueMatch| NamedMatch {
        name: name.into(),
        value,
    };
    Conditions {
        method: None,
        headers: vec![
            named("x-env", ValueMatch::Exact("canary".into())),
            named("x-user", ValueMatch::regex("[0-9]+").expect("valid regex")),
        ],
        query: vec![named("beta", ValueMatch::Exact("1".into()))],
    }
}

/// Host `h` path `p`: every tenth path is a canary by header and query, on a path that also
/// has a rule without conditions (counted among the 100); hosts 0-9 end with 10 regex paths.
fn rules() -> Vec<Rule<usize>> {
    let mut rules = Vec::with_capacity(HOSTS * PATHS);
    for h in 0..HOSTS {
        let host = HostPattern::parse(&format!("host{h}.example.com")).expect("valid host");
        for p in 0..PATHS {
            let (path, path_type, conditions) = match p {
                p if h < 10 && p >= PATHS - 10 => (
                    format!("/re{p}/[a-z]+/[0-9]+/items/.*"),
                    PathType::RegularExpression,
                    Conditions::default(),
                ),
                p if p % 10 == 1 => (format!("/svc{}", p - 1), PathType::Prefix, canary()),
                p if p % 2 == 0 => (format!("/svc{p}"), PathType::Prefix, Conditions::default()),
                p => (
                    format!("/svc{p}/api/v1"),
                    PathType::Exact,
                    Conditions::default(),
                ),
            };
            rules.push(Rule {
                host: Some(host.clone()),
                path,
                path_type,
                backend: h * PATHS + p,
                conditions,
            });
        }
    }
    rules
}

fn headers(canary: bool) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in [
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip, br"),
        ("cookie", "session=0123456789abcdef"),
        ("x-request-id", "7f8e9d0c-1b2a-4c3d-9e8f-0a1b2c3d4e5f"),
        ("x-user", "123456"),
    ] {
        map.insert(name, http::HeaderValue::from_static(value));
    }
    if canary {
        map.insert("x-env", http::HeaderValue::from_static("canary"));
    }
    map
}

/// Name, host, path, query, headers and the backend it must reach.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a http::HeaderMap,
    usize,
);

fn routes(c: &mut Criterion) {
    let mut group = c.benchmark_group("routes");
    group.bench_function("build_10k", |b| {
        b.iter_batched(
            rules,
            |rules| RouteTable::build(rules, vec![], None),
            criterion::BatchSize::LargeInput,
        );
    });
    let (table, conflicts) = RouteTable::build(rules(), vec![], None);
    assert!(conflicts.is_empty(), "{conflicts:?}");
    let plain = headers(false);
    let with_canary = headers(true);
    let cases: [Case<'_>; 4] = [
        (
            "exact_hit",
            "host57.example.com",
            "/svc33/api/v1",
            None,
            &plain,
            5733,
        ),
        (
            "deep_prefix",
            "host57.example.com",
            "/svc40/a/b/c/d/e/f/g/h",
            None,
            &plain,
            5740,
        ),
        (
            "header_matched",
            "host57.example.com",
            "/svc20/x/y",
            Some("a=b&beta=1"),
            &with_canary,
            5721,
        ),
        (
            "regex",
            "host3.example.com",
            "/re90/abc/42/items/9/x",
            None,
            &plain,
            390,
        ),
    ];
    for (name, host, path, query, fields, want) in cases {
        let host = Hostname::from_authority(host).expect("valid host");
        let request = RequestView {
            method: "GET",
            query,
            fields,
        };
        let got = table
            .lookup_request(Some(&host), path, &request)
            .backend()
            .copied();
        assert_eq!(got, Some(want), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                table
                    .lookup_request(Some(black_box(&host)), black_box(path), black_box(&request))
                    .backend()
                    .copied()
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = routes
}
criterion_main!(benches);
