//! Where one HTTP/1.1 request ends and the next begins, followed byte by byte on a
//! connection's input without buffering anything but request heads: enough to know when a
//! request head is being read (to time it, [`super::guard`]), and where a chunked body's
//! framing breaks. It reads what actix-http's parser reads (RFC 9112 section 6: chunked wins
//! over Content-Length; requests with both are refused before a handler sees them) and stops
//! following (`Opaque`) at anything else it does not expect, leaving the refusal to
//! actix-http, which closes such connections.
//!
//! **A chunked body's control lines are held back.** The bytes between one chunk's data and
//! the next chunk's data (the data's line end, the next size line; the last chunk and its
//! trailers) are counted as [`Framing::held`] until the line is whole and valid. So when a
//! size line turns out malformed, the guard has handed actix-http nothing of it, and can end
//! the body cleanly there ([`Framing::clean_end`]) instead of letting actix-http see the
//! break: actix-http takes a malformed chunk for a client that went away and stops writing
//! the response, losing the answers to every order still being decided.

/// The longest request head followed; a longer one is actix-http's to refuse (431).
const MAX_HEAD: usize = 64 * 1024;

/// The longest run of chunked-body control bytes held back (a chunk's line end and the next
/// size line with its extensions, or the last chunk with its trailers); longer is a break.
pub const MAX_HELD: usize = 512;

/// The framing of one connection's requests.
#[derive(Debug)]
pub struct Framing {
    state: State,
    /// The head being read (bounded by [`MAX_HEAD`]).
    head: Vec<u8>,
    /// Request heads read whole so far.
    heads: u64,
    /// Trailing bytes of the input so far not to hand on yet (see the module doc).
    held: usize,
    /// Whether the held bytes begin right after a chunk's data (else after a request head).
    after_data: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests or in a head (`head` holds what came of it).
    Head,
    /// In a body of known length: bytes still to come.
    Length(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// No longer followed (an upgrade, HTTP/2, or input actix-http will refuse).
    Opaque,
    /// A chunked body whose framing broke: why. Nothing after is followed.
    Broken(&'static str),
    /// A request head with both Transfer-Encoding and Content-Length (RFC 9112 section
    /// 6.3): which one frames the body is what a proxy in front and the router could
    /// disagree on (request smuggling). Nothing of it or after it is handed on.
    Refused,
}

/// Where a chunked body is, byte by byte, as actix-http's decoder (`h1/chunked.rs`) reads it:
/// what it accepts is accepted, what it refuses is a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The size's hex digits, the size so far.
    Size(u64),
    /// Blanks after the size.
    SizeBlank(u64),
    /// A chunk extension (ignored).
    Extension(u64),
    /// The size line's CR came: its LF is next.
    SizeLf(u64),
    /// Data bytes still to come.
    Data(u64),
    /// The CR after a chunk's data is next.
    DataCr,
    /// The LF after a chunk's data is next.
    DataLf,
    /// After the last chunk (size 0): the CR of the empty line ending the body (no
    /// trailers: actix-http refuses them).
    EndCr,
    /// The LF of that empty line.
    EndLf,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            state: State::Head,
            head: Vec::new(),
            heads: 0,
            held: 0,
            after_data: false,
        }
    }
}

impl Framing {
    /// Request heads read whole so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Whether a request head has begun and not ended.
    pub fn in_head(&self) -> bool {
        self.state == State::Head && !self.head.is_empty()
    }

    /// How many of the last bytes followed are not to be handed on yet: an unfinished
    /// control line of a chunked body, or after a break everything from the start of the
    /// line that broke.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Whether a request body is being read (not all of it has come).
    pub fn in_body(&self) -> bool {
        matches!(self.state, State::Length(_) | State::Chunked(_))
    }

    /// Whether a request head was refused (both Transfer-Encoding and Content-Length).
    pub fn refused(&self) -> bool {
        self.state == State::Refused
    }

    /// `count` held bytes were handed on after all (no room to hold a huge head back).
    pub fn handed_on(&mut self, count: usize) {
        self.held = self.held.saturating_sub(count);
    }

