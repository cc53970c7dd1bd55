//! The HTTP API (DESIGN section 6) on actix-web.

use super::App;
use super::answers::{Answers, Part, Ticket};
use super::metrics::names;
use super::zone_actor::{OrderAction, OrderRequest, Visits, ZoneActor};
use crate::config::Network;
use crate::ids::{WarehouseId, ZoneId};
use crate::ingest::{LineSplitter, parse_order};
use crate::ingest::{Parsed, parse_line};
use crate::limits::{FEED_READ_BYTES, MAX_STOCK_BODY_BYTES, READY_CHUNKS, STREAM_PIPELINE};
use crate::model::Tally;
use crate::model::{Invalid, InvalidCode, Order, ServiceLevel};
use crate::time::Millis;
use crate::zone::ZoneError;
use crate::zone::{Visit, admit};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

/// Routes of the API, each wrapped with the role it needs (see [`super::auth`]).
pub fn configure(config: &mut web::ServiceConfig) {
    use super::auth;
    use actix_web::middleware::from_fn;
    config
        .service(
            web::resource("/v1/orders")
                .wrap(from_fn(auth::ingest))
                .route(web::post().to(post_orders)),
        )
        .service(
            web::resource("/v1/orders/{id}")
                .wrap(from_fn(auth::read))
                .route(web::get().to(get_order)),
        )
        .service(
            web::resource("/v1/orders/{id}/cancel")
                .wrap(from_fn(auth::ops))
                .route(web::post().to(cancel_order)),
        )
        .service(
            web::resource("/v1/orders/{id}/shipped")
                .wrap(from_fn(auth::ingest))
                .route(web::post().to(ship_order)),
        )
        .service(
            web::resource("/v1/stock/{sku}")
                .wrap(from_fn(auth::read))
                .route(web::get().to(get_stock)),
        )
        .service(
            web::resource("/v1/stock")
                .wrap(from_fn(auth::read_or_ingest))
                .route(web::put().to(put_stock))
                .route(web::get().to(export_stock)),
        )
        .service(
            web::resource("/v1/network")
                .wrap(from_fn(auth::read))
                .route(web::get().to(get_network)),
        )
        .service(
            web::resource("/v1/catalog")
                .wrap(from_fn(auth::read))
                .route(web::get().to(get_catalog)),
        )
        .service(
            web::resource("/v1/decisions")
                .wrap(from_fn(auth::read))
                .route(web::get().to(get_decisions)),
        )
        .service(
            web::resource("/v1/admin/reload")
                .wrap(from_fn(auth::ops))
                .route(web::post().to(admin_reload)),
        )
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// The contract's error body, `{"error":{"code","message"}}`, with its status.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    let body = serde_json::json!({"error": {"code": code, "message": message.into()}});
    HttpResponse::build(status).json(body)
}

