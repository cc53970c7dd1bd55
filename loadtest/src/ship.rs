//! Shipping (`[ship]`): what a warehouse system does with the orders the server placed.
//!
//! A connection that checked a new order's decision whose status the scenario ships hands
//! its id over ([`Shipper::schedule`], a chunk's worth under one lock, as the counts go to
//! the collector). The shipper picks `share` of them, by a hash of the id and the seed (the
//! same orders whatever the timing), and queues each at its due time: the moment it was
//! handed over plus `delay_s` (fixed, or drawn from the range by the same hash). `connections`
//! tasks, each on a keep-alive HTTP/1.1 connection of its own (the same hyper client as the
//! orders', [`Target::connect`]), take the shipments due, earliest first, and send one
//! request at a time: with `batch = 1` (the default) one `POST /v1/orders/{id}/shipped`, with
//! more the shipments due at that moment, up to `batch`, as one `POST /v1/shipments` (each
//! counted by its own answer line). A batch never waits for shipments not due yet. They are
//! not the order connections: a slow ship answer holds no order back and is in no order's
//! latency, and the scheduler thread never touches the queue.
//!
//! Bounds, and what happens at each:
//! - The queue holds at most `max_queued` shipments (about 100 bytes each); an order placed
//!   while it is full is not queued and is counted (`queue_full`).
//! - A `429` puts the shipment back, due after its `Retry-After` (1 s without one, at most
//!   60 s), as often as the server asks until the drain deadline.
//! - Any other answer but 2xx is a failure, counted by status (`404` unknown order, `409`
//!   not live, ...; in a batch's `200` each refused line by its error code, `not_live`,
//!   `unknown_order`, ...); a connection that breaks during a request is a `transport` failure, not
//!   retried (the server may have shipped it: a second request would be refused as not
//!   live). A connection that cannot be opened leaves the shipment queued and backs off.
//! - Falling behind is measured, not hidden: `late_ms` runs from the due time (the first
//!   one, so a 429's wait counts) to the moment the request goes.
//! - After the last phase, once the order connections have drained (no more orders are
//!   placed), shipping goes on at the shipments' due times until the queue is empty or the
//!   run's drain deadline (the last phase's end plus `drain_timeout_s`) passes. What is left
//!   then, queued or in flight, is counted `not_shipped`, with how many of them were due.
//!
//! Every shipment chosen ends exactly once: `queue_full`, `shipped`, `failed` or
//! `not_shipped` (the report checks it).

