//! Connections to the server: long-lived NDJSON streams, or one JSON order per request.
//!
//! A stream is full duplex: the writer sends what the outbox holds as one body chunk while
//! the reader takes the answers of earlier chunks, one line per line sent, in order (the
//! contract). Each line sent is remembered (`InFlight`) until its answer comes, so an answer
//! is checked against what it must be, and a line never answered is counted lost. Answer
//! lines are split by [`crate::ndjson`], so one line is held at most
//! [`MAX_LINE_BYTES`] long; a longer answer is counted as a mismatch. A new order decided
//! with a status the scenario ships is handed to the [`Shipper`] (its own connections send
//! the shipments, never these).

use crate::generate::{Expect, Malformed, Original, ResendPool};
use crate::ndjson::{Line, LineSplitter, Lines, MAX_LINE_BYTES};
use crate::outbox::{Outbox, Queued};
use crate::ship::Shipper;
use crate::stats::{Collector, Count, Tally};
use crate::stock::{self, Levels};
use crate::target::{Backoff, BodyStream, Connection, Target, retry_after, unless_stopped};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Frame;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What every connection of a run shares.
pub struct Shared {
    pub target: Target,
    pub start: Instant,
    pub collector: Mutex<Collector>,
    /// Streams: orders per body chunk at most.
    pub chunk_orders: usize,
    /// Requests: how many 429s an order is retried through.
    pub retries_after_429: u32,
    /// `SO_SNDBUF` of every connection (0: the kernel's autotuning).
    pub send_buffer_bytes: u32,
    /// Feed answered originals to the generator's resend pool.
    pub resends: Option<Arc<ResendPool>>,
    /// Hand placed orders to the shipper (`[ship]`), if there is one.
    pub shipper: Option<Arc<Shipper>>,
    /// Sum the shipments of decisions, for the stock check.
    pub check_stock: bool,
    pub shipped: Mutex<Levels>,
    /// Set at the drain deadline: connections stop and count what is unanswered as lost.
    pub abandon: AtomicBool,
    pub abandoned: tokio::sync::Notify,
}

/// Originals kept per answered chunk (or request) for the resend pool: a sample is enough.
const ORIGINALS_PER_CHUNK: usize = 64;

impl Shared {
    /// The second of the run `at` falls in.
    pub fn second(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.start).as_secs() as u32
    }

    /// The collector, locked.
    pub fn collector(&self) -> MutexGuard<'_, Collector> {
        self.collector
            .lock()
            .expect("no panics while the collector is held")
    }

    /// Hands a task's counts over to the collector.
    pub fn flush(&self, tally: &mut Tally) {
        if !tally.is_empty() {
            self.collector().absorb(tally);
        }
    }

    fn abandoning(&self) -> bool {
        self.abandon.load(Ordering::Acquire)
    }

    /// Counts shed orders, with how long each waited (a lower bound of the latency it
    /// would have had: shed orders must not vanish from the latency picture either).
    pub fn count_shed(&self, shed: &mut Vec<Queued>, tally: &mut Tally) {
        let now = Instant::now();
        let second = self.second(now);
        for order in shed.drain(..) {
            let waited = now.saturating_duration_since(order.intended).as_micros() as u64;
            tally.shed(second, order.phase, waited);
        }
    }

    /// Counts a failure of the connection or the response (no order's: phase 0) and says
    /// what it was.
    fn transport_error(&self, tally: &mut Tally, problem: String) {
        tally.count(Count::TransportError, self.second(Instant::now()), 0, 1);
        tally.problem(problem);
    }

    /// Offers the answered originals collected so far to the resend pool, and the placed
    /// orders to the shipper, where there are.
    fn pass_on(&self, answered: &mut PassOn) {
        if let Some(pool) = &self.resends
            && !answered.originals.is_empty()
        {
            pool.offer(answered.originals.drain(..));
        }
        if let Some(shipper) = &self.shipper {
            shipper.schedule(&mut answered.placed);
        }
    }
}

