use super::*;

fn req(text: &str) -> Result<Option<(Framing, Option<String>, bool)>, HeadError> {
    let mut fields = field_buf();
    let parsed = request(text.as_bytes(), &mut fields, 8192)?;
    Ok(parsed.map(|r| {
        (
            r.framing,
            r.host.map(|h| String::from_utf8_lossy(h).into_owned()),
            r.keep_alive(),
        )
    }))
}

#[test]
fn request_framing_follows_rfc_9112() {
    let cases: &[(&str, Framing)] = &[
        ("GET / HTTP/1.1\r\nhost: a\r\n\r\n", Framing::Empty),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\n",
            Framing::Length(5),
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nContent-Length: 5\r\n\r\n",
            Framing::Length(5),
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
            Framing::Chunked,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
            Framing::Chunked,
        ),
    ];
    for (text, framing) in cases {
        assert_eq!(req(text).unwrap().unwrap().0, *framing, "{text}");
    }
}

#[test]
fn ambiguous_requests_are_refused() {
    let cases: &[(&str, HeadError)] = &[
        (
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
            HeadError::LengthAndChunked,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            HeadError::ContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5, 6\r\n\r\n",
            HeadError::ContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: -5\r\n\r\n",
            HeadError::ContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            HeadError::TransferCoding,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\n",
            HeadError::TransferCoding,
        ),
        (
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
            HeadError::TransferCoding,
        ),
        (
            "GET / HTTP/1.1\r\nhost: a\r\nHost: b\r\n\r\n",
            HeadError::DuplicateHost,
        ),
    ];
    for (text, error) in cases {
        assert_eq!(req(text).unwrap_err(), *error, "{text}");
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    }
}

#[test]
fn malformed_heads_are_syntax_errors() {
    for text in [
        "GARBAGE\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
        "GET / HTTP/1.1\r\nname : x\r\n\r\n",
        "GET / HTTP/1.1\r\nx: a\r\n folded\r\n\r\n",
        "\x16\x03\x01\x00\x05hello",
    ] {
        assert!(matches!(req(text), Err(HeadError::Syntax(_))), "{text:?}");
    }
}

#[test]
fn heads_are_bounded_in_size_and_fields() {
    assert_eq!(
        req("GET / HTTP/1.1\r\nhost: a\r\n").unwrap(),
        None,
        "incomplete"
    );
    let big = format!("GET / HTTP/1.1\r\nx: {}\r\n", "y".repeat(9000));
    assert_eq!(req(&big).unwrap_err(), HeadError::TooLarge(8192));
    let complete_but_big = format!("{big}\r\n");
    assert_eq!(
        req(&complete_but_big).unwrap_err(),
        HeadError::TooLarge(8192)
    );
    let many: String = (0..=MAX_FIELDS).map(|i| format!("x{i}: y\r\n")).collect();
    let err = req(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err();
    assert_eq!(err, HeadError::TooManyFields);
    assert_eq!(
        err.status(),
        http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[test]
fn keep_alive_depends_on_version_and_connection() {
    let ka = |t: &str| req(t).unwrap().unwrap().2;
    assert!(ka("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
    assert!(!ka(
        "GET / HTTP/1.1\r\nhost: a\r\nconnection: Close\r\n\r\n"
    ));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"));
    assert_eq!(
        req("GET / HTTP/1.1\r\nHOST: x.test\r\n\r\n")
            .unwrap()
            .unwrap()
            .1
            .as_deref(),
        Some("x.test")
    );
}

fn resp(text: &str, head_request: bool) -> Result<(u16, Framing, bool), HeadError> {
    let mut fields = field_buf();
    let r = response(text.as_bytes(), &mut fields, 8192, head_request)?.unwrap();
    Ok((r.status, r.framing, r.keep_alive))
}

#[test]
fn response_framing_follows_rfc_9112() {
    let cases: &[(&str, bool, u16, Framing, bool)] = &[
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n",
            false,
            200,
            Framing::Length(2),
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
            200,
            Framing::Chunked,
            true,
        ),
        // Transfer-Encoding wins over Content-Length.
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
            200,
            Framing::Chunked,
            true,
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", false, 200, Framing::Close, false),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n",
            false,
            200,
            Framing::Length(2),
            false,
        ),
        (
            "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n",
            false,
            200,
            Framing::Length(2),
            false,
        ),
        (
            "HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n",
            false,
            200,
            Framing::Length(2),
            true,
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
            true,
            200,
            Framing::Empty,
            true,
        ),
        (
            "HTTP/1.1 204 No Content\r\n\r\n",
            false,
            204,
            Framing::Empty,
            true,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
            false,
            304,
            Framing::Empty,
            true,
        ),
        (
            "HTTP/1.1 100 Continue\r\n\r\n",
            false,
            100,
            Framing::Empty,
            true,
        ),
    ];
    for (text, head, status, framing, keep_alive) in cases {
        assert_eq!(
            resp(text, *head).unwrap(),
            (*status, *framing, *keep_alive),
            "{text}"
        );
    }
}

#[test]
fn broken_responses_are_refused() {
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false).unwrap_err(),
        HeadError::ContentLength
    );
    assert_eq!(
        resp(
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            false
        )
        .unwrap_err(),
        HeadError::ContentLength
    );
    // A coding besides chunked could be passed on to neither an HTTP/1.1 nor an HTTP/2 client
    // as it came, and a body chunked twice would be undone once.
    for te in [
        "gzip",
        "gzip, chunked",
        "",
        "chunked\r\ntransfer-encoding: br",
        "chunked, chunked",
        "chunked\r\ntransfer-encoding: chunked",
    ] {
        let text = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: {te}\r\n\r\n");
        assert_eq!(
            resp(&text, false).unwrap_err(),
            HeadError::ResponseCoding,
            "{te}"
        );
    }
    assert!(matches!(
        resp("HTTP/1.1 2000 OK\r\n\r\n", false),
        Err(HeadError::Syntax(_))
    ));
    assert!(matches!(
        resp("SSH-2.0-OpenSSH\r\n\r\n", false),
        Err(HeadError::Syntax(_))
    ));
}

#[test]
fn an_http_1_0_request_with_transfer_encoding_is_refused() {
    let mut fields = field_buf();
    let head = b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        request(head, &mut fields, 1024).unwrap_err(),
        HeadError::Http10Coding
    );
}

#[test]
fn a_status_below_100_is_refused() {
    let mut fields = field_buf();
    let head = b"HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(
        response(head, &mut fields, 1024, false).unwrap_err(),
        HeadError::Syntax(httparse::Error::Status)
    );
}
