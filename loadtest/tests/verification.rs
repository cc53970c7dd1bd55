//! The load tester's checks catch a server that breaks the contract: a fake router (actix-web,
//! in this process) answers with a fault, and the run must fail, counting it.

use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use loadtest::ndjson::{Line, LineSplitter, MAX_LINE_BYTES};
use loadtest::run::{RunOptions, run};
use loadtest::scenario::Scenario;
use loadtest::target::Target;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

fn answer(line: &[u8], number: u64, fault: Fault, out: &mut BytesMut) {
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
    let decision = serde_json::json!({"order_id": order["id"], "status": "routed", "zone": "z",
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
        answer(&body, 1, fault, &mut out);
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
    let state = (payload, LineSplitter::new(MAX_LINE_BYTES), 0u64);
    let answers = futures_util::stream::unfold(
        state,
        move |(mut payload, mut lines, mut number)| async move {
            let chunk = payload.next().await?.ok()?;
            let mut out = BytesMut::new();
            for line in lines.feed(&chunk) {
                number += 1;
                let line = match line {
                    Line::Complete(line) => line,
                    // Answered as cut-off JSON would be: the tool sends no such line.
                    Line::TooLong { .. } => b"",
                };
                answer(line, number, fault, &mut out);
            }
            Some((
                Ok::<Bytes, actix_web::Error>(out.freeze()),
                (payload, lines, number),
            ))
        },
    );
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// Starts the fake on a free port in a thread of its own; its address.
fn fake(fault: Fault) -> std::net::SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    let streams = web::Data::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(fault))
                    .app_data(streams.clone())
                    .route("/v1/network", web::get().to(network))
                    .route("/v1/catalog", web::get().to(catalog))
                    .route("/v1/orders", web::post().to(orders))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            sender.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        })
    });
    receiver.recv().unwrap()
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
    let address = fake(fault);
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
