use super::*;

fn conn(ip: &str) -> ClientHeaders {
    ClientHeaders::new(ip.parse().unwrap(), 443)
}

fn rewrite(
    conn: &ClientHeaders,
    trusted: bool,
    rfc7239: bool,
    input: &HeaderMap,
) -> (HeaderMap, String) {
    let rw = Rewrite {
        origin: Origin {
            conn,
            trusted,
            proto: "https",
            host: b"app.example.com",
        },
        rfc7239,
        keep_length: true,
        upgrade: None,
        connection: connection_options(map_pairs(input)),
        underscores: false,
        headers: None,
        endpoint_host: None,
    };
    let mut out = HeaderMap::new();
    let id = request(|| map_pairs(input), &rw, &mut out);
    (out, String::from_utf8_lossy(id.as_bytes()).into_owned())
}

fn without_hop_by_hop(input: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    response(
        || map_pairs(input),
        connection_options(map_pairs(input)),
        true,
        None,
        None,
        &mut out,
    );
    out
}

#[test]
fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
    let mut h = HeaderMap::new();
    h.insert(
        "connection",
        HeaderValue::from_static("keep-alive, x-secret"),
    );
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert("te", HeaderValue::from_static("trailers, deflate"));
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    let out = without_hop_by_hop(&h);
    assert_eq!(out.len(), 1);
    assert!(out.contains_key("accept"));
}

