//! Where an HTTP/2 client is in its byte stream: inside its connection preface, inside a
//! header block, or between frames. Fed every byte the server reads, in whatever pieces the
//! reads return; it parses only the 9-byte frame headers and skips payloads by their length,
//! so it costs O(frame headers), keeps no buffer and never allocates.

/// The client connection preface (RFC 9113 §3.4); a SETTINGS frame must follow it.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length (3), type, flags, stream id (4).
const FRAME_HEADER: u8 = 9;
/// The bytes of a frame header the tracker needs: length, type and flags.
const KEPT: usize = 5;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// The state of one client's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tracker {
    at: At,
    /// The preface and the first frame (SETTINGS) have been read.
    settled: bool,
    /// The frame being read is part of a header block (HEADERS or CONTINUATION).
    block_frame: bool,
    /// A header block is open: its last frame had no END_HEADERS.
    block_open: bool,
    /// Stalls begun: the preface is the first, each frame header begun outside a header
    /// block the next. A stall's number tells it from the next one.
    stalls: u64,
}

/// Where in the stream the next byte goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// This many bytes of [`PREFACE`] matched.
    Preface(u8),
    /// This many bytes of a frame header read; the first [`KEPT`] of them kept.
    Header(u8, [u8; KEPT]),
    /// This many payload bytes left to skip (never 0).
    Payload(u32),
    /// The stream did not start with the preface: not HTTP/2, nothing to track.
    Off,
}

impl Tracker {
    /// A stream of which nothing has been read.
    pub(super) fn new() -> Self {
        Tracker {
            at: At::Preface(0),
            settled: false,
            block_frame: false,
            block_open: false,
            stalls: 1,
        }
    }

    /// The stream did not start with the HTTP/2 preface.
    pub(super) fn is_off(&self) -> bool {
        self.at == At::Off
    }