/// What the checks of a chunk's answers (or a request's) pass on once they are done.
#[derive(Default)]
struct PassOn {
    /// Answered originals (id, line and answer), a sample for the resend pool.
    originals: Vec<Original>,
    /// New orders decided with a status the scenario ships, for the shipper.
    placed: Vec<Arc<str>>,
}

/// A line sent and not yet answered.
struct InFlight {
    order: Queued,
    sent: Instant,
    /// Its line number in the stream (1-based), as the server counts them; `None` for a
    /// request, whose answer names no line.
    number: Option<u64>,
}

/// The fields of an answer the checks read.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    order_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    line: Option<u64>,
    #[serde(borrow, default)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

impl Answer<'_> {
    fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }

    fn error_code(&self) -> Option<&str> {
        self.error.as_ref().and_then(|error| error.code.as_deref())
    }

    fn error_message(&self) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|error| error.message.as_deref())
    }
}

/// The statuses of a decision (DESIGN.md §4).
pub const DECIDED: [&str; 4] = ["routed", "backordered", "held", "rejected"];

/// One answer being checked: where its counts go, and the answer to show when it is wrong.
struct Checking<'a> {
    tally: &'a mut Tally,
    /// The second the answer came in.
    second: u32,
    phase: u8,
    answer: &'a [u8],
}

impl<'a> Checking<'a> {
    /// Counts the answer and its latency: whatever it says, it came.
    fn start(shared: &Shared, tally: &'a mut Tally, sent: &InFlight, answer: &'a [u8]) -> Self {
        let now = Instant::now();
        let order = &sent.order;
        let second = shared.second(now);
        tally.count(Count::Answered, second, order.phase, 1);
        tally.latency(
            shared.second(order.intended),
            order.phase,
            now.saturating_duration_since(order.intended).as_micros() as u64,
            sent.sent
                .saturating_duration_since(order.intended)
                .as_micros() as u64,
        );
        Checking {
            tally,
            second,
            phase: order.phase,
            answer,
        }
    }

    fn count(&mut self, count: Count) {
        self.tally.count(count, self.second, self.phase, 1);
    }

    fn mismatch(&mut self, why: String) {
        self.count(Count::Mismatch);
        let shown = String::from_utf8_lossy(&self.answer[..self.answer.len().min(240)]);
        self.tally.problem(format!("{why}; answer: {shown}"));
    }
}

/// Checks one answer against what its line must get, and counts it.
fn check(
    shared: &Shared,
    tally: &mut Tally,
    sent: &InFlight,
    answer: &[u8],
    answered: &mut PassOn,
) {
    let mut checking = Checking::start(shared, tally, sent, answer);
    let parsed: Answer = match serde_json::from_slice(answer) {
        Ok(parsed) => parsed,
        Err(error) => return checking.mismatch(format!("answer is not JSON ({error})")),
    };
    match &sent.order.line.expect {
        Expect::New { id } => {
            if check_new(&mut checking, &parsed, id) {
                if shared.resends.is_some() && answered.originals.len() < ORIGINALS_PER_CHUNK {
                    answered.originals.push(Original {
                        id: id.clone(),
                        line: sent.order.line.bytes.clone(),
                        answer: Bytes::copy_from_slice(answer),
                    });
                }
                if let Some(shipper) = &shared.shipper
                    && shipper.ships(parsed.status())
                {
                    answered.placed.push(id.clone());
                }
                if shared.check_stock && parsed.status() != "rejected" {
                    add_shipments(shared, &mut checking, id);
                }
            }
        }
        Expect::Resend {
            id,
            answer: original,
        } => {
            if parsed.order_id.as_deref() != Some(&**id) || !parsed.duplicate {
                return checking.mismatch(format!("resend of {id}: not answered as its duplicate"));
            }
            if let Some(problem) = differs_from_original(answer, original) {
                return checking.mismatch(format!("resend of {id}: {problem}"));
            }
            checking.count(Count::Duplicate);
        }
        Expect::Invalid(kind) => check_invalid(&mut checking, &parsed, *kind, sent.number),
    }
}