#[test]
fn connection_options_are_removed_in_any_case_and_from_every_connection_header() {
    let mut h = HeaderMap::new();
    h.append("connection", HeaderValue::from_static("Close , X-Secret"));
    h.append("connection", HeaderValue::from_static("Keep-Alive,x-other"));
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert("x-other", HeaderValue::from_static("2"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("close", HeaderValue::from_static("an end-to-end header"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    let out = without_hop_by_hop(&h);
    let mut left: Vec<&str> = out.keys().map(|n| n.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "close"]);
}

#[test]
fn content_length_is_kept_only_when_asked() {
    let mut h = HeaderMap::new();
    h.insert("content-length", HeaderValue::from_static("5"));
    assert!(without_hop_by_hop(&h).contains_key("content-length"));
    let mut out = HeaderMap::new();
    response(
        || map_pairs(&h),
        connection_options(map_pairs(&h)),
        false,
        None,
        None,
        &mut out,
    );
    assert!(out.is_empty());
}

#[test]
fn te_other_than_trailers_is_removed() {
    let mut h = HeaderMap::new();
    h.insert("te", HeaderValue::from_static("gzip"));
    let (out, _) = rewrite(&conn("192.0.2.7"), false, false, &h);
    assert!(!out.contains_key("te"));
}

#[test]
fn te_trailers_survives_for_grpc() {
    let mut h = HeaderMap::new();
    h.insert("te", HeaderValue::from_static("trailers"));
    let (out, _) = rewrite(&conn("192.0.2.7"), false, false, &h);
    assert_eq!(out["te"], "trailers");
}

#[test]
fn untrusted_clients_cannot_spoof_forwarded_headers() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    h.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
    h.insert("host", HeaderValue::from_static("spoofed.example.com"));
    let (out, _) = rewrite(&conn("192.0.2.7"), false, false, &h);
    assert_eq!(out["x-forwarded-for"], "192.0.2.7");
    assert_eq!(out.get_all("x-forwarded-proto").iter().count(), 1);
    assert_eq!(out["x-forwarded-proto"], "https");
    assert_eq!(out["x-forwarded-host"], "app.example.com");
    assert_eq!(out["x-forwarded-port"], "443");
    assert_eq!(
        out.get_all("host").iter().collect::<Vec<_>>(),
        ["app.example.com"]
    );
    assert!(!out.contains_key("forwarded"));
}

#[test]
fn trusted_proxies_are_appended_to() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    let (out, _) = rewrite(&conn("192.0.2.7"), true, true, &h);
    assert_eq!(out["x-forwarded-for"], "198.51.100.1, 192.0.2.7");
    assert_eq!(
        out["x-forwarded-proto"], "http",
        "the first hop knows the real scheme"
    );
    assert_eq!(
        out["forwarded"],
        "for=192.0.2.7;host=\"app.example.com\";proto=https"
    );
}

#[test]
fn every_x_forwarded_for_of_a_trusted_proxy_is_kept() {
    let mut h = HeaderMap::new();
    h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
    h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
    let (out, _) = rewrite(&conn("192.0.2.7"), true, false, &h);
    assert_eq!(
        out["x-forwarded-for"],
        "198.51.100.1, 198.51.100.2, 192.0.2.7"
    );
}

#[test]
fn ipv6_clients_are_quoted_in_forwarded() {
    let (out, _) = rewrite(&conn("2001:db8::1"), false, true, &HeaderMap::new());
    assert_eq!(
        out["forwarded"],
        "for=\"[2001:db8::1]\";host=\"app.example.com\";proto=https"
    );
    assert_eq!(out["x-forwarded-for"], "2001:db8::1");
}

#[test]
fn request_ids_are_kept_or_generated() {
    let (out, id) = rewrite(&conn("192.0.2.7"), false, false, &HeaderMap::new());
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(out["x-request-id"], id.as_str());
    let mut given = HeaderMap::new();
    given.insert("x-request-id", HeaderValue::from_static("abc"));
    let (out, id) = rewrite(&conn("192.0.2.7"), false, false, &given);
    assert_eq!(
        (id.as_str(), out.get_all("x-request-id").iter().count()),
        ("abc", 1)
    );
}

#[test]
fn on_the_wire_fields_are_written_as_lines_and_framing_is_left_to_the_caller() {
    let fields = [
        httparse::Header {
            name: "Host",
            value: b"x",
        },
        httparse::Header {
            name: "Content-Length",
            value: b"5",
        },
        httparse::Header {
            name: "Connection",
            value: b"keep-alive",
        },
        httparse::Header {
            name: "Accept",
            value: b"*/*",
        },
        httparse::Header {
            name: "Upgrade",
            value: b"websocket",
        },
    ];
    let c = conn("192.0.2.7");
    let rw = Rewrite {
        origin: Origin {
            conn: &c,
            trusted: false,
            proto: "http",
            host: b"x:8000",
        },
        rfc7239: false,
        keep_length: false,
        upgrade: Some(b"websocket"),
        connection: connection_options(crate::http1::head::pairs(&fields)),
        underscores: false,
        headers: None,
        endpoint_host: None,
    };
    let mut out = Vec::new();
    let id = request(|| crate::http1::head::pairs(&fields), &rw, &mut out);
    let id = String::from_utf8_lossy(id.as_bytes()).into_owned();
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!(
            "host: x:8000\r\nAccept: */*\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
             x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\nx-forwarded-host: x:8000\r\n\
             x-forwarded-port: 443\r\nx-request-id: {id}\r\n"
        )
    );
}

#[test]
fn field_names_with_underscores_are_dropped_unless_the_listener_keeps_them() {
    let mut input = HeaderMap::new();
    input.insert("x_forwarded_for", "1.2.3.4".parse().unwrap());
    input.insert("x-custom", "1".parse().unwrap());
    let c = conn("192.0.2.7");
    let (out, _) = rewrite(&c, false, false, &input);
    assert!(out.get("x_forwarded_for").is_none(), "{out:?}");
    assert_eq!(out["x-custom"], "1");
    assert_eq!(out["x-forwarded-for"], "192.0.2.7");
    let rw = Rewrite {
        origin: Origin {
            conn: &c,
            trusted: false,
            proto: "http",
            host: b"a",
        },
        rfc7239: false,
        keep_length: true,
        upgrade: None,
        connection: ConnectionOptions::default(),
        underscores: true,
        headers: None,
        endpoint_host: None,
    };
    let mut kept = HeaderMap::new();
    request(|| map_pairs(&input), &rw, &mut kept);
    assert_eq!(kept["x_forwarded_for"], "1.2.3.4");
}

