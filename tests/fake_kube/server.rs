//! The fake API server's HTTP side: list (with namespace and field-selector filtering, held
//! while `hold_lists` is on), watch (history after the resourceVersion, then live events; 410
//! for compacted versions or when `http_gone` asks), and `PATCH …/status` (a merge patch) on
//! any kind.

use super::FakeKube;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::mpsc;

pub(super) type Body = BoxBody<Bytes, Infallible>;

impl FakeKube {
    pub(super) async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
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
        if self.state.lock().unwrap().missing.contains(&resource) {
            return status(
                StatusCode::NOT_FOUND,
                "the server could not find the resource",
            );
        }
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
            "gatewayclasses" => "GatewayClassList",
            "gateways" => "GatewayList",
            "httproutes" => "HTTPRouteList",
            "tlsroutes" => "TLSRouteList",
            "grpcroutes" => "GRPCRouteList",
            "referencegrants" => "ReferenceGrantList",
            "backendtlspolicies" => "BackendTLSPolicyList",
            "configmaps" => "ConfigMapList",
            "namespaces" => "NamespaceList",
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
        let (resource, name) = (segs[n - 3].to_owned(), segs[n - 2].to_owned());
        let ns = if n >= 5 && segs[n - 5] == "namespaces" {
            segs[n - 4].to_owned()
        } else {
            String::new()
        };
        let patch: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let obj = {
            let mut s = self.state.lock().unwrap();
            s.patches.push((ns.clone(), name.clone(), patch.clone()));
            let record = (resource.clone(), ns.clone(), name.clone(), patch.clone());
            s.status_patches.push(record);
            s.objects
                .get(&resource)
                .and_then(|m| m.get(&(ns.clone(), name.clone())))
                .cloned()
        };
        let Some(mut obj) = obj else {
            return status(StatusCode::NOT_FOUND, "not found");
        };
        merge_patch(&mut obj["status"], &patch["status"]);
        self.apply(&obj);
        json_response(StatusCode::OK, &obj)
    }
}

/// RFC 7386: objects merge key by key, `null` deletes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

pub(super) fn gone_event() -> String {
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