fn too_busy(what: &str) -> HttpResponse {
    metrics::counter!(names::REQUESTS_THROTTLED).increment(1);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "overloaded",
        format!("{what}; retry after the time Retry-After gives"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// The request's `Content-Type`, or "" when it has none (or not one in ASCII).
fn content_type(request: &HttpRequest) -> &str {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Whether an order is admitted ahead of standard traffic: it asks for (or its tier
/// requires) express or faster.
fn is_priority(network: &Network, order: &Order) -> bool {
    let tier_minimum = network.tiers[order.tier.index()].min_service;
    order.service.max(tier_minimum) >= ServiceLevel::Express
}

fn batch_priority(network: &Network, batch: &[Parsed]) -> bool {
    batch.iter().any(|(_, parsed)| {
        parsed
            .as_ref()
            .is_ok_and(|order| is_priority(network, order))
    })
}

/// `POST /v1/orders`: NDJSON streamed both ways, or one JSON order.
async fn post_orders(
    request: HttpRequest,
    payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    if app.is_draining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the router is shutting down",
        );
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
/// its permits, goes to the zone actors (one message per home zone), and its answers go back in order. At most
/// [`STREAM_PIPELINE`] chunks are in flight: beyond that the body is not read, so a client
/// that stops reading its answers stops its own sending.
fn stream_orders(payload: web::Payload, app: web::Data<App>) -> HttpResponse {
    let Some(slot) = app.admission.open_stream() else {
        return too_busy("too many order streams are open");
    };
    let mut splitter = LineSplitter::new(app.network().limits.max_line_bytes);
    let parser = app.clone();
    // Every chunk, then `None` for the end of the body (the last line may lack a newline).
    // Every group of body chunks that are ready at once (a backed-up stream gives large
    // groups, a trickle single chunks), then `None` for the end of the body (the last line
    // may lack a newline). A group is one batch: under load, fewer and fuller messages.
    let items = payload
        .ready_chunks(READY_CHUNKS)
        .map(Some)
        .chain(futures_util::stream::once(std::future::ready(None)));
    // State: a break of the body seen after some chunks of its group (answered next), and
    // whether the stream has ended.
    let batches = items.scan((None::<String>, false), move |(broken, ended), item| {
        if *ended {
            return std::future::ready(None);
        }
        if let Some(problem) = broken.take() {
            *ended = true;
            // The client went away or broke the framing: nothing more can be read. What
            // was read is decided and answered; then the response is cut off (no final
            // chunk), so a client still reading sees that it is incomplete.
            tracing::debug!("order stream broken by the client: {problem}");
            return std::future::ready(Some(Err(format!("the request body broke off: {problem}"))));
        }
        let parse_started = Instant::now();
        // Each batch is parsed, decided and answered under one config snapshot.
        let snapshot = parser.network();
        splitter.set_max_line_bytes(snapshot.limits.max_line_bytes);
        let catalog = &parser.catalog;
        let mut batch = Vec::new();
        let mut push = |line: crate::ingest::Line<'_>| {
            batch.push(parse_line(&snapshot, catalog, line));
        };
        match item {
            Some(chunks) => {
                for chunk in chunks {
                    match chunk {
                        Ok(chunk) => splitter.feed(&chunk, &mut push),
                        Err(problem) => {
                            *broken = Some(problem.to_string());
                            break;
                        }
                    }
                }
            }
            None => splitter.finish(&mut push),
        }
        if !batch.is_empty() {
            metrics::histogram!(names::STAGE_LATENCY, "stage" => "parse")
                .record(parse_started.elapsed().as_secs_f64());
        }
        std::future::ready(Some(Ok((batch, snapshot, parse_started))))
    });
    // Admission and enqueueing run one chunk at a time (`then`), so a stream's chunks are
    // decided in input order; only the waits for their answers overlap (`buffered`).
    let answers = batches
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
        .map(move |bytes| {
            // The stream's place is held for as long as answers flow.
            let _slot = &slot;
            bytes.map_err(actix_web::error::ErrorBadRequest)
        });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// Reads a whole request body of at most `limit` bytes; the error response otherwise.
async fn read_body(
    payload: &mut web::Payload,
    limit: usize,
    code: &str,
    what: &str,
) -> Result<Vec<u8>, HttpResponse> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body broke off",
            ));
        };
        if body.len() + chunk.len() > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                format!("{what} is at most {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

fn invalid_response(invalid: &Invalid) -> HttpResponse {
    let status = match invalid.code {
        InvalidCode::LineTooLong => StatusCode::PAYLOAD_TOO_LARGE,
        InvalidCode::IdConflict => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, invalid.code.name(), invalid.message.clone())
}

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

fn unavailable() -> HttpResponse {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "a zone actor is not running",
    )
}

async fn get_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Read).await
}

async fn cancel_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Cancel).await
}

async fn ship_order(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    order_action(&app, path.into_inner(), OrderAction::Ship).await
}

