//! `order-router route`: NDJSON orders in, NDJSON decisions out, one output line per input
//! line, in input order. Byte-for-byte deterministic: each order is decided at its
//! `created_at` (or at one fixed time for orders without one).
//!
//! The loop reads large chunks, splits them into lines without copying, parses every line of
//! a chunk into a batch, then decides and renders the batch in order through [`Router`]
//! (the zones' own [`crate::zone::decide()`]), appending each answer to one output buffer that
//! is written out in large pieces: two syscalls per 256 KiB, none per order.

mod router;

pub use router::{Answer, Router};

use crate::ingest::{LineSplitter, Parsed, parse_line};
use crate::limits::{PREFETCH_AHEAD, ROUTE_CHUNK_BYTES};
use crate::model::Tally;
use crate::render::write_invalid;
use crate::time::Millis;
use crate::zone::Outcome;
use std::io::{self, Read, Write};

/// Routes every line of `input` through `router`, writing one answer line per input line to
/// `output`. Orders without `created_at` are decided at `default_time`.
///
/// Work goes in phases per chunk: every line of a chunk is parsed into a batch, then the
/// batch is decided and rendered in order. Each phase keeps its own code and tables hot in
/// the caches for a few hundred orders, instead of every order dragging parser, engine and
/// renderer through the instruction cache in turn (measured in `docs/benchmarks.md`).
pub fn route_stream(
    router: &mut Router,
    mut input: impl Read,
    mut output: impl Write,
    default_time: Millis,
) -> io::Result<Tally> {
    let max_line_bytes = router.network().limits.max_line_bytes;
    let mut splitter = LineSplitter::new(max_line_bytes);
    let mut chunk = vec![0u8; ROUTE_CHUNK_BYTES];
    let mut out: Vec<u8> = Vec::with_capacity(ROUTE_CHUNK_BYTES + 64 * 1024);
    let mut batch: Vec<Parsed> = Vec::with_capacity(1024);
    let mut tally = Tally::default();
    // `route` has one config snapshot for the whole run.
    let (network, catalog) = (router.network().clone(), router.catalog().clone());
    loop {
        let read = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        splitter.feed(&chunk[..read], |line| {
            batch.push(parse_line(&network, &catalog, line))
        });
        answer_batch(router, &mut batch, default_time, &mut out, &mut tally);
        if out.len() >= ROUTE_CHUNK_BYTES {
            output.write_all(&out)?;
            out.clear();
        }
    }
    splitter.finish(|line| batch.push(parse_line(&network, &catalog, line)));
    answer_batch(router, &mut batch, default_time, &mut out, &mut tally);
    output.write_all(&out)?;
    output.flush()?;
    Ok(tally)
}

/// Decides and renders a parsed batch in order (the second phase of [`route_stream`]'s
/// chunk), emptying it (its capacity kept); orders without `created_at` are decided at
/// `default_time`. The stock cells of the orders a few ahead are loaded while one is
/// decided.
fn answer_batch(
    router: &mut Router,
    batch: &mut Vec<Parsed>,
    default_time: Millis,
    out: &mut Vec<u8>,
    tally: &mut Tally,
) {
    for (_, parsed) in batch.iter().take(PREFETCH_AHEAD) {
        if let Ok(order) = parsed {
            router.prefetch(order);
        }
    }
    let mut lines = batch.drain(..);
    while let Some((number, parsed)) = lines.next() {
        if let Some((_, Ok(ahead))) = lines.as_slice().get(PREFETCH_AHEAD - 1) {
            router.prefetch(ahead);
        }
        tally.lines += 1;
        match parsed {
            Ok(order) => {
                let now = order.created_at.unwrap_or(default_time);
                match router.answer(order, number, now, out).0 {
                    Outcome::Decided(status, _) => tally.count_decision(status),
                    Outcome::Duplicate => tally.duplicates += 1,
                    Outcome::Invalid(code) => tally.count_invalid(code),
                }
            }
            Err(invalid) => {
                tally.count_invalid(invalid.code);
                write_invalid(out, number, &invalid);
            }
        }
    }
}
