//! Splits a byte stream into NDJSON lines, with a bound on line length.
//!
//! Input arrives in chunks of any size (stdin reads, HTTP body frames). Complete lines inside
//! a chunk are handed out borrowed from it, with no copy; only a line that straddles two
//! chunks is copied, into a buffer that never grows past `max_line_bytes`. A line over the
//! limit is reported as [`Line::TooLong`] and its bytes are skipped as they arrive, never
//! buffered, so a client cannot make the router hold an unbounded line.

/// One line of input, numbered from 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line within the limit, without its `\n` (nor a `\r` before it).
    Complete { number: u64, bytes: &'a [u8] },
    /// A line longer than the limit; how many bytes it had.
    TooLong { number: u64, bytes: u64 },
}

/// Splits chunks into lines. One per stream.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// The start of a line that straddles chunks (at most `max_line_bytes`).
    partial: Vec<u8>,
    /// Set while skipping the rest of an over-long line: how many bytes it had so far.
    skipping: Option<u64>,
    /// Whether the last byte skipped was a `\r`: a line's count leaves out the `\r` of its
    /// CRLF, as [`emit`] does for a line read whole, wherever the chunks cut it.
    skipped_cr: bool,
    /// Lines handed out so far.
    lines: u64,
}

impl LineSplitter {
    /// Changes the limit for the lines still to come (a config reload); a line already
    /// partly read is held to the new limit too.
    pub fn set_max_line_bytes(&mut self, max_line_bytes: usize) {
        self.max_line_bytes = max_line_bytes;
    }

    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            max_line_bytes,
            partial: Vec::new(),
            skipping: None,
            skipped_cr: false,
            lines: 0,
        }
    }

    /// Lines handed out so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes of a line begun and not yet ended (an over-long one's included).
    pub fn unfinished_bytes(&self) -> u64 {
        self.skipping.unwrap_or(self.partial.len() as u64)
    }

    /// Feeds one chunk; calls `on_line` for every line it completes, in order.
    pub fn feed(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(Line<'_>)) {
        while !chunk.is_empty() {
            let newline = memchr(chunk);
            let (piece, rest, ends_line) = match newline {
                Some(position) => (&chunk[..position], &chunk[position + 1..], true),
                None => (chunk, &[][..], false),
            };
            chunk = rest;
            if let Some(seen) = self.skipping.as_mut() {
                *seen += piece.len() as u64;
                if let Some(&last) = piece.last() {
                    self.skipped_cr = last == b'\r';
                }
                if ends_line {
                    let bytes = *seen - u64::from(self.skipped_cr);
                    self.skipping = None;
                    self.lines += 1;
                    on_line(Line::TooLong {
                        number: self.lines,
                        bytes,
                    });
                }
                continue;
            }
            if !ends_line {
                // The start of a line the next chunk finishes.
                if self.partial.len() + piece.len() > self.max_line_bytes + 1 {
                    self.skipping = Some((self.partial.len() + piece.len()) as u64);
                    self.skipped_cr = piece.last().or(self.partial.last()) == Some(&b'\r');
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(piece);
                }
                continue;
            }
            self.lines += 1;
            let number = self.lines;
            if self.partial.is_empty() {
                emit(number, piece, self.max_line_bytes, &mut on_line);
            } else {
                self.partial.extend_from_slice(piece);
                emit(number, &self.partial, self.max_line_bytes, &mut on_line);
                self.partial.clear();
            }
        }
    }

    /// Ends the stream: a last line without a newline is handed out.
    pub fn finish(&mut self, mut on_line: impl FnMut(Line<'_>)) {
        if let Some(bytes) = self.skipping.take() {
            self.lines += 1;
            on_line(Line::TooLong {
                number: self.lines,
                bytes: bytes - u64::from(self.skipped_cr),
            });
        } else if !self.partial.is_empty() {
            self.lines += 1;
            emit(self.lines, &self.partial, self.max_line_bytes, &mut on_line);
            self.partial.clear();
        }
    }
}

fn emit(number: u64, mut bytes: &[u8], max_line_bytes: usize, on_line: &mut impl FnMut(Line<'_>)) {
    if let [head @ .., b'\r'] = bytes {
        bytes = head;
    }
    if bytes.len() > max_line_bytes {
        on_line(Line::TooLong {
            number,
            bytes: bytes.len() as u64,
        });
    } else {
        on_line(Line::Complete { number, bytes });
    }
}

/// Position of the first `\n`: memchr's vectorised search, a few bytes per cycle.
#[inline]
fn memchr(haystack: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', haystack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Everything the splitter hands out for `input` fed in chunks of `chunk` bytes.
    fn split(input: &[u8], chunk: usize, limit: usize) -> Vec<(u64, Result<Vec<u8>, u64>)> {
        let mut splitter = LineSplitter::new(limit);
        let mut out = Vec::new();
        let mut record = |line: Line<'_>| match line {
            Line::Complete { number, bytes } => out.push((number, Ok(bytes.to_vec()))),
            Line::TooLong { number, bytes } => out.push((number, Err(bytes))),
        };
        for piece in input.chunks(chunk.max(1)) {
            splitter.feed(piece, &mut record);
        }
        splitter.finish(&mut record);
        out
    }

    #[test]
    fn splits_numbers_and_strips_carriage_returns() {
        let out = split(b"a\r\n\nbc\nlast", 3, 10);
        assert_eq!(
            out,
            [
                (1, Ok(b"a".to_vec())),
                (2, Ok(b"".to_vec())),
                (3, Ok(b"bc".to_vec())),
                (4, Ok(b"last".to_vec()))
            ]
        );
    }

    #[test]
    fn over_long_lines_are_reported_not_buffered() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\nfine\n");
        let out = split(&input, 7, 10);
        assert_eq!(
            out,
            [
                (1, Ok(b"ok".to_vec())),
                (2, Err(100)),
                (3, Ok(b"fine".to_vec()))
            ]
        );
        // The same whether the long line comes in one chunk or many.
        assert_eq!(split(&input, 1000, 10), out);
    }

    proptest! {
        /// Chunking never changes what comes out.
        #[test]
        fn chunking_is_invisible(
            lines in proptest::collection::vec(("[a-z]{0,20}", proptest::bool::ANY), 0..20),
            chunk in 1usize..40,
            last_open in proptest::bool::ANY,
        ) {
            // Lines ending in LF or CRLF; the last one, if `last_open`, without an end.
            let mut input = String::new();
            for (index, (line, crlf)) in lines.iter().enumerate() {
                input.push_str(line);
                if *crlf {
                    input.push('\r');
                }
                if !(last_open && index + 1 == lines.len()) {
                    input.push('\n');
                }
            }
            let whole = split(input.as_bytes(), input.len().max(1), 12);
            prop_assert_eq!(split(input.as_bytes(), chunk, 12), whole.clone());
            let expected = match lines.last() {
                // An open last line with no byte at all is no line.
                Some((line, false)) if last_open && line.is_empty() => lines.len() - 1,
                _ => lines.len(),
            };
            let lines: Vec<&String> = lines.iter().map(|(line, _)| line).collect();
            prop_assert_eq!(whole.len(), expected);
            for ((number, result), line) in whole.iter().zip(&lines) {
                prop_assert!(*number >= 1);
                if line.len() > 12 {
                    prop_assert_eq!(result, &Err(line.len() as u64));
                } else {
                    prop_assert_eq!(result, &Ok(line.as_bytes().to_vec()));
                }
            }
        }
    }
}
