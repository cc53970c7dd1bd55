//! Splits a byte stream into NDJSON lines, with a bound on line length: the one splitter of
//! the tool, used for the answers it reads, the bodies the bare endpoint reads and the
//! statuses `limit` counts.
//!
//! Bytes arrive in chunks of any size (HTTP body frames). The lines a chunk holds whole are
//! handed out borrowed from it, with no copy; only a line that straddles chunks is copied,
//! once, into a buffer that never grows past [`MAX_LINE_BYTES`] (and a byte). A longer line
//! is reported as [`Line::TooLong`] and its bytes are skipped as they arrive, so a peer that
//! never sends a newline cannot make the tool hold an unbounded line.

/// The longest line the tool reads: far above any order or answer of the contract (the
/// router's own limit for an order line is 64 KiB by default), low enough that a broken peer
/// costs at most this much memory per stream.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line, without its `\n` (nor a `\r` before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line within the limit (possibly empty).
    Complete(&'a [u8]),
    /// A line over the limit: how many bytes it had.
    TooLong { bytes: u64 },
}

impl<'a> Line<'a> {
    fn new(bytes: &'a [u8], max_line_bytes: usize) -> Line<'a> {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.len() > max_line_bytes {
            Line::TooLong {
                bytes: bytes.len() as u64,
            }
        } else {
            Line::Complete(bytes)
        }
    }
}

/// Splits the chunks of one stream into lines.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// The start of a line that the next chunk may finish: at most `max_line_bytes + 1`
    /// bytes (the `+ 1` is a `\r` whose `\n` is still to come).
    partial: Vec<u8>,
    /// The line that a chunk's first `\n` finished out of `partial`, lent to [`Lines`].
    finished: Vec<u8>,
    /// Set while skipping the rest of an over-long line: how many bytes it had so far.
    skipping: Option<u64>,
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            max_line_bytes,
            partial: Vec::new(),
            finished: Vec::new(),
            skipping: None,
        }
    }

    /// Takes one chunk; the lines it finishes, in order. The start of a line it leaves
    /// unfinished is kept for the next chunk, so every line is handed out once, whatever the
    /// chunks' sizes (iterate the lines to the end: those not taken are dropped).
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Lines<'a> {
        let Some(first) = memchr::memchr(b'\n', chunk) else {
            self.hold(chunk);
            return Lines::none(self.max_line_bytes);
        };
        // `first` exists, so a last newline does too.
        let last = memchr::memrchr(b'\n', chunk).unwrap_or(first);
        let head = self.end_held_line(&chunk[..first]);
        self.hold(&chunk[last + 1..]);
        let (held, whole_from) = match head {
            HeldLine::None => (None, 0),
            HeldLine::TooLong(bytes) => (Some(Line::TooLong { bytes }), first + 1),
            HeldLine::Finished => (
                Some(Line::new(&self.finished, self.max_line_bytes)),
                first + 1,
            ),
        };
        Lines {
            held,
            rest: &chunk[whole_from..last + 1],
            max_line_bytes: self.max_line_bytes,
        }
    }

    /// Ends the line begun in earlier chunks, if any, with `end` (the bytes before the
    /// chunk's first newline); a line within the limit is then in `finished`.
    fn end_held_line(&mut self, end: &[u8]) -> HeldLine {
        if let Some(seen) = self.skipping.take() {
            return HeldLine::TooLong(seen + end.len() as u64);
        }
        if self.partial.is_empty() {
            return HeldLine::None;
        }
        let bytes = self.partial.len() + end.len();
        if bytes > self.max_line_bytes + 1 {
            self.partial.clear();
            return HeldLine::TooLong(bytes as u64);
        }
        // One copy of the start, none of the end: the buffers trade places.
        std::mem::swap(&mut self.partial, &mut self.finished);
        self.partial.clear();
        self.finished.extend_from_slice(end);
        HeldLine::Finished
    }

    /// Ends the stream: a last line without a newline, if there is one.
    pub fn finish(&mut self) -> Option<Line<'_>> {
        if let Some(bytes) = self.skipping.take() {
            return Some(Line::TooLong { bytes });
        }
        if self.partial.is_empty() {
            return None;
        }
        std::mem::swap(&mut self.partial, &mut self.finished);
        self.partial.clear();
        Some(Line::new(&self.finished, self.max_line_bytes))
    }

    /// Keeps the start of an unfinished line, or only counts it once it is over the limit.
    fn hold(&mut self, piece: &[u8]) {
        if let Some(seen) = self.skipping.as_mut() {
            *seen += piece.len() as u64;
        } else if self.partial.len() + piece.len() > self.max_line_bytes + 1 {
            self.skipping = Some((self.partial.len() + piece.len()) as u64);
            self.partial.clear();
        } else {
            self.partial.extend_from_slice(piece);
        }
    }
}

/// How the line begun in earlier chunks ended, if one had begun.
enum HeldLine {
    None,
    TooLong(u64),
    /// Within the limit: in [`LineSplitter::finished`].
    Finished,
}

