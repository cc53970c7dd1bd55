//! `/v1/reviews`: the held orders waiting for review, oldest first, over every zone.

use super::unavailable;
use crate::serve::App;
use crate::serve::zone_actor::ReviewsRequest;
use actix_web::{HttpResponse, web};

/// The query of `GET /v1/reviews`.
#[derive(serde::Deserialize)]
pub(super) struct ReviewsQuery {
    rule: Option<String>,
}

/// `GET /v1/reviews[?rule=R]`: NDJSON, one held order per line as `GET /v1/orders/{id}`
/// shows it (with its approvers so far), oldest decision first; with `rule`, only the holds
/// of that rule (`hold_tags`, `hold_order_value_over`).
pub(super) async fn get_reviews(
    query: web::Query<ReviewsQuery>,
    app: web::Data<App>,
) -> HttpResponse {
    let network = app.network();
    let rule = query.into_inner().rule;
    let Some(zones) = app
        .ask_every_zone(|| ReviewsRequest {
            network: network.clone(),
            rule: rule.clone(),
        })
        .await
    else {
        return unavailable();
    };
    let mut held: Vec<_> = zones.into_iter().flatten().collect();
    // Stable: within a millisecond, each zone's own order.
    held.sort_by_key(|(decided_at, _)| *decided_at);
    let body: Vec<u8> = held.into_iter().flat_map(|(_, json)| json).collect();
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(body)
}