/// How a duplicate's answer differs from its original's (`original`, empty when unknown),
/// but for the `"duplicate": true` it carries: `None` when it is the same decision.
fn differs_from_original(answer: &[u8], original: &[u8]) -> Option<String> {
    if original.is_empty() {
        return None;
    }
    let mut duplicate: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let original: serde_json::Value = match serde_json::from_slice(original) {
        Ok(original) => original,
        Err(error) => return Some(format!("its original's answer is not JSON ({error})")),
    };
    if let Some(fields) = duplicate.as_object_mut() {
        fields.remove("duplicate");
    }
    (duplicate != original)
        .then(|| format!("answered {duplicate}, not its original decision {original}"))
}

/// A new order must be decided under its own id, and not as a duplicate: counts the
/// answer, and whether it was.
fn check_new(checking: &mut Checking, parsed: &Answer, expected: &str) -> bool {
    let status = parsed.status();
    let id = parsed.order_id.as_deref();
    if id != Some(expected) {
        checking.mismatch(format!("order {expected}: answered for {id:?}"));
        return false;
    }
    if !DECIDED.contains(&status) {
        let (code, message) = (parsed.error_code(), parsed.error_message());
        checking.mismatch(format!(
            "order {expected}: status {status:?} ({code:?}: {message:?})"
        ));
        return false;
    }
    if parsed.duplicate {
        checking.count(Count::UnexpectedDuplicate);
        checking.tally.problem(format!(
            "order {expected}: a new order answered as a duplicate"
        ));
        return false;
    }
    checking.count(Count::Decided);
    checking.tally.status(status);
    true
}

/// Adds a decision's shipments up for the stock check.
fn add_shipments(shared: &Shared, checking: &mut Checking, id: &str) {
    if let Err(error) = stock::add_shipments(checking.answer, &shared.shipped) {
        // Decided all the same (counted already): a problem of the answer's form, not a
        // second outcome of the order.
        checking.count(Count::TransportError);
        checking
            .tally
            .problem(format!("order {id}: shipments: {error}"));
    }
}

/// A malformed line must be answered `invalid` with its code, and on a stream with its
/// line number (`line_number`). A request's answer (a 400) names no line and may carry no
/// status, only the error.
fn check_invalid(
    checking: &mut Checking,
    parsed: &Answer,
    kind: Malformed,
    line_number: Option<u64>,
) {
    let (status, code) = (parsed.status(), parsed.error_code());
    let status_ok = status == "invalid" || line_number.is_none();
    if !status_ok || code != Some(kind.code()) {
        return checking.mismatch(format!(
            "a {} line: answered {status:?} {code:?}",
            kind.code()
        ));
    }
    if let Some(number) = line_number
        && parsed.line != Some(number)
    {
        return checking.mismatch(format!(
            "a {} line: line {number} answered as line {:?}",
            kind.code(),
            parsed.line
        ));
    }
    checking.count(Count::Invalid);
}

/// Runs `future` unless the run is abandoned first (the drain deadline passed): `None` then.
async fn until_abandoned<T>(
    shared: &Shared,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    unless_stopped(&shared.abandoned, || shared.abandoning(), future).await
}

/// Why no connection was opened.
enum Unopened {
    /// The run was abandoned while connecting.
    Abandoned,
    /// The connect failed (counted as a transport error).
    Failed,
}

/// Opens a connection to the target with the run's send buffer.
async fn open(shared: &Shared, tally: &mut Tally) -> Result<Connection, Unopened> {
    let connecting = shared.target.connect(shared.send_buffer_bytes);
    match until_abandoned(shared, connecting).await {
        None => Err(Unopened::Abandoned),
        Some(Ok(connection)) => Ok(connection),
        Some(Err(error)) => {
            shared.transport_error(tally, format!("connect: {error}"));
            Err(Unopened::Failed)
        }
    }
}

fn take_all(in_flight: &Mutex<VecDeque<InFlight>>) -> Vec<InFlight> {
    in_flight
        .lock()
        .expect("no panics while the lines in flight are held")
        .drain(..)
        .collect()
}