/// `GET /v1/stock/{sku}`: the SKU's stock at every warehouse, and its totals.
async fn get_stock(path: web::Path<String>, app: web::Data<App>) -> HttpResponse {
    let name = path.into_inner();
    let Some(sku) = app.catalog.lookup(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_sku",
            format!("SKU {name:?} is not in the catalogue"),
        );
    };
    let Some(zones) = app
        .ask_every_zone(|| super::zone_actor::StockRequest { sku })
        .await
    else {
        return unavailable();
    };
    let mut cells: Vec<_> = zones.into_iter().flatten().collect();
    cells.sort_by_key(|(warehouse, _)| *warehouse);
    let network = app.network();
    let warehouses: Vec<serde_json::Value> = cells
        .iter()
        .map(|(warehouse, cell)| {
            serde_json::json!({
                "warehouse": network.warehouse_name(*warehouse),
                "on_hand": cell.on_hand,
                "reserved": cell.reserved,
                "available": cell.available(),
            })
        })
        .collect();
    let (on_hand, reserved) = cells
        .iter()
        .fold((0u64, 0u64), |(on_hand, reserved), (_, cell)| {
            (
                on_hand + u64::from(cell.on_hand),
                reserved + u64::from(cell.reserved),
            )
        });
    HttpResponse::Ok().json(serde_json::json!({
        "sku": name,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "warehouses": warehouses,
    }))
}

/// `PUT /v1/stock`: absolute on-hand levels, CSV (`warehouse,sku,on_hand`) or NDJSON. The
/// body is checked whole first (a bad row refuses the upload: 400, nothing applied); then
/// every level applies except those below what is already reserved (409, listing them).
async fn put_stock(
    request: HttpRequest,
    mut payload: web::Payload,
    app: web::Data<App>,
) -> HttpResponse {
    let body = match read_body(
        &mut payload,
        MAX_STOCK_BODY_BYTES,
        "too_large",
        "a stock upload",
    )
    .await
    {
        Ok(body) => body,
        Err(response) => return response,
    };
    let content_type = content_type(&request);
    let network = app.network();
    let levels = if content_type.starts_with("text/csv") {
        crate::catalog::read_stock(
            body.as_slice(),
            std::path::Path::new("request body"),
            &network,
            &app.catalog,
        )
        .map_err(|problem| problem.to_string())
    } else if content_type.starts_with("application/x-ndjson") {
        super::views::stock_ndjson(&body, &network, &app.catalog)
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("stock comes as text/csv or application/x-ndjson, got {content_type:?}"),
        );
    };
    let levels = match levels {
        Ok(levels) => levels,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_stock", message),
    };
    let count = levels.len();
    // Each zone applies its own warehouses' levels; refusals are listed in input order.
    let mut by_zone: Vec<(Vec<usize>, Vec<crate::catalog::StockLevel>)> =
        (0..app.zones.len()).map(|_| Default::default()).collect();
    for (position, level) in levels.into_iter().enumerate() {
        let zone = network.warehouses[level.warehouse.index()].zone;
        by_zone[zone.index()].0.push(position);
        by_zone[zone.index()].1.push(level);
    }
    let mut refused = Vec::new();
    for (zone, (positions, levels)) in by_zone.into_iter().enumerate() {
        if levels.is_empty() {
            continue;
        }
        let request = super::zone_actor::SetStock {
            levels,
            network: network.clone(),
        };
        match app.zones.zone(ZoneId(zone as u16)).send(request).await {
            Ok(zone_refused) => refused.extend(
                zone_refused
                    .into_iter()
                    .map(|(index, level, problem)| (positions[index], level, problem)),
            ),
            Err(_) => return unavailable(),
        }
    }
    if refused.is_empty() {
        return HttpResponse::Ok().json(serde_json::json!({"applied": count, "refused": []}));
    }
    refused.sort_by_key(|(position, _, _)| *position);
    let rows: Vec<serde_json::Value> = refused
        .iter()
        .map(|(_, level, problem)| {
            serde_json::json!({
                "warehouse": network.warehouse_name(level.warehouse),
                "sku": app.catalog.sku_name(level.sku),
                "on_hand": level.on_hand,
                "reason": problem.to_string(),
            })
        })
        .collect();
    HttpResponse::Conflict().json(serde_json::json!({
        "error": {
            "code": "below_reserved",
            "message": format!("{} of {count} levels were below the units already reserved and were not applied", rows.len()),
        },
        "applied": count - rows.len(),
        "refused": rows,
    }))
}

