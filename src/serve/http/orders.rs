//! `/v1/orders`: the NDJSON order stream and single JSON orders in; an order's state,
//! cancel and shipped.

use super::{content_type, draining, error, read_body, too_busy, unavailable};
use crate::config::Network;
use crate::ingest::{Line, LineSplitter, Parsed, parse_line, parse_order};
use crate::limits::{READY_CHUNKS, STREAM_PIPELINE};
use crate::model::{Invalid, InvalidCode};
use crate::serve::App;
use crate::serve::metrics::names;
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
use std::time::Instant;

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
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            stream_orders(payload, app)
        }
        "application/json" => single_order(payload, app).await,
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
/// not read, so a client that stops reading its answers stops its own sending.
fn stream_orders(payload: web::Payload, app: web::Data<App>) -> HttpResponse {
    let Some(slot) = app.admission.open_stream() else {
        return too_busy("too many order streams are open");
    };
    // Every group of body chunks that are ready at once (a backed-up stream gives large
    // groups, a trickle single chunks), then `None` for the end of the body (the last line
    // may lack a newline). A group is one batch: under load, fewer and fuller messages.
    let items = payload
        .ready_chunks(READY_CHUNKS)
        .map(Some)
        .chain(futures_util::stream::once(std::future::ready(None)));
    let parser = StreamParser::new(app.clone());
    let batches = items.scan(parser, |parser, item| {
        std::future::ready(parser.next_batch(item))
    });
    let answers = answer_in_order(batches, app).map(move |bytes| {
        // The stream's place is held for as long as answers flow.
        let _slot = &slot;
        bytes.map_err(actix_web::error::ErrorBadRequest)
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// What the body of an order stream gives: a group of chunks ready at once, or `None` at
/// its end.
type BodyItem = Option<Vec<Result<Bytes, PayloadError>>>;

/// A batch parsed from a stream: its lines, the snapshot they were parsed (and will be
/// decided and answered) under, and when its parsing began.
type ParsedBatch = (Vec<Parsed>, Arc<Network>, Instant);

/// Cuts an order stream's body into lines and parses them, a group of chunks at a time.
struct StreamParser {
    app: web::Data<App>,
    splitter: LineSplitter,
    /// A break of the body seen after some chunks of its group: answered next.
    broken: Option<String>,
    /// Whether the stream has ended (after a break).
    ended: bool,
}

impl StreamParser {
    fn new(app: web::Data<App>) -> Self {
        let splitter = LineSplitter::new(app.network().limits.max_line_bytes);
        StreamParser {
            app,
            splitter,
            broken: None,
            ended: false,
        }
    }

    /// The next batch, or the break of the body that ends the stream; `None` after it.
    fn next_batch(&mut self, item: BodyItem) -> Option<Result<ParsedBatch, String>> {
        if self.ended {
            return None;
        }
        if let Some(problem) = self.broken.take() {
            self.ended = true;
            // The client went away or broke the framing: nothing more can be read. What
            // was read is decided and answered; then the response is cut off (no final
            // chunk), so a client still reading sees that it is incomplete.
            tracing::debug!("order stream broken by the client: {problem}");
            return Some(Err(format!("the request body broke off: {problem}")));
        }
        Some(Ok(self.parse(item)))
    }

    /// Parses the lines completed by a group of chunks (at the end of the body, the last
    /// line), up to a break of the body, which is kept to answer next.
    fn parse(&mut self, item: BodyItem) -> ParsedBatch {
        let parse_started = Instant::now();
        // Each batch is parsed, decided and answered under one config snapshot.
        let snapshot = self.app.network();
        self.splitter
            .set_max_line_bytes(snapshot.limits.max_line_bytes);
        let catalog = &self.app.catalog;
        let mut batch = Vec::new();
        let mut push = |line: Line<'_>| {
            batch.push(parse_line(&snapshot, catalog, line));
        };
        match item {
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
            metrics::histogram!(names::STAGE_LATENCY, "stage" => "parse")
                .record(parse_started.elapsed().as_secs_f64());
        }
        (batch, snapshot, parse_started)
    }
}

/// The answers of a stream's batches, in input order. Admission and enqueueing run one
/// batch at a time (`then`), so a stream's batches are decided in input order; only the
/// waits for their answers overlap (`buffered`).
fn answer_in_order(
    batches: impl Stream<Item = Result<ParsedBatch, String>>,
    app: web::Data<App>,
) -> impl Stream<Item = Result<Bytes, String>> {
    batches
        .filter(|item| {
            let keep = item
                .as_ref()
                .map_or(true, |(batch, _, _)| !batch.is_empty());
            std::future::ready(keep)
        })
        .then(move |item| {
            let app = app.clone();
            async move {
                let (batch, snapshot, read) = item?;
                let pending = app.enqueue(batch, snapshot).await;
                Ok::<_, String>((pending, read))
            }
        })
        .map(|item| async move {
            let (pending, read) = item?;
            let answer = pending.answer().await;
            // From the chunk's arrival to its answers handed to the response.
            metrics::histogram!(names::DECISION_LATENCY).record(read.elapsed().as_secs_f64());
            Ok::<_, String>(answer.bytes)
        })
        .buffered(STREAM_PIPELINE)
}

/// One JSON order in, one JSON decision out.
async fn single_order(mut payload: web::Payload, app: web::Data<App>) -> HttpResponse {
    let network = app.network();
    let limit = network.limits.max_line_bytes;
    let what = "an order (limits.max_line_bytes)";
    let mut body = match read_body(&mut payload, limit, "line_too_long", what).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    while body.last().is_some_and(u8::is_ascii_whitespace) {
        body.pop();
    }
    let order = match parse_order(&body, &network, &app.catalog) {
        Ok(order) => order,
        Err(invalid) => return invalid_response(&invalid),
    };
    let priority = is_priority(&network, &order);
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
        let problem = ZoneError::UnknownOrder(id);
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
        Ok(Err(problem @ ZoneError::UnknownOrder(_))) => {
            error(StatusCode::NOT_FOUND, "unknown_order", problem.to_string())
        }
        Ok(Err(problem @ ZoneError::NotLive { .. })) => {
            error(StatusCode::CONFLICT, "not_live", problem.to_string())
        }
        Ok(Err(problem)) => error(StatusCode::CONFLICT, "refused", problem.to_string()),
        Err(_) => unavailable(),
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
