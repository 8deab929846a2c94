//! The `switchyard run` binary reloading its config: on SIGHUP, new connections move and open
//! ones stay; an invalid file keeps the old config serving; a changed file is reloaded without
//! a signal. Every spawned proxy is owned by a `common::proc::Proxy` guard that kills it on drop.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::proc::{Proxy, RELOADS_FAILED, RELOADS_OK, eventually, get};
use common::*;
use std::time::Duration;

#[tokio::test]
async fn sighup_reload_moves_new_connections_and_keeps_open_ones() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let runtime = "drain_timeout = \"5s\"\nwatch_interval = \"0s\"";
    let proxy = Proxy::start(a, runtime).await;
    let (name, mut before) = connect(proxy.listen).await;
    assert_eq!(name, "a");

    proxy.rewrite(&proxy.runtime_config(b, runtime));
    proxy.signal("HUP").await;
    proxy.wait_backend("b", Duration::from_secs(5)).await;

    echo_roundtrip(&mut before, b"opened before the reload").await;
    assert!(proxy.metric(RELOADS_OK).await >= 1.0, "{}", proxy.log());
    assert_eq!(proxy.metric(RELOADS_FAILED).await, 0.0);
    for _ in 0..3 {
        assert_eq!(backend_of(proxy.listen).await, "b");
    }
}

#[tokio::test]
async fn invalid_config_on_sighup_keeps_the_old_one_serving() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let runtime = "drain_timeout = \"5s\"\nwatch_interval = \"0s\"";
    let proxy = Proxy::start(a, runtime).await;
    let (_, mut before) = connect(proxy.listen).await;

    // Not TOML at all, then TOML that does not validate (and would move traffic to b).
    let invalid = proxy
        .runtime_config(b, runtime)
        .replace(&b.to_string(), "10.0.0.1");
    for (round, text) in [
        ("garbage", "this is = = not toml\n".to_owned()),
        ("invalid", invalid),
    ] {
        let failed_before = proxy.metric(RELOADS_FAILED).await;
        proxy.rewrite(&text);
        proxy.signal("HUP").await;
        let p = &proxy;
        let counted = eventually(Duration::from_secs(5), || async move {
            p.metric(RELOADS_FAILED).await > failed_before
        })
        .await;
        if !counted {
            proxy.fail(&format!("{round}: no failed reload counted within 5 s"));
        }
        assert_eq!(
            backend_of(proxy.listen).await,
            "a",
            "{round}: the old config keeps serving"
        );
        assert_eq!(get(proxy.admin, "/readyz").await.map(|r| r.0), Some(200));
    }
    echo_roundtrip(&mut before, b"still here").await;
    assert!(proxy.metric(RELOADS_FAILED).await >= 2.0);
    assert_eq!(proxy.metric(RELOADS_OK).await, 0.0);
}

#[tokio::test]
async fn a_changed_file_is_reloaded_without_a_signal() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let runtime = "drain_timeout = \"5s\"\nwatch_interval = \"200ms\"";
    let proxy = Proxy::start(a, runtime).await;
    let (name, mut before) = connect(proxy.listen).await;
    assert_eq!(name, "a");

    proxy.rewrite(&proxy.runtime_config(b, runtime));
    proxy.wait_backend("b", Duration::from_secs(5)).await;
    echo_roundtrip(&mut before, b"opened before the reload").await;
    assert!(proxy.metric(RELOADS_OK).await >= 1.0, "{}", proxy.log());
}