/// Counts every line of `lines` as `count`.
fn count_each(tally: &mut Tally, lines: &[InFlight], count: Count, second: u32) {
    for line in lines {
        tally.count(count, second, line.order.phase, 1);
    }
}

fn count_lost(shared: &Shared, tally: &mut Tally, lost: &[InFlight]) {
    count_each(tally, lost, Count::Lost, shared.second(Instant::now()));
    for line in lost {
        if let Expect::New { id } | Expect::Resend { id, .. } = &line.order.line.expect {
            tally.problem(format!("order {id}: sent, never answered"));
        }
    }
}

/// One long-lived NDJSON stream at a time on one connection, opened again after a failure
/// or a 429, until the outbox is closed and drained.
pub async fn stream_connection(shared: Arc<Shared>, outbox: Arc<Outbox>) {
    let mut tally = Tally::default();
    let mut backoff = Backoff::new(Duration::from_secs(1));
    loop {
        if outbox.is_closed() && outbox.is_empty() || shared.abandoning() {
            break;
        }
        let wait = match one_stream(&shared, &outbox, &mut tally).await {
            StreamEnd::Finished => break,
            StreamEnd::Refused(wait) => wait,
            StreamEnd::Broken => backoff.wait(),
        };
        shared.flush(&mut tally);
        until_abandoned(&shared, tokio::time::sleep(wait)).await;
    }
    let mut shed = Vec::new();
    if shared.abandoning() {
        shed = outbox.drain_all();
    }
    shared.count_shed(&mut shed, &mut tally);
    shared.flush(&mut tally);
}

enum StreamEnd {
    /// The outbox closed, everything sent was answered, the response ended.
    Finished,
    /// 429: open again after this.
    Refused(Duration),
    /// The connection or the response broke.
    Broken,
}

/// How the reading side of a stream ended, and so what the lines still unanswered are.
enum ReadEnd {
    /// The response ended (or the run was abandoned): unanswered lines are lost.
    Ended,
    /// 429 before a line was read: the lines sent are throttled.
    Refused(Duration),
    /// Another status: every line sent on it was answered wrongly.
    Status(StatusCode),
    /// The connection broke: unanswered lines are lost.
    Broken,
}

/// The lines sent on a stream and not answered yet, oldest first.
type InFlightQueue = Arc<Mutex<VecDeque<InFlight>>>;

/// One stream: a writer task sends while this task reads; then the lines left unanswered
/// are counted by how the stream ended.
async fn one_stream(shared: &Arc<Shared>, outbox: &Arc<Outbox>, tally: &mut Tally) -> StreamEnd {
    let Ok(mut connection) = open(shared, tally).await else {
        return StreamEnd::Broken;
    };
    let (body_sender, body_receiver) = mpsc::channel::<Bytes>(2);
    let request = shared.target.post_ndjson(body_stream(body_receiver));
    let in_flight = InFlightQueue::default();
    let writer_done = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_stream(
        shared.clone(),
        outbox.clone(),
        in_flight.clone(),
        body_sender,
        writer_done.clone(),
    ));
    let end = read_stream(shared, &mut connection, request, &in_flight, tally).await;
    // The writer stops before the lines left are counted, so none it takes afterwards
    // escapes the count.
    writer.abort();
    let _ = writer.await;
    let rest = take_all(&in_flight);
    settle_stream(
        shared,
        tally,
        end,
        &rest,
        writer_done.load(Ordering::Acquire),
    )
}

/// A request body made of the chunks sent through `receiver`; it ends when the sender is
/// dropped.
fn body_stream(receiver: mpsc::Receiver<Bytes>) -> BodyStream {
    Box::pin(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move {
            let bytes = receiver.recv().await?;
            Some((Ok(Frame::data(bytes)), receiver))
        },
    ))
}

