//! The load tester's checks catch a server that breaks the contract: a fake router (actix-web,
//! in this process) answers with a fault, and the run must fail, counting it.
//!
//! The fake also keeps a book of the orders it decided and answers
//! `POST /v1/orders/{id}/shipped` as the router does (404 for an unknown order, 409 for one
//! held for review, rejected or shipped already), so the shipping tests can check, on the
//! server's side, that every order the report says was shipped was, once, and no sooner
//! than its delay.

use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use loadtest::capacity::{CapacityOptions, capacity};
use loadtest::ndjson::{Line, LineSplitter, MAX_LINE_BYTES};
use loadtest::run::{RunOptions, run};
use loadtest::scenario::Scenario;
use loadtest::target::Target;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Fault {
    /// Every line answered correctly.
    None,
    /// The 50th line of each stream is never answered (its answer is skipped), so every
    /// later answer belongs to another line and the last line is lost.
    SkipOne,
    /// Every 40th new order is answered `"duplicate": true`.
    FalseDuplicate,
    /// The first stream is refused with 429 (Retry-After: 1) once it has carried
    /// [`REFUSED_AFTER_LINES`] lines; later ones are served.
    RefuseFirstStream,
    /// Streams are read but never answered: the response never starts.
    Silent,
    /// Every line answered correctly, the new orders' statuses in turn by line number:
    /// routed, backordered, held, rejected.
    MixedStatuses,
    /// Every line answered correctly; the first `shipped` of each order is refused with 429
    /// (Retry-After: 1).
    ShipRefusedOnce,
    /// Every line answered correctly; every `shipped` is answered 404, as for an order the
    /// server does not know.
    ShipUnknown,
    /// Every line answered correctly, each stream at most this many lines a second (what it
    /// reads beyond that waits): a server whose capacity is known.
    Paced(u32),
}

/// What the fake knows of an order it decided.
struct Booked {
    status: &'static str,
    answered: Instant,
    /// When its `shipped` was accepted.
    shipped: Option<Instant>,
    /// Its `shipped` requests, accepted or not.
    ship_requests: u32,
}

/// The orders the fake decided, by id.
#[derive(Default)]
struct Book(Mutex<HashMap<String, Booked>>);

impl Book {
    fn orders(&self) -> std::sync::MutexGuard<'_, HashMap<String, Booked>> {
        self.0.lock().unwrap()
    }
}

/// Lines the first stream carries before [`Fault::RefuseFirstStream`] refuses it.
const REFUSED_AFTER_LINES: usize = 30;

async fn network() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "regions": [{"id": "X1", "population": 1.0}, {"id": "X2", "population": 3.0}],
        "tiers": [{"id": "standard", "min_service": "economy"}],
        "zones": [], "warehouses": [], "carriers": [],
    }))
}

async fn catalog() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!([
        {"sku": "P-1", "weight_g": 100, "capabilities": []},
        {"sku": "P-2", "weight_g": 100, "capabilities": []},
    ]))
}

fn answer(line: &[u8], number: u64, fault: Fault, book: &Book, out: &mut BytesMut) {
    let order: serde_json::Value = match serde_json::from_slice(line) {
        Ok(order) => order,
        Err(_) => {
            let invalid = serde_json::json!({"line": number, "status": "invalid", "order_id": null,
                "error": {"code": "bad_json", "message": "not JSON"}});
            out.extend_from_slice(invalid.to_string().as_bytes());
            out.extend_from_slice(b"\n");
            return;
        }
    };
    if matches!(fault, Fault::SkipOne) && number == 50 {
        return;
    }
    let duplicate = matches!(fault, Fault::FalseDuplicate) && number.is_multiple_of(40);
    let status = match fault {
        Fault::MixedStatuses => ["routed", "backordered", "held", "rejected"][number as usize % 4],
        _ => "routed",
    };
    if let Some(id) = order["id"].as_str() {
        book.orders().entry(id.to_owned()).or_insert(Booked {
            status,
            answered: Instant::now(),
            shipped: None,
            ship_requests: 0,
        });
    }
    let decision = serde_json::json!({"order_id": order["id"], "status": status, "zone": "z",
        "seq": number, "shipments": [], "backordered": [], "reason": null,
        "duplicate": duplicate});
    out.extend_from_slice(decision.to_string().as_bytes());
    out.extend_from_slice(b"\n");
}

