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
//! - `PATCH …/ingresses/NAME/status` is recorded.
//!
//! Objects are k8s-openapi types serialized with serde_json; one global resourceVersion counter.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

type Body = BoxBody<Bytes, Infallible>;

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

    /// Creates or replaces an object (ADDED or MODIFIED), with the next resourceVersion.
    pub fn apply<T: serde::Serialize>(&self, obj: &T) {
        let mut obj = serde_json::to_value(obj).unwrap();
        let kind = obj["kind"].as_str().unwrap().to_owned();
        let (resource, _) = plural(&kind);
        let mut s = self.state.lock().unwrap();
        s.rv += 1;
        let rv = s.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"]["creationTimestamp"].is_null() {
            let ts = format!("2025-01-01T00:{:02}:{:02}Z", (rv / 60) % 60, rv % 60);
            obj["metadata"]["creationTimestamp"] = json!(ts);
        }
        let key = key_of(&obj);
        let map = s.objects.entry(resource.to_owned()).or_default();
        let ty = if map.insert(key, obj.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.record(&mut s, resource, ty, obj);
    }

    /// Deletes an object (DELETED).
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let (resource, _) = plural(kind);
        let mut s = self.state.lock().unwrap();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(mut obj) = s.objects.get_mut(resource).and_then(|m| m.remove(&key)) else {
            return;
        };
        s.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        self.record(&mut s, resource, "DELETED", obj);
    }

    fn record(&self, s: &mut State, resource: &str, ty: &'static str, obj: Value) {
        let line = json!({"type": ty, "object": obj}).to_string();
        s.history.push((s.rv, resource.to_owned(), ty, obj));
        let _ = self.events.send((resource.to_owned(), line));
    }

    /// Sends a BOOKMARK at the current resourceVersion on every open watch.
    pub fn bookmark(&self) {
        let s = self.state.lock().unwrap();
        for kind in [
            "Service",
            "EndpointSlice",
            "Ingress",
            "IngressClass",
            "Secret",
        ] {
            let (resource, _) = plural(kind);
            let api = if matches!(kind, "Service" | "Secret") {
                "v1"
            } else if kind == "EndpointSlice" {
                "discovery.k8s.io/v1"
            } else {
                "networking.k8s.io/v1"
            };
            let line = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api,
                "metadata": {"resourceVersion": s.rv.to_string()}}})
            .to_string();
            let _ = self.events.send((resource.to_owned(), line));
        }
    }

    /// Compacts the history: open watches get an ERROR 410 event (and so does any watch
    /// resuming from before now), which makes clients relist.
    pub fn compact(&self) {
        let mut s = self.state.lock().unwrap();
        s.compacted = s.rv + 1;
        for resource in [
            "services",
            "endpointslices",
            "ingresses",
            "ingressclasses",
            "secrets",
        ] {
            let _ = self.events.send((resource.to_owned(), gone_event()));
        }
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

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| {
                url_pairs(q)
                    .into_iter()
                    .collect::<HashMap<String, String>>()
            })
            .unwrap_or_default();
        if req.method() == hyper::Method::PATCH && path.ends_with("/status") {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            return self.patch_status(&path, &body);
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let resource = (*segs.last().unwrap()).to_owned();
        let namespace = segs
            .iter()
            .position(|s| *s == "namespaces")
            .and_then(|i| segs.get(i + 1))
            .map(|s| (*s).to_owned());
        let tls_only = query
            .get("fieldSelector")
            .is_some_and(|f| f.contains("type=kubernetes.io/tls"));
        let filter = move |obj: &Value| {
            namespace
                .as_deref()
                .is_none_or(|ns| obj["metadata"]["namespace"] == ns)
                && (!tls_only || obj["type"] == "kubernetes.io/tls")
        };
        if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
            let rv: u64 = query
                .get("resourceVersion")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            return self.watch(resource, rv, filter);
        }
        loop {
            let notified = self.released.notified();
            if !self.state.lock().unwrap().hold_lists {
                break;
            }
            notified.await;
        }
        let mut s = self.state.lock().unwrap();
        *s.lists.entry(resource.clone()).or_default() += 1;
        let items: Vec<Value> = s
            .objects
            .get(&resource)
            .map(|m| m.values().filter(|o| filter(o)).cloned().collect())
            .unwrap_or_default();
        let kind = match resource.as_str() {
            "services" => "ServiceList",
            "endpointslices" => "EndpointSliceList",
            "ingresses" => "IngressList",
            "ingressclasses" => "IngressClassList",
            "secrets" => "SecretList",
            _ => return status(StatusCode::NOT_FOUND, "not found"),
        };
        let body = json!({"kind": kind, "apiVersion": "v1",
            "metadata": {"resourceVersion": s.rv.to_string()}, "items": items});
        json_response(StatusCode::OK, &body)
    }

    fn watch(
        &self,
        resource: String,
        rv: u64,
        filter: impl Fn(&Value) -> bool + Send + 'static,
    ) -> Response<Body> {
        let mut s = self.state.lock().unwrap();
        *s.watches.entry(resource.clone()).or_default() += 1;
        if s.http_gone > 0 {
            s.http_gone -= 1;
            return status(StatusCode::GONE, "too old resource version");
        }
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(256);
        let mut backlog = Vec::new();
        if rv < s.compacted.saturating_sub(1) {
            backlog.push(gone_event());
        } else {
            for (erv, res, ty, obj) in &s.history {
                if *erv > rv && *res == resource && filter(obj) {
                    backlog.push(json!({"type": ty, "object": obj}).to_string());
                }
            }
        }
        let mut live = self.events.subscribe();
        drop(s);
        tokio::spawn(async move {
            for line in backlog {
                if tx
                    .send(Ok(Frame::data(Bytes::from(line + "\n"))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            while let Ok((res, line)) = live.recv().await {
                if res != resource {
                    continue;
                }
                let v: Value = serde_json::from_str(&line).unwrap();
                if v["type"] != "BOOKMARK" && v["type"] != "ERROR" && !filter(&v["object"]) {
                    continue;
                }
                if tx
                    .send(Ok(Frame::data(Bytes::from(line + "\n"))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let body = StreamBody::new(tokio_stream(rx));
        Response::builder()
            .header("content-type", "application/json")
            .body(BodyExt::boxed(body))
            .unwrap()
    }

    fn patch_status(&self, path: &str, body: &[u8]) -> Response<Body> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let n = segs.len();
        let (ns, name) = (segs[n - 4].to_owned(), segs[n - 2].to_owned());
        let patch: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let obj = {
            let mut s = self.state.lock().unwrap();
            s.patches.push((ns.clone(), name.clone(), patch.clone()));
            s.objects
                .get("ingresses")
                .and_then(|m| m.get(&(ns.clone(), name.clone())))
                .cloned()
        };
        let Some(mut obj) = obj else {
            return status(StatusCode::NOT_FOUND, "not found");
        };
        obj["status"] = patch["status"].clone();
        let ing: k8s_openapi::api::networking::v1::Ingress =
            serde_json::from_value(obj.clone()).unwrap();
        self.apply(&ing);
        json_response(StatusCode::OK, &obj)
    }
}

fn gone_event() -> String {
    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "too old resource version", "reason": "Expired",
        "code": 410}})
    .to_string()
}

fn status(code: StatusCode, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Gone", "code": code.as_u16()});
    json_response(code, &body)
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(Full::new(Bytes::from(body.to_string()))))
        .unwrap()
}

fn tokio_stream(
    mut rx: mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `a=b&c=d` with %XX decoding (enough for selectors).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}
