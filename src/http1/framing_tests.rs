use super::*;

/// Decodes `input` fed in pieces of at most `step` bytes, the way bytes arrive from a socket;
/// returns the data, the trailer section and the bytes left after the body.
fn decode(
    framing: Framing,
    input: &[u8],
    step: usize,
) -> Result<(Vec<u8>, Vec<u8>, usize), FramingError> {
    let mut decoder = Decoder::new(framing);
    let mut data = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.next(&buf)? {
            Event::Data(n) => {
                // Use only part of it sometimes, as a writer that takes less would.
                let used = n.div_ceil(2);
                data.extend_from_slice(&buf[..used]);
                buf.drain(..used);
                decoder.consume(used);
            }
            Event::Chunk { line, .. } | Event::LastChunk { line } => drop(buf.drain(..line)),
            Event::ChunkEnd => drop(buf.drain(..2)),
            Event::End { trailers } => {
                let section = buf[..trailers].to_vec();
                return Ok((data, section, buf.len() - trailers + input.len() - fed));
            }
            Event::NeedMore if fed == input.len() => {
                decoder.eof()?;
                return Ok((data, Vec::new(), 0));
            }
            Event::NeedMore => {
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

/// Decodes with every piece size from 1 to the whole input; all must agree.
fn decode_all_ways(
    framing: Framing,
    input: &[u8],
) -> Result<(Vec<u8>, Vec<u8>, usize), FramingError> {
    let whole = decode(framing, input, input.len().max(1));
    for step in 1..input.len() {
        assert_eq!(decode(framing, input, step), whole, "pieces of {step}");
    }
    whole
}

#[test]
fn content_length_bodies_end_after_their_length() {
    let (data, trailers, left) = decode_all_ways(Framing::Length(5), b"hello, next").unwrap();
    assert_eq!(
        (&data[..], &trailers[..], left),
        (&b"hello"[..], &b""[..], 6)
    );
    assert_eq!(decode_all_ways(Framing::Length(0), b"next").unwrap().2, 4);
    assert_eq!(decode_all_ways(Framing::Empty, b"").unwrap().0, b"");
}

#[test]
fn a_body_cut_short_is_truncated() {
    assert_eq!(
        decode(Framing::Length(10), b"short", 5),
        Err(FramingError::Truncated)
    );
    assert_eq!(
        decode(Framing::Chunked, b"5\r\nhel", 2),
        Err(FramingError::Truncated)
    );
    assert_eq!(
        decode(Framing::Chunked, b"5\r\nhello\r\n", 3),
        Err(FramingError::Truncated)
    );
}

#[test]
fn close_delimited_bodies_run_to_the_end() {
    let (data, _, _) = decode_all_ways(Framing::Close, b"all of it").unwrap();
    assert_eq!(data, b"all of it");
}

#[test]
fn chunked_bodies_yield_their_data_and_trailers() {
    // input, data, trailer section, bytes left after the body
    type Case = (&'static [u8], &'static [u8], &'static [u8], usize);
    let cases: &[Case] = &[
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello", b"\r\n", 0),
        (
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET",
            b"hello world",
            b"\r\n",
            3,
        ),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", b"\r\n", 0),
        (
            b"a;name=value;x\r\n0123456789\r\n0;last\r\n\r\n",
            b"0123456789",
            b"\r\n",
            0,
        ),
        (b"5 ; ext\r\nhello\r\n0\r\n\r\n", b"hello", b"\r\n", 0),
        (
            b"0000000000000005\r\nhello\r\n0\r\n\r\n",
            b"hello",
            b"\r\n",
            0,
        ),
        (
            b"2\r\nhi\r\n0\r\ngrpc-status: 0\r\nx: y\r\n\r\n",
            b"hi",
            b"grpc-status: 0\r\nx: y\r\n\r\n",
            0,
        ),
    ];
    for (input, data, trailers, left) in cases {
        let got = decode_all_ways(Framing::Chunked, input).unwrap();
        assert_eq!(
            (&got.0[..], &got.1[..], got.2),
            (*data, *trailers, *left),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn malformed_chunked_framing_is_refused() {
    let cases: &[(&[u8], FramingError)] = &[
        (b"\r\nhello\r\n0\r\n\r\n", FramingError::ChunkSize), // no size
        (b"x\r\n", FramingError::ChunkSize),
        (b"-5\r\nhello\r\n0\r\n\r\n", FramingError::ChunkSize),
        (b"+5\r\nhello\r\n0\r\n\r\n", FramingError::ChunkSize),
        (b"0x5\r\nhello\r\n0\r\n\r\n", FramingError::ChunkSize),
        (b"5\nhello\r\n0\r\n\r\n", FramingError::ChunkSize), // bare LF
        (b"5\rhello\r\n", FramingError::ChunkSize),          // bare CR
        (b"5;a\nb\r\nhello\r\n", FramingError::ChunkSize),   // LF inside an extension
        (b"5 5\r\nhello\r\n", FramingError::ChunkSize),
        (b"10000000000000000\r\n", FramingError::ChunkSize), // 17 digits: over u64
        (b"5\r\nhelloX\r\n0\r\n\r\n", FramingError::ChunkEnd),
        (b"5\r\nhello\n0\r\n\r\n", FramingError::ChunkEnd),
        (b"0\r\nbad trailer\r\n\r\n", FramingError::Trailers),
    ];
    for (input, error) in cases {
        assert_eq!(
            decode(Framing::Chunked, input, input.len()),
            Err(*error),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn endless_size_lines_and_trailers_are_refused() {
    let mut line = b"5;".to_vec();
    line.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE));
    assert_eq!(
        decode(Framing::Chunked, &line, 64),
        Err(FramingError::ChunkSize)
    );
    let mut trailers = b"0\r\n".to_vec();
    for i in 0..2000 {
        trailers.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
    }
    assert_eq!(
        decode(Framing::Chunked, &trailers, 512),
        Err(FramingError::Trailers)
    );
}

#[test]
fn the_decoder_reports_what_is_left() {
    let mut d = Decoder::new(Framing::Length(10));
    assert_eq!(d.remaining(), Some(10));
    assert_eq!(d.next(b"0123").unwrap(), Event::Data(4));
    d.consume(4);
    assert_eq!(d.remaining(), Some(6));
    assert!(!d.is_chunked());
    assert!(Decoder::new(Framing::Chunked).is_chunked());
    assert!(Decoder::new(Framing::Empty).is_done());
    assert_eq!(Decoder::new(Framing::Close).remaining(), None);
}

#[test]
fn chunk_lines_are_lowercase_hex() {
    for (size, line) in [(1u64, &b"1\r\n"[..]), (255, b"ff\r\n"), (4096, b"1000\r\n")] {
        let mut out = Vec::new();
        chunk_line(&mut out, size);
        assert_eq!(out, line);
    }
}

#[test]
fn trailer_fields_are_read_back() {
    let mut seen = Vec::new();
    trailer_fields(b"grpc-status: 0\r\ngrpc-message: ok\r\n\r\n", |n, v| {
        seen.push((n.to_owned(), v.to_vec()));
    });
    assert_eq!(
        seen,
        [
            ("grpc-status".to_owned(), b"0".to_vec()),
            ("grpc-message".to_owned(), b"ok".to_vec())
        ]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_chunked_body_decodes_to_its_data_however_it_arrives(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8),
            step in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for chunk in &chunks {
                chunk_line(&mut wire, chunk.len() as u64);
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let (data, _, left) = decode(Framing::Chunked, &wire, step).unwrap();
            prop_assert_eq!(data, chunks.concat());
            prop_assert_eq!(left, 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_parsers(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(Framing::Chunked, &input, 7);
            let mut fields = crate::http1::head::field_buf();
            let _ = crate::http1::head::request(&input, &mut fields, 512);
            let mut fields = crate::http1::head::field_buf();
            let _ = crate::http1::head::response(&input, &mut fields, 512, false);
            // Past a valid start line too, where the fields are read.
            let mut head = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n".to_vec();
            head.extend_from_slice(&input);
            let mut fields = crate::http1::head::field_buf();
            let _ = crate::http1::head::request(&head, &mut fields, 1024);
            let mut head = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n".to_vec();
            head.extend_from_slice(&input);
            let mut fields = crate::http1::head::field_buf();
            let _ = crate::http1::head::response(&head, &mut fields, 1024, false);
        }
    }
}
