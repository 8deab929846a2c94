//! `[[routes]] listeners` over real sockets: a route fenced to one listener is served there
//! and never on another, where the request falls through to the unfenced routes (or 404).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::http::{backend, get, service};
use switchyard::app;

#[tokio::test]
async fn a_fenced_route_answers_only_on_its_listener() {
    let (a, b) = (backend("a").await, backend("b").await);
    let body = format!(
        "[[listeners]]\nname = \"internal\"\nlisten = \"127.0.0.1:0\"\n\
         {}{}\
         [[routes]]\npath = \"/\"\nservice = \"a\"\n\
         [[routes]]\npath = \"/admin\"\nservice = \"b\"\nlisteners = [\"internal\"]\n\
         [[routes]]\nhost = \"only.test\"\npath = \"/\"\nservice = \"b\"\nlisteners = [\"internal\"]\n",
        service("a", &[a], ""),
        service("b", &[b], ""),
    );
    let app = app::start(common::http::config(&body)).await.unwrap();
    let web = app.http_addr("web").await.unwrap();
    let internal = app.http_addr("internal").await.unwrap();
    assert_eq!(get(internal, "x.test", "/admin").await.2, "b GET /admin 0");
    assert_eq!(get(web, "x.test", "/admin").await.2, "a GET /admin 0");
    assert_eq!(get(internal, "only.test", "/").await.2, "b GET / 0");
    // On `web` the fenced host has no rules: the unfenced any-host route serves it.
    assert_eq!(get(web, "only.test", "/").await.2, "a GET / 0");
    assert_eq!(get(internal, "x.test", "/").await.2, "a GET / 0");
    app.shutdown(std::time::Duration::from_millis(100)).await;
}