/// `GET /v1/stock`: every level with units on hand or reserved, as CSV, in warehouse order.
async fn export_stock(app: web::Data<App>) -> HttpResponse {
    let network = app.network();
    let request = || super::zone_actor::StockExport {
        network: network.clone(),
    };
    let Some(zones) = app.ask_every_zone(request).await else {
        return unavailable();
    };
    let mut warehouses: Vec<(WarehouseId, Vec<u8>)> = zones.into_iter().flatten().collect();
    warehouses.sort_by_key(|(warehouse, _)| *warehouse);
    let mut csv = b"warehouse,sku,on_hand,reserved,available\n".to_vec();
    for (_, rows) in warehouses {
        csv.extend_from_slice(&rows);
    }
    HttpResponse::Ok().content_type("text/csv").body(csv)
}

/// `GET /v1/network`: the network in force, with today's load of every warehouse and carrier.
async fn get_network(app: web::Data<App>) -> HttpResponse {
    let network = app.network();
    let now = Millis::now();
    let carriers = network.carriers.len();
    let request = || super::zone_actor::LoadRequest { now, carriers };
    let Some(zones) = app.ask_every_zone(request).await else {
        return unavailable();
    };
    let mut loads: Vec<(WarehouseId, super::views::WarehouseLoad)> =
        zones.into_iter().flatten().collect();
    loads.sort_by_key(|(warehouse, _)| *warehouse);
    let loads: Vec<super::views::WarehouseLoad> = loads.into_iter().map(|(_, load)| load).collect();
    HttpResponse::Ok().json(super::views::network(&network, &loads, now))
}

/// `GET /v1/catalog`: every SKU, as a JSON array, or NDJSON when the client accepts it.
async fn get_catalog(request: HttpRequest, app: web::Data<App>) -> HttpResponse {
    let ndjson = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/x-ndjson"));
    let catalog = &app.catalog;
    let mut out = Vec::with_capacity(catalog.len() * 64);
    if !ndjson {
        out.push(b'[');
    }
    for index in 0..catalog.len() {
        let sku = super::views::sku(catalog, crate::ids::SkuId(index as u32));
        if !ndjson && index > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &sku).expect("JSON into a Vec");
        if ndjson {
            out.push(b'\n');
        }
    }
    if !ndjson {
        out.push(b']');
    }
    HttpResponse::Ok()
        .content_type(if ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        })
        .body(out)
}

/// Query of `GET /v1/decisions`.
#[derive(serde::Deserialize)]
struct FeedQuery {
    /// The first entry wanted (the `cursor` of the last one seen, plus one). Default 0.
    #[serde(default)]
    cursor: u64,
    /// Keep the response open and stream entries as they are made.
    #[serde(default)]
    follow: bool,
}

/// `GET /v1/decisions?cursor=N&follow=true`: the decision feed as NDJSON, from `cursor`, with
/// no gaps; `410 Gone` (naming the oldest cursor held) when `cursor` is no longer held.
async fn get_decisions(query: web::Query<FeedQuery>, app: web::Data<App>) -> HttpResponse {
    use super::feed::{Read, ReadResult};
    let FeedQuery { cursor, follow } = query.into_inner();
    let first = match app
        .feed
        .send(Read {
            cursor,
            max_bytes: FEED_READ_BYTES,
        })
        .await
    {
        Ok(ReadResult::Gone { oldest }) => {
            let mut response = error(
                StatusCode::GONE,
                "cursor_gone",
                format!("cursor {cursor} is no longer held; the oldest is {oldest}"),
            );
            response.headers_mut().insert(
                header::HeaderName::from_static("x-oldest-cursor"),
                header::HeaderValue::from(oldest),
            );
            return response;
        }
        Ok(first) => first,
        Err(_) => return unavailable(),
    };
    struct State {
        app: web::Data<App>,
        pending: Option<ReadResult>,
        cursor: u64,
        follow: bool,
        published: tokio::sync::watch::Receiver<u64>,
        last_read_done: bool,
    }
    let state = State {
        last_read_done: false,
        published: app.feed_published.clone(),
        app,
        pending: Some(first),
        cursor,
        follow,
    };
    let lines = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            let read = match state.pending.take() {
                Some(read) => read,
                None => {
                    let read = Read {
                        cursor: state.cursor,
                        max_bytes: FEED_READ_BYTES,
                    };
                    state.app.feed.send(read).await.ok()?
                }
            };
            match read {
                ReadResult::Lines(bytes, next) => {
                    state.cursor = next;
                    return Some((Ok::<Bytes, actix_web::Error>(Bytes::from(bytes)), state));
                }
                // Evicted under a slow reader: end here; resuming from the last cursor seen
                // gets the 410 that says so.
                ReadResult::Gone { .. } => return None,
                ReadResult::Empty if !state.follow => return None,
                ReadResult::Empty => loop {
                    if *state.published.borrow_and_update() > state.cursor {
                        break;
                    }
                    // The router is shutting down and has decided everything it will. The
                    // last entries were sent to the log before the last permits came back,
                    // so one more read (queued behind them) sees them; after that, the end.
                    if state.app.is_drained() {
                        if state.last_read_done {
                            return None;
                        }
                        state.last_read_done = true;
                        break;
                    }
                    let wait = state.published.changed();
                    // Woken by new entries, or once a second to notice a shutdown.
                    let waited = tokio::time::timeout(std::time::Duration::from_secs(1), wait);
                    if let Ok(Err(_)) = waited.await {
                        return None;
                    }
                },
            }
        }
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(lines)
}