    /// Why a chunked body's framing broke, once it has.
    pub fn broken(&self) -> Option<&'static str> {
        match self.state {
            State::Broken(reason) => Some(reason),
            _ => None,
        }
    }

    /// After a break: the bytes that end the body cleanly where the held bytes began.
    pub fn clean_end(&self) -> &'static [u8] {
        if self.after_data {
            b"\r\n0\r\n\r\n"
        } else {
            b"0\r\n\r\n"
        }
    }

    /// Follows the next bytes of the connection's input.
    pub fn advance(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let used = match self.state {
                State::Opaque => return,
                State::Broken(_) | State::Refused => {
                    self.held += input.len();
                    return;
                }
                State::Head => self.head_bytes(input),
                State::Length(left) => {
                    let used = left.min(input.len() as u64);
                    self.state = match left - used {
                        0 => State::Head,
                        left => State::Length(left),
                    };
                    used as usize
                }
                State::Chunked(chunk) => self.chunk_bytes(chunk, input),
            };
            input = &input[used..];
        }
    }

    /// Takes head bytes up to the head's end; how many it used.
    fn head_bytes(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        if self.head.is_empty() {
            // Empty lines before a request line are ignored (RFC 9112 section 2.2).
            used = input
                .iter()
                .take_while(|byte| matches!(byte, b'\r' | b'\n'))
                .count();
        }
        let rest = &input[used..];
        // The end may straddle reads: look again from a little before the new bytes.
        let from = self.head.len().saturating_sub(3);
        let taken = rest.len().min(MAX_HEAD + 1 - self.head.len().min(MAX_HEAD));
        self.head.extend_from_slice(&rest[..taken]);
        let Some(end) = head_end(&self.head[from..]).map(|end| from + end) else {
            if self.head.len() > MAX_HEAD {
                (self.state, self.held) = (State::Opaque, 0);
            } else {
                self.held = self.head.len();
            }
            return used + taken;
        };
        // Bytes past the head's end belong to its body or the next request.
        let extra = self.head.len() - end;
        self.head.truncate(end);
        self.state = body_of(&self.head);
        self.after_data = false;
        // A refused head is never handed on, nor anything after it.
        self.held = if self.state == State::Refused { end } else { 0 };
        self.head.clear();
        self.heads += 1;
        used + taken - extra
    }

    /// Takes bytes of a chunked body; how many it used.
    fn chunk_bytes(&mut self, chunk: Chunk, input: &[u8]) -> usize {
        if let Chunk::Data(left) = chunk {
            let used = left.min(input.len() as u64);
            self.state = match left - used {
                0 => {
                    (self.held, self.after_data) = (0, true);
                    State::Chunked(Chunk::DataCr)
                }
                left => State::Chunked(Chunk::Data(left)),
            };
            return used as usize;
        }
        let next = chunk_byte(chunk, input[0]);
        self.held += 1;
        self.state = match next {
            // A whole size line: it and the line end before it go on with the data; the
            // end of the body goes on whole.
            State::Chunked(Chunk::Data(_)) | State::Head => {
                self.held = 0;
                next
            }
            State::Broken(_) => next,
            _ if self.held > MAX_HELD => {
                State::Broken("a chunk size line or its extensions are too long")
            }
            _ => next,
        };
        if let State::Broken(_) = self.state {
            self.held += input.len() - 1;
            return input.len();
        }
        1
    }
}

/// The state after one byte of a chunked body's control lines (not its data).
fn chunk_byte(chunk: Chunk, byte: u8) -> State {
    let broken = State::Broken;
    State::Chunked(match (chunk, byte) {
        (Chunk::Size(size), b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
            let digit = (byte as char).to_digit(16).unwrap_or(0);
            match size.checked_mul(16) {
                Some(size) => Chunk::Size(size + u64::from(digit)),
                None => return broken("a chunk size is too big"),
            }
        }
        (Chunk::Size(size) | Chunk::SizeBlank(size), b'\t' | b' ') => Chunk::SizeBlank(size),
        (Chunk::Size(size) | Chunk::SizeBlank(size) | Chunk::Extension(size), b';') => {
            Chunk::Extension(size)
        }
        (Chunk::Size(size) | Chunk::SizeBlank(size) | Chunk::Extension(size), b'\r') => {
            Chunk::SizeLf(size)
        }
        (Chunk::Size(_), _) => return broken("a chunk size is not a hexadecimal number"),
        (Chunk::SizeBlank(_), _) => return broken("a chunk size line has stray characters"),
        (Chunk::Extension(_), 0x00..=0x08 | 0x0a..=0x1f | 0x7f) => {
            return broken("a chunk extension has a control character");
        }
        (Chunk::Extension(size), _) => Chunk::Extension(size),
        (Chunk::SizeLf(0), b'\n') => Chunk::EndCr,
        (Chunk::SizeLf(size), b'\n') => Chunk::Data(size),
        (Chunk::SizeLf(_), _) => return broken("a chunk size line does not end in CRLF"),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataCr, _) => return broken("a chunk's data is longer than its size says"),
        (Chunk::DataLf, b'\n') => Chunk::Size(0),
        (Chunk::DataLf, _) => return broken("a chunk's data does not end in CRLF"),
        (Chunk::EndCr, b'\r') => Chunk::EndLf,
        (Chunk::EndCr, _) => return broken("trailers after the last chunk are not accepted"),
        (Chunk::EndLf, b'\n') => return State::Head,
        (Chunk::EndLf, _) => return broken("the last chunk does not end in CRLF"),
        (Chunk::Data(_), _) => unreachable!("data is taken whole"),
    })
}

