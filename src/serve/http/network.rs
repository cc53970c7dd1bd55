//! `/v1/network` and `/v1/catalog`: what the router routes over.

use super::unavailable;
use crate::ids::WarehouseId;
use crate::serve::App;
use crate::time::Millis;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /v1/network`: the network in force, with today's load of every warehouse and carrier.
pub(super) async fn get_network(app: web::Data<App>) -> HttpResponse {
    let network = app.network();
    let now = Millis::now();
    let carriers = network.carriers.len();
    let request = || crate::serve::zone_actor::LoadRequest { now, carriers };
    let Some(zones) = app.ask_every_zone(request).await else {
        return unavailable();
    };
    let mut loads: Vec<(WarehouseId, crate::serve::views::WarehouseLoad)> =
        zones.into_iter().flatten().collect();
    loads.sort_by_key(|(warehouse, _)| *warehouse);
    let loads: Vec<crate::serve::views::WarehouseLoad> =
        loads.into_iter().map(|(_, load)| load).collect();
    HttpResponse::Ok().json(crate::serve::views::network(&network, &loads, now))
}

/// `GET /v1/catalog`: every SKU, as a JSON array, or NDJSON when the client accepts it.
pub(super) async fn get_catalog(request: HttpRequest, app: web::Data<App>) -> HttpResponse {
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
        let sku = crate::serve::views::sku(catalog, crate::ids::SkuId(index as u32));
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
