//! `/v1/orders`: the NDJSON order stream and single JSON orders in; an order's state,
//! cancel and shipped.

use super::body::{Backlog, BodyItem, Cut, Gather, IdleTimeout, StreamEnd};
use super::{content_type, draining, error, read_body, shown, too_busy, unavailable};
use crate::config::Network;
use crate::ingest::{Line, LineSplitter, Parsed, parse_line, parse_order};
use crate::limits::STREAM_PIPELINE;
use crate::model::{Invalid, InvalidCode};
use crate::serve::App;
use crate::serve::edge::BreakCheck;
use crate::serve::metrics::{self as router_metrics, Stage, names};
use crate::serve::pipeline::is_priority;
use crate::serve::zone_actor::{OrderAction, OrderRequest};
use crate::zone::ZoneError;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `POST /v1/orders`: NDJSON streamed both ways, or one JSON order.
pub(super) async fn post_orders(
    request: HttpRequest,
    payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    if app.is_draining() {
        return draining();
    }
    let content_type = content_type(&request);
    // Media types are case-insensitive (RFC 9110 section 8.3.1).
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            stream_orders(&request, payload, app)
        }
        "application/json" => single_order(&request, payload, app).await,
        _ => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type must be application/x-ndjson (a stream of orders) or application/json (one order), got {content_type:?}"
            ),
        ),
    }
}