    /// Reads `bytes`, the next ones of the stream.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.at {
                At::Off => return,
                At::Preface(matched) => {
                    let from = usize::from(*matched);
                    let n = (PREFACE.len() - from).min(bytes.len());
                    if bytes[..n] != PREFACE[from..from + n] {
                        self.at = At::Off;
                        return;
                    }
                    bytes = &bytes[n..];
                    // At most 24: fits.
                    *matched += n as u8;
                    if usize::from(*matched) == PREFACE.len() {
                        self.at = At::Header(0, [0; KEPT]);
                    }
                }
                At::Header(have, kept) => {
                    if *have == 0 && self.settled && !self.block_open {
                        self.stalls += 1;
                    }
                    let n = usize::from(FRAME_HEADER - *have).min(bytes.len());
                    for (i, &b) in bytes[..n].iter().enumerate() {
                        if let Some(slot) = kept.get_mut(usize::from(*have) + i) {
                            *slot = b;
                        }
                    }
                    bytes = &bytes[n..];
                    // At most 9: fits.
                    *have += n as u8;
                    if *have == FRAME_HEADER {
                        let [l0, l1, l2, kind, flags] = *kept;
                        self.begin_frame(u32::from_be_bytes([0, l0, l1, l2]), kind, flags);
                    }
                }
                At::Payload(left) => {
                    let n = bytes.len().min(*left as usize);
                    bytes = &bytes[n..];
                    // At most `left`: fits.
                    *left -= n as u32;
                    if *left == 0 {
                        self.end_frame();
                    }
                }
            }
        }
    }

    fn begin_frame(&mut self, len: u32, kind: u8, flags: u8) {
        self.block_frame = kind == HEADERS || kind == CONTINUATION;
        if self.block_frame {
            self.block_open = flags & END_HEADERS == 0;
        }
        self.at = At::Payload(len);
        if len == 0 {
            self.end_frame();
        }
    }

    fn end_frame(&mut self) {
        self.at = At::Header(0, [0; KEPT]);
        self.block_frame = false;
        self.settled = true;
    }

    /// Whether the client owes the rest of something that must come whole and soon: the
    /// preface and its SETTINGS, a frame header, or a header block.
    pub(super) fn stalled(&self) -> bool {
        match self.at {
            At::Off => false,
            At::Preface(_) => true,
            At::Header(have, _) => have > 0 || self.block_open || !self.settled,
            At::Payload(_) => self.block_frame || self.block_open || !self.settled,
        }
    }

    /// The number of the stall the stream is in, 0 when there is none.
    pub(super) fn stall(&self) -> u64 {
        if self.stalled() { self.stalls } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn settings() -> Vec<u8> {
        frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100])
    }

    fn opened() -> Vec<u8> {
        let mut s = PREFACE.to_vec();
        s.extend(settings());
        s
    }

    fn fed(bytes: &[u8]) -> Tracker {
        let mut t = Tracker::new();
        t.feed(bytes);
        t
    }

    #[test]
    fn a_new_stream_is_stalled_in_its_preface_until_the_first_settings_frame_is_whole() {
        let all = opened();
        assert_eq!(Tracker::new().stall(), 1);
        for end in 0..all.len() {
            let t = fed(&all[..end]);
            assert_eq!(t.stall(), 1, "after {end} bytes");
        }
        assert_eq!(fed(&all).stall(), 0);
    }

    #[test]
    fn a_stream_that_is_not_http2_is_off_and_never_stalled() {
        for text in [&b"GET / HTTP/1.1\r\n"[..], b"PRI * HTTP/1.1", b"x"] {
            let t = fed(text);
            assert!(t.is_off(), "{text:?}");
            assert_eq!(t.stall(), 0);
        }
        let mut t = fed(b"PRI * HTTP/2.0\r\n");
        assert!(!t.is_off());
        t.feed(b"\r\nSM\r\n\r\n");
        assert!(!t.is_off());
    }

    #[test]
    fn a_headers_frame_with_end_headers_read_whole_is_no_stall() {
        let mut s = opened();
        s.extend(frame(HEADERS, END_HEADERS | 0x1, 1, &[0x82, 0x84, 0x86]));
        assert_eq!(fed(&s).stall(), 0);
    }

    #[test]
    fn a_header_block_is_one_stall_from_its_headers_frame_to_end_headers() {
        let mut s = opened();
        let start = s.len();
        s.extend(frame(HEADERS, 0, 1, &[0x82, 0x84]));
        let mut ends = vec![s.len()];
        for _ in 0..3 {
            s.extend(frame(CONTINUATION, 0, 1, &[0x86]));
            ends.push(s.len());
        }
        s.extend(frame(CONTINUATION, END_HEADERS, 1, &[0x87]));
        let stall = fed(&s[..start + 1]).stall();
        assert_ne!(stall, 0);
        for end in start + 1..s.len() {
            assert_eq!(fed(&s[..end]).stall(), stall, "after {end} bytes");
        }
        assert_eq!(fed(&s).stall(), 0);
    }

    #[test]
    fn payloads_are_skipped_by_length_and_whole_frames_leave_no_stall() {
        let mut s = opened();
        // A DATA payload that looks like a HEADERS frame header without END_HEADERS.
        let fake = frame(HEADERS, 0, 1, &[]);
        s.extend(frame(0x0, 0, 1, &fake));
        s.extend(frame(0x6, 0, 0, &[0; 8]));
        let t = fed(&s);
        assert_eq!(t.stall(), 0);
        assert_eq!(t.at, At::Header(0, [0; KEPT]));
    }

    #[test]
    fn a_split_frame_header_is_a_stall_of_its_own_each_time() {
        let mut s = opened();
        let first = s.len();
        s.extend(frame(0x8, 0, 0, &[0, 0, 0, 1]));
        let second = s.len();
        s.extend(frame(0x8, 0, 0, &[0, 0, 0, 1]));
        let a = fed(&s[..first + 3]).stall();
        let b = fed(&s[..second + 3]).stall();
        assert!(a != 0 && b != 0 && a != b, "{a} {b}");
        // Its payload is no stall: only header blocks are.
        assert_eq!(fed(&s[..first + 10]).stall(), 0);
    }

    #[test]
    fn a_headers_payload_still_to_come_is_a_stall_even_with_end_headers() {
        let mut s = opened();
        s.extend(frame(HEADERS, END_HEADERS, 1, &[0x82, 0x84, 0x86]));
        assert_ne!(fed(&s[..s.len() - 1]).stall(), 0);
        assert_eq!(fed(&s).stall(), 0);
    }

    /// Frames of any type, flags and length (short), as bytes.
    fn frames() -> impl Strategy<Value = Vec<u8>> {
        let one = (
            prop::sample::select(vec![0u8, 1, 3, 4, 6, 8, 9, 0x20]),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40),
        );
        prop::collection::vec(one, 0..12).prop_map(|fs| {
            let mut s = opened();
            for (kind, flags, payload) in fs {
                s.extend(frame(kind, flags, 1, &payload));
            }
            s
        })
    }

    /// Cut points into a stream of `len` bytes, as fractions.
    fn cuts() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.0..1.0f64, 0..16)
    }

    fn fed_in_pieces(stream: &[u8], cuts: &[f64]) -> Tracker {
        let mut at: Vec<usize> = cuts
            .iter()
            .map(|c| (c * stream.len() as f64) as usize)
            .collect();
        at.push(stream.len());
        at.sort_unstable();
        let mut t = Tracker::new();
        let mut from = 0;
        for to in at {
            t.feed(&stream[from..to]);
            from = to;
        }
        t
    }

    proptest! {
        #[test]
        fn any_split_of_a_frame_stream_gives_the_same_state(stream in frames(), cuts in cuts()) {
            prop_assert_eq!(fed_in_pieces(&stream, &cuts), fed(&stream));
        }

        #[test]
        fn any_split_of_any_bytes_gives_the_same_state(
            head in prop::collection::vec(any::<u8>(), 0..30),
            tail in prop::collection::vec(any::<u8>(), 0..200),
            preface in any::<bool>(),
            cuts in cuts(),
        ) {
            let mut stream = if preface { opened() } else { Vec::new() };
            stream.extend(head);
            stream.extend(tail);
            prop_assert_eq!(fed_in_pieces(&stream, &cuts), fed(&stream));
        }

        #[test]
        fn the_stall_after_each_prefix_is_the_same_however_the_prefix_was_split(
            stream in frames(), cuts in cuts(), end in 0.0..=1.0f64,
        ) {
            let end = (end * stream.len() as f64) as usize;
            prop_assert_eq!(
                fed_in_pieces(&stream[..end], &cuts).stall(),
                fed(&stream[..end]).stall()
            );
        }
    }
}