/// The writing side of a stream: what the outbox holds, a body chunk at a time, every line
/// remembered in `in_flight` before it goes. Ends when the outbox is closed and drained or
/// the connection is gone, and then sets `done`.
async fn write_stream(
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    in_flight: InFlightQueue,
    body_sender: mpsc::Sender<Bytes>,
    done: Arc<AtomicBool>,
) {
    let mut shed = Vec::new();
    let mut number = 0u64;
    let mut tally = Tally::default();
    // Everything counted is handed over before each `await`, where an abort may land: an
    // aborted writer has lost nothing (its lines are in `in_flight`).
    loop {
        let orders = outbox.take(shared.chunk_orders, &mut shed).await;
        shared.count_shed(&mut shed, &mut tally);
        if orders.is_empty() {
            if outbox.is_closed() && outbox.is_empty() {
                break;
            }
            shared.flush(&mut tally);
            continue;
        }
        let chunk = body_chunk(&shared, &in_flight, orders, &mut number, &mut tally);
        shared.flush(&mut tally);
        if body_sender.send(chunk).await.is_err() {
            // The connection is gone; what was never answered is counted after.
            break;
        }
    }
    shared.flush(&mut tally);
    done.store(true, Ordering::Release);
    // Dropping the sender ends the body: the server answers the rest and ends too.
    drop(body_sender);
}

/// The body chunk of `orders`: each counted as sent and put in flight, numbered on from
/// `number` (the last line number of the stream so far).
fn body_chunk(
    shared: &Shared,
    in_flight: &Mutex<VecDeque<InFlight>>,
    orders: Vec<Queued>,
    number: &mut u64,
    tally: &mut Tally,
) -> Bytes {
    let now = Instant::now();
    let second = shared.second(now);
    let mut chunk =
        BytesMut::with_capacity(orders.iter().map(|order| order.line.bytes.len()).sum());
    let mut queue = in_flight
        .lock()
        .expect("no panics while the lines in flight are held");
    for order in orders {
        *number += 1;
        chunk.extend_from_slice(&order.line.bytes);
        tally.count(Count::Sent, second, order.phase, 1);
        queue.push_back(InFlight {
            order,
            sent: now,
            number: Some(*number),
        });
    }
    chunk.freeze()
}

/// The reading side of a stream: answers matched to the lines sent, in order.
async fn read_stream(
    shared: &Shared,
    connection: &mut Connection,
    request: hyper::Request<crate::target::RequestBody>,
    in_flight: &Mutex<VecDeque<InFlight>>,
    tally: &mut Tally,
) -> ReadEnd {
    let response = match until_abandoned(shared, connection.send_request(request)).await {
        None => return ReadEnd::Ended,
        Some(Ok(response)) => response,
        Some(Err(error)) => {
            shared.transport_error(tally, format!("stream: {error}"));
            return ReadEnd::Broken;
        }
    };
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return ReadEnd::Refused(retry_after(&response));
    }
    if status != StatusCode::OK {
        return ReadEnd::Status(status);
    }
    let mut body = response.into_body();
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    let mut answered = PassOn::default();
    loop {
        let frame = match until_abandoned(shared, body.frame()).await {
            None | Some(None) => return ReadEnd::Ended,
            Some(Some(Ok(frame))) => frame,
            Some(Some(Err(error))) => {
                shared.transport_error(tally, format!("stream body: {error}"));
                return ReadEnd::Broken;
            }
        };
        if let Ok(data) = frame.into_data() {
            let answers = splitter.feed(&data);
            check_answers(shared, tally, in_flight, answers, &mut answered);
        }
    }
}

/// Checks the answer lines a body chunk finished, each against the oldest line in flight.
fn check_answers(
    shared: &Shared,
    tally: &mut Tally,
    in_flight: &Mutex<VecDeque<InFlight>>,
    answers: Lines<'_>,
    answered: &mut PassOn,
) {
    // Matched under the lock, checked after it: the writer does not wait for the parsing.
    let mut matched = Vec::new();
    {
        let mut queue = in_flight
            .lock()
            .expect("no panics while the lines in flight are held");
        for answer in answers {
            match queue.pop_front() {
                Some(sent) => matched.push((sent, answer)),
                None => shared.transport_error(tally, "an answer line for no line sent".to_owned()),
            }
        }
    }
    for (sent, answer) in matched {
        match answer {
            Line::Complete(answer) => check(shared, tally, &sent, answer, answered),
            Line::TooLong { bytes } => check_too_long(shared, tally, &sent, bytes),
        }
    }
    shared.pass_on(answered);
    shared.flush(tally);
}