#[test]
fn cookie_crumbs_go_on_as_one_field() {
    let mut input = HeaderMap::new();
    input.append("cookie", "a=1".parse().unwrap());
    input.append("cookie", "b=2".parse().unwrap());
    input.append("cookie", "c=3".parse().unwrap());
    let (out, _) = rewrite(&conn("192.0.2.7"), false, false, &input);
    let cookies: Vec<_> = out.get_all("cookie").iter().collect();
    assert_eq!(cookies, ["a=1; b=2; c=3"]);
    let mut one = HeaderMap::new();
    one.insert("cookie", "a=1; b=2".parse().unwrap());
    let (out, _) = rewrite(&conn("192.0.2.7"), false, false, &one);
    assert_eq!(out["cookie"], "a=1; b=2");
}

#[test]
fn http2_settings_never_goes_on() {
    let mut input = HeaderMap::new();
    input.insert("http2-settings", "AAMAAABkAAQAAP__".parse().unwrap());
    input.insert("upgrade", "h2c".parse().unwrap());
    let (out, _) = rewrite(&conn("192.0.2.7"), false, false, &input);
    assert!(out.get("http2-settings").is_none() && out.get("upgrade").is_none());
}

#[test]
fn trailers_lose_the_fields_a_trailer_must_not_carry() {
    let mut map = HeaderMap::new();
    for name in [
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "te",
        "trailer",
        "upgrade",
        "keep-alive",
        "proxy-authorization",
        "authorization",
        "x-forwarded-for",
        "set-cookie",
        "content-type",
    ] {
        map.insert(HeaderName::from_static(name), "1".parse().unwrap());
    }
    map.insert("x-checksum", "abc".parse().unwrap());
    map.insert("grpc-status", "0".parse().unwrap());
    let frame = trailer_frame(Frame::trailers(map));
    let kept = frame.into_trailers().unwrap();
    let mut names: Vec<_> = kept.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["grpc-status", "x-checksum"]);
}

#[test]
fn route_edits_replace_append_and_remove_request_and_response_fields() {
    use super::edits::{Direction, HeaderEdits};
    let own = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect()
    };
    let edits = HeaderEdits::new(
        Direction::Request,
        &own(&[("x-a", "new")]),
        &own(&[("x-b", "2")]),
        &["X-Gone".to_owned()],
    )
    .unwrap();
    let mut input = HeaderMap::new();
    input.append("X-A", "old".parse().unwrap());
    input.append("x-a", "older".parse().unwrap());
    input.append("x-b", "1".parse().unwrap());
    input.append("x-gone", "1".parse().unwrap());
    let c = ClientHeaders::new("10.0.0.1".parse().unwrap(), 80);
    let rw = Rewrite {
        origin: Origin {
            conn: &c,
            trusted: false,
            proto: "http",
            host: b"asked.test",
        },
        rfc7239: false,
        keep_length: true,
        upgrade: None,
        connection: ConnectionOptions::default(),
        underscores: false,
        headers: Some(&edits),
        endpoint_host: Some(b"inner.svc"),
    };
    let mut out = HeaderMap::new();
    request(|| map_pairs(&input), &rw, &mut out);
    let all =
        |n: &str| -> Vec<&str> { out.get_all(n).iter().map(|v| v.to_str().unwrap()).collect() };
    assert_eq!(all("x-a"), ["new"]);
    assert_eq!(all("x-b"), ["1", "2"]);
    assert!(all("x-gone").is_empty());
    assert_eq!(all("host"), ["inner.svc"]);
    assert_eq!(all("x-forwarded-host"), ["asked.test"]);
    let mut resp = HeaderMap::new();
    response(
        || map_pairs(&input),
        ConnectionOptions::default(),
        true,
        Some(&edits),
        None,
        &mut resp,
    );
    assert_eq!(resp.get_all("x-a").iter().count(), 1);
    assert!(!resp.contains_key("x-gone"));
}