/// `POST /v1/admin/reload`: 200 with what changed, or 422 with why it was refused (the old
/// config keeps serving).
async fn admin_reload(app: web::Data<App>) -> HttpResponse {
    let outcome = super::reload::reload(&app, app.config_path()).await;
    let status = match outcome {
        super::reload::Outcome::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    HttpResponse::build(status).json(outcome.to_json())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(app: web::Data<App>) -> HttpResponse {
    if app.is_draining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the router is shutting down",
        );
    }
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "orders_in_flight": app.admission.in_flight(),
    }))
}

async fn metrics(app: web::Data<App>) -> HttpResponse {
    metrics::gauge!(names::ORDERS_IN_FLIGHT).set(app.admission.in_flight() as f64);
    if let Some((resident, peak)) = resident_memory() {
        // The name every Prometheus client library uses, so dashboards find it.
        metrics::gauge!(names::RESIDENT_MEMORY).set(resident as f64);
        metrics::gauge!(names::RESIDENT_MEMORY_PEAK).set(peak as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(app.metrics.render())
}

/// The process's resident memory and its peak so far, in bytes (`VmRSS` and `VmHWM` of
/// `/proc/self/status`); `None` where there is no such file (not Linux).
fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kilobytes = |key: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(key))?;
        let value = line[key.len()..].trim().strip_suffix("kB")?.trim();
        value.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    Some((kilobytes("VmRSS:")?, kilobytes("VmHWM:")?))
}

/// The answers of a chunk: one NDJSON line per parsed line, in input order.
pub struct BatchAnswer {
    pub bytes: Bytes,
    pub tally: Tally,
}

/// A chunk on its way through the zone actors: its answers come back in parts, one from
/// each zone that answered some of its orders.
pub struct Pending {
    answers: Arc<Answers>,
    /// The `invalid` answers, made by the worker itself.
    local: Option<Part>,
    first_line: u64,
    lines: usize,
}

impl Pending {
    /// The chunk's answers, in input order. A line no zone answered (a zone actor stopped before
    /// deciding it: nothing was reserved for it) is answered `unavailable`.
    pub async fn answer(mut self) -> BatchAnswer {
        let mut parts = self.answers.gather().await;
        parts.extend(self.local.take());
        if let Some(last) = parts.iter().map(|part| part.made).max() {
            metrics::histogram!(names::STAGE_LATENCY, "stage" => "answer")
                .record(last.elapsed().as_secs_f64());
        }
        let answer = assemble(parts, self.first_line, self.lines);
        super::metrics::record_tally(&answer.tally);
        answer
    }
}

