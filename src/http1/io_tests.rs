use super::*;

/// A source that hands out its bytes at most `step` at a time.
struct Pieces {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .step
            .min(self.data.len() - self.at)
            .min(buf.remaining());
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Relays a body framed as `framing` out of `input` (read `step` bytes at a time), after
/// `head`, with an optional limit; returns what was written and what stayed in the source.
async fn relay(
    framing: Framing,
    input: &[u8],
    step: usize,
    head: &[u8],
    limit: Option<u64>,
) -> Result<(Vec<u8>, Vec<u8>, u64), RelayError> {
    let source = Pieces {
        data: input.to_vec(),
        at: 0,
        step,
    };
    let mut src = Buffered::new(source);
    let mut dst: Vec<u8> = Vec::new();
    let mut relay = Relay::new(framing, head.to_vec()).with_limit(limit);
    std::future::poll_fn(|cx| relay.poll(cx, &mut src, &mut dst)).await?;
    assert!(relay.is_done());
    let mut left = src.buf.to_vec();
    left.extend_from_slice(&src.io.data[src.io.at..]);
    Ok((dst, left, relay.passed()))
}

#[tokio::test]
async fn a_length_body_follows_its_head_and_leaves_the_next_request() {
    for step in [1, 3, 64] {
        let (out, left, passed) = relay(Framing::Length(5), b"helloGET /", step, b"HEAD\r\n", None)
            .await
            .unwrap();
        assert_eq!(out, b"HEAD\r\nhello");
        assert_eq!(left, b"GET /");
        assert_eq!(passed, 5);
    }
}

#[tokio::test]
async fn chunked_bodies_are_reframed_canonically() {
    let input = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nGrpc-Status: 0\r\n\r\nNEXT";
    for step in [1, 2, 7, 100] {
        let (out, left, passed) = relay(Framing::Chunked, input, step, b"", None)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "5\r\nhello\r\na\r\n0123456789\r\n0\r\nGrpc-Status: 0\r\n\r\n"
        );
        assert_eq!(left, b"NEXT");
        assert_eq!(passed, 15);
    }
}

#[tokio::test]
async fn a_large_body_arrives_whole() {
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let (out, left, _) = relay(
        Framing::Length(body.len() as u64),
        &body,
        70_000,
        b"H",
        None,
    )
    .await
    .unwrap();
    assert_eq!(out.len(), body.len() + 1);
    assert!(out[1..] == body[..]);
    assert!(left.is_empty());
    let mut chunked = Vec::new();
    for piece in body.chunks(40_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (out, _, passed) = relay(Framing::Chunked, &chunked, 65_536, b"", None)
        .await
        .unwrap();
    assert_eq!(out, chunked);
    assert_eq!(passed, body.len() as u64);
}

#[tokio::test]
async fn a_close_delimited_body_runs_to_the_end() {
    let (out, _, _) = relay(Framing::Close, b"until the end", 4, b"", None)
        .await
        .unwrap();
    assert_eq!(out, b"until the end");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let err = relay(
        Framing::Chunked,
        b"6\r\n012345\r\n0\r\n\r\n",
        100,
        b"",
        Some(5),
    )
    .await;
    assert!(matches!(err, Err(RelayError::TooLarge(5))), "{err:?}");
    let ok = relay(Framing::Length(5), b"01234", 100, b"", Some(5)).await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn a_source_that_stops_early_or_breaks_the_framing_fails() {
    let cut = relay(Framing::Length(10), b"short", 2, b"", None).await;
    assert!(
        matches!(cut, Err(RelayError::Framing(FramingError::Truncated))),
        "{cut:?}"
    );
    let bad = relay(Framing::Chunked, b"zz\r\n", 10, b"", None).await;
    assert!(
        matches!(bad, Err(RelayError::Framing(FramingError::ChunkSize))),
        "{bad:?}"
    );
}

#[tokio::test]
async fn an_empty_body_writes_the_head_only() {
    let (out, left, _) = relay(Framing::Empty, b"NEXT", 10, b"HEAD", None)
        .await
        .unwrap();
    assert_eq!((&out[..], &left[..]), (&b"HEAD"[..], &b"NEXT"[..]));
    assert!(!Relay::new(Framing::Empty, Vec::new()).has_body());
    assert!(Relay::new(Framing::Length(1), Vec::new()).has_body());
}

#[tokio::test]
async fn a_buffer_is_taken_when_bytes_come_and_given_back_when_used_up() {
    let (mut client, mut server) = tokio::io::duplex(64 * 1024);
    let mut src = Buffered::new(&mut server);
    // Nothing to read: the read waits, and no buffer is taken.
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(src.poll_fill(&mut cx).is_pending());
    assert_eq!(src.buf.capacity(), 0);
    // Bytes come: a buffer of the first read size holds them.
    tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(src.fill().await.unwrap(), 18);
    assert_eq!(&src.buf[..], b"GET / HTTP/1.1\r\n\r\n");
    assert!(src.buf.capacity() >= START_READ);
    // Not used up: kept.
    src.release();
    assert_eq!(src.buf.len(), 18);
    // Used up: given back.
    src.buf.advance(18);
    src.release();
    assert_eq!(src.buf.capacity(), 0);
    // More than the first read size at once: all of it arrives, over several reads.
    let big = vec![b'x'; 3 * START_READ];
    tokio::io::AsyncWriteExt::write_all(&mut client, &big)
        .await
        .unwrap();
    while src.buf.len() < big.len() {
        assert!(src.fill().await.unwrap() > 0);
    }
    assert_eq!(&src.buf[..], &big[..]);
}

#[test]
fn decimals_are_written_in_full() {
    for n in [0u64, 7, 10, 200, 1_048_576, u64::MAX] {
        let mut out = Vec::new();
        push_decimal(&mut out, n);
        assert_eq!(out, n.to_string().as_bytes());
    }
}