/// An answer line too long to read is an answer all the same, and a wrong one.
fn check_too_long(shared: &Shared, tally: &mut Tally, sent: &InFlight, bytes: u64) {
    let checking = Checking::start(shared, tally, sent, &[]);
    checking
        .tally
        .count(Count::Mismatch, checking.second, checking.phase, 1);
    checking.tally.problem(format!(
        "an answer line of {bytes} bytes, longer than the {MAX_LINE_BYTES} the tool reads"
    ));
}

/// Counts the lines a stream left unanswered, by how it ended; what the connection does
/// next.
fn settle_stream(
    shared: &Shared,
    tally: &mut Tally,
    end: ReadEnd,
    rest: &[InFlight],
    writer_done: bool,
) -> StreamEnd {
    match end {
        ReadEnd::Refused(wait) => {
            count_each(
                tally,
                rest,
                Count::Throttled429,
                shared.second(Instant::now()),
            );
            StreamEnd::Refused(wait)
        }
        ReadEnd::Status(status) => {
            count_each(tally, rest, Count::Mismatch, shared.second(Instant::now()));
            shared.transport_error(tally, format!("a stream answered {status}"));
            StreamEnd::Broken
        }
        ReadEnd::Broken => {
            count_lost(shared, tally, rest);
            StreamEnd::Broken
        }
        ReadEnd::Ended => {
            count_lost(shared, tally, rest);
            if writer_done && rest.is_empty() {
                StreamEnd::Finished
            } else {
                StreamEnd::Broken
            }
        }
    }
}

/// One JSON order per request, one request at a time, on one keep-alive connection.
pub async fn request_connection(shared: Arc<Shared>, outbox: Arc<Outbox>) {
    let mut connection = RequestConnection {
        shared,
        outbox,
        tally: Tally::default(),
        shed: Vec::new(),
        sender: None,
        backoff: Backoff::new(Duration::from_secs(2)),
        answered: PassOn::default(),
        retry: None,
    };
    connection.run().await;
}

/// A connection of the requests transport, and what it holds between requests.
struct RequestConnection {
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    tally: Tally,
    shed: Vec<Queued>,
    /// Open, or `None` until connected again after a failure.
    sender: Option<Connection>,
    backoff: Backoff,
    answered: PassOn,
    /// An order refused with 429 and waiting for its retry here: it keeps its intended time.
    retry: Option<Queued>,
}

/// What the outbox gave.
enum Next {
    Order(Queued),
    /// Nothing now (some orders may have been shed meanwhile).
    Nothing,
    /// The outbox is closed and drained.
    Done,
}

impl RequestConnection {
    async fn run(&mut self) {
        while !self.shared.abandoning() {
            let order = match self.next_order().await {
                Next::Order(order) => order,
                Next::Nothing => {
                    self.shared.flush(&mut self.tally);
                    continue;
                }
                Next::Done => break,
            };
            if self.sender.is_none() {
                match open(&self.shared, &mut self.tally).await {
                    Ok(sender) => {
                        self.sender = Some(sender);
                        self.backoff.reset();
                    }
                    Err(Unopened::Abandoned) => {
                        self.retry = Some(order);
                        break;
                    }
                    Err(Unopened::Failed) => {
                        self.shared.flush(&mut self.tally);
                        self.retry = Some(order);
                        let wait = self.backoff.wait();
                        until_abandoned(&self.shared, tokio::time::sleep(wait)).await;
                        continue;
                    }
                }
            }
            if !self.send(order).await {
                break;
            }
            if tally_is_large(&self.tally) {
                self.shared.flush(&mut self.tally);
            }
        }
        if self.shared.abandoning() {
            self.shed.extend(self.retry.take());
            self.shed.extend(self.outbox.drain_all());
        }
        self.shared.count_shed(&mut self.shed, &mut self.tally);
        self.shared.flush(&mut self.tally);
    }