use crate::scenario::Ship;
use crate::stats::{latency_histogram, percentiles};
use crate::target::{Backoff, Connection, Target, retry_after, unless_stopped};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::StatusCode;
use serde_json::{Value, json};
use std::cmp::Ordering as Order;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Problem lines kept (the first failures, with the server's answer).
const PROBLEMS_KEPT: usize = 10;

/// A shipment waiting for its due time.
#[derive(Debug)]
struct Shipment {
    /// When it may go (later than `first_due` after a 429).
    due: Instant,
    /// When it was first due: lateness runs from here.
    first_due: Instant,
    id: Arc<str>,
}

// The queue is a max-heap: the earliest due is the greatest.
impl Ord for Shipment {
    fn cmp(&self, other: &Self) -> Order {
        other.due.cmp(&self.due)
    }
}

impl PartialOrd for Shipment {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Shipment {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}

impl Eq for Shipment {}

/// What shipping counted, for the report.
#[derive(Debug, Clone)]
pub struct ShipStats {
    /// New orders decided with a status the scenario ships.
    pub eligible: u64,
    /// Of those, picked by `share` to be shipped.
    pub chosen: u64,
    /// Chosen, but not queued: the queue held `max_queued` already.
    pub queue_full: u64,
    /// Answered 2xx.
    pub shipped: u64,
    /// Failures by status (`"404"`, `"409"`, ..., `"transport"`).
    pub failed: BTreeMap<String, u64>,
    /// Shipping requests sent (one shipment each, or up to `batch`).
    pub requests: u64,
    /// 429 answers (each retried after its Retry-After; all of a batch's shipments with it).
    pub throttled_429: u64,
    /// Connections that could not be opened (their shipment stayed queued).
    pub connect_errors: u64,
    /// Queued or in flight when shipping stopped at the drain deadline.
    pub not_shipped: u64,
    /// Of `not_shipped`, those already due then (the rest were not due yet).
    pub not_shipped_due: u64,
    /// The most shipments queued at once.
    pub peak_queued: usize,
    /// From due to sent (µs).
    pub late: Histogram<u64>,
    /// From sent to answered (µs).
    pub latency: Histogram<u64>,
    pub problems: Vec<String>,
}

impl ShipStats {
    fn new() -> ShipStats {
        ShipStats {
            eligible: 0,
            chosen: 0,
            queue_full: 0,
            shipped: 0,
            failed: BTreeMap::new(),
            requests: 0,
            throttled_429: 0,
            connect_errors: 0,
            not_shipped: 0,
            not_shipped_due: 0,
            peak_queued: 0,
            late: latency_histogram(),
            latency: latency_histogram(),
            problems: Vec::new(),
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Chosen shipments with no outcome (or more outcomes than chosen): 0 when every one
    /// ended exactly once.
    pub fn unaccounted(&self) -> i128 {
        let ended = self.queue_full + self.shipped + self.failed_total() + self.not_shipped;
        i128::from(self.chosen) - i128::from(ended)
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(text);
        }
    }

    /// The report's `shipping` object; `ship` is the scenario's table.
    pub fn json(&self, ship: &Ship) -> Value {
        json!({
            "share": ship.share,
            "statuses": ship.statuses,
            "delay_s": ship.delay_s.bounds(),
            "connections": ship.connections,
            "batch": ship.batch,
            "requests": self.requests,
            "eligible": self.eligible,
            "chosen": self.chosen,
            "shipped": self.shipped,
            "failed": self.failed_total(),
            "failed_by_status": self.failed,
            "throttled_429": self.throttled_429,
            "not_shipped": self.not_shipped,
            "not_shipped_due": self.not_shipped_due,
            "queue_full": self.queue_full,
            "connect_errors": self.connect_errors,
            "peak_queued": self.peak_queued,
            "late_ms": percentiles(&self.late),
            "latency_ms": percentiles(&self.latency),
            "problems": self.problems,
        })
    }
}

/// The queue and the counts, under one lock: each is held for a push, a pop or a count.
struct State {
    queue: BinaryHeap<Shipment>,
    /// Taken by a connection and not settled yet (a 429 puts it back before it settles).
    in_flight: usize,
    /// No more orders will be placed: a connection finding nothing queued and nothing in
    /// flight ends.
    closed: bool,
    stats: ShipStats,
}

/// The shipping queue and what its connections share.
pub struct Shipper {
    target: Target,
    ship: Ship,
    seed: u64,
    state: Mutex<State>,
    /// Wakes the connections waiting for a due time: an earlier one, the close, the stop.
    wake: Notify,
    /// Set at the drain deadline: connections stop, what is left is not shipped.
    stop: AtomicBool,
    /// Wakes the requests (and connects) in progress at the stop.
    halt: Notify,
    /// Requests sent (counted apart from the queue's lock).
    requests: AtomicU64,
}

/// Why [`Shipper::next`] gave nothing.
#[derive(Debug)]
enum Idle {
    /// Closed, nothing queued and nothing in flight: done.
    Done,
    /// Stopped at the deadline.
    Stopped,
}

impl Shipper {
    pub fn new(target: Target, ship: Ship, seed: u64) -> Shipper {
        Shipper {
            target,
            ship,
            seed,
            state: Mutex::new(State {
                queue: BinaryHeap::new(),
                in_flight: 0,
                closed: false,
                stats: ShipStats::new(),
            }),
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            halt: Notify::new(),
            requests: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no panics while the shipping queue is held")
    }

    /// Whether orders decided `status` are shipped.
    pub fn ships(&self, status: &str) -> bool {
        self.ship.statuses.iter().any(|shipped| shipped == status)
    }

    /// Shipments queued now, and shipped so far (for the progress line).
    pub fn progress(&self) -> (usize, u64) {
        let state = self.state();
        (state.queue.len(), state.stats.shipped)
    }

    /// The delay of order `id`'s shipment, or `None` when it is not one of the `share`
    /// shipped: both from a hash of the id and the seed.
    fn pick(&self, id: &str) -> Option<Duration> {
        let first = mix(fnv1a(id.as_bytes()) ^ self.seed);
        if unit(first) >= self.ship.share {
            return None;
        }
        let [low, high] = self.ship.delay_s.bounds();
        let seconds = low + (high - low) * unit(mix(first));
        Some(Duration::from_secs_f64(seconds))
    }

    /// Takes the orders placed (`placed`, left empty): each chosen by `share` is queued,
    /// due its delay from now.
    pub fn schedule(&self, placed: &mut Vec<Arc<str>>) {
        if placed.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        let earliest = state.queue.peek().map(|first| first.due);
        state.stats.eligible += placed.len() as u64;
        for id in placed.drain(..) {
            let Some(delay) = self.pick(&id) else {
                continue;
            };
            state.stats.chosen += 1;
            if state.queue.len() >= self.ship.max_queued {
                state.stats.queue_full += 1;
                continue;
            }
            let due = now + delay;
            state.queue.push(Shipment {
                due,
                first_due: due,
                id,
            });
        }
        state.stats.peak_queued = state.stats.peak_queued.max(state.queue.len());
        let sooner = match (state.queue.peek(), earliest) {
            (Some(first), Some(before)) => first.due < before,
            (Some(_), None) => true,
            (None, _) => false,
        };
        drop(state);
        if sooner {
            self.wake.notify_waiters();
        }
    }

    /// The shipments due, at least one and at most `max`, earliest first, waiting for the
    /// first; an [`Idle`] when there is none to wait for.
    async fn next(&self, max: usize) -> Result<Vec<Shipment>, Idle> {
        loop {
            // Created before the state is read, so a `notify_waiters` in between wakes it.
            let woken = self.wake.notified();
            let wait_until = {
                let mut state = self.state();
                if self.stopping() {
                    return Err(Idle::Stopped);
                }
                match state.queue.peek().map(|first| first.due) {
                    Some(due) if due <= Instant::now() => {
                        let now = Instant::now();
                        let mut taken = Vec::with_capacity(max.min(state.queue.len()));
                        while taken.len() < max
                            && state.queue.peek().is_some_and(|first| first.due <= now)
                        {
                            taken.push(state.queue.pop().expect("peeked"));
                        }
                        state.in_flight += taken.len();
                        return Ok(taken);
                    }
                    Some(due) => Some(due),
                    None if state.closed && state.in_flight == 0 => return Err(Idle::Done),
                    None => None,
                }
            };
            match wait_until {
                Some(due) => {
                    tokio::select! {
                        _ = woken => {}
                        _ = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    /// `taken` shipments taken by [`Shipper::next`] are over: counted by `count` (under the
    /// lock).
    fn settle(&self, taken: usize, count: impl FnOnce(&mut ShipStats)) {
        let mut state = self.state();
        count(&mut state.stats);
        state.in_flight -= taken;
        let done = state.closed && state.in_flight == 0 && state.queue.is_empty();
        drop(state);
        if done {
            self.wake.notify_waiters();
        }
    }

    /// Shipments taken and not sent (429, no connection): queued again, due at `due`.
    fn put_back(&self, shipments: Vec<Shipment>, due: Instant, count: impl FnOnce(&mut ShipStats)) {
        let mut state = self.state();
        count(&mut state.stats);
        let sooner = state.queue.peek().is_none_or(|first| due < first.due);
        state.in_flight -= shipments.len();
        for mut shipment in shipments {
            shipment.due = due;
            state.queue.push(shipment);
        }
        drop(state);
        if sooner {
            self.wake.notify_waiters();
        }
    }

    /// No more orders will be placed.
    pub fn close(&self) {
        self.state().closed = true;
        self.wake.notify_waiters();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// The drain deadline: connections end, what is queued or in flight is not shipped.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_waiters();
        self.halt.notify_waiters();
    }

    /// Runs `future` unless shipping stops first (`None` then).
    async fn until_stopped<T>(&self, future: impl std::future::Future<Output = T>) -> Option<T> {
        unless_stopped(&self.halt, || self.stopping(), future).await
    }

    /// The counts, once every connection has ended: what is left queued is not shipped.
    pub fn finish(&self) -> ShipStats {
        let now = Instant::now();
        let mut state = self.state();
        let left = std::mem::take(&mut state.queue);
        state.stats.not_shipped += left.len() as u64;
        state.stats.not_shipped_due += left.iter().filter(|item| item.due <= now).count() as u64;
        // Connections aborted in a request (they did not end within the grace period).
        let aborted = std::mem::take(&mut state.in_flight) as u64;
        state.stats.not_shipped += aborted;
        state.stats.not_shipped_due += aborted;
        state.stats.requests = self.requests.load(Ordering::Relaxed);
        state.stats.clone()
    }

    /// Starts the shipping connections.
    pub fn start(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        (0..self.ship.connections)
            .map(|_| tokio::spawn(ship_connection(self.clone())))
            .collect()
    }
}

/// One shipping connection: the shipments due, one request at a time (of one shipment, or
/// of up to `batch`), until shipping is done or stopped.
async fn ship_connection(shipper: Arc<Shipper>) {
    let mut connection: Option<Connection> = None;
    let mut backoff = Backoff::new(Duration::from_secs(2));
    loop {
        let shipments = match shipper.next(shipper.ship.batch).await {
            Ok(shipments) => shipments,
            Err(Idle::Done | Idle::Stopped) => break,
        };
        if connection.is_none() {
            let due = shipments[0].due;
            match shipper.until_stopped(shipper.target.connect(0)).await {
                None => {
                    shipper.put_back(shipments, due, |_| {});
                    break;
                }
                Some(Ok(opened)) => {
                    connection = Some(opened);
                    backoff.reset();
                }
                Some(Err(error)) => {
                    let wait = backoff.wait();
                    shipper.put_back(shipments, due, |stats| {
                        stats.connect_errors += 1;
                        stats.problem(format!("shipping: connect: {error}"));
                    });
                    shipper.until_stopped(tokio::time::sleep(wait)).await;
                    continue;
                }
            }
        }
        let sender = connection.as_mut().expect("connected above");
        let usable = if shipper.ship.batch == 1 {
            let shipment = shipments.into_iter().next().expect("at least one is taken");
            ship_one(&shipper, sender, shipment).await
        } else {
            ship_batch(&shipper, sender, shipments).await
        };
        if !usable {
            // Broken (or stopped): a new connection for the next one.
            connection = None;
        }
    }
}

/// What a request's answer was: `None` when shipping stopped with it out.
type Answer = Option<Result<(StatusCode, Duration, Bytes), hyper::Error>>;

/// Sends `request` on `sender` unless shipping stops first: the answer, and when it came.
async fn send(
    shipper: &Shipper,
    sender: &mut Connection,
    request: hyper::Request<crate::target::RequestBody>,
) -> (Answer, Instant) {
    shipper.requests.fetch_add(1, Ordering::Relaxed);
    let answer = shipper
        .until_stopped(async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let wait = retry_after(&response);
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<(StatusCode, Duration, Bytes), hyper::Error>((status, wait, body))
        })
        .await;
    (answer, Instant::now())
}

/// Sends one shipment (`POST /v1/orders/{id}/shipped`) and counts what comes of it;
/// `false` when the connection is no longer usable.
async fn ship_one(shipper: &Shipper, sender: &mut Connection, shipment: Shipment) -> bool {
    let request = match shipper.target.post_shipped(&shipment.id) {
        Ok(request) => request,
        Err(error) => {
            let id = shipment.id.clone();
            shipper.settle(1, |stats| {
                *stats.failed.entry("bad_id".to_owned()).or_default() += 1;
                stats.problem(format!("shipping {id}: cannot make the request: {error}"));
            });
            return true;
        }
    };
    let sent = Instant::now();
    let late_us = sent
        .saturating_duration_since(shipment.first_due)
        .as_micros() as u64;
    let (answer, answered) = send(shipper, sender, request).await;
    let latency_us = answered.saturating_duration_since(sent).as_micros() as u64;
    let record = move |stats: &mut ShipStats| {
        stats.late.saturating_record(late_us.max(1));
        stats.latency.saturating_record(latency_us.max(1));
    };
    match answer {
        None => {
            // Stopped with the request out: not shipped, as far as the tool knows.
            shipper.settle(1, |stats| {
                stats.not_shipped += 1;
                stats.not_shipped_due += 1;
            });
            false
        }
        Some(Err(error)) => {
            let id = &shipment.id;
            shipper.settle(1, |stats| {
                *stats.failed.entry("transport".to_owned()).or_default() += 1;
                stats.problem(format!("shipping {id}: {error}"));
            });
            false
        }
        Some(Ok((StatusCode::TOO_MANY_REQUESTS, wait, _))) => {
            shipper.put_back(vec![shipment], answered + wait, |stats| {
                stats.throttled_429 += 1;
            });
            true
        }
        Some(Ok((status, _, _))) if status.is_success() => {
            shipper.settle(1, |stats| {
                stats.shipped += 1;
                record(stats);
            });
            true
        }
        Some(Ok((status, _, body))) => {
            let id = &shipment.id;
            let shown = String::from_utf8_lossy(&body[..body.len().min(240)]).into_owned();
            shipper.settle(1, |stats| {
                *stats.failed.entry(status.as_u16().to_string()).or_default() += 1;
                stats.problem(format!("shipping {id}: {status}: {shown}"));
                record(stats);
            });
            true
        }
    }
}

/// Sends `shipments` as one `POST /v1/shipments` and counts what comes of each, by its
/// answer line: `shipped`, or a failure under the line's error code (`not_live`,
/// `unknown_order`, ...; `no_answer` for a line the answer lacks); `false` when the
/// connection is no longer usable.
async fn ship_batch(shipper: &Shipper, sender: &mut Connection, shipments: Vec<Shipment>) -> bool {
    let taken = shipments.len();
    let mut body = Vec::with_capacity(taken * 32);
    for shipment in &shipments {
        body.extend_from_slice(b"{\"id\":");
        serde_json::to_writer(&mut body, &*shipment.id).expect("a string serialises");
        body.extend_from_slice(b"}\n");
    }
    let request = shipper.target.post_shipments(Bytes::from(body));
    let sent = Instant::now();
    let (answer, answered) = send(shipper, sender, request).await;
    let latency_us = answered.saturating_duration_since(sent).as_micros() as u64;
    let record = |stats: &mut ShipStats| {
        for shipment in &shipments {
            let late_us = sent
                .saturating_duration_since(shipment.first_due)
                .as_micros() as u64;
            stats.late.saturating_record(late_us.max(1));
            stats.latency.saturating_record(latency_us.max(1));
        }
    };
    let n = taken as u64;
    match answer {
        None => {
            shipper.settle(taken, |stats| {
                stats.not_shipped += n;
                stats.not_shipped_due += n;
            });
            false
        }
        Some(Err(error)) => {
            shipper.settle(taken, |stats| {
                *stats.failed.entry("transport".to_owned()).or_default() += n;
                stats.problem(format!("shipping {taken} in one request: {error}"));
            });
            false
        }
        Some(Ok((StatusCode::TOO_MANY_REQUESTS, wait, _))) => {
            shipper.put_back(shipments, answered + wait, |stats| {
                stats.throttled_429 += 1;
            });
            true
        }
        Some(Ok((status, _, answer))) if status.is_success() => {
            let outcomes = batch_outcomes(&answer, taken);
            shipper.settle(taken, |stats| {
                for (shipment, outcome) in shipments.iter().zip(outcomes) {
                    match outcome {
                        Ok(()) => stats.shipped += 1,
                        Err((code, line)) => {
                            *stats.failed.entry(code).or_default() += 1;
                            stats.problem(format!("shipping {}: {line}", shipment.id));
                        }
                    }
                }
                record(stats);
            });
            true
        }
        Some(Ok((status, _, answer))) => {
            let shown = String::from_utf8_lossy(&answer[..answer.len().min(240)]).into_owned();
            shipper.settle(taken, |stats| {
                *stats.failed.entry(status.as_u16().to_string()).or_default() += n;
                stats.problem(format!(
                    "shipping {taken} in one request: {status}: {shown}"
                ));
                record(stats);
            });
            true
        }
    }
}

/// Each of `count` shipments' outcome in a `POST /v1/shipments` answer: shipped, or the
/// failure's key (the line's error code, `no_answer` for a missing or unreadable line) and
/// the line itself.
fn batch_outcomes(answer: &[u8], count: usize) -> Vec<Result<(), (String, String)>> {
    let mut outcomes = vec![Err(("no_answer".to_owned(), "no answer line".to_owned())); count];
    for line in answer.split(|&byte| byte == b'\n') {
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let Some(index) = value["line"].as_u64().and_then(|line| line.checked_sub(1)) else {
            continue;
        };
        let Some(outcome) = outcomes.get_mut(index as usize) else {
            continue;
        };
        *outcome = if value["state"] == "shipped" {
            Ok(())
        } else {
            let code = value["error"]["code"].as_str().unwrap_or("no_answer");
            Err((code.to_owned(), value.to_string()))
        };
    }
    outcomes
}

/// FNV-1a, 64 bits: a stable hash of an id (the standard library's may change between
/// releases, and the orders shipped should not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finaliser: spreads every bit of `x` over the result.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The top 53 bits of `x` as a number in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ShipDelay;

    fn shipper(share: f64, delay_s: ShipDelay) -> Shipper {
        let target = Target::parse("http://127.0.0.1:9", None).unwrap();
        let ship = Ship {
            share,
            statuses: vec!["routed".to_owned()],
            delay_s,
            connections: 1,
            max_queued: 100,
            batch: 1,
        };
        Shipper::new(target, ship, 7)
    }

    fn ids(n: usize) -> Vec<Arc<str>> {
        (0..n).map(|i| Arc::from(format!("LT1-{i}"))).collect()
    }

    #[test]
    fn the_share_and_the_delays_follow_the_table_and_the_ids() {
        let shipper = shipper(0.3, ShipDelay::Range([20.0, 60.0]));
        let delays: Vec<Duration> = ids(10_000)
            .iter()
            .filter_map(|id| shipper.pick(id))
            .collect();
        // 30% of 10,000, give or take the draw.
        assert!((2_800..3_200).contains(&delays.len()), "{}", delays.len());
        let seconds: Vec<f64> = delays.iter().map(Duration::as_secs_f64).collect();
        assert!(seconds.iter().all(|s| (20.0..=60.0).contains(s)));
        let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
        assert!((38.0..42.0).contains(&mean), "{mean}");
        // The same id, the same pick.
        assert_eq!(shipper.pick("LT1-5"), shipper.pick("LT1-5"));
        let all = self::shipper(1.0, ShipDelay::Fixed(2.5));
        assert!(
            ids(1_000)
                .iter()
                .all(|id| all.pick(id) == Some(Duration::from_millis(2_500)))
        );
        let none = self::shipper(0.0, ShipDelay::Fixed(2.5));
        assert!(ids(1_000).iter().all(|id| none.pick(id).is_none()));
    }

    #[test]
    fn a_full_queue_counts_what_it_cannot_take_and_the_rest_is_not_shipped() {
        let shipper = shipper(1.0, ShipDelay::Fixed(3_600.0));
        let mut placed = ids(150);
        shipper.schedule(&mut placed);
        assert!(placed.is_empty());
        let stats = shipper.finish();
        assert_eq!(
            (stats.eligible, stats.chosen, stats.queue_full),
            (150, 150, 50)
        );
        assert_eq!((stats.not_shipped, stats.not_shipped_due), (100, 0));
        assert_eq!(stats.peak_queued, 100);
        assert_eq!(stats.unaccounted(), 0);
    }

    #[tokio::test]
    async fn shipments_come_out_at_their_due_times_earliest_first() {
        let shipper = shipper(1.0, ShipDelay::Range([0.0, 0.3]));
        let mut placed = ids(50);
        shipper.schedule(&mut placed);
        shipper.close();
        let started = Instant::now();
        let mut last = started;
        let mut taken = 0;
        while let Ok(shipments) = shipper.next(1).await {
            assert_eq!(shipments.len(), 1);
            let shipment = &shipments[0];
            assert!(shipment.due >= last, "earliest first");
            assert!(Instant::now() >= shipment.due, "not before it is due");
            last = shipment.due;
            taken += 1;
            shipper.settle(1, |stats| stats.shipped += 1);
        }
        assert_eq!(taken, 50);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(shipper.finish().unaccounted(), 0);
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_due_together_up_to_its_size() {
        let shipper = shipper(1.0, ShipDelay::Fixed(0.0));
        shipper.schedule(&mut ids(10));
        // Due at once: four, four, then the last two; none left in the queue.
        let sizes = [
            shipper.next(4).await.unwrap().len(),
            shipper.next(4).await.unwrap().len(),
            shipper.next(4).await.unwrap().len(),
        ];
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(shipper.progress().0, 0);
        shipper.settle(10, |stats| stats.shipped += 10);
        // Not due yet: a batch does not wait for more than its first.
        let later = self::shipper(1.0, ShipDelay::Range([0.0, 0.5]));
        later.schedule(&mut ids(20));
        let first = later.next(20).await.unwrap();
        assert!(
            first.len() < 20,
            "{} taken before the rest were due",
            first.len()
        );
        assert_eq!(shipper.finish().unaccounted(), 0);
    }

    #[test]
    fn a_batch_answer_is_read_line_by_line_and_a_missing_line_is_a_failure() {
        let answer = concat!(
            "{\"line\":2,\"order_id\":\"B\",\"status\":\"error\",\"error\":{\"code\":\"not_live\",\"message\":\"m\"}}\n",
            "{\"line\":1,\"order_id\":\"A\",\"state\":\"shipped\"}\n",
            "{\"line\":9,\"order_id\":\"Z\",\"state\":\"shipped\"}\n",
            "garbage\n",
        );
        let outcomes = batch_outcomes(answer.as_bytes(), 3);
        assert_eq!(outcomes[0], Ok(()));
        assert_eq!(outcomes[1].as_ref().unwrap_err().0, "not_live");
        assert_eq!(outcomes[2].as_ref().unwrap_err().0, "no_answer");
    }

    #[tokio::test]
    async fn a_stop_ends_the_wait_and_leaves_the_rest_not_shipped() {
        let shipper = Arc::new(shipper(1.0, ShipDelay::Fixed(3_600.0)));
        shipper.schedule(&mut ids(3));
        let waiting = tokio::spawn({
            let shipper = shipper.clone();
            async move { shipper.next(1).await.is_err() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        shipper.stop();
        let stopped = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a stop wakes a waiting connection")
            .unwrap();
        assert!(stopped);
        let stats = shipper.finish();
        assert_eq!((stats.not_shipped, stats.not_shipped_due), (3, 0));
    }
}
