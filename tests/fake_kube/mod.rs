//! A fake Kubernetes API server speaking the real list/watch protocol over HTTP/1.1.
//!
//! - list (`GET /api/v1/services`, no `watch`): `{"kind":"ServiceList","apiVersion":"v1",
//!   "metadata":{"resourceVersion":"N"},"items":[...]}`;
//! - watch (`?watch=true&resourceVersion=N`): a chunked stream of newline-delimited
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}`, first the events after N
//!   from the history, then live ones; a resourceVersion older than the compacted history gets
//!   an ERROR event with a `410 Gone` Status, as the real server sends;
//! - knobs: answer the next watches with an HTTP 410, compact the history (ERROR 410 on every
//!   open watch, which forces a relist), drop every connection abruptly (TCP close mid-stream),
//!   go down (connections closed on accept) and come back, hold list calls (to test readiness);
//! - `PATCH …/NAME/status` (any kind, namespaced or cluster-scoped) is recorded and applied
//!   as a JSON merge patch (RFC 7386), a MODIFIED event like any write.
//!
//! Objects are k8s-openapi types (or, for the Gateway API kinds, plain JSON) serialized with
//! serde_json; one global resourceVersion counter.
//!
//! Files: this one (state, start, knobs and counters), `history` (objects, resourceVersions
//! and events), `server` (the HTTP side: list, watch, status patches); `objects` builds the
//! k8s-openapi objects the tests apply, `harness` runs the switchyard binary against the fake
//! and talks to it.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

pub mod harness;
mod history;
pub mod objects;
mod server;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    rv: u64,
    /// Watches with a resourceVersion below this get 410 Gone.
    compacted: u64,
    /// resource plural → (namespace, name) → object.
    objects: HashMap<String, BTreeMap<(String, String), Value>>,
    /// (rv, resource, event type, object).
    history: Vec<(u64, String, &'static str, Value)>,
    http_gone: u32,
    down: bool,
    hold_lists: bool,
    lists: HashMap<String, u32>,
    watches: HashMap<String, u32>,
    patches: Vec<(String, String, Value)>,
    /// Resources answered 404 (a CRD not installed).
    missing: std::collections::HashSet<String>,
    /// Every status patch: (resource plural, namespace, name, body).
    status_patches: Vec<(String, String, String, Value)>,
}

/// The fake server.
#[derive(Clone)]
pub struct FakeKube {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<(String, String)>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    released: Arc<tokio::sync::Notify>,
}

/// The resource plural and list kind of an object kind.
fn plural(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "Service" => ("services", "ServiceList"),
        "EndpointSlice" => ("endpointslices", "EndpointSliceList"),
        "Ingress" => ("ingresses", "IngressList"),
        "IngressClass" => ("ingressclasses", "IngressClassList"),
        "Secret" => ("secrets", "SecretList"),
        "GatewayClass" => ("gatewayclasses", "GatewayClassList"),
        "Gateway" => ("gateways", "GatewayList"),
        "HTTPRoute" => ("httproutes", "HTTPRouteList"),
        "TLSRoute" => ("tlsroutes", "TLSRouteList"),
        "GRPCRoute" => ("grpcroutes", "GRPCRouteList"),
        "ReferenceGrant" => ("referencegrants", "ReferenceGrantList"),
        "BackendTLSPolicy" => ("backendtlspolicies", "BackendTLSPolicyList"),
        "ConfigMap" => ("configmaps", "ConfigMapList"),
        "Namespace" => ("namespaces", "NamespaceList"),
        other => panic!("unknown kind {other}"),
    }
}

fn key_of(obj: &Value) -> (String, String) {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or("").to_owned(),
        m["name"].as_str().unwrap().to_owned(),
    )
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeKube {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(Mutex::new(State::default())),
            events: broadcast::channel(4096).0,
            conns: Arc::new(Mutex::new(Vec::new())),
            released: Arc::new(tokio::sync::Notify::new()),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                if f.state.lock().unwrap().down {
                    drop(socket);
                    continue;
                }
                let f2 = f.clone();
                let task = tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let f = f2.clone();
                        async move { Ok::<_, Infallible>(f.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
                });
                f.conns.lock().unwrap().push(task.abort_handle());
            }
        });
        fake
    }

    /// A kubeconfig file pointing at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: fake\n  user:\n    token: fake-token\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The next `n` watch requests are answered with an HTTP 410.
    pub fn http_gone(&self, n: u32) {
        self.state.lock().unwrap().http_gone = n;
    }

    /// Closes every open connection abruptly.
    pub fn drop_connections(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Down: every connection is dropped and new ones are closed at once. Up: back to normal.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
        if down {
            self.drop_connections();
        }
    }

    /// While held, list calls wait (the client sees a slow API server).
    pub fn hold_lists(&self, hold: bool) {
        self.state.lock().unwrap().hold_lists = hold;
        if !hold {
            self.released.notify_waiters();
        }
    }

    /// While set, lists and watches of `resource` (a plural) answer 404, as for a CRD that is
    /// not installed.
    pub fn set_missing(&self, resource: &str, missing: bool) {
        let mut s = self.state.lock().unwrap();
        if missing {
            s.missing.insert(resource.to_owned());
        } else {
            s.missing.remove(resource);
        }
    }

    pub fn lists(&self, resource: &str) -> u32 {
        *self.state.lock().unwrap().lists.get(resource).unwrap_or(&0)
    }

    pub fn watches(&self, resource: &str) -> u32 {
        *self
            .state
            .lock()
            .unwrap()
            .watches
            .get(resource)
            .unwrap_or(&0)
    }

    /// Status patches received: (namespace, name, body).
    pub fn patches(&self) -> Vec<(String, String, Value)> {
        self.state.lock().unwrap().patches.clone()
    }

    /// Status patches received for one resource (plural, e.g. `gatewayclasses`):
    /// (namespace, name, body); the namespace is empty for cluster-scoped kinds.
    pub fn status_patches(&self, resource: &str) -> Vec<(String, String, Value)> {
        let s = self.state.lock().unwrap();
        s.status_patches
            .iter()
            .filter(|p| p.0 == resource)
            .map(|p| (p.1.clone(), p.2.clone(), p.3.clone()))
            .collect()
    }

    /// The stored object (with the status patches applied), if any.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let (resource, _) = plural(kind);
        let s = self.state.lock().unwrap();
        let key = (namespace.to_owned(), name.to_owned());
        s.objects.get(resource).and_then(|m| m.get(&key)).cloned()
    }
}