/// One stream: each chunk of the body is split and parsed here (on the HTTP worker), takes
/// its permits, goes to the zone actors (one message per home zone), and its answers go
/// back in order. At most [`STREAM_PIPELINE`] chunks are in flight: beyond that the body is
/// not read, so a client that stops reading its answers stops its own sending. A body that
/// breaks or goes silent ends the stream early, with a record that says so ([`body`]).
fn stream_orders(
    request: &HttpRequest,
    payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    let Some(slot) = app.admission.open_stream() else {
        return too_busy("too many order streams are open");
    };
    let idle = Duration::from_millis(app.network().limits.body_idle_timeout_ms);
    // The body in batches (what came at once; while the stream is backed up, up to half a
    // megabyte), then its end (the last line may lack a newline).
    let backlog = Backlog::default();
    let items = Gather::new(IdleTimeout::new(payload, idle), backlog.clone()).chain(
        futures_util::stream::once(std::future::ready(BodyItem::End)),
    );
    let parser = StreamParser::new(app.clone(), BreakCheck::of(request));
    let batches = items
        .scan(parser, |parser, item| {
            std::future::ready(parser.next_batch(item))
        })
        .flat_map(futures_util::stream::iter);
    let answers = answer_in_order(batches, app, backlog).map(move |bytes| {
        // The stream's place is held for as long as answers flow.
        let _slot = &slot;
        Ok::<_, std::convert::Infallible>(bytes)
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// A batch parsed from a stream: its lines, the snapshot they were parsed (and will be
/// decided and answered) under, and when its parsing began.
type ParsedBatch = (Vec<Parsed>, Arc<Network>, Instant);

/// What one item of the body gives, in order: a batch, a cut, or both.
type Parts = std::iter::Chain<
    std::option::IntoIter<Result<ParsedBatch, StreamEnd>>,
    std::option::IntoIter<Result<ParsedBatch, StreamEnd>>,
>;

/// Cuts an order stream's body into lines and parses them, a group of chunks at a time.
struct StreamParser {
    app: web::Data<App>,
    splitter: LineSplitter,
    /// A break of the body seen after some chunks of its group: answered after them.
    broken: Option<String>,
    /// Whether the stream has ended.
    ended: bool,
    /// Where the edge notes a break of the body's chunked framing (it then ends the body
    /// cleanly at the break: that end is not the body's).
    body_break: BreakCheck,
}

impl StreamParser {
    fn new(app: web::Data<App>, body_break: BreakCheck) -> Self {
        let splitter = LineSplitter::new(app.network().limits.max_line_bytes);
        StreamParser {
            app,
            splitter,
            broken: None,
            ended: false,
            body_break,
        }
    }

    /// What the next item of the body gives: a batch, the end of a stream cut short, or a
    /// batch and then the cut that came within its chunks; `None` after the end.
    fn next_batch(&mut self, item: BodyItem) -> Option<Parts> {
        if self.ended {
            return None;
        }
        let (batch, end) = match item {
            BodyItem::Silent(silence) => {
                let problem = format!(
                    "no byte of the request body for {} ms (limits.body_idle_timeout_ms)",
                    silence.as_millis()
                );
                (None, Some(self.cut(Cut::BodyTimeout, &problem)))
            }
            BodyItem::End => match self.body_break.get() {
                Some(problem) => {
                    let problem = format!("the chunked framing broke: {problem}");
                    (None, Some(self.cut(Cut::BadBody, &problem)))
                }
                None => {
                    self.ended = true;
                    (Some(self.parse(None)), None)
                }
            },
            BodyItem::Chunks(chunks) => {
                let batch = self.parse(Some(chunks));
                let end = self
                    .broken
                    .take()
                    .map(|problem| self.cut(Cut::BadBody, &problem));
                (Some(batch), end)
            }
        };
        Some(batch.map(Ok).into_iter().chain(end.map(Err)))
    }

    /// Ends the stream early: what the client is told, logged and counted. Every line
    /// complete before was parsed and goes ahead of it; a line begun and not ended is not
    /// an order (it may be cut anywhere), and the message says so.
    fn cut(&mut self, cut: Cut, problem: &str) -> StreamEnd {
        self.ended = true;
        let line = self.splitter.lines() + 1;
        let unfinished = self.splitter.unfinished_bytes();
        let mut message = format!("the order stream ended at line {line}: {problem}");
        if unfinished > 0 {
            message.push_str(&format!(
                "; the {unfinished} bytes of line {line} that came were not read as an order"
            ));
        }
        message.push_str("; every line before it was answered");
        tracing::info!(code = cut.code(), "{message}");
        metrics::counter!(names::STREAMS_CUT, "reason" => cut.code()).increment(1);
        StreamEnd { cut, line, message }
    }

    /// Parses the lines completed by a group of chunks (`None`: the end of the body, its
    /// last line), up to a break of the body, which is kept to answer next.
    fn parse(&mut self, chunks: Option<Vec<Result<Bytes, PayloadError>>>) -> ParsedBatch {
        let parse_started = Instant::now();
        // Each batch is parsed, decided and answered under one config snapshot.
        let snapshot = self.app.network();
        self.splitter
            .set_max_line_bytes(snapshot.limits.max_line_bytes);
        let catalog = &self.app.catalog;
        // One slot per line the group completes (a line per newline, and the end's last):
        // counted first (a vectorised scan), so the batch of ~100-byte entries is never
        // grown by doubling, which copied it over and over.
        let lines = chunks.as_ref().map_or(1, |chunks| {
            chunks
                .iter()
                .flatten()
                .map(|chunk| memchr::memchr_iter(b'\n', chunk).count())
                .sum()
        });
        let mut batch = Vec::with_capacity(lines);
        let mut push = |line: Line<'_>| {
            batch.push(parse_line(&snapshot, catalog, line));
        };
        match chunks {
            Some(chunks) => {
                for chunk in chunks {
                    match chunk {
                        Ok(chunk) => self.splitter.feed(&chunk, &mut push),
                        Err(problem) => {
                            self.broken = Some(problem.to_string());
                            break;
                        }
                    }
                }
            }
            None => self.splitter.finish(&mut push),
        }
        if !batch.is_empty() {
            router_metrics::stage_latency(Stage::Parse)
                .record(parse_started.elapsed().as_secs_f64());
            router_metrics::stream_batch_lines().record(batch.len() as f64);
        }
        (batch, snapshot, parse_started)
    }
}

/// The answers of a stream's batches, in input order, and the record of a cut after them.
/// Admission and enqueueing run one batch at a time (`then`), so a stream's batches are
/// decided in input order; only the waits for their answers overlap (`buffered`). `backlog`
/// counts the orders between the two.
fn answer_in_order(
    batches: impl Stream<Item = Result<ParsedBatch, StreamEnd>>,
    app: web::Data<App>,
    backlog: Backlog,
) -> impl Stream<Item = Bytes> {
    let answered = backlog.clone();
    batches
        .filter(|item| {
            let keep = item
                .as_ref()
                .map_or(true, |(batch, _, _)| !batch.is_empty());
            std::future::ready(keep)
        })
        .then(move |item| {
            let app = app.clone();
            let backlog = backlog.clone();
            async move {
                match item {
                    Ok((batch, snapshot, read)) => {
                        let lines = batch.len();
                        backlog.add(lines);
                        Ok((app.enqueue(batch, snapshot).await, read, lines))
                    }
                    Err(end) => Err(end),
                }
            }
        })
        .map(move |item| {
            let answered = answered.clone();
            async move {
                let (pending, read, lines) = match item {
                    Ok(pending) => pending,
                    Err(end) => return end.record(),
                };
                let answer = pending.answer().await;
                answered.remove(lines);
                // From the chunk's arrival to its answers handed to the response.
                router_metrics::decision_latency().record(read.elapsed().as_secs_f64());
                answer.bytes
            }
        })
        .buffered(STREAM_PIPELINE)
}

/// One JSON order in, one JSON decision out.
async fn single_order(
    request: &HttpRequest,
    mut payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    let network = app.network();
    let limit = network.limits.max_line_bytes;
    let what = "an order (limits.max_line_bytes)";
    let mut body = match read_body(request, &mut payload, limit, "line_too_long", what).await {
        Ok(body) => body,
        Err(response) => {
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                count_invalid(InvalidCode::LineTooLong);
            }
            return response;
        }
    };
    while body.last().is_some_and(u8::is_ascii_whitespace) {
        body.pop();
    }
    let order = match parse_order(&body, &network, &app.catalog) {
        Ok(order) => order,
        Err(invalid) => {
            count_invalid(invalid.code);
            return invalid_response(&invalid);
        }
    };
    let priority = is_priority(&network, &app.catalog, &order);
    let Some(permit) = app.admission.try_admit(1, priority) else {
        return too_busy("the router is at its limit of orders in flight");
    };
    let outcome = app
        .send_admitted(vec![(1, Ok(order))], network, permit)
        .answer()
        .await;
    if outcome.tally.lines == 0 {
        return unavailable();
    }
    let mut bytes = outcome.bytes;
    if outcome.tally.invalid > 0 {
        // The only refusal after parsing: the id was seen with other content.
        let record: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let message = record["error"]["message"].as_str().unwrap_or("id conflict");
        return error(StatusCode::UNPROCESSABLE_ENTITY, "id_conflict", message);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.truncate(bytes.len() - 1);
    }
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(bytes)
}

/// Counts a single order refused before it was decided, as a stream's invalid line is.
fn count_invalid(code: InvalidCode) {
    metrics::counter!(names::LINES_INVALID, "code" => code.name()).increment(1);
}

/// The error response for a single order that does not parse: its `invalid` code, with
/// the status that code means.
fn invalid_response(invalid: &Invalid) -> HttpResponse {
    let status = match invalid.code {
        InvalidCode::LineTooLong => StatusCode::PAYLOAD_TOO_LARGE,
        InvalidCode::IdConflict => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, invalid.code.name(), invalid.message.clone())
}

/// Asks the zone actor that holds order `id` to read, cancel or ship it: its state as
/// JSON, `404` for an unknown order, `409` for one still being decided or refused.
async fn order_action(app: &App, id: String, action: OrderAction) -> HttpResponse {
    let Some(claim) = app.zones.claims.get(&id) else {
        let problem = ZoneError::UnknownOrder(shown(&id).into_owned());
        return error(StatusCode::NOT_FOUND, "unknown_order", problem.to_string());
    };
    if !claim.is_decided() {
        return error(
            StatusCode::CONFLICT,
            "undecided",
            format!("order '{id}' is being decided; ask again in a moment"),
        );
    }
    let request = OrderRequest {
        slot: claim.slot,
        action,
        network: app.network(),
    };
    match app.zones.zone(claim.zone).send(request).await {
        Ok(Ok(bytes)) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(bytes),
        Ok(Err(problem)) => {
            let (status, code) = refusal(&problem);
            error(status, code, problem.to_string())
        }
        Err(_) => unavailable(),
    }
}

/// The status and error code of a zone's refusal of an action on a known order.
pub(super) fn refusal(problem: &ZoneError) -> (StatusCode, &'static str) {
    match problem {
        ZoneError::UnknownOrder(_) => (StatusCode::NOT_FOUND, "unknown_order"),
        ZoneError::NotLive { .. } => (StatusCode::CONFLICT, "not_live"),
        ZoneError::NotInReview { .. } => (StatusCode::CONFLICT, "not_in_review"),
        ZoneError::AwaitingReview { .. } => (StatusCode::CONFLICT, "awaiting_review"),
        // A closed record on disk that cannot be read: not the order's fault; try again.
        ZoneError::Unreadable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => (StatusCode::CONFLICT, "refused"),
    }
}

/// `GET /v1/orders/{id}`: the order's decision and state.
pub(super) async fn get_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Read).await
}