/// The lines one chunk finished: first the one that began in earlier chunks, if any, then
/// those inside the chunk, borrowed from it.
#[derive(Debug)]
pub struct Lines<'a> {
    held: Option<Line<'a>>,
    /// Whole lines, each ending in `\n`.
    rest: &'a [u8],
    max_line_bytes: usize,
}

impl<'a> Lines<'a> {
    fn none(max_line_bytes: usize) -> Lines<'a> {
        Lines {
            held: None,
            rest: &[],
            max_line_bytes,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if let Some(line) = self.held.take() {
            return Some(line);
        }
        let end = memchr::memchr(b'\n', self.rest)?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Some(Line::new(line, self.max_line_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What comes out of `input` fed in chunks of `chunk` bytes, the stream then ended:
    /// `Ok(line)` or `Err(bytes of a line too long)`.
    fn split(input: &[u8], chunk: usize, max_line_bytes: usize) -> Vec<Result<String, u64>> {
        let mut splitter = LineSplitter::new(max_line_bytes);
        let mut out = Vec::new();
        let mut record = |line: Line<'_>| {
            out.push(match line {
                Line::Complete(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
                Line::TooLong { bytes } => Err(bytes),
            })
        };
        for piece in input.chunks(chunk.max(1)) {
            splitter.feed(piece).for_each(&mut record);
        }
        splitter.finish().into_iter().for_each(&mut record);
        out
    }

    fn lines(expected: &[&str]) -> Vec<Result<String, u64>> {
        expected.iter().map(|line| Ok(line.to_string())).collect()
    }

    #[test]
    fn several_lines_in_one_chunk_come_out_borrowed_from_it() {
        let chunk = b"{\"a\":1}\n{\"b\":2}\n";
        let mut splitter = LineSplitter::new(100);
        let out: Vec<Line<'_>> = splitter.feed(chunk).collect();
        assert_eq!(
            out,
            [Line::Complete(b"{\"a\":1}"), Line::Complete(b"{\"b\":2}")]
        );
        // Borrowed, not copied: the first line is the chunk's own bytes.
        let Line::Complete(first) = out[0] else {
            panic!("{out:?}")
        };
        assert!(std::ptr::eq(first.as_ptr(), chunk.as_ptr()));
    }

    #[test]
    fn a_line_split_across_chunks_comes_out_once_whole() {
        let input = b"first\nsecond line\nthird\n";
        for chunk in 1..input.len() {
            assert_eq!(
                split(input, chunk, 100),
                lines(&["first", "second line", "third"]),
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_trailing_line_without_newline_comes_out_at_the_end() {
        let mut splitter = LineSplitter::new(100);
        assert_eq!(splitter.feed(b"done\nhalf").count(), 1);
        assert_eq!(splitter.finish(), Some(Line::Complete(b"half")));
        assert_eq!(splitter.finish(), None);
        assert_eq!(split(b"a\nb", 1, 100), lines(&["a", "b"]));
    }

    #[test]
    fn empty_lines_and_carriage_returns() {
        assert_eq!(
            split(b"a\r\n\n\r\nb\r\n", 100, 100),
            lines(&["a", "", "", "b"])
        );
        // A `\r` at the end of one chunk and its `\n` at the start of the next.
        assert_eq!(split(b"abc\r\ndef\r\n", 4, 3), lines(&["abc", "def"]));
        // A `\r` inside a line is the line's.
        assert_eq!(split(b"a\rb\n", 1, 100), lines(&["a\rb"]));
    }

    #[test]
    fn over_long_lines_are_reported_not_buffered() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\nfine\n");
        let expected = vec![Ok("ok".to_owned()), Err(100), Ok("fine".to_owned())];
        // The same whether the long line comes in one chunk or many.
        for chunk in [1, 7, 1000] {
            assert_eq!(split(&input, chunk, 10), expected, "chunks of {chunk}");
        }
        // A line held within the limit until the chunk that ends it makes it too long.
        assert_eq!(
            split(b"xxxxxxxxxxxxxxx\nok\n", 10, 10),
            vec![Err(15), Ok("ok".to_owned())]
        );
        // The buffer kept for an unfinished line stays within the limit.
        let mut splitter = LineSplitter::new(10);
        for _ in 0..100 {
            assert_eq!(splitter.feed(b"xxxxxxxxxxxxxxxxxxxxxx").count(), 0);
        }
        assert!(
            splitter.partial.capacity() <= 64,
            "{}",
            splitter.partial.capacity()
        );
        assert_eq!(splitter.finish(), Some(Line::TooLong { bytes: 2_200 }));
    }

    #[test]
    fn chunking_never_changes_the_lines() {
        let input: Vec<u8> = (0..200u32)
            .flat_map(|index| {
                let line = "y".repeat((index * 7 % 23) as usize);
                format!("{index}:{line}\n").into_bytes()
            })
            .collect();
        let whole = split(&input, input.len(), 100);
        assert_eq!(whole.len(), 200);
        for chunk in [1, 2, 3, 5, 8, 13, 64, 4096] {
            assert_eq!(split(&input, chunk, 100), whole, "chunks of {chunk}");
        }
    }
}