    /// The order waiting for its retry, else one from the outbox.
    async fn next_order(&mut self) -> Next {
        if let Some(order) = self.retry.take() {
            return Next::Order(order);
        }
        let mut orders = self.outbox.take(1, &mut self.shed).await;
        self.shared.count_shed(&mut self.shed, &mut self.tally);
        match orders.pop() {
            Some(order) => Next::Order(order),
            None if self.outbox.is_closed() && self.outbox.is_empty() => Next::Done,
            None => Next::Nothing,
        }
    }

    /// Sends one order on the open connection and counts what comes of it; `false` when
    /// the run was abandoned meanwhile.
    async fn send(&mut self, order: Queued) -> bool {
        let shared = &self.shared;
        let sender = self.sender.as_mut().expect("connected before sending");
        let sent = Instant::now();
        let line = &order.line.bytes;
        // The line without its `\n` is the JSON order.
        let request = shared.target.post_json(line.slice(..line.len() - 1));
        if order.refusals == 0 {
            // Sent once per order, however many 429s it takes.
            self.tally
                .count(Count::Sent, shared.second(sent), order.phase, 1);
        }
        let answer = until_abandoned(shared, async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let wait = retry_after(&response);
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, wait, body))
        })
        .await;
        let sent = InFlight {
            order,
            sent,
            number: None,
        };
        match answer {
            None => {
                count_lost(&self.shared, &mut self.tally, &[sent]);
                return false;
            }
            Some(Err(error)) => {
                // Sent and never answered: lost (the server may or may not have it).
                count_lost(&self.shared, &mut self.tally, &[sent]);
                let problem = format!("request: {error}");
                self.shared.transport_error(&mut self.tally, problem);
                self.sender = None;
            }
            Some(Ok((StatusCode::TOO_MANY_REQUESTS, wait, _))) => {
                self.refused(sent.order, wait).await;
            }
            Some(Ok((status, _, body))) => self.answered(&sent, status, &body),
        }
        true
    }

    /// A 429: the order waits here for its retry after `wait`, or is throttled once it has
    /// had its retries.
    async fn refused(&mut self, mut order: Queued, wait: Duration) {
        if order.refusals < self.shared.retries_after_429 {
            order.refusals += 1;
            self.retry = Some(order);
            self.shared.flush(&mut self.tally);
            until_abandoned(&self.shared, tokio::time::sleep(wait)).await;
        } else {
            let second = self.shared.second(Instant::now());
            self.tally
                .count(Count::Throttled429, second, order.phase, 1);
        }
    }

    /// Any other answer is checked as a stream's line is (a 5xx also counts as a transport
    /// error).
    fn answered(&mut self, sent: &InFlight, status: StatusCode, body: &[u8]) {
        if status.is_server_error() {
            let second = self.shared.second(Instant::now());
            self.tally.count(Count::TransportError, second, 0, 1);
        }
        check(
            &self.shared,
            &mut self.tally,
            sent,
            body,
            &mut self.answered,
        );
        self.shared.pass_on(&mut self.answered);
    }
}

/// Request connections hand over their tally every so often, not every order.
fn tally_is_large(tally: &Tally) -> bool {
    tally.len() >= 64
}

#[cfg(test)]
mod tests {
    use super::differs_from_original;

    #[test]
    fn a_duplicate_is_its_original_decision_but_for_the_flag() {
        let original =
            br#"{"order_id":"A","status":"routed","seq":3,"shipments":[{"warehouse":"W"}]}"#;
        let again = br#"{"order_id":"A","status":"routed","seq":3,"shipments":[{"warehouse":"W"}],"duplicate":true}"#;
        assert_eq!(differs_from_original(again, original), None);
        assert_eq!(differs_from_original(again, b""), None, "no original kept");
        let other = br#"{"order_id":"A","status":"routed","seq":4,"shipments":[{"warehouse":"W"}],"duplicate":true}"#;
        let problem = differs_from_original(other, original).unwrap();
        assert!(
            problem.contains("\"seq\":4") && problem.contains("\"seq\":3"),
            "{problem}"
        );
    }
}