/// `POST /v1/orders/{id}/cancel`: releases the units and capacity a live order holds.
pub(super) async fn cancel_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Cancel).await
}

/// `POST /v1/orders/{id}/shipped`: a live order's reserved units leave the warehouse.
pub(super) async fn ship_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Ship).await
}

/// `POST /v1/orders/{id}/approve`: a held order's approval, by the approver the
/// `X-Approver` header names (`ops` without one); enough distinct approvers release it.
/// Approving again as the same approver changes nothing.
pub(super) async fn approve_order(
    request: HttpRequest,
    path: web::Path<String>,
    app: web::Data<App>,
) -> HttpResponse {
    let approver = match approver(&request) {
        Ok(approver) => approver,
        Err(response) => return response,
    };
    order_action(&app, path.into_inner(), OrderAction::Approve(approver)).await
}

/// `POST /v1/orders/{id}/reject`: a held order rejected in review; its reservations are
/// released.
pub(super) async fn reject_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Reject).await
}

/// The approver an approval names: the `X-Approver` header (1-64 printable characters), or
/// `ops`.
fn approver(request: &HttpRequest) -> Result<compact_str::CompactString, HttpResponse> {
    let Some(value) = request.headers().get("x-approver") else {
        return Ok("ops".into());
    };
    match value.to_str().map(str::trim) {
        Ok(name) if (1..=64).contains(&name.chars().count()) => Ok(name.into()),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_approver",
            "X-Approver must be 1-64 printable ASCII characters",
        )),
    }
}