/// Puts the parts' answers in input order (one copy each, unless one part holds them all in
/// order already).
fn assemble(parts: Vec<Part>, first_line: u64, lines: usize) -> BatchAnswer {
    let mut tally = Tally::default();
    for part in &parts {
        tally.add(&part.tally);
    }
    if let [part] = parts.as_slice()
        && part.slots.len() == lines
        && part
            .slots
            .iter()
            .enumerate()
            .all(|(index, slot)| slot.0 as usize == index)
    {
        return BatchAnswer {
            bytes: part.bytes.clone(),
            tally,
        };
    }
    const NONE: (u32, u32, u32) = (u32::MAX, 0, 0);
    let mut places = vec![NONE; lines];
    let mut size = 0;
    for (number, part) in parts.iter().enumerate() {
        size += part.bytes.len();
        for &(index, start, end) in &part.slots {
            places[index as usize] = (number as u32, start, end);
        }
    }
    let mut bytes = Vec::with_capacity(size);
    for (index, (part, start, end)) in places.into_iter().enumerate() {
        if part == u32::MAX {
            let invalid = Invalid::new(
                InvalidCode::Unavailable,
                "a zone actor is not running; nothing was decided",
            );
            crate::render::write_invalid(&mut bytes, first_line + index as u64, &invalid);
        } else {
            let part = &parts[part as usize];
            bytes.extend_from_slice(&part.bytes[start as usize..end as usize]);
        }
    }
    BatchAnswer {
        bytes: Bytes::from(bytes),
        tally,
    }
}

impl App {
    /// Admits one parsed chunk (waiting as long as it takes) and hands it to the zone actors.
    pub async fn enqueue(&self, batch: Vec<Parsed>, network: Arc<Network>) -> Pending {
        let priority = batch_priority(&network, &batch);
        let permit = self.admission.admit(batch.len(), priority).await;
        self.send_admitted(batch, network, permit)
    }

    /// Hands an admitted chunk to the zone actors, one message per home zone; they decide
    /// it and give its permits back whether or not anyone still waits for the answer.
    /// `invalid` lines are answered here.
    pub fn send_admitted(
        &self,
        batch: Vec<Parsed>,
        network: Arc<Network>,
        permit: super::admission::Permit,
    ) -> Pending {
        // Lines of a chunk are numbered consecutively.
        let (first_line, lines) = (batch.first().map_or(1, |(number, _)| *number), batch.len());
        let mut invalid_bytes = Vec::new();
        let mut by_zone: Vec<Vec<Visit>> = (0..self.zones.len()).map(|_| Vec::new()).collect();
        let mut local = Part {
            bytes: Bytes::new(),
            slots: Vec::new(),
            tally: Tally::default(),
            made: Instant::now(),
        };
        let mut local_invalid = |index: usize, line: u64, invalid: &Invalid| {
            let start = invalid_bytes.len() as u32;
            crate::render::write_invalid(&mut invalid_bytes, line, invalid);
            local
                .slots
                .push((index as u32, start, invalid_bytes.len() as u32));
            local.tally.lines += 1;
            local.tally.count_invalid(invalid.code);
        };
        // Ids are claimed here, line by line: the first line with an id is the original,
        // whatever the zone threads do next. A conflict is answered by the zone holding
        // the original (after the original is durable).
        for (index, (line, parsed)) in batch.into_iter().enumerate() {
            match parsed {
                Ok(order) => {
                    let (zone, visit) =
                        admit(&self.zones.claims, &network, order, index as u32, line);
                    by_zone[zone.index()].push(visit);
                }
                Err(invalid) => local_invalid(index, line, &invalid),
            }
        }
        // The zones answer every line the worker did not.
        let answers = Answers::new(lines - local.slots.len());
        let ticket = Ticket::new(permit, answers.clone());
        let sent = Instant::now();
        for (zone, visits) in by_zone.into_iter().enumerate() {
            if visits.is_empty() {
                continue;
            }
            let visits = Visits {
                network: network.clone(),
                ticket: ticket.clone(),
                visits,
                sent,
            };
            self.zones.send(ZoneId(zone as u16), visits);
        }
        local.bytes = Bytes::from(invalid_bytes);
        Pending {
            answers,
            local: (!local.slots.is_empty()).then_some(local),
            first_line,
            lines,
        }
    }

    /// Asks every zone actor the same question; `None` if one of them is not running.
    pub async fn ask_every_zone<M>(&self, request: impl Fn() -> M) -> Option<Vec<M::Result>>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        ZoneActor: actix::Handler<M>,
    {
        let answers = futures_util::future::join_all(
            self.zones.all().iter().map(|zone| zone.send(request())),
        )
        .await;
        answers.into_iter().collect::<Result<Vec<_>, _>>().ok()
    }
}
