//! The HTTP API (DESIGN section 6) on actix-web: the routes, each with the role it needs,
//! and what every resource shares (the error body, 429 and 503, body reading). One file
//! per resource (private, so named here without links): `orders` (the order stream,
//! single orders, reads, cancels, shipments), `shipments` (many orders shipped in one
//! request), `stock`, `network` (network and catalogue), `decisions` (the feed), `reviews`
//! (held orders waiting for review), `customers` (credit limits and exposure), `admin`
//! (reload, health, readiness, metrics). The way of a chunk
//! of orders from here to the zone actors and back is [`crate::serve::pipeline`].

mod admin;
mod body;
pub mod customers;
mod decisions;
mod network;
mod orders;
mod reviews;
mod shipments;
mod stock;

use super::metrics::names;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

/// Routes of the API, each wrapped with the role it needs (see [`crate::serve::auth`]).
pub fn configure(config: &mut web::ServiceConfig) {
    use super::auth;
    use actix_web::middleware::from_fn;
    config
        .service(
            web::resource("/v1/orders")
                .wrap(from_fn(auth::ingest))
                .route(web::post().to(orders::post_orders)),
        )
        .service(
            web::resource("/v1/orders/{id}")
                .wrap(from_fn(auth::read))
                .route(web::get().to(orders::get_order)),
        )
        .service(
            web::resource("/v1/orders/{id}/cancel")
                .wrap(from_fn(auth::ops))
                .route(web::post().to(orders::cancel_order)),
        )
        .service(
            web::resource("/v1/orders/{id}/approve")
                .wrap(from_fn(auth::ops))
                .route(web::post().to(orders::approve_order)),
        )
        .service(
            web::resource("/v1/orders/{id}/reject")
                .wrap(from_fn(auth::ops))
                .route(web::post().to(orders::reject_order)),
        )
        .service(
            web::resource("/v1/reviews")
                .wrap(from_fn(auth::read))
                .route(web::get().to(reviews::get_reviews)),
        )
        .service(
            web::resource("/v1/orders/{id}/shipped")
                .wrap(from_fn(auth::ingest))
                .route(web::post().to(orders::ship_order)),
        )
        .service(
            web::resource("/v1/shipments")
                .wrap(from_fn(auth::ingest))
                .route(web::post().to(shipments::post_shipments)),
        )
        .service(
            web::resource("/v1/stock/{sku}")
                .wrap(from_fn(auth::read))
                .route(web::get().to(stock::get_stock)),
        )
        .service(
            web::resource("/v1/stock")
                .wrap(from_fn(auth::read_or_ingest))
                .route(web::put().to(stock::put_stock))
                .route(web::get().to(stock::export_stock)),
        )
        .service(
            web::resource("/v1/customers")
                .wrap(from_fn(auth::ops))
                .route(web::put().to(customers::put_customers)),
        )
        .service(
            web::resource("/v1/customers/{id}")
                .wrap(from_fn(auth::read))
                .route(web::get().to(customers::get_customer)),
        )
        .service(
            web::resource("/v1/network")
                .wrap(from_fn(auth::read))
                .route(web::get().to(network::get_network)),
        )
        .service(
            web::resource("/v1/catalog")
                .wrap(from_fn(auth::read))
                .route(web::get().to(network::get_catalog)),
        )
        .service(
            web::resource("/v1/decisions")
                .wrap(from_fn(auth::read))
                .route(web::get().to(decisions::get_decisions)),
        )
        .service(
            web::resource("/v1/admin/reload")
                .wrap(from_fn(auth::ops))
                .route(web::post().to(admin::admin_reload)),
        )
        .route("/healthz", web::get().to(admin::healthz))
        .route("/readyz", web::get().to(admin::readyz))
        .route("/metrics", web::get().to(admin::metrics));
}

/// The contract's error body, `{"error":{"code","message"}}`, with its status.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    let body = serde_json::json!({"error": {"code": code, "message": message.into()}});
    HttpResponse::build(status).json(body)
}

/// A name taken from the request path, as an error message shows it: whole when short,
/// else its first 64 characters and its length (a 404 does not echo kilobytes back).
pub(super) fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    const SHOWN: usize = 64;
    match name.char_indices().nth(SHOWN) {
        None => name.into(),
        Some((end, _)) => format!("{}... ({} bytes)", &name[..end], name.len()).into(),
    }
}

/// `429` saying `what` is at its limit, with `Retry-After: 1`; counted as throttled.
pub(super) fn too_busy(what: &str) -> HttpResponse {
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
pub(super) fn content_type(request: &HttpRequest) -> &str {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Reads a whole request body of at most `limit` bytes; the error response otherwise.
pub(super) async fn read_body(
    request: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
    code: &str,
    what: &str,
) -> Result<Vec<u8>, HttpResponse> {
    let broken = |problem: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the request body broke off: {problem}"),
        )
    };
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(problem) => return Err(broken(&problem.to_string())),
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
    match crate::serve::edge::body_break(request) {
        Some(problem) => Err(broken(problem)),
        None => Ok(body),
    }
}

/// `503`: the router is shutting down and takes no new work.
pub(super) fn draining() -> HttpResponse {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "draining",
        "the router is shutting down",
    )
}

/// `503`: a zone actor that had to answer is gone.
pub(super) fn unavailable() -> HttpResponse {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "a zone actor is not running",
    )
}
