//! `order-router route`: NDJSON orders in, NDJSON decisions out, one output line per input
//! line, in input order. Byte-for-byte deterministic: each order is decided at its
//! `created_at` (or at one fixed time for orders without one).
//!
//! The loop reads large chunks, splits them into lines without copying, decides each line
//! and appends its answer to one output buffer that is written out in large pieces: two
//! syscalls per 256 KiB, none per order.

use crate::catalog::Catalog;
use crate::config::Network;
use crate::ingest::{Line, LineSplitter, parse_order};
use crate::model::{Invalid, InvalidCode, Order, Status};
use crate::render::write_invalid;
use crate::router::Router;
use crate::time::Millis;
use std::io::{self, Read, Write};

/// Bytes read, and written, at a time.
const CHUNK_BYTES: usize = 256 * 1024;

/// What a `route` run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RouteSummary {
    pub lines: u64,
    pub routed: u64,
    pub backordered: u64,
    pub held: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// `invalid` by code, indexed by `code as usize`.
    pub invalid_by_code: [u64; InvalidCode::ALL.len()],
}

impl RouteSummary {
    /// Counts one `invalid` answer (`lines` is counted by the caller).
    pub fn count_invalid(&mut self, code: InvalidCode) {
        self.invalid += 1;
        self.invalid_by_code[code as usize] += 1;
    }

    /// Counts one new decision (`lines` is counted by the caller).
    pub fn count_decision(&mut self, status: Status) {
        match status {
            Status::Routed => self.routed += 1,
            Status::Backordered => self.backordered += 1,
            Status::Held => self.held += 1,
            Status::Rejected => self.rejected += 1,
        }
    }

    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &RouteSummary) {
        self.lines += other.lines;
        self.routed += other.routed;
        self.backordered += other.backordered;
        self.held += other.held;
        self.rejected += other.rejected;
        self.duplicates += other.duplicates;
        self.invalid += other.invalid;
        for (total, count) in self.invalid_by_code.iter_mut().zip(other.invalid_by_code) {
            *total += count;
        }
    }
}

impl std::fmt::Display for RouteSummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} lines: {} routed, {} backordered, {} held, {} rejected, {} duplicates, {} invalid",
            self.lines,
            self.routed,
            self.backordered,
            self.held,
            self.rejected,
            self.duplicates,
            self.invalid
        )
    }
}

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
) -> io::Result<RouteSummary> {
    let max_line_bytes = router.network().limits.max_line_bytes;
    let mut splitter = LineSplitter::new(max_line_bytes);
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    let mut batch: Vec<Parsed> = Vec::with_capacity(1024);
    let mut summary = RouteSummary::default();
    let clock = Clock::CreatedAt { default_time };
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
        answer_batch(router, &mut batch, clock, &mut out, &mut summary, |_| {});
        if out.len() >= CHUNK_BYTES {
            output.write_all(&out)?;
            out.clear();
        }
    }
    splitter.finish(|line| batch.push(parse_line(&network, &catalog, line)));
    answer_batch(router, &mut batch, clock, &mut out, &mut summary, |_| {});
    output.write_all(&out)?;
    output.flush()?;
    Ok(summary)
}

/// How many orders ahead the stock cells are prefetched: enough to cover a memory load's
/// latency with the work of deciding the orders in between.
const PREFETCH_AHEAD: usize = 4;

/// When an order is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// At its `created_at`, or at `default_time` without one: `route`, deterministic.
    CreatedAt { default_time: Millis },
    /// At this time, whatever the order says: the service, deciding as orders arrive.
    Fixed(Millis),
}

impl Clock {
    fn time_of(self, order: &Order) -> Millis {
        match self {
            Clock::CreatedAt { default_time } => order.created_at.unwrap_or(default_time),
            Clock::Fixed(now) => now,
        }
    }
}

/// Decides and renders a parsed batch in order, emptying it. `on_decision` is told where in
/// `out` the rendered line of each new decision is (not duplicates, not `invalid`
/// records): the service puts those on its decision feed.
pub fn answer_batch(
    router: &mut Router,
    batch: &mut Vec<Parsed>,
    clock: Clock,
    out: &mut Vec<u8>,
    summary: &mut RouteSummary,
    mut on_decision: impl FnMut(std::ops::Range<usize>),
) {
    for (_, parsed) in batch.iter().take(PREFETCH_AHEAD) {
        if let Ok(order) = parsed {
            router.prefetch(order);
        }
    }
    for index in 0..batch.len() {
        if let Some((_, Ok(order))) = batch.get(index + PREFETCH_AHEAD) {
            router.prefetch(order);
        }
        if let Some(fresh) = answer(router, &batch[index], clock, out, summary) {
            on_decision(fresh);
        }
    }
    batch.clear();
}

/// One input line after parsing: its number and the order, or what is wrong with it.
pub type Parsed = (u64, Result<Order, Invalid>);

/// Parses one line.
pub fn parse_line(network: &Network, catalog: &Catalog, line: Line<'_>) -> Parsed {
    match line {
        Line::Complete { number, bytes } => (number, parse_order(bytes, network, catalog)),
        Line::TooLong { number, bytes } => {
            let limit = network.limits.max_line_bytes;
            let invalid = Invalid::new(
                InvalidCode::LineTooLong,
                format!("line is {bytes} bytes, the limit is {limit}"),
            );
            (number, Err(invalid))
        }
    }
}

/// Decides one parsed line and appends its answer to `out`; where the answer is in `out`
/// when it is a new decision.
pub fn answer(
    router: &mut Router,
    parsed: &Parsed,
    clock: Clock,
    out: &mut Vec<u8>,
    summary: &mut RouteSummary,
) -> Option<std::ops::Range<usize>> {
    summary.lines += 1;
    let (number, order) = match parsed {
        (number, Ok(order)) => (*number, order),
        (number, Err(invalid)) => {
            summary.count_invalid(invalid.code);
            write_invalid(out, *number, invalid);
            return None;
        }
    };
    let start = out.len();
    match router.decide_rendered(order, clock.time_of(order), out) {
        Ok((_, true)) => {
            summary.duplicates += 1;
            None
        }
        Ok((status, false)) => {
            summary.count_decision(status);
            Some(start..out.len())
        }
        Err(invalid) => {
            summary.count_invalid(invalid.code);
            write_invalid(out, number, &invalid);
            None
        }
    }
}