/// Where the head in `bytes` ends (just past its empty line), if it does.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(newline) = bytes[at..].iter().position(|byte| *byte == b'\n') {
        let line_end = at + newline;
        let next = line_end + 1;
        match bytes.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if bytes.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            _ => at = next,
        }
    }
    None
}

/// What follows a request head: its body's framing, or the next head.
fn body_of(head: &[u8]) -> State {
    let mut lines = head
        .split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    if request_line.starts_with(b"PRI ") {
        return State::Opaque;
    }
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some(colon) = line.iter().position(|byte| *byte == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Chunked is the last coding when present (RFC 9112 section 6.1).
            let last = value
                .rsplit(|byte| *byte == b',')
                .next()
                .unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            // `identity` is no coding at all (actix-http takes the Content-Length then).
            if !chunked && !value.eq_ignore_ascii_case(b"identity") {
                return State::Opaque;
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                Some(value) => length = Some(value),
                None => return State::Opaque,
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") && value.eq_ignore_ascii_case(b"websocket")
        {
            // The only upgrade actix-http acts on; after it the bytes are not HTTP.
            return State::Opaque;
        }
    }
    match (chunked, length) {
        (true, Some(_)) => State::Refused,
        (true, None) => State::Chunked(Chunk::Size(0)),
        (false, Some(0) | None) => State::Head,
        (false, Some(length)) => State::Length(length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` fed in pieces of `step` bytes: whether a head is in progress after each.
    fn follow(input: &[u8], step: usize) -> Framing {
        let mut framing = Framing::default();
        for piece in input.chunks(step) {
            framing.advance(piece);
        }
        framing
    }

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

    #[test]
    fn heads_without_bodies_follow_each_other_however_the_bytes_are_cut() {
        let mut input = GET.repeat(3);
        input.extend_from_slice(b"GET /readyz HT");
        for step in [1, 2, 3, 7, 1000] {
            let framing = follow(&input, step);
            assert_eq!(framing.heads(), 3, "step {step}");
            assert!(framing.in_head(), "step {step}: the fourth head has begun");
        }
    }

    #[test]
    fn a_sized_body_is_skipped_and_the_next_head_found() {
        let mut input =
            b"POST /v1/orders HTTP/1.1\r\ncontent-length: 10\r\n\r\n0123456789".to_vec();
        for step in [1, 4, 1000] {
            let framing = follow(&input, step);
            assert_eq!(framing.heads(), 1);
            assert!(!framing.in_head(), "the body is over, nothing began");
        }
        input.extend_from_slice(b"G");
        let framing = follow(&input, 3);
        assert!(framing.in_head());
    }

    #[test]
    fn a_chunked_body_with_extensions_is_skipped() {
        let input = b"POST /v1/orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value\r\nhello\r\nA \t;x\r\n0123456789\r\n0\r\n\r\n\
            GET / HTTP/1.1\r\n\r\nP";
        for step in [1, 2, 5, 1000] {
            let framing = follow(input, step);
            assert_eq!(framing.broken(), None, "step {step}");
            assert_eq!(framing.heads(), 2, "step {step}");
            assert!(framing.in_head(), "step {step}");
        }
        // A body's bytes that look like a head end are data, not a head.
        let input = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n";
        let framing = follow(input, 1);
        assert_eq!(framing.heads(), 1);
        assert!(!framing.in_head());
    }

    #[test]
    fn what_actix_http_refuses_in_a_chunked_body_is_a_break() {
        const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
        for (body, why) in [
            (&b"0\r\nTrailer: 1\r\n\r\n"[..], "trailers"),
            (b"5\nhello\r\n", "hexadecimal"),
            (b"5 x\r\n", "stray"),
            (b"5\rX", "CRLF"),
            (b"5;a\x01\r\n", "control"),
            (b"5\r\nhello\n0\r\n\r\n", "longer"),
            (b"5\r\nhello\r\r", "CRLF"),
        ] {
            let input = [CHUNKED, body].concat();
            let framing = follow(&input, 1);
            let reason = framing.broken().unwrap_or_else(|| panic!("{body:?}"));
            assert!(reason.contains(why), "{body:?}: {reason}");
        }
    }

    #[test]
    fn a_head_with_both_lengths_is_refused_and_nothing_of_it_handed_on() {
        let before = [GET, b"POST / HTTP/1.1\r\nContent-Length: 5\r\n"].concat();
        let input = [
            &before[..],
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET",
        ]
        .concat();
        for step in [1, 5, 1000] {
            let framing = follow(&input, step);
            assert!(framing.refused(), "step {step}");
            assert_eq!(framing.held(), input.len() - GET.len(), "step {step}");
        }
    }

    #[test]
    fn a_head_is_held_back_until_it_is_whole() {
        let input = [GET, b"GET /he"].concat();
        let framing = follow(&input, 3);
        assert_eq!(framing.held(), 7);
        let framing = follow(GET, 3);
        assert_eq!(framing.held(), 0);
    }

    #[test]
    fn what_it_cannot_follow_it_stops_following() {
        for input in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET"[..],
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET",
            b"POST / HTTP/1.1\r\ncontent-length: x\r\n\r\nGET",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\nGET",
        ] {
            let framing = follow(input, 1);
            assert!(!framing.in_head(), "{:?}", String::from_utf8_lossy(input));
        }
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; MAX_HEAD + 10]].concat();
        let framing = follow(&huge, 4096);
        assert!(
            !framing.in_head(),
            "a head past the bound is actix's to refuse"
        );
    }

    #[test]
    fn other_upgrades_and_identity_codings_are_still_followed() {
        let input = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n\
            POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabcG";
        let framing = follow(input, 1);
        assert_eq!(framing.heads(), 2);
        assert!(framing.in_head(), "the third head is timed like any");
    }

    #[test]
    fn empty_lines_between_requests_do_not_begin_a_head() {
        let input = [GET, b"\r\n\r\n"].concat();
        let framing = follow(&input, 1);
        assert_eq!(framing.heads(), 1);
        assert!(!framing.in_head());
    }

    /// What is handed on after `input`: everything but the held bytes.
    fn handed_on(input: &[u8], step: usize) -> (Framing, usize) {
        let framing = follow(input, step);
        let on = input.len() - framing.held();
        (framing, on)
    }

    const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";

    #[test]
    fn a_chunk_size_line_is_held_back_until_it_is_whole() {
        let input = [CHUNKED, b"5\r\nhello\r\n1"].concat();
        for step in [1, 3, 1000] {
            let (framing, on) = handed_on(&input, step);
            assert_eq!(framing.broken(), None);
            // "hello" goes on; its line end and the next size's digit wait.
            assert_eq!(&input[on..], b"\r\n1", "step {step}");
        }
        let input = [CHUNKED, b"5\r\nhello\r\n1\r\nx"].concat();
        let (_, on) = handed_on(&input, 2);
        assert_eq!(on, input.len(), "a whole size line goes on with its data");
        let input = [CHUNKED, b"0\r\n\r"].concat();
        let (_, on) = handed_on(&input, 1);
        assert_eq!(on, CHUNKED.len(), "the last chunk waits for the body's end");
        let input = [CHUNKED, b"0\r\n\r\n"].concat();
        assert_eq!(handed_on(&input, 1).1, input.len());
    }

    #[test]
    fn a_broken_size_line_is_never_handed_on_and_the_body_can_end_cleanly_before_it() {
        for (body, at, end) in [
            // After data: its line end is held with the broken line.
            (&b"5\r\nhello\r\nzz\r\nmore"[..], 8, &b"\r\n0\r\n\r\n"[..]),
            (b"5\r\nhello\r\n1z\r\n", 8, b"\r\n0\r\n\r\n"),
            // The data runs past its size.
            (b"5\r\nhello!\r\n", 8, b"\r\n0\r\n\r\n"),
            // The first size line, right after the head.
            (b"x\r\n", 0, b"0\r\n\r\n"),
            (b"fffffffffffffffff\r\n", 0, b"0\r\n\r\n"),
        ] {
            let input = [CHUNKED, body].concat();
            for step in [1, 4, 1000] {
                let (framing, on) = handed_on(&input, step);
                assert!(framing.broken().is_some(), "{body:?}");
                assert_eq!(on, CHUNKED.len() + at, "{body:?} step {step}");
                assert_eq!(framing.clean_end(), end, "{body:?}");
            }
        }
        let long = [CHUNKED, b"1;", &[b'x'; MAX_HELD]].concat();
        assert!(
            follow(&long, 100).broken().is_some(),
            "a size line has a bound"
        );
    }
}