async fn orders(
    request: actix_web::HttpRequest,
    mut payload: web::Payload,
    fault: web::Data<Fault>,
    streams: web::Data<AtomicUsize>,
    book: web::Data<Book>,
) -> HttpResponse {
    let fault = **fault;
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type == "application/json" {
        // One order per request: a decision, or the error an invalid order gets.
        let mut body = BytesMut::new();
        while let Some(Ok(chunk)) = payload.next().await {
            body.extend_from_slice(&chunk);
        }
        let mut out = BytesMut::new();
        answer(&body, 1, fault, &book, &mut out);
        let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
        if answer["status"] == "invalid" {
            return HttpResponse::BadRequest().json(serde_json::json!({"error": answer["error"]}));
        }
        return HttpResponse::Ok().json(answer);
    }
    let stream = streams.fetch_add(1, Ordering::SeqCst);
    if matches!(fault, Fault::RefuseFirstStream) && stream == 0 {
        // Once lines were sent on it, which the refusal must count as throttled (or once
        // its body ended, should fewer ever come).
        let mut lines = 0;
        while lines < REFUSED_AFTER_LINES
            && let Some(Ok(chunk)) = payload.next().await
        {
            lines += chunk.iter().filter(|byte| **byte == b'\n').count();
        }
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"error": {"code": "overloaded", "message": "busy"}}));
    }
    if matches!(fault, Fault::Silent) {
        // Read everything, answer nothing, never end.
        while let Some(Ok(_)) = payload.next().await {}
        std::future::pending::<()>().await;
    }
    // With `Paced`, when the stream's next line may be answered.
    let state = (
        payload,
        LineSplitter::new(MAX_LINE_BYTES),
        0u64,
        Instant::now(),
    );
    let answers = futures_util::stream::unfold(
        state,
        move |(mut payload, mut lines, mut number, mut free_at)| {
            let book = book.clone();
            async move {
                let chunk = payload.next().await?.ok()?;
                let mut out = BytesMut::new();
                let mut answered = 0;
                for line in lines.feed(&chunk) {
                    number += 1;
                    answered += 1;
                    let line = match line {
                        Line::Complete(line) => line,
                        // Answered as cut-off JSON would be: the tool sends no such line.
                        Line::TooLong { .. } => b"",
                    };
                    answer(line, number, fault, &book, &mut out);
                }
                if let Fault::Paced(per_s) = fault {
                    // Sleeping only when more than 2 ms ahead: a timer's granularity
                    // would otherwise make a stream of small chunks slower than `per_s`.
                    let now = Instant::now();
                    free_at = free_at.max(now)
                        + Duration::from_secs_f64(f64::from(answered) / f64::from(per_s));
                    if free_at > now + Duration::from_millis(2) {
                        actix_rt::time::sleep_until(free_at.into()).await;
                    }
                }
                Some((
                    Ok::<Bytes, actix_web::Error>(out.freeze()),
                    (payload, lines, number, free_at),
                ))
            }
        },
    );
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// `POST /v1/orders/{id}/shipped`, as the router answers it.
async fn shipped(
    path: web::Path<String>,
    fault: web::Data<Fault>,
    book: web::Data<Book>,
) -> HttpResponse {
    let refusal = |code: &str| serde_json::json!({"error": {"code": code, "message": code}});
    let id = path.into_inner();
    let mut orders = book.orders();
    let Some(order) = orders
        .get_mut(&id)
        .filter(|_| !matches!(**fault, Fault::ShipUnknown))
    else {
        return HttpResponse::NotFound().json(refusal("unknown_order"));
    };
    order.ship_requests += 1;
    if matches!(**fault, Fault::ShipRefusedOnce) && order.ship_requests == 1 {
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .json(refusal("overloaded"));
    }
    match (order.status, order.shipped) {
        ("held", _) => HttpResponse::Conflict().json(refusal("awaiting_review")),
        ("rejected", _) | (_, Some(_)) => HttpResponse::Conflict().json(refusal("not_live")),
        _ => {
            order.shipped = Some(Instant::now());
            HttpResponse::Ok().json(serde_json::json!({"order_id": id, "state": "shipped"}))
        }
    }
}

