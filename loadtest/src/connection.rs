//! Connections to the server: long-lived NDJSON streams, or one JSON order per request.
//!
//! A stream is full duplex: the writer sends what the outbox holds as one body chunk while
//! the reader takes the answers of earlier chunks, one line per line sent, in order (the
//! contract). Each line sent is remembered (`InFlight`) until its answer comes, so an answer
//! is checked against what it must be, and a line never answered is counted lost.

use crate::generate::Expect;
use crate::outbox::{Outbox, Queued};
use crate::stats::{Collector, Count, Tally};
use crate::target::Target;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::StatusCode;
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, RETRY_AFTER};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    pub resends: Option<Arc<crate::generate::ResendPool>>,
    /// Sum the shipments of decisions, for the stock check.
    pub check_stock: bool,
    pub shipped: Mutex<HashMap<(String, String), u64>>,
    /// Set at the drain deadline: connections stop and count what is unanswered as lost.
    pub abandon: AtomicBool,
    pub abandoned: tokio::sync::Notify,
}

impl Shared {
    pub fn second(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.start).as_secs() as u32
    }

    /// Hands a task's counts over to the collector.
    pub fn flush(&self, tally: &mut Tally) {
        if !tally.is_empty() {
            self.collector
                .lock()
                .expect("no panics while the collector is held")
                .absorb(tally);
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
}

/// A line sent and not yet answered.
struct InFlight {
    order: Queued,
    sent: Instant,
    /// Its line number in the stream (1-based), as the server counts them.
    number: u64,
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

#[derive(Deserialize)]
struct Shipments {
    #[serde(default)]
    shipments: Vec<Shipment>,
}

#[derive(Deserialize)]
struct Shipment {
    warehouse: String,
    lines: Vec<ShipmentLine>,
}

#[derive(Deserialize)]
struct ShipmentLine {
    sku: String,
    qty: u64,
}

/// The statuses of a decision (DESIGN.md §4).
pub const DECIDED: [&str; 4] = ["routed", "backordered", "held", "rejected"];

/// Checks one answer against what its line must get, and counts it. `line_number`: the
/// number an `invalid` answer must name (streams only).
fn check(
    shared: &Shared,
    tally: &mut Tally,
    order: &Queued,
    sent: Instant,
    answer: &[u8],
    line_number: Option<u64>,
    originals: &mut Vec<(Arc<str>, Bytes)>,
) {
    let now = Instant::now();
    let second = shared.second(now);
    let phase = order.phase;
    tally.count(Count::Answered, second, phase, 1);
    tally.latency(
        shared.second(order.intended),
        phase,
        now.saturating_duration_since(order.intended).as_micros() as u64,
        sent.saturating_duration_since(order.intended).as_micros() as u64,
    );
    let mismatch = |tally: &mut Tally, why: String| {
        tally.count(Count::Mismatch, second, phase, 1);
        let shown = String::from_utf8_lossy(&answer[..answer.len().min(240)]);
        tally.problem(format!("{why}; answer: {shown}"));
    };
    let parsed: Answer = match serde_json::from_slice(answer) {
        Ok(parsed) => parsed,
        Err(error) => return mismatch(tally, format!("answer is not JSON ({error})")),
    };
    let status = parsed.status.as_deref().unwrap_or("");
    let id = parsed.order_id.as_deref();
    match &order.line.expect {
        Expect::New { id: expected } => {
            if id != Some(&**expected) {
                return mismatch(tally, format!("order {expected}: answered for {id:?}"));
            }
            if !DECIDED.contains(&status) {
                let error = parsed.error.as_ref();
                let code = error.and_then(|error| error.code.as_deref());
                let message = error.and_then(|error| error.message.as_deref());
                return mismatch(
                    tally,
                    format!("order {expected}: status {status:?} ({code:?}: {message:?})"),
                );
            }
            if parsed.duplicate {
                tally.count(Count::UnexpectedDuplicate, second, phase, 1);
                tally.problem(format!(
                    "order {expected}: a new order answered as a duplicate"
                ));
                return;
            }
            tally.count(Count::Decided, second, phase, 1);
            tally.status(status);
            if shared.resends.is_some() && originals.len() < 64 {
                originals.push((expected.clone(), order.line.bytes.clone()));
            }
            if shared.check_stock && status != "rejected" {
                match serde_json::from_slice::<Shipments>(answer) {
                    Ok(decision) => {
                        let mut shipped = shared.shipped.lock().expect("no panics while held");
                        for shipment in decision.shipments {
                            for line in shipment.lines {
                                *shipped
                                    .entry((shipment.warehouse.clone(), line.sku))
                                    .or_default() += line.qty;
                            }
                        }
                    }
                    Err(error) => {
                        // Decided all the same (counted above): a problem of the answer's
                        // form, not a second outcome of the order.
                        tally.count(Count::TransportError, second, phase, 1);
                        tally.problem(format!("order {expected}: shipments: {error}"));
                    }
                }
            }
        }
        Expect::Resend { id: expected } => {
            if id != Some(&**expected) || !parsed.duplicate {
                return mismatch(
                    tally,
                    format!("resend of {expected}: not answered as its duplicate"),
                );
            }
            tally.count(Count::Duplicate, second, phase, 1);
        }
        Expect::Invalid(kind) => {
            let code = parsed
                .error
                .as_ref()
                .and_then(|error| error.code.as_deref());
            let status_ok = status == "invalid" || line_number.is_none();
            if !status_ok || code != Some(kind.code()) {
                return mismatch(
                    tally,
                    format!("a {} line: answered {status:?} {code:?}", kind.code()),
                );
            }
            if let Some(number) = line_number
                && parsed.line != Some(number)
            {
                return mismatch(
                    tally,
                    format!(
                        "a {} line: line {number} answered as line {:?}",
                        kind.code(),
                        parsed.line
                    ),
                );
            }
            tally.count(Count::Invalid, second, phase, 1);
        }
    }
}

/// A connection to `target` (with `SO_SNDBUF` when `send_buffer_bytes` is not 0), its
/// HTTP/1.1 handshake done and its driver spawned.
pub async fn connect(
    target: &Target,
    send_buffer_bytes: u32,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<RequestBody>> {
    let socket = if target.address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if send_buffer_bytes > 0 {
        socket.set_send_buffer_size(send_buffer_bytes)?;
    }
    let stream = socket.connect(target.address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(async move {
        // Errors surface on the request; nothing to add here.
        let _ = connection.await;
    });
    Ok(sender)
}

pub type BodyStream =
    futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>;
pub type RequestBody = http_body_util::Either<StreamBody<BodyStream>, Full<Bytes>>;

/// The seconds a 429 asks to wait (`Retry-After`, default 1, at most 60).
fn retry_after(response: &hyper::Response<hyper::body::Incoming>) -> Duration {
    let seconds = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .min(60);
    Duration::from_secs(seconds)
}

/// Runs `future` unless the run is abandoned first (the drain deadline passed): `None` then.
async fn until_abandoned<T>(
    shared: &Shared,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    // Created before the flag is read, so a `notify_waiters` in between still wakes it.
    let abandoned = shared.abandoned.notified();
    if shared.abandoning() {
        return None;
    }
    tokio::select! {
        value = future => Some(value),
        _ = abandoned => None,
    }
}

/// One long-lived NDJSON stream at a time on one connection, opened again after a failure
/// or a 429, until the outbox is closed and drained.
pub async fn stream_connection(shared: Arc<Shared>, outbox: Arc<Outbox>) {
    let mut tally = Tally::default();
    let mut backoff = Duration::from_millis(50);
    loop {
        if outbox.is_closed() && outbox.is_empty() || shared.abandoning() {
            break;
        }
        let wait = match one_stream(&shared, &outbox, &mut tally).await {
            StreamEnd::Finished => break,
            StreamEnd::Refused(wait) => wait,
            StreamEnd::Broken => {
                backoff = (backoff * 2).min(Duration::from_secs(2));
                backoff / 2
            }
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

async fn one_stream(shared: &Arc<Shared>, outbox: &Arc<Outbox>, tally: &mut Tally) -> StreamEnd {
    let connected =
        until_abandoned(shared, connect(&shared.target, shared.send_buffer_bytes)).await;
    let mut sender = match connected {
        None => return StreamEnd::Broken,
        Some(Ok(sender)) => sender,
        Some(Err(error)) => {
            tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
            tally.problem(format!("connect: {error}"));
            return StreamEnd::Broken;
        }
    };
    let (body_sender, body_receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
    let body: BodyStream = Box::pin(futures_util::stream::unfold(
        body_receiver,
        |mut receiver| async move {
            let bytes = receiver.recv().await?;
            Some((Ok(Frame::data(bytes)), receiver))
        },
    ));
    let request = shared
        .target
        .request(hyper::Method::POST, "/v1/orders")
        .header(CONTENT_TYPE, "application/x-ndjson")
        .body(http_body_util::Either::Left(StreamBody::new(body)))
        .expect("a request built from valid parts");
    let in_flight: Arc<Mutex<VecDeque<InFlight>>> = Arc::default();
    let writer_done = Arc::new(AtomicBool::new(false));

    let writer = {
        let shared = shared.clone();
        let outbox = outbox.clone();
        let in_flight = in_flight.clone();
        let writer_done = writer_done.clone();
        async move {
            let mut shed = Vec::new();
            let mut number = 0u64;
            let mut tally = Tally::default();
            // Everything counted is handed over before each `await`, where an abort may
            // land: an aborted writer has lost nothing (its lines are in `in_flight`).
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
                let now = Instant::now();
                let mut chunk = BytesMut::with_capacity(
                    orders.iter().map(|order| order.line.bytes.len()).sum(),
                );
                {
                    let mut queue = in_flight.lock().expect("no panics while held");
                    let second = shared.second(now);
                    for order in orders {
                        number += 1;
                        chunk.extend_from_slice(&order.line.bytes);
                        tally.count(Count::Sent, second, order.phase, 1);
                        queue.push_back(InFlight {
                            order,
                            sent: now,
                            number,
                        });
                    }
                }
                shared.flush(&mut tally);
                if body_sender.send(chunk.freeze()).await.is_err() {
                    // The connection is gone; what was never answered is counted after.
                    break;
                }
            }
            shared.flush(&mut tally);
            writer_done.store(true, Ordering::Release);
            // Dropping the sender ends the body: the server answers the rest and ends too.
            drop(body_sender);
        }
    };
    let writer = tokio::spawn(writer);
    let end = read_stream(shared, &mut sender, request, &in_flight, tally).await;
    // The writer stops before the lines left are counted, so none it takes afterwards
    // escapes the count.
    writer.abort();
    let _ = writer.await;
    let rest = take_all(&in_flight);
    let second = shared.second(Instant::now());
    match end {
        ReadEnd::Refused(wait) => {
            count_each(tally, &rest, Count::Throttled429, second);
            StreamEnd::Refused(wait)
        }
        ReadEnd::Status(status) => {
            count_each(tally, &rest, Count::Mismatch, second);
            tally.count(Count::TransportError, second, 0, 1);
            tally.problem(format!("a stream answered {status}"));
            StreamEnd::Broken
        }
        ReadEnd::Broken => {
            count_lost(shared, tally, &rest);
            StreamEnd::Broken
        }
        ReadEnd::Ended => {
            count_lost(shared, tally, &rest);
            if writer_done.load(Ordering::Acquire) && rest.is_empty() {
                StreamEnd::Finished
            } else {
                StreamEnd::Broken
            }
        }
    }
}

/// The reading side of a stream: answers matched to the lines sent, in order.
async fn read_stream(
    shared: &Arc<Shared>,
    sender: &mut hyper::client::conn::http1::SendRequest<RequestBody>,
    request: hyper::Request<RequestBody>,
    in_flight: &Mutex<VecDeque<InFlight>>,
    tally: &mut Tally,
) -> ReadEnd {
    let response = match until_abandoned(shared, sender.send_request(request)).await {
        None => return ReadEnd::Ended,
        Some(Ok(response)) => response,
        Some(Err(error)) => {
            tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
            tally.problem(format!("stream: {error}"));
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
    let mut carry = BytesMut::new();
    let mut originals = Vec::new();
    loop {
        let frame = match until_abandoned(shared, body.frame()).await {
            None | Some(None) => return ReadEnd::Ended,
            Some(Some(frame)) => frame,
        };
        let data = match frame {
            Err(error) => {
                tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
                tally.problem(format!("stream body: {error}"));
                return ReadEnd::Broken;
            }
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        carry.extend_from_slice(&data);
        let mut start = 0;
        let mut answered = Vec::new();
        {
            let mut queue = in_flight.lock().expect("no panics while held");
            for end in memchr::memchr_iter(b'\n', &carry) {
                match queue.pop_front() {
                    Some(sent) => answered.push((sent, start, end)),
                    None => {
                        tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
                        tally.problem("an answer line for no line sent".to_owned());
                    }
                }
                start = end + 1;
            }
        }
        for (sent, from, to) in answered {
            check(
                shared,
                tally,
                &sent.order,
                sent.sent,
                &carry[from..to],
                Some(sent.number),
                &mut originals,
            );
        }
        let _ = carry.split_to(start);
        if let Some(pool) = &shared.resends
            && !originals.is_empty()
        {
            pool.offer(originals.drain(..));
        }
        shared.flush(tally);
    }
}

fn take_all(in_flight: &Mutex<VecDeque<InFlight>>) -> Vec<InFlight> {
    in_flight
        .lock()
        .expect("no panics while held")
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
        if let Expect::New { id } | Expect::Resend { id } = &line.order.line.expect {
            tally.problem(format!("order {id}: sent, never answered"));
        }
    }
}

/// One JSON order per request, one request at a time, on one keep-alive connection.
pub async fn request_connection(shared: Arc<Shared>, outbox: Arc<Outbox>) {
    let mut tally = Tally::default();
    let mut shed = Vec::new();
    let mut sender = None;
    let mut backoff = Duration::from_millis(50);
    let mut originals = Vec::new();
    // An order refused with 429 and waiting for its retry here: it keeps its intended time.
    let mut retry: Option<Queued> = None;
    loop {
        if shared.abandoning() {
            break;
        }
        let order = match retry.take() {
            Some(order) => order,
            None => {
                let mut orders = outbox.take(1, &mut shed).await;
                shared.count_shed(&mut shed, &mut tally);
                match orders.pop() {
                    Some(order) => order,
                    None if outbox.is_closed() && outbox.is_empty() => break,
                    None => {
                        shared.flush(&mut tally);
                        continue;
                    }
                }
            }
        };
        if sender.is_none() {
            match until_abandoned(&shared, connect(&shared.target, shared.send_buffer_bytes)).await
            {
                None => {
                    retry = Some(order);
                    break;
                }
                Some(Ok(connected)) => {
                    sender = Some(connected);
                    backoff = Duration::from_millis(50);
                }
                Some(Err(error)) => {
                    tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
                    tally.problem(format!("connect: {error}"));
                    shared.flush(&mut tally);
                    retry = Some(order);
                    until_abandoned(&shared, tokio::time::sleep(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let connection = sender.as_mut().expect("connected above");
        let sent = Instant::now();
        let line = &order.line.bytes;
        let request = shared
            .target
            .request(hyper::Method::POST, "/v1/orders")
            .header(CONTENT_TYPE, "application/json")
            .body(http_body_util::Either::Right(Full::new(
                line.slice(..line.len() - 1),
            )))
            .expect("a request built from valid parts");
        if order.refusals == 0 {
            // Sent once per order, however many 429s it takes.
            tally.count(Count::Sent, shared.second(sent), order.phase, 1);
        }
        let answer = until_abandoned(&shared, async {
            let response = connection.send_request(request).await?;
            let status = response.status();
            let wait = retry_after(&response);
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, wait, body))
        })
        .await;
        match answer {
            None => {
                count_lost(
                    &shared,
                    &mut tally,
                    &[InFlight {
                        order,
                        sent,
                        number: 0,
                    }],
                );
                break;
            }
            Some(Err(error)) => {
                // Sent and never answered: lost (the server may or may not have it).
                count_lost(
                    &shared,
                    &mut tally,
                    &[InFlight {
                        order,
                        sent,
                        number: 0,
                    }],
                );
                tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
                tally.problem(format!("request: {error}"));
                sender = None;
            }
            Some(Ok((StatusCode::TOO_MANY_REQUESTS, wait, _))) => {
                if order.refusals < shared.retries_after_429 {
                    let mut order = order;
                    order.refusals += 1;
                    retry = Some(order);
                    shared.flush(&mut tally);
                    until_abandoned(&shared, tokio::time::sleep(wait)).await;
                } else {
                    tally.count(
                        Count::Throttled429,
                        shared.second(Instant::now()),
                        order.phase,
                        1,
                    );
                }
            }
            Some(Ok((status, _, body))) => {
                if status.is_server_error() {
                    tally.count(Count::TransportError, shared.second(Instant::now()), 0, 1);
                }
                check(
                    &shared,
                    &mut tally,
                    &order,
                    sent,
                    &body,
                    None,
                    &mut originals,
                );
                if let Some(pool) = &shared.resends
                    && !originals.is_empty()
                {
                    pool.offer(originals.drain(..));
                }
            }
        }
        if tally_is_large(&tally) {
            shared.flush(&mut tally);
        }
    }
    if shared.abandoning() {
        shed.extend(retry.take());
        shed.extend(outbox.drain_all());
    }
    shared.count_shed(&mut shed, &mut tally);
    shared.flush(&mut tally);
}

/// Request connections hand over their tally every so often, not every order.
fn tally_is_large(tally: &Tally) -> bool {
    tally.len() >= 64
}