/// Starts the fake on a free port in a thread of its own; its address.
fn fake(fault: Fault) -> std::net::SocketAddr {
    fake_with_book(fault).0
}

/// Starts the fake; its address and its book of orders.
fn fake_with_book(fault: Fault) -> (std::net::SocketAddr, web::Data<Book>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let streams = web::Data::new(AtomicUsize::new(0));
    let book = web::Data::new(Book::default());
    let served = book.clone();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(fault))
                    .app_data(streams.clone())
                    .app_data(served.clone())
                    .route("/v1/network", web::get().to(network))
                    .route("/v1/catalog", web::get().to(catalog))
                    .route("/v1/orders", web::post().to(orders))
                    .route("/v1/orders/{id}/shipped", web::post().to(shipped))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            sender.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        })
    });
    (receiver.recv().unwrap(), book)
}

const SCENARIO: &str = r#"
name = "fault"
[load]
transport = "streams"
connections = 2
drain_timeout_s = 5
[[phases]]
name = "flat"
duration_s = 1
rate = 400
[mix]
retry_share = 0.0
malformed_share = 0.0
"#;

async fn play(fault: Fault, scenario: &str) -> loadtest::run::RunOutcome {
    play_on(fake(fault), scenario).await
}

async fn play_on(address: std::net::SocketAddr, scenario: &str) -> loadtest::run::RunOutcome {
    let outcome = run(RunOptions {
        target: Target::parse(&format!("http://{address}"), None).unwrap(),
        scenario: Scenario::parse(scenario, "test").unwrap(),
        rate_scale: 1.0,
        check_stock: false,
        run_id: None,
        tick: Duration::from_micros(500),
        progress: false,
        report: None,
        chart: None,
    })
    .await
    .unwrap();
    // Whatever the fault, every order offered ends exactly once.
    let totals = &outcome.report.json["totals"];
    let ended: u64 = [
        "decided",
        "duplicates",
        "invalid",
        "mismatched",
        "unexpected_duplicates",
        "throttled",
        "lost",
    ]
    .iter()
    .map(|key| totals[*key].as_u64().unwrap())
    .sum();
    assert_eq!(totals["offered"].as_u64().unwrap(), ended, "{totals}");
    assert!(
        !outcome
            .report
            .failures
            .iter()
            .any(|failure| failure.contains("accounted for")),
        "{:?}",
        outcome.report.failures
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faithful_server_passes_with_every_order_counted() {
    let outcome = play(Fault::None, SCENARIO).await;
    let totals = &outcome.report.json["totals"];
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    assert_eq!(totals["offered"], 400);
    assert_eq!(totals["sent"], 400);
    assert_eq!(totals["decided"], 400);
    assert_eq!(totals["lost"], 0);
    assert_eq!(outcome.report.json["statuses"]["routed"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_answer_fails_the_run_as_lost_and_mismatched() {
    let outcome = play(Fault::SkipOne, SCENARIO).await;
    let totals = &outcome.report.json["totals"];
    assert!(!outcome.passed());
    // One answer missing per stream: the last line of each stream is never answered, and
    // every answer after the gap belongs to the line before it.
    assert_eq!(totals["lost"], 2, "{totals}");
    assert!(totals["mismatched"].as_u64().unwrap() > 100, "{totals}");
    let failures = outcome.report.failures.join("; ");
    assert!(failures.contains("lost"), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_order_answered_as_a_duplicate_fails_the_run() {
    let outcome = play(Fault::FalseDuplicate, SCENARIO).await;
    let totals = &outcome.report.json["totals"];
    assert!(!outcome.passed());
    // 200 lines per stream: lines 40, 80, ..., 200 of each.
    assert_eq!(totals["unexpected_duplicates"], 10, "{totals}");
    assert_eq!(totals["lost"], 0, "{totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_line_must_be_answered_invalid_with_its_code() {
    // The fake answers only cut-off JSON as invalid: the other malformed kinds (unknown SKU,
    // bad quantity, ...) come back routed, which the checks must refuse.
    let scenario = SCENARIO.replace("malformed_share = 0.0", "malformed_share = 0.2");
    let outcome = play(Fault::None, &scenario).await;
    let totals = &outcome.report.json["totals"];
    assert!(!outcome.passed());
    let invalid = totals["invalid"].as_u64().unwrap();
    let mismatched = totals["mismatched"].as_u64().unwrap();
    // One kind in five is cut-off JSON, answered as it must be.
    assert!(invalid > 5 && mismatched > 4 * invalid / 2, "{totals}");
    assert_eq!(totals["answered"], 400, "{totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_throttled_and_opened_again() {
    let outcome = play(Fault::RefuseFirstStream, SCENARIO).await;
    let totals = &outcome.report.json["totals"];
    // A 429 is pushback, not a failure: what the refused stream carried is throttled, the
    // rest went through the stream opened after Retry-After.
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    // Every line the refused stream carried, and perhaps a few more sent before the 429
    // was read.
    let refused = totals["throttled_429"].as_u64().unwrap();
    assert!(refused >= REFUSED_AFTER_LINES as u64, "{totals}");
    assert_eq!(
        totals["decided"].as_u64().unwrap() + refused,
        400,
        "{totals}"
    );
    assert_eq!(totals["lost"], 0, "{totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_the_run_with_everything_sent_lost() {
    // drain_timeout_s = 5: then the run is abandoned; it must end, not hang.
    let outcome = play(Fault::Silent, SCENARIO).await;
    let totals = &outcome.report.json["totals"];
    assert!(!outcome.passed());
    assert_eq!(totals["decided"], 0, "{totals}");
    assert_eq!(totals["lost"], totals["sent"], "{totals}");
    assert!(totals["lost"].as_u64().unwrap() > 0, "{totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_orders_per_request_are_checked_as_streams_are() {
    let scenario = SCENARIO
        .replace("transport = \"streams\"", "transport = \"requests\"")
        .replace("connections = 2", "connections = 8")
        .replace("malformed_share = 0.0", "malformed_share = 0.1");
    let outcome = play(Fault::None, &scenario).await;
    let totals = &outcome.report.json["totals"];
    // The fake answers only cut-off JSON as invalid (400); the other malformed kinds come
    // back routed, which the checks refuse, as for streams.
    assert!(!outcome.passed());
    assert_eq!(totals["sent"], 400, "{totals}");
    assert!(totals["invalid"].as_u64().unwrap() > 0, "{totals}");
    assert!(totals["decided"].as_u64().unwrap() > 300, "{totals}");
    assert_eq!(totals["lost"], 0, "{totals}");
}

/// [`SCENARIO`] with shipping: `table` is the body of its `[ship]` table.
fn shipping(table: &str) -> String {
    format!("{SCENARIO}\n[ship]\n{table}\n")
}

/// A report's `shipping.<key>` as a number.
fn shipping_count(outcome: &loadtest::run::RunOutcome, key: &str) -> u64 {
    let shipping = &outcome.report.json["shipping"];
    shipping[key]
        .as_u64()
        .unwrap_or_else(|| panic!("shipping.{key} in {shipping}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ship_table_nothing_is_shipped_and_the_report_has_no_shipping() {
    let (address, book) = fake_with_book(Fault::None);
    let outcome = play_on(address, SCENARIO).await;
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    assert!(outcome.report.json.get("shipping").is_none());
    let orders = book.orders();
    assert_eq!(orders.len(), 400);
    assert!(orders.values().all(|order| order.ship_requests == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placed_orders_are_shipped_once_after_their_delay_and_only_those() {
    // Statuses in turn: 100 routed, 100 backordered, 100 held, 100 rejected. Half of the
    // routed and backordered ones are shipped, 0.5 to 1.5 s after their answer.
    let (address, book) = fake_with_book(Fault::MixedStatuses);
    let table = "share = 0.5\ndelay_s = [0.5, 1.5]\nconnections = 3";
    let outcome = play_on(address, &shipping(table)).await;
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    let shipping = &outcome.report.json["shipping"];
    assert_eq!(shipping_count(&outcome, "eligible"), 200, "{shipping}");
    let chosen = shipping_count(&outcome, "chosen");
    assert!((60..=140).contains(&chosen), "{shipping}");
    assert_eq!(shipping_count(&outcome, "shipped"), chosen, "{shipping}");
    for key in ["failed", "not_shipped", "queue_full", "throttled_429"] {
        assert_eq!(shipping_count(&outcome, key), 0, "{key}: {shipping}");
    }
    // The server's side: as many orders shipped as the report says, each once, each a
    // routed or backordered one, none before its delay.
    let orders = book.orders();
    let shipped: Vec<&Booked> = orders
        .values()
        .filter(|order| order.shipped.is_some())
        .collect();
    assert_eq!(shipped.len() as u64, chosen);
    assert_eq!(
        orders
            .values()
            .map(|order| u64::from(order.ship_requests))
            .sum::<u64>(),
        chosen
    );
    for order in shipped {
        assert!(["routed", "backordered"].contains(&order.status));
        let after = order.shipped.unwrap() - order.answered;
        assert!(after >= Duration::from_millis(500), "{after:?}");
    }
    let statuses: HashMap<&str, usize> = orders
        .values()
        .filter(|order| order.shipped.is_some())
        .fold(HashMap::new(), |mut counts, order| {
            *counts.entry(order.status).or_default() += 1;
            counts
        });
    assert!(
        statuses["routed"] > 20 && statuses["backordered"] > 20,
        "{statuses:?}"
    );
    assert!(
        shipping["late_ms"]["p99"].as_f64().unwrap() < 1_000.0,
        "{shipping}"
    );
    assert!(
        shipping["latency_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{shipping}"
    );
    assert!(
        outcome.report.table.contains("shipped "),
        "{}",
        outcome.report.table
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requests_transport_ships_too() {
    let (address, book) = fake_with_book(Fault::None);
    let scenario = shipping("share = 1\ndelay_s = 0.2\nstatuses = [\"routed\"]")
        .replace("transport = \"streams\"", "transport = \"requests\"")
        .replace("connections = 2", "connections = 8");
    let outcome = play_on(address, &scenario).await;
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    assert_eq!(shipping_count(&outcome, "shipped"), 400);
    let orders = book.orders();
    assert_eq!(
        orders
            .values()
            .filter(|order| order.shipped.is_some())
            .count(),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_a_shipment_is_retried_after_its_retry_after() {
    let (address, book) = fake_with_book(Fault::ShipRefusedOnce);
    let outcome = play_on(address, &shipping("share = 1\ndelay_s = 0.1")).await;
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    let shipping = &outcome.report.json["shipping"];
    assert_eq!(shipping_count(&outcome, "shipped"), 400, "{shipping}");
    assert_eq!(shipping_count(&outcome, "throttled_429"), 400, "{shipping}");
    assert_eq!(shipping_count(&outcome, "failed"), 0, "{shipping}");
    // Each waited its Retry-After (1 s), which counts as lateness.
    assert!(
        shipping["late_ms"]["p50"].as_f64().unwrap() >= 1_000.0,
        "{shipping}"
    );
    let orders = book.orders();
    assert!(
        orders
            .values()
            .all(|order| order.ship_requests == 2 && order.shipped.is_some())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_shipments_fail_the_run_counted_by_status() {
    let outcome = play(Fault::ShipUnknown, &shipping("share = 1\ndelay_s = 0")).await;
    let shipping = &outcome.report.json["shipping"];
    assert!(!outcome.passed());
    assert_eq!(shipping_count(&outcome, "shipped"), 0, "{shipping}");
    assert_eq!(shipping["failed_by_status"]["404"], 400, "{shipping}");
    let failures = outcome.report.failures.join("; ");
    assert!(
        failures.contains("400 shipments failed (404: 400)"),
        "{failures}"
    );
    assert!(
        shipping["problems"][0].as_str().unwrap().contains("404"),
        "{shipping}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipments_not_due_by_the_drain_deadline_are_reported_not_shipped() {
    let (address, book) = fake_with_book(Fault::None);
    let scenario =
        shipping("share = 1\ndelay_s = 30").replace("drain_timeout_s = 5", "drain_timeout_s = 1");
    let started = Instant::now();
    let outcome = play_on(address, &scenario).await;
    // Not waited for beyond the drain deadline, and not a failure: reported.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(outcome.passed(), "{:?}", outcome.report.failures);
    let shipping = &outcome.report.json["shipping"];
    assert_eq!(shipping_count(&outcome, "shipped"), 0, "{shipping}");
    assert_eq!(shipping_count(&outcome, "not_shipped"), 400, "{shipping}");
    assert_eq!(shipping_count(&outcome, "not_shipped_due"), 0, "{shipping}");
    assert!(book.orders().values().all(|order| order.ship_requests == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_finds_the_rate_a_paced_server_holds_and_plays_half_of_it() {
    // Two streams of at most 1,000 lines a second each: the server holds 2,000 orders/s.
    let address = fake(Fault::Paced(1_000));
    let scenario = Scenario::parse(
        r#"
name = "paced"
[load]
transport = "streams"
connections = 2
max_queue_ms = 400
drain_timeout_s = 10
[[phases]]
name = "unused"
duration_s = 1
rate = 1
"#,
        "test",
    )
    .unwrap();
    let report = capacity(CapacityOptions {
        target: Target::parse(&format!("http://{address}"), None).unwrap(),
        scenario,
        start_rate: 600.0,
        growth: 2.0,
        refine: 2,
        max_rate: 100_000.0,
        step_s: 1.5,
        max_p99_ms: 150.0,
        half_s: 1.0,
        pause: Duration::from_millis(300),
        tick: Duration::from_micros(500),
        run_id: "CAP".to_owned(),
    })
    .await
    .unwrap();
    let rates: Vec<f64> = report.steps.iter().map(|step| step.rate).collect();
    assert_eq!(
        &rates[..3],
        &[600.0, 1_200.0, 2_400.0],
        "{}",
        report.table()
    );
    assert!(
        report.steps[..2].iter().all(|step| step.held),
        "{}",
        report.table()
    );
    // Over the capacity, orders queue: the step is not held, for its latency or its
    // shedding, and nothing is lost.
    let over = &report.steps[2];
    assert!(!over.held, "{}", report.table());
    assert!(over.failures.is_empty(), "{:?}", over.failures);
    assert!(
        over.why_not
            .iter()
            .all(|why| why.starts_with("p99") || why.ends_with("throttled")),
        "{:?}",
        over.why_not
    );
    let highest = report.highest_held_per_s.expect("a rate held");
    assert!(
        (1_200.0..=2_000.0).contains(&highest),
        "held {highest}: {}",
        report.table()
    );
    assert_eq!(
        highest,
        report
            .steps
            .iter()
            .filter(|step| step.held)
            .map(|step| step.rate)
            .fold(0.0, f64::max)
    );
    let half = report.half.as_ref().expect("the half run");
    assert_eq!(half.rate, (highest / 2.0).round());
    assert!(
        half.failures.is_empty() && half.throttled == 0,
        "{}",
        report.table()
    );
    assert!(half.latency.p99_ms.unwrap() < 150.0, "{}", report.table());
    assert!(report.failures().is_empty(), "{:?}", report.failures());
}
